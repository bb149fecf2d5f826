"""The deletion guard, plan and apply at their edges (issue 19 item 6): each test here fails
on a change to ``operations/delete.py`` or ``warehouse/plans.py`` that the rest of the suite
let through under mutation testing (``make mutation``, docs/mutation.md).

Everything runs through the public functions, against the emulator on loopback and a DuckDB
file; the audit log, the stored plans and the provider's list are read back as they are.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from smsp_connector.operations.context import RunContext
from smsp_connector.operations.delete import DeleteSummary, DeletionCapExceeded, parse_consent_time
from smsp_connector.operations.inputs import PhoneFile, PhoneValues, StoredPlan
from smsp_connector.operations.plans import PlanRefused
from smsp_connector.operations.progress import log_progress
from smsp_connector.operations.run import Delete, run_operation
from smsp_connector.warehouse import Warehouse
from smsp_connector.warehouse.plans import (
    Plan,
    PlanTarget,
    PlanTargets,
    claim_plan,
    load_plan,
    store_plan,
)

pytestmark = pytest.mark.heavy

OPTED_OUT = "2025-03-01 12:00:00"
"""The provider's opt-out time (Paris, winter time): 11:00 UTC."""
CONSENT = {"consent_at": "2026-01-15T10:00:00Z", "consent_source": "web form #1"}
A, B, C, D = "+33611111111", "+33622222222", "+33633333333", "+33644444444"


def _warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse.at(tmp_path / "warehouse.duckdb")


def _run(client, tmp_path, operation, source, *, run_id="run", account=None):
    return run_operation(
        operation,
        source,
        RunContext(
            client=client,
            warehouse=_warehouse(tmp_path),
            run_id=run_id,
            job="test",
            account=account,
        ),
    )


def _query(tmp_path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def _execute(tmp_path: Path, sql: str) -> None:
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        conn.execute(sql)


def _audit(tmp_path: Path, run_id: str) -> list[tuple]:
    """Every audit row of the run but the pending ones: (source_row, target, outcome, detail,
    stop_id, source_file, plan_id), in input order."""
    return _query(
        tmp_path,
        "SELECT source_row, target, outcome, detail, stop_id, source_file, plan_id "
        f"FROM smsp.audit_log WHERE run_id = '{run_id}' AND outcome <> 'pending' "
        "ORDER BY source_row, target",
    )


def _only_plan(tmp_path: Path) -> str:
    [(plan_id,)] = _query(tmp_path, "SELECT plan_id FROM smsp.plans")
    return plan_id


def _listed(emulator) -> set[str]:
    return {entry.phone_number for entry in emulator.state.stop_entries()}


def _summary(**counts) -> DeleteSummary:
    fields = dict.fromkeys(
        (
            "requested", "invalid", "duplicates", "refused", "not_on_list", "planned",
            "deleted", "already_gone", "rejected", "failed",
        ),
        0,
    )  # fmt: skip
    return DeleteSummary(**{**fields, "dry_run": False, **counts})


# -- the guard at its edges ------------------------------------------------------------------


@pytest.mark.parametrize(
    "consent_at", ["2025-03-01T11:00:00Z", "2025-03-01T12:00:00+01:00", "01/03/2025 12:00"]
)
def test_an_opt_out_at_exactly_the_consent_instant_is_not_deleted(
    client, emulator, tmp_path, consent_at
):
    emulator.state.seed_entries([(A, OPTED_OUT)])

    report = _run(
        client,
        tmp_path,
        Delete(confirm=True),
        PhoneValues([A], {**CONSENT, "consent_at": consent_at}),
    )

    assert A in _listed(emulator), "a consent at the opt-out's own instant removed it"
    assert (report.counts["refused"], report.counts["planned"]) == (1, 0)
    [(_, _, outcome, detail, *_)] = _audit(tmp_path, "run")
    assert outcome == "refused"
    assert detail == (
        "opted out at 2025-03-01 12:00 Paris time (11:00 UTC at the latest), after (or at) the "
        "consent of 2025-03-01 11:00 UTC: the opt-out stands"
    )


def test_a_consent_one_second_after_the_opt_out_deletes_it(client, emulator, tmp_path):
    emulator.state.seed_entries([(A, OPTED_OUT)])

    report = _run(
        client,
        tmp_path,
        Delete(confirm=True),
        PhoneValues([A], {**CONSENT, "consent_at": "2025-03-01T11:00:01Z"}),
    )

    assert A not in _listed(emulator)
    assert (report.counts["refused"], report.counts["deleted"]) == (0, 1)


def test_a_provider_entry_with_an_unreadable_opt_out_time_is_never_deleted(
    client, emulator, tmp_path
):
    emulator.state.seed_entries([(A, "0000-00-00 00:00:00"), (B, OPTED_OUT)])

    report = _run(client, tmp_path, Delete(confirm=True), PhoneValues([A, B], CONSENT))

    assert A in _listed(emulator), "an opt-out of unknown time was removed"
    assert B not in _listed(emulator)
    assert (report.counts["refused"], report.counts["deleted"]) == (1, 1)
    assert _audit(tmp_path, "run")[0][:4] == (
        1,
        A,
        "refused",
        "the provider's opt-out time is unreadable: the opt-out stands",
    )


def test_an_opt_out_whose_time_became_unreadable_since_the_plan_is_not_deleted(
    client, emulator, tmp_path
):
    emulator.state.seed_entries([(A, OPTED_OUT)])
    dry = _run(client, tmp_path, Delete(), PhoneValues([A], CONSENT), run_id="dry")
    emulator.state.delete_stop(emulator.state.stop_id_for(A))
    emulator.state.seed_entries([(A, "0000-00-00 00:00:00")])

    applied = _run(
        client, tmp_path, Delete(plan_id=dry.summary.plan_id), StoredPlan(dry.summary.plan_id)
    )

    assert A in _listed(emulator)
    assert (applied.counts["refused"], applied.counts["deleted"]) == (1, 0)
    assert _audit(tmp_path, "run")[0][2:4] == (
        "refused",
        "when applied: the provider's opt-out time is unreadable: the opt-out stands",
    )


def test_a_consent_in_the_future_is_refused_naming_it(client, emulator, tmp_path):
    emulator.state.seed_entries([(A, OPTED_OUT)])

    report = _run(
        client,
        tmp_path,
        Delete(confirm=True),
        PhoneValues([A], {**CONSENT, "consent_at": "2100-01-01"}),
    )

    assert A in _listed(emulator)
    assert report.counts["refused"] == 1
    assert _audit(tmp_path, "run")[0][2:4] == (
        "refused",
        "consent_at '2100-01-01' is in the future",
    )


@pytest.mark.parametrize(
    "evidence",
    [
        {"consent_at": "", "consent_source": "web form #1"},
        {"consent_at": "   ", "consent_source": "web form #1"},
        {"consent_at": "2026-01-15", "consent_source": ""},
        {"consent_at": "2026-01-15", "consent_source": "  "},
    ],
)
def test_a_row_without_both_consent_fields_is_refused_as_lacking_evidence(
    client, emulator, tmp_path, evidence
):
    emulator.state.seed_entries([(A, OPTED_OUT)])

    _run(client, tmp_path, Delete(confirm=True), PhoneValues([A], evidence))

    assert A in _listed(emulator)
    assert _audit(tmp_path, "run")[0][2:4] == (
        "refused",
        "no consent evidence: consent_at and consent_source are required",
    )


def test_a_number_not_on_the_list_is_recorded_as_such(client, emulator, tmp_path):
    emulator.state.seed_entries([(A, OPTED_OUT)])

    _run(client, tmp_path, Delete(), PhoneValues([B], CONSENT))

    assert _audit(tmp_path, "run")[0][2:4] == ("not_on_list", "the number is not on the stop list")


def test_unreadable_and_out_of_range_consent_dates_are_refused_with_their_reason():
    with pytest.raises(ValueError, match=r"^unreadable consent date 'le 15 janvier'$"):
        parse_consent_time("le 15 janvier")
    with pytest.raises(
        ValueError,
        match=r"^consent date '2300-01-01' is not between 1677-09-22 and 2262-04-10 "
        r"\(in the future\)$",
    ):
        parse_consent_time("2300-01-01")
    with pytest.raises(ValueError) as past:
        parse_consent_time("1600-01-01")
    assert "in the future" not in str(past.value)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        (" 2026-01-15T10:30:00+01:00 ", datetime(2026, 1, 15, 9, 30, tzinfo=UTC)),
        ("15/01/2026 10:30:15", datetime(2026, 1, 15, 9, 30, 15, tzinfo=UTC)),
        ("15/01/2026 10:30", datetime(2026, 1, 15, 9, 30, tzinfo=UTC)),
        ("15/01/2026", datetime(2026, 1, 14, 23, 0, tzinfo=UTC)),
        ("2026-07-15T10:30", datetime(2026, 7, 15, 8, 30, tzinfo=UTC)),
    ],
)
def test_consent_times_are_read_as_paris_time_unless_they_have_a_zone(text, utc):
    moment = parse_consent_time(text)

    assert moment == utc
    if "+" not in text:
        assert moment.utcoffset() == timedelta(hours=2 if "-07-" in text else 1), "Paris time"


# -- what enters the plan --------------------------------------------------------------------


def test_invalid_and_duplicate_rows_never_enter_the_plan(client, emulator, tmp_path):
    emulator.state.seed_entries([(A, OPTED_OUT), (B, OPTED_OUT)])

    report = _run(client, tmp_path, Delete(), PhoneValues([A, A, "not a number", "06123"], CONSENT))

    assert report.summary == _summary(
        requested=4,
        invalid=2,
        duplicates=1,
        planned=1,
        dry_run=True,
        plan_id=report.summary.plan_id,
    )
    assert [row[:3] for row in _audit(tmp_path, "run")] == [
        (1, A, "dry_run"),
        (2, A, "duplicate_in_file"),
        (3, "not a number", "invalid_input"),
        (4, "06123", "invalid_input"),
    ], "one row each, none refused or not on the list"
    assert _query(tmp_path, "SELECT target_count FROM smsp.plans") == [(1,)]


def test_a_dry_run_counts_every_refusal_and_absence_and_records_the_plan_rows(
    client, emulator, tmp_path
):
    path = tmp_path / "consents.csv"
    path.write_text(
        "phone,consent_at,consent_source\n"
        f"{A},2026-01-15T10:00:00Z,  web form #1  \n"  # 2: planned
        f"{B},2024-01-01,web form #2\n"  # 3: refused, opted out after
        f"{C},,web form #3\n"  # 4: refused, no consent time
        f"{D},2026-01-15,call centre\n"  # 5: not on the list
        "+33655555555,2026-01-15,call centre\n"  # 6: not on the list
        "+33666666666,15/01/2026 10:30,shop\n",  # 7: planned
        encoding="utf-8",
    )
    emulator.state.seed_entries((n, OPTED_OUT) for n in (A, B, C, "+33666666666"))

    report = _run(client, tmp_path, Delete(), PhoneFile(path))

    plan_id = _only_plan(tmp_path)
    assert report.summary == _summary(
        requested=6, refused=2, not_on_list=2, planned=2, dry_run=True, plan_id=plan_id
    )
    rows = _audit(tmp_path, "run")
    assert [row[:3] for row in rows] == [
        (2, A, "dry_run"),
        (3, B, "refused"),
        (4, C, "refused"),
        (5, D, "not_on_list"),
        (6, "+33655555555", "not_on_list"),
        (7, "+33666666666", "dry_run"),
    ]
    state = emulator.state
    assert (rows[0][4], rows[5][4]) == (state.stop_id_for(A), state.stop_id_for("+33666666666"))
    assert {row[5] for row in rows} == {str(path)} and {row[6] for row in rows} == {plan_id}
    assert _query(
        tmp_path,
        "SELECT position, source_row, target, stop_id, opted_out_at, consent_at, consent_source "
        "FROM smsp.plan_targets ORDER BY position",
    ) == [
        (
            1, 2, A, state.stop_id_for(A), datetime(2025, 3, 1, 12),
            datetime(2026, 1, 15, 10, tzinfo=UTC), "web form #1",
        ),
        (
            2, 7, "+33666666666", state.stop_id_for("+33666666666"), datetime(2025, 3, 1, 12),
            datetime(2026, 1, 15, 9, 30, tzinfo=UTC), "shop",
        ),
    ]  # fmt: skip
    [(sha, source_file, options)] = _query(
        tmp_path, "SELECT source_sha256, source_file, options FROM smsp.plans"
    )
    assert (sha, source_file) == (report.source_sha256, str(path)) and len(sha) == 64
    assert options == '{"default_region": "FR", "phone_column": "phone"}'


def test_a_confirmed_run_sums_the_refusals_before_and_the_deletions(client, emulator, tmp_path):
    emulator.state.seed_entries([(A, OPTED_OUT), (B, OPTED_OUT), (C, "2026-02-01 00:00:00")])

    report = _run(client, tmp_path, Delete(confirm=True), PhoneValues([A, B, C, D, D], CONSENT))

    assert report.summary == _summary(
        requested=5,
        duplicates=1,
        refused=1,
        not_on_list=1,
        planned=2,
        deleted=2,
        plan_id=_only_plan(tmp_path),
    )
    assert _listed(emulator) == {C}
    assert [row[:3] for row in _audit(tmp_path, "run")] == [
        (1, A, "applied"),
        (2, B, "applied"),
        (3, C, "refused"),
        (4, D, "not_on_list"),
        (5, D, "duplicate_in_file"),
    ]


def test_an_empty_deletion_stores_an_empty_plan_and_sends_nothing(client, emulator, tmp_path):
    emulator.state.seed_entries([(A, OPTED_OUT)])

    report = _run(client, tmp_path, Delete(confirm=True), PhoneValues([], CONSENT))

    assert report.summary == _summary(plan_id=_only_plan(tmp_path))
    assert _query(tmp_path, "SELECT source_file, target_count FROM smsp.plans") == [(None, 0)]
    assert _listed(emulator) == {A}


# -- the cap ---------------------------------------------------------------------------------


def test_a_plan_of_exactly_max_deletions_is_applied(client, emulator, tmp_path):
    emulator.state.seed_entries([(A, OPTED_OUT), (B, OPTED_OUT)])

    report = _run(
        client, tmp_path, Delete(confirm=True, max_deletions=2), PhoneValues([A, B], CONSENT)
    )

    assert report.counts["deleted"] == 2
    assert _listed(emulator) == set()


def test_a_plan_over_the_cap_records_each_target_refused_and_stays_to_apply(
    client, emulator, tmp_path
):
    emulator.state.seed_entries([(A, OPTED_OUT), (B, OPTED_OUT), (C, OPTED_OUT)])
    ids = [emulator.state.stop_id_for(number) for number in (A, B, C)]

    with pytest.raises(DeletionCapExceeded) as refused:
        _run(
            client, tmp_path, Delete(confirm=True, max_deletions=2), PhoneValues([A, B, C], CONSENT)
        )

    assert str(refused.value) == (
        "command line: plan of 3 deletions exceeds max_deletions=2: nothing was deleted"
    )
    assert _listed(emulator) == {A, B, C}
    assert "stop-sms/delete" not in emulator.stats()["endpoints"]
    plan_id = _only_plan(tmp_path)
    detail = "plan of 3 deletions exceeds max_deletions=2"
    assert _audit(tmp_path, "run") == [
        (row, number, "refused", detail, stop_id, "command line", plan_id)
        for row, number, stop_id in zip((1, 2, 3), (A, B, C), ids, strict=True)
    ]
    assert _query(tmp_path, "SELECT applied_at, applied_by_run FROM smsp.plans") == [(None, None)]

    applied = _run(client, tmp_path, Delete(plan_id=plan_id, max_deletions=3), StoredPlan(plan_id))

    assert applied.counts["deleted"] == 3 and _listed(emulator) == set()


# -- applying a stored plan ------------------------------------------------------------------


def _dry_run(client, tmp_path, numbers, *, account=None) -> str:
    report = _run(
        client, tmp_path, Delete(), PhoneValues(numbers, CONSENT), run_id="dry", account=account
    )
    return report.summary.plan_id


def test_applying_a_plan_checks_every_target_again_and_counts_each_fate(client, emulator, tmp_path):
    numbers = [A, B, C, D, "+33655555555"]
    emulator.state.seed_entries((n, OPTED_OUT) for n in numbers)
    plan_id = _dry_run(client, tmp_path, numbers)
    state = emulator.state
    for number in (A, B):  # gone since the plan
        state.delete_stop(state.stop_id_for(number))
    for number in (C, D):  # opted out again since the plan, after the consent
        state.delete_stop(state.stop_id_for(number))
        state.add_stop(number, datetime(2026, 2, 1, 9, 0))

    report = _run(client, tmp_path, Delete(plan_id=plan_id), StoredPlan(plan_id))

    assert report.summary == _summary(
        requested=5, refused=2, not_on_list=2, planned=5, deleted=1, plan_id=plan_id
    )
    assert _listed(emulator) == {C, D}
    rows = _audit(tmp_path, "run")
    assert [row[:3] for row in rows] == [
        (1, A, "not_on_list"),
        (2, B, "not_on_list"),
        (3, C, "refused"),
        (4, D, "refused"),
        (5, "+33655555555", "applied"),
    ]
    assert rows[0][3] == "when applied: no longer on the stop list"
    assert rows[2][3].startswith("when applied: opted out at 2026-02-01 09:00 Paris time")
    assert {row[5] for row in rows} == {"command line"}, "the plan's source file"
    assert {row[6] for row in rows} == {plan_id}


def test_a_plan_of_another_operation_is_not_a_deletion_plan(client, emulator, tmp_path):
    emulator.state.seed_entries([(A, OPTED_OUT)])
    stored = store_plan(
        _warehouse(tmp_path),
        Plan("add", None, {}, None, None, [PlanTarget(1, A, stop_id=1)]),
        run_id="push",
    )

    with pytest.raises(PlanRefused, match=r"^no deletion plan '[0-9a-f]{64}': run a dry run"):
        _run(client, tmp_path, Delete(plan_id=stored.plan_id), StoredPlan(stored.plan_id))

    assert A in _listed(emulator)


def test_a_plan_of_another_account_is_refused(client, emulator, tmp_path):
    emulator.state.seed_entries([(A, OPTED_OUT)])
    plan_id = _dry_run(client, tmp_path, [A], account="shop")

    with pytest.raises(PlanRefused) as refused:
        _run(client, tmp_path, Delete(plan_id=plan_id), StoredPlan(plan_id), account="bank")

    assert str(refused.value) == f"plan {plan_id} is account 'shop''s, not 'bank''s"
    assert A in _listed(emulator)
    same = _run(client, tmp_path, Delete(plan_id=plan_id), StoredPlan(plan_id), account="shop")
    assert same.counts["deleted"] == 1


def _file_plan(client, emulator, tmp_path) -> tuple[str, str]:
    emulator.state.seed_entries([(A, OPTED_OUT)])
    path = tmp_path / "consents.csv"
    path.write_text(f"Phone,consent_at,consent_source\n{A},2026-01-15,web\n", encoding="utf-8")
    dry = _run(client, tmp_path, Delete(), PhoneFile(path), run_id="dry")
    return dry.summary.plan_id, dry.source_sha256


@pytest.mark.parametrize(
    "given",
    [
        (("default_region", " fr "),),
        (("phone_column", " PHONE "),),
        (("source_sha256", "same"), ("phone_column", "phone"), ("default_region", "FR")),
    ],
)
def test_options_given_again_as_the_plan_has_them_apply_it(client, emulator, tmp_path, given):
    plan_id, sha = _file_plan(client, emulator, tmp_path)
    given = tuple((name, sha if value == "same" else value) for name, value in given)

    report = _run(client, tmp_path, Delete(plan_id=plan_id, given=given), StoredPlan(plan_id))

    assert report.counts["deleted"] == 1


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            (("source_sha256", "same"), ("default_region", "BE")),
            "default_region='BE' differs from plan {plan_id}'s default_region='FR': a "
            "confirmation applies the plan as stored; leave default_region out, or run a new "
            "dry run with default_region='BE'",
        ),
        (
            (("source_sha256", "same"), ("phone_column", "consent_source")),
            "phone_column='consent_source' differs from plan {plan_id}'s phone_column='Phone'",
        ),
        (
            (("source_sha256", "0" * 64),),
            "the file given does not hold the bytes plan {plan_id} was made from ({path}): a "
            "confirmation applies the plan as stored; run a new dry run of the file as it is now",
        ),
        (
            (("sheet", "1"),),
            "sheet='1' differs from plan {plan_id}'s sheet=None",
        ),
    ],
)
def test_an_option_given_again_that_differs_from_the_plan_refuses_it(
    client, emulator, tmp_path, given, message
):
    plan_id, sha = _file_plan(client, emulator, tmp_path)
    given = tuple((name, sha if value == "same" else value) for name, value in given)

    with pytest.raises(PlanRefused) as refused:
        _run(client, tmp_path, Delete(plan_id=plan_id, given=given), StoredPlan(plan_id))

    assert str(refused.value).startswith(
        message.format(plan_id=plan_id, path=tmp_path / "consents.csv")
    )
    assert A in _listed(emulator)


def test_a_plan_given_no_options_applies_whatever_it_was_made_with(client, emulator, tmp_path):
    plan_id, _ = _file_plan(client, emulator, tmp_path)

    report = _run(client, tmp_path, Delete(plan_id=plan_id), StoredPlan(plan_id))

    assert report.counts["deleted"] == 1


def _age(tmp_path: Path, plan_id: str, hours: float) -> None:
    _execute(
        tmp_path,
        f"UPDATE smsp.plans SET created_at = now() - INTERVAL {int(hours * 3600)} SECOND "
        f"WHERE plan_id = '{plan_id}'",
    )


@pytest.mark.parametrize(
    ("made_hours_ago", "max_age", "ago", "limit"),
    [
        (72, timedelta(hours=48), "3 days", "2 days"),
        (47, timedelta(hours=36), "47 hours", "36 hours"),
        (50, timedelta(hours=47.5), "2.08 days", "47.5 hours"),
        # 1.0051 hours: a second more or less in an hour would show 1 hour.
        (50, timedelta(seconds=3618.36), "2.08 days", "1.01 hours"),
    ],
)
def test_a_plan_older_than_its_max_age_is_refused_naming_both(
    client, emulator, tmp_path, made_hours_ago, max_age, ago, limit
):
    emulator.state.seed_entries([(A, OPTED_OUT)])
    plan_id = _dry_run(client, tmp_path, [A])
    _age(tmp_path, plan_id, made_hours_ago)
    [(created,)] = _query(
        tmp_path, f"SELECT created_at FROM smsp.plans WHERE plan_id = '{plan_id}'"
    )

    with pytest.raises(PlanRefused) as refused:
        _run(client, tmp_path, Delete(plan_id=plan_id, plan_max_age=max_age), StoredPlan(plan_id))

    assert str(refused.value) == (
        f"plan {plan_id} was made {ago} ago, at {created.astimezone(UTC):%Y-%m-%d %H:%M} UTC, "
        f"more than plan_max_age ({limit}): run a new dry run"
    )
    assert A in _listed(emulator)


def test_a_plan_younger_than_its_max_age_is_applied(client, emulator, tmp_path):
    emulator.state.seed_entries([(A, OPTED_OUT)])
    plan_id = _dry_run(client, tmp_path, [A])
    _age(tmp_path, plan_id, 24)

    report = _run(
        client,
        tmp_path,
        Delete(plan_id=plan_id, plan_max_age=timedelta(hours=48)),
        StoredPlan(plan_id),
    )

    assert report.counts["deleted"] == 1


def test_a_plan_applied_already_is_refused_naming_the_run_time_and_outcomes(
    client, emulator, tmp_path
):
    emulator.state.seed_entries([(A, OPTED_OUT), (B, OPTED_OUT)])
    plan_id = _dry_run(client, tmp_path, [A, B])
    emulator.state.delete_stop(emulator.state.stop_id_for(B))
    _run(client, tmp_path, Delete(plan_id=plan_id), StoredPlan(plan_id), run_id="first")
    [(applied_at,)] = _query(tmp_path, "SELECT applied_at FROM smsp.plans")

    with pytest.raises(PlanRefused) as refused:
        _run(client, tmp_path, Delete(plan_id=plan_id), StoredPlan(plan_id), run_id="second")

    assert str(refused.value) == (
        f"plan {plan_id} was applied by run first at "
        f"{applied_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC (applied 1, not_on_list 1): a plan "
        "is applied once; nothing was sent"
    )


# -- the warehouse's plans -------------------------------------------------------------------


def _target(row: int | None = 2, **fields) -> PlanTarget:
    defaults = {
        "stop_id": 7,
        "opted_out_at": datetime(2025, 3, 1, 12, 0, 0, 123456),
        "consent_at": datetime(2026, 1, 15, 9, 0, 0, 654321, tzinfo=UTC),
        "consent_source": "web",
    }
    return PlanTarget(row, A, **{**defaults, **fields})


def _plan(*targets: PlanTarget, **fields) -> Plan:
    defaults = {
        "operation": "delete",
        "account": "smsp",
        "options": {"default_region": "FR"},
        "source_file": "f.csv",
        "source_sha256": "abc",
    }
    return Plan(**{**defaults, "targets": list(targets), **fields})


def test_a_stored_plan_loads_with_every_field_as_it_was_given(tmp_path):
    warehouse = _warehouse(tmp_path)
    targets = [
        _target(2),
        _target(
            None,
            stop_id=None,
            opted_out_at=None,
            consent_at=datetime(2026, 1, 15, 10, 0, 0, 1, tzinfo=timezone(timedelta(hours=1))),
            consent_source=None,
        ),
        _target(4, consent_at=None),
    ]
    plan = _plan(*targets, options={"default_region": "BE", "phone_column": "tel"})

    stored = store_plan(warehouse, plan, run_id="r1")
    loaded = load_plan(warehouse, stored.plan_id)

    assert loaded == stored
    assert loaded.targets == targets
    assert loaded.targets[1].consent_at.tzinfo == UTC
    assert (loaded.operation, loaded.account, dict(loaded.options)) == (
        "delete",
        "smsp",
        {"default_region": "BE", "phone_column": "tel"},
    )
    assert (loaded.source_file, loaded.source_sha256, loaded.follows) == ("f.csv", "abc", None)
    assert (loaded.created_by_run, loaded.applied_at, loaded.applied_by_run) == ("r1", None, None)
    assert loaded.created_at.tzinfo == UTC
    assert abs(loaded.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert loaded.plan_id == plan.content_hash()
    assert _query(tmp_path, "SELECT target_count FROM smsp.plans") == [(3,)]


def test_an_empty_plan_is_stored_and_loads_without_targets(tmp_path):
    warehouse = _warehouse(tmp_path)

    stored = store_plan(warehouse, _plan(), run_id="r1")

    assert load_plan(warehouse, stored.plan_id).targets == []
    assert load_plan(warehouse, "0" * 64) is None


@pytest.mark.parametrize(
    "change",
    [
        {"operation": "add"},
        {"account": "other"},
        {"options": {"default_region": "BE"}},
        {"follows": "f" * 64},
        {"targets": [_target(3)]},
        {"targets": [PlanTarget(2, B, 7, _target().opted_out_at, _target().consent_at, "web")]},
        {"targets": [_target(stop_id=8)]},
        {"targets": [_target(opted_out_at=datetime(2025, 3, 1, 12))]},
        {"targets": [_target(consent_at=datetime(2026, 1, 15, 9, tzinfo=UTC))]},
        {"targets": [_target(consent_source="shop")]},
    ],
)
def test_a_plan_id_changes_with_any_of_its_content(change):
    plan = _plan(_target())

    assert Plan(**{**_fields(plan), **change}).content_hash() != plan.content_hash()


def _fields(plan: Plan) -> dict:
    return {name: getattr(plan, name) for name in Plan.__slots__}


def test_a_plan_id_depends_on_the_consent_instant_not_its_zone():
    utc = _plan(_target(consent_at=datetime(2026, 1, 15, 9, tzinfo=UTC)))
    paris = _plan(
        _target(consent_at=datetime(2026, 1, 15, 10, tzinfo=timezone(timedelta(hours=1))))
    )

    assert utc.content_hash() == paris.content_hash()
    assert len(utc.content_hash()) == 64 and re.fullmatch("[0-9a-f]+", utc.content_hash())


def test_content_planned_again_after_each_application_follows_the_last_applied_plan(tmp_path):
    warehouse = _warehouse(tmp_path)
    first = store_plan(warehouse, _plan(_target()), run_id="dry-1")
    claim_plan(warehouse, first.plan_id, run_id="apply-1")
    second = store_plan(warehouse, _plan(_target()), run_id="dry-2")
    claim_plan(warehouse, second.plan_id, run_id="apply-2")

    third = store_plan(warehouse, _plan(_target()), run_id="dry-3")
    again = store_plan(warehouse, _plan(_target()), run_id="dry-4")

    assert second.follows == first.plan_id and third.follows == second.plan_id
    assert len({first.plan_id, second.plan_id, third.plan_id}) == 3
    assert again == third, "an unapplied plan is stored once"
    assert (third.created_by_run, third.applied_by_run) == ("dry-3", None)
    assert _query(tmp_path, "SELECT count(*) FROM smsp.plan_targets") == [(3,)]


def test_a_claim_names_the_run_that_applied_the_plan_and_when(tmp_path):
    warehouse = _warehouse(tmp_path)
    plan = store_plan(warehouse, _plan(_target()), run_id="dry")

    first = claim_plan(warehouse, plan.plan_id, run_id="apply-1")
    second = claim_plan(warehouse, plan.plan_id, run_id="apply-2")

    assert (first.claimed, first.applied_by_run) == (True, "apply-1")
    assert (second.claimed, second.applied_by_run, second.applied_at) == (
        False,
        "apply-1",
        first.applied_at,
    )
    assert first.applied_at.tzinfo == UTC
    assert abs(first.applied_at - datetime.now(UTC)) < timedelta(minutes=1)
    loaded = load_plan(warehouse, plan.plan_id)
    assert (loaded.applied_by_run, loaded.applied_at) == ("apply-1", first.applied_at)
    with pytest.raises(KeyError):
        claim_plan(warehouse, "0" * 64, run_id="apply-3")


def test_a_phone_column_given_again_is_compared_as_headers_are_read(client, emulator, tmp_path):
    emulator.state.seed_entries([(A, OPTED_OUT)])
    path = tmp_path / "consents.csv"
    path.write_text(f"Téléphone,consent_at,consent_source\n{A},2026-01-15,web\n", encoding="utf-8")
    plan_id = _run(client, tmp_path, Delete(), PhoneFile(path), run_id="dry").summary.plan_id

    report = _run(
        client,
        tmp_path,
        Delete(plan_id=plan_id, given=(("phone_column", "telephone"),)),
        StoredPlan(plan_id),
    )

    assert report.counts["deleted"] == 1, "accents and case aside, it is the plan's column"


# -- survivors of the second mutation run (docs/mutation.md) ---------------------------------


def test_a_plan_applies_to_the_id_the_number_has_on_the_list_now(client, emulator, tmp_path):
    """The provider re-listed the number under a new id since the plan (same opt-out time):
    the deletion goes to the id on the list now, never to the plan's stale one."""
    emulator.state.seed_entries([(A, OPTED_OUT)])
    plan_id = _dry_run(client, tmp_path, [A])
    state = emulator.state
    stale = state.stop_id_for(A)
    state.delete_stop(stale)
    state.add_stop(A, datetime(2025, 3, 1, 12, 0))
    current = state.stop_id_for(A)
    assert current != stale

    report = _run(client, tmp_path, Delete(plan_id=plan_id), StoredPlan(plan_id))

    assert A not in _listed(emulator)
    assert report.counts["deleted"] == 1
    [(_, _, outcome, _, stop_id, *_)] = _audit(tmp_path, "run")
    assert (outcome, stop_id) == ("applied", current)


def test_a_confirmed_run_counts_its_invalid_rows(client, emulator, tmp_path):
    emulator.state.seed_entries([(A, OPTED_OUT)])

    report = _run(client, tmp_path, Delete(confirm=True), PhoneValues([A, "not a number"], CONSENT))

    assert (report.counts["invalid"], report.counts["deleted"]) == (1, 1)


def test_a_consent_given_at_this_very_instant_is_not_in_the_future(
    client, emulator, tmp_path, monkeypatch
):
    from smsp_connector.operations import delete

    instant = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return instant.astimezone(tz)

    monkeypatch.setattr(delete, "datetime", Frozen)
    emulator.state.seed_entries([(A, OPTED_OUT)])

    report = _run(
        client,
        tmp_path,
        Delete(confirm=True),
        PhoneValues([A], {**CONSENT, "consent_at": "2026-01-15T10:00:00Z"}),
    )

    assert (report.counts["refused"], report.counts["deleted"]) == (0, 1)


@pytest.fixture
def tokyo_local_time(monkeypatch):
    """The machine's local zone is Tokyo's (UTC+9): nothing shown as UTC may follow it."""
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_refusal_shows_the_consent_in_utc_whatever_the_local_zone(
    client, emulator, tmp_path, tokyo_local_time
):
    emulator.state.seed_entries([(A, OPTED_OUT)])

    _run(
        client,
        tmp_path,
        Delete(confirm=True),
        PhoneValues([A], {**CONSENT, "consent_at": "2025-03-01T11:00:00Z"}),
    )

    [(_, _, outcome, detail, *_)] = _audit(tmp_path, "run")
    assert outcome == "refused"
    assert detail.endswith("after (or at) the consent of 2025-03-01 11:00 UTC: the opt-out stands")


def test_the_deletions_progress_is_named_for_what_it_counts(client, emulator, tmp_path):
    emulator.state.seed_entries([(A, OPTED_OUT), (B, OPTED_OUT)])
    bars: list[tuple[int, str]] = []

    def progress(total: int, what: str):
        bars.append((total, what))
        return log_progress(lambda line: None)(total, what)

    run_operation(
        Delete(confirm=True),
        PhoneValues([A, B], CONSENT),
        RunContext(
            client=client,
            warehouse=_warehouse(tmp_path),
            run_id="run",
            job="test",
            progress=progress,
        ),
    )

    assert (2, "numbers deleted") in bars


def test_a_consent_date_before_the_range_is_refused_without_a_future_note():
    with pytest.raises(
        ValueError, match=r"^consent date '1600-01-01' is not between 1677-09-22 and 2262-04-10$"
    ):
        parse_consent_time("1600-01-01")


def test_a_plan_its_id_and_its_stored_times_do_not_follow_the_machines_zone(tmp_path, monkeypatch):
    import time

    plan = _plan(
        _target(2),
        _target(
            3, consent_at=datetime(2026, 1, 15, 10, 0, 0, 1, tzinfo=timezone(timedelta(hours=1)))
        ),
    )
    in_utc = plan.content_hash()
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        in_tokyo = plan.content_hash()
        warehouse = _warehouse(tmp_path)
        loaded = load_plan(warehouse, store_plan(warehouse, plan, run_id="r1").plan_id)
    finally:
        monkeypatch.undo()
        time.tzset()

    assert in_tokyo == in_utc
    assert loaded.targets == plan.targets
    assert loaded.plan_id == in_utc


def test_plan_targets_compare_by_length_and_content_and_index_like_a_list():
    import numpy as np
    import pandas as pd

    from smsp_connector.warehouse.plans import PlanTargets

    two = PlanTargets.of([_target(2), _target(3)])
    assert two != PlanTargets.of([_target(2)]), "a different length is not equal"
    assert two[:1] == [_target(2)] and len(two[1:]) == 1
    # A frame whose missing stop id pandas holds as a float NaN reads back as None.
    frame = two.frame.assign(stop_id=[np.nan, 7.0])
    assert PlanTargets(pd.DataFrame(frame))[0].stop_id is None


def _push_plan(*numbers: str) -> Plan:
    """A push plan of ``numbers`` (rows 2, 3...), made by the run that applies it."""
    rows = list(range(2, len(numbers) + 2))
    return _plan(operation="add", targets=PlanTargets.rows(rows, list(numbers)), made_to_apply=True)


def test_plan_ids_are_the_same_from_one_version_to_the_next():
    """Plan ids are stored in users' warehouses and compared with the ids of plans made later
    (an unapplied plan is stored once; a confirmation names one): the hash's form is part of the
    stored format. Pinned for a deletion plan with evidence and a push plan made to apply."""
    deletion = _plan(
        _target(2),
        _target(None, stop_id=None, opted_out_at=None, consent_at=None, consent_source=None),
    )
    push = _push_plan(A, B)

    assert deletion.content_hash() == (
        "d159d1c36c0f98dfa8fb089c121500522bf5e8ab8acac50e5945669a5e388a31"
    )
    assert push.content_hash("run-1") == (
        "39a9763fc25eb3fd3a2363c9360fa06d3c5190449589862f7ae2c36919b749e8"
    )
    assert push.content_hash("run-2") != push.content_hash("run-1"), "made to apply: per run"


def test_plans_made_to_apply_by_two_runs_are_two_plans(tmp_path):
    """A push plans and applies in one run: the same numbers pushed by two runs are two plans,
    each applied once, never one plan the second run finds applied already."""
    warehouse = _warehouse(tmp_path)
    push = _push_plan(A)

    first = store_plan(warehouse, push, run_id="run-1")
    second = store_plan(warehouse, push, run_id="run-2")

    assert first.plan_id == push.content_hash("run-1")
    assert second.plan_id == push.content_hash("run-2") != first.plan_id
    assert (second.created_by_run, second.follows) == ("run-2", None)


def test_claiming_a_plan_that_is_not_stored_names_it(tmp_path):
    warehouse = _warehouse(tmp_path)
    store_plan(warehouse, _plan(_target()), run_id="dry")

    with pytest.raises(KeyError) as raised:
        claim_plan(warehouse, "f" * 64, run_id="apply")

    assert raised.value.args == ("f" * 64,)


def test_a_loaded_plans_times_are_in_utc_whatever_the_local_zone(tmp_path, tokyo_local_time):
    """``smsp plans show`` and the JSON plan print these: in UTC, never the machine's zone."""
    warehouse = _warehouse(tmp_path)
    consent = datetime(2026, 1, 15, 10, 0, 0, 1, tzinfo=timezone(timedelta(hours=1)))
    stored = store_plan(warehouse, _plan(_target(3, consent_at=consent)), run_id="r1")
    claim_plan(warehouse, stored.plan_id, run_id="apply")

    loaded = load_plan(warehouse, stored.plan_id)

    assert loaded.targets[0].consent_at.utcoffset() == timedelta(0)
    assert loaded.targets[0].consent_at == consent
    assert loaded.created_at.utcoffset() == timedelta(0)
    assert loaded.applied_at.utcoffset() == timedelta(0)
