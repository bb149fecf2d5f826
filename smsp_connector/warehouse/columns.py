"""The columns of the schema's tables, as DuckDB reports them once :mod:`tables` created them.

Read from the database rather than parsed from the DDL: the DDL is DuckDB SQL with defaults,
``CHECK`` constraints and ``ALTER TABLE ... ADD COLUMN`` migrations, and what DuckDB makes of
it is what readers of the tables get. :func:`declared_columns` creates the tables in a private
in-memory database, so it needs no file and works at import time.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from smsp_connector.warehouse.results import scalar
from smsp_connector.warehouse.tables import TABLE_NAMES, Warehouse


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    """DuckDB's name for the type (``VARCHAR``, ``TIMESTAMP WITH TIME ZONE``, ...)."""
    nullable: bool
    default: str | None = None
    """The default's SQL expression, if the column has one (``'published'``)."""


def table_columns(warehouse: Warehouse, tables: Sequence[str]) -> dict[str, tuple[Column, ...]]:
    """Each of ``tables``' columns in order, from ``information_schema.columns`` of the
    warehouse's schema (its tables are created first if needed)."""
    unknown = sorted(set(tables) - set(TABLE_NAMES))
    if unknown:
        raise ValueError(f"not tables of the warehouse: {', '.join(unknown)}")
    with warehouse.connect() as (conn, _):
        rows = conn.execute(
            """
            SELECT table_name, column_name, data_type, is_nullable = 'YES', column_default
            FROM information_schema.columns
            WHERE table_catalog = current_database() AND table_schema = ?
                AND list_contains(?, table_name)
            ORDER BY table_name, ordinal_position
            """,
            [warehouse.schema, list(tables)],
        ).fetchall()
    columns: dict[str, list[Column]] = {table: [] for table in tables}
    for table, name, data_type, nullable, default in rows:
        columns[table].append(Column(name, data_type, bool(nullable), default))
    return {table: tuple(found) for table, found in columns.items()}


@functools.cache
def declared_columns(tables: tuple[str, ...] = TABLE_NAMES) -> dict[str, tuple[Column, ...]]:
    """The columns that :class:`Warehouse` creates for ``tables``, from a throwaway in-memory
    database (computed once per process)."""
    return table_columns(Warehouse.at(":memory:"), tables)


def row_count(warehouse: Warehouse, table: str) -> int:
    """How many rows one of the schema's tables holds (``table`` from :data:`TABLE_NAMES`)."""
    if table not in TABLE_NAMES:
        raise ValueError(f"not a table of the schema: {table!r}")
    with warehouse.connect() as (conn, tables):
        return int(scalar(conn, f"SELECT count(*) FROM {tables.qualified(table)}"))
