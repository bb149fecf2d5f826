"""The append-only audit log of every change this project asks of the provider.

``audit_log`` gets one row per input row per run and operation, with the run, job, source
file and row, the target (E.164 number, stop id or message id), the outcome, the provider's code
and message and the number of attempts. Rows are written in batches as outcomes arrive, and rows
about to be sent are first written as ``pending``: a run killed mid-way leaves a log that says
which calls may have happened. ``audit_latest`` shows each row's final state.

Rejected input rows also go to ``input_rejections``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum

import pandas as pd

from smsp_connector.client import MutationResult, MutationStatus
from smsp_connector.warehouse.tables import Warehouse


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


_ENTRY_FIELDS = [f.name for f in fields(AuditEntry)]


class AuditWriter:
    """Buffers audit entries and appends them in batches, each batch one transaction.

    A connection is opened per batch, so the file is not held for the whole run.
    """

    def __init__(
        self,
        warehouse: Warehouse,
        *,
        run_id: str,
        job: str,
        operation: str,
        dry_run: bool,
        account: str | None = None,
        batch_size: int = 500,
        flush_interval: float = 2.0,
    ) -> None:
        self._warehouse = warehouse
        self.run_id = run_id
        self._context = {
            "run_id": run_id,
            "job": job,
            "operation": operation,
            "dry_run": dry_run,
            "account": account,
        }
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
        with self._warehouse.connect() as (conn, tables):
            conn.register("audit_batch", batch)
            try:
                conn.execute(
                    f"INSERT INTO {tables.audit_log} BY NAME SELECT "
                    "CAST(recorded_at AS TIMESTAMPTZ) AS recorded_at, run_id, job, operation, "
                    "dry_run, source_file, CAST(source_row AS BIGINT) AS source_row, target, "
                    "outcome, detail, CAST(stop_id AS BIGINT) AS stop_id, "
                    "CAST(provider_code AS INTEGER) AS provider_code, provider_message, "
                    "CAST(attempts AS INTEGER) AS attempts, CAST(account AS VARCHAR) AS account "
                    "FROM audit_batch"
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
    warehouse: Warehouse,
    rejections: pd.DataFrame,
    *,
    run_id: str,
    job: str,
    account: str | None = None,
) -> None:
    """Append rejected input rows (columns source_file, row_number, raw_value, reason, message)."""
    if rejections.empty:
        return
    batch = rejections.assign(
        recorded_at=datetime.now(UTC), run_id=run_id, job=job, account=account
    )
    with warehouse.connect() as (conn, tables):
        conn.register("rejection_batch", batch)
        try:
            conn.execute(
                f"INSERT INTO {tables.input_rejections} BY NAME SELECT "
                "CAST(recorded_at AS TIMESTAMPTZ) AS recorded_at, run_id, job, source_file, "
                "CAST(row_number AS BIGINT) AS row_number, raw_value, reason, message, "
                "CAST(account AS VARCHAR) AS account FROM rejection_batch"
            )
        finally:
            conn.unregister("rejection_batch")


UNSENT_OUTCOMES = (
    Outcome.INVALID_INPUT,
    Outcome.REFUSED,
    Outcome.REJECTED,
    Outcome.FAILED,
    Outcome.NOT_ON_LIST,
)
"""Outcomes of input rows that did not end as asked."""


def unsent_rows(
    warehouse: Warehouse, run_id: str, outcomes: Iterable[Outcome] = UNSENT_OUTCOMES
) -> pd.DataFrame:
    """The rows of one run whose final outcome is one of ``outcomes`` (by default those that
    did not go through), in input order: ``source_row``, ``target``, ``outcome``,
    ``provider_code``, ``reason``."""
    outcomes = ", ".join(f"'{Outcome(outcome).value}'" for outcome in outcomes)
    with warehouse.connect() as (conn, tables):
        return conn.execute(
            f"SELECT source_row, target, outcome, provider_code, "
            f"coalesce(detail, provider_message, '') AS reason FROM {tables.audit_latest} "
            f"WHERE run_id = ? AND outcome IN ({outcomes}) ORDER BY source_row, target",
            [run_id],
        ).fetchdf()


def outcome_counts(warehouse: Warehouse, run_id: str, operation: str) -> Counter[Outcome]:
    """How many rows of one run and operation ended in each outcome (their final state)."""
    with warehouse.connect() as (conn, tables):
        rows = conn.execute(
            f"SELECT outcome, count(*) FROM {tables.audit_latest} "
            "WHERE run_id = ? AND operation = ? GROUP BY outcome",
            [run_id, operation],
        ).fetchall()
    return Counter({Outcome(outcome): count for outcome, count in rows})


def outcome_rows(warehouse: Warehouse, run_id: str) -> dict[int, Outcome]:
    """Each input row's final outcome in one run (``source_row`` → outcome)."""
    with warehouse.connect() as (conn, tables):
        rows = conn.execute(
            f"SELECT source_row, outcome FROM {tables.audit_latest} WHERE run_id = ?", [run_id]
        ).fetchall()
    return {int(row): Outcome(outcome) for row, outcome in rows if row is not None}
