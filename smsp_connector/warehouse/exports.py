"""Suppression-list exports for CRM syncs: CSV and Parquet, plain, SHA-256 or HMAC-SHA256.

Files are written by DuckDB's ``COPY`` to a temporary name and renamed into place, so a CRM
job reading the export never sees a half-written file. In an ``s3://bucket/prefix`` folder each
file is one upload, which S3 shows only once complete (no rename there, none needed);
credentials from the AWS chain (:mod:`smsp_connector.warehouse.object_store`).

CSV cells that a spreadsheet would execute as a formula (starting with ``=``, ``+``, ``-``,
``@``, tab or carriage return) get a leading apostrophe, as OWASP advises. A well-formed E.164
number starts with ``+`` yet cannot carry a formula (a plus and digits only), so it is left as
is: prefixing every number would break the CRM import the export exists for.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import duckdb
import pandas as pd
from duckdb.sqltypes import VARCHAR

from smsp_connector.intake.phone_numbers import E164_SQL_PATTERN
from smsp_connector.warehouse import object_store
from smsp_connector.warehouse.lake import load_extension
from smsp_connector.warehouse.results import scalar
from smsp_connector.warehouse.sql import literal
from smsp_connector.warehouse.tables import Tables, Warehouse

FORMULA_START = r"^[=+\-@\t\r]"
"""Where a spreadsheet sees a formula: the same rule for every CSV this project writes."""


def formula_safe_sql(column: str) -> str:
    """SQL expression: ``column`` with a leading apostrophe when a spreadsheet would run it."""
    return (
        f"CASE WHEN regexp_matches({column}, '{FORMULA_START}') "
        f"AND NOT regexp_matches({column}, '{E164_SQL_PATTERN}') "
        f"THEN '''' || {column} ELSE {column} END"
    )


@dataclass(frozen=True, slots=True)
class ExportResult:
    csv_path: Path | str
    """The CSV file, or its ``s3://`` URL."""
    parquet_path: Path | str
    row_count: int
    preview: pd.DataFrame


class ExportForm(StrEnum):
    """How the export carries each number."""

    PLAIN = "plain"
    """The E.164 number, for your own CRM."""
    SHA256 = "sha256"
    """Unsalted SHA-256 of the E.164 text: what ad platforms match on. Reversible by anyone
    who hashes every possible number (about 10^9 French ones: minutes on a laptop)."""
    HMAC_SHA256 = "hmac_sha256"
    """HMAC-SHA256 keyed with a secret shared only with the recipient: not reversible without
    the key."""


_FORMS = {
    # form: (file name, column, SQL value)
    ExportForm.PLAIN: ("suppression_list", "phone_number", "phone_number"),
    ExportForm.SHA256: ("suppression_list_sha256", "phone_sha256", "sha256(phone_number)"),
    ExportForm.HMAC_SHA256: (
        "suppression_list_hmac_sha256",
        "phone_hmac_sha256",
        "smsp_hmac_sha256(phone_number)",
    ),
}
MIN_HMAC_KEY_BYTES = 16


def hmac_sha256_hex(key: bytes, number: str) -> str:
    """The export's HMAC-SHA256 of a number: lowercase hex of the UTF-8 E.164 text."""
    return hmac.new(key, number.encode(), hashlib.sha256).hexdigest()


def export_suppression_list(
    warehouse: Warehouse,
    directory: Path | str,
    *,
    form: ExportForm = ExportForm.PLAIN,
    hmac_key: bytes | None = None,
    preview_rows: int = 10,
) -> ExportResult:
    """Write the current stop list to ``directory`` (a folder, or ``s3://bucket/prefix``) as
    CSV and Parquet, in ``form``.

    Hashes are lowercase hex of the UTF-8 E.164 text; ``hmac_key`` (at least
    :data:`MIN_HMAC_KEY_BYTES` bytes) is needed for, and only used by, the HMAC form.
    """
    if form is ExportForm.HMAC_SHA256 and (hmac_key is None or len(hmac_key) < MIN_HMAC_KEY_BYTES):
        raise ValueError(f"the HMAC export needs a key of at least {MIN_HMAC_KEY_BYTES} bytes")
    if not object_store.is_object_store(directory):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
    with warehouse.connect() as (conn, tables):
        if isinstance(directory, str):
            object_store.check_location(directory)
            object_store.configure(conn, lambda name: load_extension(conn, name))
        if form is not ExportForm.HMAC_SHA256:
            return _export(conn, tables, directory, form=form, preview_rows=preview_rows)
        key = hmac_key or b""
        conn.create_function(
            "smsp_hmac_sha256",
            lambda number: hmac_sha256_hex(key, number),
            [VARCHAR],
            VARCHAR,
        )
        try:
            return _export(conn, tables, directory, form=form, preview_rows=preview_rows)
        finally:
            conn.remove_function("smsp_hmac_sha256")


def _export(
    conn: duckdb.DuckDBPyConnection,
    tables: Tables,
    directory: Path | str,
    *,
    form: ExportForm,
    preview_rows: int,
) -> ExportResult:
    name, column, value = _FORMS[form]
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
    if isinstance(directory, str):
        csv_path: Path | str = f"{directory.rstrip('/')}/{name}.csv"
        parquet_path: Path | str = f"{directory.rstrip('/')}/{name}.parquet"
    else:
        csv_path, parquet_path = directory / f"{name}.csv", directory / f"{name}.parquet"
    _copy_atomically(conn, csv_select, csv_path, "(HEADER, DELIMITER ',')")
    _copy_atomically(conn, select, parquet_path, "(FORMAT PARQUET)")
    row_count = scalar(conn, f"SELECT count(*) FROM ({select})")
    preview = conn.execute(f"{csv_select} LIMIT {int(preview_rows)}").fetchdf()
    return ExportResult(csv_path, parquet_path, int(row_count), preview)


def _copy_atomically(
    conn: duckdb.DuckDBPyConnection, select: str, target: Path | str, options: str
) -> None:
    if isinstance(target, str):  # an object: visible only once its upload completes
        conn.execute(f"COPY ({select}) TO {literal(target)} {options}")
        return
    partial = target.with_name(f".{target.name}.partial")
    try:
        conn.execute(f"COPY ({select}) TO {literal(str(partial))} {options}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
