"""Push opt-outs read from a CSV file to the provider's stop list, adding only what is missing."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from smsp_connector.client import SmspClient
from smsp_connector.operations.progress import ProgressFactory
from smsp_connector.operations.sending import SendTally, record_unusable_rows, send_plan
from smsp_connector.warehouse.audit import AuditWriter, Outcome, audit_entries


@dataclass(frozen=True, slots=True)
class PushSummary:
    requested: int
    """Input rows read."""
    invalid: int
    duplicates: int
    already_on_list: int
    to_add: int
    """Distinct valid numbers missing from the fresh list."""
    added: int
    already_done: int
    """Numbers the provider already had when called (code 3): added by someone meanwhile."""
    rejected: int
    failed: int
    dry_run: bool


def push_numbers(
    intake: pd.DataFrame,
    *,
    client: SmspClient,
    audit: AuditWriter,
    dry_run: bool,
    progress: ProgressFactory,
) -> PushSummary:
    """Add every valid number of ``intake`` (:func:`read_phone_csv`'s frame) that the provider's
    fresh list lacks, recording one audit row per input row.

    A second run of the same file makes no add call. Numbers that fail after every retry stay
    missing, so the next run picks them up.
    """
    listed = {record.get("phoneNumber") for record in client.list_stop_records()}
    invalid, duplicate = record_unusable_rows(intake, audit)
    usable = ~invalid & ~duplicate
    on_list = usable & intake["e164"].isin(listed)
    missing = intake[usable & ~on_list]
    audit.record(audit_entries(intake[on_list], Outcome.ALREADY_ON_LIST))
    tally = SendTally()
    if dry_run:
        audit.record(audit_entries(missing, Outcome.DRY_RUN))
    else:
        plan = {entry.target: entry for entry in audit_entries(missing, Outcome.PENDING)}
        tally = send_plan(
            plan, client.bulk_add, audit=audit, what="numbers pushed", progress=progress
        )
    counts = tally.outcomes
    audit.flush()
    return PushSummary(
        requested=len(intake),
        invalid=int(invalid.sum()),
        duplicates=int(duplicate.sum()),
        already_on_list=int(on_list.sum()),
        to_add=len(missing),
        added=counts[Outcome.APPLIED],
        already_done=counts[Outcome.ALREADY_DONE],
        rejected=counts[Outcome.REJECTED],
        failed=counts[Outcome.FAILED],
        dry_run=dry_run,
    )
