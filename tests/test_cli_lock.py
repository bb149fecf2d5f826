"""``smsp`` and a second process on the DuckDB file: it waits for the lock with backoff, holds
one connection for the whole run, or gives up in one line before any call is sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import API_KEY

pytestmark = pytest.mark.slow  # smsp and a lock-holding process, in subprocesses

HOLD = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
conn.close()
"""


def _holder(database: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(database), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def _push(emulator, tmp_path: Path, wait: str) -> subprocess.CompletedProcess:
    source = tmp_path / "opt_outs.csv"
    source.write_text("phone\n0612345678\n0698765432\n", encoding="utf-8")
    env = {
        **os.environ,
        "SMSP_API_KEY": API_KEY,
        "SMSP_BASE_URL": emulator.base_url,
        "SMSP_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "SMSP_LOCK_WAIT_SECONDS": wait,
    }
    return subprocess.run(
        [sys.executable, "-m", "smsp_connector.cli", "push", str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_held_file_is_one_line_naming_the_holder_and_nothing_is_sent(emulator, tmp_path):
    holder = _holder(tmp_path / "warehouse.duckdb", 60)
    try:
        done = _push(emulator, tmp_path, wait="1")
    finally:
        holder.kill()
        holder.wait()

    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert "warehouse.duckdb is locked by" in line and f"(PID {holder.pid})" in line
    assert "Nothing was sent" in line
    assert emulator.stats()["endpoints"] == {}, "no call reached the provider"


def test_the_command_waits_for_the_other_process_to_let_go(emulator, tmp_path):
    holder = _holder(tmp_path / "warehouse.duckdb", 2)
    try:
        done = _push(emulator, tmp_path, wait="60")
    finally:
        holder.wait()

    assert done.returncode == 0, done.stderr
    assert emulator.state.has_number("+33612345678")
    assert emulator.state.has_number("+33698765432")
