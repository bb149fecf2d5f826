"""What push, delete and cancel share: recording unusable rows, then sending a plan with a
write-ahead log and recording every outcome as it arrives."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import pandas as pd

from smsp_connector.client import MutationResult
from smsp_connector.operations.progress import ProgressFactory
from smsp_connector.warehouse.audit import AuditEntry, AuditWriter, Outcome, audit_entries


def unusable_masks(intake: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The rejected rows of an intake frame, and the duplicates among the others."""
    invalid = (
        intake["rejection_reason"].notna()
        if "rejection_reason" in intake
        else (pd.Series(False, index=intake.index))
    )
    return invalid, intake["duplicate_of_row"].notna() & ~invalid


def record_unusable_rows(
    intake: pd.DataFrame, audit: AuditWriter, *, target: str = "e164"
) -> tuple[pd.Series, pd.Series]:
    """Record the rejected and the duplicate rows of an intake frame; return both masks."""
    invalid, duplicate = unusable_masks(intake)
    audit.record(
        audit_entries(intake[invalid], Outcome.INVALID_INPUT, "rejection_message", "raw_value")
    )
    duplicates = intake[duplicate]
    # From the subset itself: assigning a full-length Series to an empty frame would adopt the
    # Series' index and invent rows.
    duplicates = duplicates.assign(
        detail="same value as row " + duplicates["duplicate_of_row"].astype(str)
    )
    audit.record(audit_entries(duplicates, Outcome.DUPLICATE_IN_FILE, "detail", target))
    return invalid, duplicate


@dataclass
class SendTally:
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    rejected_codes: Counter[int | None] = field(default_factory=Counter)
    """Provider codes of the refusals (6 too late, 7 already sent, 4 not found, 9 invalid…)."""


def send_plan(
    plan: dict[str, AuditEntry],
    send: Callable[[list[str]], Iterator[MutationResult]],
    *,
    audit: AuditWriter,
    what: str,
    progress: ProgressFactory,
) -> SendTally:
    """Send every planned call and record each outcome as it arrives.

    ``plan`` maps each call's target (number, stop id, message id as text) to its audit entry.
    The entries are first written as ``pending``, so a run killed mid-way leaves a log of the
    calls that may have happened.
    """
    tally = SendTally()
    if not plan:
        return tally
    audit.record(replace(entry, outcome=Outcome.PENDING) for entry in plan.values())
    audit.flush()
    bar = progress(len(plan), what)
    for result in send(list(plan)):
        planned = plan[result.target]
        outcome = AuditEntry.from_result(result, planned.source_file, planned.source_row)
        outcome = replace(
            outcome,
            target=planned.target,
            stop_id=outcome.stop_id or planned.stop_id,
            detail=result.detail,  # an "already done" that may be our own earlier attempt
        )
        audit.record([outcome])
        tally.outcomes[outcome.outcome] += 1
        if outcome.outcome is Outcome.REJECTED:
            tally.rejected_codes[outcome.provider_code] += 1
        bar.advance()
    bar.finish()
    return tally
