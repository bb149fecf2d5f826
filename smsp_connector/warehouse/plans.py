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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from smsp_connector.warehouse.results import one_row
from smsp_connector.warehouse.tables import Tables, Warehouse

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

    def content_hash(self) -> str:
        """SHA-256 of the targets, options, operation, account (and followed plan)."""
        content = {
            "operation": self.operation,
            "account": self.account,
            "options": dict(self.options),
            "follows": self.follows,
            "targets": [
                [
                    t.source_row,
                    t.target,
                    t.stop_id,
                    _iso(t.opted_out_at),
                    _iso(t.consent_at),
                    t.consent_source,
                ]
                for t in self.targets
            ],
        }
        text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


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


def store_plan(warehouse: Warehouse, plan: Plan, *, run_id: str) -> Plan:
    """Store ``plan`` (its targets included) unless the same content is stored already, and
    return the stored plan with its id. Content already applied gives a new plan following
    the applied one (see the module)."""

    def store(conn: duckdb.DuckDBPyConnection, tables: Tables) -> Plan:
        draft = plan
        while True:
            plan_id = draft.content_hash()
            row = one_row(
                conn, f"SELECT applied_by_run FROM {tables.plans} WHERE plan_id = ?", [plan_id]
            )
            if row is None:
                _insert(conn, tables, draft, plan_id, run_id)
                break
            if row[0] is None:
                break
            draft = replace(draft, follows=plan_id)
        stored = _load(conn, tables, plan_id)
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
    if not plan.targets:
        return
    targets = pd.DataFrame(
        {
            "plan_id": plan_id,
            "position": np.arange(1, len(plan.targets) + 1, dtype="int64"),
            "source_row": pd.array([t.source_row for t in plan.targets], dtype="Int64"),
            "target": [t.target for t in plan.targets],
            "stop_id": pd.array([t.stop_id for t in plan.targets], dtype="Int64"),
            "opted_out_at": _times(t.opted_out_at for t in plan.targets),
            "consent_at": _times(t.consent_at for t in plan.targets),
            "consent_source": _objects([t.consent_source for t in plan.targets]),
        }
    )
    conn.register("plan_target_batch", targets)
    try:
        conn.execute(
            f"INSERT INTO {tables.plan_targets} BY NAME SELECT plan_id, "
            "CAST(position AS BIGINT) AS position, CAST(source_row AS BIGINT) AS source_row, "
            "target, CAST(stop_id AS BIGINT) AS stop_id, "
            "CAST(opted_out_at AS TIMESTAMP) AS opted_out_at, "
            "CAST(consent_at AS TIMESTAMPTZ) AS consent_at, "
            "CAST(consent_source AS VARCHAR) AS consent_source FROM plan_target_batch"
        )
    finally:
        conn.unregister("plan_target_batch")


def _objects(values: list[Any]) -> np.ndarray:
    """The values as an object array, as they are (no type inferred, no NaN for None)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _times(values: Iterable[datetime | None]) -> np.ndarray:
    return _objects([None if value is None else _text(value) for value in values])


def _text(moment: datetime) -> str:
    """A time as DuckDB casts it exactly (an aware one in UTC, a naive one as it is)."""
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def load_plan(warehouse: Warehouse, plan_id: str) -> Plan | None:
    """The stored plan ``plan_id`` with its targets in order, or ``None``."""
    with warehouse.connect() as (conn, tables):
        return _load(conn, tables, plan_id)


_PLAN_COLUMNS = (
    "plan_id, operation, account, options, source_file, source_sha256, follows, created_at, "
    "created_by_run, applied_at, applied_by_run"
)


def _load(conn: duckdb.DuckDBPyConnection, tables: Tables, plan_id: str) -> Plan | None:
    row = one_row(conn, f"SELECT {_PLAN_COLUMNS} FROM {tables.plans} WHERE plan_id = ?", [plan_id])
    if row is None:
        return None
    (
        plan_id, operation, account, options, source_file, source_sha256, follows,
        created_at, created_by_run, applied_at, applied_by_run,
    ) = row  # fmt: skip
    targets = [
        PlanTarget(
            source_row=source_row,
            target=target,
            stop_id=stop_id,
            opted_out_at=opted_out_at,
            consent_at=None if consent_at is None else consent_at.astimezone(UTC),
            consent_source=consent_source,
        )
        for source_row, target, stop_id, opted_out_at, consent_at, consent_source in conn.execute(
            "SELECT source_row, target, stop_id, opted_out_at, consent_at, consent_source "
            f"FROM {tables.plan_targets} WHERE plan_id = ? ORDER BY position",
            [plan_id],
        ).fetchall()
    ]
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


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


def claim_plan(warehouse: Warehouse, plan_id: str, *, run_id: str) -> PlanClaim:
    """Mark the plan applied by ``run_id``, in one transaction, unless a run did already: at
    most one run applies a plan, and the others learn which one did."""

    def claim(conn: duckdb.DuckDBPyConnection, tables: Tables) -> PlanClaim:
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

    return warehouse.transaction(claim, lock=PLANS_LOCK)
