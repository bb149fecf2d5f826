"""A DuckLake warehouse's upkeep as an asset of its account, with its job and weekly schedule
(:mod:`smsp_connector.warehouse.upkeep` does the work; ``smsp lake upkeep`` is the same from
the command line). Defined only for a ``ducklake:`` database: a DuckDB file needs none."""

from dataclasses import asdict

import dagster as dg
from pydantic import Field

from smsp_connector.dagster.keys import SmspKeys, asset_attributes
from smsp_connector.dagster.resource import resource_keys, step_warehouse
from smsp_connector.dagster.scheduled_assets import ScheduledAsset, days, scheduled
from smsp_connector.settings import Settings
from smsp_connector.warehouse.lake import is_lake
from smsp_connector.warehouse.upkeep import lake_upkeep


class LakeUpkeepConfig(dg.Config):
    dry_run: bool | None = Field(
        default=None,
        description="Count what would go and change nothing (null: the account's setting).",
    )


def build_lake_upkeep(settings: Settings) -> ScheduledAsset | None:
    """The upkeep asset, job and schedule of a lake account; ``None`` for a DuckDB file."""
    if not is_lake(settings.database):
        return None
    keys = SmspKeys.of(settings)
    expire, delete = settings.lake_expire_after, settings.lake_delete_after

    @dg.asset(
        key=keys.lake_upkeep,
        pool=settings.pool,
        required_resource_keys=resource_keys(settings),
        description=f"The lake's upkeep: small files merged, snapshots older than "
        f"{days(expire):g} days expired, files scheduled for deletion more than "
        f"{days(delete):g} days ago deleted from the data path. The warehouse's tables "
        "(history included) keep every row.",
        **asset_attributes(settings, {"ducklake"}),
    )
    def upkeep(context: dg.AssetExecutionContext, config: LakeUpkeepConfig) -> dg.MaterializeResult:
        dry_run = settings.lake_upkeep_dry_run if config.dry_run is None else config.dry_run
        warehouse = step_warehouse(context, settings)
        done = lake_upkeep(
            warehouse, expire_older_than=expire, delete_older_than=delete, dry_run=dry_run
        )
        context.log.info(
            f"lake upkeep{' (dry run)' if dry_run else ''}: {done.files_merged} files merged "
            f"into {done.files_created}, {done.snapshots_expired} snapshots expired, "
            f"{done.files_deleted} files deleted; {done.files_before} -> {done.files_after} "
            "files in the data path"
        )
        return dg.MaterializeResult(
            metadata={
                **asdict(done),
                "expire_after_days": days(expire),
                "delete_after_days": days(delete),
            }
        )

    return scheduled(
        settings,
        upkeep,
        name="smsp_lake_upkeep",
        cron=settings.lake_upkeep_schedule,
        what="Merge the lake's small files, expire old snapshots, delete unneeded files.",
    )
