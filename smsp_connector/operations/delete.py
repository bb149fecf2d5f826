"""Guarded removal of numbers from the stop list.

Removing an opt-out turns marketing back on for someone who objected (in France the right to
object to marketing is absolute). So every row needs evidence of fresh consent, given after the
opt-out; the plan (the exact numbers, with that evidence and the options that read them) is
stored before any call (``smsp.plans``, :mod:`~smsp_connector.warehouse.plans`) and previewed
(dry run) unless the run is confirmed; a confirmation names a stored plan and applies exactly its
numbers, never a file read again, each guard checked again against the provider's list then; a
plan is applied once, and not when older than ``plan_max_age``; a cap stops an oversized plan
before any call; and every row's fate is recorded, with its plan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from smsp_connector.client import MutationKind, SmspClient, StopEntry
from smsp_connector.client.models import (
    LATEST_TIME,
    PROVIDER_TZ,
    TIME_RANGE_TEXT,
    in_time_range,
    paris_instants,
)
from smsp_connector.intake import Intake
from smsp_connector.operations.listing import listed_entries
from smsp_connector.operations.plans import claim, plan_intake, plan_to_apply
from smsp_connector.operations.progress import ProgressFactory
from smsp_connector.operations.sending import record_unusable_rows, send_plan, unusable_masks
from smsp_connector.operations.summary import Summary
from smsp_connector.warehouse.audit import AuditEntry, AuditWriter, Outcome
from smsp_connector.warehouse.plans import Plan, PlanTarget
from smsp_connector.warehouse.tables import Warehouse

CONSENT_COLUMNS = ("consent_at", "consent_source")
_CONSENT_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y")


class DeletionCapExceeded(RuntimeError):
    """The plan holds more deletions than ``max_deletions``: nothing was sent."""


@dataclass(frozen=True, slots=True)
class DeleteSummary(Summary):
    PROBLEMS: ClassVar[tuple[str, ...]] = ("refused", "rejected", "failed")

    requested: int
    invalid: int
    duplicates: int
    refused: int
    not_on_list: int
    planned: int
    deleted: int
    already_gone: int
    rejected: int
    failed: int
    dry_run: bool
    plan_id: str | None = None
    """The stored plan (``smsp.plans``) that the dry run made or the run applied."""


def parse_consent_time(text: str) -> datetime:
    """ISO 8601 (``2026-01-15``, ``2026-01-15T10:30:00+01:00``) or French ``15/01/2026 10:30``.

    Times without a zone are Paris time, read as the *earliest* instant they may mean (in the
    repeated autumn hour or the skipped spring hour). A bare date means the start of that day,
    so a consent dated the same day as the opt-out counts as before it and is refused: when the
    order is unknown, the opt-out wins. A date outside
    :func:`~smsp_connector.client.models.in_time_range` (``0001-01-01``, a "no date"
    placeholder) raises ``ValueError``, as an unreadable one does.
    """
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        for pattern in _CONSENT_FORMATS:
            try:
                moment = datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"unreadable consent date {text!r}") from None
    if not in_time_range(moment):
        future = " (in the future)" if moment.replace(tzinfo=None) > LATEST_TIME else ""
        raise ValueError(f"consent date {text!r} is not {TIME_RANGE_TEXT}{future}")
    if moment.tzinfo is None:
        return paris_instants(moment)[0].astimezone(PROVIDER_TZ)
    return moment


def _consent(row: dict, now: datetime) -> datetime | tuple[Outcome, str]:
    """The row's consent time, or why the row must not be deleted."""
    consent_at, source = row["consent_at"].strip(), row["consent_source"].strip()
    if not consent_at or not source:
        return Outcome.REFUSED, "no consent evidence: consent_at and consent_source are required"
    try:
        consented = parse_consent_time(consent_at)
    except ValueError as error:
        return Outcome.REFUSED, str(error)
    if consented > now:
        return Outcome.REFUSED, f"consent_at {consent_at!r} is in the future"
    return consented


def _opt_out_stands(entry: StopEntry | None, consented: datetime) -> tuple[Outcome, str] | None:
    """Why the opt-out ``entry`` must stay despite a consent at ``consented``, or None."""
    if entry is None:
        return Outcome.NOT_ON_LIST, "the number is not on the stop list"
    if entry.created_at is None:
        return Outcome.REFUSED, "the provider's opt-out time is unreadable: the opt-out stands"
    # The provider's time has no zone: in a clock change it may mean two instants, and the
    # later one is taken, so that a consent which may precede the opt-out never removes it.
    opted_out = paris_instants(entry.created_at)[1]
    if opted_out >= consented:
        return Outcome.REFUSED, (
            f"opted out at {entry.created_at:%Y-%m-%d %H:%M} Paris time "
            f"({opted_out:%H:%M} UTC at the latest), after (or at) the consent of "
            f"{consented.astimezone(UTC):%Y-%m-%d %H:%M} UTC: the opt-out stands"
        )
    return None


def delete_numbers(
    read: Intake,
    *,
    client: SmspClient,
    audit: AuditWriter,
    warehouse: Warehouse,
    confirm: bool,
    max_deletions: int,
    progress: ProgressFactory,
) -> DeleteSummary:
    """Plan the deletion of the numbers ``read`` (with consent columns) that pass every
    guard, store the plan, and apply it if ``confirm``.

    Without ``confirm`` it is a dry run: the plan is stored and recorded, nothing is sent.
    Raises :class:`DeletionCapExceeded` before any call when a confirmed plan is too large.
    """
    intake = read.frame
    invalid, duplicate = unusable_masks(intake)
    on_list = listed_entries(
        client,
        warehouse,
        intake["e164"][~invalid & ~duplicate],
        memory_limit=audit.memory_limit,
    )
    now = datetime.now(UTC)
    targets: list[PlanTarget] = []
    verdicts: list[tuple[AuditEntry, Outcome, str]] = []
    for row in intake[~invalid & ~duplicate].to_dict("records"):
        entry = on_list.get(row["e164"])
        base = AuditEntry(row["source_file"], int(row["row_number"]), row["e164"], Outcome.PENDING)
        consented = _consent(row, now)
        verdict = consented if isinstance(consented, tuple) else _opt_out_stands(entry, consented)
        if verdict is None:
            assert entry is not None and entry.created_at is not None
            assert isinstance(consented, datetime)
            targets.append(
                PlanTarget(
                    source_row=int(row["row_number"]),
                    target=row["e164"],
                    stop_id=entry.id,
                    opted_out_at=entry.created_at.replace(tzinfo=None),
                    consent_at=consented,
                    consent_source=row["consent_source"].strip(),
                )
            )
        else:
            verdicts.append((base, *verdict))
    plan = plan_intake(
        MutationKind.DELETE.value,
        read,
        targets,
        warehouse=warehouse,
        audit=audit,
        made_to_apply=False,
    )
    source_file = plan.source_file
    invalid, duplicate = record_unusable_rows(intake, audit)
    guarded: Counter[Outcome] = Counter()
    for base, outcome, detail in verdicts:
        guarded[outcome] += 1
        audit.record([replace(base, outcome=outcome, detail=detail)])
    summary = DeleteSummary(
        requested=len(intake),
        invalid=int(invalid.sum()),
        duplicates=int(duplicate.sum()),
        refused=guarded[Outcome.REFUSED],
        not_on_list=guarded[Outcome.NOT_ON_LIST],
        planned=len(targets),
        deleted=0,
        already_gone=0,
        rejected=0,
        failed=0,
        dry_run=not confirm,
        plan_id=plan.plan_id,
    )
    if not confirm:
        audit.record(
            AuditEntry(source_file, t.source_row, t.target, Outcome.DRY_RUN, stop_id=t.stop_id)
            for t in plan.targets
        )
        audit.flush()
        return summary
    applied = _apply(
        plan, on_list, client=client, audit=audit, warehouse=warehouse,
        max_deletions=max_deletions, progress=progress, source_file=source_file,
    )  # fmt: skip
    return replace(
        applied,
        requested=summary.requested,
        invalid=summary.invalid,
        duplicates=summary.duplicates,
        refused=summary.refused + applied.refused,
        not_on_list=summary.not_on_list + applied.not_on_list,
    )


def apply_deletion_plan(
    plan_id: str,
    *,
    client: SmspClient,
    audit: AuditWriter,
    warehouse: Warehouse,
    max_deletions: int,
    max_age: timedelta,
    progress: ProgressFactory,
    given: Mapping[str, str] | None = None,
) -> DeleteSummary:
    """Apply the stored deletion plan ``plan_id``: exactly its targets, each one's guard checked
    again against the provider's list now. Raises :class:`PlanRefused`, before any call, for
    a plan that is unknown, of another operation or account, older than ``max_age``, already
    applied, or that the options ``given`` again (``phone_column``, ``default_region``,
    ``source_sha256`` of the file given again) differ from; :class:`DeletionCapExceeded` for
    one larger than ``max_deletions``."""
    plan = plan_to_apply(
        warehouse,
        plan_id,
        operation=MutationKind.DELETE.value,
        account=audit.account,
        max_age=max_age,
        given=given,
    )
    audit.name_plan(plan.plan_id)
    on_list = listed_entries(
        client,
        warehouse,
        (target.target for target in plan.targets),
        memory_limit=audit.memory_limit,
    )
    return _apply(
        plan, on_list, client=client, audit=audit, warehouse=warehouse,
        max_deletions=max_deletions, progress=progress,
    )  # fmt: skip


def _apply(
    plan: Plan,
    on_list: dict[str, StopEntry],
    *,
    client: SmspClient,
    audit: AuditWriter,
    warehouse: Warehouse,
    max_deletions: int,
    progress: ProgressFactory,
    source_file: str | None = None,
) -> DeleteSummary:
    """Claim ``plan`` for this run, check each target's guard against ``on_list`` (the
    provider's list now) and delete those that still pass. The audit rows name ``source_file``
    (the file this run read), else the plan's."""
    source = source_file or plan.source_file
    entries = [
        AuditEntry(source, t.source_row, t.target, Outcome.PENDING, stop_id=t.stop_id)
        for t in plan.targets
    ]
    if len(entries) > max_deletions:
        detail = f"plan of {len(entries)} deletions exceeds max_deletions={max_deletions}"
        audit.record(replace(entry, outcome=Outcome.REFUSED, detail=detail) for entry in entries)
        audit.flush()
        raise DeletionCapExceeded(f"{detail}: nothing was deleted")
    claim(warehouse, plan, run_id=audit.run_id)
    sendable: list[AuditEntry] = []
    skipped: Counter[Outcome] = Counter()
    for target, base in zip(plan.targets, entries, strict=True):
        assert target.consent_at is not None
        entry = on_list.get(target.target)
        verdict = _opt_out_stands(entry, target.consent_at)
        if verdict is None:
            assert entry is not None
            sendable.append(replace(base, stop_id=entry.id))
        else:
            outcome, detail = verdict
            if outcome is Outcome.NOT_ON_LIST:
                detail = "no longer on the stop list"
            skipped[outcome] += 1
            audit.record([replace(base, outcome=outcome, detail=f"when applied: {detail}")])
    tally = send_plan(
        {str(entry.stop_id): entry for entry in sendable},
        lambda ids: client.bulk_delete(int(stop_id) for stop_id in ids),
        audit=audit,
        what="numbers deleted",
        progress=progress,
    )
    audit.flush()
    counts = tally.outcomes
    return DeleteSummary(
        requested=len(entries),
        invalid=0,
        duplicates=0,
        refused=skipped[Outcome.REFUSED],
        not_on_list=skipped[Outcome.NOT_ON_LIST],
        planned=len(entries),
        deleted=counts[Outcome.APPLIED],
        already_gone=counts[Outcome.ALREADY_DONE],
        rejected=counts[Outcome.REJECTED],
        failed=counts[Outcome.FAILED],
        dry_run=False,
        plan_id=plan.plan_id,
    )
