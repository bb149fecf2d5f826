"""delete_stop_numbers (guarded) and cancel_scheduled_messages, against the emulator."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from smsp_connector.client import SmspClient

from .conftest import API_KEY
from .instances import instance_for_test
from .pipeline_helpers import PipelineRig, materialization_metadata

pytestmark = pytest.mark.heavy


@pytest.fixture
def rig(emulator, tmp_path):
    with instance_for_test() as instance:
        yield PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)


def _op_config(op: str, **config) -> dict:
    return {"ops": {f"smsp__{op}": {"config": config}}}


def _outcomes(rig: PipelineRig, run_id: str) -> dict[int, tuple[str, str | None]]:
    rows = rig.query(
        "SELECT source_row, outcome, detail FROM smsp.audit_latest "
        f"WHERE run_id = '{run_id}' ORDER BY source_row"
    )
    return {row: (outcome, detail) for row, outcome, detail in rows}


DELETIONS = (
    "phone,consent_at,consent_source\n"
    "+33611111111,2026-01-15T10:00:00,web form #123\n"  # 2: consent after the opt-out
    "+33622222222,2026-01-15,\n"  # 3: no consent source
    "+33633333333,2024-06-01,shop signup\n"  # 4: opted out after that consent
    "+33644444444,2026-01-15,call centre\n"  # 5: not on the list
    "+33655555555,le 15 janvier,call centre\n"  # 6: unreadable date
    "+33666666666,2999-01-01,call centre\n"  # 7: consent in the future
    "+33677777777,15/01/2026 09:30,web form #456\n"  # 8: French date, after the opt-out
)


def _seed_opt_outs(rig: PipelineRig) -> None:
    rig.emulator.state.seed_entries(
        (number, "2025-03-01 12:00:00")
        for number in (
            "+33611111111",
            "+33622222222",
            "+33633333333",
            "+33655555555",
            "+33666666666",
            "+33677777777",
        )
    )


def _deletions_file(tmp_path: Path) -> Path:
    path = tmp_path / "deletions.csv"
    path.write_text(DELETIONS, encoding="utf-8")
    return path


def test_deletion_is_a_dry_run_by_default_with_every_guard_recorded(rig, tmp_path):
    _seed_opt_outs(rig)

    result = rig.run(
        rig.only("delete"),
        _op_config("stop_list_deletions", csv_path=str(_deletions_file(tmp_path))),
    )

    assert result.success
    assert "stop-sms/delete" not in rig.emulator.stats()["endpoints"]
    assert rig.emulator.state.stop_count() == 6
    outcomes = _outcomes(rig, result.run_id)
    assert {row: outcome for row, (outcome, _) in outcomes.items()} == {
        2: "dry_run",
        3: "refused",
        4: "refused",
        5: "not_on_list",
        6: "refused",
        7: "refused",
        8: "dry_run",
    }
    assert "no consent evidence" in outcomes[3][1]
    assert "after (or at) the consent" in outcomes[4][1]
    planned = materialization_metadata(result, "smsp/stop_list_deletions")["planned_rows"]
    assert [record.data["source_row"] for record in planned.records] == [2, 8], (
        "the dry run's plan, as a table in the UI"
    )
    assert "unreadable consent date" in outcomes[6][1]
    assert "in the future" in outcomes[7][1]
    summary = materialization_metadata(result, "smsp/stop_list_deletions")
    assert (summary["planned"], summary["refused"], summary["deleted"], summary["dry_run"]) == (
        2,
        4,
        0,
        True,
    )


def test_a_confirmed_deletion_removes_only_the_numbers_with_fresh_consent(rig, tmp_path):
    _seed_opt_outs(rig)
    path = _deletions_file(tmp_path)

    result = rig.run(
        rig.only("delete"),
        _op_config("stop_list_deletions", csv_path=str(path), confirm=True),
    )

    assert result.success
    listed = {entry.phone_number for entry in rig.emulator.state.stop_entries()}
    assert "+33611111111" not in listed and "+33677777777" not in listed
    assert len(listed) == 4
    assert rig.emulator.stats()["endpoints"]["stop-sms/delete"] == {"code:200": 2}
    outcomes = _outcomes(rig, result.run_id)
    assert (outcomes[2][0], outcomes[8][0]) == ("applied", "applied")
    stop_ids = rig.query(
        "SELECT stop_id FROM smsp.audit_latest WHERE outcome = 'applied' ORDER BY source_row"
    )
    assert all(stop_id is not None for (stop_id,) in stop_ids)


def test_a_plan_over_the_cap_fails_before_any_call(rig, tmp_path):
    _seed_opt_outs(rig)
    path = _deletions_file(tmp_path)

    result = rig.run(
        rig.only("delete"),
        _op_config("stop_list_deletions", csv_path=str(path), confirm=True, max_deletions=1),
    )

    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "deletions.csv" in message and "exceeds max_deletions=1" in message
    assert "stop-sms/delete" not in rig.emulator.stats()["endpoints"]
    refused = rig.query(
        "SELECT count(*) FROM smsp.audit_latest WHERE detail LIKE '%max_deletions%'"
    )
    assert refused == [(2,)], "the refused plan is on record"


def test_a_deletion_file_without_consent_columns_is_refused_whole(rig, tmp_path):
    path = tmp_path / "no_consent.csv"
    path.write_text("phone\n+33611111111\n", encoding="utf-8")

    result = rig.run(rig.only("delete"), _op_config("stop_list_deletions", csv_path=str(path)))

    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "no_consent.csv" in message and "consent" in message


def _schedule(client: SmspClient, emulator, ahead: timedelta) -> int:
    when = (emulator.state.clock.now() + ahead).replace(second=0, microsecond=0)
    when += timedelta(minutes=(5 - when.minute % 5) % 5)
    return client.send_sms(["+33645454545"], "Soldes", scheduled_at=when).message_id


def test_cancellation_keeps_every_outcome_apart_and_is_idempotent(rig, tmp_path):
    emulator = rig.emulator
    with SmspClient(API_KEY, base_url=emulator.base_url) as client:
        later = _schedule(client, emulator, timedelta(hours=3))
        soon = _schedule(client, emulator, timedelta(minutes=30))
        sent = client.send_sms(["+33645454545"], "Now").message_id
    # `soon` goes out 4 minutes from now: too late to cancel (the 5-minute rule).
    emulator.state.clock.set(emulator.state.get_message(soon).scheduled_at - timedelta(minutes=4))
    path = tmp_path / "campaign.csv"
    path.write_text(
        f"message_id\n{later}\n{soon}\n{sent}\n999999\nabc\n{later}\n", encoding="utf-8"
    )

    first = rig.run(rig.only("cancel"), _op_config("message_cancellations", csv_path=str(path)))
    again = rig.run(rig.only("cancel"), _op_config("message_cancellations", csv_path=str(path)))

    assert first.success and again.success
    assert {row: outcome for row, (outcome, _) in _outcomes(rig, first.run_id).items()} == {
        2: "applied",
        3: "rejected",
        4: "rejected",
        5: "rejected",
        6: "invalid_input",
        7: "duplicate_in_file",
    }
    summary = materialization_metadata(first, "smsp/message_cancellations")
    assert {
        key: summary[key]
        for key in (
            "cancelled",
            "already_cancelled",
            "too_late",
            "already_sent",
            "not_found",
            "invalid",
            "duplicates",
            "failed",
        )
    } == {
        "cancelled": 1,
        "already_cancelled": 0,
        "too_late": 1,
        "already_sent": 1,
        "not_found": 1,
        "invalid": 1,
        "duplicates": 1,
        "failed": 0,
    }
    codes = dict(
        rig.query(
            "SELECT source_row, provider_code FROM smsp.audit_latest "
            f"WHERE run_id = '{first.run_id}' AND provider_code IS NOT NULL"
        )
    )
    assert codes == {2: 200, 3: 6, 4: 7, 5: 4}
    second = materialization_metadata(again, "smsp/message_cancellations")
    assert (second["cancelled"], second["already_cancelled"]) == (0, 1)
    assert emulator.state.get_message(later).cancelled_at is not None


def test_message_ids_can_come_from_run_config(rig):
    with SmspClient(API_KEY, base_url=rig.emulator.base_url) as client:
        later = _schedule(client, rig.emulator, timedelta(hours=3))

    result = rig.run(
        rig.only("cancel"),
        _op_config("message_cancellations", message_ids=[str(later)]),
    )

    assert result.success
    assert materialization_metadata(result, "smsp/message_cancellations")["cancelled"] == 1
    assert Counter(rig.emulator.stats()["endpoints"]["message-cancel"]) == Counter({"code:200": 1})


def test_cancellation_needs_a_file_or_ids(rig):
    result = rig.run(rig.only("cancel"), _op_config("message_cancellations"))

    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "give one of csv_path, message_ids or confirm_plan" in message


def test_a_dry_run_from_the_inbox_is_confirmed_by_its_run_id(rig, tmp_path):
    _seed_opt_outs(rig)
    inbox = tmp_path / "inbox" / "delete"
    inbox.mkdir(parents=True)
    path = inbox / "deletions.csv"
    path.write_text(DELETIONS, encoding="utf-8")
    done = tmp_path / "inbox" / "done"

    dry = rig.run(
        rig.only("delete"),
        _op_config("stop_list_deletions", csv_path=str(path), move_to=str(done)),
    )
    archived = materialization_metadata(dry, "smsp/stop_list_deletions")["source_file"]
    confirmed = rig.run(
        rig.only("delete"), _op_config("stop_list_deletions", confirm_dry_run=dry.run_id)
    )

    assert dry.success and not path.exists()
    assert archived.startswith(str(done)), "the dry run records where its file was archived"
    assert confirmed.success
    listed = {entry.phone_number for entry in rig.emulator.state.stop_entries()}
    assert "+33611111111" not in listed and "+33677777777" not in listed
    assert {row: outcome for row, (outcome, _) in _outcomes(rig, confirmed.run_id).items()}[2] == (
        "applied"
    )


def test_confirming_a_dry_run_whose_file_changed_is_refused(rig, tmp_path):
    _seed_opt_outs(rig)
    path = _deletions_file(tmp_path)
    dry = rig.run(rig.only("delete"), _op_config("stop_list_deletions", csv_path=str(path)))
    path.write_text(DELETIONS + "+33688888888,2026-01-15,web form\n", encoding="utf-8")

    confirmed = rig.run(
        rig.only("delete"), _op_config("stop_list_deletions", confirm_dry_run=dry.run_id)
    )

    assert not confirmed.success
    [failure] = confirmed.get_step_failure_events()
    assert "changed since the dry run" in failure.event_specific_data.error.message
    assert "stop-sms/delete" not in rig.emulator.stats()["endpoints"]


def test_confirming_a_run_that_is_not_a_dry_run_of_deletions_is_refused(rig, tmp_path):
    confirmed = rig.run(
        rig.only("delete"), _op_config("stop_list_deletions", confirm_dry_run="no-such-run")
    )

    assert not confirmed.success
    [failure] = confirmed.get_step_failure_events()
    assert "no-such-run is not a dry run of smsp/stop_list_deletions" in (
        failure.event_specific_data.error.message
    )
