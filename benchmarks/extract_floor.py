"""Bench worker (floor): the cheapest correct way to the same typed table, the floor to compare
against.

The list's body is streamed to a temporary file as it arrives (never held as Python objects),
its envelope blanked in place so that the file is the bare ``data`` array (the project's
``isolate_data_array``: two 64 KiB reads and writes), then DuckDB's
``read_json(format='array')``, with the entries' columns given, loads it straight into the
typed table: ids as BIGINT, numbers as text, ``createdAt`` read as Paris time and stored as an
instant. No validation, no history: what any extraction must at least pay (issue 20). Run by
`extract_bench.py`, one fresh process per run.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import requests
from extract_common import WorkerArgs, run_worker

from smsp_connector.client.list_body import isolate_data_array

COLUMNS = "{'id': 'BIGINT', 'phoneNumber': 'VARCHAR', 'createdAt': 'VARCHAR'}"


def extract(args: WorkerArgs) -> None:
    body = os.path.join(args.work_dir, "stop_list.json")
    with requests.get(
        f"{args.base_url}/stop-sms/list", params={"apiKey": args.api_key}, stream=True, timeout=600
    ) as response:
        response.raise_for_status()
        with open(body, "wb") as handle:
            for chunk in response.iter_content(chunk_size=1 << 20):
                handle.write(chunk)
    isolate_data_array(Path(body))
    with duckdb.connect(args.duckdb_path) as connection:
        connection.execute(
            f"""
            CREATE TABLE stop_list AS
            SELECT id AS stop_id, phoneNumber AS phone_number,
                   timezone('Europe/Paris', strptime(createdAt, '%Y-%m-%d %H:%M:%S'))
                       AS created_at
            FROM read_json(?, format = 'array', columns = {COLUMNS})
            """,
            [body],
        )
    os.remove(body)


def prepare(args: WorkerArgs) -> Callable[[], None]:
    return functools.partial(extract, args)


if __name__ == "__main__":
    run_worker(prepare)
