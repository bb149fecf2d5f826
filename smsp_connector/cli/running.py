"""One run of the operation core from the ``smsp`` command: the warehouse held, the client,
progress bars, then the report as a table for people or as JSON for CI jobs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from smsp_connector.cli.account import current_settings
from smsp_connector.cli.console import ProgressBars, print_report, print_report_json

if TYPE_CHECKING:  # imported by the commands that run (smsp --help does not pay for them)
    from smsp_connector.operations.context import RunContext
    from smsp_connector.operations.run import RunReport


@contextmanager
def held_warehouse() -> Iterator[Any]:
    """The configured warehouse, its file held for the whole block: nothing is sent unless the
    audit can be kept, and no other process takes the file mid-run."""
    from smsp_connector.warehouse import Warehouse

    settings = current_settings()
    with Warehouse.held(
        settings.database,
        schema=settings.schema,
        wait_seconds=settings.lock_wait_seconds,
        data_path=settings.data_path,
        metadata_schema=settings.metadata_schema,
    ) as warehouse:
        yield warehouse


def run(title: str, operation: Any, source: Any, fmt: str = "table") -> None:
    """Run one operation on ``source`` from the environment's settings; print its report."""
    from smsp_connector.operations.run import run_operation

    execute(title, lambda context: run_operation(operation, source, context), fmt)


def execute(title: str, work: Callable[[RunContext], RunReport], fmt: str = "table") -> None:
    """Call ``work(context)`` with a :class:`~smsp_connector.operations.context.RunContext` of
    the environment's settings, then print the report it returns: a table, or (``fmt`` json)
    one JSON document on stdout with the run's stored plan."""
    from smsp_connector.operations.context import RunContext
    from smsp_connector.warehouse.lake import redact
    from smsp_connector.warehouse.plans import load_plan

    settings = current_settings()
    with held_warehouse() as warehouse, settings.client() as client, ProgressBars() as progress:
        report = work(
            RunContext(
                client=client,
                warehouse=warehouse,
                run_id=f"cli-{uuid.uuid4()}",
                job="smsp-cli",
                progress=progress,
                account=settings.account_label,
            )
        )
        plan_id = getattr(report.summary, "plan_id", None)
        plan = load_plan(warehouse, plan_id) if fmt == "json" and plan_id else None
    if fmt == "json":
        print_report_json(report, plan)
    else:
        print_report(title, report, redact(settings.database))
