"""``smsp lake upkeep``: a DuckLake warehouse's files merged, old snapshots expired and the files
nobody needs deleted (:mod:`smsp_connector.warehouse.upkeep`)."""

from __future__ import annotations

from datetime import timedelta

import click

from smsp_connector.cli.console import one_line_errors, out

MAX_DAYS = 36_500
"""settings.MAX_DURATION in days (the settings module is imported only when a command runs)."""


@click.group()
def lake() -> None:
    """A DuckLake warehouse's upkeep."""


@lake.command("upkeep")
@click.option(
    "--expire-after-days",
    type=click.FloatRange(min=0, max=MAX_DAYS),
    help="Snapshots older than this are expired (their files scheduled for deletion) "
    "[default: SMSP_LAKE_EXPIRE_AFTER_DAYS, else 30].",
)
@click.option(
    "--delete-after-days",
    type=click.FloatRange(min=0, max=MAX_DAYS),
    help="Files scheduled for deletion longer ago than this are deleted "
    "[default: SMSP_LAKE_DELETE_AFTER_DAYS, else 7].",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@one_line_errors
def upkeep(expire_after_days: float | None, delete_after_days: float | None, dry_run: bool) -> None:
    """Merge the lake's small files, expire old snapshots, delete the files no one needs.

    \b
    Examples:
      smsp lake upkeep --dry-run
      smsp lake upkeep --expire-after-days 90 --delete-after-days 7
    """
    from rich.table import Table

    from smsp_connector.cli.account import current_settings
    from smsp_connector.cli.running import held_warehouse
    from smsp_connector.warehouse.upkeep import lake_upkeep

    settings = current_settings()
    with held_warehouse() as warehouse:
        done = lake_upkeep(
            warehouse,
            expire_older_than=settings.lake_expire_after
            if expire_after_days is None
            else timedelta(days=expire_after_days),
            delete_older_than=settings.lake_delete_after
            if delete_after_days is None
            else timedelta(days=delete_after_days),
            dry_run=dry_run,
        )
    table = Table(title="lake upkeep" + (" (dry run)" if dry_run else ""), show_header=False)
    for name in (
        "files_merged",
        "files_created",
        "snapshots_expired",
        "files_deleted",
        "files_before",
        "files_after",
    ):
        table.add_row(name.replace("_", " "), str(getattr(done, name)))
    out.print(table)
