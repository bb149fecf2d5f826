"""Dagster assets that extract the stop list: snapshot (with its checks), history and the two
suppression exports. A factory, so a deployment picks its names, thresholds and paths."""

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_pandera import pandera_schema_to_dagster_type
from pydantic import Field

from smsp_connector.dagster.automation import refresh_conditions
from smsp_connector.dagster.checks import stop_list_check_results, stop_list_check_specs
from smsp_connector.dagster.freshness import stop_list_freshness
from smsp_connector.dagster.keys import SmspKeys, asset_attributes
from smsp_connector.dagster.metadata import TableMetadataSet, frame_table
from smsp_connector.dagster.resource import resource_keys, step_smsp, step_warehouse
from smsp_connector.dagster.table_assets import table_schema
from smsp_connector.operations.extract import Extraction, extract_stop_list
from smsp_connector.settings import Settings
from smsp_connector.warehouse import (
    ExportForm,
    StopListSchema,
    export_suppression_list,
    recent_changes,
    table_name,
    update_history,
)
from smsp_connector.warehouse.columns import declared_columns
from smsp_connector.warehouse.ledger import honour_report


class StopListConfig(dg.Config):
    accept_shrink: bool = Field(
        default=False,
        description=(
            "Accept, for this run only, a snapshot that lost more than the allowed share of the "
            "previous one (after checking with the provider that it is intended)."
        ),
    )


HISTORY_TABLE = "stop_list_history"


@dataclass(frozen=True)
class ExtractAssets:
    """What :func:`build_extract_assets` built."""

    provider: dg.AssetsDefinition
    """The list as the provider holds it (observable): downstream of the assets that change
    it, upstream of the stop list. A push or delete run observes it, with no call, between its
    calls and the refresh, so that the refresh follows them; the stop list's own upstream is
    then never an asset the UI would call never materialized."""
    stop_list: dg.AssetsDefinition
    history: dg.AssetsDefinition
    ledger: dg.AssetsDefinition
    """One row per number and opt-out episode, with the honour-time check."""
    export: dg.AssetsDefinition
    export_sha256: dg.AssetsDefinition
    export_hmac: dg.AssetsDefinition | None = None
    """Built when the settings name an HMAC key variable (``SMSP_EXPORT_HMAC_KEY``)."""

    @property
    def assets(self) -> list[dg.AssetsDefinition]:
        return [self.provider, *self.materialized]

    @property
    def materialized(self) -> list[dg.AssetsDefinition]:
        """The stop list, its history and the exports: what the refresh materializes."""
        exports = [self.export, self.export_sha256, self.export_hmac]
        return [
            self.stop_list,
            self.history,
            self.ledger,
            *(asset for asset in exports if asset),
        ]

    @property
    def selection(self) -> dg.AssetSelection:
        """The daily refresh: the four assets and the stop list's checks."""
        return dg.AssetSelection.assets(*self.materialized)


def build_extract_assets(
    settings: Settings, *, upstream: Sequence[dg.AssetKey] = ()
) -> ExtractAssets:
    """``upstream``: assets that change the provider's list (the push and delete outcomes),
    drawn as the parents of the provider's list, itself the stop list's parent."""
    keys = SmspKeys.of(settings)
    conditions = refresh_conditions(settings)

    def export(key: dg.AssetKey, form: ExportForm) -> dg.AssetsDefinition:
        """One export of the stop list, refreshed as its history is."""
        return _export_asset(settings, key, keys.stop_list, form, conditions.followers)

    return ExtractAssets(
        provider=_provider_asset(settings, keys, upstream),
        stop_list=_stop_list_asset(settings, keys, conditions.stop_list),
        history=_history_asset(settings, keys, conditions.followers),
        ledger=_ledger_asset(settings, keys, conditions.followers),
        export=export(keys.export, ExportForm.PLAIN),
        export_sha256=export(keys.export_sha256, ExportForm.SHA256),
        export_hmac=export(keys.export_hmac, ExportForm.HMAC_SHA256)
        if settings.hmac_key_var
        else None,
    )


def _stop_list_asset(
    settings: Settings, keys: SmspKeys, condition: dg.AutomationCondition | None
) -> dg.AssetsDefinition:
    """The provider's list validated and published as ``stop_list`` (write-audit-publish)."""
    with warnings.catch_warnings():  # a beta helper, used only to show the columns in the UI
        warnings.simplefilter("ignore", dg.BetaWarning)
        column_schema = pandera_schema_to_dagster_type(StopListSchema).metadata["schema"].schema
    table = table_name(settings.schema, "stop_list")

    @dg.asset(
        key=keys.stop_list,
        deps=[keys.provider_stop_list],
        **asset_attributes(settings, {"duckdb", "pandas"}),
        check_specs=stop_list_check_specs(keys.stop_list, settings.max_shrink_share),
        freshness_policy=stop_list_freshness(settings),
        automation_condition=condition,
        metadata=dict(TableMetadataSet(table_name=table, column_schema=column_schema)),
        description=(
            "The provider's whole stop list (GET /stop-sms/list), validated with pandera and "
            f"stored as {table}; created_at is the provider's Paris time as a UTC instant."
        ),
        pool=settings.pool,
        required_resource_keys=resource_keys(settings, smsp=True),
    )
    def stop_list(
        context: dg.AssetExecutionContext, config: StopListConfig
    ) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
        smsp = step_smsp(context, settings)
        warehouse = step_warehouse(context, settings)
        with smsp.get_client() as client:
            extraction = extract_stop_list(
                client,
                warehouse,
                run_id=context.run.run_id,
                max_shrink_share=settings.max_shrink_share,
                accept_shrink=config.accept_shrink,
                memory_limit=settings.extract_memory_limit,
            )
        report, snapshot = extraction.report, extraction.snapshot
        context.log.info(
            f"fetched {snapshot.row_count:,} entries in {extraction.fetch_seconds:.1f} s"
        )
        checks = stop_list_check_results(extraction)
        if not extraction.published:
            # The check results first, so the UI shows why; then one line, not a stack trace.
            yield from checks
            raise dg.Failure(
                description=_blocked_message(extraction, table, keys.op_name(keys.stop_list)),
                allow_retries=False,
            )
        metadata: dict[str, Any] = {
            "dagster/row_count": snapshot.row_count,
            "entered": snapshot.entered,
            "left": snapshot.left,
            "valid": report.valid,
            "failing_rows": report.failing_rows,
            "preview": frame_table(
                extraction.preview, limit=10, raw_numbers=settings.show_raw_numbers
            ),
        }
        yield dg.MaterializeResult(metadata=metadata, check_results=checks)

    return stop_list


def _history_asset(
    settings: Settings, keys: SmspKeys, condition: dg.AutomationCondition | None
) -> dg.AssetsDefinition:
    """Who entered and left the list, kept across runs."""
    history_table = table_name(settings.schema, HISTORY_TABLE)

    @dg.asset(
        key=keys.history,
        deps=[keys.stop_list],
        automation_condition=condition,
        **asset_attributes(settings, {"duckdb"}),
        metadata=dict(
            TableMetadataSet(
                table_name=history_table,
                column_schema=table_schema(declared_columns((HISTORY_TABLE,))[HISTORY_TABLE]),
            )
        ),
        description=(
            "Who entered and who left the stop list, and when each number was first and last "
            f"seen, kept across runs ({history_table}, append-only)."
        ),
        pool=settings.pool,
        required_resource_keys=resource_keys(settings),
    )
    def stop_list_history(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        warehouse = step_warehouse(context, settings)
        update = update_history(warehouse)
        recent, total = recent_changes(warehouse)
        return dg.MaterializeResult(
            metadata={
                "entered": update.entered,
                "left": update.left,
                "listed": update.listed,
                "dagster/row_count": total,
                "recent_changes": frame_table(recent, raw_numbers=settings.show_raw_numbers),
            }
        )

    return stop_list_history


def _ledger_asset(
    settings: Settings, keys: SmspKeys, condition: dg.AutomationCondition | None
) -> dg.AssetsDefinition:
    """The ledger view, its honour times as numeric metadata (plotted over runs by the UI),
    and the check that no opt-out received waits past the account's deadline."""
    table = table_name(settings.schema, "opt_out_ledger")
    columns = declared_columns(("opt_out_ledger",))["opt_out_ledger"]
    hours = settings.honour_within / timedelta(hours=1)

    @dg.asset(
        key=keys.ledger,
        deps=[keys.history],
        automation_condition=condition,
        **asset_attributes(settings, {"duckdb"}),
        metadata=dict(TableMetadataSet(table_name=table, column_schema=table_schema(columns))),
        check_specs=[
            dg.AssetCheckSpec(
                "opt_outs_honoured_in_time",
                asset=keys.ledger,
                blocking=True,
                description=f"Fails when an opt-out received by the connector has waited more "
                f"than {hours:g} h (honour_within) without reaching the provider's list: the "
                "count, the oldest wait and the overdue rows (numbers as SHA-256).",
            )
        ],
        description=(
            f"One row per number and opt-out episode ({table}, a view of the audit log, the "
            "list's history and the plans): when it was received, sent, listed, ended."
        ),
        pool=settings.pool,
        required_resource_keys=resource_keys(settings),
    )
    def opt_out_ledger(
        context: dg.AssetExecutionContext,
    ) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
        warehouse = step_warehouse(context, settings)
        now = datetime.now(UTC)
        report = honour_report(warehouse, settings.honour_within, now)
        times, overdue = report.times, report.overdue
        quantiles = {
            name: round(value, 2)
            for name, value in (
                ("honour_hours_median", times.median_hours),
                ("honour_hours_p95", times.p95_hours),
            )
            if value is not None  # none honoured yet
        }
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": report.episodes,
                "opt_outs_received": times.received,
                "opt_outs_honoured": times.honoured,
                "opt_outs_pending": times.pending,
                "opt_outs_overdue": times.overdue,
                "opt_outs_honoured_late": times.late,
                "opt_outs_refused": times.refused,
                **quantiles,
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name="opt_outs_honoured_in_time",
                    passed=times.overdue == 0,
                    severity=dg.AssetCheckSeverity.ERROR,
                    metadata={
                        "overdue": times.overdue,
                        "oldest_wait_hours": round(times.oldest_overdue_hours or 0.0, 2),
                        "honour_within_hours": hours,
                        **({"overdue_rows": frame_table(overdue)} if len(overdue) else {}),
                    },
                )
            ],
        )

    return opt_out_ledger


def _provider_asset(
    settings: Settings, keys: SmspKeys, upstream: Sequence[dg.AssetKey]
) -> dg.AssetsDefinition:
    """The provider's list: observable, so that it orders a run (changes, then the refresh)
    without being an asset that waits to be materialized."""
    spec = dg.AssetSpec(
        key=keys.provider_stop_list,
        deps=list(upstream),
        description="The stop list as SMS Partner holds it: the pushes and deletions change "
        "it, stop_list reads it (GET /stop-sms/list). A push or delete run observes it after "
        "its calls, without calling the provider, and then refreshes stop_list.",
        **asset_attributes(settings, {"smspartner"}),
    )
    with warnings.catch_warnings():  # a beta decorator; the only one that gives deps
        warnings.simplefilter("ignore", dg.BetaWarning)

        @dg.multi_observable_source_asset(specs=[spec], name=keys.op_name(keys.provider_stop_list))
        def provider_stop_list(context: dg.AssetExecutionContext) -> Iterator[dg.ObserveResult]:
            changed_by = sorted(
                key.to_user_string()
                for key in (context.run.asset_selection or set()) & set(upstream)
            )
            yield dg.ObserveResult(
                asset_key=keys.provider_stop_list,
                metadata={"changed_by": ", ".join(changed_by) or "-"},
            )

    return provider_stop_list


_FORM_TEXT = {
    ExportForm.PLAIN: "E.164 numbers",
    ExportForm.SHA256: "unsalted SHA-256 hashes of the numbers, what ad platforms match on; "
    "anyone can reverse them by hashing every possible number",
    ExportForm.HMAC_SHA256: "HMAC-SHA256 of the numbers, keyed with a secret shared only with "
    "the recipient",
}


def _export_asset(
    settings: Settings,
    key: dg.AssetKey,
    upstream: dg.AssetKey,
    form: ExportForm,
    condition: dg.AutomationCondition | None,
) -> dg.AssetsDefinition:
    directory = settings.export_dir.rstrip("/")

    @dg.asset(
        key=key,
        deps=[upstream],
        pool=settings.pool,
        automation_condition=condition,
        **asset_attributes(settings, {"csv", "parquet"}),
        required_resource_keys=resource_keys(settings),
        freshness_policy=stop_list_freshness(settings),
        description=(
            f"The suppression list for CRM syncs ({_FORM_TEXT[form]}) as CSV and Parquet in "
            f"{directory}/; "
            "CSV cells a spreadsheet would run as a formula are neutralised."
        ),
    )
    def export(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        warehouse = step_warehouse(context, settings)
        # Read when the step runs, like the API key: Dagster shows the name, never the key.
        key = settings.resolve_hmac_key() if form is ExportForm.HMAC_SHA256 else None
        result = export_suppression_list(warehouse, directory, form=form, hmac_key=key)
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(_shown(result.csv_path)),
                "parquet_path": dg.MetadataValue.path(_shown(result.parquet_path)),
                "dagster/row_count": result.row_count,
                "preview": frame_table(result.preview, raw_numbers=settings.show_raw_numbers),
            }
        )

    return export


def _shown(location: Path | str) -> str:
    """A local file's absolute path, or the object's URL."""
    return str(location.resolve()) if isinstance(location, Path) else location


def _blocked_message(extraction: Extraction, table: str, op_name: str) -> str:
    problems = "; ".join(check.problem for check in extraction.blocking_failures)
    message = f"{problems}. The staged snapshot was not published: {table} is unchanged"
    if any(check.name == "no_sudden_shrink" for check in extraction.blocking_failures):
        message += (
            ". If the provider confirms the shrink, rerun with run config "
            f"{{ops: {{{op_name}: {{config: {{accept_shrink: true}}}}}}}}"
        )
    return message + "."
