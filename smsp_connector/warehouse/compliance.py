"""The figures of the monthly compliance report, read from the ledger, the audit log, the
plans and the input rejections (:mod:`smsp_connector.operations.compliance_report` lays them
out). A month is a calendar month in the account's time zone, as a DPO counts it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd

from smsp_connector.intake.phone_numbers import masked
from smsp_connector.warehouse.ledger import refresh_ledger
from smsp_connector.warehouse.pseudonyms import PSEUDONYM_PREFIX, pseudonym
from smsp_connector.warehouse.retention import PURGE_OPERATION
from smsp_connector.warehouse.sql import hidden_numbers
from smsp_connector.warehouse.tables import DELETION_ROWS, Tables, Warehouse

MONTHLY_COLUMNS = (
    "month", "received", "provider_opt_outs", "honoured_in_time", "honoured_late",
    "not_honoured", "deletions", "deletions_with_consent", "rejected_rows", "purged_numbers",
    "purged_rejected_values",
)  # fmt: skip


@dataclass(frozen=True)
class MonthDetail:
    """One month's figures and the tables behind them; no phone number whole (see ``late``,
    and free text through :func:`.sql.hidden_numbers`)."""

    month: date
    """The month's first day."""
    figures: pd.DataFrame
    """One row per month (:data:`MONTHLY_COLUMNS`), the last ``history`` months up to
    ``month``, oldest first."""
    by_source: pd.DataFrame
    """``source``, ``opt_outs``: where the month's opt-outs were received."""
    late: pd.DataFrame
    """``phone``, ``received_at``, ``honoured_at``, ``hours``: the month's opt-outs honoured
    after the deadline, or not yet (``honoured_at`` empty), slowest first; ``phone`` is the
    number's HMAC pseudonym with the key (unsalted hashes of phone numbers can be reversed),
    else masked."""
    consent: pd.DataFrame
    """``consent_source``, ``deletions``: the month's deletions by their consent evidence."""
    rejected: pd.DataFrame
    """``reason``, ``rows``: the month's rejected input rows."""
    purges: pd.DataFrame
    """``applied_at``, ``plan_id``, ``numbers``, ``rejected_values``: the month's purges."""


def month_bounds(month: date, timezone: str) -> tuple[datetime, datetime]:
    """The instants, in UTC, a calendar month starts and ends at in ``timezone`` (its clock
    changes included: March in Paris is 743 hours; in UTC, as Python subtracts two times of
    one zone by their wall clocks)."""
    zone = ZoneInfo(timezone)
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return (
        datetime(first.year, first.month, 1, tzinfo=zone).astimezone(UTC),
        datetime(following.year, following.month, 1, tzinfo=zone).astimezone(UTC),
    )


def previous_months(month: date, count: int) -> list[date]:
    """The ``count`` months up to ``month``, oldest first."""
    months = [month.replace(day=1)]
    while len(months) < count:
        months.insert(0, (months[0] - timedelta(days=1)).replace(day=1))
    return months


def month_detail(
    warehouse: Warehouse,
    month: date,
    *,
    within: timedelta,
    timezone: str,
    history: int = 12,
    limit: int = 50,
    key: bytes | None = None,
) -> MonthDetail:
    """The report's data for ``month`` against the deadline ``within``, from the ledger
    refreshed first."""
    months = previous_months(month, history)
    bounds = pd.DataFrame(
        [(m, *month_bounds(m, timezone)) for m in months], columns=["month", "starts", "ends"]
    )
    start, end = month_bounds(month, timezone)
    hours = within / timedelta(hours=1)
    refresh_ledger(warehouse)
    with warehouse.connect() as (conn, tables):
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE report_ledger AS SELECT phone_number, origin, "
            "received_at, received_from, listed_at, honoured_at, status, "
            f"epoch(honoured_at - received_at) / 3600 AS hours FROM {tables.ledger_episodes}"
        )
        conn.register("report_months", bounds)
        try:
            figures = _figures(conn, tables, hours)
            window = {"start": start, "end": end}
            detail = MonthDetail(
                month=month.replace(day=1),
                figures=figures,
                by_source=conn.execute(_BY_SOURCE, window).df(),
                late=_shown(
                    conn.execute(_LATE, {**window, "hours": hours, "limit": limit}).df(), key
                ),
                consent=conn.execute(
                    _CONSENT.format(
                        t=tables,
                        hidden_consent=hidden_numbers("p.consent_source"),
                        deletion_rows=DELETION_ROWS,
                    ),
                    window,
                ).df(),
                rejected=conn.execute(
                    f"SELECT reason, count(*) AS rows FROM {tables.input_rejections} "
                    "WHERE recorded_at >= $start AND recorded_at < $end "
                    "GROUP BY reason ORDER BY rows DESC, reason",
                    window,
                ).df(),
                purges=conn.execute(
                    _PURGES.format(t=tables), {**window, "operation": PURGE_OPERATION}
                ).df(),
            )
        finally:
            conn.unregister("report_months")
            conn.execute("DROP TABLE IF EXISTS report_ledger")
    return detail


def _shown(late: pd.DataFrame, key: bytes | None) -> pd.DataFrame:
    phones = [
        n if n.startswith(PSEUDONYM_PREFIX) else pseudonym(key, n) if key else masked(n)
        for n in late.pop("phone_number")
    ]
    late.insert(0, "phone", pd.Series(phones, index=late.index, dtype=object))
    return late


def _figures(conn: duckdb.DuckDBPyConnection, tables: Tables, hours: float) -> pd.DataFrame:
    in_month = "{at} >= m.starts AND {at} < m.ends"
    received = in_month.format(at="l.received_at")
    frame = conn.execute(
        f"""
        SELECT m.month,
            (SELECT count(*) FROM report_ledger AS l WHERE {received}) AS received,
            (SELECT count(*) FROM report_ledger AS l WHERE l.origin = 'provider'
                AND {in_month.format(at="l.listed_at")}) AS provider_opt_outs,
            (SELECT count(*) FROM report_ledger AS l WHERE {received}
                AND l.hours <= $hours) AS honoured_in_time,
            (SELECT count(*) FROM report_ledger AS l WHERE {received}
                AND l.hours > $hours) AS honoured_late,
            (SELECT count(*) FROM report_ledger AS l WHERE {received}
                AND l.honoured_at IS NULL AND l.status <> 'ended') AS not_honoured,
            (SELECT count(*) FROM {tables.audit_log} AS a WHERE {DELETION_ROWS}
                AND {in_month.format(at="a.recorded_at")}) AS deletions,
            (SELECT count(*) FROM {tables.audit_log} AS a JOIN {tables.plan_targets} AS p
                ON p.plan_id = a.plan_id AND p.target = a.target
                WHERE {DELETION_ROWS} AND p.consent_at IS NOT NULL
                AND {in_month.format(at="a.recorded_at")}) AS deletions_with_consent,
            (SELECT count(*) FROM {tables.input_rejections} AS r
                WHERE {in_month.format(at="r.recorded_at")}) AS rejected_rows,
            (SELECT coalesce(sum(p.target_count), 0) FROM {tables.plans} AS p
                WHERE p.operation = '{PURGE_OPERATION}'
                AND {in_month.format(at="p.applied_at")}) AS purged_numbers,
            (SELECT coalesce(sum(CAST(p.options->>'rejected_values' AS BIGINT)), 0)
                FROM {tables.plans} AS p WHERE p.operation = '{PURGE_OPERATION}'
                AND {in_month.format(at="p.applied_at")}) AS purged_rejected_values
        FROM report_months AS m ORDER BY m.month
        """,
        {"hours": hours},
    ).df()
    frame["month"] = [value.date() if hasattr(value, "date") else value for value in frame.month]
    return frame.astype({name: "int64" for name in MONTHLY_COLUMNS[1:]})


_BY_SOURCE = """
    SELECT CASE WHEN origin = 'provider' THEN 'provider (a STOP reply it took itself)'
                WHEN received_from LIKE 'table:%' OR received_from = 'command line'
                    THEN {source}
                ELSE {file} END AS source,
           count(*) AS opt_outs
    FROM report_ledger
    WHERE (origin = 'connector' AND received_at >= $start AND received_at < $end)
       OR (origin = 'provider' AND listed_at >= $start AND listed_at < $end)
    GROUP BY source ORDER BY opt_outs DESC, source
""".format(
    source=hidden_numbers("received_from"),
    file=hidden_numbers("regexp_extract(received_from, '[^/\\\\]+$')"),
)

_LATE = """
    SELECT phone_number, received_at, honoured_at,
           round(coalesce(hours, epoch(now() - received_at) / 3600), 1) AS hours
    FROM report_ledger
    WHERE received_at >= $start AND received_at < $end
      AND (hours > $hours OR (honoured_at IS NULL AND status <> 'ended'))
    ORDER BY hours DESC, sha256(phone_number) LIMIT $limit
"""

_CONSENT = """
    SELECT coalesce({hidden_consent}, '(no consent recorded)') AS consent_source,
           count(*) AS deletions
    FROM {t.audit_log} AS a
    LEFT JOIN {t.plan_targets} AS p ON p.plan_id = a.plan_id AND p.target = a.target
    WHERE {deletion_rows} AND a.recorded_at >= $start AND a.recorded_at < $end
    GROUP BY ALL ORDER BY deletions DESC, consent_source
"""

_PURGES = """
    SELECT applied_at, plan_id, target_count AS numbers,
           CAST(options->>'rejected_values' AS BIGINT) AS rejected_values
    FROM {t.plans}
    WHERE operation = $operation AND applied_at >= $start AND applied_at < $end
    ORDER BY applied_at
"""
