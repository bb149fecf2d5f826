"""Roll back scheduled sends through /message-cancel from a stored plan, every outcome kept
apart and audited.

The plan (the distinct message ids, each with its source row) is stored before any call; a dry
run stops there, and :func:`apply_cancel_plan` applies such a plan later by its id, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from smsp_connector.client import MutationKind, SmspClient
from smsp_connector.intake import Intake
from smsp_connector.operations.plans import claim, plan_intake, plan_to_apply
from smsp_connector.operations.progress import ProgressFactory
from smsp_connector.operations.sending import SendTally, record_unusable_rows, send_plan
from smsp_connector.operations.summary import Summary
from smsp_connector.warehouse.audit import AuditEntry, AuditWriter, Outcome, audit_entries
from smsp_connector.warehouse.plans import PlanTargets
from smsp_connector.warehouse.tables import Warehouse


@dataclass(frozen=True, slots=True)
class CancelSummary(Summary):
    PROBLEMS: ClassVar[tuple[str, ...]] = (
        "too_late",
        "already_sent",
        "not_found",
        "other_refusals",
        "failed",
        "invalid",
    )

    requested: int
    invalid: int
    duplicates: int
    cancelled: int
    already_cancelled: int
    too_late: int
    already_sent: int
    not_found: int
    other_refusals: int
    failed: int
    planned: int = 0
    """Distinct message ids the plan holds."""
    dry_run: bool = False
    plan_id: str | None = None
    """The stored plan (``smsp.plans``) that the run made or applied."""


def cancel_messages(
    read: Intake,
    *,
    client: SmspClient,
    audit: AuditWriter,
    warehouse: Warehouse,
    progress: ProgressFactory,
    dry_run: bool = False,
) -> CancelSummary:
    """Plan the cancellation of each distinct message id ``read`` (columns of
    :func:`check_message_ids`), store the plan, and apply it unless ``dry_run``.

    Idempotent: running it again changes nothing (cancelled ones answer code 5).
    """
    ids = read.frame
    invalid, duplicate = record_unusable_rows(ids, audit, target="raw_value")
    usable = ~invalid & ~duplicate
    plan = plan_intake(
        MutationKind.CANCEL.value,
        read,
        PlanTargets.rows(ids["row_number"][usable], ids["raw_value"][usable]),
        warehouse=warehouse,
        audit=audit,
        made_to_apply=not dry_run,
    )
    if dry_run:
        audit.record(audit_entries(ids, Outcome.DRY_RUN, target="raw_value", where=usable))
        tally = SendTally()
    else:
        claim(warehouse, plan, run_id=audit.run_id)
        calls = {
            entry.target: entry
            for entry in audit_entries(ids, Outcome.PENDING, target="raw_value", where=usable)
        }
        tally = _send(calls, client=client, audit=audit, progress=progress)
    audit.flush()
    return _summary(
        tally, requested=len(ids), invalid=int(invalid.sum()), duplicates=int(duplicate.sum()),
        planned=len(plan.targets), dry_run=dry_run, plan_id=plan.plan_id,
    )  # fmt: skip


def apply_cancel_plan(
    plan_id: str,
    *,
    client: SmspClient,
    audit: AuditWriter,
    warehouse: Warehouse,
    max_age: timedelta,
    progress: ProgressFactory,
) -> CancelSummary:
    """Cancel exactly the message ids of the stored plan ``plan_id``. Raises
    :class:`~smsp_connector.operations.plans.PlanRefused` before any call for a plan that is
    unknown, another operation's or account's, applied already or older than ``max_age``."""
    plan = plan_to_apply(
        warehouse,
        plan_id,
        operation=MutationKind.CANCEL.value,
        account=audit.account,
        max_age=max_age,
    )
    audit.name_plan(plan.plan_id)
    claim(warehouse, plan, run_id=audit.run_id)
    source = plan.source_file or f"plan {plan.plan_id}"
    calls = {
        t.target: AuditEntry(source, t.source_row, t.target, Outcome.PENDING) for t in plan.targets
    }
    tally = _send(calls, client=client, audit=audit, progress=progress)
    audit.flush()
    return _summary(
        tally, requested=len(calls), invalid=0, duplicates=0, planned=len(calls),
        dry_run=False, plan_id=plan.plan_id,
    )  # fmt: skip


def _send(
    calls: dict[str, AuditEntry],
    *,
    client: SmspClient,
    audit: AuditWriter,
    progress: ProgressFactory,
) -> SendTally:
    return send_plan(
        calls, client.bulk_cancel, audit=audit, what="messages cancelled", progress=progress
    )


def _summary(tally: SendTally, **counts: object) -> CancelSummary:
    outcomes, codes = tally.outcomes, tally.rejected_codes
    return CancelSummary(
        cancelled=outcomes[Outcome.APPLIED],
        already_cancelled=outcomes[Outcome.ALREADY_DONE],
        too_late=codes.get(6, 0),
        already_sent=codes.get(7, 0),
        not_found=codes.get(4, 0),
        other_refusals=outcomes[Outcome.REJECTED] - sum(codes.get(c, 0) for c in (4, 6, 7)),
        failed=outcomes[Outcome.FAILED],
        **counts,  # type: ignore[arg-type]
    )
