"""Where ours' extraction spends its time: one run of `extract_ours.py` under cProfile, split.

    .venv/bin/python benchmarks/extract_profile.py [--size 1000000]

Starts `smsp emulator --demo-size N`, runs the worker once with `EXTRACT_PROFILE` set (see
`extract_common.run_worker`) in a fresh directory and `DAGSTER_HOME`, and prints the cumulative
seconds of the project's steps (download, load, staging, validation, checks, publish, history,
exports) and what is left to Dagster, as a Markdown table. cProfile's own overhead inflates
Python-heavy steps; DuckDB's work shows under the Python call that waits for it.
"""

from __future__ import annotations

import argparse
import os
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

from emulator_bench import API_KEY, emulator, timed_get
from extract_bench import BENCH_DIR, REPO, worker_env

STEPS = [
    ("download (HTTP to file)", "client.py", "download_stop_list"),
    ("JSON load into DuckDB", "stop_list.py", "load"),
    ("Paris hours (pandas)", "extract.py", "provider_hours"),
    ("typing and staging (SQL)", "stop_list.py", "stage"),
    ("validation (SQL prefilter + pandera)", "extract.py", "validate_staged"),
    ("snapshot checks (SQL)", "extract.py", "snapshot_checks"),
    ("publish (swap, log)", "stop_list.py", "publish_stop_list"),
    ("staging checkpoint", "stop_list.py", "staging"),
    ("the whole extract_stop_list", "extract.py", "extract_stop_list"),
    ("the asset's body", "extract_assets.py", "stop_list"),
    ("the Dagster run (everything)", "in_process.py", "execute_in_process"),
]


def cumulative(stats: pstats.Stats, filename: str, function: str) -> float | None:
    found = [
        row[3]
        for (path, _, name), row in stats.stats.items()  # type: ignore[attr-defined]
        if name == function and path.endswith(filename)
    ]
    return max(found) if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    args = parser.parse_args()
    with emulator(args.size) as server, tempfile.TemporaryDirectory() as tmp:
        timed_get(f"{server.base_url}/stop-sms/list", {"apiKey": API_KEY})
        work = Path(tmp)
        profile = work / "ours.prof"
        env = {
            **worker_env(server.base_url, work),
            "EXTRACT_PROFILE": str(profile),
            "PYTHONPATH": os.pathsep.join([str(REPO), str(BENCH_DIR)]),
        }
        command = [sys.executable, str(BENCH_DIR / "extract_ours.py"), "--base-url"]
        command += [server.base_url, "--api-key", API_KEY, "--duckdb-path"]
        command += [str(work / "warehouse.duckdb"), "--work-dir", tmp]
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        stats = pstats.Stats(str(profile))
        total = stats.total_tt  # type: ignore[attr-defined]
        print(f"{args.size:,} entries, {total:.2f} s under cProfile\n")
        print("| step | cumulative s | share |")
        print("| --- | ---: | ---: |")
        for label, filename, function in STEPS:
            seconds = cumulative(stats, filename, function)
            if seconds is not None:
                print(f"| {label} | {seconds:.2f} | {seconds / total:.0%} |")
        print()
        stats.sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
