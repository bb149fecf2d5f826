"""The retention purge as an asset of its account, with its job and daily schedule
(:mod:`smsp_connector.operations.retention` does the work; ``smsp retention purge`` is the same
from the command line)."""

import dagster as dg
from pydantic import Field

from smsp_connector.dagster.keys import SmspKeys, asset_attributes
from smsp_connector.dagster.resource import resource_keys, step_warehouse
from smsp_connector.dagster.scheduled_assets import ScheduledAsset, days, scheduled
from smsp_connector.operations.retention import Retention, purge
from smsp_connector.settings import Settings
from smsp_connector.warehouse.retention import PurgeAudit


class RetentionPurgeConfig(dg.Config):
    dry_run: bool = Field(
        default=False,
        description="Store the plan and count what would go; change nothing (apply the plan "
        "later with `smsp plans apply ID`).",
    )


def build_retention_purge(settings: Settings) -> ScheduledAsset:
    """The purge asset, its job and its schedule (``retention_schedule``)."""
    keys = SmspKeys.of(settings)
    retention = Retention(rejected=settings.retain_rejected, ended=settings.retain_ended)

    @dg.asset(
        key=keys.retention_purge,
        pool=settings.pool,
        required_resource_keys=resource_keys(settings),
        description=f"Personal data past its retention: raw rejected values older than "
        f"{days(retention.rejected):g} days cleared; numbers whose opt-outs all ended (or "
        f"never were one) and with no trace for {days(retention.ended):g} days replaced by "
        "their HMAC pseudonym. A standing, pending or refused opt-out is never touched. "
        "Each run stores its plan, applies it exactly and audits it.",
        **asset_attributes(settings, {"duckdb"}),
    )
    def retention_purge(
        context: dg.AssetExecutionContext, config: RetentionPurgeConfig
    ) -> dg.MaterializeResult:
        report = purge(
            step_warehouse(context, settings),
            retention,
            key=settings.resolve_hmac_key(),
            audit=PurgeAudit(context.run.run_id, context.run.job_name, settings.account_label),
            dry_run=config.dry_run,
        )
        counts = report.counts()
        context.log.info(
            f"retention purge{' (dry run)' if report.dry_run else ''}, plan {report.plan_id}: "
            + ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in counts.items())
        )
        if report.numbers_kept_without_key:
            context.log.warning(
                f"{report.numbers_kept_without_key} numbers past retention kept whole: no HMAC "
                "key (hmac_key / SMSP_EXPORT_HMAC_KEY) to make their pseudonyms"
            )
        return dg.MaterializeResult(
            metadata={
                **counts,
                "plan_id": report.plan_id,
                "dry_run": report.dry_run,
                "rejected_before": dg.MetadataValue.timestamp(report.rejected_before),
                "ended_before": dg.MetadataValue.timestamp(report.ended_before),
                "retain_rejected_days": days(retention.rejected),
                "retain_ended_days": days(retention.ended),
                "key_id": report.key_id or "",
            }
        )

    return scheduled(
        settings,
        retention_purge,
        name="smsp_retention",
        cron=settings.retention_schedule,
        what="Purge personal data past its retention, from a stored plan, audited.",
    )
