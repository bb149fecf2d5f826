"""Every setting of a deployment, its environment variable and its default, in one place.

:meth:`Settings.from_env` reads the environment once; everything else (the Dagster definitions,
the ``smsp`` command, the demo) takes a :class:`Settings` and reads no variable itself.
Names that a deployment may need to change to run two accounts side by side (key prefix, schema,
resource keys, pool, sensor and job names) are fields too, with defaults that match this
repository's own code location.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import timedelta
from functools import cache
from typing import Any

from smsp_connector.client import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_WORKERS,
    RetryPolicy,
    SmspClient,
    SmspConfigurationError,
)
from smsp_connector.defaults import DEFAULT_LOCK_WAIT_SECONDS, DEFAULT_REGION, DEFAULT_SCHEMA

API_KEY_VAR = "SMSP_API_KEY"
DEFAULT_KEY_PREFIX = "smsp"
REFRESH_MODES = ("schedule", "automation")
_KEY_PREFIX = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*", re.ASCII)
"""What Dagster accepts in asset keys and the op names made of them, on every 1.13 release."""
HMAC_KEY_VAR = "SMSP_EXPORT_HMAC_KEY"
RATE_LIMIT_DSN_VAR = "SMSP_RATE_LIMIT_DSN"
DATABASE_VAR = "SMSP_DUCKDB_PATH"
DEFAULT_PLAN_MAX_AGE = timedelta(days=7)
DEFAULT_LAKE_EXPIRE_AFTER = timedelta(days=30)
DEFAULT_LAKE_DELETE_AFTER = timedelta(days=7)
MAX_LAKE_AGE = timedelta(days=36_500)
"""A century: the upkeep subtracts an age from now, and DuckDB's dates end in year 294247."""


class SettingsError(SmspConfigurationError):
    """A setting has a value that cannot be used; the message names the variable and value."""


@dataclass(frozen=True, slots=True)
class PushSource:
    """Opt-outs kept in a warehouse table, view or query of the account's DuckDB database.

    Exactly one of ``table`` (``[schema.]name``), ``query`` (SQL) or ``asset`` (the key of an
    upstream Dagster asset, ``crm/unsubscribes``, whose table is ``table`` if given, else its
    key's last two parts: ``crm.unsubscribes``) says where. With ``cursor_column``, each push
    reads only the rows past the last cursor whose rows all had a final outcome.
    """

    name: str
    phone_column: str
    table: str | None = None
    query: str | None = None
    asset: str | None = None
    region_column: str | None = None
    cursor_column: str | None = None
    default_region: str = DEFAULT_REGION

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise SettingsError(f"push source name {self.name!r} must be an identifier")
        if (self.table is None and self.asset is None) == (self.query is None):
            raise SettingsError(
                f"push source {self.name!r}: give a table (or an asset) or a query, not both"
            )

    @property
    def source_table(self) -> str | None:
        if self.table or self.asset is None:
            return self.table
        return ".".join(self.asset.split("/")[-2:])


@dataclass(frozen=True, slots=True)
class Settings:
    """One SMS Partner account and the warehouse its stop list lives in."""

    api_key: str | None = field(default=None, repr=False)
    """The key itself, for in-process use (tests, the demo). ``None``: read ``api_key_var`` from
    the environment when a run needs it (Dagster then shows the variable's name, never the key)."""
    api_key_var: str = API_KEY_VAR
    base_url: str = field(default=DEFAULT_BASE_URL, repr=False)
    """Not in the repr: a key may have been written into the URL."""
    database: str = field(default="data/warehouse.duckdb", repr=False)
    """The DuckDB file (its folder is created when first connecting, never at import), a
    ``md:`` URL, or ``ducklake:postgres:<libpq conninfo>`` (DuckLake with a PostgreSQL catalog;
    not in the repr: the conninfo may hold a password)."""
    data_path: str | None = None
    """A DuckLake's data path (where its Parquet files go): required with a ``ducklake:``
    database, refused otherwise."""
    metadata_schema: str | None = None
    """A DuckLake's PostgreSQL schema for its catalog tables (``None``: DuckLake's ``public``)."""
    schema: str = DEFAULT_SCHEMA
    export_dir: str = None  # type: ignore[assignment]
    """Where the exports are written; ``None``: :func:`account_names` (``exports``, or
    ``exports/<label>`` for another key prefix than ``smsp``)."""
    inbox_dir: str = None  # type: ignore[assignment]
    """The inbox the sensor watches; ``None``: :func:`account_names`."""
    max_shrink_share: float = 0.2
    rate_limit: float | None = 20.0
    """Requests per second to the provider, all workers of a run together; ``None``: unlimited."""
    rate_limit_dsn: str | None = field(default=None, repr=False)
    """A PostgreSQL DSN, for in-process use: the rate is then one limit shared by every process
    and machine of the account (its label names the bucket). ``None``: ``rate_limit_dsn_var``,
    else in memory, per process."""
    rate_limit_dsn_var: str | None = None
    """The variable holding that DSN, read when a client is made (it may hold a password, so
    Dagster is given the name); :meth:`from_env` sets it to ``SMSP_RATE_LIMIT_DSN`` when set."""
    max_workers: int = DEFAULT_MAX_WORKERS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout_seconds: float = 60.0
    max_input_bytes: int = 1 << 30
    """The largest input file read (1 GiB): a larger one is refused in one line."""
    lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS
    """How long the ``smsp`` command waits for a DuckDB file another process holds."""
    extract_memory_limit: str = "96MB"
    """DuckDB's memory while the stop list is extracted (past it, DuckDB spills to its temporary
    folder): the extract's memory stays flat whatever the list's length. More is faster."""
    key_prefix: str = DEFAULT_KEY_PREFIX
    """Prefix of every asset key; the names below that are not given derive from it
    (:func:`account_names`), so two accounts never share a job, resource or folder."""
    group_name: str = None  # type: ignore[assignment]
    """The extract's group (stop list, history, exports); ``None``: the account's label."""
    changes_group_name: str | None = None
    """The group of the push, delete and cancel assets (they need run config, the extract does
    not); ``None``: ``<group_name>_changes``."""
    account: str | None = None
    """The account's label in run tags, the audit log and its plans; ``None``: the key prefix's
    label (:attr:`account_label`, derived when read)."""
    owners: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    kinds: tuple[str, ...] = ()
    """Owners, tags and kinds given to every asset (besides the assets' own kinds)."""
    pool: str = "smsp_duckdb"
    """Every step that writes the DuckDB file runs in this Dagster pool (limit it to 1)."""
    smsp_resource_key: str = None  # type: ignore[assignment]
    duckdb_resource_key: str = None  # type: ignore[assignment]
    job_prefix: str = None  # type: ignore[assignment]
    """Put before every job, schedule and sensor name (``""`` for the default key prefix keeps
    ``smsp_refresh``…); these three ``None``: :func:`account_names`."""
    hmac_key_var: str | None = None
    """The variable holding the key of the HMAC-SHA256 export; ``None``: no such export.
    :meth:`from_env` sets it to ``SMSP_EXPORT_HMAC_KEY`` when that variable is set."""
    schedule: str | None = "0 6 * * *"
    timezone: str = "Europe/Paris"
    refresh_by: str = "schedule"
    """How the refresh runs on ``schedule``: ``schedule`` (a ScheduleDefinition of the refresh
    job, off until turned on) or ``automation`` (declarative automation: the stop list on the
    cron, its history and exports after it once its blocking checks passed; needs Dagster's
    automation sensor, which is on by default)."""
    push_sources: tuple[PushSource, ...] = ()
    """Warehouse tables whose opt-outs are pushed (an asset and a push asset each)."""
    plan_max_age: timedelta = DEFAULT_PLAN_MAX_AGE
    """The oldest stored plan (a dry run) that a confirmation applies; an older one is refused
    (the evidence it was checked on has aged: run a new dry run)."""
    lake_upkeep_schedule: str | None = "30 4 * * 0"
    """Cron of a DuckLake warehouse's upkeep (Sundays 04:30 in ``timezone``; ``None``: none):
    small files merged, old snapshots expired, unneeded files deleted. No effect on a file."""
    lake_expire_after: timedelta = DEFAULT_LAKE_EXPIRE_AFTER
    """Upkeep expires the lake's snapshots older than this (their files are then scheduled for
    deletion). The warehouse's own history is a table, not these snapshots."""
    lake_delete_after: timedelta = DEFAULT_LAKE_DELETE_AFTER
    """Upkeep deletes the files scheduled for deletion longer ago than this (a query that
    started before may still read them)."""
    lake_upkeep_dry_run: bool = False
    """The scheduled upkeep only counts what it would do (a run's config may say otherwise)."""

    def __post_init__(self) -> None:
        for name, value in account_names(self.key_prefix).items():
            if name != "account" and getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.rate_limit is not None and not (
            math.isfinite(self.rate_limit) and self.rate_limit > 0
        ):
            raise SettingsError(f"rate_limit must be a positive number, not {self.rate_limit!r}")
        if not 0 <= self.max_shrink_share <= 1:
            raise SettingsError(
                f"max_shrink_share must be between 0 and 1, not {self.max_shrink_share!r}"
            )
        if not (math.isfinite(self.timeout_seconds) and self.timeout_seconds > 0):
            raise SettingsError(
                f"timeout_seconds must be a positive number, not {self.timeout_seconds!r}"
            )
        if not (math.isfinite(self.lock_wait_seconds) and self.lock_wait_seconds >= 0):
            raise SettingsError(
                f"lock_wait_seconds must be a number >= 0, not {self.lock_wait_seconds!r}"
            )
        if not self.plan_max_age > timedelta(0):
            raise SettingsError(f"plan_max_age must be positive, not {self.plan_max_age!r}")
        for name in ("lake_expire_after", "lake_delete_after"):
            if not timedelta(0) <= getattr(self, name) <= MAX_LAKE_AGE:
                raise SettingsError(
                    f"{name} must be between 0 and {MAX_LAKE_AGE.days} days, "
                    f"not {getattr(self, name)!r}"
                )
        for name in ("max_workers", "max_attempts"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, not {getattr(self, name)!r}")
        if not _KEY_PREFIX.fullmatch(self.key_prefix):
            raise SettingsError(
                f"key_prefix must be segments of letters, digits, '_' and '-' joined by '/', "
                f"not {self.key_prefix!r}"
            )
        if self.refresh_by not in REFRESH_MODES:
            raise SettingsError(
                f"refresh_by must be one of {', '.join(REFRESH_MODES)}, not {self.refresh_by!r}"
            )
        if self.refresh_by == "automation" and self.schedule is None:
            raise SettingsError("refresh_by automation needs its cron: schedule must be set")
        if not self.schema.isidentifier():
            raise SettingsError(f"schema must be a plain SQL identifier, not {self.schema!r}")
        self._check_object_folders()
        self._check_lake()

    def _check_object_folders(self) -> None:
        from smsp_connector.warehouse.object_store import (
            ObjectStoreConfigurationError,
            check_folder,
        )

        for name in ("export_dir", "inbox_dir", "data_path"):
            if getattr(self, name):
                try:
                    check_folder(getattr(self, name))
                except ObjectStoreConfigurationError as error:
                    raise SettingsError(f"{name}: {error}") from None

    def _check_lake(self) -> None:
        from smsp_connector.warehouse.lake import LakeConfigurationError, LakeTarget, is_lake

        if not is_lake(self.database):
            if self.data_path or self.metadata_schema:
                raise SettingsError("data_path and metadata_schema are for a ducklake: database")
            return
        try:
            LakeTarget.parse(self.database, self.data_path, self.metadata_schema)
        except LakeConfigurationError as error:
            raise SettingsError(str(error)) from None
        if not self.data_path:
            raise SettingsError(
                "a ducklake: database needs its data path (SMSP_DUCKLAKE_DATA_PATH)"
            )
        if self.schema.lower() == "lake":
            raise SettingsError("schema 'lake' is the lake's own name: choose another schema")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``SMSP_*`` variables (see :data:`ENVIRONMENT`); ``overrides`` win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for variable, (name, convert) in ENVIRONMENT.items():
            text = env.get(variable, "").strip()
            if text:
                try:
                    values[name] = convert(text)
                except ValueError:
                    raise SettingsError(f"{variable}={text!r} is not a valid {name}") from None
        if env.get(HMAC_KEY_VAR):
            values["hmac_key_var"] = HMAC_KEY_VAR
        if env.get(RATE_LIMIT_DSN_VAR, "").strip():
            values["rate_limit_dsn_var"] = RATE_LIMIT_DSN_VAR
        return cls(**{**values, **overrides})

    def resolve_api_key(self, environ: Mapping[str, str] | None = None) -> str:
        """The key, from the settings or the environment; a one-line error when there is none."""
        if self.api_key:
            return self.api_key
        key = (os.environ if environ is None else environ).get(self.api_key_var, "")
        if not key:
            raise SettingsError(f"{self.api_key_var} is not set")
        return key

    def database_variable(self, environ: Mapping[str, str] | None = None) -> str | None:
        """``SMSP_DUCKDB_PATH`` when it holds exactly this database (set directly or through a
        Component's template), else ``None``: a lake's conninfo holding a password then reaches
        Dagster as the variable's name, never as its value, and settings of another database
        are never bound to that variable."""
        env = os.environ if environ is None else environ
        return DATABASE_VAR if env.get(DATABASE_VAR, "").strip() == self.database else None

    def resolve_rate_limit_dsn(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The shared rate limit's DSN, from the settings or the environment; None: in memory."""
        if self.rate_limit_dsn:
            return self.rate_limit_dsn
        if not self.rate_limit_dsn_var:
            return None
        env = os.environ if environ is None else environ
        return env.get(self.rate_limit_dsn_var, "").strip() or None

    @property
    def changes_group(self) -> str:
        return self.changes_group_name or f"{self.group_name}_changes"

    @property
    def account_label(self) -> str:
        return self.account or account_names(self.key_prefix)["account"]

    def client(self) -> SmspClient:
        """A client for this account (close it, or use it as a context manager)."""
        return SmspClient(
            self.resolve_api_key(),
            base_url=self.base_url,
            timeout=(min(10.0, self.timeout_seconds), self.timeout_seconds),
            retry=RetryPolicy(max_attempts=self.max_attempts),
            rate_limit=self.rate_limit,
            max_workers=self.max_workers,
            rate_limit_dsn=self.resolve_rate_limit_dsn(),
            rate_limit_name=self.account_label,
        )


def account_names(key_prefix: str) -> dict[str, str]:
    """What an account's key prefix names, unless its settings name it otherwise: the one rule
    the Component, ``build_definitions`` and ``smsp --account`` share. The default prefix keeps
    the plain names (``smsp_refresh``, resource ``smsp``, ``exports/``); another one, say
    ``eu/acme``, gets its label ``eu_acme`` in each (``eu_acme__smsp_refresh``, resource
    ``eu_acme_smsp``, ``exports/eu_acme``). They are filled in when the settings are made, so
    a ``dataclasses.replace`` of the key prefix alone keeps the names derived before."""
    label = re.sub(r"\W", "_", key_prefix, flags=re.ASCII)  # eu/crm-fr -> eu_crm_fr
    plain = key_prefix == DEFAULT_KEY_PREFIX
    return {
        "group_name": label,
        "export_dir": "exports" if plain else f"exports/{label}",
        "inbox_dir": "inbox" if plain else f"inbox/{label}",
        "job_prefix": "" if plain else f"{label}__",
        "smsp_resource_key": "smsp" if plain else f"{label}_smsp",
        "duckdb_resource_key": "duckdb" if plain else f"{label}_duckdb",
        "account": label,
    }


def _rate(text: str) -> float | None:
    return None if text.lower() in ("none", "unlimited") else float(text)


def _hours(text: str) -> timedelta:
    hours = float(text)
    if not math.isfinite(hours):
        raise ValueError(text)
    return timedelta(hours=hours)


def _days(text: str) -> timedelta:
    days = float(text)
    if not math.isfinite(days) or abs(days) > MAX_LAKE_AGE.days:
        raise ValueError(text)
    return timedelta(days=days)


def _yes(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _schedule(text: str) -> str | None:
    return None if text.lower() in ("none", "off") else text


ENVIRONMENT: dict[str, tuple[str, Any]] = {
    "SMSP_BASE_URL": ("base_url", str),
    DATABASE_VAR: ("database", str),
    "SMSP_DUCKLAKE_DATA_PATH": ("data_path", str),
    "SMSP_DUCKLAKE_METADATA_SCHEMA": ("metadata_schema", str),
    "SMSP_SCHEMA": ("schema", str),
    "SMSP_EXPORT_DIR": ("export_dir", str),
    "SMSP_INBOX_DIR": ("inbox_dir", str),
    "SMSP_MAX_SHRINK_SHARE": ("max_shrink_share", float),
    "SMSP_RATE_LIMIT": ("rate_limit", _rate),
    "SMSP_MAX_WORKERS": ("max_workers", int),
    "SMSP_MAX_ATTEMPTS": ("max_attempts", int),
    "SMSP_TIMEOUT_SECONDS": ("timeout_seconds", float),
    "SMSP_LOCK_WAIT_SECONDS": ("lock_wait_seconds", float),
    "SMSP_EXTRACT_MEMORY_LIMIT": ("extract_memory_limit", str),
    "SMSP_MAX_INPUT_BYTES": ("max_input_bytes", int),
    "SMSP_SCHEDULE": ("schedule", _schedule),
    "SMSP_REFRESH_BY": ("refresh_by", str),
    "SMSP_PLAN_MAX_AGE_HOURS": ("plan_max_age", _hours),
    "SMSP_LAKE_UPKEEP_SCHEDULE": ("lake_upkeep_schedule", _schedule),
    "SMSP_LAKE_EXPIRE_AFTER_DAYS": ("lake_expire_after", _days),
    "SMSP_LAKE_DELETE_AFTER_DAYS": ("lake_delete_after", _days),
    "SMSP_LAKE_UPKEEP_DRY_RUN": ("lake_upkeep_dry_run", _yes),
}
"""Environment variable → (setting, conversion). ``SMSP_API_KEY`` is read only when needed."""

ALERT_WEBHOOK_URL_VAR = "SMSP_ALERT_WEBHOOK_URL"
ALERT_SLACK_TOKEN_VAR = "SMSP_ALERT_SLACK_TOKEN"
ALERT_SLACK_CHANNEL_VAR = "SMSP_ALERT_SLACK_CHANNEL"

VARIABLES: dict[str, str] = {
    API_KEY_VAR: "the account's API key (required; read only when a client is made)",
    "SMSP_ACCOUNT": "smsp --account: act for this Component account of the dg project",
    "SMSP_BASE_URL": "the API's root (http:// only to loopback)",
    DATABASE_VAR: "the DuckDB file, an md: URL or ducklake:postgres:<libpq conninfo>",
    "SMSP_DUCKLAKE_DATA_PATH": "a DuckLake's data path (a folder, or s3://bucket/prefix)",
    "SMSP_DUCKLAKE_METADATA_SCHEMA": "a DuckLake's PostgreSQL schema for its catalog",
    "SMSP_SCHEMA": "the DuckDB schema of every table",
    "SMSP_EXPORT_DIR": "where the suppression exports go (a folder, or s3://bucket/prefix)",
    "SMSP_INBOX_DIR": "the folder the inbox sensor watches (or s3://bucket/prefix)",
    "SMSP_MAX_SHRINK_SHARE": "share of the list that may vanish before publication stops",
    "SMSP_RATE_LIMIT": "requests per second, all workers together (none: no limit)",
    RATE_LIMIT_DSN_VAR: "a PostgreSQL DSN: one rate limit for every process and machine",
    "SMSP_MAX_WORKERS": "concurrent calls of a push, delete or cancel",
    "SMSP_MAX_ATTEMPTS": "attempts per call before it is recorded as failed",
    "SMSP_TIMEOUT_SECONDS": "read timeout of each request, in seconds",
    "SMSP_LOCK_WAIT_SECONDS": "seconds smsp waits for a DuckDB file another process holds",
    "SMSP_EXTRACT_MEMORY_LIMIT": "DuckDB's memory while the stop list is extracted",
    "SMSP_MAX_INPUT_BYTES": "the largest input file read, in bytes",
    HMAC_KEY_VAR: "the key of the HMAC-SHA256 export (unset: no such export)",
    "SMSP_SCHEDULE": "cron of the daily refresh (none: no schedule)",
    "SMSP_REFRESH_BY": "schedule, or automation: declarative automation on that cron",
    "SMSP_PLAN_MAX_AGE_HOURS": "hours a stored plan may still be applied",
    "SMSP_LAKE_UPKEEP_SCHEDULE": "cron of a DuckLake's upkeep (none: no schedule)",
    "SMSP_LAKE_EXPIRE_AFTER_DAYS": "the lake's upkeep expires snapshots older than this, in days",
    "SMSP_LAKE_DELETE_AFTER_DAYS": "the lake's upkeep deletes files unused this long, in days",
    "SMSP_LAKE_UPKEEP_DRY_RUN": "true: the scheduled upkeep only counts what it would do",
    ALERT_WEBHOOK_URL_VAR: "where the failure alert sensor posts (a Slack-compatible webhook)",
    ALERT_SLACK_TOKEN_VAR: "a Slack bot token for the failure alerts (with the channel)",
    ALERT_SLACK_CHANNEL_VAR: "the Slack channel of the failure alerts",
}
"""Every ``SMSP_*`` variable the package reads, with what it sets: ``smsp --help`` lists them
and the README's configuration table describes each (tests/test_variables.py holds the three
together, and finds any other ``SMSP_*`` name the package would read)."""


def variables_help() -> list[tuple[str, str]]:
    """:data:`VARIABLES` as ``smsp --help`` shows them, each setting's default taken from
    :class:`Settings` itself (written nowhere else; ``None`` shown as no default)."""
    defaults: dict[str, Any] = {
        item.name: item.default for item in fields(Settings) if item.default is not MISSING
    }
    # The names the default key prefix gives (what Settings() fills in), without making one:
    # its checks import the warehouse, and smsp --help does not pay for pandas and DuckDB.
    defaults |= {
        name: value
        for name, value in account_names(DEFAULT_KEY_PREFIX).items()
        if defaults.get(name) is None
    }
    shown = []
    for variable, text in VARIABLES.items():
        default = defaults[ENVIRONMENT[variable][0]] if variable in ENVIRONMENT else None
        if isinstance(default, timedelta):
            unit = 3600 if variable.endswith("_HOURS") else 86400
            default = default.total_seconds() / unit
        if isinstance(default, bool):
            default = str(default).lower()
        elif isinstance(default, float):
            default = f"{default:g}"
        shown.append((variable, text if default is None else f"{text} [default: {default}]"))
    return shown


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """Where the failure alert sensor posts. Read from the environment at each of its ticks, so
    a deployment sets it without code and no destination is stored in a definition. The
    webhook URL and the token are credentials: not in the repr."""

    webhook_url: str | None = field(default=None, repr=False)
    slack_token: str | None = field(default=None, repr=False)
    slack_channel: str | None = None

    @property
    def configured(self) -> bool:
        """A message has somewhere to go: the webhook, or Slack's token and channel."""
        return bool(self.webhook_url or (self.slack_token and self.slack_channel))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AlertSettings:
        env = os.environ if environ is None else environ

        def value(variable: str) -> str | None:
            return env.get(variable, "").strip() or None

        return cls(
            value(ALERT_WEBHOOK_URL_VAR),
            value(ALERT_SLACK_TOKEN_VAR),
            value(ALERT_SLACK_CHANNEL_VAR),
        )


@cache
def _defaults() -> Settings:
    return Settings()


def __getattr__(name: str) -> Any:
    """``DEFAULTS``: an account configured with nothing, every default written once in
    :class:`Settings` (and ``defaults.py``), read by the Component's schema and the resource.
    Made on first use (PEP 562): making it imports the warehouse, which importing the settings
    (``smsp --help``) does not."""
    if name == "DEFAULTS":
        return _defaults()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
