"""The stop list snapshot: ``stop_list`` replaced in one transaction, logged in
``stop_list_snapshots``.

A crash mid-write leaves the previous state, never a half-written or empty suppression list.
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


def replace_stop_list(
    warehouse: Warehouse,
    frame: pd.DataFrame,
    *,
    run_id: str,
    extracted_at: datetime,
    valid: bool,
) -> SnapshotSummary:
    """Replace ``stop_list`` by ``frame`` and log the snapshot, in one transaction.

    Also counts the numbers that entered and left since the previous snapshot.
    """
    with warehouse.connect() as (conn, t):
        return _replace(conn, t, frame, run_id=run_id, extracted_at=extracted_at, valid=valid)


def _replace(
    conn: duckdb.DuckDBPyConnection,
    t: Tables,
    frame: pd.DataFrame,
    *,
    run_id: str,
    extracted_at: datetime,
    valid: bool,
) -> SnapshotSummary:
    conn.register("snapshot_frame", frame)
    try:
        conn.execute("BEGIN TRANSACTION")
        previous = None
        entered, left = len(frame), 0
        if stop_list_exists(conn, t):
            previous, entered, left = conn.execute(
                f"""
                WITH new AS (SELECT DISTINCT phone_number FROM snapshot_frame
                             WHERE phone_number IS NOT NULL),
                     old AS (SELECT DISTINCT phone_number FROM {t.stop_list}
                             WHERE phone_number IS NOT NULL)
                SELECT (SELECT count(*) FROM {t.stop_list}),
                       (SELECT count(*) FROM new ANTI JOIN old USING (phone_number)),
                       (SELECT count(*) FROM old ANTI JOIN new USING (phone_number))
                """
            ).fetchone()
        conn.execute(f"CREATE OR REPLACE TABLE {t.stop_list} AS {_SNAPSHOT_SELECT}")
        conn.execute(
            f"INSERT INTO {t.snapshots} VALUES (?, ?, ?, ?, ?, ?)",
            [run_id, extracted_at, len(frame), entered, left, valid],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.unregister("snapshot_frame")
    return SnapshotSummary(len(frame), int(entered), int(left), previous)
