"""Plans: the exact targets of a change, stored before any call, applied at most once.

``plans`` has one row per plan: its id (a content hash of its targets, the options that produced
them, the operation and the account), when and by which run it was made, where its rows came
from (file and SHA-256), how many targets it has, and, once applied, when and by which run.
``plan_targets`` has one row per target, in input order: the source row, the target (E.164
number), the provider's stop id and opt-out time when known, and the consent evidence.

A dry run *is* a stored plan; a confirmation names a plan and applies its targets, never what
re-reading a file with other options would give. Storing is idempotent (the same content is the
same plan); marking a plan applied happens once, and a second attempt learns which run did it.
When content identical to an applied plan is planned again (numbers whose deletion failed, still
listed with the same evidence), the new plan *follows* the applied one: its id hashes that id
too, so it is a plan of its own, applied at most once in turn.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from smsp_connector.warehouse.results import one_row
from smsp_connector.warehouse.tables import Tables, Warehouse, capped_memory

PLANS_LOCK = "plans"
"""The ``warehouse_locks`` row taken by every write of ``plans`` on a lake."""


@dataclass(frozen=True, slots=True)
class PlanTarget:
    """One target of a plan and the evidence it was planned on."""

    source_row: int | None
    target: str
    stop_id: int | None = None
    opted_out_at: datetime | None = None
    """The provider's opt-out time, as it gives it: Paris time without a zone."""
    consent_at: datetime | None = None
    consent_source: str | None = None


TARGET_COLUMNS = (
    "source_row", "target", "stop_id", "opted_out_at", "consent_at", "consent_source",
)  # fmt: skip
_EVIDENCE = TARGET_COLUMNS[2:]


class PlanTargets(Sequence[PlanTarget]):
    """A plan's targets held as columns (:data:`TARGET_COLUMNS`), read as :class:`PlanTarget`
    one at a time: a push plan of a million numbers costs its columns, not a million objects.
    Times are kept as :class:`PlanTarget` holds them (``opted_out_at`` naive Paris time,
    ``consent_at`` aware)."""

    __slots__ = ("frame",)

    def __init__(self, frame: pd.DataFrame) -> None:
        if list(frame.columns) != list(TARGET_COLUMNS) or not frame.index.equals(
            pd.RangeIndex(len(frame))
        ):
            frame = frame.loc[:, list(TARGET_COLUMNS)].reset_index(drop=True)
        self.frame = frame  # as it is when already so: a million targets are not copied

    @classmethod
    def of(cls, targets: Iterable[PlanTarget]) -> PlanTargets:
        rows = list(targets)
        return cls(
            pd.DataFrame(
                {
                    "source_row": pd.array([t.source_row for t in rows], dtype="Int64"),
                    "target": _objects([t.target for t in rows]),
                    "stop_id": pd.array([t.stop_id for t in rows], dtype="Int64"),
                    "opted_out_at": _objects([t.opted_out_at for t in rows]),
                    "consent_at": _objects([t.consent_at for t in rows]),
                    "consent_source": _objects([t.consent_source for t in rows]),
                }
            )
        )

    @classmethod
    def rows(cls, source_rows: Sequence[int] | pd.Series, targets: Sequence[str] | pd.Series):
        """Targets with their source rows and no deletion evidence (a push, a cancel)."""
        count = len(targets)
        return cls(
            pd.DataFrame(
                {
                    "source_row": pd.array(np.asarray(source_rows, dtype="int64"), dtype="Int64"),
                    "target": np.asarray(targets, dtype=object),
                    "stop_id": pd.arrays.IntegerArray(  # every value missing
                        np.zeros(count, dtype="int64"), np.ones(count, dtype=bool)
                    ),
                    "opted_out_at": np.full(count, None, dtype=object),
                    "consent_at": np.full(count, None, dtype=object),
                    "consent_source": np.full(count, None, dtype=object),
                },
                copy=False,  # each column its own block: no consolidated copy of them all
            )
        )

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return PlanTargets(self.frame.iloc[index])
        return _target(self.frame.iloc[index].tolist())

    def __iter__(self) -> Iterator[PlanTarget]:
        for values in self.frame.itertuples(index=False, name=None):
            yield _target(list(values))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PlanTargets | list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    @property
    def numbers(self) -> list[str]:
        return self.frame["target"].tolist()

    def digest(self, hasher: Any) -> None:
        """Feed ``hasher`` the targets in order: their rows and values, then the evidence of
        the targets that have some (a push or cancel has none)."""
        rows = self.frame["source_row"].fillna(-1).to_numpy(dtype="int64")
        hasher.update(rows.tobytes())
        targets = self.frame["target"]
        for start in range(0, len(targets), _DIGEST_ROWS):  # the same bytes as one join
            if start:
                hasher.update(b"\x1f")
            hasher.update("\x1f".join(targets.iloc[start : start + _DIGEST_ROWS]).encode())
        evidence = self.frame.loc[:, list(_EVIDENCE)]
        if evidence.notna().to_numpy().any():
            text = [
                [None if pd.isna(v) else _iso(v) if isinstance(v, datetime) else v for v in row]
                for row in evidence.itertuples(index=False, name=None)
            ]
            hasher.update(json.dumps(text, default=str).encode())


_DIGEST_ROWS = 131_072
"""Targets joined into one text at a time for the content hash (not all a million at once)."""


def _target(values: list[Any]) -> PlanTarget:
    source_row, target, stop_id, opted_out_at, consent_at, consent_source = (
        None if _missing(value) else value for value in values
    )
    return PlanTarget(
        source_row=None if source_row is None else int(source_row),
        target=target,
        stop_id=None if stop_id is None else int(stop_id),
        opted_out_at=_moment(opted_out_at),
        consent_at=_moment(consent_at),
        consent_source=consent_source,
    )


def _missing(value: Any) -> bool:
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and np.isnan(value))
    )


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


@dataclass(frozen=True, slots=True)
class Plan:
    """A stored plan (or one about to be: :func:`store_plan` gives it its id)."""

    operation: str
    account: str | None
    options: Mapping[str, Any]
    """The options that produced the targets (phone column, region…), JSON-serialisable."""
    source_file: str | None
    source_sha256: str | None
    targets: Sequence[PlanTarget]
    plan_id: str = ""
    follows: str | None = None
    """The applied plan with the same content that this one repeats (see the module)."""
    created_at: datetime | None = None
    created_by_run: str | None = None
    applied_at: datetime | None = None
    applied_by_run: str | None = None
    made_to_apply: bool = False
    """Made by the run that applies it (a push, a deletion confirmed as it is planned): its
    id hashes that run's id, so it is never the same plan as another run's."""

    @property
    def target_columns(self) -> PlanTargets:
        if isinstance(self.targets, PlanTargets):
            return self.targets
        return PlanTargets.of(self.targets)

    def content_hash(self, run_id: str | None = None) -> str:
        """SHA-256 of the targets, options, operation, account, followed plan (and of the run
        that makes it, for a plan :attr:`made_to_apply`)."""
        header = {
            "operation": self.operation,
            "account": self.account,
            "options": dict(self.options),
            "follows": self.follows,
            "run": run_id if self.made_to_apply else None,
        }
        hasher = hashlib.sha256(
            json.dumps(header, sort_keys=True, separators=(",", ":"), default=str).encode()
        )
        self.target_columns.digest(hasher)
        return hasher.hexdigest()


@dataclass(frozen=True, slots=True)
class PlanClaim:
    """The outcome of :func:`claim_plan`: whether this run got to apply the plan."""

    claimed: bool
    applied_by_run: str | None
    applied_at: datetime | None


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.isoformat()


TARGET_BATCH_ROWS = 131_072
"""Targets inserted at a time when a plan is stored."""


def store_plan(
    warehouse: Warehouse,
    plan: Plan,
    *,
    run_id: str,
    read_back: bool = True,
    memory_limit: str | None = None,
) -> Plan:
    """Store ``plan`` (its targets included) unless the same content is stored already, and
    return the stored plan with its id. Content already applied gives a new plan following
    the applied one (see the module).

    With ``read_back`` the targets come back as stored (what a deletion applies); without, the
    returned plan keeps ``plan``'s own, the same content (the id hashes it): a push of a million
    numbers, which sends from its intake, does not read them all back. DuckDB works within
    ``memory_limit`` while it writes the targets (``None``: the database's own limit)."""

    def store(conn: duckdb.DuckDBPyConnection, tables: Tables) -> Plan:
        draft = plan
        while True:
            plan_id = draft.content_hash(run_id)
            row = one_row(
                conn, f"SELECT applied_by_run FROM {tables.plans} WHERE plan_id = ?", [plan_id]
            )
            if row is None:
                with capped_memory(conn, memory_limit):
                    _insert(conn, tables, draft, plan_id, run_id)
                break
            if row[0] is None:
                break
            draft = replace(draft, follows=plan_id)
        stored = _load(conn, tables, plan_id, targets=None if read_back else draft.targets)
        assert stored is not None
        return stored

    return warehouse.transaction(store, lock=PLANS_LOCK)


def _insert(
    conn: duckdb.DuckDBPyConnection, tables: Tables, plan: Plan, plan_id: str, run_id: str
) -> None:
    conn.execute(
        f"INSERT INTO {tables.plans} (plan_id, created_at, created_by_run, "
        "operation, account, options, source_file, source_sha256, target_count, follows) "
        "VALUES (?, now(), ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            plan_id,
            run_id,
            plan.operation,
            plan.account,
            json.dumps(dict(plan.options), sort_keys=True),
            plan.source_file,
            plan.source_sha256,
            len(plan.targets),
            plan.follows,
        ],
    )
    frame = plan.target_columns.frame
    if frame.empty:
        return
    # Evidence columns that no target has (all of them, for a push or a cancel) are written
    # as NULL: a registered column of a million None costs DuckDB a Python object a row.
    types = {
        "stop_id": "BIGINT", "opted_out_at": "TIMESTAMP", "consent_at": "TIMESTAMPTZ",
        "consent_source": "VARCHAR",
    }  # fmt: skip
    given = [name for name in types if frame[name].notna().to_numpy().any()]
    columns = ", ".join(
        f"CAST({name} AS {sql_type}) AS {name}" if name in given else f"NULL AS {name}"
        for name, sql_type in types.items()
    )
    # In slices, each built as it is written: DuckDB's copy of a registered frame's text
    # columns grows with the frame, and so would the columns added to it.
    for start in range(0, len(frame), TARGET_BATCH_ROWS):
        piece = frame.iloc[start : start + TARGET_BATCH_ROWS]
        batch = pd.DataFrame(
            {
                "position": np.arange(start + 1, start + len(piece) + 1, dtype="int64"),
                "source_row": piece["source_row"].array,
                "target": piece["target"].array,
                **{
                    name: _times(piece[name]) if name.endswith("_at") else piece[name].array
                    for name in given
                },
            },
            copy=False,
        )
        conn.register("plan_target_batch", batch)
        try:
            conn.execute(
                f"INSERT INTO {tables.plan_targets} BY NAME SELECT CAST(? AS VARCHAR) AS plan_id, "
                "CAST(position AS BIGINT) AS position, CAST(source_row AS BIGINT) AS source_row, "
                f"CAST(target AS VARCHAR) AS target, {columns} FROM plan_target_batch",
                [plan_id],
            )
        finally:
            conn.unregister("plan_target_batch")


def _objects(values: list[Any]) -> np.ndarray:
    """The values as an object array, as they are (no type inferred, no NaN for None)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _times(values: pd.Series) -> np.ndarray:
    """The times as text DuckDB casts exactly; a column of no time at all costs no loop."""
    if not values.notna().to_numpy().any():
        return _objects([None] * len(values))
    return _objects([None if _missing(value) else _text(value) for value in values])


def _text(moment: datetime) -> str:
    """A time as DuckDB casts it exactly (an aware one in UTC, a naive one as it is)."""
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def load_plan(warehouse: Warehouse, plan_id: str) -> Plan | None:
    """The stored plan ``plan_id`` with its targets in order, or ``None``."""
    if not plan_id.isascii():
        # Plan ids are hex digests. A command line's bytes that are not UTF-8 arrive as lone
        # surrogates, which DuckDB refuses as a parameter with pybind's "Unable to cast".
        return None
    with warehouse.connect() as (conn, tables):
        return _load(conn, tables, plan_id)


_PLAN_COLUMNS = (
    "plan_id, operation, account, options, source_file, source_sha256, follows, created_at, "
    "created_by_run, applied_at, applied_by_run"
)


def _load(
    conn: duckdb.DuckDBPyConnection,
    tables: Tables,
    plan_id: str,
    *,
    targets: Sequence[PlanTarget] | None = None,
) -> Plan | None:
    """The stored plan ``plan_id``; its targets read from ``plan_targets`` unless given."""
    row = one_row(conn, f"SELECT {_PLAN_COLUMNS} FROM {tables.plans} WHERE plan_id = ?", [plan_id])
    if row is None:
        return None
    (
        plan_id, operation, account, options, source_file, source_sha256, follows,
        created_at, created_by_run, applied_at, applied_by_run,
    ) = row  # fmt: skip
    if targets is None:
        targets = _stored_targets(conn, tables, plan_id)
    return Plan(
        operation=operation,
        account=account,
        options=json.loads(options),
        source_file=source_file,
        source_sha256=source_sha256,
        targets=targets,
        plan_id=plan_id,
        follows=follows,
        created_at=_utc(created_at),
        created_by_run=created_by_run,
        applied_at=_utc(applied_at),
        applied_by_run=applied_by_run,
    )


def _stored_targets(conn: duckdb.DuckDBPyConnection, tables: Tables, plan_id: str) -> PlanTargets:
    frame = conn.execute(
        f"SELECT {', '.join(TARGET_COLUMNS)} FROM {tables.plan_targets} "
        "WHERE plan_id = ? ORDER BY position",
        [plan_id],
    ).df()
    return PlanTargets(
        frame.assign(
            source_row=frame["source_row"].astype("Int64"),
            target=frame["target"].astype(object),
            stop_id=frame["stop_id"].astype("Int64"),
            opted_out_at=_python_times(frame["opted_out_at"]),
            consent_at=_python_times(frame["consent_at"], utc=True),
            consent_source=_objects(
                [None if _missing(value) else value for value in frame["consent_source"]]
            ),
        )
    )


def _python_times(values: pd.Series, *, utc: bool = False) -> np.ndarray:
    """DuckDB's times as :class:`datetime` (aware ones in UTC), ``None`` where there is none."""
    if not values.notna().to_numpy().any():
        return _objects([None] * len(values))
    moments = [None if _missing(value) else _moment(value) for value in values]
    if utc:
        moments = [None if value is None else value.astimezone(UTC) for value in moments]
    return _objects(moments)


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


def claim_plan(warehouse: Warehouse, plan_id: str, *, run_id: str) -> PlanClaim:
    """Mark the plan applied by ``run_id``, in one transaction, unless a run did already: at
    most one run applies a plan, and the others learn which one did."""
    return warehouse.transaction(
        lambda conn, tables: claim_in(conn, tables, plan_id, run_id), lock=PLANS_LOCK
    )


def claim_in(
    conn: duckdb.DuckDBPyConnection, tables: Tables, plan_id: str, run_id: str
) -> PlanClaim:
    """:func:`claim_plan` inside a transaction the caller holds (a purge claims its plan in
    the transaction that applies it)."""
    plans = tables.plans
    conn.execute(
        f"UPDATE {plans} SET applied_at = now(), applied_by_run = ? "
        "WHERE plan_id = ? AND applied_by_run IS NULL",
        [run_id, plan_id],
    )
    row = one_row(
        conn, f"SELECT applied_by_run, applied_at FROM {plans} WHERE plan_id = ?", [plan_id]
    )
    if row is None:
        raise KeyError(plan_id)
    return PlanClaim(row[0] == run_id, row[0], _utc(row[1]))
