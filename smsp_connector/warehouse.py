"""The DuckDB tables of the stop list: the current snapshot, the snapshot log and the history.

Every write is one transaction: a crash mid-write leaves the previous state, never a half-written
or empty suppression list. (dagster-duckdb-pandas' handler deletes the rows and inserts the new
ones in separate statements, and skips empty frames, so the stop list is written here instead.)

Tables, all in schema ``smsp``:

- ``stop_list``: the latest snapshot, one row per provider entry (:class:`StopListSchema`).
- ``stop_list_snapshots``: one row per extraction: run id, time, row count, whether it was valid.
- ``stop_list_presence``: one row per number ever seen: listed now or not, first and last seen.
- ``stop_list_history``: append-only, one row per number entering or leaving the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

SCHEMA = "smsp"
STOP_LIST = f"{SCHEMA}.stop_list"
HISTORY = f"{SCHEMA}.stop_list_history"


@dataclass(frozen=True, slots=True)
class Tables:
    """Fully qualified table names for one connection.

    DuckDB names a file's catalog after the file: in ``smsp.duckdb``, ``smsp.stop_list`` is
    ambiguous (catalog ``smsp`` or schema ``smsp``?) and every statement fails. Qualifying with
    the catalog works whatever the file is called.
    """

    schema: str
    stop_list: str
    snapshots: str
    presence: str
    history: str

    def qualified(self, table: str) -> str:
        """Any other table of the schema, qualified the same way."""
        return f"{self.schema}.{table}"

    @classmethod
    def of(cls, conn: duckdb.DuckDBPyConnection) -> Tables:
        catalog = conn.execute("SELECT current_database()").fetchone()[0]
        quoted = catalog.replace('"', '""')
        schema = f'"{quoted}".{SCHEMA}'
        return cls(
            schema=schema,
            stop_list=f"{schema}.stop_list",
            snapshots=f"{schema}.stop_list_snapshots",
            presence=f"{schema}.stop_list_presence",
            history=f"{schema}.stop_list_history",
        )


_DDL = """
CREATE SCHEMA IF NOT EXISTS {t.schema};
CREATE TABLE IF NOT EXISTS {t.snapshots} (
    run_id VARCHAR NOT NULL,
    extracted_at TIMESTAMPTZ NOT NULL,
    row_count BIGINT NOT NULL,
    entered BIGINT NOT NULL,
    left_count BIGINT NOT NULL,
    valid BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS {t.presence} (
    phone_number VARCHAR PRIMARY KEY,
    stop_id BIGINT,
    created_at TIMESTAMPTZ,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    listed BOOLEAN NOT NULL,
    left_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS {t.history} (
    observed_at TIMESTAMPTZ NOT NULL,
    snapshot_run_id VARCHAR NOT NULL,
    change VARCHAR NOT NULL CHECK (change IN ('entered', 'left')),
    phone_number VARCHAR NOT NULL,
    stop_id BIGINT,
    created_at TIMESTAMPTZ,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL
);
"""

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


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> Tables:
    tables = Tables.of(conn)
    conn.execute(_DDL.format(t=tables))
    return tables


def _stop_list_exists(conn: duckdb.DuckDBPyConnection) -> bool:
    found = conn.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?",
        [SCHEMA, "stop_list"],
    ).fetchone()
    return bool(found and found[0])


def replace_stop_list(
    conn: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    *,
    run_id: str,
    extracted_at: datetime,
    valid: bool,
) -> SnapshotSummary:
    """Replace ``smsp.stop_list`` by ``frame`` and log the snapshot, in one transaction.

    Also counts the numbers that entered and left since the previous snapshot.
    """
    t = ensure_tables(conn)
    conn.register("snapshot_frame", frame)
    try:
        conn.execute("BEGIN TRANSACTION")
        previous = None
        entered, left = len(frame), 0
        if _stop_list_exists(conn):
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


@dataclass(frozen=True, slots=True)
class HistoryUpdate:
    observed_at: datetime
    entered: int
    left: int
    listed: int


def update_history(conn: duckdb.DuckDBPyConnection) -> HistoryUpdate:
    """Record who entered and left the list since the history last ran, in one transaction.

    Compares ``smsp.stop_list`` with ``smsp.stop_list_presence``, the state the history left
    behind, so a snapshot that the checks blocked is folded in by the next run that passes.
    """
    t = ensure_tables(conn)
    snapshot = conn.execute(
        f"SELECT run_id, extracted_at FROM {t.snapshots} ORDER BY extracted_at DESC LIMIT 1"
    ).fetchone()
    if snapshot is None or not _stop_list_exists(conn):
        raise LookupError(f"no snapshot in {t.snapshots}: materialize the stop list first")
    run_id, observed_at = snapshot
    try:
        conn.execute("BEGIN TRANSACTION")
        conn.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE current_numbers AS
            SELECT phone_number, min(stop_id) AS stop_id, min(created_at) AS created_at
            FROM {t.stop_list} WHERE phone_number IS NOT NULL GROUP BY phone_number
            """
        )
        entered = conn.execute(
            f"""
            INSERT INTO {t.history}
            SELECT $observed, $run, 'entered', c.phone_number, c.stop_id, c.created_at,
                   $observed, $observed
            FROM current_numbers c
            ANTI JOIN (SELECT phone_number FROM {t.presence} WHERE listed) p USING (phone_number)
            """,
            {"observed": observed_at, "run": run_id},
        ).fetchone()[0]
        left = conn.execute(
            f"""
            INSERT INTO {t.history}
            SELECT $observed, $run, 'left', p.phone_number, p.stop_id, p.created_at,
                   p.first_seen_at, p.last_seen_at
            FROM {t.presence} p ANTI JOIN current_numbers c USING (phone_number)
            WHERE p.listed
            """,
            {"observed": observed_at, "run": run_id},
        ).fetchone()[0]
        conn.execute(
            f"""
            UPDATE {t.presence} SET listed = false, left_at = $observed
            WHERE listed AND phone_number NOT IN (SELECT phone_number FROM current_numbers)
            """,
            {"observed": observed_at},
        )
        conn.execute(
            f"""
            INSERT INTO {t.presence}
            SELECT phone_number, stop_id, created_at, $observed, $observed, true, NULL
            FROM current_numbers
            ON CONFLICT (phone_number) DO UPDATE SET
                stop_id = excluded.stop_id,
                created_at = excluded.created_at,
                first_seen_at = CASE WHEN {t.presence}.listed THEN {t.presence}.first_seen_at
                                     ELSE excluded.first_seen_at END,
                last_seen_at = excluded.last_seen_at,
                listed = true,
                left_at = NULL
            """,
            {"observed": observed_at},
        )
        listed = conn.execute("SELECT count(*) FROM current_numbers").fetchone()[0]
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return HistoryUpdate(observed_at, int(entered), int(left), int(listed))
