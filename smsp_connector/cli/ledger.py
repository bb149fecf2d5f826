"""``smsp ledger [NUMBER]``: one number's opt-out story, from the warehouse's ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from smsp_connector.cli.commands import default_region_option
from smsp_connector.cli.console import one_line_errors
from smsp_connector.cli.running import held_warehouse


@click.command()
@click.argument("number", required=False)
@default_region_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@one_line_errors
def ledger(number: str | None, default_region: str, fmt: str) -> None:
    """When each opt-out was received, sent, listed by the provider, and ended.

    NUMBER in any form a file may hold it; without it, every number's episodes (JSON only).
    Episodes past retention are held under the number's pseudonym (hmac:...): found with the
    HMAC key set (SMSP_EXPORT_HMAC_KEY).

    \b
    Examples:
      smsp ledger "06 12 34 56 78"
      smsp ledger +33612345678 --format json
      smsp ledger --format json > ledger.json
    """
    from smsp_connector.intake.phone_numbers import NormalizedNumber, normalize_phone_number
    from smsp_connector.warehouse.ledger import holds_pseudonyms, ledger_rows

    e164 = None
    if number is not None:
        normalized = normalize_phone_number(number, default_region)
        if not isinstance(normalized, NormalizedNumber):
            raise click.ClickException(f"{number!r}: {normalized.message}")
        e164 = normalized.e164
    elif fmt != "json":
        raise click.UsageError("give a NUMBER, or --format json for the whole ledger")
    from smsp_connector.cli.account import current_settings

    key = current_settings().resolve_hmac_key()
    with held_warehouse() as warehouse:
        rows = ledger_rows(warehouse, e164, key=key)
        hidden = not rows and key is None and holds_pseudonyms(warehouse)
    if fmt == "json":
        click.echo(json.dumps([_document(row) for row in rows], indent=1))
    elif hidden:
        click.echo(
            f"{e164}: no opt-out under this number; episodes past retention are held under "
            "pseudonyms: set SMSP_EXPORT_HMAC_KEY (the key they were made with) to look them up"
        )
    elif not rows:
        click.echo(f"{e164}: no opt-out received, sent or listed in this warehouse")
    else:
        click.echo("\n".join(line for row in rows for line in _story(row)))


def _document(row: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in asdict(row).items()
    }


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return f"{moment.astimezone(UTC) if moment.tzinfo else moment:%Y-%m-%d %H:%M:%S} UTC"


def _story(row: Any) -> list[str]:
    """The episode in a few lines, each event with where it is recorded."""
    lines = [f"{row.phone_number}, opt-out {row.episode} ({row.status}, from the {row.origin})"]
    if row.phone_number.startswith("hmac:"):
        lines.append("  kept as the number's pseudonym since its retention ended")
    if row.received_at is not None:
        where = row.received_from or "-"
        if row.received_row is not None:
            where += f" row {row.received_row}"
        if row.received_cursor is not None:
            where += f" (cursor {row.received_cursor})"
        lines.append(
            f"  received  {_when(row.received_at)} from {where} (run {row.received_run_id})"
        )
    if row.sent_at is not None:
        lines.append(
            f"  sent      {_when(row.sent_at)}: {row.sent_outcome} "
            f"(plan {row.sent_plan_id}, run {row.sent_run_id})"
        )
    if row.found_listed_at is not None:
        lines.append(f"  found     {_when(row.found_listed_at)} on the list already")
    if row.refused_at is not None:
        lines.append(f"  refused   {_when(row.refused_at)} by the provider (code 9)")
    if row.listed_at is not None:
        opted = _when(row.provider_opted_out_at)
        lines.append(f"  listed    {_when(row.listed_at)} (the provider's opt-out time: {opted})")
    if row.honoured_at is not None and row.received_at is not None:
        lines.append(f"  honoured  {_when(row.honoured_at)}, {row.honoured_at - row.received_at}")
    if row.ended_at is not None:
        why = (
            f"deletion (plan {row.deletion_plan_id}, run {row.deletion_run_id}; consent "
            f"{_when(row.consent_at)}, {row.consent_source!r})"
            if row.ended_by == "deletion"
            else "leaving the provider's list, with no deletion of ours"
        )
        lines.append(f"  ended     {_when(row.ended_at)} by {why}")
    return lines
