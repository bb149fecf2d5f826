"""A push killed with SIGKILL mid-way, then run again: nothing lost, nothing sent twice."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import dagster as dg
import duckdb
import pytest

from smsp_connector.emulator import FaultSettings

from .cli_helpers import DAGSTER, ROOT, dagster_cli

# A killed dagster subprocess, running this repository's code location (assets/).
pytestmark = [pytest.mark.slow, pytest.mark.repo]

NUMBERS = [f"+3362{n:07d}" for n in range(3_000)]


def _fresh_adds(emulator) -> int:
    return emulator.stats()["endpoints"].get("stop-sms/add", {}).get("code:200", 0)


def test_a_killed_push_rerun_ends_complete_without_duplicate_adds(env, emulator, tmp_path):
    emulator.faults = FaultSettings(latency_ms=20)
    source = tmp_path / "numbers.csv"
    source.write_text("phone\n" + "\n".join(NUMBERS) + "\n", encoding="utf-8")
    config = tmp_path / "run.yaml"
    config.write_text(
        f"ops:\n  smsp__stop_list_additions:\n    config:\n      csv_path: '{source}'\n"
    )
    arguments = ["job", "execute", "-m", "assets", "-j", "push_stop_numbers", "-c", str(config)]

    killed = subprocess.Popen(
        [DAGSTER, *arguments],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while _fresh_adds(emulator) < 400 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
    added_before_kill = _fresh_adds(emulator)
    assert 400 <= added_before_kill < len(NUMBERS), "killed in the middle of the push"

    # What run monitoring does in `dagster dev`: mark the dead run failed, free its pool slot.
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        [dead] = instance.get_runs()
        instance.report_run_failed(dead)
        instance.event_log_storage.free_concurrency_slots_for_run(dead.run_id)

    rerun = dagster_cli(env, *arguments, timeout=300)

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    listed = {entry.phone_number for entry in emulator.state.stop_entries()}
    assert listed == set(NUMBERS), "every valid number is on the list"
    assert _fresh_adds(emulator) == len(NUMBERS), "no number was added twice"
    with duckdb.connect(env["SMSP_DUCKDB_PATH"], read_only=True) as conn:
        killed_run = conn.execute(
            "SELECT count(*) FILTER (WHERE outcome = 'pending'), count(*) "
            "FROM smsp.audit_log WHERE run_id = ?",
            [dead.run_id],
        ).fetchone()
        final = conn.execute(
            "SELECT source_row, outcome FROM smsp.audit_latest WHERE run_id <> ? "
            "ORDER BY source_row",
            [dead.run_id],
        ).fetchall()
    assert killed_run[0] > 0, "the killed run's write-ahead rows survived the kill"
    assert [row for row, _ in final] == list(range(2, len(NUMBERS) + 2)), "every input row"
    outcomes = {outcome for _, outcome in final}
    assert outcomes == {"applied", "already_on_list"}
