"""What every stored plan's application shares, whatever it changes: finding the plan, the
refusals that come before any call (unknown, another operation or account, options given again
that differ, applied already, too old), and claiming it for one run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from smsp_connector.client import MutationKind
from smsp_connector.intake import Intake, normalize_header
from smsp_connector.warehouse.audit import AuditWriter, outcome_counts
from smsp_connector.warehouse.plans import Plan, PlanTarget, claim_plan, load_plan, store_plan
from smsp_connector.warehouse.tables import Warehouse

OPERATION_NAMES = {
    MutationKind.ADD: "push",
    MutationKind.DELETE: "deletion",
    MutationKind.CANCEL: "cancel",
}
"""The audit log's operation names as a plan's refusals name them."""


class PlanRefused(RuntimeError):
    """A stored plan cannot be applied (unknown, too old, already applied…): nothing was sent."""


def plan_intake(
    operation: str,
    intake: Intake,
    targets: Sequence[PlanTarget],
    *,
    warehouse: Warehouse,
    audit: AuditWriter,
    made_to_apply: bool,
    read_back: bool = True,
) -> Plan:
    """Store the plan of ``targets`` read from ``intake`` (its file, bytes and reading
    options), before any call, and name it on the audit rows recorded from now on
    (``read_back``: see :func:`~smsp_connector.warehouse.plans.store_plan`)."""
    plan = store_plan(
        warehouse,
        Plan(
            operation=operation,
            account=audit.account,
            options=dict(intake.options),
            source_file=intake.source_file,
            source_sha256=intake.sha256,
            targets=targets,
            made_to_apply=made_to_apply,
        ),
        run_id=audit.run_id,
        read_back=read_back,
        memory_limit=audit.memory_limit,
    )
    audit.name_plan(plan.plan_id)
    return plan


def plan_to_apply(
    warehouse: Warehouse,
    plan_id: str,
    *,
    operation: str,
    account: str | None,
    max_age: timedelta,
    given: Mapping[str, str] | None = None,
) -> Plan:
    """The stored plan ``plan_id``, checked for application; raises :class:`PlanRefused` for
    a plan that is unknown, of another operation or account, that an option ``given`` again
    differs from, applied already, or older than ``max_age``."""
    plan = load_plan(warehouse, plan_id)
    kind = OPERATION_NAMES.get(operation, operation)
    if plan is None or plan.operation != operation:
        raise PlanRefused(f"no {kind} plan {plan_id!r}: run a dry run to make one")
    if plan.account != account:
        raise PlanRefused(f"plan {plan_id} is account {plan.account!r}'s, not {account!r}'s")
    conflict = option_conflict(plan, given or {})
    if conflict:
        raise PlanRefused(conflict)
    if plan.applied_by_run is not None:
        raise PlanRefused(applied_already(warehouse, plan))
    assert plan.created_at is not None
    age = datetime.now(UTC) - plan.created_at
    if age > max_age:
        raise PlanRefused(
            f"plan {plan_id} was made {_duration(age)} ago, at {plan.created_at:%Y-%m-%d %H:%M}"
            f" UTC, more than plan_max_age ({_duration(max_age)}): run a new dry run"
        )
    return plan


def claim(warehouse: Warehouse, plan: Plan, *, run_id: str) -> None:
    """Mark ``plan`` applied by ``run_id``; :class:`PlanRefused` if another run did first."""
    claimed = claim_plan(warehouse, plan.plan_id, run_id=run_id)
    if not claimed.claimed:
        raise PlanRefused(
            applied_already(
                warehouse,
                replace(plan, applied_by_run=claimed.applied_by_run, applied_at=claimed.applied_at),
            )
        )


PLAN_OPTIONS = ("phone_column", "default_region")
"""The options of a file's reading that make its plan: given again with a confirmation, they
must be the plan's."""


def option_conflict(plan: Plan, given: Mapping[str, str]) -> str | None:
    """One line naming the first option of ``given`` that differs from ``plan``'s, else None."""
    for name, value in given.items():
        if name == "source_sha256":
            if value != plan.source_sha256:
                return (
                    f"the file given does not hold the bytes plan {plan.plan_id} was made from "
                    f"({plan.source_file}): a confirmation applies the plan as stored; run a "
                    "new dry run of the file as it is now"
                )
            continue
        stored = plan.options.get(name)
        if not _same_option(name, value, stored):
            return (
                f"{name}={value!r} differs from plan {plan.plan_id}'s {name}={stored!r}: a "
                f"confirmation applies the plan as stored; leave {name} out, or run a new dry "
                f"run with {name}={value!r}"
            )
    return None


def _same_option(name: str, value: str, stored: object) -> bool:
    if stored is None:
        return False
    if name == "phone_column":
        return normalize_header(value) == normalize_header(str(stored))
    return value.strip().upper() == str(stored).upper()


def applied_already(warehouse: Warehouse, plan: Plan) -> str:
    """One line: which run applied ``plan``, when, and what became of its targets."""
    counts = outcome_counts(warehouse, str(plan.applied_by_run), plan.operation)
    done = ", ".join(f"{outcome} {count}" for outcome, count in sorted(counts.items()))
    when = f" at {plan.applied_at:%Y-%m-%d %H:%M} UTC" if plan.applied_at else ""
    return (
        f"plan {plan.plan_id} was applied by run {plan.applied_by_run}{when}"
        f" ({done or 'nothing recorded'}): a plan is applied once; nothing was sent"
    )


def _duration(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:.3g} days" if hours >= 48 else f"{hours:.3g} hours"


def plan_document(plan: Plan) -> dict[str, Any]:
    """``plan`` as JSON-ready data, for people and CI jobs to read, diff or gate on: its
    fields, then its targets in order (a deletion's with the evidence each was planned on)."""
    evidence = plan.operation == "delete"
    targets = []
    for target in plan.targets:
        row: dict[str, Any] = {"source_row": target.source_row, "target": target.target}
        if evidence:
            row |= {
                "stop_id": target.stop_id,
                "opted_out_at": _iso(target.opted_out_at),
                "consent_at": _iso(target.consent_at),
                "consent_source": target.consent_source,
            }
        targets.append(row)
    return {
        "plan_id": plan.plan_id,
        "operation": plan.operation,
        "account": plan.account,
        "created_at": _iso(plan.created_at),
        "created_by_run": plan.created_by_run,
        "applied_at": _iso(plan.applied_at),
        "applied_by_run": plan.applied_by_run,
        "follows": plan.follows,
        "source_file": plan.source_file,
        "source_sha256": plan.source_sha256,
        "options": dict(plan.options),
        "target_count": len(targets),
        "targets": targets,
    }


def _iso(moment: datetime | None) -> str | None:
    """ISO 8601: an aware time in UTC, a naive one (the provider's Paris time) as it is."""
    if moment is None:
        return None
    return (moment.astimezone(UTC) if moment.tzinfo else moment).isoformat()
