"""The provider's stop list as it is now, for a push's or a deletion's plan and for applying it.

The list is read as the extract reads it: its body streamed to a temporary file, loaded by
DuckDB (within the run's memory cap, spilling past it), and only the entries of the numbers
the plan is about come back to Python. Memory follows the plan, not the list: pushing 5,000
numbers costs the same beside a list of 1,000,000 entries or of 5,000,000.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from smsp_connector.client import SmspClient, StopEntry
from smsp_connector.client.client import StopListFile
from smsp_connector.warehouse.stop_list import StopListStage, staging
from smsp_connector.warehouse.tables import Warehouse


def listed_numbers(
    client: SmspClient,
    warehouse: Warehouse,
    numbers: Iterable[str],
    *,
    memory_limit: str | None,
) -> set[str]:
    """Which of ``numbers`` are on the provider's list now (as the provider writes them)."""
    with _loaded(client, warehouse, memory_limit, keep_entries=False) as (_, stage):
        return stage.numbers_among(numbers)


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
    with _loaded(client, warehouse, memory_limit, keep_entries=True) as (listed, stage):
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
    (seconds). Raises :class:`~smsp_connector.client.SmspResponseError` for a list that
    disagrees with its ``nbData`` or holds an entry that is not an object."""
    started = time.monotonic()
    listed = client.download_stop_list(stage.folder / "stop_list.json")
    seconds = time.monotonic() - started
    raw = stage.load(listed.path, keep_entries=keep_entries)
    client.confirm_stop_list(
        listed, entries=raw.entries, first_not_an_object=raw.first_not_an_object
    )
    return listed, seconds


@contextmanager
def _loaded(
    client: SmspClient, warehouse: Warehouse, memory_limit: str | None, *, keep_entries: bool
) -> Iterator[tuple[StopListFile, StopListStage]]:
    with staging(warehouse, memory_limit=memory_limit) as stage:
        listed, _ = load_provider_list(client, stage, keep_entries=keep_entries)
        yield listed, stage
