"""What the ``smsp`` commands print: progress bars, summaries, the rows that did not go through,
and one-line errors instead of tracebacks."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
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

EXIT_PARTIAL = 3
EXIT_BROKEN_PIPE = 141
SHOWN_ROWS = 20
"""Rows that did not go through shown in the terminal; the report file has them all."""

# Piped or captured output keeps each table row on one line, for grep and logs.
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
out = Console(width=None if sys.stdout.isatty() else 200)
F = TypeVar("F", bound=Callable[..., Any])


def one_line_errors(command: F) -> F:
    """Expected failures become one clear line and exit status 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import duckdb

        from smsp_connector.client import (
            AuthenticationError,
            SmspConfigurationError,
            SmspError,
            SmspTransportError,
        )
        from smsp_connector.intake import IntakeError
        from smsp_connector.operations.delete import DeletionCapExceeded
        from smsp_connector.operations.plans import PlanRefused
        from smsp_connector.warehouse import WarehouseBusyError, WarehouseVersionError
        from smsp_connector.warehouse.upkeep import NotALakeError

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
            raise click.ClickException(f"cannot reach {_api_root()}: {error}") from None
        except (
            IntakeError,
            DeletionCapExceeded,
            PlanRefused,
            NotALakeError,
            SmspError,
            WarehouseBusyError,
            WarehouseVersionError,
        ) as error:
            raise click.ClickException(str(error)) from None
        except duckdb.Error as error:  # the warehouse cannot be opened or written
            raise click.ClickException(f"DuckDB: {str(error).splitlines()[0]}") from None
        except BrokenPipeError:
            # The reader of stdout (head, a pager) stopped reading: nothing to report. Later
            # writes go nowhere, and the exit status is a shell's for a process ended by SIGPIPE.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(EXIT_BROKEN_PIPE) from None
        except OSError as error:  # a report or a folder that cannot be written
            raise click.ClickException(f"{error.filename or ''}: {error.strerror}") from None

    return wrapper  # type: ignore[return-value]


def _api_root() -> str:
    """The configured API host, without the user, password, path or query a URL may carry (a
    key can hide in any of them)."""
    from urllib.parse import urlsplit

    from smsp_connector.cli.account import current_settings

    try:
        parts = urlsplit(current_settings().base_url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the SMS Partner API"
    return f"{parts.scheme}://{parts.hostname}{port}"


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


class ProgressBars:
    """Progress bars on stderr, shown from the first bar on: an error before any work (a bad
    file) is then one line, with no empty display before it."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=False,
        )
        self._started = False

    def __call__(self, total: int, what: str) -> _Bar:
        if not self._started:
            self._progress.start()
            self._started = True
        return _Bar(self._progress, total, what)

    def __enter__(self) -> ProgressBars:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._started:
            self._progress.stop()


def print_report(title: str, report: Any, database: str) -> None:
    """The summary first, then at most :data:`SHOWN_ROWS` rows that did not go through and the
    reports' paths; exits 3 when some rows did not end as asked."""
    import pandas as pd

    table = Table(title=title, show_header=False)
    for name, value in report.counts.items():
        table.add_row(name.replace("_", " "), str(value))
    out.print(table)
    err.print(f"audit: {report.audit_rows} row(s) in {database} (run {report.run_id})")
    unsent = report.unsent
    if not unsent.empty:
        shown = Table(
            "row", "value", "outcome", "code", "why", title="rows that did not go through"
        )
        for row in unsent.head(SHOWN_ROWS).itertuples(index=False):
            code = "" if pd.isna(row.provider_code) else str(int(row.provider_code))
            shown.add_row(
                str(row.source_row), str(row.target), str(row.outcome), code, str(row.reason)
            )
        err.print(shown)
        if len(unsent) > SHOWN_ROWS:
            err.print(f"... and {len(unsent) - SHOWN_ROWS} more")
    for what, path in (
        ("rejected input rows", report.rejection_report),
        ("rows not through", report.refusal_report),
    ):
        if path is not None:
            err.print(f"{what}: {path}")
    if not report.complete:
        raise SystemExit(EXIT_PARTIAL)


def print_report_json(report: Any, plan: Any) -> None:
    """The run as one JSON document on stdout: its counts, its stored plan
    (:func:`~smsp_connector.operations.plans.plan_document`), the input rows rejected and the
    rows that did not go through; exits 3 when some rows did not end as asked, as the table
    form does."""
    import json

    import pandas as pd

    from smsp_connector.operations.plans import plan_document
    from smsp_connector.warehouse import Outcome

    def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
        frame = frame.astype(object).where(frame.notna(), None)
        return [
            {**row, "source_row": None if row["source_row"] is None else int(row["source_row"])}
            | ({} if row["provider_code"] is None else {"provider_code": int(row["provider_code"])})
            for row in frame.to_dict("records")
        ]

    unsent = report.unsent
    rejected = unsent["outcome"] == Outcome.INVALID_INPUT
    document = {
        "operation": report.operation,
        "run_id": report.run_id,
        "complete": report.complete,
        "counts": report.counts,
        "plan": None if plan is None else plan_document(plan),
        "rejections": rows(unsent[rejected]),
        "not_done": rows(unsent[~rejected]),
        "reports": {
            "rejected": None if report.rejection_report is None else str(report.rejection_report),
            "refused": None if report.refusal_report is None else str(report.refusal_report),
        },
    }
    click.echo(json.dumps(document, indent=1, default=str))
    if not report.complete:
        raise SystemExit(EXIT_PARTIAL)
