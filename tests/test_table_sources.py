"""Opt-outs pushed from warehouse tables: only rows past the cursor are read, the cursor moves
only over final outcomes, and numbers the provider refused (code 9) are not sent again."""

from __future__ import annotations

from collections import Counter

import dagster as dg
import duckdb
import pytest

from smsp_connector.client import RetryPolicy, SmspClient
from smsp_connector.dagster import build_definitions
from smsp_connector.emulator import FaultSettings
from smsp_connector.operations.context import RunContext
from smsp_connector.operations.table_sources import push_source
from smsp_connector.settings import PushSource, Settings, SettingsError
from smsp_connector.warehouse import Warehouse, pushed_cursor

from .conftest import API_KEY
from .instances import instance_for_test
from .proxy_helpers import failing_proxy

SOURCE = PushSource(
    name="crm",
    table="crm.unsubscribes",
    phone_column="mobile",
    region_column="country",
    cursor_column="unsubscribed_at",
)


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "CREATE SCHEMA crm; CREATE TABLE crm.unsubscribes "
            "(mobile VARCHAR, country VARCHAR, unsubscribed_at TIMESTAMP)"
        )
    return path


def _insert(database, *rows) -> None:
    with duckdb.connect(str(database)) as conn:
        conn.executemany("INSERT INTO crm.unsubscribes VALUES (?, ?, ?)", list(rows))


def _push(client, database, run_id, **options):
    return push_source(
        options.pop("source", SOURCE),
        RunContext(client=client, warehouse=Warehouse.at(database), run_id=run_id, job="test"),
        **options,
    )


def _adds(emulator) -> int:
    return sum(Counter(emulator.stats()["endpoints"].get("stop-sms/add", {})).values())


@pytest.mark.heavy
def test_rows_are_read_past_the_cursor_only(client, emulator, database):
    _insert(
        database,
        ("06 11 11 11 11", None, "2026-11-01 10:00:00"),
        ("0692123456", "RE", "2026-11-02 10:00:00"),  # national form, La Réunion
    )

    first = _push(client, database, "run-1")

    assert first.counts["added"] == 2
    assert emulator.state.has_number("+33611111111")
    assert emulator.state.has_number("+262692123456")
    assert pushed_cursor(Warehouse.at(database), "crm") == "2026-11-02 10:00:00"
    _insert(database, ("0622222222", "FR", "2026-11-03 09:00:00"))
    adds = _adds(emulator)

    second = _push(client, database, "run-2")

    assert second.counts["requested"] == 1, "only the row past the cursor was read"
    assert _adds(emulator) == adds + 1
    with duckdb.connect(str(database), read_only=True) as conn:
        rows = conn.execute(
            "SELECT run_id, source_file, source_row, target, outcome FROM smsp.audit_latest "
            "ORDER BY run_id, source_row"
        ).fetchall()
    assert rows[-1] == ("run-2", "table:crm", 1, "+33622222222", "applied")


@pytest.mark.heavy
def test_the_ledger_names_the_table_source_and_the_rows_cursor(client, emulator, database):
    """Issue 18: where an opt-out was first received, for a table source, is the source and
    the row's cursor value (a dry run's receipt included)."""
    from smsp_connector.warehouse.ledger import ledger_rows

    _insert(database, ("06 11 11 11 11", None, "2026-11-01 10:00:00"))
    _push(client, database, "preview", dry_run=True)
    _insert(database, ("0622222222", "FR", "2026-11-03 09:00:00"))
    _push(client, database, "run-1")

    first = ledger_rows(Warehouse.at(database), "+33611111111")
    second = ledger_rows(Warehouse.at(database), "+33622222222")

    assert [(r.received_from, r.received_run_id, r.received_cursor) for r in first] == [
        ("table:crm", "preview", "2026-11-01 10:00:00")
    ]
    assert [(r.received_from, r.received_cursor) for r in second] == [
        ("table:crm", "2026-11-03 09:00:00")
    ]


@pytest.mark.heavy
def test_failed_rows_keep_the_cursor_so_they_are_read_again(emulator, database):
    _insert(database, ("0611111111", "FR", "2026-11-01 10:00:00"))
    with (
        failing_proxy(emulator.base_url, {"/v1/stop-sms/add"}) as base_url,
        SmspClient(API_KEY, base_url=base_url, retry=RetryPolicy(max_attempts=2)) as failing,
    ):
        failed = _push(failing, database, "run-failed")

    assert failed.counts["failed"] == 1
    assert pushed_cursor(Warehouse.at(database), "crm") is None
    with SmspClient(API_KEY, base_url=emulator.base_url) as client:
        again = _push(client, database, "run-again")
    assert again.counts["added"] == 1
    assert pushed_cursor(Warehouse.at(database), "crm") == "2026-11-01 10:00:00"


@pytest.mark.heavy
def test_numbers_refused_with_code_9_are_not_sent_again_unless_asked(client, emulator, database):
    source = PushSource(name="crm", table="crm.unsubscribes", phone_column="mobile")
    _insert(database, ("0611223344", "FR", "2026-11-01 10:00:00"))
    emulator.faults = FaultSettings(force_code={"stop-sms/add": 9})  # refused: code 9

    first = _push(client, database, "run-1", source=source)
    adds = _adds(emulator)
    second = _push(client, database, "run-2", source=source)
    third = _push(client, database, "run-3", source=source, retry_rejected=True)

    assert first.counts["rejected"] == second.counts["rejected"] == 1
    assert _adds(emulator) == adds + 1, "run-2 sent nothing; run-3 (retry_rejected) sent it"
    assert "code 9" in second.unsent["reason"].iloc[0]
    assert third.counts["rejected"] == 1


def test_a_source_is_a_table_or_a_query():
    with pytest.raises(SettingsError, match="not both"):
        PushSource(name="x", table="a", query="SELECT 1", phone_column="p")


def test_a_missing_column_is_a_clear_error(client, database):
    source = PushSource(name="crm", table="crm.unsubscribes", phone_column="phone")
    with pytest.raises(ValueError, match="phone_column 'phone' is not a column"):
        _push(client, database, "run-1", source=source)


@pytest.mark.heavy
def test_an_upstream_asset_materialized_triggers_the_push_of_its_table(emulator, tmp_path):
    @dg.asset(key=["crm", "unsubscribes"], required_resource_keys={"duckdb"})
    def unsubscribes(context) -> None:
        """The CRM's own asset: its unsubscribes, in the same DuckDB file."""
        with context.resources.duckdb.get_connection() as conn:
            conn.execute(
                "CREATE SCHEMA IF NOT EXISTS crm; CREATE OR REPLACE TABLE crm.unsubscribes AS "
                "SELECT * FROM (VALUES ('0633333333', TIMESTAMP '2026-11-05 08:00:00')) "
                "AS t(phone, unsubscribed_at)"
            )

    source = PushSource(
        name="crm", asset="crm/unsubscribes", phone_column="phone", cursor_column="unsubscribed_at"
    )
    smsp = build_definitions(
        Settings(
            api_key=API_KEY,
            base_url=emulator.base_url,
            rate_limit=None,
            database=str(tmp_path / "warehouse.duckdb"),
            export_dir=str(tmp_path / "exports"),
            push_sources=(source,),
        )
    )
    defs = dg.Definitions.merge(smsp.definitions, dg.Definitions(assets=[unsubscribes]))
    push = smsp.sources["crm"].push
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get(push.key).parent_keys} == {
        "smsp/opt_outs_crm", "crm/unsubscribes",
    }  # fmt: skip
    assert push.key in graph.get(smsp.keys.provider_stop_list).parent_keys

    with instance_for_test() as instance:
        before = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        upstream = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[unsubscribes.key]
        )
        after = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=before.cursor
        )
        assert upstream.success
        assert after.get_requested_partitions(push.key) == {None}
        pushed = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[push.key]
        )

    assert pushed.success
    assert emulator.state.has_number("+33633333333")
    assert pushed_cursor(Warehouse.at(tmp_path / "warehouse.duckdb"), "crm") == (
        "2026-11-05 08:00:00"
    )
