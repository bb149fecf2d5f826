"""The stop list snapshot, written, audited, then published (write-audit-publish).

Each extraction is staged in ``stop_list_staged``; the checks run on it; only a snapshot that
passes them is swapped in as ``stop_list``, in one transaction, so a reader never sees a
half-written, half-empty or invalid suppression list. Every staged snapshot is logged in
``stop_list_snapshots`` as ``published`` or ``rejected`` (with the check that blocked it).
(dagster-duckdb-pandas' handler deletes the rows and inserts the new ones in separate
statements, and skips empty frames, so the stop list is written here instead.)
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from smsp_connector.client.models import PROVIDER_TIME_FORMAT
from smsp_connector.intake.phone_numbers import E164_SQL_PATTERN
from smsp_connector.warehouse.results import one_row, scalar
from smsp_connector.warehouse.tables import Tables, Warehouse, capped_memory


@dataclass(frozen=True, slots=True)
class SnapshotSummary:
    row_count: int
    entered: int
    left: int
    previous_row_count: int | None
    """Rows in the previous snapshot, ``None`` on the first extraction."""


def stop_list_exists(conn: duckdb.DuckDBPyConnection, tables: Tables) -> bool:
    return table_exists(conn, tables, "stop_list")


def table_exists(conn: duckdb.DuckDBPyConnection, tables: Tables, name: str) -> bool:
    """Whether the schema holds table ``name`` (the stop list and its staging table exist only
    once a refresh made them)."""
    found = one_row(
        conn,
        "SELECT count(*) FROM information_schema.tables "
        # DuckDB identifiers are case-insensitive: schema SMSP is schema smsp.
        "WHERE table_catalog = current_database() AND lower(table_schema) = lower(?) "
        "AND table_name = ?",
        [tables.schema_name, name],
    )
    return bool(found and found[0])


_STOP_ID = """CASE WHEN TRY_CAST({id} AS DOUBLE) = TRY_CAST({id} AS BIGINT)
                   THEN TRY_CAST({id} AS BIGINT) END"""
"""The entry's id (``{id}``: its text), given as a number or its text; ``20.0`` is 20, ``20.5``
no id (DuckDB's cast alone would round it to 21)."""
_ENTRIES_AS_FIELDS = """SELECT id, phoneNumber AS phone_number, createdAt
    FROM read_json(?, format = 'array',
                   columns = {'id': 'VARCHAR', 'phoneNumber': 'VARCHAR', 'createdAt': 'VARCHAR'})"""
"""The entries' fields, each as its text (a JSON number, ``true`` or object as written)."""
_READ_AS_JSON = """regexp_matches(id, '^[\\[{]|^-?[0-9]+[.eE]')
    OR regexp_matches(phone_number, '^[\\[{]|^-?[0-9]+[.eE]')
    OR (id IS NULL AND phone_number IS NULL)"""
"""An entry whose fields read as text may not say what reading it as JSON says: a field whose
text as written may differ from DuckDB's rendering of its value (a fraction or exponent, an
array or object), or neither id nor number (a ``null`` in the array reads as such an entry).
Any such entry and the list is read again one JSON value an entry."""
_ENTRIES_AS_JSON = """SELECT json AS entry FROM read_json(?, format = 'array', records = 'false',
                                                      columns = {'json': 'JSON'})"""


PLAINLY_VALID = """stop_id IS NOT NULL AND stop_id >= 1 AND created_at IS NOT NULL
    AND extracted_at IS NOT NULL AND regexp_matches(phone_number, ?)"""
"""What :class:`~smsp_connector.warehouse.schemas.StopListSchema` asks of a row's values, in
SQL, the parameter being :data:`~smsp_connector.intake.phone_numbers.E164_SQL_PATTERN`: a row
SQL passes passes pandera too; the rows SQL does not pass go to pandera, which decides."""
DUCKDB_VECTOR_ROWS = 2048
"""Rows in one of DuckDB's vectors (what ``fetch_df_chunk`` counts in)."""


@dataclass(frozen=True, slots=True)
class RawLoad:
    entries: int
    first_not_an_object: int | None
    """Position of the first entry that is not a JSON object (``None``: every one is)."""
    repeated_key: tuple[int, str] | None = None
    """Position of the first entry that gives a key twice, and that key (``None``: none
    does). DuckDB reads the first of the two, Python's json the last."""
    malformed: str | None = None
    """What DuckDB's JSON reader found wrong in the array (``None``: it read all of it);
    ``entries`` and the rest are then 0 and ``None``."""


@dataclass(frozen=True, slots=True)
class Duplicates:
    rows: int
    """Rows whose value another row shares."""
    examples: list[str]
    """Up to 20 such values, in order."""


def _first_repeated(keys: list[str]) -> str:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    raise ValueError("no key is repeated")


class StopListStage:
    """One extraction's staging, on one connection: the provider's entries loaded from the
    downloaded JSON array (in :attr:`folder`, kept until the staging ends) into a temporary
    table (``stop_list_raw``, one row per entry in the list's order), typed into
    ``stop_list_staged``, then validated. DuckDB parses, types and spills: memory does not grow
    with the list.

    Nothing a reader sees changes: :func:`publish_stop_list` or :func:`reject_stop_list` decides.
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection, tables: Tables, folder: Path) -> None:
        self._conn = conn
        self._t = tables
        self.folder = folder
        """A temporary folder of this staging's own, for the downloaded list."""
        self._path: Path | None = None
        self._entries = False
        """Whether ``stop_list_raw`` holds each entry's JSON (``entry``)."""

    def load(self, path: Path, *, keep_entries: bool = False) -> RawLoad:
        """Parse the array in ``path`` (one JSON value an entry; see
        :meth:`smsp_connector.client.SmspClient.download_stop_list`), which must stay until
        the staging ends.

        The entries' three fields are read as text straight into their columns (half the time
        of reading each entry as a JSON value and taking its fields out; what both give is the
        same, ``tests/test_extract_streaming.py`` checks it). An entry that is not an object,
        or that repeats a key, makes DuckDB refuse that read: the list is then read one JSON
        value an entry, which finds it; so it is with ``keep_entries``, for
        :meth:`entries_among` and :meth:`odd_entries`. :meth:`raw_entries` reads entries again
        from the file when needed.
        """
        self._path = path
        if not keep_entries:
            try:
                self._conn.execute(
                    f"""
                    CREATE OR REPLACE TEMP TABLE stop_list_raw AS
                    SELECT id, {_STOP_ID.format(id="id")} AS stop_id, phone_number,
                           try_strptime(createdAt, '{PROVIDER_TIME_FORMAT}') AS local_created
                    FROM ({_ENTRIES_AS_FIELDS})
                    """,
                    [str(path)],
                )
            except duckdb.InvalidInputException:
                pass  # an entry that is not an object (or unreadable JSON: read again below)
            else:
                entries, odd = one_row(
                    self._conn,
                    f"SELECT count(*), count(*) FILTER (WHERE {_READ_AS_JSON}) FROM stop_list_raw",
                )
                if not odd:
                    self._entries = False
                    return RawLoad(int(entries), None)
        try:
            self._read_entries(path)
        except duckdb.InvalidInputException as error:
            # Not JSON (a stray token, an escaped lone surrogate): what DuckDB says, without
            # the temporary file's path ("at byte N in record/value M: ...", N counted within
            # the value DuckDB was reading).
            found = re.search(r"at byte \d+.*", str(error), re.DOTALL)
            problem = found.group(0).strip() if found else str(error).replace(str(path), "")
            return RawLoad(0, None, malformed=problem)
        self._entries = True
        entries, odd = one_row(
            self._conn,
            "SELECT count(*), min(rowid) FILTER (WHERE NOT coalesce(is_object, false)) "
            "FROM stop_list_raw",
        )
        repeated = one_row(
            self._conn,
            "SELECT rowid, json_keys(entry) FROM stop_list_raw WHERE is_object "
            "AND len(json_keys(entry)) <> len(list_distinct(json_keys(entry))) "
            "ORDER BY rowid LIMIT 1",
        )
        return RawLoad(
            int(entries),
            None if odd is None else int(odd),
            None if repeated is None else (int(repeated[0]), _first_repeated(repeated[1])),
        )

    def _read_entries(self, path: Path) -> None:
        """``stop_list_raw`` with each entry's JSON value (see :meth:`load`)."""
        self._conn.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE stop_list_raw AS
            SELECT entry,
                   json_type(entry) = 'OBJECT' AS is_object,
                   {_STOP_ID.format(id="entry->>'id'")} AS stop_id,
                   entry->>'phoneNumber' AS phone_number,
                   try_strptime(entry->>'createdAt', '{PROVIDER_TIME_FORMAT}') AS local_created
            FROM ({_ENTRIES_AS_JSON})
            """,
            [str(path)],
        )

    def scan_for_numbers(
        self, path: Path, numbers: Iterable[str]
    ) -> tuple[RawLoad, set[str]] | None:
        """Which of ``numbers`` the array in ``path`` holds, in one streaming pass with no
        table (memory does not grow with the list), and its count; ``None`` when the list
        must be loaded instead (:meth:`load`, then :meth:`numbers_among`): an entry that is
        not an object, or one the fields read as text may misread."""
        with self._wanted(numbers):
            try:
                entries, odd, found = one_row(
                    self._conn,
                    f"""
                    SELECT count(*), count(*) FILTER (WHERE {_READ_AS_JSON}),
                           list(DISTINCT phone_number) FILTER (
                               WHERE phone_number IN (SELECT number FROM wanted_numbers))
                    FROM ({_ENTRIES_AS_FIELDS})
                    """,
                    [str(path)],
                )
            except duckdb.InvalidInputException:
                return None
        if odd:
            return None
        return RawLoad(int(entries), None), set(found or [])

    def numbers_among(self, numbers: Iterable[str]) -> set[str]:
        """Which of ``numbers`` the loaded list holds (compared as the provider wrote them)."""
        return {number for (number,) in self._among(numbers, "DISTINCT phone_number")}

    def entries_among(self, numbers: Iterable[str]) -> list[tuple[int, str]]:
        """The position and JSON text of each loaded entry whose phone number is one of
        ``numbers``, in the list's order."""
        return self._among(numbers, "rowid, entry::VARCHAR", order="ORDER BY rowid")

    def _among(self, numbers: Iterable[str], columns: str, *, order: str = "") -> list[Any]:
        with self._wanted(numbers):
            return self._conn.execute(
                f"SELECT {columns} FROM stop_list_raw "
                f"WHERE phone_number IN (SELECT number FROM wanted_numbers) {order}"
            ).fetchall()

    @contextmanager
    def _wanted(self, numbers: Iterable[str]) -> Iterator[None]:
        """``numbers`` (distinct) as the view ``wanted_numbers`` (``number``) in the block."""
        wanted = pd.DataFrame({"number": pd.unique(pd.Series(list(numbers), dtype=object))})
        self._conn.register("wanted_numbers", wanted)
        try:
            yield
        finally:
            self._conn.unregister("wanted_numbers")

    def odd_entries(self, batch: int = 10_000) -> Iterator[tuple[int, str]]:
        """Position and JSON text of every loaded entry whose ``id`` is not a JSON whole
        number or digits, or whose ``phoneNumber`` is not non-empty text: a superset of the
        entries a strict reader refuses, in the list's order, read ``batch`` at a time."""
        cursor = self._conn.execute(
            """
            SELECT rowid, entry::VARCHAR FROM stop_list_raw
            WHERE NOT coalesce(
                (json_type(entry->'id') = 'UBIGINT'
                 OR (json_type(entry->'id') = 'VARCHAR'
                     AND regexp_full_match((entry->>'id'), '[0-9]+')))
                AND json_type(entry->'phoneNumber') = 'VARCHAR' AND (entry->>'phoneNumber') <> '',
                false)
            ORDER BY rowid
            """
        )
        while rows := cursor.fetchmany(batch):
            yield from rows

    def local_hours(self) -> list[datetime]:
        """The distinct provider-local hours (naive) of the entries' ``createdAt``."""
        rows = self._conn.execute(
            "SELECT DISTINCT date_trunc('hour', local_created) FROM stop_list_raw "
            "WHERE local_created IS NOT NULL"
        ).fetchall()
        return [row[0] for row in rows]

    def stage(self, hours: pd.DataFrame, extracted_at: datetime) -> SnapshotSummary:
        """Write the typed snapshot to ``stop_list_staged``, in the list's order.

        ``hours`` maps each local hour (``hour``, naive) to the UTC ``instant`` it starts at
        and ``in_gap`` (the hour skipped when clocks go forward: every time in it becomes
        ``instant``), so that the time-zone rules stay with the caller's library; a time is
        its hour's instant plus its minutes and seconds.
        """
        conn, t = self._conn, self._t
        conn.register("provider_hours", hours)
        try:
            conn.execute(
                f"""
                CREATE OR REPLACE TABLE {t.staged} AS
                SELECT CAST(r.stop_id AS BIGINT) AS stop_id,
                       CAST(r.phone_number AS VARCHAR) AS phone_number,
                       CAST(CASE WHEN h.in_gap THEN h.instant
                                 ELSE h.instant + (r.local_created - h.hour) END
                            AS TIMESTAMPTZ) AS created_at,
                       CAST(? AS TIMESTAMPTZ) AS extracted_at
                FROM stop_list_raw AS r
                LEFT JOIN provider_hours AS h
                       ON h.hour = date_trunc('hour', r.local_created)
                ORDER BY r.rowid
                """,
                [extracted_at],
            )
        finally:
            conn.unregister("provider_hours")
        return self._summary()

    def suspect_chunks(self, rows: int) -> Iterator[pd.DataFrame]:
        """The staged rows that SQL cannot call valid (see :data:`PLAINLY_VALID`), and the
        first row whatever it holds (so that the columns and types are always checked), at most
        ``rows`` at a time, indexed by position in the list; times as ``datetime64[ns, UTC]``.
        A good list yields one row: pandera sees only what SQL could not decide."""
        cursor = self._conn.execute(
            f"SELECT rowid AS position, * FROM {self._t.staged} "
            f"WHERE rowid = 0 OR NOT coalesce({PLAINLY_VALID}, false) ORDER BY rowid",
            [E164_SQL_PATTERN],
        )
        vectors = max(1, rows // DUCKDB_VECTOR_ROWS)
        while not (frame := cursor.fetch_df_chunk(vectors)).empty:
            frame = frame.set_index("position").rename_axis(None)
            for column in ("created_at", "extracted_at"):
                frame[column] = frame[column].dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
            for start in range(0, len(frame), rows):  # DuckDB counts in whole vectors
                yield frame.iloc[start : start + rows]

    def raw_entries(self, positions: Sequence[int]) -> dict[int, str | None]:
        """The entries at ``positions`` as the provider sent them (JSON text), read again
        from the file when the load kept only their fields."""
        table = "stop_list_raw"
        if not self._entries:
            table = "stop_list_entries"
            self._conn.execute(
                f"CREATE OR REPLACE TEMP TABLE {table} AS {_ENTRIES_AS_JSON}", [str(self._path)]
            )
        rows = self._conn.execute(
            f"SELECT rowid, entry FROM {table} WHERE rowid IN (SELECT unnest(?))",
            [list(positions)],
        ).fetchall()
        return {int(position): entry for position, entry in rows}

    def duplicates(self, column: str) -> Duplicates:
        """Rows of the staged snapshot whose ``column`` another row shares (nulls aside)."""
        rows, examples = one_row(
            self._conn,
            f"""
            WITH shared AS (
                SELECT {column} AS value, count(*) AS n, min(rowid) AS first
                FROM {self._t.staged} WHERE {column} IS NOT NULL
                GROUP BY 1 HAVING count(*) > 1)
            SELECT coalesce(sum(n), 0),
                   coalesce(list(CAST(value AS VARCHAR) ORDER BY first)[1:20], [])
            FROM shared
            """,
        )
        return Duplicates(int(rows), list(examples))

    def preview(self, limit: int) -> pd.DataFrame:
        return self._conn.execute(
            f"SELECT * FROM {self._t.staged} ORDER BY rowid LIMIT {int(limit)}"
        ).df()

    def _summary(self) -> SnapshotSummary:
        """How many numbers entered and left compared with the published ``stop_list``."""
        conn, t = self._conn, self._t
        rows = scalar(conn, f"SELECT count(*) FROM {t.staged}")
        previous = None
        entered, left = rows, 0
        if stop_list_exists(conn, t):
            previous, entered, left = one_row(
                conn,
                f"""
                WITH new AS (SELECT DISTINCT phone_number FROM {t.staged}
                             WHERE phone_number IS NOT NULL),
                     old AS (SELECT DISTINCT phone_number FROM {t.stop_list}
                             WHERE phone_number IS NOT NULL)
                SELECT (SELECT count(*) FROM {t.stop_list}),
                       (SELECT count(*) FROM new ANTI JOIN old USING (phone_number)),
                       (SELECT count(*) FROM old ANTI JOIN new USING (phone_number))
                """,
            )
        return SnapshotSummary(int(rows), int(entered), int(left), previous)


def published_stop_list(warehouse: Warehouse, *, limit: int | None = None) -> pd.DataFrame:
    """The published stop list (``stop_id``, ``phone_number``, ``created_at`` in UTC) in stop id
    order, the first ``limit`` entries if given; empty before the first publication."""
    with warehouse.connect() as (conn, t):
        if not stop_list_exists(conn, t):
            return pd.DataFrame(columns=["stop_id", "phone_number", "created_at"])
        head = "" if limit is None else f" LIMIT {int(limit)}"
        frame = conn.execute(
            f"SELECT stop_id, phone_number, created_at FROM {t.stop_list} ORDER BY stop_id{head}"
        ).fetchdf()
    # DuckDB gives the session's time zone; the machine's zone is nobody's business here.
    return frame.assign(created_at=frame["created_at"].dt.tz_convert("UTC"))


@contextmanager
def staging(warehouse: Warehouse, *, memory_limit: str | None = None) -> Iterator[StopListStage]:
    """A :class:`StopListStage` on one connection of ``warehouse``, for one extraction.

    ``memory_limit`` (DuckDB's form, ``"128MB"``) caps DuckDB's memory while the block runs, so
    that the staging spills to disk instead of growing with the list; the database's own limit
    comes back afterwards (DuckDB's limit is the database's, not the connection's), once a
    checkpoint has written the block's tables to the file within the cap (else the checkpoint
    DuckDB runs when the last connection closes would read them back with no cap).
    """
    with (
        warehouse.connect() as (conn, t),
        capped_memory(conn, memory_limit),
        tempfile.TemporaryDirectory(prefix="smsp-stop-list-") as folder,
    ):
        try:
            yield StopListStage(conn, t, Path(folder))
        finally:
            conn.execute("DROP TABLE IF EXISTS temp.stop_list_raw")
            conn.execute("DROP TABLE IF EXISTS temp.stop_list_entries")
            if not warehouse.is_lake:  # a lake's CHECKPOINT is its maintenance, not this
                # Another connection mid-transaction: DuckDB checkpoints later.
                with suppress(duckdb.TransactionException):
                    conn.execute("CHECKPOINT")


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

    def swap(conn: duckdb.DuckDBPyConnection, t: Tables) -> None:
        conn.execute(f"DROP TABLE IF EXISTS {t.stop_list}")
        conn.execute(f"ALTER TABLE {t.staged} RENAME TO stop_list")
        _log(conn, t, summary, run_id, extracted_at, valid, "published", None)

    # One transaction (a ROLLBACK after a failed COMMIT tolerated); on a lake, serialised with
    # any other publish of the schema and re-run when another process's commit won.
    warehouse.transaction(swap, lock="publish")


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
    warehouse.transaction(
        lambda conn, t: _log(conn, t, summary, run_id, extracted_at, valid, "rejected", rejected_by)
    )


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
