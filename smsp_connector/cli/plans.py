"""``smsp plans show|apply``: a stored plan read, or applied by its id.

A dry run (``smsp push --dry-run``, ``smsp stops delete`` without ``--confirm``, ``smsp cancel
--dry-run``) stores its plan and names its id; ``smsp plans apply ID`` applies exactly that
plan, once, while it is younger than ``SMSP_PLAN_MAX_AGE_HOURS``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from smsp_connector.cli.account import current_settings
from smsp_connector.cli.console import err, one_line_errors, out
from smsp_connector.cli.running import execute, held_warehouse

if TYPE_CHECKING:
    from smsp_connector.operations.context import RunContext
    from smsp_connector.operations.run import RunReport


@click.group()
def plans() -> None:
    """Stored plans: show one, apply one (a dry run's)."""


def _stored(warehouse: Any, plan_id: str) -> Any:
    from smsp_connector.warehouse.plans import load_plan

    plan = load_plan(warehouse, plan_id)
    if plan is None:
        raise click.ClickException(f"no plan {plan_id!r}")
    return plan


def _purge_plan(plan_id: str) -> bool:
    """Whether ``plan_id`` is a retention purge's plan (applied without the provider)."""
    from smsp_connector.warehouse.retention import PURGE_OPERATION

    with held_warehouse() as warehouse:
        plan = _stored(warehouse, plan_id)
    return plan.operation == PURGE_OPERATION


@plans.command("show")
@click.argument("plan_id")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--limit", type=int, default=50, show_default=True, help="Targets shown as a table.")
@one_line_errors
def show(plan_id: str, fmt: str, limit: int) -> None:
    """Print a stored plan: what made it, whether it was applied, and its targets.

    \b
    Examples:
      smsp plans show 3f5c…            # a table
      smsp plans show 3f5c… --format json | jq .targets
    """
    from rich.table import Table

    from smsp_connector.operations.plans import plan_document

    with held_warehouse() as warehouse:
        document = plan_document(_stored(warehouse, plan_id))
    if fmt == "json":
        click.echo(json.dumps(document, indent=1))
        return
    fields = Table(title=f"plan {plan_id}", show_header=False)
    for name, value in document.items():
        if name != "targets":
            fields.add_row(name.replace("_", " "), "" if value is None else str(value))
    out.print(fields)
    targets = document["targets"]
    if targets:
        table = Table(*[name.replace("_", " ") for name in targets[0]], title="targets")
        for target in targets[:limit]:
            table.add_row(*["" if value is None else str(value) for value in target.values()])
        out.print(table)
    if len(targets) > limit:
        err.print(f"{len(targets):,} targets, first {limit} shown")


@plans.command("apply")
@click.argument("plan_id")
@click.option(
    "--max-deletions",
    type=int,
    default=100,
    show_default=True,
    help="A deletion plan larger than this stops before any call.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@one_line_errors
def apply(plan_id: str, max_deletions: int, fmt: str) -> None:
    """Apply a stored plan: exactly its targets, once (a deletion's guard checked again).

    \b
    Examples:
      smsp push export.csv --dry-run      # prints the plan id
      smsp plans apply 3f5c…
    """
    from smsp_connector.client import MutationKind
    from smsp_connector.operations.inputs import StoredPlan
    from smsp_connector.operations.run import Cancel, Delete, Push, run_operation

    settings = current_settings()
    max_age = settings.plan_max_age
    if _purge_plan(plan_id):
        from smsp_connector.cli.retention import cli_audit, print_purge
        from smsp_connector.operations.retention import apply_purge_plan

        with held_warehouse() as warehouse:
            report = apply_purge_plan(
                warehouse,
                plan_id,
                key=settings.resolve_hmac_key(),
                audit=cli_audit(settings.account_label),
                max_age=max_age,
            )
        print_purge(report, fmt)
        return

    def apply_stored(run: RunContext) -> RunReport:
        # The plan is read on the warehouse the run holds: its operation picks the use case.
        plan = _stored(run.warehouse, plan_id)
        operation = {
            MutationKind.ADD: Push(plan_id=plan_id, plan_max_age=max_age),
            MutationKind.DELETE: Delete(
                plan_id=plan_id, plan_max_age=max_age, max_deletions=max_deletions
            ),
            MutationKind.CANCEL: Cancel(plan_id=plan_id, plan_max_age=max_age),
        }[plan.operation]
        return run_operation(operation, StoredPlan(plan_id), run)

    execute(f"apply plan {plan_id[:12]}", apply_stored, fmt)
