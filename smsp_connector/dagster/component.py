"""``SmspComponent``: one SMS Partner account as a Dagster Component, configured in YAML.

.. code-block:: yaml

    type: smsp_connector.SmspComponent
    attributes:
      api_key: "{{ env.SMSP_API_KEY }}"
      key_prefix: smsp
      database: data/warehouse.duckdb

Several instances load side by side: each one's key prefix names its assets, and its jobs,
schedule, sensor and resource keys unless they are set. The API key is never resolved at load
time: ``"{{ env.NAME }}"`` becomes ``dg.EnvVar("NAME")``, read when a run needs it, so Dagster
shows the variable's name and never the key.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal

import dagster as dg
from dagster.components import AssetAttributesModel, Scaffolder, ScaffoldRequest
from dagster.components.utils import TranslatorResolvingInfo
from pydantic import Field

from smsp_connector.client import DEFAULT_BASE_URL
from smsp_connector.dagster.definitions import build_definitions
from smsp_connector.intake import DEFAULT_REGION
from smsp_connector.settings import DEFAULTS, MAX_LAKE_AGE, PushSource, Settings

JobName = Literal["refresh", "push", "delete", "cancel"]
_ENV_TEMPLATE = re.compile(
    r"""^\{\{\s*env(?:\.(?P<dotted>\w+)|\(\s*['"](?P<called>\w+)['"]\s*\))\s*\}\}$"""
)
_CRON_PART = r"[\d*/,\-A-Za-z?#LW]+"
_CRON = re.compile(rf"^{_CRON_PART}( {_CRON_PART}){{4}}$")
"""Five cron fields (minute hour day month weekday)."""


Translation = Callable[[dg.AssetSpec], dg.AssetSpec]


def _translation(context: dg.ResolutionContext, model: str | AssetAttributesModel) -> Translation:
    """dagster-fivetran's ``translation``: attributes templated per asset, with ``name`` (the
    key's last part) and ``spec`` in scope. An asset's key is the key prefix's to set: the
    jobs, checks and sensor select assets by key, so a translation that moves one is refused."""
    info = TranslatorResolvingInfo(
        asset_attributes=model, resolution_context=context, model_key="translation"
    )

    def translate(spec: dg.AssetSpec) -> dg.AssetSpec:
        translated = info.get_asset_spec(spec, {"spec": spec, "name": spec.key.path[-1]})
        if translated.key != spec.key:
            raise ValueError(
                f"translation moved {spec.key.to_user_string()} to "
                f"{translated.key.to_user_string()}: an asset's key comes from key_prefix"
            )
        return translated

    return translate


def _api_key_variable(context: dg.ResolutionContext, raw: str) -> str:
    """The *name* of the variable in ``"{{ env.NAME }}"``; a literal key is refused, so that
    no key is ever written in a YAML file or shown by Dagster."""
    match = _ENV_TEMPLATE.match(raw.strip())
    if not match:
        raise ValueError(
            'api_key must name an environment variable, as "{{ env.SMSP_API_KEY }}": '
            "a key written in defs.yaml would end up in version control and in Dagster's UI"
        )
    return match.group("dotted") or match.group("called")


def _rate_limit_dsn_variable(context: dg.ResolutionContext, raw: str | None) -> str | None:
    """The *name* of the variable in ``"{{ env.NAME }}"`` (the DSN may hold a password)."""
    if raw is None:
        return None
    match = _ENV_TEMPLATE.match(raw.strip())
    if not match:
        raise ValueError(
            'rate_limit_dsn must name an environment variable, as "{{ env.SMSP_RATE_LIMIT_DSN }}": '
            "a DSN may hold a password, which defs.yaml and Dagster's UI must not show"
        )
    return match.group("dotted") or match.group("called")


def _cron_or_none(context: dg.ResolutionContext, raw: str | None) -> str | None:
    """The refresh's cron, checked when ``dg check defs`` resolves the YAML (so a bad one is
    reported with its file and line); ``null``: no schedule. A resolver rather than a pattern:
    a pattern on an optional field is applied to ``null`` too, or, inside the union, is
    bypassed by the plain string Dagster adds to every field for templates."""
    if raw is None:
        return None
    if not _CRON.match(raw):
        raise ValueError(f"schedule must be five cron fields, as '0 6 * * *', or null: {raw!r}")
    return raw


class SmspComponentScaffolder(Scaffolder):
    """``dg scaffold defs smsp_connector.SmspComponent accounts/main`` writes a working
    ``defs.yaml`` that reads the key from ``SMSP_API_KEY``."""

    def scaffold(self, request: ScaffoldRequest) -> None:
        request.target_path.mkdir(parents=True, exist_ok=True)
        name = request.target_path.name
        (request.target_path / "defs.yaml").write_text(
            textwrap.dedent(
                f"""\
                # One SMS Partner account (smsp-connector's SmspComponent); every attribute is in
                # its README, "Using it as a Dagster Component". Variables read:
                #   SMSP_API_KEY   the account's API key, read when a run starts (required;
                #                  Dagster shows the variable's name, never the key)
                #   SMSP_BASE_URL  the API root, read when the code location loads; unset: the
                #                  provider's. For `smsp emulator`: http://127.0.0.1:8787/v1
                type: {request.type_name}
                attributes:
                  api_key: "{{{{ env.SMSP_API_KEY }}}}"
                  base_url: "{{{{ env('SMSP_BASE_URL', '{DEFAULT_BASE_URL}') }}}}"
                  key_prefix: {name}
                  database: data/warehouse.duckdb
                  schema: smsp_{name}
                  schedule: "0 6 * * *"  # the refresh's cron; null for no schedule
                  timezone: Europe/Paris
                """
            )
        )


class PushSourceModel(dg.Model):
    """Opt-outs kept in a warehouse table, view, query, or an upstream asset's table."""

    name: str = Field(description="The source's name: assets <prefix>/opt_outs_<name>.")
    table: str | None = Field(default=None, description="[schema.]table or view to read.")
    query: str | None = Field(default=None, description="SQL to read, instead of a table.")
    asset: str | None = Field(
        default=None,
        description="Key of the upstream asset whose table is read (crm/unsubscribes reads "
        "crm.unsubscribes unless table is given); the push runs when it is materialized.",
    )
    phone_column: str = Field(description="The column holding the numbers.")
    region_column: str | None = Field(
        default=None, description="A column with each row's region (FR, RE...)."
    )
    cursor_column: str | None = Field(
        default=None, description="A column (e.g. unsubscribed_at): only newer rows are read."
    )
    default_region: str = Field(
        default=DEFAULT_REGION, description="Region of national-form numbers."
    )


class LakeUpkeepModel(dg.Resolvable, dg.Model):
    """A ``ducklake:`` database's scheduled upkeep (no effect on a DuckDB file)."""

    schedule: Annotated[
        str | None,
        dg.Resolver(
            _cron_or_none,
            model_field_type=str | None,
            description="Cron of the upkeep (five fields); null for no schedule.",
        ),
    ] = DEFAULTS.lake_upkeep_schedule
    expire_after_days: float = Field(
        default=DEFAULTS.lake_expire_after / timedelta(days=1),
        ge=0,
        le=MAX_LAKE_AGE.days,
        description="Snapshots older than this are expired (their files scheduled for deletion).",
    )
    delete_after_days: float = Field(
        default=DEFAULTS.lake_delete_after / timedelta(days=1),
        ge=0,
        le=MAX_LAKE_AGE.days,
        description="Files scheduled for deletion longer ago than this are deleted.",
    )
    dry_run: bool = Field(
        default=DEFAULTS.lake_upkeep_dry_run,
        description="The scheduled upkeep only counts what it would do.",
    )


@dg.scaffold_with(SmspComponentScaffolder)
class SmspComponent(dg.Component, dg.Resolvable, dg.Model):
    """One SMS Partner account: its stop list extracted into DuckDB with history, checks and
    suppression exports; push, guarded delete and cancel jobs; the inbox sensor; a schedule."""

    api_key: Annotated[
        str,
        dg.Resolver(
            _api_key_variable,
            model_field_type=str,
            inject_before_resolve=False,
            description='The API key, as "{{ env.SMSP_API_KEY }}" (read when a run starts).',
        ),
    ]
    base_url: str = Field(default=DEFAULT_BASE_URL, description="API root.")
    rate_limit: float | None = Field(
        default=DEFAULTS.rate_limit,
        description="Requests per second to the provider (null: unlimited).",
    )
    rate_limit_dsn: Annotated[
        str | None,
        dg.Resolver(
            _rate_limit_dsn_variable,
            model_field_type=str | None,
            inject_before_resolve=False,
            description="PostgreSQL DSN of the rate limit shared by every process of the "
            'account, as "{{ env.SMSP_RATE_LIMIT_DSN }}" (read at run start); null: per process.',
        ),
    ] = None
    max_workers: int = Field(
        default=DEFAULTS.max_workers, description="Concurrent calls in bulk operations."
    )
    database: str = Field(
        default=DEFAULTS.database,
        description="The DuckDB file, an md: URL, or ducklake:postgres:<libpq conninfo>.",
    )
    data_path: str | None = Field(
        default=None, description="A ducklake: database's data path (its Parquet files)."
    )
    metadata_schema: str | None = Field(
        default=None, description="A ducklake: database's PostgreSQL schema for its catalog."
    )
    schema_name: str = Field(
        default=DEFAULTS.schema, alias="schema", description="The DuckDB schema of the tables."
    )
    key_prefix: str = Field(
        default=DEFAULTS.key_prefix,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$",
        description="Prefix of every asset key; also names the account's jobs and resources.",
    )
    group_name: str | None = Field(default=None, description="Asset group (the key prefix).")
    changes_group_name: str | None = Field(
        default=None,
        description="Asset group of the push, delete and cancel assets, which need run config "
        "(<group_name>_changes).",
    )
    max_shrink_share: float = Field(
        default=DEFAULTS.max_shrink_share,
        description="Share of the list that may vanish before publication stops.",
    )
    export_dir: str | None = Field(default=None, description="Exports folder.")
    inbox_dir: str | None = Field(default=None, description="Inbox folder.")
    schedule: Annotated[
        str | None,
        dg.Resolver(
            _cron_or_none,
            model_field_type=str | None,
            description="Cron of the refresh (five fields, e.g. '0 6 * * *'); null for none.",
        ),
    ] = DEFAULTS.schedule
    timezone: str = Field(default=DEFAULTS.timezone, description="Timezone of the schedule.")
    refresh_by: Literal["schedule", "automation"] = Field(
        default=DEFAULTS.refresh_by,
        description="How the refresh runs on its cron: a schedule of the refresh job, or "
        "declarative automation (the stop list on the cron, its history and exports after it "
        "once its blocking checks passed).",
    )
    jobs: list[JobName] = Field(
        default=["refresh", "push", "delete", "cancel"], description="The jobs to define."
    )
    pool: str = Field(
        default=DEFAULTS.pool,
        description="Dagster pool of every step that writes the DuckDB file (limit it to 1; "
        "accounts sharing a file must share the pool).",
    )
    push_sources: list[PushSourceModel] = Field(
        default=[], description="Warehouse tables whose opt-outs are pushed."
    )
    lake_upkeep: LakeUpkeepModel = Field(
        default_factory=lambda: LakeUpkeepModel(),
        description="A ducklake: database's upkeep (merge, expire, delete old files).",
    )
    translation: Annotated[
        Translation | None,
        dg.Resolver(
            _translation,
            model_field_type=str | AssetAttributesModel,
            description="Attributes of each asset (group_name, tags, owners, kinds, metadata, "
            "automation_condition...), templated with {{ name }}, the key's last part, and "
            "{{ spec }} (as dagster-fivetran's translation; keys come from key_prefix).",
        ),
    ] = None
    owners: list[str] = Field(default=[], description="Owners of every asset.")
    tags: dict[str, str] = Field(default={}, description="Tags of every asset.")
    kinds: list[str] = Field(default=[], description="Kinds added to every asset.")

    def settings(self) -> Settings:
        """What this instance configures, as the library's :class:`Settings`."""
        return Settings(**self.configured())

    def configured(self) -> dict[str, Any]:
        """The :class:`Settings` fields this instance sets (the others keep their defaults in
        Dagster, and their ``SMSP_*`` variables in ``smsp --account``)."""
        return dict(
            api_key_var=self.api_key,
            base_url=self.base_url,
            rate_limit=self.rate_limit,
            rate_limit_dsn_var=self.rate_limit_dsn,
            max_workers=self.max_workers,
            database=self.database,
            data_path=self.data_path,
            metadata_schema=self.metadata_schema,
            schema=self.schema_name,
            key_prefix=self.key_prefix,
            group_name=self.group_name,
            changes_group_name=self.changes_group_name,
            max_shrink_share=self.max_shrink_share,
            export_dir=self.export_dir,
            inbox_dir=self.inbox_dir,
            schedule=self.schedule,
            timezone=self.timezone,
            # An account without the refresh job has no refresh, by schedule or automation.
            refresh_by=self.refresh_by if "refresh" in self.jobs else "schedule",
            lake_upkeep_schedule=self.lake_upkeep.schedule,
            lake_expire_after=timedelta(days=self.lake_upkeep.expire_after_days),
            lake_delete_after=timedelta(days=self.lake_upkeep.delete_after_days),
            lake_upkeep_dry_run=self.lake_upkeep.dry_run,
            pool=self.pool,
            owners=tuple(self.owners),
            tags=dict(self.tags),
            kinds=tuple(self.kinds),
            push_sources=tuple(PushSource(**source.model_dump()) for source in self.push_sources),
        )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        built = build_definitions(self.settings())
        wanted = set(self.jobs)
        jobs = [job for name, job in vars(built.jobs).items() if name in wanted]
        definitions = built.definitions
        sensor_jobs = {job.name for job in built.inbox_sensor.jobs}
        keep_sensor = sensor_jobs <= {job.name for job in jobs}
        upkeep = built.lake_upkeep
        defs = dg.Definitions(
            assets=definitions.assets,
            asset_checks=definitions.asset_checks,
            jobs=[*jobs, *([upkeep.job] if upkeep else [])],
            schedules=[
                schedule
                for schedule in (
                    built.schedule if "refresh" in wanted else None,
                    upkeep.schedule if upkeep else None,
                )
                if schedule
            ],
            sensors=[
                built.failure_alert_sensor,
                built.automation_sensor,
                *([built.inbox_sensor] if keep_sensor else []),
            ],
            resources=definitions.resources,
        )
        return defs if self.translation is None else defs.map_asset_specs(func=self.translation)
