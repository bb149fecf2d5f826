"""The monthly compliance report as an asset of its account: one partition per calendar month
(in the account's time zone), its job, and a schedule that writes last month's report (on the 1st at
07:00 by default) (:mod:`smsp_connector.operations.compliance_report` lays it out)."""

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from smsp_connector.dagster.keys import SmspKeys, asset_attributes
from smsp_connector.dagster.resource import resource_keys, step_warehouse
from smsp_connector.dagster.scheduled_assets import ScheduledAsset, scheduled
from smsp_connector.operations.compliance_report import build_report, markdown, write_html
from smsp_connector.settings import Settings

FIRST_MONTH = "2025-01-01"
"""The first month a report can be made for (earlier months hold nothing of this project's)."""


def build_compliance_report(settings: Settings) -> ScheduledAsset:
    """The report asset (group ``<group>_reports``: a partitioned asset in the extract's group
    would make its "Materialize all" ask for a month), its job and its monthly schedule. It
    reads the ledger without depending on its asset: ``--select 'smsp/stop_list*'`` (the
    stop list and all that follows) would otherwise take in a partitioned asset and fail."""
    keys = SmspKeys.of(settings)
    months = dg.MonthlyPartitionsDefinition(start_date=FIRST_MONTH, timezone=settings.timezone)
    directory = f"{settings.export_dir.rstrip('/')}/reports"

    @dg.asset(
        key=keys.compliance_report,
        partitions_def=months,
        pool=settings.pool,
        required_resource_keys=resource_keys(settings),
        description="The month's opt-outs by source, honoured within the deadline or late "
        "(with ages), deletions by consent evidence, rejected input by reason, retention "
        f"purges, and the last 12 months as a chart; as Markdown here and as an HTML file in "
        f"{directory}/ for the DPO. No phone number whole.",
        **{**asset_attributes(settings, {"html"}), "group_name": f"{settings.group_name}_reports"},
    )
    def compliance_report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        report = build_report(
            step_warehouse(context, settings),
            date.fromisoformat(context.partition_key),
            account=settings.account_label,
            within=settings.honour_within,
            timezone=settings.timezone,
            key=settings.resolve_hmac_key(),
        )
        path = write_html(report, directory)
        context.log.info(f"{report.title}: {path}")
        return dg.MaterializeResult(
            metadata={
                "report": dg.MetadataValue.md(markdown(report)),
                "path": dg.MetadataValue.path(path),
                **report.figures,
            }
        )

    return scheduled(
        settings,
        compliance_report,
        name="smsp_compliance_report",
        cron=settings.report_schedule,
        what="Write the last complete month's compliance report.",
        execution_fn=_last_month(settings.timezone),
    )


def _last_month(timezone: str):
    """The schedule's evaluation: the month before the tick's, in the account's time zone
    (Dagster's partitioned schedules take no cron for time partitions)."""

    def run_last_month(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        today = context.scheduled_execution_time.astimezone(ZoneInfo(timezone)).date()
        month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
        return dg.RunRequest(partition_key=f"{month:%Y-%m-%d}")

    return run_last_month
