"""The opt-out ledger (issue 18, item 1): one row per number and opt-out episode, derived from
the audit log, the list's history and the plans, over the emulator and a real DuckDB file."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smsp_connector.operations.context import RunContext
from smsp_connector.operations.extract import extract_stop_list
from smsp_connector.operations.inputs import PhoneFile, PhoneValues
from smsp_connector.operations.run import Delete, Push, run_operation
from smsp_connector.warehouse import Warehouse, record_source_reads, update_history
from smsp_connector.warehouse.ledger import ledger_rows

from .instances import instance_for_test

pytestmark = pytest.mark.heavy


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    return Warehouse.at(tmp_path / "warehouse.duckdb")


def _run(operation, source, client, warehouse, run_id):
    context = RunContext(
        client=client, warehouse=warehouse, run_id=run_id, job="test", account="smsp"
    )
    return run_operation(operation, source, context)


def _refresh(client, warehouse, run_id):
    extract_stop_list(client, warehouse, run_id=run_id, max_shrink_share=1.0)
    update_history(warehouse)


def test_a_numbers_whole_story_push_listing_deletion_and_opt_out_again(
    emulator, client, warehouse, tmp_path
):
    path = tmp_path / "crm.csv"
    path.write_text("Nom;Portable\nDupont;06 12 34 56 78\n", encoding="utf-8")
    _run(Push(), PhoneFile(path), client, warehouse, "push-1")
    _refresh(client, warehouse, "refresh-1")
    consent = datetime.now(UTC).isoformat()
    values = PhoneValues(
        ["+33 6 12 34 56 78"], {"consent_at": consent, "consent_source": "web form #8812"}
    )
    _run(Delete(confirm=True), values, client, warehouse, "delete-1")
    _refresh(client, warehouse, "refresh-2")
    _run(Push(), PhoneValues(["0612345678"]), client, warehouse, "push-2")
    _refresh(client, warehouse, "refresh-3")

    first, second = ledger_rows(warehouse, "+33612345678")

    assert (first.episode, first.origin, first.status) == (1, "connector", "ended")
    assert (first.received_from, first.received_row, first.received_run_id) == (
        str(path),
        2,
        "push-1",
    )
    assert first.sent_run_id == "push-1" and first.sent_outcome == "applied"
    assert first.sent_plan_id is not None
    assert first.listed_at is not None and first.honoured_at == first.sent_at
    assert first.ended_by == "deletion" and first.deletion_run_id == "delete-1"
    assert first.consent_source == "web form #8812" and first.deletion_plan_id is not None
    assert (second.episode, second.origin, second.status) == (2, "connector", "honoured")
    assert second.received_run_id == "push-2" and second.received_at > first.ended_at
    assert second.ended_at is None


def test_an_opt_out_the_provider_received_itself_starts_on_its_list(emulator, client, warehouse):
    emulator.state.seed_entries([("+33698765432", "2026-03-03 09:15:00")])
    _refresh(client, warehouse, "refresh-1")

    [row] = ledger_rows(warehouse, "+33698765432")

    assert (row.origin, row.status) == ("provider", "honoured")
    assert row.received_at is None and row.honoured_at == row.listed_at
    assert row.provider_opted_out_at == datetime(2026, 3, 3, 8, 15, tzinfo=UTC)


def test_a_dry_run_receipt_is_pending_until_applied(emulator, client, warehouse):
    _run(Push(dry_run=True), PhoneValues(["0611111111"]), client, warehouse, "dry")

    [row] = ledger_rows(warehouse, "+33611111111")

    assert (row.status, row.received_run_id, row.honoured_at) == ("pending", "dry", None)


def test_smsp_ledger_tells_a_numbers_story_in_any_input_form(emulator, tmp_path):
    """``smsp ledger`` over the CLI, as an operator answers "when did you stop writing to
    them?": the number as the person gave it, the story in a few lines, or JSON."""
    import json
    import os
    import subprocess
    import sys

    from .conftest import API_KEY

    env = {
        **os.environ,
        "SMSP_API_KEY": API_KEY,
        "SMSP_BASE_URL": emulator.base_url,
        "SMSP_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
    }

    def smsp(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "smsp_connector.cli", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert smsp("push", "-n", "06 12 34 56 78").returncode == 0
    story = smsp("ledger", "0033 6 12 34 56 78")
    as_json = smsp("ledger", "+33612345678", "--format", "json")
    nobody = smsp("ledger", "06 98 76 54 32")
    wrong = smsp("ledger", "not a number")

    assert story.returncode == 0, story.stderr
    first, received, sent, honoured = story.stdout.splitlines()
    assert first == "+33612345678, opt-out 1 (honoured, from the connector)"
    assert received.split()[0] == "received" and "command line row 1" in received
    assert sent.split()[0] == "sent" and ": applied (plan " in sent
    assert honoured.split()[0] == "honoured"
    [episode] = json.loads(as_json.stdout)
    assert episode["status"] == "honoured" and episode["sent_outcome"] == "applied"
    assert "no opt-out received, sent or listed" in nobody.stdout
    assert wrong.returncode == 1 and wrong.stderr.startswith("Error: 'not a number'")


def test_an_opt_out_waiting_past_the_deadline_fails_the_blocking_check(emulator, tmp_path):
    """A dry run's number, never applied, received two days ago: overdue against 24 h. The
    check fails with the count, the oldest wait and the row, the number only as its SHA-256;
    the honoured ones feed the numbers the UI plots."""
    import hashlib

    import duckdb

    from .pipeline_helpers import PipelineRig, check_results, materialization_metadata

    with instance_for_test() as instance:
        rig = PipelineRig(emulator, tmp_path / "w.duckdb", tmp_path / "exports", instance)
        settings = rig.settings()
        warehouse = Warehouse.at(settings.database)
        with settings.client() as client:
            _run(Push(dry_run=True), PhoneValues(["0611111111"]), client, warehouse, "dry")
            _run(Push(), PhoneValues(["0622222222"]), client, warehouse, "push")
        with duckdb.connect(settings.database) as conn:
            conn.execute(
                "UPDATE smsp.audit_log SET recorded_at = recorded_at - INTERVAL 2 DAY "
                "WHERE run_id = 'dry'"
            )

        result = rig.materialize()

    check = check_results(result)["opt_outs_honoured_in_time"]
    assert not check.passed
    shown = {name: value.value for name, value in check.metadata.items()}
    assert shown["overdue"] == 1 and 47.9 < shown["oldest_wait_hours"] < 48.5
    [overdue] = shown["overdue_rows"].records
    assert overdue.data["phone_sha256"] == hashlib.sha256(b"+33611111111").hexdigest()
    assert "+33611111111" not in repr(check.metadata) + repr(result.all_events)
    metadata = materialization_metadata(result, "smsp/opt_out_ledger")
    assert metadata["opt_outs_received"] == 2 and metadata["opt_outs_honoured"] == 1
    assert metadata["opt_outs_overdue"] == 1 and metadata["honour_hours_median"] >= 0


# The incremental ledger (ledger_episodes) against the view it keeps: any batches of events,
# late ones (older than what a refresh saw) and numbers changed in place included, refreshed at
# any points, hold exactly the view's rows.

from datetime import timedelta  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from smsp_connector.warehouse.ledger import refresh_ledger  # noqa: E402

from .warehouses import kept_open  # noqa: E402

_NUMBERS = ("+33600000001", "+33600000002", "+33600000003")
_event = st.tuples(
    st.sampled_from(_NUMBERS),
    st.integers(0, 60),
    st.sampled_from(("receive", "send", "list", "leave", "delete", "rename")),
)
_batches = st.lists(st.tuples(st.lists(_event, max_size=5), st.booleans()), max_size=5)


def _apply(conn, tables, number: str, day: int, kind: str) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day)
    if kind == "rename":  # a retention purge's in-place change of a number everywhere
        for table, column in ((tables.audit_log, "target"), (tables.history, "phone_number")):
            conn.execute(
                f"UPDATE {table} SET {column} = ? WHERE {column} = ?", [f"hmac:{number}", number]
            )
    elif kind in ("list", "leave"):
        conn.execute(
            f"INSERT INTO {tables.history} (observed_at, snapshot_run_id, change, phone_number, "
            "first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)",
            [at, f"r{day}", "entered" if kind == "list" else "left", number, at, at],
        )
    else:
        conn.execute(
            f"INSERT INTO {tables.audit_log} (recorded_at, run_id, job, operation, dry_run, "
            "target, outcome, plan_id) VALUES (?, ?, 'test', ?, ?, ?, 'applied', ?)",
            [at, f"run{day}", "delete" if kind == "delete" else "add", kind == "receive",
             number, f"plan{day}"],
        )  # fmt: skip


def _rows(conn, table: str) -> list[tuple]:
    return sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=_batches)
def test_the_incremental_ledger_always_holds_the_views_rows(tmp_path_factory, batches):
    with kept_open(tmp_path_factory.mktemp("ledger") / "w.duckdb") as warehouse:
        for events, refresh in batches:
            with warehouse.connect() as (conn, tables):
                for event in events:
                    _apply(conn, tables, *event)
            if refresh:
                refresh_ledger(warehouse)

        refresh_ledger(warehouse)

        with warehouse.connect() as (conn, tables):
            assert _rows(conn, tables.ledger_episodes) == _rows(conn, tables.ledger)
        assert refresh_ledger(warehouse) == 0, "nothing changed: nothing derived again"


def test_a_warehouse_whose_ledger_another_version_derived_is_made_again(tmp_path):
    """Found in review: a lake keeps its view (its DDL creates views only when missing), and
    a stale incremental copy would never be derived again. Another version in ledger_state
    replaces the view and empties the copy; the next refresh derives every number."""
    path = tmp_path / "w.duckdb"
    warehouse = Warehouse.at(path)
    with warehouse.connect() as (conn, tables):
        _apply(conn, tables, "+33600000001", 1, "send")
    refresh_ledger(warehouse)
    with warehouse.connect() as (conn, tables):
        conn.execute(f"UPDATE {tables.ledger_episodes} SET status = 'stale'")
        conn.execute(f"CREATE OR REPLACE VIEW {tables.ledger} AS SELECT 1 AS old")
        conn.execute(f"UPDATE {tables.ledger_state} SET version = 'older'")

    again = Warehouse.at(path)
    assert refresh_ledger(again) == 1

    with again.connect() as (conn, tables):
        assert _rows(conn, tables.ledger_episodes) == _rows(conn, tables.ledger)
        [(status,)] = conn.execute(f"SELECT status FROM {tables.ledger_episodes}").fetchall()
    assert status == "honoured"


def test_a_table_sources_cursor_recorded_late_still_reaches_the_incremental_ledger(tmp_path):
    """Found in review: source_reads was outside the fingerprint (a step retried in the same
    run records its reads again, after the first attempt's audit rows)."""
    warehouse = Warehouse.at(tmp_path / "w.duckdb")
    with warehouse.connect() as (conn, tables):
        conn.execute(
            f"INSERT INTO {tables.audit_log} (recorded_at, run_id, job, operation, dry_run, "
            "source_file, source_row, target, outcome) VALUES "
            "(now(), 'r1', 'test', 'add', false, 'table:s', 1, '+33600000001', 'applied')"
        )
    assert refresh_ledger(warehouse) == 1
    record_source_reads(warehouse, "r1", "table:s", ["42"])

    assert refresh_ledger(warehouse) == 1
    with warehouse.connect() as (conn, tables):
        assert _rows(conn, tables.ledger_episodes) == _rows(conn, tables.ledger)
    [row] = ledger_rows(warehouse, "+33600000001")
    assert row.received_cursor == "42"
