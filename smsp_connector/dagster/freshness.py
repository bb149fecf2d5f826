"""How fresh the stop list and its exports must be: refreshed before the day's sends start.

:func:`stop_list_freshness` builds a Dagster ``FreshnessPolicy`` from the deployment's refresh
schedule. Dagster's freshness daemon (run by ``dagster dev`` and ``dagster-daemon``, on unless
the instance sets ``freshness: enabled: false``) evaluates it and shows each asset as fresh or
stale (``PASS``/``FAIL``) in the UI.

A cron policy's asset is fresh when it materialized within ``lower_bound_delta`` before the last
deadline tick. The deadline is the refresh's own cron shifted by ``grace`` (``"0 6 * * *"``
→ ``"0 7 * * *"``), so a refresh that failed or did not run is flagged at 07:00 that day,
before the day's sends start. A deadline equal to the refresh's own tick would flag it only at
the next day's tick, a day late.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache

import dagster as dg
from dagster._utils.schedules import get_smallest_cron_interval

from smsp_connector.settings import Settings

LOWER_BOUND = timedelta(hours=24)
"""How long before the deadline a materialization still counts: one day."""
UNSCHEDULED_WINDOW = timedelta(hours=26)
"""Without a schedule: the longest gap between two refreshes (a day, and two hours of slack)."""
DEFAULT_GRACE = timedelta(hours=1)
"""How long after the refresh's tick it must have materialized."""


def stop_list_freshness(
    settings: Settings,
    *,
    grace: timedelta = DEFAULT_GRACE,
    deadline_cron: str | None = None,
) -> dg.FreshnessPolicy:
    """The freshness policy of the stop list and its exports.

    With ``settings.schedule``: a cron policy in ``settings.timezone`` whose deadline is
    ``deadline_cron``, or else the schedule shifted by ``grace`` (when the schedule is too
    intricate to shift, see :func:`shift_cron`, the schedule itself), with a lower bound of
    24 hours (or the deadline's smallest interval, if shorter: Dagster refuses a longer one).
    Without a schedule: fresh when materialized in the last 26 hours.
    """
    if settings.schedule is None and deadline_cron is None:
        return dg.FreshnessPolicy.time_window(fail_window=UNSCHEDULED_WINDOW)
    deadline = deadline_cron or shift_cron(settings.schedule, grace) or settings.schedule
    return _cron_policy(deadline, settings.timezone)


@cache
def _cron_policy(deadline: str, timezone: str) -> dg.FreshnessPolicy:
    """The cron policy of one deadline, made once per process: finding the cron's smallest
    interval walks its ticks (~20 ms), here and again in Dagster's own check of the bound,
    for each asset of each code location load. The policy is an immutable record."""
    # The same bound CronFreshnessPolicy checks its lower_bound_delta against.
    lower_bound = min(LOWER_BOUND, get_smallest_cron_interval(deadline))
    return dg.FreshnessPolicy.cron(
        deadline_cron=deadline, lower_bound_delta=lower_bound, timezone=timezone
    )


def shift_cron(cron: str | None, delay: timedelta) -> str | None:
    """``cron`` with every tick ``delay`` (whole minutes, under a day) later, or ``None`` when
    that cannot be written by changing its minute and hour fields alone: the minute must be one
    number and the hour one number or a list of numbers; a tick pushed past midnight needs
    every day field to be ``*``."""
    if cron is None or delay < timedelta(0) or delay >= timedelta(days=1) or delay.seconds % 60:
        return None
    fields = cron.split()
    if len(fields) != 5 or not fields[0].isdigit():
        return None
    minute, hours, days = int(fields[0]), fields[1].split(","), fields[2:]
    if minute > 59 or not all(hour.isdigit() and int(hour) <= 23 for hour in hours):
        return None
    offset = delay.seconds // 60
    ticks = sorted({int(hour) * 60 + minute + offset for hour in hours})
    if ticks[-1] >= 24 * 60:
        if days != ["*", "*", "*"]:
            return None
        ticks = sorted({tick % (24 * 60) for tick in ticks})
    # Every tick moved by the same offset: they share one minute.
    shifted_hours = ",".join(str(tick // 60) for tick in ticks)
    return " ".join([str(ticks[0] % 60), shifted_hours, *days])
