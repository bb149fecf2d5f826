"""The SMS Partner API as a Dagster resource, and the warehouse behind dagster-duckdb's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from smsp_connector.client import SmspClient, SmspConfigurationError
from smsp_connector.operations.context import RunContext
from smsp_connector.operations.progress import log_progress
from smsp_connector.settings import DEFAULTS, Settings, described
from smsp_connector.warehouse import (
    Warehouse,
    WarehouseVersionError,
    is_local_database,
    make_database_folder,
    refuse_newer_file,
)

CLIENT_SETTINGS = ("base_url", "timeout_seconds", "rate_limit", "max_workers", "max_attempts")
"""The :class:`Settings` fields a client is made with that the resource holds as they are."""


class SmspResource(dg.ConfigurableResource):
    """The SMS Partner API. Wraps :class:`SmspClient` (the plain client) for Dagster.

    Give ``api_key`` as ``dg.EnvVar("SMSP_API_KEY")``: Dagster then stores and shows the variable's
    name, never its value, and ``repr=False`` keeps the key out of this resource's repr.
    """

    api_key: str = Field(repr=False, description="The account's API key (EnvVar SMSP_API_KEY).")
    base_url: str = Field(default=DEFAULTS.base_url, description=described(Settings, "base_url"))
    timeout_seconds: float = Field(
        default=DEFAULTS.timeout_seconds, description=described(Settings, "timeout_seconds")
    )
    rate_limit: float | None = Field(
        default=DEFAULTS.rate_limit, description=described(Settings, "rate_limit")
    )
    max_workers: int = Field(
        default=DEFAULTS.max_workers, description=described(Settings, "max_workers")
    )
    max_attempts: int = Field(
        default=DEFAULTS.max_attempts, description=described(Settings, "max_attempts")
    )
    rate_limit_dsn: str | None = Field(
        default=None,
        repr=False,
        description="PostgreSQL DSN of the rate limit shared by every process and machine of "
        "the account (EnvVar SMSP_RATE_LIMIT_DSN; it may hold a password); None: per process.",
    )
    rate_limit_name: str = Field(
        default=DEFAULTS.account_label,
        description="The shared rate limit's name: the account's label.",
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> SmspResource:
        return cls(
            api_key=settings.api_key or dg.EnvVar(settings.api_key_var),
            **{name: getattr(settings, name) for name in CLIENT_SETTINGS},
            rate_limit_dsn=settings.rate_limit_dsn
            or (dg.EnvVar(settings.rate_limit_dsn_var) if settings.rate_limit_dsn_var else None),
            rate_limit_name=settings.account_label,
        )

    @contextmanager
    def get_client(self) -> Iterator[SmspClient]:
        if not self.api_key:
            # Never fall back to another variable: with several accounts that would be
            # another account's key.
            raise SmspConfigurationError("the smsp resource's api_key is empty")
        settings = Settings(
            api_key=self.api_key,
            **{name: getattr(self, name) for name in CLIENT_SETTINGS},
            rate_limit_dsn=self.rate_limit_dsn or None,
            account=self.rate_limit_name,
        )
        with settings.client() as client:
            yield client


def warehouse_of(duckdb: DuckDBResource, schema: str) -> Warehouse:
    """The warehouse on dagster-duckdb's resource (which backs off while another process holds
    the file); the file's folder is created first, since DuckDB creates only the file. A file
    written by a newer DuckDB fails the step in one line, before dagster-duckdb's retries."""
    make_database_folder(duckdb.database)
    if is_local_database(duckdb.database):
        try:
            refuse_newer_file(duckdb.database)
        except WarehouseVersionError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from None
    return Warehouse(duckdb.get_connection, schema=schema)


StepContext = dg.AssetExecutionContext | dg.AssetCheckExecutionContext


def step_warehouse(context: StepContext, settings: Settings) -> Warehouse:
    """The account's warehouse in a step: its DuckDB resource, found under the key its settings
    name. The one place resource keys are read: each account's keys are its own (two accounts'
    resources under one key conflict in a code location's asset graph), so the assets declare
    them with :func:`resource_keys` rather than as typed parameters, whose names are fixed."""
    duckdb = getattr(context.resources, settings.duckdb_resource_key)
    if not isinstance(duckdb, DuckDBResource):
        raise TypeError(f"resource {settings.duckdb_resource_key!r} is not a DuckDBResource")
    return warehouse_of(duckdb, settings.schema)


def step_smsp(context: StepContext, settings: Settings) -> SmspResource:
    """The account's SMS Partner resource in a step (see :func:`step_warehouse`)."""
    smsp = getattr(context.resources, settings.smsp_resource_key)
    if not isinstance(smsp, SmspResource):
        raise TypeError(f"resource {settings.smsp_resource_key!r} is not an SmspResource")
    return smsp


def resource_keys(settings: Settings, *, smsp: bool = False) -> set[str]:
    """The resource keys an asset of the account requires: its warehouse, and its SMS Partner
    account when it calls the provider."""
    return {settings.duckdb_resource_key, *([settings.smsp_resource_key] if smsp else [])}


@contextmanager
def step_context(context: dg.AssetExecutionContext, settings: Settings) -> Iterator[RunContext]:
    """What the run core needs from a Dagster step: the account's client and warehouse, the
    run's id and job, progress to the step's log, the account's label."""
    warehouse = step_warehouse(context, settings)
    with step_smsp(context, settings).get_client() as client:
        yield RunContext(
            client=client,
            warehouse=warehouse,
            run_id=context.run.run_id,
            job=context.run.job_name,
            progress=log_progress(context.log.info),
            account=settings.account_label,
        )
