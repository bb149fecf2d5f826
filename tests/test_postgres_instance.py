"""The Dagster instance on PostgreSQL (dagster-postgres), as docs/deploying.md §2.3 describes it.

A throwaway PostgreSQL (tests/postgres_server.py) holds the run, event log and schedule storage;
the Dagster command line materializes the stop list against the emulator and starts the daily
schedule, and the instance, opened again from the same ``dagster.yaml``, reads both back.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import dagster as dg
import duckdb
import psycopg
import pytest
from dagster._core.scheduler.instigation import InstigatorStatus

from .cli_helpers import ROOT, dagster_cli
from .conftest import API_KEY

pytestmark = pytest.mark.slow  # Dagster CLI subprocesses

STORAGE = """
storage:
  postgres:
    postgres_url:
      env: DAGSTER_PG_URL
"""
"""Appended to the repository's dagster.yaml (concurrency, run monitoring, telemetry)."""


@pytest.fixture
def pg_env(env, postgres_dsn, tmp_path) -> dict[str, str]:
    """``env`` with a DAGSTER_HOME whose storage is a fresh database of the session's server."""
    database = f"dagster_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    home = tmp_path / "pg_dagster_home"
    home.mkdir()
    shipped = (ROOT / "dagster_home" / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text(shipped.rstrip("\n") + "\n" + STORAGE)
    # postgresql+psycopg2: dagster-postgres 0.29 reads psycopg2's error codes (docs/deploying.md).
    url = postgres_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://")
    return {**env, "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": f"{url}/{database}"}


def test_runs_materializations_and_schedules_are_stored_in_postgres(pg_env, emulator, monkeypatch):
    emulator.state.seed_entries([("+33612345678", "2025-07-14 09:30:00")])
    # What docs/deploying.md §2.2-2.3 has a deployment run once, before the first runs.
    steps = [
        ("instance", "migrate"),
        ("instance", "concurrency", "set", "smsp_duckdb", "1"),
        ("asset", "materialize", "-m", "assets", "--select", "smsp/stop_list"),
        ("schedule", "start", "smsp_daily_refresh", "-w", "workspace.yaml"),
    ]
    for step in steps:
        done = dagster_cli(pg_env, *step)
        assert done.returncode == 0, f"dagster {' '.join(step)}: {done.stderr[-3000:]}"
        assert API_KEY not in done.stdout + done.stderr

    with duckdb.connect(pg_env["SMSP_DUCKDB_PATH"], read_only=True) as conn:
        assert conn.execute("SELECT phone_number FROM smsp.stop_list").fetchall() == [
            ("+33612345678",)
        ]
    home = Path(pg_env["DAGSTER_HOME"])
    assert not (home / "history").exists(), "nothing went to SQLite"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_URL", pg_env["DAGSTER_PG_URL"])
    with dg.DagsterInstance.get() as instance:
        storages = {
            type(instance.run_storage).__name__,
            type(instance.event_log_storage).__name__,
            type(instance.schedule_storage).__name__,
        }
        assert storages == {
            "PostgresRunStorage",
            "PostgresEventLogStorage",
            "PostgresScheduleStorage",
        }
        runs = instance.get_runs()
        assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS]
        event = instance.get_latest_materialization_event(dg.AssetKey(["smsp", "stop_list"]))
        assert event is not None and event.run_id == runs[0].run_id
        assert event.asset_materialization.metadata["dagster/row_count"].value == 1
        states = {state.instigator_name: state for state in instance.all_instigator_state()}
        assert states["smsp_daily_refresh"].status is InstigatorStatus.RUNNING
        assert instance.event_log_storage.get_concurrency_info("smsp_duckdb").slot_count == 1
    # The same rows, read from PostgreSQL itself.
    with psycopg.connect(pg_env["DAGSTER_PG_URL"].replace("+psycopg2", "")) as conn:
        (stored_runs,) = conn.execute("SELECT count(*) FROM runs").fetchone()
        (schedules,) = conn.execute(
            "SELECT count(*) FROM jobs WHERE job_body LIKE '%smsp_daily_refresh%'"
        ).fetchone()
    assert stored_runs == 1
    assert schedules == 1
    shutil.rmtree(home, ignore_errors=True)
