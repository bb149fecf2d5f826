"""The opt-out ledger: one row per number and opt-out episode (view ``opt_out_ledger``, its
SQL in :mod:`.tables`), derived from ``audit_log``, ``stop_list_history`` and ``plan_targets``:
nothing is written twice, so the ledger cannot drift from what happened.

Deriving the whole view takes seconds at a million numbers. ``ledger_episodes`` keeps its rows
incrementally (:func:`refresh_ledger`): each number's events are fingerprinted (a count and a
sum of hashes of every column the view reads, under a second at a million numbers), and only
the numbers whose fingerprint changed since the last refresh are derived again, with the view's
own SQL. No watermark: a row committed late, or changed in place by a retention purge, changes
its number's fingerprint all the same. The readers that need every number (the honour report,
the audience guard, the compliance report) refresh it first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from smsp_connector.warehouse.pseudonyms import PSEUDONYM_PREFIX, pseudonym
from smsp_connector.warehouse.results import one_row, scalar
from smsp_connector.warehouse.stop_list import stop_list_exists
from smsp_connector.warehouse.tables import (
    LEDGER_FINGERPRINTS,
    LEDGER_SELECT,
    Tables,
    Warehouse,
)


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One opt-out episode of a number: received, honoured, and perhaps ended."""

    phone_number: str
    episode: int
    """1 for the number's first episode; a deletion or a departure from the list ends one."""
    origin: str
    """``connector`` (received in an input first) or ``provider`` (first seen on its list: a
    STOP reply the provider took itself)."""
    received_at: datetime | None
    received_from: str | None
    """The file (or ``table:<source>``, ``command line``) the number was first read from."""
    received_row: int | None
    received_cursor: str | None
    """For a warehouse-table source, the row's cursor value when it was read."""
    received_run_id: str | None
    sent_at: datetime | None
    """When the provider first took it (``applied`` or ``already_done``)."""
    sent_plan_id: str | None
    sent_run_id: str | None
    sent_outcome: str | None
    found_listed_at: datetime | None
    """When a push first found it on the list already (no call needed)."""
    refused_at: datetime | None
    """When the provider first refused it (code 9)."""
    listed_at: datetime | None
    """When a refresh first saw it on the provider's list."""
    provider_opted_out_at: datetime | None
    """The provider's own opt-out time for it (its ``createdAt``, as an instant)."""
    honoured_at: datetime | None
    """The first of ``sent_at``, ``found_listed_at`` and ``listed_at``."""
    ended_at: datetime | None
    ended_by: str | None
    """``deletion`` (a deletion of ours applied) or ``left_provider_list`` (gone from the list
    with no deletion of ours)."""
    deletion_plan_id: str | None
    deletion_run_id: str | None
    consent_at: datetime | None
    consent_source: str | None
    status: str
    """``pending``, ``honoured``, ``refused_by_provider`` or ``ended``."""


LEDGER_COLUMNS = tuple(item.name for item in fields(LedgerRow))


def ledger_rows(
    warehouse: Warehouse, phone_number: str | None = None, *, key: bytes | None = None
) -> list[LedgerRow]:
    """The ledger's episodes of ``phone_number`` (E.164), or of every number, in order. With
    the HMAC ``key``, a number's episodes past retention, held under its pseudonym
    (:mod:`.retention`), are found too: the proof still verifies when someone brings the
    number."""
    wanted = [] if phone_number is None else [phone_number]
    if phone_number is not None and key is not None:
        wanted.append(pseudonym(key, phone_number))
    where = f"WHERE phone_number IN ({', '.join('?' * len(wanted))})" if wanted else ""
    with warehouse.connect() as (conn, tables):
        rows = conn.execute(
            f"SELECT {', '.join(LEDGER_COLUMNS)} FROM {tables.ledger} {where} "
            f"ORDER BY phone_number LIKE '{PSEUDONYM_PREFIX}%' DESC, phone_number, episode",
            wanted,
        ).fetchall()
    return [LedgerRow(*row) for row in rows]


def holds_pseudonyms(warehouse: Warehouse) -> bool:
    """Whether a retention purge replaced any number by its pseudonym in this warehouse."""
    with warehouse.connect() as (conn, tables):
        return bool(
            conn.execute(
                f"SELECT 1 FROM {tables.history} WHERE phone_number LIKE '{PSEUDONYM_PREFIX}%' "
                f"UNION ALL SELECT 1 FROM {tables.audit_log} "
                f"WHERE target LIKE '{PSEUDONYM_PREFIX}%' AND operation <> 'purge' LIMIT 1"
            ).fetchall()
        )


def refresh_ledger(warehouse: Warehouse) -> int:
    """Bring ``ledger_episodes`` up to date with the view: derive again the episodes of every
    number whose events changed since the last refresh; return how many numbers that was."""
    return warehouse.transaction(refresh_ledger_in, lock="ledger")


def refresh_ledger_in(conn: duckdb.DuckDBPyConnection, tables: Tables) -> int:
    """:func:`refresh_ledger` inside a transaction the caller holds."""
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE ledger_prints AS " + LEDGER_FINGERPRINTS.format(t=tables)
    )
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE ledger_touched AS "
        "SELECT coalesce(n.phone_number, o.phone_number) AS phone_number "
        f"FROM ledger_prints AS n FULL JOIN {tables.ledger_fingerprints} AS o "
        "ON n.phone_number = o.phone_number "
        "WHERE n.fingerprint IS DISTINCT FROM o.fingerprint OR n.events IS DISTINCT FROM o.events"
    )
    try:
        touched = scalar(conn, "SELECT count(*) FROM ledger_touched")
        if touched:
            only = "phone_number IN (SELECT phone_number FROM ledger_touched)"
            episodes = LEDGER_SELECT.format(
                audit_log=tables.audit_log,
                history=tables.history,
                plan_targets=tables.plan_targets,
                source_reads=tables.source_reads,
                only=only,
            )
            conn.execute(f"DELETE FROM {tables.ledger_episodes} WHERE {only}")
            conn.execute(f"INSERT INTO {tables.ledger_episodes} BY NAME {episodes}")
            conn.execute(f"DELETE FROM {tables.ledger_fingerprints} WHERE {only}")
            conn.execute(
                f"INSERT INTO {tables.ledger_fingerprints} BY NAME "
                f"SELECT phone_number, events, fingerprint FROM ledger_prints WHERE {only}"
            )
        return int(touched)
    finally:
        conn.execute("DROP TABLE IF EXISTS ledger_prints; DROP TABLE IF EXISTS ledger_touched")


@dataclass(frozen=True, slots=True)
class HonourTimes:
    """How fast the opt-outs the connector received reached the provider's list, against the
    account's deadline (``honour_within``), at ``now``."""

    received: int
    """Opt-out episodes received in an input (those first seen on the provider's list have
    nothing to honour)."""
    honoured: int
    pending: int
    """Received, not honoured, not refused, not ended: still to reach the list."""
    overdue: int
    """Pending for longer than the deadline."""
    late: int
    """Honoured, but after the deadline."""
    refused: int
    """Refused by the provider (code 9) and not honoured."""
    median_hours: float | None
    p95_hours: float | None
    """The median and 95th percentile of the time from receipt to honour, in hours."""
    oldest_overdue_hours: float | None


@dataclass(frozen=True)
class HonourReport:
    """The ledger at ``now`` against the account's deadline, read once."""

    episodes: int
    """The ledger's rows."""
    times: HonourTimes
    overdue: pd.DataFrame
    """The pending opt-outs older than the deadline, oldest first (at most ``limit``), each
    number as its SHA-256 (as the ``sha256`` export writes it: what leaves the warehouse never
    holds it raw)."""


def honour_report(
    warehouse: Warehouse, within: timedelta, now: datetime, *, limit: int = 100
) -> HonourReport:
    """The ledger's size, honour times and overdue rows at ``now``, against the deadline
    ``within``, from the ledger refreshed first."""
    hours = within / timedelta(hours=1)
    refresh_ledger(warehouse)
    with warehouse.connect() as (conn, tables):
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE ledger_now AS SELECT phone_number, status, received_at, "
            "honoured_at, received_from, received_row, "
            "epoch(honoured_at - received_at) / 3600 AS hours, "
            f"epoch($now - received_at) / 3600 AS waiting FROM {tables.ledger_episodes}",
            {"now": now},
        )
        try:
            episodes = scalar(conn, "SELECT count(*) FROM ledger_now")
            row = one_row(
                conn,
                """
                SELECT count(*), count(honoured_at), count(*) FILTER (WHERE status = 'pending'),
                       count(*) FILTER (WHERE status = 'pending' AND waiting > $hours),
                       count(*) FILTER (WHERE hours > $hours),
                       count(*) FILTER (WHERE status = 'refused_by_provider'),
                       quantile_cont(greatest(hours, 0), 0.5),
                       quantile_cont(greatest(hours, 0), 0.95),
                       max(waiting) FILTER (WHERE status = 'pending' AND waiting > $hours)
                FROM ledger_now WHERE received_at IS NOT NULL
                """,
                {"hours": hours},
            )
            overdue = conn.execute(
                """
                SELECT sha256(phone_number) AS phone_sha256, received_at, received_from,
                       received_row, round(waiting, 1) AS hours_waiting
                FROM ledger_now WHERE status = 'pending' AND waiting > $hours
                ORDER BY received_at, phone_sha256 LIMIT $limit
                """,
                {"hours": hours, "limit": limit},
            ).df()
        finally:
            conn.execute("DROP TABLE IF EXISTS ledger_now")
    assert row is not None  # an aggregate has its row
    return HonourReport(int(episodes), HonourTimes(*row), overdue)


def opted_out_numbers(warehouse: Warehouse, numbers: Sequence[str]) -> set[str]:
    """Which of ``numbers`` (E.164) must not be written to: on the published stop list, or with
    an opt-out episode in the ledger that has not ended (received but not yet on the list)."""
    candidates = pd.DataFrame({"phone_number": pd.Series(list(numbers), dtype=object)})
    refresh_ledger(warehouse)
    with warehouse.connect() as (conn, tables):
        listed = (
            f"SELECT phone_number FROM {tables.stop_list}"
            if stop_list_exists(conn, tables)
            else "SELECT NULL::VARCHAR AS phone_number WHERE false"
        )
        conn.register("audience_candidates", candidates)
        try:
            rows = conn.execute(
                f"""
                SELECT DISTINCT c.phone_number FROM audience_candidates AS c
                WHERE c.phone_number IN ({listed})
                   OR c.phone_number IN (
                       SELECT phone_number FROM {tables.ledger_episodes}
                       WHERE status <> 'ended')
                """
            ).fetchall()
        finally:
            conn.unregister("audience_candidates")
    return {number for (number,) in rows}
