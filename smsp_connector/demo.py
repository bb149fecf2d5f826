"""``smsp demo``: the pipeline end to end against an embedded emulator, printed step by step.

Nothing leaves the machine: the emulator listens on a free loopback port with a throwaway key.
The DuckDB file and the exports stay in ``demo_output/`` for a look afterwards.
"""

from __future__ import annotations

import secrets
import shutil
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
from dagster_duckdb import DuckDBResource

from smsp_connector.client import MutationStatus, SmspClient
from smsp_connector.emulator import EmulatorServer
from smsp_connector.extract_assets import build_extract_assets
from smsp_connector.phone_numbers import NormalizedNumber, normalize_phone_number
from smsp_connector.resources import SmspResource

Echo = Callable[[str], None]

MESSY_INPUT = (
    "06 12 34 56 78",
    "+33 6 98 76 54 32",
    "0033 7 11 22 33 44",
    "0692123456",
    "3.36123E+10",
    "abc",
    "06123",
)

CAMPAIGN_RECIPIENTS = ("+33645454545", "+33678787878")
"""Customers who never opted out: a campaign may target them."""

_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_demo(echo: Echo = print, demo_size: int = 25, output: Path = Path("demo_output")) -> None:
    api_key = secrets.token_urlsafe(24)
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    with EmulatorServer(api_key=api_key, demo_size=demo_size, random_seed=7) as emulator:
        echo(f"SMS Partner emulator on {emulator.base_url} with {demo_size} demo opt-outs")
        refresh = _pipeline(emulator, api_key, output)
        with SmspClient(api_key, base_url=emulator.base_url, rate_limit=50) as client:
            _extract(refresh, output, echo, "1. Extract the stop list into DuckDB (Dagster run)")
            _client_story(client, emulator, echo)
            _extract(refresh, output, echo, "6. Extract again: the history sees the changes")
        _print_history_and_exports(output, echo)
        _print_request_counts(emulator, echo)
    echo(f"\nDuckDB file and exports kept in {output}/ (tables in schema smsp).")


def _pipeline(
    emulator: EmulatorServer, api_key: str, output: Path
) -> Callable[[], dg.ExecuteInProcessResult]:
    assets = build_extract_assets(export_dir=output / "exports")
    resources = {
        "smsp": SmspResource(api_key=api_key, base_url=emulator.base_url, rate_limit=50),
        "duckdb": DuckDBResource(database=str(output / "warehouse.duckdb")),
    }
    instance = dg.DagsterInstance.ephemeral()

    def refresh() -> dg.ExecuteInProcessResult:
        return dg.materialize(assets, resources=resources, instance=instance, run_config=_QUIET)

    return refresh


def _extract(
    refresh: Callable[[], dg.ExecuteInProcessResult], output: Path, echo: Echo, title: str
):
    result = refresh()
    echo(f"\n{title}: run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'}")
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        facts = ", ".join(
            f"{key.removeprefix('dagster/')} {metadata[key].value}"
            for key in ("dagster/row_count", "entered", "left")
            if key in metadata
        )
        echo(f"   materialized {event.asset_key.to_user_string():<32} {facts}")
    checks = ", ".join(
        f"{check.check_name} {'passed' if check.passed else 'FAILED'}"
        for check in result.get_asset_check_evaluations()
    )
    echo(f"   checks: {checks}")
    with duckdb.connect(str(output / "warehouse.duckdb"), read_only=True) as conn:
        latest = conn.execute(
            "SELECT stop_id, phone_number, created_at AT TIME ZONE 'Europe/Paris' AS created_paris "
            "FROM smsp.stop_list ORDER BY created_at DESC LIMIT 3"
        ).fetchdf()
    echo("   smsp.stop_list, the three most recent opt-outs:")
    _table(latest, echo)


def _client_story(client: SmspClient, emulator: EmulatorServer, echo: Echo) -> None:
    echo("\n2. Normalise a messy CSV column to E.164 (default region FR):")
    entries = client.list_stops()
    accepted: list[NormalizedNumber] = []
    for raw in (*MESSY_INPUT, entries[0].phone_number):
        result = normalize_phone_number(raw)
        if isinstance(result, NormalizedNumber):
            accepted.append(result)
            flag = f"; flagged: {result.warning}" if result.warning else ""
            echo(f"   {raw!r:<24} -> {result.e164} ({result.region}{flag})")
        else:
            echo(f"   {raw!r:<24} -> rejected: {result.message}")

    echo(f"\n3. Add the {len(accepted)} accepted numbers (concurrently, one call each):")
    outcomes = list(client.bulk_add(number.e164 for number in accepted))
    for outcome in sorted(outcomes, key=lambda o: o.target):
        echo(f"   {outcome.target:<16} {outcome.status.value:<13} code {outcome.code}")
    counts = Counter(o.status for o in outcomes)
    echo(
        f"   {counts[MutationStatus.APPLIED]} added, "
        f"{counts[MutationStatus.ALREADY_DONE]} already on the list, "
        f"{counts[MutationStatus.REJECTED]} refused by the provider (its code 9 is the authority)"
    )

    target = entries[1].phone_number
    echo(f"\n4. Delete {target} (resolved to stop id {entries[1].id} from a fresh list):")
    echo(f"   first call:  {client.delete_stop(entries[1].id).status.value}")
    echo(f"   second call: {client.delete_stop(entries[1].id).status.value} (code 4: already gone)")

    when = emulator.state.clock.now() + timedelta(hours=2)
    when = when.replace(minute=when.minute - when.minute % 5, second=0, microsecond=0)
    echo(f"\n5. Schedule a campaign for {when:%Y-%m-%d %H:%M %Z} by mistake, then roll it back:")
    sent = client.send_sms(CAMPAIGN_RECIPIENTS, "Soldes -50% ce week-end", scheduled_at=when)
    echo(f"   sent: message_id {sent.message_id}, {sent.nb_sms} SMS, {sent.cost} {sent.currency}")
    status = client.message_status(sent.message_id, CAMPAIGN_RECIPIENTS[0])
    echo(f"   status before: {status.status}")
    echo(f"   cancel:       {client.cancel_message(sent.message_id).status.value}")
    again = client.cancel_message(sent.message_id)
    echo(f"   cancel again: {again.status.value} (code {again.code}: already cancelled)")
    status = client.message_status(sent.message_id, CAMPAIGN_RECIPIENTS[0])
    echo(f"   status after:  {status.status}")


def _print_history_and_exports(output: Path, echo: Echo) -> None:
    with duckdb.connect(str(output / "warehouse.duckdb"), read_only=True) as conn:
        changes = conn.execute(
            "SELECT change, phone_number, stop_id, first_seen_at::TIMESTAMP(0) AS first_seen, "
            "last_seen_at::TIMESTAMP(0) AS last_seen FROM smsp.stop_list_history "
            "WHERE observed_at = (SELECT max(observed_at) FROM smsp.stop_list_history) "
            "ORDER BY change, phone_number"
        ).fetchdf()
    echo("\n7. smsp.stop_list_history, the changes the second extraction saw (UTC):")
    _table(changes, echo)
    echo("\n8. Suppression exports for the CRM:")
    for name in ("suppression_list.csv", "suppression_list_sha256.csv"):
        path = output / "exports" / name
        lines = path.read_text(encoding="utf-8").splitlines()
        echo(f"   {path} ({len(lines) - 1} rows), first lines:")
        for line in lines[:3]:
            echo(f"     {line}")


def _print_request_counts(emulator: EmulatorServer, echo: Echo) -> None:
    echo("\nRequests the emulator answered, by endpoint and outcome:")
    for endpoint, outcomes in sorted(emulator.stats()["endpoints"].items()):
        summary = ", ".join(f"{key} x{count}" for key, count in sorted(outcomes.items()))
        echo(f"   {endpoint:<16} {summary}")


def _table(frame: pd.DataFrame, echo: Echo) -> None:
    for line in frame.to_string(index=False).splitlines():
        echo(f"     {line}")
