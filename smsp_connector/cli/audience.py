"""``smsp audience check FILE|--query SQL``: a campaign's audience checked before the send."""

from __future__ import annotations

import json
from pathlib import Path

import click

from smsp_connector.cli.account import current_settings
from smsp_connector.cli.commands import LOCAL_FILE, default_region_option
from smsp_connector.cli.console import one_line_errors
from smsp_connector.cli.running import held_warehouse

OPTED_OUT_FOUND = 3
"""The exit status when the audience holds opted-out numbers (as for rows not through)."""


@click.group()
def audience() -> None:
    """A campaign audience checked against the opt-outs before the send."""


@audience.command("check")
@click.argument("file", type=LOCAL_FILE, required=False)
@click.option("--query", help="SQL on the warehouse whose rows are the audience, not a file.")
@click.option("--phone-column", help="The phone column (a query's: its first by default).")
@default_region_option
@click.option(
    "--write-clean",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the audience without its opted-out rows to this CSV file (a FILE's columns).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@one_line_errors
def check(
    file: Path | None,
    query: str | None,
    phone_column: str | None,
    default_region: str,
    write_clean: Path | None,
    fmt: str,
) -> None:
    """Find the audience's numbers that opted out: on the stop list, or received and not yet
    there. Any number form matches its E.164 form. Exit 3 when some are found; the numbers are
    shown as SHA-256 only.

    \b
    Examples:
      smsp audience check campaign.csv --write-clean campaign.clean.csv
      smsp audience check --query "SELECT mobile FROM crm.campaign_audience"
    """
    from smsp_connector.operations.audience import check_file, check_numbers
    from smsp_connector.warehouse import query_columns, read_source_rows

    if (file is None) == (query is None):
        raise click.UsageError("give a FILE or --query, not both")
    if write_clean is not None and file is None:
        raise click.UsageError("--write-clean writes a FILE's rows: give a FILE")
    with held_warehouse() as warehouse:
        if file is not None:
            result = check_file(
                warehouse,
                file,
                phone_column=phone_column,
                default_region=default_region,
                max_bytes=current_settings().max_input_bytes,
                write_clean=write_clean,
            )
        else:
            column = phone_column or query_columns(warehouse, str(query))[0]
            rows = read_source_rows(warehouse, str(query), phone_column=column)
            result = check_numbers(warehouse, list(rows.phones), default_region=default_region)
    counts = {
        "rows": result.rows,
        "opted_out_rows": result.opted_out_rows,
        "opted_out_numbers": result.opted_out_numbers,
        "unreadable_rows": result.unreadable_rows,
    }
    if fmt == "json":
        click.echo(json.dumps({**counts, "opted_out_sha256": list(result.samples)}, indent=1))
    else:
        click.echo(
            ", ".join(f"{name.replace('_', ' ')}: {value:,}" for name, value in counts.items())
        )
        for sample in result.samples:
            click.echo(f"  opted out: sha256 {sample}")
        if write_clean is not None:
            click.echo(f"clean audience: {write_clean}")
    if not result.passed:
        raise SystemExit(OPTED_OUT_FOUND)
