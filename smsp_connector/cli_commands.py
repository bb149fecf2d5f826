"""``smsp stops …``, ``smsp push`` and ``smsp cancel``: ad hoc work for a data engineer.

They share the library and the audit log with the Dagster jobs: every change is recorded in
``smsp.audit_log`` of the DuckDB file at ``SMSP_DUCKDB_PATH`` (job ``smsp-cli``).

Exit status: 0 when every row ended as asked (or needed nothing), 1 on an error before or
instead of the work (no or wrong API key, unreachable server, unusable file, deletion cap), 2 on
a usage error, 3 when some rows were refused by the provider or failed after every retry.
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import click
import duckdb
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from smsp_connector.audit import AuditWriter
from smsp_connector.cancel import (
    MESSAGE_ID_ALIASES,
    cancel_messages,
    check_message_ids,
    ids_from_config,
)
from smsp_connector.client import (
    AuthenticationError,
    SmspClient,
    SmspConfigurationError,
    SmspError,
    SmspTransportError,
)
from smsp_connector.delete import CONSENT_COLUMNS, DeletionCapExceeded, delete_numbers
from smsp_connector.intake import (
    IntakeError,
    phone_intake_frame,
    read_phone_csv,
    read_text_column_csv,
)
from smsp_connector.push import push_numbers
from smsp_connector.warehouse import Tables

EXIT_PARTIAL = 3
_err = Console(stderr=True)
_out = Console()
F = TypeVar("F", bound=Callable[..., Any])


def _one_line_errors(command: F) -> F:
    """Expected failures become one clear line and exit status 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SmspConfigurationError as error:
            raise click.ClickException(str(error)) from None
        except AuthenticationError as error:
            raise click.ClickException(
                f"the provider refused the API key (code {error.code}: {error.provider_message}); "
                "check SMSP_API_KEY"
            ) from None
        except SmspTransportError as error:
            base = os.environ.get("SMSP_BASE_URL", "the SMS Partner API")
            raise click.ClickException(f"cannot reach {base}: {error}") from None
        except (IntakeError, DeletionCapExceeded, SmspError) as error:
            raise click.ClickException(str(error)) from None

    return wrapper  # type: ignore[return-value]


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:,.1f}/s")


class _Bar:
    def __init__(self, progress: Progress, total: int, what: str) -> None:
        self._progress = progress
        self._task = progress.add_task(what, total=total)

    def advance(self, count: int = 1) -> None:
        self._progress.advance(self._task, count)

    def finish(self) -> None:
        self._progress.refresh()


def _database() -> Path:
    return Path(os.environ.get("SMSP_DUCKDB_PATH", "data/warehouse.duckdb"))


@contextmanager
def _work(operation: str, *, dry_run: bool) -> Iterator[tuple[SmspClient, AuditWriter, Any]]:
    """A client from the environment, an audit writer on the warehouse, and a progress bar.

    After the work, the rows that did not end as asked are printed with their reasons.
    """
    database = _database()
    database.parent.mkdir(parents=True, exist_ok=True)
    rate = float(os.environ.get("SMSP_RATE_LIMIT", "20"))
    audit = AuditWriter(
        lambda: duckdb.connect(str(database)),
        run_id=f"cli-{uuid.uuid4()}",
        job="smsp-cli",
        operation=operation,
        dry_run=dry_run,
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeRemainingColumn(),
    )
    with (
        SmspClient.from_env(rate_limit=rate) as client,
        audit,
        Progress(*columns, console=_err, transient=False) as progress,
    ):
        yield client, audit, lambda total, what: _Bar(progress, total, what)
    _err.print(f"audit: {audit.written} row(s) in {database} (run {audit.run_id})")
    _print_problem_rows(database, audit.run_id)


_PROBLEMS = ("invalid_input", "refused", "rejected", "failed", "not_on_list")


def _print_problem_rows(database: Path, run_id: str) -> None:
    with duckdb.connect(str(database), read_only=True) as conn:
        rows = conn.execute(
            f"SELECT source_row, target, outcome, coalesce(detail, provider_message, '') "
            f"FROM {Tables.of(conn).qualified('audit_latest')} WHERE run_id = ? "
            f"AND outcome IN {_PROBLEMS} ORDER BY source_row",
            [run_id],
        ).fetchall()
    if rows:
        table = Table("row", "value", "outcome", "why", title="rows that did not go through")
        for row in rows:
            table.add_row(*map(str, row))
        _err.print(table)


def _summary(title: str, result: Any, problems: Sequence[str]) -> None:
    """Print the push, delete or cancel summary (a dataclass of counts); exit 3 on problems."""
    summary = asdict(result)
    table = Table(title=title, show_header=False)
    for name, value in summary.items():
        table.add_row(name.replace("_", " "), str(value))
    _out.print(table)
    if any(summary.get(name) for name in problems):
        raise SystemExit(EXIT_PARTIAL)


def _command_line_numbers(numbers: Sequence[str], extra: dict[str, str] | None = None):
    return phone_intake_frame(
        "command line",
        list(numbers),
        list(range(1, len(numbers) + 1)),
        extra={name: [value] * len(numbers) for name, value in (extra or {}).items()},
    )


def _push(intake: Any, *, dry_run: bool) -> None:
    with _work("add", dry_run=dry_run) as (client, audit, progress):
        summary = push_numbers(
            intake, client=client, audit=audit, dry_run=dry_run, progress=progress
        )
    _summary("push" + (" (dry run)" if dry_run else ""), summary, ("rejected", "failed"))


@click.group()
def stops() -> None:
    """The stop list: list it, add numbers, delete numbers (guarded)."""


@stops.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.option("--limit", type=int, default=50, show_default=True, help="Rows shown as a table.")
@_one_line_errors
def list_stops(fmt: str, limit: int) -> None:
    """Print the provider's whole stop list.

    \b
    Examples:
      smsp stops list
      smsp stops list --format csv > stop_list.csv
      smsp stops list --format json | jq length
    """
    with SmspClient.from_env() as client:
        entries = client.list_stops()
    rows = [(e.id, e.phone_number, e.created_at.isoformat()) for e in entries]
    if fmt == "json":
        keys = ("id", "phone_number", "created_at")
        click.echo(json.dumps([dict(zip(keys, row, strict=True)) for row in rows], indent=1))
    elif fmt == "csv":
        click.echo("id,phone_number,created_at")
        for row in rows:
            click.echo(",".join(map(str, row)))
    else:
        table = Table("id", "phone number", "opted out (Paris time)")
        for row in rows[:limit]:
            table.add_row(*map(str, row))
        _out.print(table)
        _err.print(
            f"{len(rows):,} entries" + (f", first {limit} shown" if len(rows) > limit else "")
        )


@stops.command("add")
@click.argument("numbers", nargs=-1)
@click.option("--file", "file", type=click.Path(path_type=Path), help="A CSV file of numbers.")
@click.option("--dry-run", is_flag=True, help="Plan and record, send nothing.")
@_one_line_errors
def add(numbers: tuple[str, ...], file: Path | None, dry_run: bool) -> None:
    """Add numbers (any French or international format) to the stop list.

    Only numbers missing from a fresh list are sent; every input row is audited.

    \b
    Examples:
      smsp stops add "06 12 34 56 78" +33698765432
      smsp stops add --file opt_outs.csv --dry-run
    """
    if bool(numbers) == (file is not None):
        raise click.UsageError("give numbers or --file, not both")
    _push(read_phone_csv(file) if file else _command_line_numbers(numbers), dry_run=dry_run)


@stops.command("delete")
@click.argument("numbers", nargs=-1)
@click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path),
    help="A CSV file with phone, consent_at and consent_source columns.",
)
@click.option("--consent-at", help="When fresh consent was given (with NUMBERS).")
@click.option("--consent-source", help="Where it was given: form, call, contract (with NUMBERS).")
@click.option("--confirm", is_flag=True, help="Really delete; without it this is a dry run.")
@click.option("--max-deletions", type=int, default=100, show_default=True)
@_one_line_errors
def delete(
    numbers: tuple[str, ...],
    file: Path | None,
    consent_at: str | None,
    consent_source: str | None,
    confirm: bool,
    max_deletions: int,
) -> None:
    """Remove numbers from the stop list, only with evidence of fresh consent.

    Deleting an opt-out turns marketing back on for someone who objected: each number needs a
    consent dated after its opt-out, the plan is a dry run unless --confirm, and a plan larger
    than --max-deletions stops before any call.

    \b
    Examples:
      smsp stops delete +33612345678 --consent-at 2026-11-20T10:00 \\
          --consent-source "web form #8812"            # dry run: shows the plan
      smsp stops delete --file consents.csv --confirm
    """
    if bool(numbers) == (file is not None):
        raise click.UsageError("give numbers or --file, not both")
    if numbers:
        evidence = {"consent_at": consent_at or "", "consent_source": consent_source or ""}
        intake = _command_line_numbers(numbers, evidence)
    else:
        intake = read_phone_csv(file, extra_columns=CONSENT_COLUMNS)
    with _work("delete", dry_run=not confirm) as (client, audit, progress):
        summary = delete_numbers(
            intake,
            client=client,
            audit=audit,
            confirm=confirm,
            max_deletions=max_deletions,
            progress=progress,
        )
    title = "delete" + ("" if confirm else " (dry run: add --confirm to delete)")
    _summary(title, summary, ("refused", "rejected", "failed"))


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Plan and record, send nothing.")
@_one_line_errors
def push(file: Path, dry_run: bool) -> None:
    """Push the numbers of a CSV file to the stop list (only the missing ones).

    \b
    Examples:
      smsp push inbox/add/export_crm.csv
      SMSP_RATE_LIMIT=50 smsp push big_export.csv
    """
    _push(read_phone_csv(file), dry_run=dry_run)


@click.command()
@click.argument("message_ids", nargs=-1)
@click.option("--file", "file", type=click.Path(path_type=Path), help="A CSV file of ids.")
@_one_line_errors
def cancel(message_ids: tuple[str, ...], file: Path | None) -> None:
    """Cancel scheduled sends (not possible less than 5 minutes before they go out).

    \b
    Examples:
      smsp cancel 5000 5001
      smsp cancel --file campaign_ids.csv
    """
    if bool(message_ids) == (file is not None):
        raise click.UsageError("give message ids or --file, not both")
    ids = (
        read_text_column_csv(file, column_aliases=MESSAGE_ID_ALIASES, what="message id column")
        if file
        else ids_from_config(message_ids)
    )
    with _work("cancel", dry_run=False) as (client, audit, progress):
        summary = cancel_messages(
            check_message_ids(ids), client=client, audit=audit, progress=progress
        )
    problems = ("too_late", "already_sent", "not_found", "other_refusals", "failed", "invalid")
    _summary("cancel", summary, problems)
