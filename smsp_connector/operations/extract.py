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
from smsp_connector.warehouse import (
    SnapshotSummary,
    StopListSchema,
    Warehouse,
    publish_stop_list,
    reject_stop_list,
    stage_stop_list,
)

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
class CheckOutcome:
    """One check on a staged snapshot. A failed ``blocking`` check keeps it unpublished."""

    name: str
    passed: bool
    blocking: bool
    metadata: dict[str, Any]
    problem: str
    """One line saying what failed (empty when passed)."""


@dataclass(frozen=True)
class Extraction:
    """One extraction of the stop list: the frame staged, its checks, and whether it was
    published as the new ``stop_list`` or rejected."""

    frame: pd.DataFrame
    report: ValidationReport
    snapshot: SnapshotSummary
    checks: list[CheckOutcome]
    fetch_seconds: float

    @property
    def blocking_failures(self) -> list[CheckOutcome]:
        return [check for check in self.checks if check.blocking and not check.passed]

    @property
    def published(self) -> bool:
        return not self.blocking_failures


def extract_stop_list(
    client: SmspClient,
    warehouse: Warehouse,
    *,
    run_id: str,
    max_shrink_share: float,
    accept_shrink: bool = False,
) -> Extraction:
    """Fetch the whole list, type it (:class:`StopListSchema` frame), validate it (every failing
    row reported with the provider's raw values), stage it, check it, and publish it as
    ``stop_list`` only when no blocking check failed (write-audit-publish)."""
    extracted_at = datetime.now(UTC)
    started = time.monotonic()
    records = client.list_stop_records()
    fetch_seconds = time.monotonic() - started
    frame = stop_list_frame(records, extracted_at)
    report = validate_stop_list(frame, records)
    del records
    snapshot = stage_stop_list(warehouse, frame)
    checks = snapshot_checks(
        frame, report, snapshot, max_shrink_share=max_shrink_share, accept_shrink=accept_shrink
    )
    extraction = Extraction(frame, report, snapshot, checks, fetch_seconds)
    logged = {"run_id": run_id, "extracted_at": extracted_at, "valid": report.valid}
    if extraction.published:
        publish_stop_list(warehouse, snapshot, **logged)
    else:
        rejected_by = extraction.blocking_failures[0].name
        reject_stop_list(warehouse, snapshot, rejected_by=rejected_by, **logged)
    return extraction


def snapshot_checks(
    frame: pd.DataFrame,
    report: ValidationReport,
    snapshot: SnapshotSummary,
    *,
    max_shrink_share: float,
    accept_shrink: bool,
) -> list[CheckOutcome]:
    """schema_valid, stop_ids_unique and no_sudden_shrink block publication;
    phone_numbers_unique only warns (the provider keeps one entry per number, so duplicates
    mean odd provider data, not a wrong list)."""
    schema = CheckOutcome(
        "schema_valid",
        report.valid,
        True,
        {"failing_rows": report.failing_rows, "failure_cases": report.to_markdown()}
        if not report.valid
        else {"failing_rows": 0},
        f"schema_valid: {report.failing_rows} row(s) of the provider's list fail "
        "StopListSchema (see the check's failure_cases)",
    )
    ids = _unique("stop_ids_unique", frame["stop_id"], blocking=True)
    numbers = _unique("phone_numbers_unique", frame["phone_number"], blocking=False)
    previous, current = snapshot.previous_row_count, snapshot.row_count
    lost_share = (previous - current) / previous if previous else 0.0
    shrink = CheckOutcome(
        "no_sudden_shrink",
        lost_share <= max_shrink_share or accept_shrink,
        True,
        {
            "previous_row_count": previous if previous is not None else "-",
            "row_count": current,
            "lost_share": round(lost_share, 4),
            "max_shrink_share": max_shrink_share,
            "accepted_by_run_config": accept_shrink,
        },
        f"no_sudden_shrink: the list went from {previous or 0:,} to {current:,} entries "
        f"(lost {lost_share:.0%}, more than the {max_shrink_share:.0%} allowed)",
    )
    return [schema, ids, numbers, shrink]


def _unique(name: str, values: pd.Series, *, blocking: bool) -> CheckOutcome:
    present = values.dropna()
    duplicated = present[present.duplicated(keep=False)]
    examples = sorted({str(value) for value in duplicated.head(20)})
    return CheckOutcome(
        name,
        duplicated.empty,
        blocking,
        {"duplicated_rows": len(duplicated), "examples": ", ".join(examples) or "-"},
        f"{name}: {len(duplicated)} entries share a value (e.g. {', '.join(examples[:3])})",
    )
