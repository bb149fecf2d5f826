"""Opt-outs read from warehouse tables and queries, and the cursors of what was pushed.

A source is a table, a view or a query on the account's DuckDB database. With a cursor column
(e.g. ``unsubscribed_at``), only the rows past the cursor stored in ``push_cursors`` are read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from smsp_connector.client import MutationKind
from smsp_connector.warehouse.audit import Outcome
from smsp_connector.warehouse.results import one_row
from smsp_connector.warehouse.tables import Warehouse

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")


def table_query(table: str) -> str:
    """``SELECT *`` from a table or view named ``[catalog.][schema.]name``."""
    if not _TABLE_NAME.match(table):
        raise ValueError(f"{table!r} is not a table name ([catalog.][schema.]name)")
    return f"SELECT * FROM {table}"


def _column(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def query_columns(warehouse: Warehouse, query: str) -> list[str]:
    """The column names of a query, in order."""
    with warehouse.connect() as (conn, _):
        return [row[0] for row in conn.execute(f"DESCRIBE SELECT * FROM ({query}) AS q").fetchall()]


@dataclass(frozen=True, slots=True)
class SourceRows:
    """The rows of one read, in cursor order: each one's phone, region and cursor as text."""

    phones: list[str | None]
    regions: list[str | None] | None
    cursors: list[str | None] | None


def read_source_rows(
    warehouse: Warehouse,
    query: str,
    *,
    phone_column: str,
    region_column: str | None = None,
    cursor_column: str | None = None,
    after: str | None = None,
) -> SourceRows:
    """Read ``query``'s rows past ``after`` (on ``cursor_column``, compared in the column's own
    type), oldest first. Raises ``ValueError`` naming a column the query does not have."""
    with warehouse.connect() as (conn, _):
        described = conn.execute(f"DESCRIBE SELECT * FROM ({query}) AS source").fetchall()
        types = {row[0]: row[1] for row in described}
        for label, column in (
            ("phone_column", phone_column),
            ("region_column", region_column),
            ("cursor_column", cursor_column),
        ):
            if column is not None and column not in types:
                raise ValueError(
                    f"{label} {column!r} is not a column of the source ({sorted(types)})"
                )
        select = [f"CAST({_column(phone_column)} AS VARCHAR)"]
        select.append(f"CAST({_column(region_column)} AS VARCHAR)" if region_column else "NULL")
        select.append(f"CAST({_column(cursor_column)} AS VARCHAR)" if cursor_column else "NULL")
        where, order, parameters = "", "", []
        if cursor_column:
            cursor = _column(cursor_column)
            order = f"ORDER BY {cursor} NULLS FIRST, 1"
            if after is not None:
                where = f"WHERE {cursor} > CAST(? AS {types[cursor_column]})"
                parameters = [after]
        rows = conn.execute(
            f"SELECT {', '.join(select)} FROM ({query}) AS source {where} {order}", parameters
        ).fetchall()
    return SourceRows(
        phones=[row[0] for row in rows],
        regions=[row[1] for row in rows] if region_column else None,
        cursors=[row[2] for row in rows] if cursor_column else None,
    )


def pushed_cursor(warehouse: Warehouse, source: str) -> str | None:
    with warehouse.connect() as (conn, tables):
        row = one_row(conn, f"SELECT cursor_value FROM {tables.cursors} WHERE source = ?", [source])
    return row[0] if row else None


FINAL_OUTCOMES = frozenset(
    {
        Outcome.APPLIED,
        Outcome.ALREADY_DONE,
        Outcome.REJECTED,
        Outcome.INVALID_INPUT,
        Outcome.ALREADY_ON_LIST,
        Outcome.DUPLICATE_IN_FILE,
    }
)
"""Outcomes after which a row needs nothing more: the cursor may move past it."""


def record_source_reads(
    warehouse: Warehouse, run_id: str, source: str, cursors: Sequence[str | None]
) -> None:
    """Record the cursor value of each row (1, 2, … in read order) a run read from the table
    source labelled ``source``, before any audit row of the run names them."""
    if not cursors:
        return
    rows = pd.DataFrame(
        {
            "source_row": np.arange(1, len(cursors) + 1, dtype="int64"),
            "cursor_value": pd.Series(list(cursors), dtype=object),
        }
    )

    def insert(conn, tables) -> None:
        # A step retried in the same run reads again: its rows replace the first attempt's.
        conn.execute(
            f"DELETE FROM {tables.source_reads} WHERE run_id = ? AND source = ?", [run_id, source]
        )
        conn.register("source_read_rows", rows)
        try:
            conn.execute(
                f"INSERT INTO {tables.source_reads} SELECT ?, ?, source_row, "
                "CAST(cursor_value AS VARCHAR) FROM source_read_rows",
                [run_id, source],
            )
        finally:
            conn.unregister("source_read_rows")

    warehouse.transaction(insert)


def advance_cursor(
    warehouse: Warehouse,
    source: str,
    *,
    run_id: str,
    cursors: Sequence[str | None],
    outcomes: Sequence[Outcome | None],
) -> str | None:
    """Move the source's cursor over the rows read (in cursor order) whose outcome is final,
    stopping before the first that is not (failed, pending): those rows are read again.

    Rows sharing the cursor value of an unfinished row are not passed either. Returns the
    cursor stored (unchanged when nothing could be passed)."""
    unfinished = [
        cursor
        for cursor, outcome in zip(cursors, outcomes, strict=True)
        if cursor is not None and outcome not in FINAL_OUTCOMES
    ]
    stop = unfinished[0] if unfinished else None
    passed = None
    for cursor, outcome in zip(cursors, outcomes, strict=True):
        if cursor is None:
            continue
        if stop is not None and cursor == stop:
            break
        if outcome in FINAL_OUTCOMES:
            passed = cursor
    if passed is None:
        return pushed_cursor(warehouse, source)
    now = datetime.now(UTC)

    def store(conn, tables) -> None:
        # MERGE, not INSERT ... ON CONFLICT: a lake has no primary key to conflict on.
        conn.execute(
            f"""
            MERGE INTO {tables.cursors} AS c
            USING (SELECT CAST(? AS VARCHAR) AS source, CAST(? AS VARCHAR) AS cursor_value,
                          CAST(? AS VARCHAR) AS run_id, CAST(? AS TIMESTAMPTZ) AS updated_at) AS n
            ON c.source = n.source
            WHEN MATCHED THEN UPDATE SET cursor_value = n.cursor_value, run_id = n.run_id,
                                         updated_at = n.updated_at
            WHEN NOT MATCHED THEN INSERT (source, cursor_value, run_id, updated_at)
                VALUES (n.source, n.cursor_value, n.run_id, n.updated_at)
            """,
            [source, passed, run_id, now],
        )

    warehouse.transaction(store, lock="cursors")
    return passed


def refused_numbers(warehouse: Warehouse, code: int = 9) -> dict[str, str]:
    """Numbers whose latest real (not dry-run) add was refused by the provider with ``code``,
    with the run that was refused: the audit log remembers them."""
    with warehouse.connect() as (conn, tables):
        rows = conn.execute(
            f"""
            SELECT target, arg_max(run_id, recorded_at) FROM {tables.audit_latest}
            WHERE operation = ? AND NOT dry_run
              AND outcome IN ('applied', 'already_done', 'rejected')
            GROUP BY target
            HAVING arg_max(outcome, recorded_at) = 'rejected'
               AND arg_max(provider_code, recorded_at) = ?
            """,
            [MutationKind.ADD.value, code],
        ).fetchall()
    return dict(rows)
