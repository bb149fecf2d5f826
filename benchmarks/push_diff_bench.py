"""Push against a long stop list: does the plan's memory follow the plan or the list?

Run by hand (not part of the test suite), from the repository root:

    .venv/bin/python benchmarks/push_diff_bench.py [--sizes 1000000,5000000] [--numbers 5000]
        [--repeat 3] [--code /tmp/baseline]

For each list size, `smsp emulator --demo-size N` serves a list of N entries from its own
process (one warm-up GET builds its cached body). Each run is the real command line in a fresh
process, `python -m smsp_connector.cli push FILE`, with a CSV of `--numbers` new numbers (new
each run, so every run adds them all: the list grows by that much a run), a fresh DuckDB file
and no rate limit (`SMSP_RATE_LIMIT=none`). Time: wall clock of the process (interpreter start
and imports included); memory: its peak RSS (`ru_maxrss` of `RUSAGE_CHILDREN`, in a measuring
process of its own).
Each run is checked: exit status 0, one `applied` audit row per number, none other.

With `--code`, the same runs are made with another copy of `smsp_connector` first on
`PYTHONPATH` (a baseline: the code before the diff moved into DuckDB), alternating with ours,
so that the two are compared side by side in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
from emulator_bench import API_KEY, emulator, timed_get

REPO = Path(__file__).resolve().parents[1]
MEASURE = """
import json, os, resource, subprocess, sys, time
env = json.loads(sys.argv[1]); command = json.loads(sys.argv[2])
started = time.perf_counter()
done = subprocess.run(command, env=env, cwd=sys.argv[3], capture_output=True, text=True)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print("PUSH-RESULT " + json.dumps({"rc": done.returncode, "seconds": seconds, "peak_mib": peak,
      "tail": (done.stdout + done.stderr)[-1500:]}))
"""


def numbers_file(folder: Path, run: int, count: int) -> Path:
    """``count`` Paris landline numbers (``+331…``): the demo list holds mobile numbers only."""
    path = folder / f"push-{run}.csv"
    rows = [f"+331{run:03d}{index:05d}" for index in range(count)]
    path.write_text("phone\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def one_run(base_url: str, csv_path: Path, work: Path, code: Path | None) -> dict[str, object]:
    database = work / f"{csv_path.stem}-{'base' if code else 'ours'}.duckdb"
    env = {
        **os.environ,
        "SMSP_API_KEY": API_KEY,
        "SMSP_BASE_URL": base_url,
        "SMSP_DUCKDB_PATH": str(database),
        "SMSP_RATE_LIMIT": "none",
        "COLUMNS": "120",
    }
    if code is not None:
        env["PYTHONPATH"] = str(code)
    command = [sys.executable, "-m", "smsp_connector.cli", "push", str(csv_path)]
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps(env), json.dumps(command), str(work)],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("PUSH-RESULT "))
    result = json.loads(line.removeprefix("PUSH-RESULT "))
    if result["rc"] != 0:
        raise RuntimeError(f"push failed: {result['tail']}")
    with duckdb.connect(str(database), read_only=True) as conn:
        outcomes = dict(
            conn.execute(
                "SELECT outcome, count(*) FROM smsp.audit_latest GROUP BY outcome"
            ).fetchall()
        )
    database.unlink()
    result["outcomes"] = outcomes
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,5000000")
    parser.add_argument("--numbers", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--code", type=Path, help="PYTHONPATH of a baseline smsp_connector.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="push-diff-"))
    sides = [("ours", None)] + ([("baseline", args.code)] if args.code else [])
    print(f"# {platform.python_version()}, load {os.getloadavg()}, work {work}", flush=True)
    table: dict[tuple[int, str], list[dict[str, object]]] = {}
    run = 0
    for size in (int(value) for value in args.sizes.split(",")):
        with emulator(size) as server:
            timed_get(f"{server.base_url}/stop-sms/list", {"apiKey": API_KEY})
            for _ in range(args.repeat):
                for name, code in sides:
                    run += 1
                    result = one_run(server.base_url, numbers_file(work, run, args.numbers),
                                     work, code)  # fmt: skip
                    if result["outcomes"] != {"applied": args.numbers}:
                        raise RuntimeError(f"unexpected outcomes {result['outcomes']}")
                    table.setdefault((size, name), []).append(result)
                    print(
                        f"{size:>9,} {name:<8} {result['seconds']:6.2f} s "
                        f"{result['peak_mib']:6.0f} MiB  load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
    print("\n| list entries | code | median s | peak MiB (median) | runs (s) | runs (MiB) |")
    print("| ---: | --- | ---: | ---: | --- | --- |")
    for (size, name), results in table.items():
        seconds = [float(r["seconds"]) for r in results]
        peaks = [float(r["peak_mib"]) for r in results]
        print(
            f"| {size:,} | {name} | {statistics.median(seconds):.2f} | "
            f"{statistics.median(peaks):.0f} | {', '.join(f'{s:.2f}' for s in seconds)} | "
            f"{', '.join(f'{p:.0f}' for p in peaks)} |"
        )
    sizes = sorted({size for size, _ in table})
    for name, _ in sides:
        peaks = [statistics.median(float(r["peak_mib"]) for r in table[(s, name)]) for s in sizes]
        growth = peaks[-1] / peaks[0]
        print(f"- {name}: peak at {sizes[-1]:,} / peak at {sizes[0]:,} = {growth:.2f}")


if __name__ == "__main__":
    main()
