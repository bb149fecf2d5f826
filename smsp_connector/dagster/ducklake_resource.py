"""dagster-duckdb's resource for a DuckLake warehouse (``ducklake:postgres:<conninfo>``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from smsp_connector.settings import Settings
from smsp_connector.warehouse.lake import LakeTarget, is_lake, lake_cursor, redact


class DuckLakeResource(DuckDBResource):
    """A :class:`DuckDBResource` whose connections are cursors of the process's attached lake
    (``USE lake`` done, so ``SELECT … FROM smsp.stop_list`` in users' own assets works as on a
    file). No file lock: steps of several runs and processes write the lake at once.

    ``database`` is ``ducklake:postgres:<libpq conninfo>``; give it as
    ``dg.EnvVar("SMSP_DUCKDB_PATH")`` when it holds a password (Dagster then shows the
    variable's name), or keep the password in libpq's ``PGPASSWORD`` / ``PGPASSFILE``.
    """

    database: str = Field(
        repr=False, description="ducklake:postgres:<libpq conninfo> (may hold a password)."
    )
    data_path: str | None = Field(
        default=None, description="The lake's data path (where its Parquet files go)."
    )
    metadata_schema: str | None = Field(
        default=None, description="The PostgreSQL schema of the lake's catalog tables."
    )

    def __repr__(self) -> str:
        return (
            f"DuckLakeResource(database={redact(self.database)!r}, "
            f"data_path={self.data_path!r}, metadata_schema={self.metadata_schema!r})"
        )

    __str__ = __repr__

    def target(self) -> LakeTarget:
        return LakeTarget.parse(self.database, self.data_path, self.metadata_schema)

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:  # type: ignore[override]
        with lake_cursor(self.target()) as conn:
            yield conn


def duckdb_resource(settings: Settings) -> DuckDBResource:
    """The warehouse resource of ``settings``: dagster-duckdb's for a file or ``md:``, a
    :class:`DuckLakeResource` for a lake (its conninfo given as its variable's name,
    :meth:`Settings.database_variable`, when it holds a password)."""
    if not is_lake(settings.database):
        return DuckDBResource(database=settings.database)
    database: str | dg.EnvVar = settings.database
    variable = settings.database_variable()
    if variable and redact(settings.database) != settings.database:
        database = dg.EnvVar(variable)
    return DuckLakeResource(
        database=database,
        data_path=settings.data_path,
        metadata_schema=settings.metadata_schema,
    )
