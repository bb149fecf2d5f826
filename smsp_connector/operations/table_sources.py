"""Push opt-outs kept in warehouse tables: read the rows past the source's cursor, push them
through the same run core as files, then move the cursor over the rows whose outcome is final.

Rows are recorded in the audit log with ``source_file`` = ``table:<name>`` (or ``query:…``)
and ``source_row`` = the row's position in this read (cursor order); failed rows keep the
cursor where it is, so the next push reads them again.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from smsp_connector.intake import Intake, phone_intake_frame
from smsp_connector.operations.context import RunContext
from smsp_connector.operations.push import PushSummary
from smsp_connector.operations.run import Push, RunReport, run_operation
from smsp_connector.settings import PushSource
from smsp_connector.warehouse import (
    Warehouse,
    advance_cursor,
    outcome_rows,
    pushed_cursor,
    read_source_rows,
    record_source_reads,
    table_query,
)
from smsp_connector.warehouse.phone_forms import french_plan_numbers


@dataclass(frozen=True)
class _ReadRows:
    """An input already read (the rows of one table read), for the run core."""

    frame: pd.DataFrame
    options: dict[str, str]
    path: None = None

    def read(self, extra_columns: tuple[str, ...] = ()) -> Intake:
        return Intake(self.frame, options=self.options)


def source_query(source: PushSource) -> str:
    table = source.source_table
    return table_query(table) if table else str(source.query)


def source_options(source: PushSource) -> dict[str, str]:
    """How a source's rows were read, as its plans record them: what was read (the table, or
    the query's text) and how its numbers were taken."""
    table = source.source_table
    read = {"table": table} if table else {"query": str(source.query)}
    columns = {
        name: value
        for name in ("phone_column", "region_column", "cursor_column")
        if (value := getattr(source, name))
    }
    return {**read, **columns, "default_region": source.default_region.upper()}


def source_label(source: PushSource) -> str:
    return f"{'table' if source.source_table else 'query'}:{source.name}"


def read_source(source: PushSource, warehouse: Warehouse) -> tuple[pd.DataFrame, list[str | None]]:
    """The intake frame of the rows past the cursor, and each row's cursor value."""
    after = pushed_cursor(warehouse, source.name) if source.cursor_column else None
    rows = read_source_rows(
        warehouse,
        source_query(source),
        phone_column=source.phone_column,
        region_column=source.region_column,
        cursor_column=source.cursor_column,
        after=after,
    )
    frame = phone_intake_frame(
        source_label(source),
        rows.phones,
        list(range(1, len(rows.phones) + 1)),
        default_region=source.default_region,
        regions=rows.regions,
        quick_path=french_plan_numbers,
    )
    return frame, rows.cursors or []


def push_source(
    source: PushSource,
    context: RunContext,
    *,
    dry_run: bool = False,
    retry_rejected: bool = False,
) -> RunReport[PushSummary]:
    """Push the source's new rows; a real run then advances the source's cursor."""
    warehouse = context.warehouse
    frame, cursors = read_source(source, warehouse)
    if source.cursor_column:
        record_source_reads(warehouse, context.run_id, source_label(source), cursors)
    report = run_operation(
        Push(dry_run=dry_run, retry_rejected=retry_rejected),
        _ReadRows(frame, source_options(source)),
        context,
    )
    if source.cursor_column and not dry_run and cursors:
        final = outcome_rows(warehouse, context.run_id)
        advance_cursor(
            warehouse,
            source.name,
            run_id=context.run_id,
            cursors=cursors,
            outcomes=[final.get(row) for row in range(1, len(cursors) + 1)],
        )
    return report
