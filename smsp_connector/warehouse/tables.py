"""Every DuckDB table and view this project owns: names, DDL, and the connection they live on.

Tables, all in one schema (``smsp`` unless the deployment names another):

- ``stop_list``: the latest snapshot, one row per provider entry (:class:`StopListSchema`).
- ``stop_list_staged``: the latest extraction before its checks (see ``stop_list.py``).
- ``stop_list_snapshots``: one row per extraction: run id, time, row count, whether it was
  valid, and whether it was published or rejected (by which check).
- ``stop_list_presence``: one row per number ever seen: listed now or not, first and last seen.
- ``stop_list_history``: append-only, one row per number entering or leaving the list.
- ``audit_log``: append-only, one row per input row and outcome of every push, delete, cancel.
- ``input_rejections``: input rows that could not be used, with the reason.
- ``audit_latest`` (view): the final state of each audited row.
- ``push_cursors``: for each warehouse-table source of opt-outs, the cursor value up to which
  every row has a final outcome (the next push reads the rows past it).
- ``source_reads``: for each row a push read from a warehouse-table source, its cursor value
  (the ledger says where a table source's opt-out was first received).
- ``plans`` and ``plan_targets``: each change's exact targets, stored before any call, with
  the evidence and options they came from; applied at most once (see ``plans.py``).
- ``opt_out_ledger`` (view): one row per number and opt-out episode; ``ledger_episodes`` holds
  its rows kept incrementally, ``ledger_fingerprints`` what they were derived from.
- ``warehouse_locks`` (DuckLake only): one row per critical section (history, cursors,
  publish), updated first by the transaction it guards so that two concurrent ones conflict.

The database is a local DuckDB file, a MotherDuck ``md:`` URL, or DuckLake with a PostgreSQL
catalog (``ducklake:postgres:<libpq conninfo>`` and a data path, see :mod:`.lake`). On a lake
the DDL has no ``PRIMARY KEY`` nor ``CHECK`` (DuckLake has neither), upserts are ``MERGE``, and
every write runs in :meth:`Warehouse.transaction`, which re-runs a transaction whose commit lost
to another process's.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb
import tenacity

from smsp_connector.defaults import DEFAULT_LOCK_WAIT_SECONDS, DEFAULT_SCHEMA
from smsp_connector.warehouse.lake import (
    LOCK_NAMES,
    LakeTarget,
    is_commit_conflict,
    is_lake,
    is_lake_connection,
    lake_cursor,
)
from smsp_connector.warehouse.results import scalar
from smsp_connector.warehouse.versions import refuse_newer_file

T = TypeVar("T")


Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]
"""Opens a connection: ``DuckDBResource.get_connection`` in Dagster, a plain connect elsewhere."""

TABLE_NAMES = (
    "stop_list",
    "stop_list_staged",
    "stop_list_snapshots",
    "stop_list_presence",
    "stop_list_history",
    "audit_log",
    "input_rejections",
    "audit_latest",
    "push_cursors",
    "plans",
    "plan_targets",
    "opt_out_ledger",
    "ledger_episodes",
    "ledger_fingerprints",
    "ledger_state",
    "source_reads",
)


@dataclass(frozen=True, slots=True)
class Tables:
    """Fully qualified names of the schema's tables on one database.

    DuckDB names a file's catalog after the file: in ``smsp.duckdb``, ``smsp.stop_list`` is
    ambiguous (catalog ``smsp`` or schema ``smsp``?) and every statement fails. Qualifying with
    the catalog works whatever the file is called.
    """

    schema: str
    """The qualified schema: ``"catalog".schema``."""
    schema_name: str

    def qualified(self, table: str) -> str:
        return f"{self.schema}.{table}"

    stop_list = property(lambda self: self.qualified("stop_list"))
    staged = property(lambda self: self.qualified("stop_list_staged"))
    snapshots = property(lambda self: self.qualified("stop_list_snapshots"))
    presence = property(lambda self: self.qualified("stop_list_presence"))
    history = property(lambda self: self.qualified("stop_list_history"))
    audit_log = property(lambda self: self.qualified("audit_log"))
    input_rejections = property(lambda self: self.qualified("input_rejections"))
    audit_latest = property(lambda self: self.qualified("audit_latest"))
    cursors = property(lambda self: self.qualified("push_cursors"))
    locks = property(lambda self: self.qualified("warehouse_locks"))
    plans = property(lambda self: self.qualified("plans"))
    plan_targets = property(lambda self: self.qualified("plan_targets"))
    ledger = property(lambda self: self.qualified("opt_out_ledger"))
    ledger_episodes = property(lambda self: self.qualified("ledger_episodes"))
    ledger_state = property(lambda self: self.qualified("ledger_state"))
    source_reads = property(lambda self: self.qualified("source_reads"))
    ledger_fingerprints = property(lambda self: self.qualified("ledger_fingerprints"))

    @classmethod
    def of(cls, conn: duckdb.DuckDBPyConnection, schema: str) -> Tables:
        catalog = scalar(conn, "SELECT current_database()")
        quoted = catalog.replace('"', '""')
        return cls(schema=f'"{quoted}".{schema}', schema_name=schema)


_DDL_TEMPLATE = """
CREATE SCHEMA IF NOT EXISTS {t.schema};
CREATE TABLE IF NOT EXISTS {t.snapshots} (
    run_id VARCHAR NOT NULL,
    extracted_at TIMESTAMPTZ NOT NULL,
    row_count BIGINT NOT NULL,
    entered BIGINT NOT NULL,
    left_count BIGINT NOT NULL,
    valid BOOLEAN NOT NULL,
    status VARCHAR NOT NULL DEFAULT 'published' CHECK (status IN ('published', 'rejected')),
    rejected_by VARCHAR
);
-- Files written before write-audit-publish: every snapshot they logged was published.
ALTER TABLE {t.snapshots} ADD COLUMN IF NOT EXISTS status VARCHAR DEFAULT 'published';
ALTER TABLE {t.snapshots} ADD COLUMN IF NOT EXISTS rejected_by VARCHAR;
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
CREATE TABLE IF NOT EXISTS {t.audit_log} (
    recorded_at TIMESTAMPTZ NOT NULL, run_id VARCHAR NOT NULL, job VARCHAR NOT NULL,
    operation VARCHAR NOT NULL, dry_run BOOLEAN NOT NULL, source_file VARCHAR,
    source_row BIGINT, target VARCHAR NOT NULL, outcome VARCHAR NOT NULL, detail VARCHAR,
    stop_id BIGINT, provider_code INTEGER, provider_message VARCHAR, attempts INTEGER,
    account VARCHAR, plan_id VARCHAR
);
CREATE TABLE IF NOT EXISTS {t.input_rejections} (
    recorded_at TIMESTAMPTZ NOT NULL, run_id VARCHAR NOT NULL, job VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL, row_number BIGINT NOT NULL, raw_value VARCHAR,
    reason VARCHAR NOT NULL, message VARCHAR NOT NULL, account VARCHAR
);
CREATE TABLE IF NOT EXISTS {t.cursors} (
    source VARCHAR PRIMARY KEY, cursor_value VARCHAR NOT NULL, run_id VARCHAR NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
-- Files written before accounts were recorded.
ALTER TABLE {t.audit_log} ADD COLUMN IF NOT EXISTS account VARCHAR;
ALTER TABLE {t.input_rejections} ADD COLUMN IF NOT EXISTS account VARCHAR;
-- Files written before plans: their audit rows name none.
ALTER TABLE {t.audit_log} ADD COLUMN IF NOT EXISTS plan_id VARCHAR;
CREATE TABLE IF NOT EXISTS {t.source_reads} (
    run_id VARCHAR NOT NULL, source VARCHAR NOT NULL, source_row BIGINT NOT NULL,
    cursor_value VARCHAR
);
CREATE TABLE IF NOT EXISTS {t.plans} (
    plan_id VARCHAR PRIMARY KEY, created_at TIMESTAMPTZ NOT NULL, created_by_run VARCHAR,
    operation VARCHAR NOT NULL, account VARCHAR, options VARCHAR NOT NULL,
    source_file VARCHAR, source_sha256 VARCHAR, target_count BIGINT NOT NULL,
    follows VARCHAR, applied_at TIMESTAMPTZ, applied_by_run VARCHAR
);
CREATE TABLE IF NOT EXISTS {t.plan_targets} (
    plan_id VARCHAR NOT NULL, position BIGINT NOT NULL, source_row BIGINT,
    target VARCHAR NOT NULL, stop_id BIGINT, opted_out_at TIMESTAMP, consent_at TIMESTAMPTZ,
    consent_source VARCHAR
);
CREATE OR REPLACE VIEW {t.audit_latest} AS
    SELECT * EXCLUDE (position) FROM (
        SELECT *, row_number() OVER (
            PARTITION BY run_id, operation, source_file, source_row, target
            ORDER BY recorded_at DESC, outcome = 'pending') AS position
        FROM audit_log)
    WHERE position = 1;
{ledger_view}
-- The version of the ledger's derivation its incremental copy was made by (see _LEDGER_UPGRADE).
CREATE TABLE IF NOT EXISTS {t.ledger_state} (version VARCHAR NOT NULL);
"""


RECEIPT_ROWS = "a.operation = 'add' AND a.outcome NOT IN ('invalid_input', 'duplicate_in_file')"
"""SQL: the audit rows (alias ``a``) that receive an opt-out: every push row but unusable input."""
DELETION_ROWS = "a.operation = 'delete' AND a.outcome = 'applied' AND NOT a.dry_run"
"""SQL: the audit rows (alias ``a``) of a deletion the provider applied."""


def _with_audit_rows(template: str, source_reads: str) -> str:
    """``template`` with its ``{receipt_rows}``, ``{deletion_rows}`` and ``{cursor_join}`` (a
    table-source row's cursor value, from ``source_reads``) filled in: the ledger's view and
    its fingerprints read the very same rows."""
    cursor_join = (
        f"LEFT JOIN {source_reads} AS r ON r.run_id = a.run_id AND r.source = a.source_file "
        "AND r.source_row = a.source_row"
    )
    return (
        template.replace("{receipt_rows}", RECEIPT_ROWS)
        .replace("{deletion_rows}", DELETION_ROWS)
        .replace("{cursor_join}", cursor_join)
    )


LEDGER_SELECT = _with_audit_rows(
    """
    WITH all_events AS (
        -- Each thing that happened to a number, in time order: received in an input (a
        -- file's row, a table source's, typed in; dry runs included: the connector knew),
        -- honoured (the provider took it, had it, or listed it), ended (a deletion applied,
        -- or gone from the provider's list with no deletion of ours).
        SELECT a.target AS phone_number, a.recorded_at AS event_at, 0 AS step,
               CASE WHEN a.outcome IN ('applied', 'already_done') AND NOT a.dry_run THEN 'sent'
                    WHEN a.outcome = 'already_on_list' AND NOT a.dry_run THEN 'had'
                    WHEN a.outcome = 'rejected' AND NOT a.dry_run THEN 'refused'
                    ELSE 'received' END AS kind,
               a.run_id, a.plan_id, a.source_file, a.source_row, a.outcome,
               NULL::TIMESTAMPTZ AS created_at, NULL::TIMESTAMPTZ AS consent_at,
               NULL::VARCHAR AS consent_source, r.cursor_value AS source_cursor
        FROM {audit_log} AS a
        -- A table source's row: its cursor value, recorded when the push read it (before
        -- any audit row of that run: the join never changes once a number's rows exist).
        {cursor_join}
        WHERE {receipt_rows}
        UNION ALL
        SELECT phone_number, observed_at, 1, CASE change WHEN 'entered' THEN 'listed'
               ELSE 'left' END, snapshot_run_id, NULL, NULL, NULL, NULL, created_at, NULL, NULL,
               NULL
        FROM {history}
        UNION ALL
        SELECT a.target, a.recorded_at, 2, 'deleted', a.run_id, a.plan_id, a.source_file,
               a.source_row, a.outcome, NULL, p.consent_at, p.consent_source, NULL
        FROM {audit_log} AS a
        LEFT JOIN {plan_targets} AS p ON p.plan_id = a.plan_id AND p.target = a.target
        WHERE {deletion_rows}
    ),
    events AS (SELECT * FROM all_events WHERE {only}),
    numbered AS (
        -- An episode ends with a deletion or a departure from the list: the events after it
        -- belong to the next one.
        SELECT *, kind IN ('received', 'sent', 'had', 'refused') AS receipt,
            coalesce(sum(CASE WHEN kind IN ('deleted', 'left') THEN 1 ELSE 0 END) OVER (
                   PARTITION BY phone_number ORDER BY event_at, step
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS boundaries
        FROM events
    ),
    episodes AS (
        SELECT phone_number, boundaries,
            min(event_at) FILTER (WHERE receipt) AS received_at,
            arg_min(source_file, event_at) FILTER (WHERE receipt) AS received_from,
            arg_min(source_row, event_at) FILTER (WHERE receipt) AS received_row,
            arg_min(source_cursor, event_at) FILTER (WHERE receipt) AS received_cursor,
            arg_min(run_id, event_at) FILTER (WHERE receipt) AS received_run_id,
            min(event_at) FILTER (WHERE kind = 'sent') AS sent_at,
            arg_min(plan_id, event_at) FILTER (WHERE kind = 'sent') AS sent_plan_id,
            arg_min(run_id, event_at) FILTER (WHERE kind = 'sent') AS sent_run_id,
            arg_min(outcome, event_at) FILTER (WHERE kind = 'sent') AS sent_outcome,
            min(event_at) FILTER (WHERE kind = 'had') AS found_listed_at,
            min(event_at) FILTER (WHERE kind = 'refused') AS refused_at,
            min(event_at) FILTER (WHERE kind = 'listed') AS listed_at,
            arg_min(created_at, event_at) FILTER (WHERE kind = 'listed') AS provider_opted_out_at,
            min(event_at) FILTER (WHERE kind = 'deleted') AS deleted_at,
            arg_min(plan_id, event_at) FILTER (WHERE kind = 'deleted') AS deletion_plan_id,
            arg_min(run_id, event_at) FILTER (WHERE kind = 'deleted') AS deletion_run_id,
            arg_min(consent_at, event_at) FILTER (WHERE kind = 'deleted') AS consent_at,
            arg_min(consent_source, event_at) FILTER (WHERE kind = 'deleted') AS consent_source,
            min(event_at) FILTER (WHERE kind = 'left') AS left_at
        FROM numbered GROUP BY phone_number, boundaries
    )
    SELECT phone_number,
        row_number() OVER (PARTITION BY phone_number ORDER BY boundaries) AS episode,
        CASE WHEN received_at IS NOT NULL AND (listed_at IS NULL OR received_at <= listed_at)
             THEN 'connector' ELSE 'provider' END AS origin,
        received_at, received_from, received_row, received_cursor, received_run_id,
        sent_at, sent_plan_id, sent_run_id, sent_outcome, found_listed_at, refused_at,
        listed_at, provider_opted_out_at,
        least(sent_at, found_listed_at, listed_at) AS honoured_at,
        coalesce(deleted_at, left_at) AS ended_at,
        CASE WHEN deleted_at IS NOT NULL THEN 'deletion'
             WHEN left_at IS NOT NULL THEN 'left_provider_list' END AS ended_by,
        deletion_plan_id, deletion_run_id, consent_at, consent_source,
        CASE WHEN deleted_at IS NOT NULL OR left_at IS NOT NULL THEN 'ended'
             WHEN least(sent_at, found_listed_at, listed_at) IS NOT NULL THEN 'honoured'
             WHEN refused_at IS NOT NULL THEN 'refused_by_provider'
             ELSE 'pending' END AS status
    FROM episodes
    -- An episode starts when the number is received or listed: a departure observed after
    -- a deletion is the end of the episode before, not one of its own.
    WHERE received_at IS NOT NULL OR listed_at IS NOT NULL
""",
    "{source_reads}",
)
"""The ledger's episodes (see :mod:`.ledger`): its tables named by ``{audit_log}``,
``{history}``, ``{plan_targets}`` and ``{source_reads}``; ``{only}`` keeps the events of some
numbers (``true`` for all)."""

_VIEW_SELECT = LEDGER_SELECT.format(
    audit_log="audit_log",
    history="stop_list_history",
    plan_targets="plan_targets",
    source_reads="source_reads",
    only="true",
)
_LEDGER_VIEW = "CREATE OR REPLACE VIEW {t.ledger} AS " + _VIEW_SELECT + ";"
"""The view names its tables unqualified: a view's body binds in the view's own schema, and a
catalog-qualified name there fails in a file named like the schema (a DuckDB binder quirk)."""

_DDL = _DDL_TEMPLATE.replace("{ledger_view}", _LEDGER_VIEW)

LEDGER_FINGERPRINTS = _with_audit_rows(
    """
    SELECT phone_number, count(*) AS events, sum(hash(part, seen_at, facts)) AS fingerprint
    FROM (
        SELECT a.target AS phone_number, 'audit' AS part, a.recorded_at AS seen_at,
               hash(a.operation, a.outcome, a.dry_run, a.run_id, a.plan_id, a.source_file,
                    a.source_row, r.cursor_value) AS facts
        FROM {t.audit_log} AS a
        {cursor_join}
        WHERE ({receipt_rows}) OR ({deletion_rows})
        UNION ALL
        SELECT phone_number, 'history', observed_at, hash(change, snapshot_run_id, created_at)
        FROM {t.history}
        UNION ALL
        SELECT target, 'plan', consent_at, hash(plan_id, consent_source) FROM {t.plan_targets}
        WHERE plan_id IN (SELECT plan_id FROM {t.plans} WHERE operation = 'delete')
    ) GROUP BY phone_number
""",
    "{t.source_reads}",
)
"""Each number's events as the view reads them (the same rows, and the same joins: raw
rejected values are never fingerprinted), their count and the sum of their hashes."""

LEDGER_VERSION = hashlib.sha256((LEDGER_SELECT + LEDGER_FINGERPRINTS).encode()).hexdigest()[:16]
"""Changes whenever the ledger's derivation does: the incremental copy is then made again."""

_LEDGER_UPGRADE = """
CREATE OR REPLACE VIEW {t.ledger} AS {view};
DROP TABLE IF EXISTS {t.ledger_episodes};
DROP TABLE IF EXISTS {t.ledger_fingerprints};
CREATE TABLE {t.ledger_episodes} AS SELECT * FROM {t.ledger} WHERE false;
CREATE TABLE {t.ledger_fingerprints} (
    phone_number VARCHAR NOT NULL, events BIGINT NOT NULL, fingerprint HUGEINT NOT NULL
);
DELETE FROM {t.ledger_state};
INSERT INTO {t.ledger_state} VALUES ('{version}');
"""
"""A warehouse whose ledger was derived by another version: the view replaced (a lake's DDL
creates a view only when missing), the incremental copy made empty (the next refresh derives
every number again). Run only when ``ledger_state`` names another version."""


def upgrade_ledger(conn: duckdb.DuckDBPyConnection, tables: Tables) -> None:
    """Apply :data:`_LEDGER_UPGRADE` unless the warehouse's ledger is this version's."""
    if conn.execute(f"SELECT version FROM {tables.ledger_state}").fetchall() == [(LEDGER_VERSION,)]:
        return
    conn.execute(_LEDGER_UPGRADE.format(t=tables, view=_VIEW_SELECT, version=LEDGER_VERSION))


_CHECK = re.compile(r"\s+CHECK \((?:[^()]|\([^()]*\))*\)")


def lake_ddl(ddl: str) -> str:
    """The DDL as DuckLake takes it: no ``CHECK`` (the values are written only by this
    package), ``PRIMARY KEY`` as ``NOT NULL`` (uniqueness is kept by ``MERGE`` inside locked
    transactions), and the view created only when missing (``CREATE OR REPLACE`` would write a
    snapshot on every connection and conflict with another process doing the same)."""
    ddl = _CHECK.sub("", ddl).replace("PRIMARY KEY", "NOT NULL")
    return ddl.replace("CREATE OR REPLACE VIEW", "CREATE VIEW IF NOT EXISTS")


_LAKE_LOCKS_DDL = """
CREATE TABLE IF NOT EXISTS {t.locks} (name VARCHAR NOT NULL, taken_at TIMESTAMPTZ);
"""


def _retrying() -> tenacity.Retrying:
    """Re-runs of a lake transaction whose commit lost the race (exponential backoff with
    jitter; 6 attempts were the most seen with 4 busy writers)."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_commit_conflict),
        wait=tenacity.wait_exponential_jitter(multiplier=0.05, max=2.0),
        stop=tenacity.stop_after_attempt(40) | tenacity.stop_after_delay(60),
        reraise=True,
    )


def rollback(conn: duckdb.DuckDBPyConnection) -> None:
    """``ROLLBACK``, tolerating a transaction already gone (after a failed ``COMMIT`` DuckDB
    has ended it, and ``ROLLBACK`` would raise and hide the commit's own error)."""
    try:
        conn.execute("ROLLBACK")
    except duckdb.TransactionException as error:
        if "no transaction is active" not in str(error):
            raise


class Warehouse:
    """The DuckDB database of one account: how to connect, and which schema holds its tables.

    The schema's tables are created on the first connection. Every function of this package
    takes a :class:`Warehouse` and opens the connections it needs, so no caller holds SQL.
    """

    def __init__(
        self, connect: Connect, *, schema: str = DEFAULT_SCHEMA, database: str = ""
    ) -> None:
        """``database`` names a local file that ``connect`` opens, checked on the first
        connection (:func:`.versions.refuse_newer_file`)."""
        if not schema.isidentifier():
            raise ValueError(f"schema must be a plain SQL identifier, not {schema!r}")
        self._connect = connect
        self._database = database
        self.schema = schema
        self._tables: Tables | None = None
        self._held: dict[int, tuple[duckdb.DuckDBPyConnection, Tables]] = {}
        """The connection each thread holds (:meth:`one_connection`), by thread id."""
        self.is_lake = False
        """Whether the database is a DuckLake (known once a connection was opened)."""

    def __repr__(self) -> str:
        return f"Warehouse(schema={self.schema!r}, is_lake={self.is_lake})"

    @classmethod
    def at(
        cls,
        database: str | Path,
        *,
        schema: str = DEFAULT_SCHEMA,
        data_path: str | Path | None = None,
        metadata_schema: str | None = None,
    ) -> Warehouse:
        """A warehouse in a local DuckDB file (its folder created on first use), at a ``md:``
        URL, or in a DuckLake (``ducklake:postgres:<conninfo>`` with its ``data_path``; one
        attached lake per process, each connection a cursor of it)."""
        target = str(database)
        if is_lake(target):
            lake = LakeTarget.parse(target, data_path, metadata_schema)
            return cls(lambda: lake_cursor(lake), schema=_lake_schema(schema))

        @contextmanager
        def connect() -> Iterator[duckdb.DuckDBPyConnection]:
            make_database_folder(target)
            conn = duckdb.connect(target)
            if is_local_database(target):
                _checkpoint_less(conn)
            try:
                yield conn
            finally:
                conn.close()

        return cls(connect, schema=schema, database=target)

    @classmethod
    @contextmanager
    def held(
        cls,
        database: str | Path,
        *,
        schema: str = DEFAULT_SCHEMA,
        wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
        data_path: str | Path | None = None,
        metadata_schema: str | None = None,
    ) -> Iterator[Warehouse]:
        """A warehouse on one connection held for the whole block (the ``smsp`` command's runs:
        another process cannot take the file mid-run). Opening waits, with backoff, while
        another process holds the file, up to ``wait_seconds``; then
        :class:`WarehouseBusyError`. A lake has no file lock: the block gets one lake
        connection, and other processes write the lake meanwhile."""
        target = str(database)
        if is_lake(target):
            lake = LakeTarget.parse(target, data_path, metadata_schema)
            with lake_cursor(lake) as conn:
                yield cls(lambda: nullcontext(conn), schema=_lake_schema(schema))
            return
        make_database_folder(target)
        refuse_newer_file(target)
        conn = _connect_waiting(target, wait_seconds)
        _checkpoint_less(conn)
        try:
            yield cls(lambda: nullcontext(conn), schema=schema)
        finally:
            conn.close()

    @contextmanager
    def one_connection(self) -> Iterator[None]:
        """Within it, every connection this thread opens is one and the same.

        For many transactions in a row (a million rows' audit slices): closing the last
        connection to a file checkpoints it, a fifth of a second for each slice. Outside it, a
        connection is opened per transaction, so that the file is not held for a whole run."""
        me = threading.get_ident()
        if me in self._held:
            yield
            return
        with self.connect() as pair:
            self._held[me] = pair
            try:
                yield
            finally:
                del self._held[me]

    @contextmanager
    def connect(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, Tables]]:
        """A connection and the schema's qualified table names, the tables created if needed
        (the one this thread holds, within :meth:`one_connection`)."""
        held = self._held.get(threading.get_ident())
        if held is not None:
            yield held
            return
        if self._tables is None and is_local_database(self._database):
            refuse_newer_file(self._database)
        with self._connect() as conn:
            # DuckDB draws a progress bar on stdout for a query past 2 s, amid a command's output.
            conn.execute("SET enable_progress_bar = false")
            if self._tables is None:
                tables = Tables.of(conn, self.schema)
                if is_lake_connection(conn):
                    self.is_lake = True
                    self._create_lake_tables(conn, tables)
                else:
                    conn.execute(_DDL.format(t=tables))
                    conn.execute("BEGIN TRANSACTION")
                    try:
                        upgrade_ledger(conn, tables)
                        conn.execute("COMMIT")
                    except BaseException:
                        rollback(conn)
                        raise
                self._tables = tables
            yield conn, self._tables

    def transaction(
        self, work: Callable[[duckdb.DuckDBPyConnection, Tables], T], *, lock: str | None = None
    ) -> T:
        """``work(conn, tables)`` between ``BEGIN`` and ``COMMIT``, its result returned.

        On a lake, a commit that lost to another process's (:func:`.lake.is_commit_conflict`)
        wrote nothing, and the whole transaction runs again, with backoff; ``lock`` (one of
        :data:`.lake.LOCK_NAMES`) first updates that row of ``warehouse_locks``, so that two
        such transactions never both commit. On a file or MotherDuck nothing is retried and
        ``lock`` does nothing (DuckDB's own constraints and single writer serialise them).
        """
        if lock is not None and lock not in LOCK_NAMES:
            raise ValueError(f"no lock named {lock!r}")

        def attempt() -> T:
            with self.connect() as (conn, tables):
                conn.execute("BEGIN TRANSACTION")
                try:
                    if lock is not None and self.is_lake:
                        conn.execute(
                            f"UPDATE {tables.locks} SET taken_at = now() WHERE name = ?", [lock]
                        )
                    result = work(conn, tables)
                    conn.execute("COMMIT")
                except BaseException:
                    rollback(conn)
                    raise
                return result

        return _retrying()(attempt)

    def _create_lake_tables(self, conn: duckdb.DuckDBPyConnection, tables: Tables) -> None:
        """The tables on a lake, in one transaction re-run if another process created them at
        the same time (its re-run then finds them and writes nothing)."""

        def create() -> None:
            conn.execute("BEGIN TRANSACTION")
            try:
                conn.execute(lake_ddl(_DDL).format(t=tables) + _LAKE_LOCKS_DDL.format(t=tables))
                upgrade_ledger(conn, tables)
                present = {
                    row[0] for row in conn.execute(f"SELECT name FROM {tables.locks}").fetchall()
                }
                missing = [name for name in LOCK_NAMES if name not in present]
                if missing:  # two processes seeding at once leave two rows each: harmless
                    conn.executemany(
                        f"INSERT INTO {tables.locks} VALUES (?, NULL)", [[n] for n in missing]
                    )
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                raise

        _retrying()(create)


def table_name(schema: str, table: str) -> str:
    """``schema.table`` as users query it (what Dagster's ``dagster/table_name`` shows)."""
    return f"{schema}.{table}"


class WarehouseBusyError(RuntimeError):
    """Another process held the DuckDB file for longer than the wait allowed."""


def _lake_schema(schema: str) -> str:
    if schema.lower() == "lake":
        # Like a file named after its schema: "lake.stop_list" would be ambiguous.
        raise ValueError("schema 'lake' is the lake's own name: choose another schema")
    return schema


def is_local_database(target: str) -> bool:
    """Whether ``target`` is a file on this machine (not ``:memory:``, a ``md:`` URL nor a
    ``ducklake:`` lake)."""
    return (
        bool(target)
        and not target.startswith("md:")
        and not is_lake(target)
        and target != ":memory:"
    )


def make_database_folder(target: str) -> None:
    """Create a local database file's folder: DuckDB creates only the file."""
    if is_local_database(target):
        Path(target).parent.mkdir(parents=True, exist_ok=True)


def _is_lock_conflict(error: BaseException) -> bool:
    return isinstance(error, duckdb.IOException) and "Could not set lock" in str(error)


CHECKPOINT_THRESHOLD = "1GB"
"""The write-ahead log's size past which a commit checkpoints a local file (DuckDB's default:
16 MB). A million audit rows, written 65,536 at a time, checkpointed the file every other
slice, a quarter of a second each time whatever the slice (``benchmarks/intake_bench.py``);
the file is checkpointed anyway when its last connection closes."""


def _checkpoint_less(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")


def _connect_waiting(target: str, wait_seconds: float) -> duckdb.DuckDBPyConnection:
    """Connect, retrying with exponential backoff and jitter while another process holds the
    file's lock (DuckDB allows one writing process per file)."""
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_is_lock_conflict),
        wait=tenacity.wait_exponential_jitter(initial=0.1, max=5.0),
        stop=tenacity.stop_after_delay(wait_seconds),
        reraise=True,
    )
    try:
        return retrying(duckdb.connect, target)
    except duckdb.IOException as error:
        if not _is_lock_conflict(error):
            raise
        holder = re.search(r"held in (.+?\(PID \d+\))", str(error))
        by = f" by {holder.group(1)}" if holder else ""
        raise WarehouseBusyError(
            f"{target} is locked{by}; waited {wait_seconds:g} s for it "
            "(SMSP_LOCK_WAIT_SECONDS). Nothing was sent."
        ) from None


@contextmanager
def capped_memory(conn: duckdb.DuckDBPyConnection, limit: str | None) -> Iterator[None]:
    """DuckDB's ``memory_limit`` set to ``limit`` (its form: ``"64MB"``) while the block runs,
    then back to what it was; nothing when ``limit`` is ``None``. DuckDB's limit is the
    database's, not the connection's: past it, DuckDB evicts and spills instead of growing
    (inserted rows would otherwise stay in its buffers, up to 80% of the machine's RAM)."""
    if limit is None:
        yield
        return
    previous = _memory_limit(conn)
    conn.execute("SET memory_limit = ?", [limit])
    try:
        yield
    except BaseException:
        # Within a transaction a failed statement aborted, any other statement fails too:
        # the block's own error is what must come out.
        with suppress(duckdb.Error):
            _restore_memory_limit(conn, previous)
        raise
    _restore_memory_limit(conn, previous)


def _restore_memory_limit(conn: duckdb.DuckDBPyConnection, previous: str) -> None:
    # The default exactly (the setting reads back rounded: "18.8 GiB"), else as read.
    conn.execute("RESET memory_limit")
    if _memory_limit(conn) != previous:
        conn.execute("SET memory_limit = ?", [previous])


def _memory_limit(conn: duckdb.DuckDBPyConnection) -> str:
    return scalar(conn, "SELECT current_setting('memory_limit')")
