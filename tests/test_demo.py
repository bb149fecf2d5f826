"""`smsp demo` (what `make demo` runs) tells the whole story and ends cleanly."""

from __future__ import annotations

import subprocess
import sys

import duckdb

from smsp_connector.demo import run_demo


def test_demo_walks_through_every_step(tmp_path):
    lines: list[str] = []

    run_demo(lines.append, demo_size=10, output=tmp_path / "demo")

    text = "\n".join(lines)
    assert "1. Extract the stop list into DuckDB (Dagster run): run" in text
    assert "materialized smsp/stop_list                   row_count 10, entered 10" in text
    assert "'3.36123E+10'            -> rejected" in text
    assert "+262692123456    applied" in text
    assert "already_done (code 4: already gone)" in text
    assert "cancel again: already_done (code 5: already cancelled)" in text
    assert "materialized smsp/stop_list                   row_count 12, entered 3, left 1" in text
    assert "stop-sms/add     code:200 x3, code:3 x1, code:9 x1" in text
    assert "FAILED" not in text
    with duckdb.connect(str(tmp_path / "demo" / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM smsp.stop_list").fetchone() == (12,)


def test_demo_command_exits_zero_without_warnings(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "smsp_connector.cli", "demo", "--demo-size", "5"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "status after:  Cancelled" in done.stdout
    assert "Warning" not in done.stderr
    assert (tmp_path / "demo_output" / "exports" / "suppression_list.csv").exists()
