"""Pushes and cancels are stored plans too: the targets are stored before any call, a dry run
is a plan that a later run applies by its id, exactly, once, and not when too old."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smsp_connector.client import SmspClient
from smsp_connector.operations.context import RunContext
from smsp_connector.operations.inputs import MessageIdValues, PhoneFile, StoredPlan
from smsp_connector.operations.plans import PlanRefused
from smsp_connector.operations.run import Cancel, Delete, Push, run_operation
from smsp_connector.warehouse import Warehouse
from smsp_connector.warehouse.plans import load_plan

from .instances import instance_for_test

pytestmark = pytest.mark.heavy


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    return Warehouse.at(tmp_path / "warehouse.duckdb")


def _run(operation, source, client, warehouse, run_id):
    return run_operation(
        operation,
        source,
        RunContext(client=client, warehouse=warehouse, run_id=run_id, job="test", account="smsp"),
    )


def _adds(emulator) -> int:
    return sum(
        1 for r in emulator.stats(detail=True)["requests"] if r["endpoint"] == "stop-sms/add"
    )


def _audit(warehouse, run_id) -> list[tuple]:
    with warehouse.connect() as (conn, tables):
        return conn.execute(
            f"SELECT source_row, target, outcome, plan_id FROM {tables.audit_latest} "
            "WHERE run_id = ? ORDER BY source_row",
            [run_id],
        ).fetchall()


def _file(tmp_path, text: str):
    path = tmp_path / "opt_outs.csv"
    path.write_text(text)
    return path


def test_a_push_stores_its_plan_before_any_call_and_its_rows_name_it(
    emulator, client, warehouse, tmp_path
):
    emulator.state.seed_entries([("+33611111111", "2025-03-01 12:00:00")])
    path = _file(tmp_path, "phone\n0611111111\n0622222222\nnot a number\n0633333333\n")

    report = _run(Push(), PhoneFile(path), client, warehouse, "push-1")

    plan = load_plan(warehouse, report.summary.plan_id)
    assert plan is not None and plan.operation == "add" and plan.account == "smsp"
    assert [(t.source_row, t.target) for t in plan.targets] == [
        (3, "+33622222222"),
        (5, "+33633333333"),
    ]
    assert plan.applied_by_run == "push-1" and plan.source_file == str(path)
    assert {row[3] for row in _audit(warehouse, "push-1")} == {plan.plan_id}
    assert _adds(emulator) == 2


def test_a_push_dry_run_is_a_plan_applied_by_its_id_exactly_and_once(
    emulator, client, warehouse, tmp_path
):
    path = _file(tmp_path, "phone\n0622222222\n0633333333\n")
    dry = _run(Push(dry_run=True), PhoneFile(path), client, warehouse, "dry")
    plan_id = dry.summary.plan_id
    assert _adds(emulator) == 0 and load_plan(warehouse, plan_id).applied_by_run is None
    # The file changes after the dry run: the plan, not the file, is what gets applied.
    path.write_text("phone\n0644444444\n")

    applied = _run(Push(plan_id=plan_id), StoredPlan(plan_id), client, warehouse, "apply")

    assert applied.summary.added == 2 and applied.summary.plan_id == plan_id
    assert emulator.state.has_number("+33622222222") and emulator.state.has_number("+33633333333")
    assert not emulator.state.has_number("+33644444444")
    assert [row[1:] for row in _audit(warehouse, "apply")] == [
        ("+33622222222", "applied", plan_id),
        ("+33633333333", "applied", plan_id),
    ]
    with pytest.raises(PlanRefused, match=f"plan {plan_id} was applied by run apply"):
        _run(Push(plan_id=plan_id), StoredPlan(plan_id), client, warehouse, "again")
    assert _adds(emulator) == 2


def test_applying_a_push_plan_skips_numbers_listed_since_it_was_made(
    emulator, client, warehouse, tmp_path
):
    path = _file(tmp_path, "phone\n0622222222\n0633333333\n")
    plan_id = _run(Push(dry_run=True), PhoneFile(path), client, warehouse, "dry").summary.plan_id
    emulator.state.seed_entries([("+33622222222", "2025-03-01 12:00:00")])

    applied = _run(Push(plan_id=plan_id), StoredPlan(plan_id), client, warehouse, "apply")

    assert (applied.summary.already_on_list, applied.summary.added) == (1, 1)
    assert _adds(emulator) == 1
    assert [row[2] for row in _audit(warehouse, "apply")] == ["already_on_list", "applied"]


def test_a_plan_is_applied_only_by_its_own_operation_and_when_fresh(
    emulator, client, warehouse, tmp_path
):
    path = _file(tmp_path, "phone\n0622222222\n")
    plan_id = _run(Push(dry_run=True), PhoneFile(path), client, warehouse, "dry").summary.plan_id

    with pytest.raises(PlanRefused, match="no deletion plan"):
        _run(Delete(plan_id=plan_id), StoredPlan(plan_id), client, warehouse, "as-delete")
    with pytest.raises(PlanRefused, match="more than plan_max_age"):
        _run(
            Push(plan_id=plan_id, plan_max_age=timedelta(0)),
            StoredPlan(plan_id),
            client,
            warehouse,
            "stale",
        )
    assert _adds(emulator) == 0 and not emulator.state.has_number("+33622222222")


def _schedule(client: SmspClient, emulator) -> int:
    when = (emulator.state.clock.now() + timedelta(days=1)).replace(minute=0, second=0)
    return client.send_sms(["+33645454545"], "Soldes", scheduled_at=when).message_id


def test_a_cancel_dry_run_sends_nothing_and_its_plan_cancels_exactly_its_ids(
    emulator, client, warehouse
):
    first, second, third = (_schedule(client, emulator) for _ in range(3))

    dry = _run(Cancel(dry_run=True), MessageIdValues([first, second, "x"]), client, warehouse, "d")
    plan = load_plan(warehouse, dry.summary.plan_id)
    assert [t.target for t in plan.targets] == [str(first), str(second)]
    assert all(emulator.state.get_message(i).cancelled_at is None for i in (first, second))

    applied = _run(Cancel(plan_id=plan.plan_id), StoredPlan(plan.plan_id), client, warehouse, "a")

    assert applied.summary.cancelled == 2
    assert emulator.state.get_message(first).cancelled_at is not None
    assert emulator.state.get_message(second).cancelled_at is not None
    assert emulator.state.get_message(third).cancelled_at is None


def test_a_message_id_that_is_not_unicode_is_refused_as_a_row(client, warehouse):
    """A command line's byte that is not UTF-8 ("\\udcff") is no text DuckDB can store: the
    row is refused with U+FFFD in its place, not the run."""
    report = _run(Cancel(dry_run=True), MessageIdValues(["12\udcff"]), client, warehouse, "u")

    assert report.summary.invalid == 1
    [row] = report.unsent.to_dict("records")
    assert row["target"] == "12\ufffd"


# -- the Dagster assets: a dry run shows its plan id, a run given that id applies it --------------


@pytest.fixture
def rig(emulator, tmp_path):

    from .pipeline_helpers import PipelineRig

    with instance_for_test() as instance:
        yield PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)


def _config(op: str, **config):
    return {"ops": {f"smsp__{op}": {"config": config}}}


def test_a_push_asset_dry_run_names_its_plan_and_confirm_plan_applies_it(rig, tmp_path):
    from .pipeline_helpers import materialization_metadata

    path = _file(tmp_path, "phone\n0622222222\n")
    dry = rig.run(rig.only("add"), _config("stop_list_additions", csv_path=str(path), dry_run=True))
    metadata = materialization_metadata(dry, "smsp/stop_list_additions")
    plan_id = metadata["plan_id"]
    # Masked in Dagster's event log (tests/test_masked_metadata.py).
    assert [r.data["target"] for r in metadata["planned_rows"].records] == ["+336•••••222"]
    assert not rig.emulator.state.has_number("+33622222222")

    applied = rig.run(rig.only("add"), _config("stop_list_additions", confirm_plan=plan_id))

    assert applied.success
    assert materialization_metadata(applied, "smsp/stop_list_additions")["added"] == 1
    assert rig.emulator.state.has_number("+33622222222")


def test_a_cancel_asset_dry_run_cancels_nothing_and_its_plan_is_applied(rig, client):
    from .pipeline_helpers import materialization_metadata

    message = _schedule(client, rig.emulator)
    op = "message_cancellations"

    dry = rig.run(rig.only("cancel"), _config(op, message_ids=[str(message)], dry_run=True))
    assert dry.success and rig.emulator.state.get_message(message).cancelled_at is None
    plan_id = materialization_metadata(dry, "smsp/message_cancellations")["plan_id"]

    applied = rig.run(rig.only("cancel"), _config(op, confirm_plan=plan_id))

    assert applied.success
    assert rig.emulator.state.get_message(message).cancelled_at is not None


def test_each_plan_records_what_it_was_read_from(emulator, client, warehouse, tmp_path):
    """The file's identity (its bytes' SHA-256, how it was read) is a field of what was read,
    not a DataFrame attribute that a pandas operation may drop: every kind of plan keeps it."""
    import hashlib

    from smsp_connector.operations.inputs import MessageIdFile, PhoneValues

    phones = _file(tmp_path, "Mobile perso\n06 22 22 22 22\n")
    ids = tmp_path / "ids.csv"
    ids.write_text("message_id\n5000\n")
    pushed = _run(Push(dry_run=True), PhoneFile(phones, "Mobile perso"), client, warehouse, "p")
    cancelled = _run(Cancel(dry_run=True), MessageIdFile(ids), client, warehouse, "c")
    typed = _run(
        Push(dry_run=True), PhoneValues(["0633333333"], default_region="re"), client, warehouse, "v"
    )

    push, cancel, inline = (
        load_plan(warehouse, report.summary.plan_id) for report in (pushed, cancelled, typed)
    )
    assert push.source_sha256 == hashlib.sha256(phones.read_bytes()).hexdigest()
    assert push.options == {"phone_column": "Mobile perso", "default_region": "FR"}
    assert cancel.source_sha256 == hashlib.sha256(ids.read_bytes()).hexdigest()
    assert cancel.source_file == str(ids)
    assert inline.source_sha256 is None and inline.options == {"default_region": "RE"}
    assert pushed.source_sha256 == push.source_sha256
