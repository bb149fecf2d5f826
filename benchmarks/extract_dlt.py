"""Bench worker (b): dlt's `rest_api` source into a DuckDB file.

Runs under an interpreter that has `dlt[duckdb]` (see `--dlt-python` in `extract_bench.py`).
`EXTRACT_DLT_LOADER_FILE_FORMAT` picks the load files' format (e.g. `jsonl`); unset, dlt's
default for DuckDB (`insert_values`: SQL INSERT statements).
The parent sets `RUNTIME__DLTHUB_TELEMETRY=false` and `DLT_DATA_DIR`, and starts it in a fresh
temporary directory, so that no `.dlt/` configuration or pipeline state is shared between runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import dlt
from dlt.sources.rest_api import rest_api_source
from extract_common import WorkerArgs, run_worker


def prepare(args: WorkerArgs) -> Callable[[], None]:
    source = rest_api_source(
        {
            "client": {
                "base_url": f"{args.base_url}/",
                "auth": {
                    "type": "api_key",
                    "name": "apiKey",
                    "api_key": args.api_key,
                    "location": "query",
                },
                "paginator": "single_page",
            },
            "resources": [
                {
                    "name": "stop_list",
                    "endpoint": {"path": "stop-sms/list", "data_selector": "data"},
                },
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="smsp_stop_list",
        destination=dlt.destinations.duckdb(args.duckdb_path),
        dataset_name="smsp",
        pipelines_dir=str(Path(args.work_dir) / "pipelines"),
    )

    file_format = os.environ.get("EXTRACT_DLT_LOADER_FILE_FORMAT")

    def load() -> None:
        pipeline.run(source, loader_file_format=file_format).raise_on_failed_jobs()

    return load


if __name__ == "__main__":
    run_worker(prepare)
