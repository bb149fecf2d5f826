"""Roll back scheduled sends through /message-cancel, every outcome kept apart and audited."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from smsp_connector.client import SmspClient
from smsp_connector.operations.progress import ProgressFactory
from smsp_connector.operations.sending import record_unusable_rows, send_plan
from smsp_connector.warehouse.audit import AuditEntry, AuditWriter, Outcome, audit_entries


@dataclass(frozen=True, slots=True)
class CancelSummary:
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


def cancel_messages(
    ids: pd.DataFrame, *, client: SmspClient, audit: AuditWriter, progress: ProgressFactory
) -> CancelSummary:
    """Cancel each distinct message id of ``ids`` (columns of :func:`check_message_ids`).

    Idempotent: running it again changes nothing (cancelled ones answer code 5).
    """
    invalid, duplicate = record_unusable_rows(ids, audit, target="raw_value")
    usable = ids[~invalid & ~duplicate]
    plan: dict[str, AuditEntry] = {
        entry.target: entry for entry in audit_entries(usable, Outcome.PENDING, target="raw_value")
    }
    tally = send_plan(
        plan, client.bulk_cancel, audit=audit, what="messages cancelled", progress=progress
    )
    audit.flush()
    counts, codes = tally.outcomes, tally.rejected_codes
    return CancelSummary(
        requested=len(ids),
        invalid=int(invalid.sum()),
        duplicates=int(duplicate.sum()),
        cancelled=counts[Outcome.APPLIED],
        already_cancelled=counts[Outcome.ALREADY_DONE],
        too_late=codes.get(6, 0),
        already_sent=codes.get(7, 0),
        not_found=codes.get(4, 0),
        other_refusals=counts[Outcome.REJECTED] - sum(codes.get(c, 0) for c in (4, 6, 7)),
        failed=counts[Outcome.FAILED],
    )
