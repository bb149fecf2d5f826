"""``smsp stops …``, ``smsp push`` and ``smsp cancel``: ad hoc work for a data engineer.

They run the same operation core as the Dagster jobs
(:func:`~smsp_connector.operations.run.run_operation`) on the same warehouse: every change is
recorded in ``smsp.audit_log`` of the DuckDB file at ``SMSP_DUCKDB_PATH`` (job ``smsp-cli``),
rejected rows in ``smsp.input_rejections`` and ``<file>.rejected.csv``, rows that did not go
through in ``<file>.refused.csv``.

Exit status: 0 when every row ended as asked (or needed nothing), 1 on an error before or
instead of the work (no or wrong API key, unreachable server, unusable file, deletion cap), 2 on
a usage error, 3 when some rows were refused by the provider or failed after every retry.

Heavy libraries (pandas, DuckDB, the client) are imported inside the commands, so that
``smsp --help`` stays quick.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from smsp_connector.cli.account import current_settings
from smsp_connector.cli.console import err, one_line_errors, out
from smsp_connector.cli.running import execute, run
from smsp_connector.defaults import DEFAULT_REGION

if TYPE_CHECKING:
    from smsp_connector.operations.context import RunContext
    from smsp_connector.operations.run import RunReport


class LocalFile(click.Path):
    """A local file's path; an object-store URL is refused in one line (``Path`` would also
    fold ``s3://b/k`` into ``s3:/b/k``): the Dagster jobs read objects, this command does not."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and "://" in value:
            self.fail(
                f"{value}: the smsp command reads local files; an s3:// object is read by the "
                "Dagster jobs (the inbox sensor, or csv_path in run config)",
                param,
                ctx,
            )
        return super().convert(value, param, ctx)


LOCAL_FILE = LocalFile(path_type=Path)

_phone_column = click.option(
    "--phone-column", help="The phone column's header, when it is not recognised."
)
_format = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: the run's counts, stored plan (its id to apply) and unsent rows on stdout.",
)


def _known_region(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A region libphonenumber knows, upper-cased; any other is a usage error in one line."""
    import phonenumbers

    if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise click.BadParameter(f"unknown region {value!r} (FR, RE, GP, BE, DE...)")
    return value.upper()


default_region_option = click.option(
    "--default-region",
    default=DEFAULT_REGION,
    show_default=True,
    callback=_known_region,
    help="Region of numbers written in national form (0612…).",
)


def _push(source: Any, *, dry_run: bool, retry_rejected: bool, fmt: str) -> None:
    from smsp_connector.operations.run import Push

    push = Push(dry_run=dry_run, retry_rejected=retry_rejected)
    run("push" + (" (dry run)" if dry_run else ""), push, source, fmt)


def _phone_source(
    numbers: Sequence[str],
    file: Path | None,
    *,
    phone_column: str | None,
    default_region: str,
    extra: dict[str, str] | None = None,
) -> Any:
    from smsp_connector.operations.inputs import PhoneFile, PhoneValues

    if bool(numbers) == (file is not None):
        raise click.UsageError("give numbers or --file, not both")
    if file is not None:
        return PhoneFile(file, phone_column, default_region, current_settings().max_input_bytes)
    return PhoneValues(list(numbers), extra or {}, default_region)


@click.group()
def stops() -> None:
    """The stop list: list it, delete numbers (guarded). Numbers are added by smsp push."""


@stops.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.option("--limit", type=int, default=50, show_default=True, help="Rows shown as a table.")
@one_line_errors
def list_stops(fmt: str, limit: int) -> None:
    """Print the provider's whole stop list.

    \b
    Examples:
      smsp stops list
      smsp stops list --format csv > stop_list.csv
      smsp stops list --format json | jq length
    """
    from rich.table import Table

    from smsp_connector.operations.reports import formula_safe

    with current_settings().client() as client:
        entries = client.list_stops()
    # An opt-out time the provider wrote unreadably stays visible as an empty cell.
    rows = [
        (e.id, e.phone_number, e.created_at.isoformat() if e.created_at else "") for e in entries
    ]
    if fmt == "json":
        keys = ("id", "phone_number", "created_at")
        click.echo(json.dumps([dict(zip(keys, row, strict=True)) for row in rows], indent=1))
    elif fmt == "csv":
        import csv
        import sys

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(("id", "phone_number", "created_at"))
        writer.writerows([formula_safe(value) for value in row] for row in rows)
    else:
        table = Table("id", "phone number", "opted out (Paris time)")
        for row in rows[:limit]:
            table.add_row(*map(str, row))
        out.print(table)
        err.print(
            f"{len(rows):,} entries" + (f", first {limit} shown" if len(rows) > limit else "")
        )


@stops.command("add", hidden=True)
@click.argument("numbers", nargs=-1)
@click.option("--file", "file", type=LOCAL_FILE, help="A CSV file of numbers.")
@_phone_column
@default_region_option
@click.option("--dry-run", is_flag=True, help="Store the plan, send nothing.")
@_format
@one_line_errors
def add(
    numbers: tuple[str, ...],
    file: Path | None,
    phone_column: str | None,
    default_region: str,
    dry_run: bool,
    fmt: str,
) -> None:
    """The earlier name of ``smsp push`` (numbers, or --file): kept for the scripts that call
    it, out of the help, where one word names one operation."""
    source = _phone_source(numbers, file, phone_column=phone_column, default_region=default_region)
    _push(source, dry_run=dry_run, retry_rejected=False, fmt=fmt)


@stops.command("delete")
@click.argument("numbers", nargs=-1)
@click.option(
    "--file",
    "file",
    type=LOCAL_FILE,
    help="A CSV file with phone, consent_at and consent_source columns.",
)
@click.option("--consent-at", help="When fresh consent was given (with NUMBERS).")
@click.option("--consent-source", help="Where it was given: form, call, contract (with NUMBERS).")
@click.option("--confirm", is_flag=True, help="Really delete; without it this is a dry run.")
@click.option("--max-deletions", type=int, default=100, show_default=True)
@_phone_column
@default_region_option
@_format
@one_line_errors
def delete(
    numbers: tuple[str, ...],
    file: Path | None,
    consent_at: str | None,
    consent_source: str | None,
    confirm: bool,
    max_deletions: int,
    phone_column: str | None,
    default_region: str,
    fmt: str,
) -> None:
    """Remove numbers from the stop list, only with evidence of fresh consent.

    Deleting an opt-out turns marketing back on for someone who objected: each number needs a
    consent dated after its opt-out, the plan is a dry run unless --confirm, and a plan larger
    than --max-deletions stops before any call.

    \b
    Examples:
      smsp stops delete +33612345678 --consent-at 2026-11-20T10:00 \\
          --consent-source "web form #8812"            # dry run: stores the plan
      smsp plans apply <plan id>                       # deletes exactly that plan
      smsp stops delete --file consents.csv --confirm
    """
    from smsp_connector.operations.run import Delete

    evidence = {"consent_at": consent_at or "", "consent_source": consent_source or ""}
    source = _phone_source(
        numbers, file, phone_column=phone_column, default_region=default_region, extra=evidence
    )
    title = "delete" + ("" if confirm else " (dry run: add --confirm to delete)")
    run(title, Delete(confirm=confirm, max_deletions=max_deletions), source, fmt)


@click.command()
@click.argument("file", type=LOCAL_FILE, required=False)
@click.option(
    "--query",
    help="SQL on the configured DuckDB database whose rows are opt-outs, instead of a file.",
)
@click.option(
    "--number",
    "-n",
    "numbers",
    multiple=True,
    help="A number to push (any French or international form), instead of a file; repeat it.",
)
@_phone_column
@default_region_option
@click.option("--dry-run", is_flag=True, help="Store the plan, send nothing.")
@click.option(
    "--retry-rejected",
    is_flag=True,
    help="Send again the numbers the provider refused (code 9) in earlier runs.",
)
@_format
@one_line_errors
def push(
    file: Path | None,
    query: str | None,
    numbers: tuple[str, ...],
    phone_column: str | None,
    default_region: str,
    dry_run: bool,
    retry_rejected: bool,
    fmt: str,
) -> None:
    """Push opt-outs to the stop list: the numbers of a CSV file, of a query on the warehouse,
    or given with --number. Only the numbers a fresh list lacks are sent; every input row is
    audited. The phone column of a query is --phone-column, or its first column.

    \b
    Examples:
      smsp push -n "06 12 34 56 78" -n +33698765432
      smsp push inbox/add/export_crm.csv
      smsp push export.csv --phone-column "Tél. mobile" --dry-run
      smsp push export.csv --dry-run --format json | jq .plan.plan_id
      smsp push --query "SELECT phone FROM crm.unsubscribes WHERE brand = 'acme'"
      SMSP_RATE_LIMIT=50 smsp push big_export.csv
    """
    if (file is not None) + (query is not None) + bool(numbers) != 1:
        raise click.UsageError("give one of FILE, --query or --number")
    title = "push" + (" (dry run)" if dry_run else "")
    if query is None:
        source = _phone_source(
            numbers, file, phone_column=phone_column, default_region=default_region
        )
        _push(source, dry_run=dry_run, retry_rejected=retry_rejected, fmt=fmt)
        return

    def push_query(run: RunContext) -> RunReport:
        from smsp_connector.operations.table_sources import push_source
        from smsp_connector.settings import PushSource
        from smsp_connector.warehouse import query_columns

        column = phone_column or query_columns(run.warehouse, str(query))[0]
        source = PushSource(
            name="command_line", query=query, phone_column=column, default_region=default_region
        )
        return push_source(source, run, dry_run=dry_run, retry_rejected=retry_rejected)

    execute(title, push_query, fmt)


@click.command()
@click.argument("message_ids", nargs=-1)
@click.option("--file", "file", type=LOCAL_FILE, help="A CSV file of ids.")
@click.option("--id-column", help="The message id column's header, when it is not recognised.")
@click.option("--dry-run", is_flag=True, help="Store the plan, cancel nothing.")
@_format
@one_line_errors
def cancel(
    message_ids: tuple[str, ...], file: Path | None, id_column: str | None, dry_run: bool, fmt: str
) -> None:
    """Cancel scheduled sends (not possible less than 5 minutes before they go out).

    \b
    Examples:
      smsp cancel 5000 5001
      smsp cancel --file campaign_ids.csv --dry-run     # then: smsp plans apply <plan id>
    """
    from smsp_connector.operations.inputs import MessageIdFile, MessageIdValues
    from smsp_connector.operations.run import Cancel

    if bool(message_ids) == (file is not None):
        raise click.UsageError("give message ids or --file, not both")

    source = (
        MessageIdFile(file, id_column, current_settings().max_input_bytes)
        if file
        else MessageIdValues(list(message_ids))
    )
    run("cancel" + (" (dry run)" if dry_run else ""), Cancel(dry_run=dry_run), source, fmt)
