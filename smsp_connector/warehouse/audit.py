"""The append-only audit log of every change this project asks of the provider.

``audit_log`` gets one row per input row per run and operation, with the run, job, plan
(``plans.py``), source file and row, the target (E.164 number, stop id or message id), the
outcome, the provider's code and message and the number of attempts. Rows are written in
batches as outcomes arrive, and rows about to be sent are first written as ``pending``: a run
killed mid-way leaves a log that says which calls may have happened. ``audit_latest`` shows
each row's final state.

Rejected input rows also go to ``input_rejections``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from itertools import islice
from typing import overload

import duckdb
import numpy as np
import pandas as pd

from smsp_connector.client import MutationResult, MutationStatus
from smsp_connector.warehouse.results import scalar
from smsp_connector.warehouse.tables import Tables, Warehouse, capped_memory


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


class AuditEntries(Sequence[AuditEntry]):
    """The entries of many intake rows, built as columns a slice at a time (a million rows
    are a million entries: as objects they cost a second and 500 MB, as one frame 100 MB;
    :meth:`AuditWriter.record` stages each slice's varying columns as they are, see
    :meth:`written`). Iterating gives :class:`AuditEntry` objects."""

    __slots__ = ("_detail", "_outcome", "_positions", "_rows", "_target")

    def __init__(
        self,
        rows: pd.DataFrame,
        outcome: Outcome,
        detail: str | None,
        target: str,
        positions: np.ndarray | None = None,
    ) -> None:
        self._rows = rows
        self._outcome = outcome
        self._detail = detail
        self._target = target
        self._positions = positions
        """The rows of ``rows`` meant (all of them if ``None``), by position."""

    @property
    def frame(self) -> pd.DataFrame:
        """``source_file``, ``source_row``, ``target``, ``outcome``, ``detail``."""
        return self._columns(slice(None))

    def slices(self, size: int) -> Iterator[pd.DataFrame]:
        """:attr:`frame`, ``size`` rows at a time."""
        for start in range(0, len(self), size):
            yield self._columns(slice(start, start + size))

    def written(self, size: int) -> tuple[dict[str, object], Iterator[pd.DataFrame]]:
        """:attr:`frame` as written: the values every entry shares (the outcome, and the file
        and detail when one for all), which the insert takes as parameters, and the columns
        whose values differ, ``size`` rows at a time."""
        shared: dict[str, object] = {"outcome": self._outcome.value}
        if self._detail is None:
            shared["detail"] = None
        source = self._rows["source_file"].to_numpy()
        if len(source) and (source == source[0]).all():
            shared["source_file"] = source[0]
        slices = (
            self._columns(slice(start, start + size), omit=shared.keys())
            for start in range(0, len(self), size)
        )
        return shared, slices

    def _take(self, name: str, where: slice | list[int], dtype: str | None = None) -> np.ndarray:
        """Column ``name`` of the rows meant, ``where`` among them (no other column copied);
        ``dtype`` converts it (raising for a missing value where it has none)."""
        values = self._rows[name].to_numpy(dtype=dtype)
        return values[where] if self._positions is None else values[self._positions[where]]

    def _columns(self, where: slice | list[int], omit: Collection[str] = ()) -> pd.DataFrame:
        targets = self._take(self._target, where)
        if pd.api.types.infer_dtype(targets, skipna=False) != "string":
            targets = _objects([str(value) for value in targets])
        rows = self._take("row_number", where, "int64")
        columns = {"source_row": rows, "target": targets}
        if "source_file" not in omit:
            columns["source_file"] = self._take("source_file", where)
        if "outcome" not in omit:
            columns["outcome"] = _repeated(self._outcome, len(rows))
        if "detail" not in omit:
            columns["detail"] = (
                self._take(self._detail, where) if self._detail else _repeated(None, len(rows))
            )
        return pd.DataFrame(columns)

    def __len__(self) -> int:
        return len(self._rows) if self._positions is None else len(self._positions)

    @overload
    def __getitem__(self, index: int) -> AuditEntry: ...
    @overload
    def __getitem__(self, index: slice) -> list[AuditEntry]: ...
    def __getitem__(self, index: int | slice) -> AuditEntry | list[AuditEntry]:
        if isinstance(index, slice):
            return list(self)[index]
        return next(self._entries(self._columns([index])))

    def __iter__(self) -> Iterator[AuditEntry]:
        for frame in self.slices(_INSERT_ROWS):
            yield from self._entries(frame)

    @staticmethod
    def _entries(frame: pd.DataFrame) -> Iterator[AuditEntry]:
        for source_file, source_row, target, outcome, detail in zip(
            frame["source_file"], frame["source_row"].tolist(), frame["target"],
            frame["outcome"], frame["detail"], strict=True,
        ):  # fmt: skip
            yield AuditEntry(source_file, source_row, target, outcome, detail)


def audit_entries(
    rows: pd.DataFrame,
    outcome: Outcome,
    detail: str | None = None,
    target: str = "e164",
    *,
    where: pd.Series | np.ndarray | None = None,
) -> AuditEntries:
    """One entry per row of an intake frame (``source_file``, ``row_number`` and the columns
    named by ``target`` and ``detail``), or per row of it that the boolean mask ``where``
    holds (no copy of those rows is made); the entries' columns are built when written."""
    positions = None if where is None else np.flatnonzero(np.asarray(where, dtype=bool))
    return AuditEntries(rows, outcome, detail, target, positions)


def _repeated(value: object, count: int) -> np.ndarray:
    """``value`` ``count`` times, one object (``np.full`` would convert a str to a copy each)."""
    array = np.empty(count, dtype=object)
    array.fill(value)
    return array


def _objects(values: Iterable[object]) -> np.ndarray:
    """The values as an object array, as they are (no type inferred, no NaN for None)."""
    values = values if isinstance(values, list) else list(values)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


_ENTRY_FIELDS = [f.name for f in fields(AuditEntry)]
_ROW_COLUMNS = {
    "recorded_at": "TIMESTAMPTZ", "source_file": "VARCHAR", "source_row": "BIGINT",
    "target": "VARCHAR", "outcome": "VARCHAR", "detail": "VARCHAR", "stop_id": "BIGINT",
    "provider_code": "INTEGER", "provider_message": "VARCHAR", "attempts": "INTEGER",
}  # fmt: skip
"""``audit_log``'s columns that each row gives (those a batch lacks are NULL), by SQL type."""
_CONTEXT = {
    "run_id": "VARCHAR", "job": "VARCHAR", "operation": "VARCHAR", "dry_run": "BOOLEAN",
    "account": "VARCHAR", "plan_id": "VARCHAR",
}  # fmt: skip
"""``audit_log``'s columns that the writer's context gives, the same for every row."""
_INSERT_ROWS = 65_536
"""Rows of :class:`AuditEntries` built and staged at a time."""
_GROUP_SLICES = 4
"""Slices of :data:`_INSERT_ROWS` rows written per transaction: past DuckDB's row group (122,880
rows), so that a group is written as whole row groups."""


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
        plan_id: str | None = None,
        batch_size: int = 500,
        flush_interval: float = 2.0,
        memory_limit: str | None = None,
    ) -> None:
        self._warehouse = warehouse
        self._memory_limit = memory_limit
        self.run_id = run_id
        self._context = {
            "run_id": run_id,
            "job": job,
            "operation": operation,
            "dry_run": dry_run,
            "account": account,
            "plan_id": plan_id,
        }
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._buffer: list[dict[str, object]] = []
        self._last_flush = time.monotonic()
        self.written = 0

    @property
    def account(self) -> str | None:
        """The account label the rows are recorded under."""
        return self._context["account"]  # type: ignore[return-value]

    @property
    def memory_limit(self) -> str | None:
        """DuckDB's cap while this run writes and reads its rows (``None``: the database's)."""
        return self._memory_limit

    def name_plan(self, plan_id: str | None) -> None:
        """The plan that the rows recorded from now on belong to (rows buffered before are
        written first, under the plan they were recorded with)."""
        self.flush()
        self._context["plan_id"] = plan_id

    def record(self, entries: Iterable[AuditEntry]) -> None:
        now = datetime.now(UTC)
        if isinstance(entries, AuditEntries):
            # Outcomes known all at once (already on the list, dry run, invalid input): their
            # columns are written as they are, after what was buffered.
            self.flush()
            # A group of slices at a time, each group one transaction: the columns built for
            # the insert, and DuckDB's buffers, stay bounded by a group, not the file. One
            # connection for them all: each close would checkpoint the file.
            with self._warehouse.one_connection():
                shared, pieces = entries.written(_INSERT_ROWS)
                while group := list(islice(pieces, _GROUP_SLICES)):
                    self._insert_group(group, {"recorded_at": now, **shared})
            return
        self._buffer.extend(
            {"recorded_at": now, **{name: getattr(entry, name) for name in _ENTRY_FIELDS}}
            for entry in entries
        )
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
        self._insert(batch, len(self._buffer))
        self._buffer.clear()

    def _insert(self, batch: pd.DataFrame, count: int) -> None:
        def append(conn, tables) -> None:
            conn.register("audit_batch", batch)
            try:
                with capped_memory(conn, self._memory_limit):
                    self._append_from(conn, tables, "audit_batch", list(batch.columns), {})
            finally:
                conn.unregister("audit_batch")

        # One transaction, re-run on a lake when another process's commit won the race.
        self._warehouse.transaction(append)
        self.written += count

    def _append_from(
        self,
        conn: duckdb.DuckDBPyConnection,
        tables: Tables,
        relation: str,
        columns: Collection[str],
        shared: Mapping[str, object],
    ) -> None:
        """Append ``relation``'s rows to ``audit_log``: its ``columns`` as they are, the
        values in ``shared`` and the run's context as parameters (a column of a million
        copies of one value costs DuckDB a conversion per row), NULL for the rest."""
        values = {
            **{name: shared[name] for name in _ROW_COLUMNS if name in shared},
            **{name: self._context[name] for name in _CONTEXT},
        }
        types = {**_ROW_COLUMNS, **_CONTEXT}
        selected = [
            f"CAST({name} AS {sql_type}) AS {name}"
            for name, sql_type in _ROW_COLUMNS.items()
            if name in columns
        ] + [f"CAST(? AS {types[name]}) AS {name}" for name in values]
        conn.execute(
            f"INSERT INTO {tables.audit_log} BY NAME SELECT {', '.join(selected)} FROM {relation}",
            list(values.values()),
        )

    def _insert_group(self, pieces: list[pd.DataFrame], shared: dict[str, object]) -> None:
        """Append the rows of ``pieces`` (:meth:`AuditEntries.written`'s slices) in one
        transaction. Each slice goes to a temporary table first: DuckDB then writes the group
        into ``audit_log`` as whole row groups from one parallel scan, where the slices'
        inserts would each go through the write-ahead log (half the time at a million rows,
        every column but two being a value the rows share)."""
        varying = [name for name in _ROW_COLUMNS if name in pieces[0].columns]
        staged = ", ".join(f"{name} {_ROW_COLUMNS[name]}" for name in varying)

        def append(conn, tables) -> None:
            # Created in the transaction: a failure's rollback drops it (a DROP after a
            # failed statement would fail too, and hide DuckDB's own error).
            conn.execute(f"CREATE OR REPLACE TEMPORARY TABLE audit_staged ({staged})")
            for piece in pieces:
                conn.register("audit_batch", piece)
                try:
                    conn.execute(
                        f"INSERT INTO audit_staged BY NAME SELECT {', '.join(varying)} "
                        "FROM audit_batch"
                    )
                finally:
                    conn.unregister("audit_batch")
            self._append_from(conn, tables, "audit_staged", varying, shared)
            conn.execute("DROP TABLE audit_staged")

        # The cap set and given back outside the transaction (on the connection record()
        # holds, which the transaction uses): a failed statement aborts the transaction, and
        # any statement in it but ROLLBACK fails.
        with self._warehouse.connect() as (conn, _), capped_memory(conn, self._memory_limit):
            self._warehouse.transaction(append)
        self.written += sum(len(piece) for piece in pieces)

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

    def append(conn, tables) -> None:
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

    warehouse.transaction(append)  # re-run on a lake when another commit won the race


UNSENT_OUTCOMES = (
    Outcome.INVALID_INPUT,
    Outcome.REFUSED,
    Outcome.REJECTED,
    Outcome.FAILED,
    Outcome.NOT_ON_LIST,
)
"""Outcomes of input rows that did not end as asked."""


def unsent_rows(
    warehouse: Warehouse,
    run_id: str,
    outcomes: Iterable[Outcome] = UNSENT_OUTCOMES,
    *,
    limit: int | None = None,
    memory_limit: str | None = None,
) -> pd.DataFrame:
    """The rows of one run whose final outcome is one of ``outcomes`` (by default those that
    did not go through), in input order: ``source_row``, ``target``, ``outcome``,
    ``provider_code``, ``reason``; only the first ``limit`` of them if given. DuckDB works
    within ``memory_limit`` (see :func:`capped_memory`) if given.

    What ``audit_latest`` gives, computed for the rows that have a log row with one of
    ``outcomes`` only (a row cannot end in an outcome it never had): the view ranks every row
    of the run, a sort of a million rows for a dry run of a million rows that failed none.
    """
    values = ", ".join(f"'{Outcome(outcome).value}'" for outcome in outcomes)
    with warehouse.connect() as (conn, tables), capped_memory(conn, memory_limit):
        if limit is not None:
            # The first rows that had one of the outcomes; all of them if fewer came back
            # (one of those rows ended otherwise, or was logged twice).
            frame = _fetch_unsent(conn, tables.audit_log, run_id, values, int(limit))
            if len(frame) == limit or not _more_than(conn, tables.audit_log, run_id, values, limit):
                return frame
            return _fetch_unsent(conn, tables.audit_log, run_id, values, None).head(limit)
        return _fetch_unsent(conn, tables.audit_log, run_id, values, None)


_LATEST_ORDER = "ORDER BY recorded_at DESC, outcome = 'pending'"
"""A row's final state first: the order of the ``audit_latest`` view (``tables.py``)."""


def _fetch_unsent(
    conn: duckdb.DuckDBPyConnection, audit_log: str, run_id: str, values: str, first: int | None
) -> pd.DataFrame:
    """:func:`unsent_rows` from the rows that had one of ``values`` (the first ``first`` of
    them by input order, if given), ranked like ``audit_latest``."""
    limit = "" if first is None else f" ORDER BY source_row, target LIMIT {first}"
    distinct = "DISTINCT " if first is None else ""
    result = conn.execute(
        f"""
        WITH candidates AS (
            SELECT {distinct}operation, source_file, source_row, target FROM {audit_log}
            WHERE run_id = $run AND outcome IN ({values}){limit}
        )
        SELECT source_row, target, outcome, provider_code,
            coalesce(detail, provider_message, '') AS reason
        FROM (
            SELECT log.*, row_number() OVER (
                PARTITION BY log.operation, log.source_file, log.source_row, log.target
                {_LATEST_ORDER}) AS position
            FROM {audit_log} AS log SEMI JOIN candidates AS c
                ON log.operation = c.operation
                AND log.source_file IS NOT DISTINCT FROM c.source_file
                AND log.source_row IS NOT DISTINCT FROM c.source_row
                AND log.target = c.target
            WHERE log.run_id = $run
        )
        WHERE position = 1 AND outcome IN ({values})
        ORDER BY source_row, target
        """,
        {"run": run_id},
    )
    # In pieces, each repeated outcome and reason one str object (a dry run of a million
    # rows repeats "dry_run" and "" a million times: 100 MB as separate objects).
    pieces = []
    while not (piece := result.fetch_df_chunk(16)).empty:
        for name in ("outcome", "reason"):
            codes, uniques = pd.factorize(piece[name], use_na_sentinel=False)
            piece[name] = _objects(uniques.take(codes))
        pieces.append(piece)
    if not pieces:
        return result.fetchdf()
    return pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0]


def _more_than(
    conn: duckdb.DuckDBPyConnection, audit_log: str, run_id: str, values: str, count: int
) -> bool:
    """Whether more than ``count`` log rows of the run have one of ``values``."""
    found = scalar(
        conn,
        f"SELECT count(*) FROM (SELECT 1 FROM {audit_log} "
        f"WHERE run_id = ? AND outcome IN ({values}) LIMIT {count + 1})",
        [run_id],
    )
    return found > count


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
