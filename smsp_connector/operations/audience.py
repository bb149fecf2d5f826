"""A campaign audience checked before the send: which of its numbers opted out (on the published
stop list, or received by the connector and not yet there), in any input form."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from smsp_connector.defaults import DEFAULT_REGION
from smsp_connector.intake import phone_intake_frame
from smsp_connector.intake.frames import phone_column_index
from smsp_connector.intake.reader import MAX_INPUT_BYTES, read_table
from smsp_connector.operations.reports import write_report
from smsp_connector.warehouse import Warehouse
from smsp_connector.warehouse.ledger import opted_out_numbers
from smsp_connector.warehouse.phone_forms import french_plan_numbers

SAMPLES = 10
"""Opted-out numbers named in a result, as SHA-256: enough to find them, never raw."""


@dataclass(frozen=True)
class AudienceCheck:
    """What a check of an audience found."""

    rows: int
    """The audience's rows."""
    opted_out_rows: int
    """Rows whose number opted out: not to be sent to."""
    opted_out_numbers: int
    """Distinct numbers among them."""
    unreadable_rows: int
    """Rows whose value is no phone number (no opt-out can be matched; nothing is sent to
    them either)."""
    samples: tuple[str, ...]
    """Up to :data:`SAMPLES` opted-out numbers as the SHA-256 of their E.164 form (the
    ``sha256`` suppression export's form)."""
    opted_out: pd.Series
    """Per audience row (its position), whether its number opted out."""

    @property
    def passed(self) -> bool:
        return self.opted_out_rows == 0


def check_numbers(
    warehouse: Warehouse, raws: list[str], *, default_region: str = DEFAULT_REGION
) -> AudienceCheck:
    """Check raw numbers, as an audience holds them, against the account's opt-outs."""
    frame = phone_intake_frame(
        "audience",
        raws,
        list(range(1, len(raws) + 1)),
        default_region=default_region,
        quick_path=french_plan_numbers,
    )
    usable = frame["e164"].notna() & frame["is_valid"].eq(True)
    found = opted_out_numbers(warehouse, frame.loc[usable, "e164"].unique().tolist())
    opted_out = (usable & frame["e164"].isin(found)).reset_index(drop=True)
    samples = sorted(hashlib.sha256(number.encode()).hexdigest() for number in found)
    return AudienceCheck(
        rows=len(frame),
        opted_out_rows=int(opted_out.sum()),
        opted_out_numbers=len(found),
        unreadable_rows=int((~usable).sum()),
        samples=tuple(samples[:SAMPLES]),
        opted_out=opted_out,
    )


def check_file(
    warehouse: Warehouse,
    path: Path,
    *,
    phone_column: str | None = None,
    default_region: str = DEFAULT_REGION,
    max_bytes: int = MAX_INPUT_BYTES,
    write_clean: Path | None = None,
) -> AudienceCheck:
    """Check a CSV audience; with ``write_clean``, write its rows without the opted-out ones
    (every column as read, formula-safe)."""
    table = read_table(path, max_bytes=max_bytes)
    phones = table.column(phone_column_index(table, phone_column))
    result = check_numbers(warehouse, phones, default_region=default_region)
    if write_clean is not None:
        rows = pd.DataFrame({header: table.column(i) for i, header in enumerate(table.headers)})
        kept = rows[~result.opted_out.to_numpy()]
        if kept.empty:  # a header alone: nobody left to send to
            write_clean.write_text(",".join(table.headers) + "\n", encoding="utf-8")
        else:
            write_report(write_clean, kept)
    return result
