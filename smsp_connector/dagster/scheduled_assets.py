"""An account's housekeeping asset (the lake's upkeep, the retention purge) with its own job and
schedule: one asset, run alone, on its cron in the account's time zone."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import dagster as dg

from smsp_connector.dagster.keys import ACCOUNT_TAG, SmspKeys
from smsp_connector.settings import Settings


@dataclass(frozen=True)
class ScheduledAsset:
    asset: dg.AssetsDefinition
    job: "dg.UnresolvedAssetJobDefinition"  # a string: dagster exports no such name
    schedule: dg.ScheduleDefinition | None


def scheduled(
    settings: Settings,
    asset: dg.AssetsDefinition,
    *,
    name: str,
    cron: str | None,
    what: str,
    execution_fn: Callable[[dg.ScheduleEvaluationContext], dg.RunRequest] | None = None,
) -> ScheduledAsset:
    """``asset`` with a job ``name`` (prefixed as the account's jobs are) that runs only it,
    and that job's schedule on ``cron`` (none: no schedule); ``what`` describes both.
    ``execution_fn`` picks a partitioned asset's partition at each tick."""
    keys = SmspKeys.of(settings)
    job = dg.define_asset_job(
        keys.job(name),
        selection=dg.AssetSelection.assets(asset.key),
        partitions_def=asset.partitions_def,
        tags={ACCOUNT_TAG: settings.account_label},
        description=what,
    )
    if cron is None:
        return ScheduledAsset(asset=asset, job=job, schedule=None)
    schedule = dg.ScheduleDefinition(
        name=keys.job(f"{name}_schedule"),
        job=job,
        cron_schedule=cron,
        execution_timezone=settings.timezone,
        description=f"{what} On '{cron}' ({settings.timezone}).",
        execution_fn=execution_fn,
    )
    return ScheduledAsset(asset=asset, job=job, schedule=schedule)


def days(age: timedelta) -> float:
    """A duration setting as the days an asset's metadata and description show."""
    return round(age.total_seconds() / 86_400, 6)
