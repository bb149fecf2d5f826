"""A DuckLake's upkeep (issue 17 §4): small files merged, old snapshots expired, unneeded files
deleted from the data path, on a real lake (PostgreSQL catalog), with nothing the warehouse
keeps lost; a dry run changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

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

    dry = smsp("--dry-run", "--expire-after-days", "0", "--delete-after-days", "0")
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout and "files merged" in dry.stdout
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
