"""What the extraction workers of `extract_bench.py` share: arguments in, one result line out.

Standard library only: the dlt worker may run under another virtual environment's interpreter.
Each worker is one fresh process that extracts the stop list once; it imports its libraries at
module level, then calls `run_worker`, which times only the extraction itself (under cProfile,
its statistics written to the file `EXTRACT_PROFILE` names, when that variable is set).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

# The parent reads the last stdout line that starts with this (libraries may print too).
RESULT_PREFIX = "EXTRACT-RESULT "


@dataclass(frozen=True)
class WorkerArgs:
    base_url: str
    api_key: str
    duckdb_path: str
    work_dir: str


@dataclass(frozen=True)
class WorkerResult:
    ready_at: float  # time.time() once imports and setup are done: the parent knows the spawn
    setup_peak_mib: float  # peak RSS before the extraction starts (interpreter + imports + setup)
    extract_seconds: float
    peak_mib: float  # peak RSS of the whole process (and of any child it waited for)


def peak_rss_mib() -> float:
    """Peak resident set size so far, of this process or of a reaped child (Linux: KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def parse_args() -> WorkerArgs:
    parser = argparse.ArgumentParser(description="Extract the stop list once (a bench worker).")
    for name in ("--base-url", "--api-key", "--duckdb-path", "--work-dir"):
        parser.add_argument(name, required=True)
    return WorkerArgs(**vars(parser.parse_args()))


def run_worker(prepare: Callable[[WorkerArgs], Callable[[], object]]) -> None:
    """`prepare` does the untimed setup and returns the extraction, which is timed alone."""
    extract = prepare(parse_args())
    ready_at = time.time()
    setup_peak = peak_rss_mib()
    started = time.perf_counter()
    if profile := os.environ.get("EXTRACT_PROFILE"):  # a cProfile of the extraction alone
        cProfile.runctx("extract()", globals(), {"extract": extract}, profile)
    else:
        extract()
    seconds = time.perf_counter() - started
    result = WorkerResult(ready_at, setup_peak, seconds, peak_rss_mib())
    print(RESULT_PREFIX + json.dumps(asdict(result)), flush=True)
