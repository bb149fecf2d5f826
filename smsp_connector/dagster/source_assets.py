"""Opt-outs pushed from warehouse tables: for each push source, the source as an asset
(``<prefix>/opt_outs_<name>``) and the push of its new rows
(``<prefix>/stop_list_additions_<name>``), which runs on the account's schedule or as soon as
an upstream Dagster asset it reads is materialized (a declarative automation condition)."""

from dataclasses import dataclass
from typing import Any

import dagster as dg
from pydantic import Field

from smsp_connector.dagster.keys import SmspKeys, asset_attributes
from smsp_connector.dagster.metadata import TableMetadataSet
from smsp_connector.dagster.resource import resource_keys, step_context
from smsp_connector.operations.table_sources import push_source, source_query
from smsp_connector.settings import PushSource, Settings


class SourcePushConfig(dg.Config):
    dry_run: bool = Field(default=False, description="Plan and record, send nothing.")
    retry_rejected: bool = Field(
        default=False,
        description="Send again the numbers the provider refused (code 9) in earlier runs.",
    )


@dataclass(frozen=True)
class SourceAssets:
    """What :func:`build_source_assets` built for one push source."""

    source: dg.AssetSpec
    push: dg.AssetsDefinition


def build_source_assets(settings: Settings, source: PushSource) -> SourceAssets:
    keys = SmspKeys.of(settings)
    source_key = keys.key(f"opt_outs_{source.name}")
    upstream = [dg.AssetKey.from_user_string(source.asset)] if source.asset else []
    where = source.source_table or "a query"
    spec = dg.AssetSpec(
        key=source_key,
        deps=upstream,
        description=f"Opt-outs read from {where} of the warehouse (phone column "
        f"{source.phone_column!r}"
        + (f", cursor {source.cursor_column!r}" if source.cursor_column else "")
        + ").",
        metadata={"query": source_query(source)}
        | (dict(TableMetadataSet(table_name=source.source_table)) if source.source_table else {}),
        **asset_attributes(settings, {"duckdb"}, changes=True),
    )
    # The source itself is an external asset that may never be reported: only the upstream
    # Dagster asset (if any) decides, through eager; the schedule covers plain tables.
    condition = dg.AutomationCondition.eager().ignore(dg.AssetSelection.assets(source_key))
    if settings.schedule:
        condition = condition | dg.AutomationCondition.on_cron(settings.schedule, settings.timezone)

    @dg.asset(
        key=keys.key(f"stop_list_additions_{source.name}"),
        deps=[source_key, *upstream],
        pool=settings.pool,
        required_resource_keys=resource_keys(settings, smsp=True),
        automation_condition=condition,
        description=f"The new opt-outs of {source_key.to_user_string()} pushed to "
        "/stop-sms/add (only the missing ones), one audit row per source row; the source's "
        "cursor then moves over the rows whose outcome is final.",
        **asset_attributes(settings, {"duckdb"}, changes=True),
    )
    def push(context: dg.AssetExecutionContext, config: SourcePushConfig) -> dg.MaterializeResult:
        try:
            with step_context(context, settings) as run:
                report = push_source(
                    source, run, dry_run=config.dry_run, retry_rejected=config.retry_rejected
                )
        except ValueError as error:  # a column the source does not have
            raise dg.Failure(description=f"{source_key.to_user_string()}: {error}") from None
        metadata: dict[str, Any] = {
            **report.counts,
            **TableMetadataSet(row_count=report.summary.requested),
            "source": source_key.to_user_string(),
        }
        return dg.MaterializeResult(metadata=metadata)

    return SourceAssets(spec, push)
