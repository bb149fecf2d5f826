"""The retention purge as a plan like any change: surveyed and stored (a dry run stops there),
then applied exactly, once (:mod:`smsp_connector.warehouse.retention` holds the rules and SQL).
The Dagster asset, ``smsp retention purge`` and ``smsp plans apply`` all come here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from smsp_connector.operations.plans import PlanRefused, plan_to_apply
from smsp_connector.settings import SettingsError
from smsp_connector.warehouse.exports import MIN_HMAC_KEY_BYTES
from smsp_connector.warehouse.plans import Plan, PlanTarget, store_plan
from smsp_connector.warehouse.pseudonyms import key_id
from smsp_connector.warehouse.retention import (
    LIST_FRESHNESS,
    PURGE_OPERATION,
    Cutoffs,
    PurgeAudit,
    PurgeDrifted,
    PurgeSurvey,
    apply_purge,
    record_dry_run,
    survey,
)
from smsp_connector.warehouse.tables import Warehouse


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each kind of personal data is kept (the account's settings)."""

    rejected: timedelta
    """Raw rejected values."""
    ended: timedelta
    """Numbers whose opt-outs all ended (or that never were one), after their last trace."""

    def cutoffs(self, now: datetime) -> Cutoffs:
        return Cutoffs(
            rejected_before=now - self.rejected,
            ended_before=now - self.ended,
            listed_since=now - LIST_FRESHNESS,
        )


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What a purge did, or (a dry run) would do, and the plan it did it from."""

    plan_id: str
    dry_run: bool
    rejected_values: int
    """Rejected raw values cleared (or to clear)."""
    rejected_audit_rows: int
    numbers: int
    """Numbers replaced by their pseudonym (or to replace)."""
    number_rows: int
    """Rows changed for them (0 in a dry run)."""
    numbers_kept_without_key: int
    """Numbers past retention kept whole: no HMAC key to make their pseudonyms."""
    numbers_kept_list_stale: int
    """Numbers past retention kept whole: the provider's list was not read in the last 36 h
    (run the refresh first)."""
    rejected_before: datetime
    ended_before: datetime
    key_id: str | None

    def counts(self) -> dict[str, int]:
        return {
            "rejected_values": self.rejected_values,
            "rejected_audit_rows": self.rejected_audit_rows,
            "numbers": self.numbers,
            "number_rows": self.number_rows,
            "numbers_kept_without_key": self.numbers_kept_without_key,
            "numbers_kept_list_stale": self.numbers_kept_list_stale,
        }


def checked_key(key: bytes | None) -> bytes | None:
    """The HMAC key, refused when too short to be a secret (as the export refuses it)."""
    if key is not None and len(key.strip()) < MIN_HMAC_KEY_BYTES:
        raise SettingsError(
            f"the HMAC key (SMSP_EXPORT_HMAC_KEY) needs at least {MIN_HMAC_KEY_BYTES} bytes "
            "besides spaces"
        )
    return key or None


def purge(
    warehouse: Warehouse,
    retention: Retention,
    *,
    key: bytes | None,
    audit: PurgeAudit,
    dry_run: bool,
    now: datetime | None = None,
) -> PurgeReport:
    """Survey what has expired at ``now``, store it as a plan, and apply it unless ``dry_run``
    (then ``smsp plans apply`` applies the stored plan later, exactly)."""
    key = checked_key(key)
    found = survey(warehouse, retention.cutoffs(now or datetime.now(UTC)), key)
    plan = store_plan(warehouse, _plan(found, key, audit.account, dry_run), run_id=audit.run_id)
    planned = _planned(plan)
    if dry_run:
        record_dry_run(warehouse, planned, plan_id=plan.plan_id, audit=audit)
        return _report(plan, planned, number_rows=0, dry_run=True)
    return _apply(warehouse, plan, planned, key, audit)


def apply_purge_plan(
    warehouse: Warehouse,
    plan_id: str,
    *,
    key: bytes | None,
    audit: PurgeAudit,
    max_age: timedelta,
) -> PurgeReport:
    """Apply the stored purge plan ``plan_id`` (a dry run's), exactly, once;
    :class:`PlanRefused` when it cannot be, nothing changed."""
    key = checked_key(key)
    plan = plan_to_apply(
        warehouse, plan_id, operation=PURGE_OPERATION, account=audit.account, max_age=max_age
    )
    planned = _planned(plan)
    wanted = plan.options.get("key_id")
    if wanted is not None and (key is None or key_id(key) != wanted):
        raise PlanRefused(
            f"plan {plan_id} pseudonymises numbers with the HMAC key {wanted}; the key set "
            f"is {'none' if key is None else key_id(key)}: nothing changed"
        )
    return _apply(warehouse, plan, planned, key, audit)


def _apply(
    warehouse: Warehouse, plan: Plan, planned: PurgeSurvey, key: bytes | None, audit: PurgeAudit
) -> PurgeReport:
    try:
        done = apply_purge(warehouse, plan_id=plan.plan_id, planned=planned, key=key, audit=audit)
    except PurgeDrifted as error:
        raise PlanRefused(str(error)) from None
    return _report(plan, planned, number_rows=done.number_rows, dry_run=False)


def _plan(found: PurgeSurvey, key: bytes | None, account: str | None, dry_run: bool) -> Plan:
    """The plan of ``found``: its cutoffs and counts as options, its numbers as pseudonyms
    (a purge plan never holds a number it is about to remove)."""
    pseudonyms = found.numbers["pseudonym"].tolist() if key else []
    return Plan(
        operation=PURGE_OPERATION,
        account=account,
        options={
            "rejected_before": found.cutoffs.rejected_before.astimezone(UTC).isoformat(),
            "ended_before": found.cutoffs.ended_before.astimezone(UTC).isoformat(),
            "listed_since": found.cutoffs.listed_since.astimezone(UTC).isoformat(),
            "numbers_kept_list_stale": found.kept_list_stale,
            "rejected_values": found.rejected_values,
            "rejected_audit_rows": found.rejected_audit_rows,
            "key_id": key_id(key) if key else None,
            "numbers_kept_without_key": 0 if key else len(found.numbers),
        },
        source_file=None,
        source_sha256=None,
        targets=[PlanTarget(source_row=None, target=p) for p in pseudonyms],
        made_to_apply=not dry_run,
    )


def _planned(plan: Plan) -> PurgeSurvey:
    """The survey a stored plan holds: what applying it must find again."""
    options = plan.options
    return PurgeSurvey(
        cutoffs=Cutoffs(
            rejected_before=datetime.fromisoformat(options["rejected_before"]),
            ended_before=datetime.fromisoformat(options["ended_before"]),
            listed_since=datetime.fromisoformat(options["listed_since"]),
        ),
        rejected_values=int(options["rejected_values"]),
        rejected_audit_rows=int(options["rejected_audit_rows"]),
        numbers=pd.DataFrame(
            {"phone_number": "", "pseudonym": [t.target for t in plan.targets]}, dtype=object
        ),
    )


def _report(plan: Plan, planned: PurgeSurvey, *, number_rows: int, dry_run: bool) -> PurgeReport:
    return PurgeReport(
        plan_id=plan.plan_id,
        dry_run=dry_run,
        rejected_values=planned.rejected_values,
        rejected_audit_rows=planned.rejected_audit_rows,
        numbers=len(planned.numbers),
        number_rows=number_rows,
        numbers_kept_without_key=int(plan.options["numbers_kept_without_key"]),
        numbers_kept_list_stale=int(plan.options["numbers_kept_list_stale"]),
        rejected_before=planned.cutoffs.rejected_before,
        ended_before=planned.cutoffs.ended_before,
        key_id=plan.options.get("key_id"),
    )
