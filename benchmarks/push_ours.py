"""Bench worker (ours): the push as a real Dagster materialization of `smsp/stop_list_additions`.

The asset reads the CSV (`read_phone_csv`: normalise to E.164, reject, deduplicate), fetches the
provider's list, adds the missing numbers with `SmspClient.bulk_add` on a thread pool (retries,
optional client-side rate limit) and records one audit row per input row in `smsp.audit_log` of
the DuckDB file given. It runs with the mutation assets' inbox sources, on the persistent
instance of `DAGSTER_HOME` (the parent points it at a fresh folder), as
`tests/test_push.py` materializes it. Only the materialization is timed: imports and the
instance's creation are reported apart (`ready_at`, `setup_peak_mib`).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import dagster as dg
from push_common import emit, peak_rss_mib

from smsp_connector.dagster import build_definitions
from smsp_connector.settings import Settings

ADDITIONS = dg.AssetKey(["smsp", "stop_list_additions"])


def summary(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    """The push summary the asset reports as materialization metadata."""
    for event in result.get_asset_materialization_events():
        if event.asset_key == ADDITIONS:
            metadata = event.materialization.metadata.items()
            return {key: value.value for key, value in metadata if key != "source_file"}
    raise LookupError(f"no materialization of {ADDITIONS.to_user_string()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--csv-path", required=True)
    parser.add_argument("--duckdb-path", required=True)
    parser.add_argument("--max-workers", type=int, required=True)
    parser.add_argument("--rate-limit", type=float, help="Client requests/s (default: none).")
    parser.add_argument("--rate-limit-dsn", help="PostgreSQL of a shared rate limit.")
    args = parser.parse_args()
    smsp = build_definitions(
        Settings(
            api_key=args.api_key,
            base_url=args.base_url,
            rate_limit=args.rate_limit,
            rate_limit_dsn=args.rate_limit_dsn,
            max_workers=args.max_workers,
            database=args.duckdb_path,
        )
    )
    mutations = smsp.mutations
    assets = [*mutations.inbox.values(), mutations.additions]
    instance = dg.DagsterInstance.get()
    ready_at, setup_peak = time.time(), peak_rss_mib()
    started = time.perf_counter()
    result = dg.materialize(
        assets,
        resources=smsp.resources,
        run_config=smsp.keys.op_config(ADDITIONS, csv_path=args.csv_path),
        instance=instance,
    )
    seconds = time.perf_counter() - started
    emit(
        {
            "seconds": seconds,
            "ready_at": ready_at,
            "setup_peak_mib": setup_peak,
            "peak_mib": peak_rss_mib(),
            "run_id": result.run_id,
            "summary": summary(result),
        }
    )


if __name__ == "__main__":
    main()
