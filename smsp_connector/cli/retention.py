"""``smsp retention purge``: personal data past its retention cleared or pseudonymised, from a
stored plan (:mod:`smsp_connector.operations.retention`)."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from datetime import datetime

import click

from smsp_connector.cli.console import one_line_errors, out


@click.group()
def retention() -> None:
    """Personal data past its retention (SMSP_RETAIN_*_DAYS)."""


@retention.command("purge")
@click.option(
    "--dry-run", is_flag=True, help="Store the plan and count what would go; change nothing."
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@one_line_errors
def purge(dry_run: bool, fmt: str) -> None:
    """Clear raw rejected values past SMSP_RETAIN_REJECTED_DAYS; replace by its HMAC
    pseudonym every number whose opt-outs all ended more than SMSP_RETAIN_ENDED_DAYS ago
    (needs SMSP_EXPORT_HMAC_KEY). A standing opt-out is never touched.

    \b
    Examples:
      smsp retention purge --dry-run      # prints the plan id
      smsp plans apply 3f5c…              # applies exactly that plan
      smsp retention purge                # plans and applies at once
    """
    from smsp_connector.cli.account import current_settings
    from smsp_connector.cli.running import held_warehouse
    from smsp_connector.operations.retention import Retention
    from smsp_connector.operations.retention import purge as run_purge

    settings = current_settings()
    with held_warehouse() as warehouse:
        report = run_purge(
            warehouse,
            Retention(rejected=settings.retain_rejected, ended=settings.retain_ended),
            key=settings.resolve_hmac_key(),
            audit=cli_audit(settings.account_label),
            dry_run=dry_run,
        )
    print_purge(report, fmt)


def cli_audit(account: str | None):
    from smsp_connector.warehouse.retention import PurgeAudit

    return PurgeAudit(run_id=f"cli-{uuid.uuid4()}", job="smsp-cli", account=account)


def print_purge(report, fmt: str) -> None:
    """The purge's report: a table for people, one JSON document for tools."""
    if fmt == "json":
        document = {
            name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in asdict(report).items()
        }
        click.echo(json.dumps(document, indent=1))
        return
    from rich.table import Table

    title = "retention purge" + (" (dry run: nothing changed)" if report.dry_run else "")
    table = Table(title=title, show_header=False)
    for name, value in asdict(report).items():
        if name != "dry_run":
            table.add_row(
                name.replace("_", " "),
                f"{value:%Y-%m-%d %H:%M} UTC" if isinstance(value, datetime) else str(value),
            )
    out.print(table)
    if report.dry_run:
        out.print(f"apply it with: smsp plans apply {report.plan_id}")
    if report.numbers_kept_without_key:
        out.print(
            f"{report.numbers_kept_without_key} numbers past retention kept whole: set "
            "SMSP_EXPORT_HMAC_KEY to replace them by their pseudonyms"
        )
