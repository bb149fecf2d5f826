"""The refresh by declarative automation (``Settings.refresh_by = "automation"``), the other way
to run it on the account's cron than the refresh job's schedule."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from smsp_connector.dagster.keys import SmspKeys
from smsp_connector.settings import Settings


@dataclass(frozen=True)
class RefreshConditions:
    """The stop list's condition, and that of what follows it (history, exports)."""

    stop_list: dg.AutomationCondition | None
    followers: dg.AutomationCondition | None


def refresh_conditions(settings: Settings) -> RefreshConditions:
    """None for both unless the refresh runs by automation. Then the stop list runs on the
    cron (its upstream, the provider's list, is observed only by push and delete runs: it is
    not waited for), and its history and exports once it is updated and its blocking checks
    passed, so a list that failed them is never exported."""
    if settings.refresh_by != "automation" or settings.schedule is None:  # None: refused
        return RefreshConditions(None, None)
    provider = dg.AssetSelection.assets(SmspKeys.of(settings).provider_stop_list)
    return RefreshConditions(
        stop_list=dg.AutomationCondition.on_cron(settings.schedule, settings.timezone).ignore(
            provider
        ),
        followers=dg.AutomationCondition.eager()
        & dg.AutomationCondition.all_deps_blocking_checks_passed(),
    )
