"""Guarded removal of numbers from the stop list.

Removing an opt-out turns marketing back on for someone who objected (in France the right to
object to marketing is absolute). So every row needs evidence of fresh consent, given after the
opt-out; the plan is previewed (dry run) unless the run is confirmed; a cap stops an oversized
plan before any call; and every row's fate is recorded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pandas as pd

from smsp_connector.client import SmspClient, StopEntry
from smsp_connector.client.models import (
    LATEST_TIME,
    PROVIDER_TZ,
    TIME_RANGE_TEXT,
    in_time_range,
    paris_instants,
)
from smsp_connector.operations.progress import ProgressFactory
from smsp_connector.operations.sending import SendTally, record_unusable_rows, send_plan
from smsp_connector.warehouse.audit import AuditEntry, AuditWriter, Outcome

CONSENT_COLUMNS = ("consent_at", "consent_source")
_CONSENT_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y")


class DeletionCapExceeded(RuntimeError):
    """The plan holds more deletions than ``max_deletions``: nothing was sent."""


@dataclass(frozen=True, slots=True)
class DeleteSummary:
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


def _guard(row: dict, entry: StopEntry | None, now: datetime) -> tuple[Outcome, str] | None:
    """Why this row must not be deleted, or None when it may be."""
    consent_at, source = row["consent_at"].strip(), row["consent_source"].strip()
    if not consent_at or not source:
        return Outcome.REFUSED, "no consent evidence: consent_at and consent_source are required"
    try:
        consented = parse_consent_time(consent_at)
    except ValueError as error:
        return Outcome.REFUSED, str(error)
    if consented > now:
        return Outcome.REFUSED, f"consent_at {consent_at!r} is in the future"
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
    intake: pd.DataFrame,
    *,
    client: SmspClient,
    audit: AuditWriter,
    confirm: bool,
    max_deletions: int,
    progress: ProgressFactory,
) -> DeleteSummary:
    """Delete the numbers of ``intake`` (with consent columns) that pass every guard.

    Without ``confirm`` it is a dry run: the plan is recorded, nothing is sent.
    Raises :class:`DeletionCapExceeded` before any call when a confirmed plan is too large.
    """
    on_list = {entry.phone_number: entry for entry in client.list_stops()}
    now = datetime.now(UTC)
    invalid, duplicate = record_unusable_rows(intake, audit)
    plan: list[AuditEntry] = []
    guarded: Counter[Outcome] = Counter()
    for row in intake[~invalid & ~duplicate].to_dict("records"):
        entry = on_list.get(row["e164"])
        base = AuditEntry(row["source_file"], int(row["row_number"]), row["e164"], Outcome.PENDING)
        verdict = _guard(row, entry, now)
        if verdict is None:
            plan.append(replace(base, stop_id=entry.id))
        else:
            guarded[verdict[0]] += 1
            audit.record([replace(base, outcome=verdict[0], detail=verdict[1])])

    if confirm and len(plan) > max_deletions:
        detail = f"plan of {len(plan)} deletions exceeds max_deletions={max_deletions}"
        audit.record(replace(entry, outcome=Outcome.REFUSED, detail=detail) for entry in plan)
        audit.flush()
        raise DeletionCapExceeded(f"{detail}: nothing was deleted")
    tally = SendTally()
    if not confirm:
        audit.record(replace(entry, outcome=Outcome.DRY_RUN) for entry in plan)
    else:
        tally = send_plan(
            {str(entry.stop_id): entry for entry in plan},
            lambda ids: client.bulk_delete(int(stop_id) for stop_id in ids),
            audit=audit,
            what="numbers deleted",
            progress=progress,
        )
    audit.flush()
    counts = tally.outcomes
    return DeleteSummary(
        requested=len(intake),
        invalid=int(invalid.sum()),
        duplicates=int(duplicate.sum()),
        refused=guarded[Outcome.REFUSED],
        not_on_list=guarded[Outcome.NOT_ON_LIST],
        planned=len(plan),
        deleted=counts[Outcome.APPLIED],
        already_gone=counts[Outcome.ALREADY_DONE],
        rejected=counts[Outcome.REJECTED],
        failed=counts[Outcome.FAILED],
        dry_run=not confirm,
    )
