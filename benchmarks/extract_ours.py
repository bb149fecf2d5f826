"""Bench worker (c): this project's Dagster asset `smsp/stop_list`, materialized for real.

The code location in `assets/` reads its configuration from the environment the parent sets
(`SMSP_API_KEY`, `SMSP_BASE_URL`, `SMSP_DUCKDB_PATH`, `DAGSTER_HOME`), so it must be imported with
the repository root on `sys.path` (the parent sets `PYTHONPATH`). The run goes through the
asset's implicit job with the definitions' own resources, on the persistent instance in
`DAGSTER_HOME` (event log in SQLite), as `dagster asset materialize` would.
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg
from extract_common import WorkerArgs, run_worker

from assets import defs

STOP_LIST = dg.AssetKey(["smsp", "stop_list"])


def prepare(args: WorkerArgs) -> Callable[[], None]:
    job = defs.resolve_implicit_job_def_def_for_assets([STOP_LIST])
    if job is None:
        raise LookupError(f"no implicit asset job materializes {STOP_LIST.to_user_string()}")
    instance = dg.DagsterInstance.get()

    def materialize() -> None:
        job.execute_in_process(asset_selection=[STOP_LIST], instance=instance)

    return materialize


if __name__ == "__main__":
    run_worker(prepare)
