"""Every setting of a deployment, its environment variable and its default, in one place.

Each field of :class:`Settings` carries its description, its ``SMSP_*`` variable and how that
variable's text is read (:func:`setting`): :meth:`Settings.from_env`, ``smsp --help``, the
Component's YAML schema (``dagster/settings_model.py``) and its ``configured()`` all derive from
these fields, and nothing else writes a default or a description.
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
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import timedelta
from functools import cache
from typing import Any, Literal, get_args

from smsp_connector.client import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_WORKERS,
    RetryPolicy,
    SmspClient,
    SmspConfigurationError,
)
from smsp_connector.defaults import (
    DEFAULT_LOCK_WAIT_SECONDS,
    DEFAULT_PLAN_MAX_AGE,
    DEFAULT_REGION,
    DEFAULT_SCHEMA,
)

API_KEY_VAR = "SMSP_API_KEY"
DEFAULT_KEY_PREFIX = "smsp"
RefreshMode = Literal["schedule", "automation"]
REFRESH_MODES: tuple[str, ...] = get_args(RefreshMode)
KEY_PREFIX_PATTERN = r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*"
"""What Dagster accepts in asset keys and the op names made of them, on every 1.13 release."""
HMAC_KEY_VAR = "SMSP_EXPORT_HMAC_KEY"
RATE_LIMIT_DSN_VAR = "SMSP_RATE_LIMIT_DSN"
DATABASE_VAR = "SMSP_DUCKDB_PATH"
MAX_DURATION = timedelta(days=36_500)
"""A century: the upkeep subtracts an age from now, and DuckDB's dates end in year 294247."""


class SettingsError(SmspConfigurationError):
    """A setting has a value that cannot be used; the message names the variable and value."""


def _rate(text: str) -> float | None:
    return None if text.lower() in ("none", "unlimited") else float(text)


def _yes(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _schedule(text: str) -> str | None:
    return None if text.lower() in ("none", "off") else text


_RANGES: dict[str, tuple[float, float]] = {
    "max_shrink_share": (0, 1),
    "max_workers": (1, 256),
    "max_attempts": (1, 100),
    "timeout_seconds": (0.001, 3600),
    "lock_wait_seconds": (0, 86400),
    "max_input_bytes": (1, 1 << 40),
}
"""The numbers a run can use (a million workers would size a connection pool past memory; a
timeout past a day overflows the clock's arithmetic): anything else is refused by name."""

UNITS = {"hours": timedelta(hours=1), "days": timedelta(days=1)}
"""The units a duration setting is written in, in its variable and in YAML."""


def _duration(unit: str) -> Callable[[str], timedelta]:
    def parse(text: str) -> timedelta:
        count = float(text)
        if not (math.isfinite(count) and abs(count) <= MAX_DURATION / UNITS[unit]):
            raise ValueError(text)
        return count * UNITS[unit]

    return parse


def setting(
    default: Any = MISSING,
    *,
    doc: str,
    env: str | None = None,
    parse: Callable[[str], Any] = str,
    unit: str | None = None,
    pattern: str | None = None,
    yaml: bool = True,
    repr: bool = True,
    default_factory: Any = MISSING,
) -> Any:
    """A field of :class:`Settings` (or :class:`PushSource`) with what is said about it once:
    ``doc`` (``smsp --help``, the Component's schema), ``env`` (the variable
    :meth:`Settings.from_env` reads, through ``parse``; a duration's text is a number of
    ``unit``), ``pattern`` (a text setting's form, checked here and in the YAML schema) and
    ``yaml`` (whether the Component's YAML has it under its own name)."""
    metadata: dict[str, Any] = {"doc": doc, "yaml": yaml}
    if env:
        metadata |= {"env": env, "parse": parse}
    if unit:
        metadata |= {"unit": unit, "parse": _duration(unit)}
    if pattern:
        metadata["pattern"] = pattern
    return field(default=default, default_factory=default_factory, repr=repr, metadata=metadata)


def described(cls: type, name: str) -> str:
    """The description of ``cls``'s field ``name``."""
    return next(item.metadata["doc"] for item in fields(cls) if item.name == name)


def _refuse_empty(owner: str, values: object, names: tuple[str, ...]) -> None:
    """A text setting given as blanks names nothing (a column, a table): refused by name."""
    for name in names:
        value = getattr(values, name)
        if value is not None and not value.strip():
            raise SettingsError(f"{owner}: {name} is empty")


@dataclass(frozen=True, slots=True)
class PushSource:
    """Opt-outs kept in a warehouse table, view or query of the account's DuckDB database.

    Exactly one of ``table`` (``[schema.]name``), ``query`` (SQL) or ``asset`` (the key of an
    upstream Dagster asset, ``crm/unsubscribes``, whose table is ``table`` if given, else its
    key's last two parts: ``crm.unsubscribes``) says where. With ``cursor_column``, each push
    reads only the rows past the last cursor whose rows all had a final outcome.
    """

    name: str = setting(doc="The source's name: assets <prefix>/opt_outs_<name>")
    phone_column: str = setting(doc="The column holding the numbers")
    table: str | None = setting(None, doc="[schema.]table or view to read")
    query: str | None = setting(None, doc="SQL to read, instead of a table")
    asset: str | None = setting(
        None,
        doc="Key of the upstream asset whose table is read (crm/unsubscribes reads "
        "crm.unsubscribes unless table is given); the push runs when it is materialized",
    )
    region_column: str | None = setting(None, doc="A column with each row's region (FR, RE...)")
    cursor_column: str | None = setting(
        None, doc="A column (e.g. unsubscribed_at): only newer rows are read"
    )
    default_region: str = setting(DEFAULT_REGION, doc="Region of national-form numbers")

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise SettingsError(f"push source name {self.name!r} must be an identifier")
        if (self.table is None and self.asset is None) == (self.query is None):
            raise SettingsError(
                f"push source {self.name!r}: give a table (or an asset) or a query, not both"
            )
        _refuse_empty(
            f"push source {self.name!r}",
            self,
            ("phone_column", "table", "query", "asset", "region_column", "cursor_column"),
        )

    @property
    def source_table(self) -> str | None:
        if self.table or self.asset is None:
            return self.table
        return ".".join(self.asset.split("/")[-2:])


@dataclass(frozen=True, slots=True)
class AudienceGuard:
    """A campaign audience, a table of the account's warehouse or an asset's DataFrame: a
    blocking check ``no_opted_out_numbers`` on its asset fails while it holds a number that
    opted out."""

    asset: str = setting(doc="Key of the audience asset the check is attached to (crm/audience)")
    phone_column: str = setting(doc="The column holding the numbers")
    table: str | None = setting(
        None, doc="[schema.]table holding the audience; none: the key's last two parts"
    )
    default_region: str = setting(DEFAULT_REGION, doc="Region of national-form numbers")
    from_value: bool = setting(
        False,
        doc="The audience is the asset's value (a pandas DataFrame loaded by the asset's IO "
        "manager), not a warehouse table",
    )

    def __post_init__(self) -> None:
        _refuse_empty(f"audience check on {self.asset!r}", self, ("asset", "phone_column", "table"))
        if self.from_value and self.table is not None:
            raise SettingsError(
                f"audience check on {self.asset!r}: table and from_value exclude each other"
            )


@dataclass(frozen=True, slots=True)
class Settings:
    """One SMS Partner account and the warehouse its stop list lives in. Each field's
    description, variable and default are in its :func:`setting`."""

    api_key: str | None = setting(
        None,
        doc="The key itself, for in-process use (tests, the demo); none: read api_key_var when "
        "a run needs it (Dagster then shows the variable's name, never the key)",
        yaml=False,  # a key is never written in YAML: the Component's api_key names a variable
        repr=False,
    )
    api_key_var: str = setting(
        API_KEY_VAR, doc="The variable holding the API key, read when a client is made", yaml=False
    )
    base_url: str = setting(
        DEFAULT_BASE_URL,
        doc="The API's root (http:// only to loopback)",
        env="SMSP_BASE_URL",
        repr=False,  # a key may have been written into the URL
    )
    database: str = setting(
        "data/warehouse.duckdb",
        doc="The DuckDB file (its folder made on first connection), an md: URL, or "
        "ducklake:postgres:<libpq conninfo>",
        env=DATABASE_VAR,
        repr=False,  # a lake's conninfo may hold a password
    )
    data_path: str | None = setting(
        None,
        doc="A DuckLake's data path, where its Parquet files go (a folder, or "
        "s3://bucket/prefix): required with a ducklake: database, refused otherwise",
        env="SMSP_DUCKLAKE_DATA_PATH",
    )
    metadata_schema: str | None = setting(
        None,
        doc="A DuckLake's PostgreSQL schema for its catalog (none: DuckLake's public)",
        env="SMSP_DUCKLAKE_METADATA_SCHEMA",
    )
    schema: str = setting(DEFAULT_SCHEMA, doc="The DuckDB schema of every table", env="SMSP_SCHEMA")
    export_dir: str = setting(
        None,
        doc="Where the suppression exports go (a folder, or s3://bucket/prefix); none: "
        "exports, or exports/<label> for another key prefix",
        env="SMSP_EXPORT_DIR",
    )
    inbox_dir: str = setting(
        None,
        doc="The folder the inbox sensor watches (or s3://bucket/prefix); none: inbox, or "
        "inbox/<label> for another key prefix",
        env="SMSP_INBOX_DIR",
    )
    max_shrink_share: float = setting(
        0.2,
        doc="The share of the list that may vanish before publication stops",
        env="SMSP_MAX_SHRINK_SHARE",
        parse=float,
    )
    rate_limit: float | None = setting(
        20.0,
        doc="Requests per second to the provider, all workers of a run together (none: no limit)",
        env="SMSP_RATE_LIMIT",
        parse=_rate,
    )
    rate_limit_dsn: str | None = setting(
        None,
        doc="A PostgreSQL DSN, for in-process use: one rate limit shared by every process and "
        "machine of the account (its label names the bucket); none: rate_limit_dsn_var, else "
        "in memory, per process",
        yaml=False,  # may hold a password: the Component's rate_limit_dsn names a variable
        repr=False,
    )
    rate_limit_dsn_var: str | None = setting(
        None,
        doc="The variable holding that DSN, read when a client is made (from_env sets "
        f"{RATE_LIMIT_DSN_VAR} when it is set)",
        yaml=False,
    )
    max_workers: int = setting(
        DEFAULT_MAX_WORKERS,
        doc="Concurrent calls of a push, delete or cancel",
        env="SMSP_MAX_WORKERS",
        parse=int,
    )
    max_attempts: int = setting(
        DEFAULT_MAX_ATTEMPTS,
        doc="Attempts per call before it is recorded as failed",
        env="SMSP_MAX_ATTEMPTS",
        parse=int,
    )
    timeout_seconds: float = setting(
        60.0,
        doc="Read timeout of each request, in seconds",
        env="SMSP_TIMEOUT_SECONDS",
        parse=float,
    )
    max_input_bytes: int = setting(
        1 << 30,
        doc="The largest input file read, in bytes (a larger one is refused in one line)",
        env="SMSP_MAX_INPUT_BYTES",
        parse=int,
    )
    lock_wait_seconds: float = setting(
        DEFAULT_LOCK_WAIT_SECONDS,
        doc="Seconds smsp waits for a DuckDB file another process holds",
        env="SMSP_LOCK_WAIT_SECONDS",
        parse=float,
    )
    extract_memory_limit: str = setting(
        "96MB",
        doc="DuckDB's memory while the stop list is extracted (past it, DuckDB spills to its "
        "temporary folder, so the extract's memory stays flat; more is faster)",
        env="SMSP_EXTRACT_MEMORY_LIMIT",
    )
    key_prefix: str = setting(
        DEFAULT_KEY_PREFIX,
        doc="Prefix of every asset key (segments of letters, digits, _ and - joined by /); the "
        "names below that are not given derive from it (account_names), so two accounts never "
        "share a job, resource or folder",
        pattern=KEY_PREFIX_PATTERN,
    )
    group_name: str = setting(
        None, doc="The extract's asset group (stop list, history, exports); none: the label"
    )
    changes_group_name: str | None = setting(
        None,
        doc="The group of the push, delete and cancel assets, which need run config; none: "
        "<group_name>_changes",
    )
    account: str | None = setting(
        None,
        doc="The account's label in run tags, the audit log and its plans; none: the key "
        "prefix's label",
    )
    owners: tuple[str, ...] = setting((), doc="Owners given to every asset")
    tags: Mapping[str, str] = setting(doc="Tags given to every asset", default_factory=dict)
    kinds: tuple[str, ...] = setting((), doc="Kinds added to every asset (beside its own)")
    pool: str = setting(
        "smsp_duckdb",
        doc="The Dagster pool of every step that writes the DuckDB file (limit it to 1; "
        "accounts sharing a file must share the pool)",
    )
    smsp_resource_key: str = setting(
        None, doc="The provider resource's key; none: smsp, or <label>_smsp"
    )
    duckdb_resource_key: str = setting(
        None, doc="The DuckDB resource's key; none: duckdb, or <label>_duckdb"
    )
    job_prefix: str = setting(
        None,
        doc="Put before every job, schedule and sensor name; none: nothing for the default key "
        "prefix (smsp_refresh...), else <label>__",
    )
    hmac_key_var: str | None = setting(
        None,
        doc=f"The variable holding the key of the HMAC-SHA256 export; none: no such export "
        f"(from_env sets {HMAC_KEY_VAR} when it is set)",
        yaml=False,  # the Component's hmac_key names the variable
    )
    schedule: str | None = setting(
        "0 6 * * *",
        doc="Cron of the daily refresh (five fields); none: no schedule",
        env="SMSP_SCHEDULE",
        parse=_schedule,
    )
    timezone: str = setting("Europe/Paris", doc="The time zone of the schedules")
    refresh_by: RefreshMode = setting(
        "schedule",
        doc="How the refresh runs on its cron: schedule (a schedule of the refresh job, off "
        "until turned on) or automation (declarative automation: the stop list on the cron, "
        "its history and exports after it once its blocking checks passed)",
        env="SMSP_REFRESH_BY",
    )
    push_sources: tuple[PushSource, ...] = setting(
        (), doc="Warehouse tables whose opt-outs are pushed (an asset and a push asset each)"
    )
    audience_checks: tuple[AudienceGuard, ...] = setting(
        (),
        doc="Campaign audiences in the warehouse, each checked before the send by a blocking "
        "check no_opted_out_numbers on its asset",
    )
    plan_max_age: timedelta = setting(
        DEFAULT_PLAN_MAX_AGE,
        doc="How long a stored plan (a dry run) may still be applied; an older one is refused "
        "(the evidence it was checked on has aged: run a new dry run)",
        env="SMSP_PLAN_MAX_AGE_HOURS",
        unit="hours",
    )
    honour_within: timedelta = setting(
        timedelta(hours=24),
        doc="How long an opt-out received by the connector may take to reach the provider's "
        "list: past it, the ledger's blocking check opt_outs_honoured_in_time fails",
        env="SMSP_HONOUR_WITHIN_HOURS",
        unit="hours",
    )
    show_raw_numbers: bool = setting(
        False,
        doc="Show phone numbers whole in Dagster's event log (previews, rows not through); "
        "off: masked as +336•••••678, since the event log may be hosted by a third party "
        "(Dagster+). For a local deployment only",
        env="SMSP_SHOW_RAW_NUMBERS",
        parse=_yes,
    )
    retain_rejected: timedelta = setting(
        timedelta(days=90),
        doc="How long raw rejected input values (not a number, wrong length...) are kept, for "
        "fixing the file they came from; past it the retention purge clears them (file, row "
        "and reason stay)",
        env="SMSP_RETAIN_REJECTED_DAYS",
        unit="days",
    )
    retain_ended: timedelta = setting(
        timedelta(days=1095),
        doc="How long a number is kept whole after its last opt-out ended (a deletion with "
        "consent, gone from the list) or its last trace: past it the retention purge replaces "
        "it by its HMAC pseudonym (needs the HMAC key); a standing opt-out is never purged",
        env="SMSP_RETAIN_ENDED_DAYS",
        unit="days",
    )
    retention_schedule: str | None = setting(
        "30 6 * * *",
        doc="Cron of the daily retention purge (five fields, in timezone); none: no schedule",
        env="SMSP_RETENTION_SCHEDULE",
        parse=_schedule,
    )
    report_schedule: str | None = setting(
        "0 7 1 * *",
        doc="Cron of the monthly compliance report (in timezone), which writes the last month "
        "over; none: no schedule",
        env="SMSP_REPORT_SCHEDULE",
        parse=_schedule,
    )
    lake_upkeep_schedule: str | None = setting(
        "30 4 * * 0",
        doc="Cron of a DuckLake's upkeep (Sundays 04:30 in timezone; none: no schedule): small "
        "files merged, old snapshots expired, unneeded files deleted; nothing for a file",
        env="SMSP_LAKE_UPKEEP_SCHEDULE",
        parse=_schedule,
        yaml=False,  # lake_upkeep.schedule
    )
    lake_expire_after: timedelta = setting(
        timedelta(days=30),
        doc="The lake's upkeep expires snapshots older than this (their files then scheduled "
        "for deletion; the warehouse's own history is a table, not these snapshots)",
        env="SMSP_LAKE_EXPIRE_AFTER_DAYS",
        unit="days",
        yaml=False,  # lake_upkeep.expire_after_days
    )
    lake_delete_after: timedelta = setting(
        timedelta(days=7),
        doc="The lake's upkeep deletes the files scheduled for deletion longer ago than this "
        "(a query that started before may still read them)",
        env="SMSP_LAKE_DELETE_AFTER_DAYS",
        unit="days",
        yaml=False,  # lake_upkeep.delete_after_days
    )
    lake_upkeep_dry_run: bool = setting(
        False,
        doc="The scheduled upkeep only counts what it would do",
        env="SMSP_LAKE_UPKEEP_DRY_RUN",
        parse=_yes,
        yaml=False,  # lake_upkeep.dry_run
    )

    def __post_init__(self) -> None:
        for name, value in account_names(self.key_prefix).items():
            if name != "account" and getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.rate_limit is not None and not (
            math.isfinite(self.rate_limit) and self.rate_limit > 0
        ):
            raise SettingsError(f"rate_limit must be a positive number, not {self.rate_limit!r}")
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            if not (math.isfinite(value) and low <= value <= high):
                raise SettingsError(f"{name} must be between {low:g} and {high:g}, not {value!r}")
        for name in ("plan_max_age", "honour_within", "retain_rejected", "retain_ended"):
            if not timedelta(0) < getattr(self, name) <= MAX_DURATION:
                raise SettingsError(
                    f"{name} must be positive and at most {MAX_DURATION.days} days, "
                    f"not {getattr(self, name)!r}"
                )
        for name in ("lake_expire_after", "lake_delete_after"):
            if not timedelta(0) <= getattr(self, name) <= MAX_DURATION:
                raise SettingsError(
                    f"{name} must be between 0 and {MAX_DURATION.days} days, "
                    f"not {getattr(self, name)!r}"
                )
        if not self.pool.strip():
            raise SettingsError("pool must name a Dagster pool, not be empty")
        if self.smsp_resource_key == self.duckdb_resource_key:
            raise SettingsError(
                f"smsp_resource_key and duckdb_resource_key are both {self.smsp_resource_key!r}: "
                "one resource would replace the other"
            )
        names = [source.name for source in self.push_sources]
        if len(set(names)) != len(names):
            twice = sorted({name for name in names if names.count(name) > 1})
            raise SettingsError(f"push_sources: two sources named {', '.join(twice)}")
        for item in fields(self):
            pattern = item.metadata.get("pattern")
            if pattern and not re.fullmatch(pattern, getattr(self, item.name), re.ASCII):
                raise SettingsError(
                    f"{item.name} must match {pattern}, not {getattr(self, item.name)!r}"
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

    def resolve_hmac_key(self, environ: Mapping[str, str] | None = None) -> bytes | None:
        """The HMAC key (export and retention pseudonyms), read from its variable when asked
        (a run), never stored; ``None`` when no variable is named or it is empty."""
        if not self.hmac_key_var:
            return None
        env = os.environ if environ is None else environ
        return env.get(self.hmac_key_var, "").encode() or None

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


ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any]]] = {
    item.metadata["env"]: (item.name, item.metadata["parse"])
    for item in fields(Settings)
    if "env" in item.metadata
}
"""Environment variable → (setting, conversion), from the fields' :func:`setting`.
``SMSP_API_KEY`` is read only when needed."""

ALERT_WEBHOOK_URL_VAR = "SMSP_ALERT_WEBHOOK_URL"
ALERT_SLACK_TOKEN_VAR = "SMSP_ALERT_SLACK_TOKEN"
ALERT_SLACK_CHANNEL_VAR = "SMSP_ALERT_SLACK_CHANNEL"

VARIABLES: dict[str, str] = {
    API_KEY_VAR: "The account's API key (required; read only when a client is made)",
    "SMSP_ACCOUNT": "smsp --account: act for this Component account of the dg project",
    **{variable: described(Settings, name) for variable, (name, _) in ENVIRONMENT.items()},
    RATE_LIMIT_DSN_VAR: "A PostgreSQL DSN: one rate limit for every process and machine",
    HMAC_KEY_VAR: "The key of the HMAC-SHA256 export (unset: no such export)",
    ALERT_WEBHOOK_URL_VAR: "Where the failure alert sensor posts (a Slack-compatible webhook)",
    ALERT_SLACK_TOKEN_VAR: "A Slack bot token for the failure alerts (with the channel)",
    ALERT_SLACK_CHANNEL_VAR: "The Slack channel of the failure alerts",
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
    units = {item.name: item.metadata.get("unit") for item in fields(Settings)}
    shown = []
    for variable, text in VARIABLES.items():
        default = defaults[ENVIRONMENT[variable][0]] if variable in ENVIRONMENT else None
        if isinstance(default, timedelta):  # in its variable's unit
            default = default / UNITS[units[ENVIRONMENT[variable][0]]]
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
