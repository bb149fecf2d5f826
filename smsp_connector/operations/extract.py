"""Extract: the provider's whole stop list fetched, typed, validated and stored as a snapshot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from smsp_connector.client import SmspClient
from smsp_connector.client.models import PROVIDER_TZ, in_time_range
from smsp_connector.operations.listing import load_provider_list
from smsp_connector.warehouse import (
    Duplicates,
    SnapshotSummary,
    StopListSchema,
    StopListStage,
    Warehouse,
    publish_stop_list,
    reject_stop_list,
    staging,
)

_PROVIDER_FIELDS = ("id", "phoneNumber", "createdAt")
VALIDATION_CHUNK_ROWS = 50_000
"""Rows validated at a time: pandera's memory stays bounded whatever the list's length."""
_FAILURE_COLUMNS = ["row", "column", "check", "failure_case", "provider_entry"]


def provider_hours(hours: Sequence[datetime]) -> pd.DataFrame:
    """For each provider-local hour (naive), the UTC instant it starts at and whether it is the
    hour skipped when clocks go forward, for :meth:`StopListStage.stage`.

    The rules of :class:`StopListSchema`: in the hour repeated when clocks go back, summer time
    (the first occurrence, ``fold=0``); a time in the skipped hour becomes the instant the
    clocks jumped (pandas' ``shift_forward``). Paris changes its offset by whole hours at the
    top of an hour, so an hour's instant plus the minutes and seconds is each time's instant.

    An hour outside :func:`~smsp_connector.client.models.in_time_range` (``0001-01-01``) gets
    no row: its entries' ``created_at`` stays null, and ``schema_valid`` reports each one with
    the value the provider sent.
    """
    readable = [hour for hour in hours if in_time_range(hour)]
    local = pd.Series(pd.to_datetime(readable), dtype="datetime64[ns]")
    ambiguous = np.ones(len(local), dtype=bool)
    instant = local.dt.tz_localize(
        PROVIDER_TZ.key, ambiguous=ambiguous, nonexistent="shift_forward"
    ).dt.tz_convert("UTC")
    skipped = local.dt.tz_localize(PROVIDER_TZ.key, ambiguous=ambiguous, nonexistent="NaT")
    # In microseconds, the resolution of DuckDB's TIMESTAMP: the join then compares every
    # entry's hour as it is, an out-of-range one included, never cast to nanoseconds.
    return pd.DataFrame(
        {"hour": local.astype("datetime64[us]"), "instant": instant, "in_gap": skipped.isna()}
    )


@dataclass(frozen=True)
class ValidationReport:
    """What pandera found wrong, row by row, with the provider's original values."""

    failure_cases: pd.DataFrame
    """Columns: ``row`` (0-based position in the list), ``column``, ``check``,
    ``failure_case``, ``provider_entry`` (the entry as sent)."""

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


def validate_staged(
    stage: StopListStage, chunk_rows: int = VALIDATION_CHUNK_ROWS
) -> ValidationReport:
    """Validate the staged snapshot with :class:`StopListSchema`, lazily (every failure, not
    the first), and attach each failing row's entry as sent. SQL passes the rows whose values
    plainly meet the schema; pandera checks the rest, ``chunk_rows`` at a time, and the first
    row, which carries the columns and their types."""
    found = []
    for chunk in stage.suspect_chunks(chunk_rows):
        try:
            StopListSchema.validate(chunk, lazy=True)
        except pa.errors.SchemaErrors as errors:
            found.append(errors.failure_cases)
    if not found:
        return ValidationReport(pd.DataFrame(columns=_FAILURE_COLUMNS))
    cases = pd.concat(found, ignore_index=True)
    rows = pd.to_numeric(cases["index"], errors="coerce").astype("Int64")
    entries = stage.raw_entries([int(row) for row in rows.dropna().unique()])
    report = pd.DataFrame(
        {
            "row": rows,
            "column": cases["column"].astype(str),
            "check": cases["check"].astype(str),
            "failure_case": [_failure_text(case) for case in cases["failure_case"]],
            "provider_entry": [
                _provider_entry(entries.get(int(row))) if pd.notna(row) else "" for row in rows
            ],
        }
    )
    return ValidationReport(report.sort_values(["row", "column"], kind="stable"))


def _failure_text(case: object) -> str:
    """A failing value as text; a missing one as ``null`` whichever chunk it came in (pandas
    writes ``<NA>``, ``nan`` or ``NaT`` as the chunk's other values make its column's type)."""
    if pd.api.types.is_scalar(case) and pd.isna(case):
        return "null"
    return str(case)


def _provider_entry(sent: str | None) -> str:
    entry = json.loads(sent) if sent is not None else {}
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
    """One extraction of the stop list: the snapshot staged, its checks, and whether it was
    published as the new ``stop_list`` or rejected."""

    report: ValidationReport
    snapshot: SnapshotSummary
    checks: list[CheckOutcome]
    fetch_seconds: float
    preview: pd.DataFrame
    """The snapshot's first rows."""

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
    memory_limit: str | None = None,
) -> Extraction:
    """Fetch the whole list, type it, validate it (every failing row reported with the
    provider's raw values), stage it, check it, and publish it as ``stop_list`` only when no
    blocking check failed (write-audit-publish).

    The list never lives in Python objects: its body streams to a temporary file, DuckDB parses
    and types it into ``stop_list_staged`` (within ``memory_limit``, spilling past it), pandera
    validates it in bounded chunks.
    """
    extracted_at = datetime.now(UTC)
    with staging(warehouse, memory_limit=memory_limit) as stage:
        _, fetch_seconds = load_provider_list(client, stage)
        snapshot = stage.stage(provider_hours(stage.local_hours()), extracted_at)
        report = validate_staged(stage)
        checks = snapshot_checks(
            stage, report, snapshot, max_shrink_share=max_shrink_share, accept_shrink=accept_shrink
        )
        extraction = Extraction(report, snapshot, checks, fetch_seconds, stage.preview(10))
        logged = {"run_id": run_id, "extracted_at": extracted_at, "valid": report.valid}
        if extraction.published:
            publish_stop_list(warehouse, snapshot, **logged)
        else:
            rejected_by = extraction.blocking_failures[0].name
            reject_stop_list(warehouse, snapshot, rejected_by=rejected_by, **logged)
    return extraction


def snapshot_checks(
    stage: StopListStage,
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
    ids = _unique("stop_ids_unique", stage.duplicates("stop_id"), blocking=True)
    numbers = _unique("phone_numbers_unique", stage.duplicates("phone_number"), blocking=False)
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


def _unique(name: str, duplicates: Duplicates, *, blocking: bool) -> CheckOutcome:
    examples = duplicates.examples
    return CheckOutcome(
        name,
        duplicates.rows == 0,
        blocking,
        {"duplicated_rows": duplicates.rows, "examples": ", ".join(examples) or "-"},
        f"{name}: {duplicates.rows} entries share a value (e.g. {', '.join(examples[:3])})",
    )
