"""Reading one row or one value of a query so that no result is left unfinished.

DuckDB 2 refuses any other work on a connection (``register``, ``unregister``, a relation)
while a result of ``execute()`` has not been read to its end, and ``fetchone()`` does not read
to the end: it cannot know that no second row follows. DuckDB 1.x let it pass. Every
single-row read of this package goes through :func:`one_row` or :func:`scalar`, which read the
whole (one-row) result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

Parameters = Sequence[Any] | dict[str, Any] | None


def one_row(
    conn: duckdb.DuckDBPyConnection, sql: str, parameters: Parameters = None
) -> tuple[Any, ...] | None:
    """The only row of ``sql``, or ``None`` when it has none; more than one is a bug."""
    rows = conn.execute(sql, parameters).fetchall()
    if len(rows) > 1:
        raise ValueError(f"expected at most one row, got {len(rows)}: {sql}")
    return rows[0] if rows else None


def scalar(conn: duckdb.DuckDBPyConnection, sql: str, parameters: Parameters = None) -> Any:
    """The first column of the only row of ``sql`` (an aggregate, a setting)."""
    row = one_row(conn, sql, parameters)
    if row is None:
        raise ValueError(f"expected one row, got none: {sql}")
    return row[0]
