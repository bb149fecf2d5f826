"""Plans on a DuckLake (issue 19): stored once and applied once when two processes store or
claim the same plan at the same moment.

On a DuckDB file the single writer serialises ``store_plan`` and ``claim_plan``; on a lake two
processes' transactions both run and the later commit must lose. Each race here is made
deterministic: right after the first read of ``plans`` inside the transaction, another
connection stores or claims the same plan and commits, as a second process would between our
read and our commit.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smsp_connector.warehouse import plans
from smsp_connector.warehouse.plans import Plan, PlanTarget, claim_plan, load_plan, store_plan

from .test_ducklake import lake  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow  # a PostgreSQL server (started per worker)

TARGET = PlanTarget(
    2, "+33611111111", 7, datetime(2025, 3, 1, 12), datetime(2026, 1, 15, tzinfo=UTC), "web"
)
PLAN = Plan("delete", "smsp", {"default_region": "FR"}, "f.csv", "abc", [TARGET])


def test_a_plan_is_stored_once_and_applied_once_on_a_lake(lake):  # noqa: F811
    warehouse = lake.warehouse()

    stored = store_plan(warehouse, PLAN, run_id="dry")
    assert store_plan(warehouse, PLAN, run_id="again").plan_id == stored.plan_id
    loaded = load_plan(warehouse, stored.plan_id)
    assert loaded is not None and list(loaded.targets) == [TARGET]
    claims = [claim_plan(warehouse, stored.plan_id, run_id=run) for run in ("a", "b")]
    assert [(c.claimed, c.applied_by_run) for c in claims] == [(True, "a"), (False, "a")]
    assert store_plan(warehouse, PLAN, run_id="retry").follows == stored.plan_id


def _another_process_first(monkeypatch, action):
    """Make ``action`` run (and commit on its own connection) right after the first read of
    ``plans`` in a transaction: the other process commits between our read and our commit."""
    calls = []
    read = plans.one_row

    def one_row(conn, sql, parameters):
        calls.append(sql)
        row = read(conn, sql, parameters)
        if len(calls) == 1:
            action()
        return row

    monkeypatch.setattr(plans, "one_row", one_row)
    return calls


def test_two_processes_storing_one_plan_at_once_store_it_once(lake, monkeypatch):  # noqa: F811
    warehouse = lake.warehouse()
    other = []
    _another_process_first(
        monkeypatch, lambda: other.append(store_plan(warehouse, PLAN, run_id="other"))
    )

    mine = store_plan(warehouse, PLAN, run_id="mine")

    assert mine == other[0], "the later commit lost, ran again and found the other's plan"
    assert mine.created_by_run == "other"
    assert lake.query("SELECT count(*) FROM smsp.plans") == [(1,)]
    assert lake.query("SELECT count(*) FROM smsp.plan_targets") == [(1,)]


def test_two_processes_claiming_one_plan_at_once_apply_it_once(lake, monkeypatch):  # noqa: F811
    warehouse = lake.warehouse()
    plan_id = store_plan(warehouse, PLAN, run_id="dry").plan_id
    other = []
    _another_process_first(
        monkeypatch, lambda: other.append(claim_plan(warehouse, plan_id, run_id="other"))
    )

    mine = claim_plan(warehouse, plan_id, run_id="mine")

    assert other[0].claimed and other[0].applied_by_run == "other"
    assert (mine.claimed, mine.applied_by_run, mine.applied_at) == (
        False,
        "other",
        other[0].applied_at,
    )
    assert lake.query("SELECT applied_by_run FROM smsp.plans") == [("other",)]


def test_a_retention_purge_applies_on_a_lake(lake):  # noqa: F811
    """The purge's updates (``UPDATE … FROM`` a registered frame, the claim, the audit rows)
    in one lake transaction: the ended number becomes its pseudonym, the standing one stays."""
    from datetime import timedelta

    from smsp_connector.operations.retention import Retention, purge
    from smsp_connector.warehouse.ledger import ledger_rows, opted_out_numbers
    from smsp_connector.warehouse.pseudonyms import pseudonym
    from smsp_connector.warehouse.retention import PurgeAudit

    from .test_retention import BASE, KEY, _refreshed, _write_history

    warehouse = lake.warehouse()
    ended, standing = "+33600000001", "+33600000002"
    _write_history(
        warehouse,
        {ended: [(0, "send"), (1, "list"), (2, "delete")], standing: [(0, "send"), (1, "list")]},
    )

    report = purge(
        warehouse,
        Retention(rejected=timedelta(days=90), ended=timedelta(days=10)),
        key=KEY,
        audit=PurgeAudit("purge", "test", None),
        dry_run=False,
        now=_refreshed(warehouse, BASE + timedelta(days=100)),
    )

    assert (report.numbers, report.number_rows > 0) == (1, True)
    [episode] = ledger_rows(warehouse, ended, key=KEY)
    assert (episode.phone_number, episode.status) == (pseudonym(KEY, ended), "ended")
    assert opted_out_numbers(warehouse, [ended, standing]) == {standing}
