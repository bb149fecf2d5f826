"""Bench worker (floor): the least an extraction can do, the I/O floor to compare against.

The list's body is streamed to a temporary file as it arrives (never held as Python objects),
then DuckDB's `read_json`, with an explicit column schema, unnests it into the table. No
validation, no history: what any extraction must at least pay. Run by `extract_bench.py`, one
fresh process per run.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import duckdb
import requests
from extract_common import WorkerArgs, run_worker

ENTRY = "STRUCT(id BIGINT, phoneNumber VARCHAR, createdAt VARCHAR)[]"


def extract(args: WorkerArgs) -> None:
    body = os.path.join(args.work_dir, "stop_list.json")
    with requests.get(
        f"{args.base_url}/stop-sms/list", params={"apiKey": args.api_key}, stream=True, timeout=600
    ) as response:
        response.raise_for_status()
        with open(body, "wb") as handle:
            for chunk in response.iter_content(chunk_size=1 << 20):
                handle.write(chunk)
    with duckdb.connect(args.duckdb_path) as connection:
        connection.execute(
            f"""
            CREATE TABLE stop_list AS
            SELECT entry.id AS stop_id, entry.phoneNumber AS phone_number,
                   strptime(entry.createdAt, '%Y-%m-%d %H:%M:%S') AS created_at
            FROM (SELECT unnest(data) AS entry FROM read_json(
                ?, columns = {{'data': '{ENTRY}'}}, maximum_object_size = 1073741824))
            """,
            [body],
        )
    os.remove(body)


def prepare(args: WorkerArgs) -> Callable[[], None]:
    return functools.partial(extract, args)


if __name__ == "__main__":
    run_worker(prepare)
