"""The append-only audit log of every change this project asks of the provider.

``smsp.audit_log`` gets one row per input row per run and operation, with the run, job, source
file and row, the target (E.164 number, stop id or message id), the outcome, the provider's code
and message and the number of attempts. Rows are written in batches as outcomes arrive, and rows
about to be sent are first written as ``pending``: a run killed mid-way leaves a log that says
which calls may have happened. ``smsp.audit_latest`` shows each row's final state.

Rejected input rows also go to ``smsp.input_rejections``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum

import duckdb
import pandas as pd

from smsp_connector.client import MutationResult, MutationStatus
from smsp_connector.warehouse import Tables

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


class Outcome(StrEnum):
    """What became of one input row in one run."""

    PENDING = "pending"
    """About to be sent; replaced by a later row unless the run died first."""
    APPLIED = "applied"
    """The provider made the change (code 200)."""
    ALREADY_DONE = "already_done"
    """The provider said it was already so (add 3, delete 4, cancel 5)."""
    REJECTED = "rejected"
    """The provider refused (9 invalid number, 6 too late, 7 already sent, 4 not found…)."""
    FAILED = "failed"
    """No usable answer after every retry: the next run tries again."""
    ALREADY_ON_LIST = "already_on_list"
    """Nothing to send: the fresh list already has the number."""
    NOT_ON_LIST = "not_on_list"
    """Nothing to delete: the fresh list does not have the number."""
    INVALID_INPUT = "invalid_input"
    """The input value could not be used (see detail and smsp.input_rejections)."""
    DUPLICATE_IN_FILE = "duplicate_in_file"
    """The same target appears earlier in the file; handled once, there."""
    REFUSED = "refused"
    """A guard refused the change (deletion without consent evidence, …); see detail."""
    DRY_RUN = "dry_run"
    """Would have been sent; the run was a dry run."""


_FROM_STATUS = {
    MutationStatus.APPLIED: Outcome.APPLIED,
    MutationStatus.ALREADY_DONE: Outcome.ALREADY_DONE,
    MutationStatus.REJECTED: Outcome.REJECTED,
    MutationStatus.FAILED: Outcome.FAILED,
}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    source_file: str | None
    source_row: int | None
    target: str
    outcome: Outcome
    detail: str | None = None
    stop_id: int | None = None
    provider_code: int | None = None
    provider_message: str | None = None
    attempts: int | None = None

    @classmethod
    def from_result(
        cls, result: MutationResult, source_file: str | None, source_row: int | None
    ) -> AuditEntry:
        stop_id = result.stop_id
        if stop_id is None and result.kind.value == "delete":
            stop_id = int(result.target)
        return cls(
            source_file=source_file,
            source_row=source_row,
            target=result.target,
            outcome=_FROM_STATUS[result.status],
            stop_id=stop_id,
            provider_code=result.code,
            provider_message=result.message,
            attempts=result.attempts,
        )


def audit_entries(
    rows: pd.DataFrame, outcome: Outcome, detail: str | None = None, target: str = "e164"
) -> list[AuditEntry]:
    """One entry per row of an intake frame (``source_file``, ``row_number`` and the columns
    named by ``target`` and ``detail``)."""
    return [
        AuditEntry(
            source_file=row["source_file"],
            source_row=int(row["row_number"]),
            target=str(row[target]),
            outcome=outcome,
            detail=row[detail] if detail else None,
        )
        for row in rows.to_dict("records")
    ]


_AUDIT_COLUMNS = (
    "recorded_at TIMESTAMPTZ NOT NULL, run_id VARCHAR NOT NULL, job VARCHAR NOT NULL, "
    "operation VARCHAR NOT NULL, dry_run BOOLEAN NOT NULL, source_file VARCHAR, "
    "source_row BIGINT, target VARCHAR NOT NULL, outcome VARCHAR NOT NULL, detail VARCHAR, "
    "stop_id BIGINT, provider_code INTEGER, provider_message VARCHAR, attempts INTEGER"
)
_ENTRY_FIELDS = [f.name for f in fields(AuditEntry)]


def ensure_audit_tables(conn: duckdb.DuckDBPyConnection) -> Tables:
    t = Tables.of(conn)
    conn.execute(
        f"""
        CREATE SCHEMA IF NOT EXISTS {t.schema};
        CREATE TABLE IF NOT EXISTS {t.qualified("audit_log")} ({_AUDIT_COLUMNS});
        CREATE TABLE IF NOT EXISTS {t.qualified("input_rejections")} (
            recorded_at TIMESTAMPTZ NOT NULL, run_id VARCHAR NOT NULL, job VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL, row_number BIGINT NOT NULL, raw_value VARCHAR,
            reason VARCHAR NOT NULL, message VARCHAR NOT NULL);
        CREATE OR REPLACE VIEW {t.qualified("audit_latest")} AS
            SELECT * EXCLUDE (position) FROM (
                SELECT *, row_number() OVER (
                    PARTITION BY run_id, operation, source_file, source_row, target
                    ORDER BY recorded_at DESC, outcome = 'pending') AS position
                FROM {t.qualified("audit_log")})
            WHERE position = 1;
        """
    )
    return t


class AuditWriter:
    """Buffers audit entries and appends them in batches, each batch one transaction.

    ``connect`` opens a DuckDB connection (``DuckDBResource.get_connection`` in a Dagster
    step): one is opened per batch, so the file is not held for the whole run.
    """

    def __init__(
        self,
        connect: Connect,
        *,
        run_id: str,
        job: str,
        operation: str,
        dry_run: bool,
        batch_size: int = 500,
        flush_interval: float = 2.0,
    ) -> None:
        self._connect = connect
        self.run_id = run_id
        self._context = {"run_id": run_id, "job": job, "operation": operation, "dry_run": dry_run}
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._buffer: list[dict[str, object]] = []
        self._last_flush = time.monotonic()
        self.written = 0

    def record(self, entries: Iterable[AuditEntry]) -> None:
        now = datetime.now(UTC)
        self._buffer.extend({"recorded_at": now, **asdict(entry)} for entry in entries)
        if (
            len(self._buffer) >= self._batch_size
            or time.monotonic() - self._last_flush >= self._flush_interval
        ):
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        batch = pd.DataFrame.from_records(self._buffer, columns=["recorded_at", *_ENTRY_FIELDS])
        for key, value in self._context.items():
            batch[key] = value
        with self._connect() as conn:
            table = ensure_audit_tables(conn).qualified("audit_log")
            conn.register("audit_batch", batch)
            try:
                conn.execute(
                    f"INSERT INTO {table} BY NAME SELECT "
                    "CAST(recorded_at AS TIMESTAMPTZ) AS recorded_at, run_id, job, operation, "
                    "dry_run, source_file, CAST(source_row AS BIGINT) AS source_row, target, "
                    "outcome, detail, CAST(stop_id AS BIGINT) AS stop_id, "
                    "CAST(provider_code AS INTEGER) AS provider_code, provider_message, "
                    "CAST(attempts AS INTEGER) AS attempts FROM audit_batch"
                )
            finally:
                conn.unregister("audit_batch")
        self.written += len(self._buffer)
        self._buffer.clear()

    def __enter__(self) -> AuditWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.flush()


def record_input_rejections(
    conn: duckdb.DuckDBPyConnection, rejections: pd.DataFrame, *, run_id: str, job: str
) -> None:
    """Append rejected input rows (columns source_file, row_number, raw_value, reason, message)."""
    if rejections.empty:
        return
    table = ensure_audit_tables(conn).qualified("input_rejections")
    batch = rejections.assign(recorded_at=datetime.now(UTC), run_id=run_id, job=job)
    conn.register("rejection_batch", batch)
    try:
        conn.execute(
            f"INSERT INTO {table} BY NAME SELECT CAST(recorded_at AS TIMESTAMPTZ) AS recorded_at, "
            "run_id, job, source_file, CAST(row_number AS BIGINT) AS row_number, raw_value, "
            "reason, message FROM rejection_batch"
        )
    finally:
        conn.unregister("rejection_batch")
