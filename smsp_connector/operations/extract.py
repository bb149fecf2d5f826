"""Extract: the provider's whole stop list fetched, typed, validated and stored as a snapshot."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from smsp_connector.client import SmspClient
from smsp_connector.client.models import PROVIDER_TIME_FORMAT, PROVIDER_TZ
from smsp_connector.warehouse import SnapshotSummary, StopListSchema, Warehouse, replace_stop_list

COLUMNS = ["stop_id", "phone_number", "created_at", "extracted_at"]
_PROVIDER_FIELDS = {"id": "stop_id", "phoneNumber": "phone_number", "createdAt": "created_at"}


def stop_list_frame(records: list[dict[str, Any]], extracted_at: datetime) -> pd.DataFrame:
    """Turn the provider's entries into the :class:`StopListSchema` columns, without judging them.

    Values that cannot be converted (a non-numeric id, an unreadable date, a missing number)
    become nulls rather than errors, so that validation can report every bad row at once.
    Phone numbers are kept exactly as the provider wrote them.
    """
    raw = pd.DataFrame.from_records(records, columns=list(_PROVIDER_FIELDS))
    local = pd.to_datetime(raw["createdAt"], format=PROVIDER_TIME_FORMAT, errors="coerce")
    created_at = local.dt.tz_localize(
        PROVIDER_TZ.key,
        ambiguous=np.ones(len(local), dtype=bool),  # the repeated hour: summer time, fold=0
        nonexistent="shift_forward",
    ).dt.tz_convert("UTC")
    frame = pd.DataFrame(
        {
            "stop_id": pd.to_numeric(raw["id"], errors="coerce").astype("Int64"),
            "phone_number": _as_text(raw["phoneNumber"]),
            "created_at": created_at,
            "extracted_at": pd.Series(
                pd.Timestamp(extracted_at).tz_convert("UTC"), index=raw.index
            ).astype("datetime64[ns, UTC]"),
        },
        columns=COLUMNS,
    )
    return frame


def _as_text(values: pd.Series) -> pd.Series:
    """Strings stay as sent, nulls become None, anything else (a number…) its text, so that
    the E.164 check reports it instead of a type error hiding the other rows."""
    values = values.astype(object).where(values.notna(), None)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values
    return values.map(lambda value: value if value is None else str(value))


@dataclass(frozen=True)
class ValidationReport:
    """What pandera found wrong, row by row, with the provider's original values."""

    failure_cases: pd.DataFrame
    """Columns: ``column``, ``check``, ``failure_case``, ``row`` (0-based position in the list)."""

    @property
    def valid(self) -> bool:
        return self.failure_cases.empty

    @property
    def failing_rows(self) -> int:
        return int(self.failure_cases["row"].nunique()) if not self.valid else 0

    def to_markdown(self, limit: int = 20) -> str:
        shown = self.failure_cases.head(limit)
        more = len(self.failure_cases) - len(shown)
        table = shown.to_markdown(index=False)
        return table + (f"\n\n… and {more} more failure(s)" if more else "")


def validate_stop_list(frame: pd.DataFrame, records: list[dict[str, Any]]) -> ValidationReport:
    """Validate lazily (every failure, not the first) and attach the provider's raw values."""
    try:
        StopListSchema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        rows = pd.to_numeric(cases["index"], errors="coerce").astype("Int64")
        report = pd.DataFrame(
            {
                "row": rows,
                "column": cases["column"].astype(str),
                "check": cases["check"].astype(str),
                "failure_case": cases["failure_case"].astype(str),
                "provider_entry": [
                    _provider_entry(records, row) if pd.notna(row) else "" for row in rows
                ],
            }
        )
        return ValidationReport(report.sort_values(["row", "column"], kind="stable"))
    return ValidationReport(
        pd.DataFrame(columns=["row", "column", "check", "failure_case", "provider_entry"])
    )


def _provider_entry(records: list[dict[str, Any]], row: int) -> str:
    entry = records[int(row)] if 0 <= int(row) < len(records) else {}
    return ", ".join(f"{key}={entry.get(key)!r}" for key in _PROVIDER_FIELDS)


@dataclass(frozen=True)
class Extraction:
    """One extraction of the stop list: the frame stored, what validation found, the snapshot."""

    frame: pd.DataFrame
    report: ValidationReport
    snapshot: SnapshotSummary
    fetch_seconds: float


def extract_stop_list(client: SmspClient, warehouse: Warehouse, *, run_id: str) -> Extraction:
    """Fetch the whole list, turn it into the :class:`StopListSchema` frame, validate it (every
    failing row reported with the provider's raw values) and store it as the new snapshot."""
    extracted_at = datetime.now(UTC)
    started = time.monotonic()
    records = client.list_stop_records()
    fetch_seconds = time.monotonic() - started
    frame = stop_list_frame(records, extracted_at)
    report = validate_stop_list(frame, records)
    del records
    snapshot = replace_stop_list(
        warehouse, frame, run_id=run_id, extracted_at=extracted_at, valid=report.valid
    )
    return Extraction(frame, report, snapshot, fetch_seconds)
