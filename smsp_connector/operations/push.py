"""Push opt-outs read from a CSV file to the provider's stop list, adding only what is missing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

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
    """Numbers the provider already had when called (code 3): added meanwhile by someone else,
    or, when an earlier attempt of the same call got no answer, maybe by that attempt (the
    audit row's detail says so)."""
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
    refused_before: Mapping[str, str] | None = None,
) -> PushSummary:
    """Add every valid number of ``intake`` (:func:`read_phone_csv`'s frame) that the provider's
    fresh list lacks, recording one audit row per input row.

    A second run of the same file makes no add call. Numbers that fail after every retry stay
    missing, so the next run picks them up. Numbers in ``refused_before`` (number → the run
    that the provider refused it in, code 9) are not sent again: recorded as rejected.
    """
    refused_before = refused_before or {}
    listed = {record.get("phoneNumber") for record in client.list_stop_records()}
    invalid, duplicate = record_unusable_rows(intake, audit)
    usable = ~invalid & ~duplicate
    on_list = usable & intake["e164"].isin(listed)
    refused = usable & ~on_list & intake["e164"].isin(set(refused_before))
    # The subsets are masks, not copies: a million-row file's audit rows are built a slice
    # at a time as they are written.
    missing = usable & ~on_list & ~refused
    audit.record(audit_entries(intake, Outcome.ALREADY_ON_LIST, where=on_list))
    audit.record(
        replace(
            entry,
            provider_code=9,
            detail=f"refused by the provider (code 9) in run {refused_before[entry.target]}"
            "; not sent again (retry_rejected: true sends it)",
        )
        for entry in audit_entries(intake, Outcome.REJECTED, where=refused)
    )
    tally = SendTally()
    if dry_run:
        audit.record(audit_entries(intake, Outcome.DRY_RUN, where=missing))
    else:
        plan = {
            entry.target: entry for entry in audit_entries(intake, Outcome.PENDING, where=missing)
        }
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
        to_add=int(missing.sum()),
        added=counts[Outcome.APPLIED],
        already_done=counts[Outcome.ALREADY_DONE],
        rejected=counts[Outcome.REJECTED] + int(refused.sum()),
        failed=counts[Outcome.FAILED],
        dry_run=dry_run,
    )
