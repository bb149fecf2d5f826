"""A deletion's plan: stored by the dry run, applied exactly as stored by its confirmation.

A confirmation deletes the numbers that were reviewed, never those that re-reading the file
with other options (another region, another column) would give.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import hypothesis
import pytest
from hypothesis import strategies as st

from smsp_connector.dagster import build_definitions
from smsp_connector.intake import phone_intake_frame
from smsp_connector.settings import Settings, SettingsError
from smsp_connector.warehouse import Warehouse
from smsp_connector.warehouse.plans import Plan, PlanTarget, claim_plan, load_plan, store_plan

from .instances import instance_for_test
from .pipeline_helpers import PipelineRig, materialization_metadata

pytestmark = pytest.mark.heavy


@pytest.fixture
def rig(emulator, tmp_path):
    with instance_for_test() as instance:
        yield PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)


def _delete(rig: PipelineRig, **config) -> dg.ExecuteInProcessResult:
    return rig.run(rig.only("delete"), {"ops": {"smsp__stop_list_deletions": {"config": config}}})


def _listed(rig: PipelineRig) -> set[str]:
    return {entry.phone_number for entry in rig.emulator.state.stop_entries()}


def test_a_confirmation_deletes_the_number_the_dry_run_planned_in_its_region(rig, tmp_path):
    rig.emulator.state.seed_entries(
        [("+31612345678", "2025-03-01 12:00:00"), ("+33612345678", "2025-03-01 12:00:00")]
    )
    path = tmp_path / "consents.csv"
    path.write_text("phone,consent_at,consent_source\n0612345678,2026-01-15,web form\n")

    dry = _delete(rig, csv_path=str(path), default_region="NL")
    confirmed = _delete(rig, confirm_dry_run=dry.run_id)

    assert dry.success and confirmed.success
    assert [
        r.data["target"]
        for r in materialization_metadata(dry, "smsp/stop_list_deletions")["planned_rows"].records
    ] == ["+316•••••678"]  # masked; +336… would be the French reading
    assert "+33612345678" in _listed(rig), "a number nobody reviewed was deleted"
    assert "+31612345678" not in _listed(rig), "the reviewed number stayed listed"


def test_a_confirmation_deletes_from_the_column_the_dry_run_read(rig, tmp_path):
    rig.emulator.state.seed_entries(
        [("+33611111111", "2025-03-01 12:00:00"), ("+33622222222", "2025-03-01 12:00:00")]
    )
    path = tmp_path / "consents.csv"
    path.write_text(
        "phone,fixe,consent_at,consent_source\n+33611111111,+33622222222,2026-01-15,web form\n"
    )

    dry = _delete(rig, csv_path=str(path), phone_column="fixe")
    confirmed = _delete(rig, confirm_dry_run=dry.run_id)

    assert dry.success and confirmed.success
    assert "+33611111111" in _listed(rig), "a number nobody reviewed was deleted"
    assert "+33622222222" not in _listed(rig), "the reviewed number stayed listed"


DELETIONS = (
    "phone,consent_at,consent_source\n"
    "+33611111111,2026-01-15T10:00:00,web form #123\n"  # 2: planned
    "+33622222222,2026-01-15,\n"  # 3: no consent source
    "+33633333333,15/01/2026 09:30,web form #456\n"  # 4: planned
)


def _seeded_file(rig: PipelineRig, tmp_path) -> Path:
    rig.emulator.state.seed_entries(
        (number, "2025-03-01 12:00:00")
        for number in ("+33611111111", "+33622222222", "+33633333333")
    )
    path = tmp_path / "deletions.csv"
    path.write_text(DELETIONS, encoding="utf-8")
    return path


def _failure(result: dg.ExecuteInProcessResult) -> str:
    [failure] = result.get_step_failure_events()
    return failure.step_failure_data.error.message.strip()


def test_a_dry_run_stores_its_plan_and_names_it_in_metadata_and_audit(rig, tmp_path):
    path = _seeded_file(rig, tmp_path)

    dry = _delete(rig, csv_path=str(path))

    plan_id = materialization_metadata(dry, "smsp/stop_list_deletions")["plan_id"]
    assert len(plan_id) == 64
    assert rig.query(
        "SELECT operation, account, options, source_file, target_count, applied_at "
        f"FROM smsp.plans WHERE plan_id = '{plan_id}'"
    ) == [
        (
            "delete",
            "smsp",
            '{"default_region": "FR", "phone_column": "phone"}',
            str(path),
            2,
            None,
        )
    ]
    targets = rig.query(
        "SELECT position, source_row, target, stop_id IS NOT NULL, opted_out_at, consent_source "
        f"FROM smsp.plan_targets WHERE plan_id = '{plan_id}' ORDER BY position"
    )
    assert [row[:4] + row[5:] for row in targets] == [
        (1, 2, "+33611111111", True, "web form #123"),
        (2, 4, "+33633333333", True, "web form #456"),
    ]
    assert str(targets[0][4]) == "2025-03-01 12:00:00", "the provider's opt-out time"
    assert rig.query(
        f"SELECT DISTINCT plan_id FROM smsp.audit_log WHERE run_id = '{dry.run_id}'"
    ) == [(plan_id,)], "every row of the dry run names its plan"
    again = _delete(rig, csv_path=str(path))
    assert materialization_metadata(again, "smsp/stop_list_deletions")["plan_id"] == plan_id
    assert rig.query("SELECT count(*) FROM smsp.plans") == [(1,)], "same content, same plan"


def test_a_plan_is_confirmed_by_its_id_once(rig, tmp_path):
    path = _seeded_file(rig, tmp_path)
    dry = _delete(rig, csv_path=str(path))
    plan_id = materialization_metadata(dry, "smsp/stop_list_deletions")["plan_id"]

    first = _delete(rig, confirm_plan=plan_id)
    second = _delete(rig, confirm_plan=plan_id)
    by_run = _delete(rig, confirm_dry_run=dry.run_id)

    assert first.success and not second.success and not by_run.success
    assert _listed(rig) == {"+33622222222"}
    assert rig.emulator.stats()["endpoints"]["stop-sms/delete"] == {"code:200": 2}
    message = _failure(second)
    assert f"plan {plan_id} was applied by run {first.run_id}" in message
    assert "applied 2" in message and "\n" not in message
    assert f"applied by run {first.run_id}" in _failure(by_run)
    assert rig.query(f"SELECT applied_by_run FROM smsp.plans WHERE plan_id = '{plan_id}'") == [
        (first.run_id,)
    ]
    assert rig.query(
        f"SELECT DISTINCT plan_id FROM smsp.audit_log WHERE run_id = '{first.run_id}'"
    ) == [(plan_id,)], "the confirmation's audit rows name the plan"
    summary = materialization_metadata(first, "smsp/stop_list_deletions")
    assert (summary["deleted"], summary["dry_run"], summary["plan_id"]) == (2, False, plan_id)


@pytest.mark.parametrize(
    ("option", "value"), [("default_region", "BE"), ("phone_column", "consent_source")]
)
def test_an_option_that_differs_from_the_plan_is_refused_in_one_line(rig, tmp_path, option, value):
    path = _seeded_file(rig, tmp_path)
    dry = _delete(rig, csv_path=str(path))

    confirmed = _delete(rig, confirm_dry_run=dry.run_id, csv_path=str(path), **{option: value})
    repeated = _delete(rig, confirm_dry_run=dry.run_id, csv_path=str(path), default_region="fr")

    message = _failure(confirmed)
    assert f"{option}={value!r} differs from plan" in message and "\n" not in message
    assert repeated.success, "repeating the plan's own options is fine"
    assert _listed(rig) == {"+33622222222"}


def test_a_file_given_again_must_hold_the_plans_bytes(rig, tmp_path):
    path = _seeded_file(rig, tmp_path)
    dry = _delete(rig, csv_path=str(path))
    plan_id = materialization_metadata(dry, "smsp/stop_list_deletions")["plan_id"]
    other = tmp_path / "other.csv"
    other.write_text(DELETIONS.replace("+33611111111", "+33644444444"), encoding="utf-8")

    confirmed = _delete(rig, confirm_plan=plan_id, csv_path=str(other))

    assert "does not hold the bytes plan" in _failure(confirmed)
    assert "stop-sms/delete" not in rig.emulator.stats()["endpoints"]


def test_a_number_opted_out_again_since_the_plan_is_skipped_with_its_reason(rig, tmp_path):
    path = _seeded_file(rig, tmp_path)
    dry = _delete(rig, csv_path=str(path))
    state = rig.emulator.state
    state.delete_stop(state.stop_id_for("+33611111111"))
    state.add_stop("+33611111111", datetime(2026, 2, 1, 9, 0))  # after the consent

    confirmed = _delete(rig, confirm_dry_run=dry.run_id)

    assert confirmed.success
    assert _listed(rig) == {"+33611111111", "+33622222222"}, "the new opt-out stands"
    [(outcome, detail)] = rig.query(
        "SELECT outcome, detail FROM smsp.audit_latest "
        f"WHERE run_id = '{confirmed.run_id}' AND target = '+33611111111'"
    )
    assert outcome == "refused"
    assert detail.startswith("when applied: opted out at 2026-02-01 09:00")
    summary = materialization_metadata(confirmed, "smsp/stop_list_deletions")
    assert (summary["deleted"], summary["refused"]) == (1, 1)


def test_a_plan_older_than_plan_max_age_is_refused(rig, tmp_path):
    path = _seeded_file(rig, tmp_path)
    dry = _delete(rig, csv_path=str(path))

    mutations = build_definitions(rig.settings(plan_max_age=timedelta(milliseconds=1))).mutations
    confirmed = rig.run(
        [*mutations.inbox.values(), mutations.deletions],
        {"ops": {"smsp__stop_list_deletions": {"config": {"confirm_dry_run": dry.run_id}}}},
    )

    assert "more than plan_max_age" in _failure(confirmed)
    assert "stop-sms/delete" not in rig.emulator.stats()["endpoints"]
    assert rig.query("SELECT applied_at FROM smsp.plans") == [(None,)]


def test_an_unknown_plan_is_refused(rig):
    confirmed = _delete(rig, confirm_plan="0" * 64)

    assert f"no deletion plan '{'0' * 64}'" in _failure(confirmed)


def test_the_plan_age_setting_is_read_in_hours():
    assert Settings.from_env({}).plan_max_age == timedelta(days=7)
    assert Settings.from_env({"SMSP_PLAN_MAX_AGE_HOURS": "36"}).plan_max_age == timedelta(hours=36)
    with pytest.raises(SettingsError, match="plan_max_age"):
        Settings.from_env({"SMSP_PLAN_MAX_AGE_HOURS": "0"})


# -- the warehouse's plans ------------------------------------------------------------------


def _plan(*targets: str) -> Plan:
    return Plan(
        operation="delete",
        account="smsp",
        options={"default_region": "FR"},
        source_file="f.csv",
        source_sha256="abc",
        targets=[
            PlanTarget(
                row,
                target,
                stop_id=row,
                opted_out_at=datetime(2025, 3, 1, 12),
                consent_at=datetime(2026, 1, 15, 9, tzinfo=UTC),
                consent_source="web",
            )
            for row, target in enumerate(targets, start=2)
        ],
    )


def test_storing_is_idempotent_and_a_plan_loads_as_stored(tmp_path):
    warehouse = Warehouse.at(tmp_path / "w.duckdb")

    stored = store_plan(warehouse, _plan("+33611111111", "+33622222222"), run_id="r1")
    again = store_plan(warehouse, _plan("+33611111111", "+33622222222"), run_id="r2")
    other = store_plan(warehouse, _plan("+33611111111"), run_id="r3")

    assert stored.plan_id == again.plan_id != other.plan_id
    assert stored.created_by_run == again.created_by_run == "r1"
    loaded = load_plan(warehouse, stored.plan_id)
    assert (
        loaded is not None and list(loaded.targets) == _plan("+33611111111", "+33622222222").targets
    )
    assert loaded.content_hash() == stored.plan_id


def test_a_plan_is_claimed_once_and_its_content_planned_again_is_a_new_plan(tmp_path):
    warehouse = Warehouse.at(tmp_path / "w.duckdb")
    plan = store_plan(warehouse, _plan("+33611111111"), run_id="dry")

    first = claim_plan(warehouse, plan.plan_id, run_id="apply-1")
    second = claim_plan(warehouse, plan.plan_id, run_id="apply-2")
    replanned = store_plan(warehouse, _plan("+33611111111"), run_id="retry")

    assert (first.claimed, second.claimed) == (True, False)
    assert second.applied_by_run == "apply-1"
    assert replanned.plan_id != plan.plan_id and replanned.follows == plan.plan_id
    assert replanned.applied_by_run is None


# -- whatever a confirmation's options, it deletes nothing outside its plan -----------------

PROPERTY_FILE = (
    "phone,fixe,consent_at,consent_source\n"
    "0612345678,0687654321,2026-01-15,web form\n"
    "0611223344,+33699887766,2026-01-15T10:00,call centre\n"
)
REGIONS = ("FR", "NL", "BE", "DE")


def _every_reading() -> set[str]:
    """Every number the file's values may mean, in any of the regions drawn."""
    values = [cell for line in PROPERTY_FILE.splitlines()[1:] for cell in line.split(",")[:2]]
    numbers: set[str] = set()
    for region in REGIONS:
        frame = phone_intake_frame(
            "x", values, list(range(1, len(values) + 1)), default_region=region
        )
        numbers |= {number for number in frame["e164"] if isinstance(number, str)}
    return numbers


@hypothesis.settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(
    dry_column=st.sampled_from([None, "phone", "fixe"]),
    dry_region=st.sampled_from(REGIONS),
    by_run_id=st.booleans(),
    column=st.sampled_from([None, "phone", "fixe", "PHONE"]),
    region=st.sampled_from([None, *REGIONS, "nl"]),
    file_again=st.sampled_from([None, "same", "edited"]),
)
def test_a_confirmation_never_deletes_a_number_outside_its_plan(
    emulator_server, tmp_path_factory, dry_column, dry_region, by_run_id, column, region,
    file_again,
):  # fmt: skip
    emulator_server.reset()
    folder = tmp_path_factory.mktemp("plan")
    with instance_for_test() as instance:
        rig = PipelineRig(emulator_server, folder / "w.duckdb", folder / "exports", instance)
        rig.emulator.state.seed_entries((n, "2025-03-01 12:00:00") for n in _every_reading())
        seeded = _listed(rig)
        path = folder / "consents.csv"
        path.write_text(PROPERTY_FILE, encoding="utf-8")
        dry = _delete(rig, csv_path=str(path), phone_column=dry_column, default_region=dry_region)
        assert dry.success
        plan_id = materialization_metadata(dry, "smsp/stop_list_deletions")["plan_id"]
        planned = {target for (target,) in rig.query(
            f"SELECT target FROM smsp.plan_targets WHERE plan_id = '{plan_id}'")}  # fmt: skip
        assert _listed(rig) == seeded, "a dry run deletes nothing"
        config: dict = {"phone_column": column, "default_region": region}
        config["confirm_dry_run" if by_run_id else "confirm_plan"] = (
            dry.run_id if by_run_id else plan_id
        )
        if file_again:
            again = folder / "again.csv"
            edited = PROPERTY_FILE.replace("0612345678", "0622334455")
            again.write_text(PROPERTY_FILE if file_again == "same" else edited)
            config["csv_path"] = str(again)

        confirmed = _delete(rig, **config)

        deleted = seeded - _listed(rig)
        assert deleted <= planned, f"deleted {deleted - planned}, outside plan {planned}"
        if confirmed.success:
            assert deleted == planned
