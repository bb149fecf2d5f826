"""The stop list's history: who entered and who left, and when each number was first and last
seen (``stop_list_presence``, and ``stop_list_history``, append-only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from smsp_connector.warehouse.results import one_row, scalar
from smsp_connector.warehouse.stop_list import stop_list_exists
from smsp_connector.warehouse.tables import Tables, Warehouse


@dataclass(frozen=True, slots=True)
class HistoryUpdate:
    observed_at: datetime
    entered: int
    left: int
    listed: int


def update_history(warehouse: Warehouse) -> HistoryUpdate:
    """Record who entered and left the list since the history last ran, in one transaction.

    Compares ``stop_list`` with ``stop_list_presence``, the state the history left behind, so
    a snapshot that the checks blocked is folded in by the next run that passes.
    """
    return warehouse.transaction(_update, lock="history")


def _update(conn: duckdb.DuckDBPyConnection, t: Tables) -> HistoryUpdate:
    """The update, inside the caller's transaction (re-run whole when a lake commit loses)."""
    snapshot = one_row(
        conn,
        f"SELECT run_id, extracted_at FROM {t.snapshots} WHERE status = 'published' "
        "ORDER BY extracted_at DESC LIMIT 1",
    )
    if snapshot is None or not stop_list_exists(conn, t):
        raise LookupError(f"no snapshot in {t.snapshots}: materialize the stop list first")
    run_id, observed_at = snapshot
    conn.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE current_numbers AS
        SELECT phone_number, min(stop_id) AS stop_id, min(created_at) AS created_at
        FROM {t.stop_list} WHERE phone_number IS NOT NULL GROUP BY phone_number
        """
    )
    entered = scalar(
        conn,
        f"""
        INSERT INTO {t.history}
        SELECT $observed, $run, 'entered', c.phone_number, c.stop_id, c.created_at,
               $observed, $observed
        FROM current_numbers c
        ANTI JOIN (SELECT phone_number FROM {t.presence} WHERE listed) p USING (phone_number)
        """,
        {"observed": observed_at, "run": run_id},
    )
    left = scalar(
        conn,
        f"""
        INSERT INTO {t.history}
        SELECT $observed, $run, 'left', p.phone_number, p.stop_id, p.created_at,
               p.first_seen_at, p.last_seen_at
        FROM {t.presence} p ANTI JOIN current_numbers c USING (phone_number)
        WHERE p.listed
        """,
        {"observed": observed_at, "run": run_id},
    )
    conn.execute(
        f"""
        UPDATE {t.presence} SET listed = false, left_at = $observed
        WHERE listed AND phone_number NOT IN (SELECT phone_number FROM current_numbers)
        """,
        {"observed": observed_at},
    )
    # MERGE, not INSERT ... ON CONFLICT: a lake has no primary key to conflict on.
    conn.execute(
        f"""
        MERGE INTO {t.presence} AS p
        USING current_numbers AS c ON p.phone_number = c.phone_number
        WHEN MATCHED THEN UPDATE SET
            stop_id = c.stop_id,
            created_at = c.created_at,
            first_seen_at = CASE WHEN p.listed THEN p.first_seen_at ELSE $observed END,
            last_seen_at = $observed,
            listed = true,
            left_at = NULL
        WHEN NOT MATCHED THEN INSERT (phone_number, stop_id, created_at, first_seen_at,
                                      last_seen_at, listed, left_at)
            VALUES (c.phone_number, c.stop_id, c.created_at, $observed, $observed, true, NULL)
        """,
        {"observed": observed_at},
    )
    listed = scalar(conn, "SELECT count(*) FROM current_numbers")
    conn.execute("DROP TABLE IF EXISTS temp.current_numbers")
    return HistoryUpdate(observed_at, int(entered), int(left), int(listed))


def recent_changes(warehouse: Warehouse, limit: int = 10) -> tuple[pd.DataFrame, int]:
    """The latest ``limit`` history rows, newest first, and the history's row count."""
    with warehouse.connect() as (conn, t):
        recent = conn.execute(
            f"SELECT observed_at, change, phone_number, stop_id, first_seen_at, last_seen_at "
            f"FROM {t.history} ORDER BY observed_at DESC, phone_number LIMIT {int(limit)}"
        ).fetchdf()
        total = scalar(conn, f"SELECT count(*) FROM {t.history}")
    return recent, int(total)
