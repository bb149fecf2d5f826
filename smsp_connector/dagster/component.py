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
from dagster._utils.schedules import is_valid_cron_string
from dagster.components import AssetAttributesModel, Scaffolder, ScaffoldRequest
from dagster.components.utils import TranslatorResolvingInfo
from pydantic import ConfigDict, Field

from smsp_connector.client import DEFAULT_BASE_URL
from smsp_connector.dagster.definitions import build_definitions
from smsp_connector.dagster.settings_model import between, derive_model
from smsp_connector.settings import (
    API_KEY_VAR,
    DEFAULTS,
    HMAC_KEY_VAR,
    MAX_DURATION,
    RATE_LIMIT_DSN_VAR,
    Settings,
    described,
)

JobName = Literal["refresh", "push", "delete", "cancel"]
_ENV_TEMPLATE = re.compile(
    r"""^\{\{\s*env(?:\.(?P<dotted>\w+)|\(\s*['"](?P<called>\w+)['"]\s*\))\s*\}\}$"""
)
_CRON_PART = r"[\d*/,\-A-Za-z?#LW]+"
_CRON = re.compile(rf"^{_CRON_PART}( {_CRON_PART}){{4}}$")
"""Five cron fields (minute hour day month weekday)."""
_ENV_USE = re.compile(r"\{\{\s*env\b")


Translation = Callable[[dg.AssetSpec], dg.AssetSpec]
SETTINGS = derive_model(Settings, "SmspSettingsModel")
"""The Component's attributes that are :class:`Settings` fields under their own name."""


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


def _variable(attribute: str, example: str, why: str, *, required: bool = False):
    """A resolver of ``"{{ env.NAME }}"`` to the variable's *name*: the value (a key, a DSN
    that may hold a password) is read when a run needs it, so that no secret is written in a
    YAML file or shown by Dagster; anything else is refused."""

    def resolve(context: dg.ResolutionContext, raw: Any) -> str | None:
        if raw is None and not required:
            return None
        match = _ENV_TEMPLATE.match(raw.strip()) if isinstance(raw, str) else None
        if not match:
            raise ValueError(
                f'{attribute} must name an environment variable, as "{{{{ env.{example} }}}}": '
                f"{why}"
            )
        return match.group("dotted") or match.group("called")

    return resolve


def _cron_or_none(context: dg.ResolutionContext, raw: str | None) -> str | None:
    """The refresh's cron, checked when ``dg check defs`` resolves the YAML (so a bad one is
    reported with its file and line); ``null``: no schedule. A resolver rather than a pattern:
    a pattern on an optional field is applied to ``null`` too, or, inside the union, is
    bypassed by the plain string Dagster adds to every field for templates. It resolves the
    template itself: Dagster reads a variable that is not set as ``null``, which would turn the
    refresh off without a word."""
    value = context.resolve_value(raw)
    if value is None:
        if isinstance(raw, str) and _ENV_USE.search(raw):
            raise ValueError(f"schedule is {raw.strip()}, a variable that is not set")
        return None
    if not (isinstance(value, str) and _CRON.match(value) and is_valid_cron_string(value)):
        raise ValueError(f"schedule must be five cron fields, as '0 6 * * *', or null: {value!r}")
    return value


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


class LakeUpkeepModel(dg.Resolvable, dg.Model):
    """A ``ducklake:`` database's scheduled upkeep (no effect on a DuckDB file)."""

    schedule: Annotated[
        str | None,
        dg.Resolver(
            _cron_or_none,
            model_field_type=str | None,
            inject_before_resolve=False,
            description=described(Settings, "lake_upkeep_schedule"),
        ),
    ] = DEFAULTS.lake_upkeep_schedule
    expire_after_days: Annotated[
        float,
        between(0, MAX_DURATION.days),
        dg.Resolver.default(description=described(Settings, "lake_expire_after") + " (days)"),
    ] = DEFAULTS.lake_expire_after / timedelta(days=1)
    delete_after_days: Annotated[
        float,
        between(0, MAX_DURATION.days),
        dg.Resolver.default(description=described(Settings, "lake_delete_after") + " (days)"),
    ] = DEFAULTS.lake_delete_after / timedelta(days=1)
    dry_run: Annotated[
        bool, dg.Resolver.default(description=described(Settings, "lake_upkeep_dry_run"))
    ] = DEFAULTS.lake_upkeep_dry_run


@dg.scaffold_with(SmspComponentScaffolder)
class SmspComponent(dg.Component, SETTINGS.model):
    """One SMS Partner account: its stop list extracted into DuckDB with history, checks and
    suppression exports; push, guarded delete and cancel jobs; the inbox sensor; a schedule.

    Its attributes are :class:`Settings`' own fields (``SETTINGS``: their types, defaults and
    descriptions), plus those declared here: the variables that hold secrets, the crons checked
    as ``dg check defs`` reads the file, the jobs to define, the lake's upkeep and the
    translation."""

    api_key: Annotated[
        str,
        dg.Resolver(
            _variable(
                "api_key",
                API_KEY_VAR,
                "a key written in defs.yaml would end up in version control and in Dagster's UI",
                required=True,
            ),
            model_field_type=Any,  # any shape reaches the resolver, which refuses it unshown
            inject_before_resolve=False,
            description=f'The API key, as "{{{{ env.{API_KEY_VAR} }}}}" (read when a run starts).',
        ),
    ]
    rate_limit_dsn: Annotated[
        str | None,
        dg.Resolver(
            _variable(
                "rate_limit_dsn",
                RATE_LIMIT_DSN_VAR,
                "a DSN may hold a password, which defs.yaml and Dagster's UI must not show",
            ),
            model_field_type=Any,
            inject_before_resolve=False,
            description="PostgreSQL DSN of the rate limit shared by every process of the "
            f'account, as "{{{{ env.{RATE_LIMIT_DSN_VAR} }}}}" (read at run start); null: per '
            "process.",
        ),
    ] = None
    hmac_key: Annotated[
        str | None,
        dg.Resolver(
            _variable(
                "hmac_key",
                HMAC_KEY_VAR,
                "the export's key is a secret, which defs.yaml and Dagster's UI must not show",
            ),
            model_field_type=Any,
            inject_before_resolve=False,
            description="The key of the HMAC-SHA256 suppression export, as "
            f'"{{{{ env.{HMAC_KEY_VAR} }}}}" (read when the export is written); null: no such '
            "export.",
        ),
    ] = None
    schedule: Annotated[
        str | None,
        dg.Resolver(
            _cron_or_none,
            model_field_type=str | None,
            inject_before_resolve=False,
            description=described(Settings, "schedule"),
        ),
    ] = DEFAULTS.schedule
    jobs: Annotated[
        list[JobName],
        dg.Resolver.default(
            description="The jobs to define (the inbox sensor needs push, delete and cancel)"
        ),
    ] = Field(default=["refresh", "push", "delete", "cancel"])
    lake_upkeep: Annotated[
        LakeUpkeepModel,
        dg.Resolver.default(
            description="A ducklake: database's upkeep (small files merged, old snapshots "
            "expired, unneeded files deleted); nothing for a DuckDB file"
        ),
    ] = Field(default_factory=lambda: LakeUpkeepModel())
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

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    """Its errors name the attribute, never the value: a secret written in the wrong shape
    (see :func:`.settings_model.derive_model`) must not be echoed by ``dg check defs``."""

    def settings(self) -> Settings:
        """What this instance configures, as the library's :class:`Settings`."""
        return Settings(**self.configured())

    def configured(self) -> dict[str, Any]:
        """The :class:`Settings` fields this instance sets (the others keep their defaults in
        Dagster, and their ``SMSP_*`` variables in ``smsp --account``)."""
        upkeep = self.lake_upkeep
        return {
            **SETTINGS.values(self),
            "api_key_var": self.api_key,
            "rate_limit_dsn_var": self.rate_limit_dsn,
            "hmac_key_var": self.hmac_key,
            # An account without the refresh job has no refresh, by schedule or automation.
            "refresh_by": self.refresh_by if "refresh" in self.jobs else "schedule",
            "lake_upkeep_schedule": upkeep.schedule,
            "lake_expire_after": timedelta(days=upkeep.expire_after_days),
            "lake_delete_after": timedelta(days=upkeep.delete_after_days),
            "lake_upkeep_dry_run": upkeep.dry_run,
        }

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        built = build_definitions(self.settings())
        wanted = set(self.jobs)
        jobs = [job for name, job in vars(built.jobs).items() if name in wanted]
        definitions = built.definitions
        sensor_jobs = {job.name for job in built.inbox_sensor.jobs}
        keep_sensor = sensor_jobs <= {job.name for job in jobs}
        housekeeping = [
            built.retention,
            built.compliance_report,
            *([built.lake_upkeep] if built.lake_upkeep else []),
        ]
        defs = dg.Definitions(
            assets=definitions.assets,
            asset_checks=definitions.asset_checks,
            jobs=[*jobs, *(scheduled.job for scheduled in housekeeping)],
            schedules=[
                schedule
                for schedule in (
                    built.schedule if "refresh" in wanted else None,
                    *(scheduled.schedule for scheduled in housekeeping),
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
