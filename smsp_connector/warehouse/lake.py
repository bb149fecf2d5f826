"""DuckLake with a PostgreSQL catalog as the warehouse (``ducklake:postgres:<libpq conninfo>``).

The lake is attached once per process, in an in-memory DuckDB instance, as ``lake``; every
connection handed out is a cursor of that instance (a connection of its own, with its own
transactions) switched to the lake with ``USE lake``. The two extensions it needs are loaded
from the files of the ``duckdb-extension-ducklake`` and ``duckdb-extension-postgres-scanner``
packages, with DuckDB's extension autoinstall and autoload off: nothing is downloaded, nothing is
written to ``~/.duckdb``.

DuckLake detects conflicts per table at ``COMMIT`` (optimistic): :func:`is_commit_conflict`
tells a lost race from a real error, and the warehouse's transactions are re-run on it (see
:meth:`smsp_connector.warehouse.Warehouse.transaction`). docs/ducklake-notes.md has the findings
behind every choice here.
"""

from __future__ import annotations

import importlib.resources
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from smsp_connector.warehouse import object_store
from smsp_connector.warehouse.results import one_row
from smsp_connector.warehouse.sql import literal

LAKE_PREFIX = "ducklake:postgres:"
"""The form of a ``database`` setting that selects a lake; the rest is a libpq conninfo."""
ALIAS = "lake"
"""The name the lake is attached under (``current_database()`` on every lake connection)."""
EXTENSIONS = ("postgres_scanner", "ducklake")
"""In load order: ducklake's ``ATTACH`` of a PostgreSQL catalog needs postgres_scanner."""
MAX_RETRY_COUNT = 100
"""``ducklake_max_retry_count``: DuckLake's own retries of a commit that lost the snapshot-id
race (its default of 10 is not enough with several writers)."""
ATTACH_ATTEMPTS = 4
LOCK_NAMES = ("history", "cursors", "publish", "plans", "ledger")
"""The rows of ``warehouse_locks``: updating one at the start of a transaction makes any other
transaction that writes that table at the same time fail at ``COMMIT`` (and be re-run)."""

_PASSWORD = re.compile(
    r"(?P<key>password\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s'\"]+)"  # conninfo: password=… / '…'
    r"|(?P<url>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*(?=@)"  # URL: scheme://user:…@host
    r"|(?P<param>[?&]password=)[^&\s'\"]*",  # URL query: ?password=…
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with every password of a conninfo or URL in it replaced by ``***``."""

    def hide(match: re.Match[str]) -> str:
        return (match.group("key") or match.group("url") or match.group("param")) + "***"

    return _PASSWORD.sub(hide, text)


def is_lake(database: str | os.PathLike[str]) -> bool:
    """Whether ``database`` names a DuckLake (``ducklake:…``) rather than a file or ``md:``."""
    return str(database).startswith("ducklake:")


class LakeConfigurationError(ValueError, duckdb.InvalidInputException):
    """A lake setting that cannot work (another catalog kind, a missing extension package…)."""


@dataclass(frozen=True, slots=True)
class LakeTarget:
    """One lake: its catalog (a libpq conninfo), its data path and the catalog's schema."""

    catalog: str = field(repr=False)
    """libpq conninfo, e.g. ``dbname=smsp host=db.internal user=smsp`` (may hold a password)."""
    data_path: str | None = None
    """Where the Parquet files go; required to create the lake (the catalog remembers it)."""
    metadata_schema: str | None = None
    """The PostgreSQL schema of the catalog's tables (DuckLake's default: ``public``)."""

    @classmethod
    def parse(
        cls,
        database: str,
        data_path: str | os.PathLike[str] | None = None,
        metadata_schema: str | None = None,
    ) -> LakeTarget:
        database = str(database)
        if not database.startswith(LAKE_PREFIX):
            raise LakeConfigurationError(
                f"{redact(database)!r}: only a PostgreSQL catalog is supported "
                f"({LAKE_PREFIX}<libpq connection string>)"
            )
        catalog = database[len(LAKE_PREFIX) :].strip()
        if not catalog:
            raise LakeConfigurationError(f"{LAKE_PREFIX} needs a libpq connection string")
        if metadata_schema is not None and not metadata_schema.isidentifier():
            raise LakeConfigurationError(
                f"metadata_schema must be a plain SQL identifier, not {metadata_schema!r}"
            )
        if object_store.is_object_store(data_path):
            try:
                object_store.check_location(str(data_path))
            except object_store.ObjectStoreConfigurationError as error:
                raise LakeConfigurationError(str(error)) from None
        return cls(catalog, str(data_path) if data_path else None, metadata_schema or None)

    @property
    def shown(self) -> str:
        """What logs and errors may show: the catalog without its password."""
        return redact(LAKE_PREFIX + self.catalog)

    def __repr__(self) -> str:
        return (
            f"LakeTarget({self.shown!r}, data_path={self.data_path!r}, "
            f"metadata_schema={self.metadata_schema!r})"
        )


_NEEDED_BY = {"ducklake": "a DuckLake warehouse", "s3": "an s3:// location"}


def extension_file(name: str) -> Path:
    """The extension binary shipped by the ``duckdb-extension-<name>`` package for the running
    DuckDB (an extension loads only into the DuckDB release it was built for)."""
    package = name.replace("_", "-")
    extra = "s3" if name in ("httpfs", "aws") else "ducklake"
    try:
        files = importlib.resources.files(f"duckdb_extension_{name}")
    except ModuleNotFoundError:
        raise LakeConfigurationError(
            f"{_NEEDED_BY[extra]} needs the duckdb-extension-{package} package: "
            f"pip install 'smsp-connector[{extra}]'"
        ) from None
    found = Path(str(files / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"))
    if not found.is_file():
        raise LakeConfigurationError(
            f"duckdb-extension-{package} has no build for duckdb {duckdb.__version__}: install "
            f"the versions of 'smsp-connector[{extra}]' (the extensions and duckdb share one "
            "version number)"
        )
    return found


def load_extension(conn: duckdb.DuckDBPyConnection, name: str) -> None:
    """``LOAD`` the extension ``name`` from its package's file (see :func:`extension_file`)."""
    conn.execute(f"LOAD {literal(str(extension_file(name)))}")


class LakeConnectError(duckdb.IOException):
    """The lake could not be attached (catalog unreachable, data path refused, …); the message
    holds no password."""


def open_lake(target: LakeTarget) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB instance with the lake attached as ``lake`` and in use."""
    conn = duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    try:
        for name in EXTENSIONS:
            load_extension(conn, name)
        if object_store.is_object_store(target.data_path):
            object_store.configure(conn, lambda name: load_extension(conn, name))
        options = []
        if target.data_path:
            options.append(f"DATA_PATH {literal(target.data_path)}")
        if target.metadata_schema:
            options.append(f"METADATA_SCHEMA {literal(target.metadata_schema)}")
        attach = f"ATTACH {literal(LAKE_PREFIX + target.catalog)} AS {ALIAS}"
        if options:
            attach += f" ({', '.join(options)})"
        failure = None
        for attempt in range(ATTACH_ATTEMPTS):
            try:
                conn.execute(attach)
                failure = None
                break
            except duckdb.Error as error:
                # DuckDB's message repeats the conninfo, password included.
                failure = " ".join(redact(str(error)).split())
                # Two processes creating a new lake at once: one's initialisation of the
                # catalog fails, and attaching again finds the lake the other made.
                if "Unable to connect" in failure:
                    break
            time.sleep(0.2 * (attempt + 1) + random.random() * 0.2)
        if failure is not None:
            # Raised outside the handler: DuckDB's own error (with the password) is not chained.
            raise LakeConnectError(f"cannot attach the lake {target.shown}: {failure}")
        conn.execute(f"SET GLOBAL ducklake_max_retry_count = {MAX_RETRY_COUNT}")
        conn.execute(f"USE {ALIAS}")
    except BaseException:
        conn.close()
        raise
    return conn


_lakes: dict[LakeTarget, tuple[int, duckdb.DuckDBPyConnection]] = {}
_lakes_lock = threading.Lock()


def lake_instance(target: LakeTarget) -> duckdb.DuckDBPyConnection:
    """The process's attached lake for ``target``, opened on first use (loading the extensions
    and attaching take most of a second; a cursor of it, a tenth of a millisecond)."""
    with _lakes_lock:
        held = _lakes.get(target)
        if held is not None and held[0] == os.getpid():
            return held[1]
        conn = open_lake(target)
        _lakes[target] = (os.getpid(), conn)
        return conn


def close_lakes() -> None:
    """Detach every lake this process opened (tests; a process exiting needs not call it)."""
    with _lakes_lock:
        for pid, conn in _lakes.values():
            if pid == os.getpid():
                conn.close()
        _lakes.clear()


@contextmanager
def lake_cursor(target: LakeTarget) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the lake (a cursor of the process's instance), closed afterwards."""
    cursor = lake_instance(target).cursor()
    try:
        cursor.execute(f"USE {ALIAS}")
        yield cursor
    finally:
        cursor.close()


COMMIT_CONFLICTS = ("Failed to commit DuckLake transaction", "Transaction conflict")


def is_commit_conflict(error: BaseException) -> bool:
    """Whether ``error`` is DuckLake refusing a commit because another process's commit won:
    nothing was written, and running the whole transaction again is safe."""
    return isinstance(error, duckdb.TransactionException) and any(
        text in str(error) for text in COMMIT_CONFLICTS
    )


def is_lake_connection(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``conn``'s current database is a DuckLake."""
    row = one_row(
        conn, "SELECT type FROM duckdb_databases() WHERE database_name = current_database()"
    )
    return bool(row) and row[0] == "ducklake"
