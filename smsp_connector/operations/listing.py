"""The provider's stop list as it is now, for a push's or a deletion's plan and for applying it.

The list's body is streamed to a temporary file, as the extract does, and DuckDB reads it;
only the entries of the numbers the plan is about come back to Python. A push's numbers are
found in one streaming pass over the file, with no table, so its memory follows the plan, not
the list (`benchmarks/push_diff_bench.py`); a deletion loads each entry's JSON into a temporary
table within the run's memory cap, spilling past it, for the client's strict reader.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from smsp_connector.client import SmspClient, StopEntry
from smsp_connector.client.client import StopListFile
from smsp_connector.warehouse.stop_list import RawLoad, StopListStage, staging
from smsp_connector.warehouse.tables import Warehouse


def listed_numbers(
    client: SmspClient,
    warehouse: Warehouse,
    numbers: Iterable[str],
    *,
    memory_limit: str | None,
) -> set[str]:
    """Which of ``numbers`` are on the provider's list now (as the provider writes them)."""
    numbers = list(numbers)  # read twice when the list must be loaded
    with staging(warehouse, memory_limit=memory_limit) as stage:
        listed = client.download_stop_list(stage.folder / "stop_list.json")
        scanned = stage.scan_for_numbers(listed.path, numbers)
        if scanned is None:
            raw, found = stage.load(listed.path), None
        else:
            raw, found = scanned
        _confirm(client, listed, raw)
        return found if found is not None else stage.numbers_among(numbers)


def listed_entries(
    client: SmspClient,
    warehouse: Warehouse,
    numbers: Iterable[str],
    *,
    memory_limit: str | None,
) -> dict[str, StopEntry]:
    """The provider's entries now for those of ``numbers`` it lists (the last one of a number
    listed twice), read as :meth:`SmspClient.list_stops` reads them. Like it, raises
    :class:`~smsp_connector.client.SmspResponseError` when any entry of the list has no
    readable id or number: a deletion never acts on a list it cannot fully read."""
    with staging(warehouse, memory_limit=memory_limit) as stage:
        listed, _ = load_provider_list(client, stage, keep_entries=True)
        for position, text in stage.odd_entries():
            client.stop_entry(listed, position, json.loads(text))  # raises when unreadable
        entries = (
            client.stop_entry(listed, position, json.loads(text))
            for position, text in stage.entries_among(numbers)
        )
        return {entry.phone_number: entry for entry in entries}


def load_provider_list(
    client: SmspClient, stage: StopListStage, *, keep_entries: bool = False
) -> tuple[StopListFile, float]:
    """Download the provider's list into the stage's folder and load it (``keep_entries``:
    see :meth:`StopListStage.load`); the download's envelope and how long the download took
    (seconds). Raises :class:`~smsp_connector.client.SmspResponseError` for a list that is
    not JSON, disagrees with its ``nbData``, or holds an entry that is not an object or that
    repeats a key."""
    started = time.monotonic()
    listed = client.download_stop_list(stage.folder / "stop_list.json")
    seconds = time.monotonic() - started
    _confirm(client, listed, stage.load(listed.path, keep_entries=keep_entries))
    return listed, seconds


def _confirm(client: SmspClient, listed: StopListFile, raw: RawLoad) -> None:
    """What DuckDB read of ``listed`` handed to the client, which refuses a list that is not
    JSON, is short of its ``nbData``, or holds an entry that is not an object or repeats a
    key."""
    client.confirm_stop_list(
        listed,
        entries=raw.entries,
        first_not_an_object=raw.first_not_an_object,
        repeated_key=raw.repeated_key,
        malformed=raw.malformed,
    )
