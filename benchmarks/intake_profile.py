"""Where `smsp push --dry-run FILE` spends its time and memory, step by step.

    .venv/bin/python benchmarks/intake_profile.py /tmp/ib/crm_1000000_cp1252.csv

Runs the command in a fresh process against `smsp emulator` (no rate limit, a fresh DuckDB
file), with the intake's and the push's steps wrapped: each step's total seconds (a step inside
another counts in both) and the process's RSS and peak RSS after it. Files come from
`intake_bench.py --work DIR`. No sampling profiler: its overhead on a million Python calls is
larger than the steps it measures.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from push_common import API_KEY, emulator

STEPS = (
    ("smsp_connector.intake.frames", "read_table"),
    ("smsp_connector.intake.frames", "_outcome_columns"),
    ("smsp_connector.intake.frames", "_duplicate_of_row"),
    ("smsp_connector.intake.frames", "_validated"),
    ("smsp_connector.intake.frames", "phone_intake_frame"),
    ("smsp_connector.operations.run", "_record_rejections"),
    ("smsp_connector.operations.push", "_listed"),
    ("smsp_connector.operations.push", "plan_intake"),
    ("smsp_connector.operations.push", "record_unusable_rows"),
    ("smsp_connector.operations.run", "unsent_rows"),
)

CHILD = r"""
import functools, importlib, sys, time
from smsp_connector.warehouse.audit import AuditWriter

def memory():
    status = open("/proc/self/status").read()
    return [int(status.split(key)[1].split()[0]) // 1024 for key in ("VmRSS:", "VmHWM:")]

spent, after = {}, {}
def wrap(owner, name, label):
    original = getattr(owner, name)
    @functools.wraps(original)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - start
            after[label] = memory()
    setattr(owner, name, timed)

for module, name in STEPS:
    wrap(importlib.import_module(module), name, name)
wrap(AuditWriter, "record", "audit rows written (AuditWriter.record)")
from smsp_connector.cli.main import main
start = time.perf_counter()
sys.argv = ["smsp", "push", "--dry-run", FILE]
try:
    main()
except SystemExit:
    pass
print(f"PROFILE total {time.perf_counter() - start:.2f} s, peak {memory()[1]} MiB", file=sys.stderr)
for label, seconds in spent.items():
    rss, peak = after[label]
    line = f"{label:45s} {seconds:6.2f} s   RSS after {rss:5d} MiB, peak {peak:5d}"
    print("PROFILE " + line, file=sys.stderr)
"""


def main(path: str) -> None:
    with tempfile.TemporaryDirectory() as work, emulator(0) as server:
        env = {
            **os.environ,
            "SMSP_API_KEY": API_KEY,
            "SMSP_BASE_URL": server.base_url,
            "SMSP_DUCKDB_PATH": str(Path(work) / "profile.duckdb"),
            "SMSP_RATE_LIMIT": "1000",
        }
        code = f"STEPS = {STEPS!r}\nFILE = {str(Path(path).resolve())!r}\n{CHILD}"
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    lines = [line[8:] for line in done.stderr.splitlines() if line.startswith("PROFILE ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"smsp push failed ({done.returncode}):\n{done.stderr[-2000:]}")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
