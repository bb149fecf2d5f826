"""The stop list snapshot, written, audited, then published (write-audit-publish).

Each extraction is staged in ``stop_list_staged``; the checks run on it; only a snapshot that
passes them is swapped in as ``stop_list``, in one transaction, so a reader never sees a
half-written, half-empty or invalid suppression list. Every staged snapshot is logged in
``stop_list_snapshots`` as ``published`` or ``rejected`` (with the check that blocked it).
(dagster-duckdb-pandas' handler deletes the rows and inserts the new ones in separate
statements, and skips empty frames, so the stop list is written here instead.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from smsp_connector.warehouse.tables import Tables, Warehouse

_SNAPSHOT_SELECT = """
SELECT CAST(stop_id AS BIGINT) AS stop_id,
       CAST(phone_number AS VARCHAR) AS phone_number,
       CAST(created_at AS TIMESTAMPTZ) AS created_at,
       CAST(extracted_at AS TIMESTAMPTZ) AS extracted_at
FROM snapshot_frame
"""
"""Explicit casts: an empty frame still gives a table with the right column types."""


@dataclass(frozen=True, slots=True)
class SnapshotSummary:
    row_count: int
    entered: int
    left: int
    previous_row_count: int | None
    """Rows in the previous snapshot, ``None`` on the first extraction."""


def stop_list_exists(conn: duckdb.DuckDBPyConnection, tables: Tables) -> bool:
    found = conn.execute(
        "SELECT count(*) FROM information_schema.tables "
        # DuckDB identifiers are case-insensitive: schema SMSP is schema smsp.
        "WHERE table_catalog = current_database() AND lower(table_schema) = lower(?) "
        "AND table_name = ?",
        [tables.schema_name, "stop_list"],
    ).fetchone()
    return bool(found and found[0])


def stage_stop_list(warehouse: Warehouse, frame: pd.DataFrame) -> SnapshotSummary:
    """Write ``frame`` to ``stop_list_staged`` (replacing the last staged snapshot) and count
    the numbers that entered and left compared with the published ``stop_list``.

    Nothing a reader sees changes: :func:`publish_stop_list` or :func:`reject_stop_list` decides.
    """
    with warehouse.connect() as (conn, t):
        conn.register("snapshot_frame", frame)
        try:
            conn.execute(f"CREATE OR REPLACE TABLE {t.staged} AS {_SNAPSHOT_SELECT}")
        finally:
            conn.unregister("snapshot_frame")
        previous = None
        entered, left = len(frame), 0
        if stop_list_exists(conn, t):
            previous, entered, left = conn.execute(
                f"""
                WITH new AS (SELECT DISTINCT phone_number FROM {t.staged}
                             WHERE phone_number IS NOT NULL),
                     old AS (SELECT DISTINCT phone_number FROM {t.stop_list}
                             WHERE phone_number IS NOT NULL)
                SELECT (SELECT count(*) FROM {t.stop_list}),
                       (SELECT count(*) FROM new ANTI JOIN old USING (phone_number)),
                       (SELECT count(*) FROM old ANTI JOIN new USING (phone_number))
                """
            ).fetchone()
    return SnapshotSummary(len(frame), int(entered), int(left), previous)


def publish_stop_list(
    warehouse: Warehouse,
    summary: SnapshotSummary,
    *,
    run_id: str,
    extracted_at: datetime,
    valid: bool,
) -> None:
    """Swap the staged snapshot in as ``stop_list`` and log it as published, in one
    transaction: a crash leaves the previous list, never a half-written or empty one."""
    with warehouse.connect() as (conn, t):
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(f"DROP TABLE IF EXISTS {t.stop_list}")
            conn.execute(f"ALTER TABLE {t.staged} RENAME TO stop_list")
            _log(conn, t, summary, run_id, extracted_at, valid, "published", None)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def reject_stop_list(
    warehouse: Warehouse,
    summary: SnapshotSummary,
    *,
    run_id: str,
    extracted_at: datetime,
    valid: bool,
    rejected_by: str,
) -> None:
    """Log the staged snapshot as rejected by the check ``rejected_by``; ``stop_list`` stays as
    it was and the staged rows stay in ``stop_list_staged`` for inspection."""
    with warehouse.connect() as (conn, t):
        _log(conn, t, summary, run_id, extracted_at, valid, "rejected", rejected_by)


def replace_stop_list(
    warehouse: Warehouse,
    frame: pd.DataFrame,
    *,
    run_id: str,
    extracted_at: datetime,
    valid: bool,
) -> SnapshotSummary:
    """Stage ``frame`` and publish it at once, whatever it holds (no checks)."""
    summary = stage_stop_list(warehouse, frame)
    publish_stop_list(warehouse, summary, run_id=run_id, extracted_at=extracted_at, valid=valid)
    return summary


def _log(
    conn: duckdb.DuckDBPyConnection,
    t: Tables,
    summary: SnapshotSummary,
    run_id: str,
    extracted_at: datetime,
    valid: bool,
    status: str,
    rejected_by: str | None,
) -> None:
    conn.execute(
        f"INSERT INTO {t.snapshots} (run_id, extracted_at, row_count, entered, left_count, "
        "valid, status, rejected_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            extracted_at,
            summary.row_count,
            summary.entered,
            summary.left,
            valid,
            status,
            rejected_by,
        ],
    )
