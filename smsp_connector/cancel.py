"""Roll back scheduled sends through /message-cancel, every outcome kept apart and audited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from smsp_connector.audit import AuditEntry, AuditWriter, Outcome, audit_entries
from smsp_connector.client import SmspClient
from smsp_connector.mutations import record_unusable_rows, send_plan
from smsp_connector.progress import ProgressFactory

MESSAGE_ID_ALIASES = ("message_id", "messageid", "id_message", "id du message", "id message", "id")


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


def ids_from_config(message_ids: Sequence[str | int]) -> pd.DataFrame:
    """Message ids given in run config, in the layout of a CSV intake (no file, row = position)."""
    return pd.DataFrame(
        {
            "source_file": pd.Series([None] * len(message_ids), dtype=object),
            "row_number": range(1, len(message_ids) + 1),
            "raw_value": [str(value).strip() for value in message_ids],
        }
    ).pipe(_flag_duplicates)


def _flag_duplicates(frame: pd.DataFrame) -> pd.DataFrame:
    first = frame.groupby("raw_value")["row_number"].transform("min")
    return frame.assign(duplicate_of_row=first.where(first != frame["row_number"]).astype("Int64"))


def check_message_ids(ids: pd.DataFrame) -> pd.DataFrame:
    """Add ``rejection_reason``/``rejection_message`` for values that are not message ids."""
    usable = ids["raw_value"].str.fullmatch(r"[0-9]+")
    return ids.assign(
        rejection_reason=pd.Series("not_a_message_id", index=ids.index).where(~usable),
        rejection_message=("'" + ids["raw_value"] + "' is not a message id (digits only)").where(
            ~usable
        ),
    )


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
