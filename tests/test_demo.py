"""`smsp demo` (what `make demo` runs) tells the whole story and ends cleanly."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from smsp_connector.cli.demo import run_demo

pytestmark = pytest.mark.slow  # the demo, in process and as a subprocess


def test_demo_walks_through_every_step(tmp_path):
    lines: list[str] = []

    run_demo(lines.append, demo_size=10, output=tmp_path / "demo")

    text = "\n".join(lines)
    assert "FAILED" not in text and "checks that did not pass" not in text
    assert "smsp/stop_list                 row_count 10, entered 10, left 0" in text
    assert "requested 7, invalid 2, duplicates 1, already_on_list 1, to_add 3, added 3" in text
    assert "scientific_notation" in text and "not_a_number" in text
    assert "planned 1, deleted 0, already_gone 0, rejected 0, failed 0, dry_run True" in text
    assert "planned 1, deleted 1, already_gone 0, rejected 0, failed 0, dry_run False" in text
    assert "no consent evidence" in text and "the opt-out stands" in text
    assert "cancelled 1, already_cancelled 0" in text
    assert "cancelled 0, already_cancelled 1" in text
    assert "stop-sms/add     code:200 x3" in text
    with duckdb.connect(str(tmp_path / "demo" / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM smsp.stop_list").fetchone() == (12,)
        outcomes = dict(
            conn.execute(
                "SELECT outcome, count(*) FROM smsp.audit_latest WHERE NOT dry_run GROUP BY 1"
            ).fetchall()
        )
    assert outcomes["applied"] == 5  # 3 adds, 1 deletion, 1 cancellation


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
    assert "already_cancelled 1" in done.stdout
    assert "Warning" not in done.stderr
    assert (tmp_path / "demo_output" / "exports" / "suppression_list.csv").exists()


def test_a_failed_step_stops_the_demo_with_its_cause(tmp_path, monkeypatch):
    """A run that fails ends the demo with the step's own error, not a later, unrelated one
    (the next query used to fail with DuckDB's "different configuration")."""
    from smsp_connector.cli.demo import DemoFailed
    from smsp_connector.operations import run

    def broken_push(*args, **kwargs):
        raise RuntimeError("the provider vanished mid-push")

    monkeypatch.setattr(run, "push_numbers", broken_push)
    lines: list[str] = []

    with pytest.raises(DemoFailed) as failed:
        run_demo(lines.append, demo_size=5, output=tmp_path / "demo")

    assert "the provider vanished mid-push" in str(failed.value)
    assert "smsp__stop_list_additions" in str(failed.value)
    assert "different configuration" not in "\n".join(lines) + str(failed.value)
    assert "stop_list_deletions" not in "\n".join(lines), "nothing runs after the failure"
