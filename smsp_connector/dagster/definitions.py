"""``build_definitions(settings)``: one account's assets, checks, jobs, schedule, sensor and
resources, as used by this repository's code location, ``smsp demo`` and the tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import dagster as dg

from smsp_connector.client import MutationKind
from smsp_connector.dagster.alerts import build_failure_alert_sensor
from smsp_connector.dagster.audience_checks import build_audience_check
from smsp_connector.dagster.compliance_report import build_compliance_report
from smsp_connector.dagster.ducklake_resource import duckdb_resource
from smsp_connector.dagster.extract_assets import ExtractAssets, build_extract_assets
from smsp_connector.dagster.in_process import JobRun, execute_job
from smsp_connector.dagster.inbox_sensor import build_inbox_sensor
from smsp_connector.dagster.keys import ACCOUNT_TAG, SmspKeys
from smsp_connector.dagster.lake_upkeep import build_lake_upkeep
from smsp_connector.dagster.mutation_assets import MutationAssets, build_mutation_assets
from smsp_connector.dagster.resource import SmspResource
from smsp_connector.dagster.retention_purge import build_retention_purge
from smsp_connector.dagster.scheduled_assets import ScheduledAsset
from smsp_connector.dagster.source_assets import SourceAssets, build_source_assets
from smsp_connector.dagster.table_assets import build_table_assets
from smsp_connector.settings import AlertSettings, Settings


@dataclass(frozen=True)
class SmspJobs:
    refresh: dg.UnresolvedAssetJobDefinition
    push: dg.UnresolvedAssetJobDefinition
    delete: dg.UnresolvedAssetJobDefinition
    cancel: dg.UnresolvedAssetJobDefinition

    def by_operation(self) -> dict[str, dg.UnresolvedAssetJobDefinition]:
        return {
            MutationKind.ADD.value: self.push,
            MutationKind.DELETE.value: self.delete,
            MutationKind.CANCEL.value: self.cancel,
        }


@dataclass(frozen=True)
class SmspDefinitions:
    """What :func:`build_definitions` built, by name, and the ``dg.Definitions`` holding it."""

    settings: Settings
    keys: SmspKeys
    extract: ExtractAssets
    mutations: MutationAssets
    sources: dict[str, SourceAssets]
    """Each push source's asset and push asset, by source name."""
    jobs: SmspJobs
    schedule: dg.ScheduleDefinition | None
    inbox_sensor: dg.SensorDefinition
    automation_sensor: dg.AutomationConditionSensorDefinition
    """Evaluates the account's automation conditions; its runs carry the account's tag."""
    failure_alert_sensor: dg.SensorDefinition
    """Posts one message per failed run to SMSP_ALERT_WEBHOOK_URL or Slack: on by default once
    one of them is set where the definitions load, off otherwise."""
    lake_upkeep: ScheduledAsset | None
    """A DuckLake warehouse's upkeep asset, job and schedule (``None`` for a DuckDB file)."""
    retention: ScheduledAsset
    """The retention purge's asset, job and schedule."""
    compliance_report: ScheduledAsset
    """The monthly compliance report's asset, job and schedule."""
    resources: dict[str, object]
    definitions: dg.Definitions

    def job(self, name: str) -> dg.JobDefinition:
        """A resolved job, ready for ``execute_in_process``."""
        return self.definitions.resolve_job_def(name)

    def execute(
        self,
        job_name: str,
        run_config: Mapping[str, Any] | None = None,
        *,
        assets: Sequence[dg.AssetKey] | None = None,
    ) -> JobRun:
        """Run one of the account's jobs in process (:func:`.in_process.execute_job`), on an
        ephemeral instance kept for this object's runs."""
        return execute_job(
            self.definitions, job_name, run_config, assets=assets, instance=self._instance
        )

    @cached_property
    def _instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.ephemeral()


def build_definitions(settings: Settings | None = None) -> SmspDefinitions:
    """Everything one SMS Partner account needs in a Dagster deployment.

    ``settings`` default to :meth:`Settings.from_env`. The API key is read from
    ``settings.api_key_var`` when a run starts, unless ``settings.api_key`` holds it.
    """
    settings = settings or Settings.from_env()
    keys = SmspKeys.of(settings)
    mutations = build_mutation_assets(settings)
    sources = {
        source.name: build_source_assets(settings, source) for source in settings.push_sources
    }
    source_pushes = [built.push.key for built in sources.values()]
    extract = build_extract_assets(
        settings, upstream=[keys.additions, keys.deletions, *source_pushes]
    )
    jobs = _jobs(settings, keys, extract.selection)
    upkeep = build_lake_upkeep(settings)
    retention = build_retention_purge(settings)
    report = build_compliance_report(settings)
    housekeeping = [retention, report, *([upkeep] if upkeep else [])]
    assets = [
        *mutations.assets,
        *(asset for built in sources.values() for asset in (built.source, built.push)),
        *extract.assets,
        *build_table_assets(settings, changes=source_pushes),
        *(built.asset for built in housekeeping),
    ]
    automation = _automation_sensor(settings, keys, assets)
    failure_alert = _failure_alert_sensor(settings, keys)
    sensor = build_inbox_sensor(
        inbox=settings.inbox_dir, jobs=jobs.by_operation(), keys=keys, name=keys.job("smsp_inbox")
    )
    schedule = _refresh_schedule(settings, keys, jobs.refresh)
    resources: dict[str, object] = {
        settings.smsp_resource_key: SmspResource.from_settings(settings),
        settings.duckdb_resource_key: duckdb_resource(settings),
    }
    audience = [
        build_audience_check(
            guard.asset,
            guard.phone_column,
            settings=settings,
            table=guard.table,
            default_region=guard.default_region,
            from_value=guard.from_value,
        )
        for guard in settings.audience_checks
    ]
    definitions = dg.Definitions(
        assets=assets,
        asset_checks=[*mutations.checks, *audience],
        jobs=[
            jobs.refresh,
            jobs.push,
            jobs.delete,
            jobs.cancel,
            *(built.job for built in housekeeping),
        ],
        schedules=[s for s in (schedule, *(b.schedule for b in housekeeping)) if s],
        sensors=[sensor, failure_alert, automation],
        resources=resources,
    )
    return SmspDefinitions(
        settings=settings,
        keys=keys,
        extract=extract,
        mutations=mutations,
        sources=sources,
        jobs=jobs,
        schedule=schedule,
        inbox_sensor=sensor,
        failure_alert_sensor=failure_alert,
        automation_sensor=automation,
        lake_upkeep=upkeep,
        retention=retention,
        compliance_report=report,
        resources=resources,
        definitions=definitions,
    )


def _jobs(settings: Settings, keys: SmspKeys, refresh: dg.AssetSelection) -> SmspJobs:
    """The account's jobs, tagged with its account. A push or delete run makes its calls, then
    (through the provider's list, observed with no call) refreshes the stop list, its history
    and the exports; the stop list itself has no upstream that waits to be materialized."""

    def job(name: str, selection: dg.AssetSelection, description: str):
        return dg.define_asset_job(
            keys.job(name),
            selection=selection,
            tags={ACCOUNT_TAG: settings.account_label},
            description=description,
        )

    return SmspJobs(
        refresh=job(
            "smsp_refresh",
            refresh,
            "Extract the stop list, update its history and write the suppression exports.",
        ),
        push=job(
            "push_stop_numbers",
            dg.AssetSelection.assets(keys.additions, keys.provider_stop_list) | refresh,
            "Push the numbers of a CSV file to the stop list (only the missing ones), then "
            "refresh the stop list, its history and the exports.",
        ),
        delete=job(
            "delete_stop_numbers",
            dg.AssetSelection.assets(keys.deletions, keys.provider_stop_list) | refresh,
            "Remove numbers with consent evidence (dry run unless confirm: true), then "
            "refresh the stop list, its history and the exports.",
        ),
        cancel=job(
            "cancel_scheduled_messages",
            dg.AssetSelection.assets(keys.cancellations),
            "Cancel scheduled sends by message id (from a CSV file or run config).",
        ),
    )


def _automation_sensor(
    settings: Settings, keys: SmspKeys, assets: Sequence[dg.AssetsDefinition | dg.AssetSpec]
) -> dg.AutomationConditionSensorDefinition:
    """The account's runs launched by automation (a push source's push, the refresh under
    ``refresh_by: automation``) run as Dagster's asset job: this sensor tags them with the
    account, so that the account's alert sensor, watching every job, announces them too."""
    return dg.AutomationConditionSensorDefinition(
        name=keys.job("smsp_automation"),
        target=dg.AssetSelection.assets(
            *(
                key
                for asset in assets
                for key in (asset.keys if isinstance(asset, dg.AssetsDefinition) else [asset.key])
            )
        ),
        run_tags={ACCOUNT_TAG: settings.account_label},
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Evaluates the automation conditions of account "
        f"{settings.account_label}'s assets; its runs carry the {ACCOUNT_TAG} tag.",
    )


def _failure_alert_sensor(settings: Settings, keys: SmspKeys) -> dg.SensorDefinition:
    """One message per failed run of the account; on by default once a destination is set
    where the definitions load (without one it would only skip)."""
    return build_failure_alert_sensor(
        name=keys.job("smsp_failure_alert"),
        jobs=None,
        account=settings.account_label,
        secret_envs=(settings.api_key_var,),
        default_status=(
            dg.DefaultSensorStatus.RUNNING
            if AlertSettings.from_env().configured
            else dg.DefaultSensorStatus.STOPPED
        ),
    )


def _refresh_schedule(
    settings: Settings, keys: SmspKeys, refresh: dg.UnresolvedAssetJobDefinition
) -> dg.ScheduleDefinition | None:
    """The refresh job on the account's cron, unless the refresh runs by automation."""
    if settings.schedule is None or settings.refresh_by != "schedule":
        return None
    return dg.ScheduleDefinition(
        name=keys.job("smsp_daily_refresh"),
        job=refresh,
        cron_schedule=settings.schedule,
        execution_timezone=settings.timezone,
        description=f"Refreshes the stop list on '{settings.schedule}' "
        f"({settings.timezone}), before marketing sends start.",
    )
