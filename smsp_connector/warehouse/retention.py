"""Retention: raw rejected values cleared, and the numbers of opt-outs long ended replaced by a
keyed pseudonym, while everything still needed to honour an opt-out stays as it is.

Two kinds of personal data age out:

- **Raw rejected values** (``input_rejections.raw_value`` and its message, the audit rows of
  unusable input): recorded before ``rejected_before``, they are cleared; the file, row, reason
  and outcome stay.
- **Numbers no longer needed**: a number none of whose opt-out episodes is open (the ledger's
  status ``ended``, or never an opt-out: a deletion target, a duplicate row), that is on neither
  the published nor the staged stop list nor listed in ``stop_list_presence``, and whose last
  trace anywhere (audit row, plan, history, presence) is older than ``ended_before``. Each is
  replaced, in every table that holds it, by its *pseudonym* ``hmac:<hex>``: the HMAC-SHA256 of
  the E.164 text under the export's key (:func:`.exports.hmac_sha256_hex`), the value the HMAC
  export carries. The ledger keeps the episode under the pseudonym, so "this number's opt-out
  was honoured on D" still verifies when someone brings the number and the key.

A number whose opt-out stands, is pending, was refused by the provider, or has any trace newer
than the cutoff is never touched. The purge runs from a stored plan (the pseudonyms, never the
numbers, and the counts); applying it re-derives both sets under the plan's own cutoffs in the
transaction that changes them, and refuses, changing nothing, unless the plan's numbers all
still qualify and the raw values counted are the ones found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from smsp_connector.intake.phone_numbers import E164_SQL_PATTERN
from smsp_connector.warehouse.ledger import refresh_ledger_in
from smsp_connector.warehouse.plans import PLANS_LOCK, claim_in
from smsp_connector.warehouse.pseudonyms import pseudonym
from smsp_connector.warehouse.results import scalar
from smsp_connector.warehouse.sql import hidden_numbers
from smsp_connector.warehouse.stop_list import table_exists
from smsp_connector.warehouse.tables import Tables, Warehouse

PURGED = "[purged]"
"""The target of an audit row of unusable input once its raw value is cleared."""
PURGE_OPERATION = "purge"


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """The instants before which each kind of personal data has expired, and since when the
    provider's list must have been read for a number's opt-out to be known as ended."""

    rejected_before: datetime
    ended_before: datetime
    listed_since: datetime
    """A published snapshot at or after it is required to pseudonymise any number: since the
    last refresh the provider may have taken a new STOP reply the warehouse does not know."""


LIST_FRESHNESS = timedelta(hours=36)
"""How recent the last published snapshot must be (the refresh runs daily)."""


@dataclass(frozen=True)
class PurgeSurvey:
    """What a purge under ``cutoffs`` would change, read in one transaction."""

    cutoffs: Cutoffs
    rejected_values: int
    """``input_rejections`` rows whose raw value would be cleared."""
    rejected_audit_rows: int
    """Audit rows of unusable input whose raw value would be cleared."""
    numbers: pd.DataFrame
    """``phone_number`` and ``pseudonym`` of each number to replace, ordered by pseudonym
    (``pseudonym`` empty without a key); none while the list is stale."""
    kept_list_stale: int = 0
    """Numbers past retention kept whole: no published snapshot since ``listed_since``."""


def survey(warehouse: Warehouse, cutoffs: Cutoffs, key: bytes | None) -> PurgeSurvey:
    """What has expired at ``cutoffs``; nothing is changed."""
    return warehouse.transaction(lambda conn, tables: _survey(conn, tables, cutoffs, key))


def _survey(
    conn: duckdb.DuckDBPyConnection, tables: Tables, cutoffs: Cutoffs, key: bytes | None
) -> PurgeSurvey:
    numbers = conn.execute(_expired_numbers(conn, tables), {"before": cutoffs.ended_before}).df()
    fresh = scalar(
        conn,
        f"SELECT count(*) FROM {tables.snapshots} WHERE status = 'published' AND valid "
        "AND extracted_at >= ?",
        [cutoffs.listed_since],
    )
    stale = 0 if fresh else len(numbers)
    if stale:
        numbers = numbers.iloc[0:0]
    numbers["pseudonym"] = [pseudonym(key, n) if key else "" for n in numbers["phone_number"]]
    return PurgeSurvey(
        kept_list_stale=stale,
        cutoffs=cutoffs,
        rejected_values=scalar(
            conn,
            f"SELECT count(*) FROM {tables.input_rejections} "
            "WHERE recorded_at < ? AND raw_value IS NOT NULL",
            [cutoffs.rejected_before],
        ),
        rejected_audit_rows=scalar(
            conn,
            f"SELECT count(*) FROM {tables.audit_log} {_UNUSABLE_ROWS}",
            [cutoffs.rejected_before, PURGED],
        ),
        numbers=numbers.sort_values("pseudonym", ignore_index=True),
    )


_UNUSABLE_ROWS = "WHERE outcome = 'invalid_input' AND recorded_at < ? AND target <> ?"


def _expired_numbers(conn: duckdb.DuckDBPyConnection, tables: Tables) -> str:
    """SQL of the numbers no longer needed at ``$before`` (see the module)."""
    listed = [f"SELECT phone_number FROM {tables.presence} WHERE listed"]
    # A numberless row (a blocked snapshot's) would make NOT IN unknown for every number.
    listed += [
        f"SELECT phone_number FROM {tables.qualified(name)}"
        for name in ("stop_list", "stop_list_staged")
        if table_exists(conn, tables, name)
    ]
    needed = " UNION ALL ".join(
        [*listed, f"SELECT phone_number FROM {tables.ledger} WHERE status <> 'ended'"]
    )
    needed = f"SELECT phone_number FROM ({needed}) WHERE phone_number IS NOT NULL"
    return f"""
        WITH traces AS (
            SELECT target AS phone_number, recorded_at AS seen_at FROM {tables.audit_log}
            WHERE operation IN ('add', 'delete') AND outcome <> 'invalid_input'
            UNION ALL
            SELECT t.target, p.created_at FROM {tables.plan_targets} AS t
            JOIN {tables.plans} AS p USING (plan_id) WHERE p.operation IN ('add', 'delete')
            UNION ALL SELECT phone_number, observed_at FROM {tables.history}
            UNION ALL SELECT phone_number, last_seen_at FROM {tables.presence}
        )
        SELECT phone_number FROM traces
        WHERE regexp_matches(phone_number, '{E164_SQL_PATTERN}')
        GROUP BY phone_number
        HAVING max(seen_at) < $before AND phone_number NOT IN ({needed})
    """


class PurgeDrifted(RuntimeError):
    """What a purge plan would change is no longer what it planned: nothing was changed."""


@dataclass(frozen=True, slots=True)
class PurgeDone:
    """What a purge changed."""

    rejected_values: int
    rejected_audit_rows: int
    numbers: int
    number_rows: int
    """Rows (audit, plan targets, history, presence) where a number became its pseudonym."""


@dataclass(frozen=True, slots=True)
class PurgeAudit:
    """Who applies a purge, as its audit rows record it."""

    run_id: str
    job: str
    account: str | None


def apply_purge(
    warehouse: Warehouse,
    *,
    plan_id: str,
    planned: PurgeSurvey,
    key: bytes | None,
    audit: PurgeAudit,
) -> PurgeDone:
    """Apply the purge ``planned`` (the stored plan ``plan_id``: its cutoffs, counts and
    pseudonyms) in one transaction: re-derive what has expired under its cutoffs, refuse
    (:class:`PurgeDrifted`, nothing changed) unless the plan's numbers all still qualify and
    the raw values are the ones counted, claim the plan for ``audit.run_id``, change exactly
    the planned rows, and record one audit row per number and one for the raw values."""

    def purge(conn: duckdb.DuckDBPyConnection, tables: Tables) -> PurgeDone:
        if warehouse.is_lake:  # it refreshes the ledger too: no refresh commits beside it
            conn.execute(f"UPDATE {tables.locks} SET taken_at = now() WHERE name = 'ledger'")
        found = _survey(conn, tables, planned.cutoffs, key)
        _refuse_drift(planned, found)
        claimed = claim_in(conn, tables, plan_id, audit.run_id)
        if not claimed.claimed:
            raise PurgeDrifted(
                f"plan {plan_id} was applied by run {claimed.applied_by_run}: nothing changed"
            )
        numbers = found.numbers[found.numbers["pseudonym"].isin(planned.numbers["pseudonym"])]
        number_rows = _pseudonymise(conn, tables, numbers) if len(numbers) else 0
        cleared = _clear_rejected(conn, tables, planned.cutoffs.rejected_before)
        _record(conn, tables, numbers["pseudonym"], cleared, plan_id=plan_id, audit=audit)
        return PurgeDone(cleared[0], cleared[1], len(numbers), number_rows)

    return warehouse.transaction(purge, lock=PLANS_LOCK)


def _refuse_drift(planned: PurgeSurvey, found: PurgeSurvey) -> None:
    missing = set(planned.numbers["pseudonym"]) - set(found.numbers["pseudonym"])
    if missing:
        raise PurgeDrifted(
            f"{len(missing)} of the plan's numbers are needed again (a new opt-out, a listing "
            "or a run since the plan): nothing changed; run a new dry run"
        )
    counted = (planned.rejected_values, planned.rejected_audit_rows)
    if (found.rejected_values, found.rejected_audit_rows) != counted:
        raise PurgeDrifted(
            f"the plan counted {counted[0]} rejected values and {counted[1]} audit rows, the "
            f"warehouse now holds {found.rejected_values} and {found.rejected_audit_rows}: "
            "nothing changed; run a new dry run"
        )


def _pseudonymise(conn: duckdb.DuckDBPyConnection, tables: Tables, numbers: pd.DataFrame) -> int:
    """Replace each number by its pseudonym wherever it is held, hide it in the free text that
    may quote it in any form (file names, consent evidence, messages), and bring the ledger's
    incremental copy up to date; return the rows changed. A number purged before (then opted
    out again) merges into its pseudonym: its older presence row gives way to the newer."""
    conn.register("purge_numbers", numbers.loc[:, ["phone_number", "pseudonym"]])
    try:
        conn.execute(
            f"DELETE FROM {tables.presence} WHERE phone_number IN (SELECT pseudonym FROM "
            f"purge_numbers WHERE phone_number IN (SELECT phone_number FROM {tables.presence}))"
        )
        changed = 0
        for sql in (
            f"UPDATE {tables.audit_log} AS a SET target = n.pseudonym, "
            "detail = replace(a.detail, n.phone_number, n.pseudonym), "
            "provider_message = replace(a.provider_message, n.phone_number, n.pseudonym) "
            "FROM purge_numbers AS n WHERE a.target = n.phone_number "
            "AND a.operation IN ('add', 'delete')",
            f"UPDATE {tables.plan_targets} AS t SET target = n.pseudonym FROM purge_numbers AS n "
            f"WHERE t.target = n.phone_number AND t.plan_id IN (SELECT plan_id FROM "
            f"{tables.plans} WHERE operation IN ('add', 'delete'))",
            f"UPDATE {tables.history} AS h SET phone_number = n.pseudonym "
            "FROM purge_numbers AS n WHERE h.phone_number = n.phone_number",
            f"UPDATE {tables.presence} AS p SET phone_number = n.pseudonym "
            "FROM purge_numbers AS n WHERE p.phone_number = n.phone_number",
        ):
            changed += _count(conn.execute(sql))
        for table, column in _FREE_TEXT:
            changed += _count(conn.execute(_hide_in(tables.qualified(table), column)))
        # The ledger's incremental copy: the numbers' and their pseudonyms' episodes go and are
        # derived again from the tables as they now are, in this transaction.
        for table in (tables.ledger_episodes, tables.ledger_fingerprints):
            conn.execute(
                f"DELETE FROM {table} WHERE phone_number IN (SELECT phone_number FROM "
                "purge_numbers UNION ALL SELECT pseudonym FROM purge_numbers)"
            )
        refresh_ledger_in(conn, tables)
        return changed
    finally:
        conn.unregister("purge_numbers")


_FREE_TEXT = (
    ("audit_log", "source_file"),
    ("audit_log", "detail"),
    ("audit_log", "provider_message"),
    ("plans", "source_file"),
    ("plan_targets", "consent_source"),
    ("input_rejections", "source_file"),
    ("input_rejections", "message"),
)
"""Text that may quote a number in any form: a file named after it, consent evidence."""


def _hide_in(table: str, column: str) -> str:
    """SQL: hide what may be a number in ``column`` of the rows whose digits hold the last
    nine digits of a number purged (its national significant number in France)."""
    digits = f"regexp_replace(x.{column}, '[^0-9]', '', 'g')"
    return (
        f"UPDATE {table} AS x SET {column} = {hidden_numbers(f'x.{column}')} "
        f"WHERE x.{column} IS NOT NULL AND EXISTS (SELECT 1 FROM purge_numbers AS n "
        "WHERE contains("
        f"{digits}, right(regexp_replace(n.phone_number, '[^0-9]', '', 'g'), 9)))"
    )


def _clear_rejected(
    conn: duckdb.DuckDBPyConnection, tables: Tables, before: datetime
) -> tuple[int, int]:
    values = _count(
        conn.execute(
            f"UPDATE {tables.input_rejections} SET raw_value = NULL, "
            "message = 'raw value purged after its retention (' || reason || ')' "
            "WHERE recorded_at < ? AND raw_value IS NOT NULL",
            [before],
        )
    )
    audit_rows = _count(
        conn.execute(
            f"UPDATE {tables.audit_log} SET target = ?, detail = NULL {_UNUSABLE_ROWS}",
            [PURGED, before, PURGED],
        )
    )
    return values, audit_rows


def _count(result: duckdb.DuckDBPyConnection) -> int:
    rows = result.fetchall()
    return int(rows[0][0]) if rows else 0


def record_dry_run(
    warehouse: Warehouse, planned: PurgeSurvey, *, plan_id: str, audit: PurgeAudit
) -> None:
    """A dry run's audit rows: what the plan would change, nothing changed."""
    counts = (planned.rejected_values, planned.rejected_audit_rows)
    pseudonyms = planned.numbers["pseudonym"][planned.numbers["pseudonym"] != ""]
    warehouse.transaction(
        lambda conn, tables: _record(
            conn, tables, pseudonyms, counts, plan_id=plan_id, audit=audit, dry_run=True
        )
    )


def _record(
    conn: duckdb.DuckDBPyConnection,
    tables: Tables,
    pseudonyms: pd.Series,
    cleared: tuple[int, int],
    *,
    plan_id: str,
    audit: PurgeAudit,
    dry_run: bool = False,
) -> None:
    """The purge's audit rows: one per number (its pseudonym), one for the raw values."""
    rows = pd.DataFrame(
        {
            "target": [*pseudonyms, "input_rejections"],
            "detail": [
                *(
                    [f"number {'to replace' if dry_run else 'replaced'} by its pseudonym"]
                    * len(pseudonyms)
                ),
                f"{cleared[0]} rejected raw values and {cleared[1]} audit rows of unusable "
                f"input {'to clear' if dry_run else 'cleared'}",
            ],
        }
    )
    conn.register("purge_audit", rows)
    try:
        conn.execute(
            f"INSERT INTO {tables.audit_log} (recorded_at, run_id, job, operation, dry_run, "
            "target, outcome, detail, account, plan_id) "
            "SELECT now(), ?, ?, ?, ?, target, ?, detail, ?, ? FROM purge_audit",
            [
                audit.run_id,
                audit.job,
                PURGE_OPERATION,
                dry_run,
                "dry_run" if dry_run else "applied",
                audit.account,
                plan_id,
            ],
        )
    finally:
        conn.unregister("purge_audit")
