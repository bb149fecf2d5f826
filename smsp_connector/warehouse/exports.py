"""Suppression-list exports for CRM syncs: CSV and Parquet, plain or SHA-256-hashed.

Files are written by DuckDB's ``COPY`` to a temporary name and renamed into place, so a CRM
job reading the export never sees a half-written file.

CSV cells that a spreadsheet would execute as a formula (starting with ``=``, ``+``, ``-``,
``@``, tab or carriage return) get a leading apostrophe, as OWASP advises. A well-formed E.164
number starts with ``+`` yet cannot carry a formula (a plus and digits only), so it is left as
is: prefixing every number would break the CRM import the export exists for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from smsp_connector.intake.phone_numbers import E164_PATTERN
from smsp_connector.warehouse.tables import Tables, Warehouse

_FORMULA_START = r"^[=+\-@\t\r]"


def formula_safe_sql(column: str) -> str:
    """SQL expression: ``column`` with a leading apostrophe when a spreadsheet would run it."""
    return (
        f"CASE WHEN regexp_matches({column}, '{_FORMULA_START}') "
        f"AND NOT regexp_matches({column}, '{E164_PATTERN}') "
        f"THEN '''' || {column} ELSE {column} END"
    )


@dataclass(frozen=True, slots=True)
class ExportResult:
    csv_path: Path
    parquet_path: Path
    row_count: int
    preview: pd.DataFrame


def export_suppression_list(
    warehouse: Warehouse, directory: Path, *, hashed: bool, preview_rows: int = 10
) -> ExportResult:
    """Write the current stop list to ``directory`` as CSV and Parquet.

    Plain exports carry the E.164 number; hashed ones its SHA-256 (lowercase hex of the UTF-8
    E.164 text), the form the CNIL recommends for suppression lists kept by third parties.
    """
    directory.mkdir(parents=True, exist_ok=True)
    with warehouse.connect() as (conn, tables):
        return _export(conn, tables, directory, hashed=hashed, preview_rows=preview_rows)


def _export(
    conn: duckdb.DuckDBPyConnection,
    tables: Tables,
    directory: Path,
    *,
    hashed: bool,
    preview_rows: int,
) -> ExportResult:
    name = "suppression_list_sha256" if hashed else "suppression_list"
    column = "phone_sha256" if hashed else "phone_number"
    value = "sha256(phone_number)" if hashed else "phone_number"
    select = f"""
        SELECT {value} AS {column},
               stop_id,
               strftime(created_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') AS opted_out_at_utc
        FROM {tables.stop_list}
        WHERE phone_number IS NOT NULL
        ORDER BY stop_id
    """
    csv_select = f"""
        SELECT {formula_safe_sql(column)} AS {column}, stop_id, opted_out_at_utc
        FROM ({select})
    """
    csv_path = directory / f"{name}.csv"
    parquet_path = directory / f"{name}.parquet"
    _copy_atomically(conn, csv_select, csv_path, "(HEADER, DELIMITER ',')")
    _copy_atomically(conn, select, parquet_path, "(FORMAT PARQUET)")
    row_count = conn.execute(f"SELECT count(*) FROM ({select})").fetchone()[0]
    preview = conn.execute(f"{csv_select} LIMIT {int(preview_rows)}").fetchdf()
    return ExportResult(csv_path, parquet_path, int(row_count), preview)


def _copy_atomically(
    conn: duckdb.DuckDBPyConnection, select: str, target: Path, options: str
) -> None:
    partial = target.with_name(f".{target.name}.partial")
    try:
        conn.execute(f"COPY ({select}) TO '{_sql_path(partial)}' {options}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
