"""The extract assets materialized against the emulator into a temporary DuckDB file."""

from __future__ import annotations

import csv
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pytest

from smsp_connector.dagster import build_definitions
from smsp_connector.dagster.resource import SmspResource

from .conftest import API_KEY
from .instances import instance_for_test
from .pipeline_helpers import (
    PipelineRig,
    check_results,
    materialization_metadata,
    materialized_keys,
)

pytestmark = pytest.mark.heavy

ALL_ASSETS = {
    "smsp/stop_list",
    "smsp/stop_list_history",
    "smsp/opt_out_ledger",
    "smsp/suppression_export",
    "smsp/suppression_export_sha256",
}


@pytest.fixture
def rig(emulator, tmp_path):
    with instance_for_test() as instance:
        yield PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)


def _seed(rig: PipelineRig, *numbers: str, created_at: str = "2025-07-14 09:30:00") -> None:
    rig.emulator.state.seed_entries((number, created_at) for number in numbers)


def _csv_rows(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_happy_path_persists_validates_and_exports(rig):
    _seed(rig, "+33612345678", "+33698765432", "+262692123456")

    result = rig.materialize()

    assert result.success
    assert materialized_keys(result) == ALL_ASSETS
    assert {name: c.passed for name, c in check_results(result).items()} == {
        "schema_valid": True,
        "stop_ids_unique": True,
        "phone_numbers_unique": True,
        "no_sudden_shrink": True,
        "opt_outs_honoured_in_time": True,
    }
    rows = rig.query(
        "SELECT phone_number, created_at, typeof(stop_id), typeof(created_at) "
        "FROM smsp.stop_list ORDER BY stop_id"
    )
    assert [row[0] for row in rows] == ["+33612345678", "+33698765432", "+262692123456"]
    # 09:30 in Paris in July is 07:30 UTC (summer time, UTC+2).
    assert rows[0][1] == datetime(2025, 7, 14, 7, 30, tzinfo=UTC)
    assert rows[0][2:] == ("BIGINT", "TIMESTAMP WITH TIME ZONE")
    metadata = materialization_metadata(result, "smsp/stop_list")
    assert metadata["dagster/row_count"] == 3
    assert metadata["entered"] == 3 and metadata["left"] == 0
    assert metadata["preview"].records[0].data["phone_number"] == "+336•••••678"  # masked

    plain = _csv_rows(rig.export_dir / "suppression_list.csv")
    assert [row["phone_number"] for row in plain] == [r[0] for r in rows]
    assert plain[0]["opted_out_at_utc"] == "2025-07-14T07:30:00Z"
    hashed = _csv_rows(rig.export_dir / "suppression_list_sha256.csv")
    assert hashed[0]["phone_sha256"] == hashlib.sha256(b"+33612345678").hexdigest()
    assert "phone_number" not in hashed[0]
    parquet = duckdb.sql(
        f"SELECT phone_number FROM '{rig.export_dir / 'suppression_list.parquet'}'"
    ).fetchall()
    assert [r[0] for r in parquet] == [r[0] for r in rows]
    export_metadata = materialization_metadata(result, "smsp/suppression_export")
    assert export_metadata["dagster/row_count"] == 3
    assert export_metadata["path"].endswith("suppression_list.csv")


def test_an_empty_list_still_leaves_an_empty_typed_table(rig):
    result = rig.materialize()

    assert result.success
    assert rig.query("SELECT count(*) FROM smsp.stop_list") == [(0,)]
    columns = rig.query(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'smsp' AND table_name = 'stop_list' ORDER BY ordinal_position"
    )
    assert columns == [
        ("stop_id", "BIGINT"),
        ("phone_number", "VARCHAR"),
        ("created_at", "TIMESTAMP WITH TIME ZONE"),
        ("extracted_at", "TIMESTAMP WITH TIME ZONE"),
    ]
    assert _csv_rows(rig.export_dir / "suppression_list.csv") == []


def test_invalid_provider_rows_fail_the_schema_check_and_block_exports(rig):
    _seed(rig, "+33612345678", "0612", "+33 6 12", "=HYPERLINK(1)")
    rig.emulator.state.seed_entries([("+33698765432", "not a date")])

    result = rig.materialize()

    assert not result.success
    assert materialized_keys(result) == set(), "not published; history and exports blocked"
    schema = check_results(result)["schema_valid"]
    assert not schema.passed
    assert schema.metadata["failing_rows"].value == 4
    report = schema.metadata["failure_cases"].value
    for bad in ("'0612'", "'+33 6 12'", "'=HYPERLINK(1)'", "'not a date'"):
        assert bad in report
    assert rig.query("SELECT valid, status FROM smsp.stop_list_snapshots") == [(False, "rejected")]
    assert not (rig.export_dir / "suppression_list.csv").exists()


def test_history_tracks_numbers_entering_and_leaving_across_snapshots(rig):
    state = rig.emulator.state
    _seed(rig, "+33611111111", "+33622222222", "+33633333333")
    assert rig.materialize().success

    state.delete_stop(state.stop_id_for("+33611111111"))
    state.add_stop("+33644444444")
    second = rig.materialize()
    state.delete_stop(state.stop_id_for("+33644444444"))
    state.add_stop("+33611111111")
    third = rig.materialize()

    assert second.success and third.success
    assert materialization_metadata(second, "smsp/stop_list_history")["entered"] == 1
    assert materialization_metadata(second, "smsp/stop_list_history")["left"] == 1
    changes = rig.query(
        "SELECT snapshot_run_id, change, phone_number, first_seen_at < last_seen_at "
        "FROM smsp.stop_list_history ORDER BY observed_at, change, phone_number"
    )
    runs = [second.run_id, third.run_id]
    assert [c[1:3] for c in changes if c[0] == runs[0]] == [
        ("entered", "+33644444444"),
        ("left", "+33611111111"),
    ]
    assert [c[1:3] for c in changes if c[0] == runs[1]] == [
        ("entered", "+33611111111"),
        ("left", "+33644444444"),
    ]
    # +33644444444 was seen in one snapshot only: first seen = last seen.
    assert [c[3] for c in changes if c[0] == runs[1] and c[1] == "left"] == [False]
    presence = dict(rig.query("SELECT phone_number, listed FROM smsp.stop_list_presence"))
    assert presence == {
        "+33611111111": True,
        "+33622222222": True,
        "+33633333333": True,
        "+33644444444": False,
    }


def test_sudden_shrink_blocks_history_and_exports_until_accepted(rig):
    state = rig.emulator.state
    numbers = [f"+3361000000{n}" for n in range(10)]
    _seed(rig, *numbers)
    assert rig.materialize().success
    for number in numbers[:5]:
        state.delete_stop(state.stop_id_for(number))

    blocked = rig.materialize()

    assert not blocked.success
    shrink = check_results(blocked)["no_sudden_shrink"]
    assert not shrink.passed
    assert shrink.metadata["lost_share"].value == 0.5
    assert materialized_keys(blocked) == set()
    assert len(_csv_rows(rig.export_dir / "suppression_list.csv")) == 10, "export left as it was"

    accepted = rig.materialize({"ops": {"smsp__stop_list": {"config": {"accept_shrink": True}}}})

    assert accepted.success
    assert len(_csv_rows(rig.export_dir / "suppression_list.csv")) == 5


def test_duplicate_numbers_warn_without_blocking(rig):
    _seed(rig, "+33612345678", "+33612345678", "+33698765432")

    result = rig.materialize()

    assert result.success
    duplicates = check_results(result)["phone_numbers_unique"]
    assert not duplicates.passed
    assert duplicates.severity == dg.AssetCheckSeverity.WARN
    assert duplicates.metadata["duplicated_rows"].value == 2
    assert len(_csv_rows(rig.export_dir / "suppression_list.csv")) == 3


def test_paris_times_become_utc_instants_across_daylight_saving(rig):
    _seed(rig, "+33611111111", created_at="2025-01-15 12:00:00")
    _seed(rig, "+33622222222", created_at="2025-10-26 02:30:00")  # the repeated hour

    assert rig.materialize().success

    rows = dict(rig.query("SELECT phone_number, created_at FROM smsp.stop_list"))
    assert rows["+33611111111"] == datetime(2025, 1, 15, 11, 0, tzinfo=UTC)
    assert rows["+33622222222"] == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # summer time
    assert rows["+33622222222"] - rows["+33611111111"] > timedelta(days=200)


def test_a_duckdb_file_named_like_the_schema_works(rig, tmp_path):
    # DuckDB names the catalog after the file: in smsp.duckdb, "smsp.stop_list" is ambiguous.
    rig.duckdb_path = tmp_path / "smsp.duckdb"
    _seed(rig, "+33612345678")

    assert rig.materialize().success
    assert rig.materialize().success
    assert rig.query("SELECT count(*) FROM smsp.smsp.stop_list_snapshots") == [(2,)]


def test_the_api_key_is_nowhere_in_events_tables_or_files(rig):
    _seed(rig, "+33612345678")

    result = rig.materialize()

    assert result.success
    events = rig.instance.all_logs(result.run_id)
    assert events, "the run wrote events"
    assert not [event for event in events if API_KEY in repr(event)]
    for path in [rig.duckdb_path, *rig.export_dir.iterdir()]:
        assert API_KEY.encode() not in path.read_bytes(), path.name
    resource = SmspResource(api_key=API_KEY, base_url=rig.emulator.base_url)
    assert API_KEY not in repr(resource)


@pytest.mark.repo  # this repository's code location, assets/
def test_the_daily_schedule_refreshes_every_extract_asset_in_paris_time():
    from assets import defs

    schedule = defs.get_schedule_def("smsp_daily_refresh")
    job = defs.resolve_job_def("smsp_refresh")

    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.execution_timezone == "Europe/Paris"
    assert schedule.job_name == "smsp_refresh"
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == ALL_ASSETS


def test_the_hmac_export_runs_when_its_key_is_set_and_never_shows_it(rig, monkeypatch):
    key = "hmac-key-" + API_KEY
    monkeypatch.setenv("SMSP_EXPORT_HMAC_KEY", key)
    _seed(rig, "+33612345678")
    extract = build_definitions(rig.settings(hmac_key_var="SMSP_EXPORT_HMAC_KEY")).extract

    result = rig.run(extract.assets)

    assert result.success
    assert "smsp/suppression_export_hmac_sha256" in materialized_keys(result)
    [row] = _csv_rows(rig.export_dir / "suppression_list_hmac_sha256.csv")
    digest = hmac.new(key.encode(), b"+33612345678", hashlib.sha256).hexdigest()
    assert row["phone_hmac_sha256"] == digest
    assert not [e for e in rig.instance.all_logs(result.run_id) if key in repr(e)]
    assert rig.defs.extract.export_hmac is None, "no key variable named: no HMAC export"
