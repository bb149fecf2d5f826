"""A DuckLake's upkeep: small files merged, old snapshots expired, the files nobody needs then
deleted from the data path.

DuckLake never removes data by itself: every insert writes a Parquet file (or inlines a few rows
in the catalog), a delete only marks rows, and every snapshot keeps the files it saw. The daily
extract therefore grows the data path by a few files a day. Upkeep, in DuckLake's own order:
``ducklake_merge_adjacent_files`` (fewer, larger files; snapshots keep their view), then
``ducklake_expire_snapshots`` older than ``expire_older_than`` (their files are scheduled for
deletion, not deleted: a query may still read them), then ``ducklake_cleanup_old_files`` for the
files scheduled longer ago than ``delete_older_than``.

The warehouse's history is a table of its own (``stop_list_history``), not DuckLake's time travel,
so expiring snapshots loses no history this package keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from smsp_connector.warehouse.lake import ALIAS
from smsp_connector.warehouse.results import scalar
from smsp_connector.warehouse.tables import Warehouse


class NotALakeError(ValueError):
    """Upkeep is for a DuckLake warehouse (``ducklake:postgres:…``), not a DuckDB file."""


@dataclass(frozen=True, slots=True)
class LakeUpkeep:
    """What one upkeep did (or, in a dry run, would do)."""

    files_merged: int
    """Data files merged into larger ones (none in a dry run: DuckLake's merge has none)."""
    files_created: int
    snapshots_expired: int
    files_deleted: int
    """Files deleted from the data path (a dry run: those already scheduled and old enough)."""
    dry_run: bool
    files_before: int
    """Files under the lake's data path before the upkeep (live, of old snapshots, scheduled)."""
    files_after: int


def lake_upkeep(
    warehouse: Warehouse,
    *,
    expire_older_than: timedelta,
    delete_older_than: timedelta,
    dry_run: bool = False,
) -> LakeUpkeep:
    """Merge, expire and clean up the lake of ``warehouse`` (see the module); raises
    :class:`NotALakeError` for a warehouse in a DuckDB file."""
    with warehouse.connect() as (conn, _):
        if not warehouse.is_lake:
            raise NotALakeError("lake upkeep is for a ducklake: warehouse, not a DuckDB file")
        before = _stored_files(conn)
        merged = created = 0
        if not dry_run:
            for row in conn.execute(f"CALL ducklake_merge_adjacent_files('{ALIAS}')").fetchall():
                merged, created = merged + int(row[2]), created + int(row[3])
        expired = conn.execute(
            f"CALL ducklake_expire_snapshots('{ALIAS}', dry_run => ?, older_than => ?)",
            [dry_run, datetime.now(UTC) - expire_older_than],
        ).fetchall()
        deleted = conn.execute(
            f"CALL ducklake_cleanup_old_files('{ALIAS}', dry_run => ?, older_than => ?)",
            # Measured after the expiry: with no delay, the files it scheduled go at once.
            [dry_run, datetime.now(UTC) - delete_older_than],
        ).fetchall()
        after = _stored_files(conn)
    return LakeUpkeep(
        files_merged=merged,
        files_created=created,
        snapshots_expired=len(expired),
        files_deleted=len(deleted),
        dry_run=dry_run,
        files_before=before,
        files_after=after,
    )


def _stored_files(conn: duckdb.DuckDBPyConnection) -> int:
    """The files under the lake's data path, as its catalog records it (a glob: the same query
    lists a folder or an object-store prefix)."""
    data_path = scalar(
        conn, f"SELECT value FROM ducklake_options('{ALIAS}') WHERE option_name = 'data_path'"
    )
    return int(scalar(conn, "SELECT count(*) FROM glob(?)", [data_path.rstrip("/") + "/**"]))
