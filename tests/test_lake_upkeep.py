"""A DuckLake's upkeep (issue 17 §4): small files merged, old snapshots expired, unneeded files
deleted from the data path, on a real lake (PostgreSQL catalog), with nothing the warehouse
keeps lost; a dry run changes nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from smsp_connector.dagster import build_definitions
from smsp_connector.settings import Settings
from smsp_connector.warehouse import AuditEntry, AuditWriter, Outcome, Warehouse
from smsp_connector.warehouse.upkeep import NotALakeError, lake_upkeep

from .conftest import API_KEY
from .test_ducklake import Lake, lake  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow  # a PostgreSQL server

NOW = {"expire_older_than": timedelta(0), "delete_older_than": timedelta(0)}


def _files(lake: Lake) -> int:  # noqa: F811
    return sum(len(names) for _, _, names in os.walk(lake.data_path))


def _write_runs(warehouse: Warehouse, runs: int, rows: int = 2_000) -> None:
    """``runs`` runs of ``rows`` audit rows each: each run's insert is a Parquet file."""
    for run in range(runs):
        with AuditWriter(
            warehouse, run_id=f"r{run}", job="j", operation="add", dry_run=False
        ) as audit:
            audit.record(
                AuditEntry("f.csv", row, f"+336{row:08d}", Outcome.APPLIED) for row in range(rows)
            )


def _audit_rows(lake: Lake) -> int:  # noqa: F811
    return lake.query("SELECT count(*) FROM smsp.audit_log")[0][0]


def test_upkeep_merges_expires_and_deletes_and_keeps_every_row(lake):  # noqa: F811
    warehouse = lake.warehouse()
    _write_runs(warehouse, 4)
    before, rows = _files(lake), _audit_rows(lake)
    assert before >= 4 and rows == 8_000

    dry = lake_upkeep(warehouse, dry_run=True, **NOW)
    assert dry.dry_run and dry.files_merged == 0 and dry.snapshots_expired > 0
    assert _files(lake) == before and _audit_rows(lake) == rows

    done = lake_upkeep(warehouse, **NOW)

    assert done.files_merged >= 4 and done.files_created >= 1
    assert done.snapshots_expired == dry.snapshots_expired + 1  # the merge's own snapshot
    assert done.files_deleted == done.files_merged
    assert _files(lake) == before - done.files_merged + done.files_created
    assert _audit_rows(lake) == rows
    again = lake_upkeep(warehouse, **NOW)
    assert (again.files_merged, again.snapshots_expired, again.files_deleted) == (0, 0, 0)


def test_recent_snapshots_and_files_are_kept(lake):  # noqa: F811
    warehouse = lake.warehouse()
    _write_runs(warehouse, 3)

    kept = lake_upkeep(
        warehouse, expire_older_than=timedelta(days=30), delete_older_than=timedelta(days=7)
    )

    # Merged (the snapshots keep their view of the merged file), nothing expired or deleted.
    assert (kept.snapshots_expired, kept.files_deleted) == (0, 0)
    assert _audit_rows(lake) == 6_000


def test_a_duckdb_file_has_no_lake_to_keep(tmp_path):
    with pytest.raises(NotALakeError, match="not a DuckDB file"):
        lake_upkeep(Warehouse.at(tmp_path / "w.duckdb"), **NOW)


def test_smsp_lake_upkeep_reports_what_it_did(lake, tmp_path):  # noqa: F811
    _write_runs(lake.warehouse(), 3)
    env = {
        **os.environ,
        "SMSP_API_KEY": API_KEY,
        "SMSP_DUCKDB_PATH": lake.database,
        "SMSP_DUCKLAKE_DATA_PATH": lake.data_path,
        "SMSP_DUCKLAKE_METADATA_SCHEMA": lake.metadata_schema,
    }

    def smsp(*args: str, **overrides: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "smsp_connector.cli", "lake", "upkeep", *args],
            env={**env, **overrides},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    # The ages from the environment's settings, as the scheduled asset takes them.
    dry = smsp("--dry-run", SMSP_LAKE_EXPIRE_AFTER_DAYS="0", SMSP_LAKE_DELETE_AFTER_DAYS="0")
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout and "files merged" in dry.stdout
    assert re.search(r"snapshots expired\W+[1-9]", dry.stdout), dry.stdout
    kept = smsp("--dry-run")  # 30 and 7 days: nothing this young goes
    assert re.search(r"snapshots expired\W+0\b", kept.stdout), kept.stdout
    done = smsp("--expire-after-days", "0", "--delete-after-days", "0")
    assert done.returncode == 0, done.stderr
    assert _audit_rows(lake) == 6_000

    local = smsp(
        SMSP_DUCKDB_PATH=str(Path(tmp_path) / "w.duckdb"),
        SMSP_DUCKLAKE_DATA_PATH="",
        SMSP_DUCKLAKE_METADATA_SCHEMA="",
    )
    assert local.returncode == 1
    assert "lake upkeep is for a ducklake: warehouse" in local.stderr


# --- the upkeep asset, its job and schedule ---------------------------------------------------


def _lake_settings(lake: Lake, **overrides) -> Settings:  # noqa: F811
    return Settings(
        api_key=API_KEY,
        database=lake.database,
        data_path=lake.data_path,
        metadata_schema=lake.metadata_schema,
        **overrides,
    )


def test_the_upkeep_asset_reports_its_effect_and_a_dry_run_keeps_every_file(lake):  # noqa: F811
    built = build_definitions(
        _lake_settings(lake, lake_expire_after=timedelta(0), lake_delete_after=timedelta(0))
    )
    _write_runs(lake.warehouse(), 4)
    before, rows = _files(lake), _audit_rows(lake)
    job = built.job("smsp_lake_upkeep")

    dry = job.execute_in_process(
        run_config=built.keys.op_config(built.keys.lake_upkeep, dry_run=True)
    )
    assert dry.success
    (event,) = dry.get_asset_materialization_events()
    shown = {name: value.value for name, value in event.materialization.metadata.items()}
    assert shown["dry_run"] is True and shown["snapshots_expired"] > 0
    assert shown["files_before"] == shown["files_after"] == before == _files(lake)

    done = job.execute_in_process()

    assert done.success
    (event,) = done.get_asset_materialization_events()
    shown = {name: value.value for name, value in event.materialization.metadata.items()}
    assert shown["dry_run"] is False and shown["files_merged"] >= 4
    assert shown["files_before"] == before and shown["files_after"] == _files(lake) < before
    assert shown["expire_after_days"] == shown["delete_after_days"] == 0
    assert _audit_rows(lake) == rows
    print(
        f"\nlake upkeep: {shown['files_merged']} files merged into {shown['files_created']}, "
        f"{shown['snapshots_expired']} snapshots expired, {shown['files_deleted']} files "
        f"deleted: {shown['files_before']} -> {shown['files_after']} files in the data path"
    )


def test_the_upkeep_runs_on_its_schedule_with_the_settings_ages(lake):  # noqa: F811
    built = build_definitions(_lake_settings(lake))
    schedule = built.definitions.resolve_schedule_def("smsp_lake_upkeep_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 4 * * 0", "Europe/Paris")
    assert schedule.job_name == "smsp_lake_upkeep"
    _write_runs(lake.warehouse(), 3)

    # The default ages (30 days, 7 days) keep every recent snapshot and file.
    result = built.job("smsp_lake_upkeep").execute_in_process()
    (event,) = result.get_asset_materialization_events()
    shown = {name: value.value for name, value in event.materialization.metadata.items()}
    assert (shown["snapshots_expired"], shown["files_deleted"]) == (0, 0)
    assert (shown["expire_after_days"], shown["delete_after_days"]) == (30, 7)

    none = build_definitions(_lake_settings(lake, lake_upkeep_schedule=None, key_prefix="b"))
    assert "b__smsp_lake_upkeep_schedule" not in {s.name for s in none.definitions.schedules or []}
