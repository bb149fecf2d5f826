"""``smsp demo``: the client end to end against an embedded emulator, printed step by step.

Nothing leaves the machine: the emulator listens on a free loopback port, with a throwaway key.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from smsp_connector.client import MutationStatus, SmspClient
from smsp_connector.emulator import EmulatorServer
from smsp_connector.phone_numbers import NormalizedNumber, normalize_phone_number

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


def run_demo(echo: Callable[[str], None] = print, demo_size: int = 25) -> None:
    api_key = secrets.token_urlsafe(24)
    with EmulatorServer(api_key=api_key, demo_size=demo_size, random_seed=7) as emulator:
        echo(f"SMS Partner emulator on {emulator.base_url} with {demo_size} demo opt-outs")
        with SmspClient(api_key, base_url=emulator.base_url, rate_limit=50) as client:
            _walk_through(client, emulator, echo)
        _print_request_counts(emulator, echo)


def _walk_through(client: SmspClient, emulator: EmulatorServer, echo: Callable[[str], None]):
    entries = client.list_stops()
    echo(f"\n1. List: {len(entries)} numbers on the stop list; the three most recent:")
    for entry in sorted(entries, key=lambda e: e.created_at)[-3:]:
        opted_out = f"{entry.created_at:%Y-%m-%d %H:%M %Z}"
        echo(f"   id {entry.id:>6}  {entry.phone_number:<16} opted out {opted_out}")

    echo("\n2. Normalise a messy CSV column to E.164 (default region FR):")
    raw_values = (*MESSY_INPUT, entries[0].phone_number)
    accepted: list[NormalizedNumber] = []
    for raw in raw_values:
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

    target = next(number.e164 for number in accepted if number.is_valid)
    stop_id = next(e.id for e in client.list_stops() if e.phone_number == target)
    echo(f"\n4. Delete {target} (resolved to stop id {stop_id} from a fresh list):")
    echo(f"   first call:  {client.delete_stop(stop_id).status.value}")
    echo(f"   second call: {client.delete_stop(stop_id).status.value} (code 4: already gone)")

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

    credits = client.account().credits
    echo(f"\n6. Credits left: {credits.credit_sms} SMS ({credits.balance} {credits.currency})")
    echo(f"   The stop list now holds {len(client.list_stops())} numbers.")


def _print_request_counts(emulator: EmulatorServer, echo: Callable[[str], None]) -> None:
    echo("\nRequests the emulator answered, by endpoint and outcome:")
    for endpoint, outcomes in sorted(emulator.stats()["endpoints"].items()):
        summary = ", ".join(f"{key} x{count}" for key, count in sorted(outcomes.items()))
        echo(f"   {endpoint:<16} {summary}")
