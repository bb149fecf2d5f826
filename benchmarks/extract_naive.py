"""Bench worker (a): the extraction a user writes from the provider's examples.

One `requests.get(...).json()`, a pandas DataFrame, a pandera model, and DuckDB's
`CREATE TABLE ... AS SELECT * FROM df`. Run by `extract_bench.py`, one fresh process per run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import duckdb
import pandas as pd
import pandera.pandas as pa
import requests
from extract_common import WorkerArgs, run_worker
from pandera.typing import Series

COLUMNS = {"id": "stop_id", "phoneNumber": "phone_number", "createdAt": "created_at"}


class StopList(pa.DataFrameModel):
    stop_id: Series[int] = pa.Field(unique=True)
    phone_number: Series[str] = pa.Field(str_matches=r"^\+[1-9]\d{6,14}$")
    created_at: Series[pd.Timestamp]


def extract(args: WorkerArgs) -> None:
    response = requests.get(
        f"{args.base_url}/stop-sms/list", params={"apiKey": args.api_key}, timeout=600
    )
    response.raise_for_status()
    body = response.json()
    df = pd.DataFrame(body["data"]).rename(columns=COLUMNS)
    df["created_at"] = pd.to_datetime(df["created_at"])
    df = StopList.validate(df)
    with duckdb.connect(args.duckdb_path) as connection:
        connection.execute("CREATE TABLE stop_list AS SELECT * FROM df")


def prepare(args: WorkerArgs) -> Callable[[], None]:
    return functools.partial(extract, args)


if __name__ == "__main__":
    run_worker(prepare)
