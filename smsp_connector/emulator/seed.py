"""Initial stop-list data: the provider's list export (JSON), a CSV file, or generated demo data.

Entries are returned as `(phoneNumber, createdAt)` text pairs and loaded without validation, so a
seed may hold the malformed values real provider data has. Ids are always assigned by the
emulator in file order: an `id` field or column is ignored.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .clock import PARIS, format_wire

SeedEntry = tuple[str, str]

# Mobile ranges libphonenumber accepts for France: 60-62, 64-68 and 73-79 (each 3-digit prefix
# followed by 6 free digits).
_DEMO_PREFIXES = tuple(f"6{n:02d}" for n in (*range(0, 30), *range(40, 90))) + tuple(
    f"7{n:02d}" for n in range(30, 100)
)
_DEMO_SPACE = len(_DEMO_PREFIXES) * 1_000_000
MAX_DEMO_SIZE = _DEMO_SPACE
"""The most distinct demo numbers `demo_entries` can generate."""
# i -> (i * stride + offset) mod space is a bijection (stride is coprime with 2, 3 and 5), so the
# numbers are distinct and scattered over the ranges rather than consecutive.
_DEMO_STRIDE = 48_271
_DEMO_OFFSET = 1_234_567
_DEMO_HISTORY = timedelta(days=3 * 365)


class SeedError(ValueError):
    """A seed file or payload that cannot be read as stop-list entries."""


def load_seed_file(path: str | os.PathLike[str], now: datetime) -> list[SeedEntry]:
    """Read a `.json` (provider list answer `{"data": [...]}` or bare list) or `.csv` seed.

    A missing `createdAt` becomes `now`.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    try:
        if suffix == ".json":
            with file.open(encoding="utf-8-sig") as stream:
                return entries_from_json(json.load(stream), now)
        if suffix == ".csv":
            with file.open(encoding="utf-8-sig", newline="") as stream:
                return _entries_from_csv(csv.DictReader(stream), now)
    except (OSError, json.JSONDecodeError, csv.Error) as exc:
        raise SeedError(f"cannot read seed file {file}: {exc}") from exc
    raise SeedError(f"unsupported seed file {file}: use a .json or .csv file")


def entries_from_json(document: Any, now: datetime) -> list[SeedEntry]:
    """Entries of a provider list answer (`{"data": [...]}`) or of a bare list of objects."""
    items = document.get("data") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise SeedError('expected a list of entries, or an object with a "data" list')
    default_created = format_wire(now)
    entries = []
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise SeedError(f"entry {position}: expected an object")
        entries.append(_entry(item, position, default_created))
    return entries


def _entries_from_csv(rows: csv.DictReader[str], now: datetime) -> list[SeedEntry]:
    if rows.fieldnames is None or "phoneNumber" not in rows.fieldnames:
        raise SeedError("a CSV seed needs a header row with a phoneNumber column")
    default_created = format_wire(now)
    return [_entry(row, position, default_created) for position, row in enumerate(rows, start=1)]


def _entry(item: dict[str, Any], position: int, default_created: str) -> SeedEntry:
    phone = item.get("phoneNumber")
    created = item.get("createdAt") or default_created
    if not isinstance(phone, str) or not isinstance(created, str):
        raise SeedError(f"entry {position}: phoneNumber and createdAt must be text")
    return phone, created


def demo_entries(count: int, now: datetime) -> Iterator[SeedEntry]:
    """`count` distinct valid French mobile numbers (+336…/+337…), the same for a given count,
    created in increasing order over the 3 years before `now`."""
    if not 0 <= count <= _DEMO_SPACE:
        raise ValueError(f"demo size must be within [0, {_DEMO_SPACE}]")
    # Naive Paris wall-clock arithmetic and isoformat: about twice as fast as aware datetimes and
    # strftime for a million entries, and a demo timestamp need not care about DST.
    start = now.astimezone(PARIS).replace(tzinfo=None, microsecond=0) - _DEMO_HISTORY
    history_seconds = int(_DEMO_HISTORY.total_seconds())
    for i in range(count):
        slot = (i * _DEMO_STRIDE + _DEMO_OFFSET) % _DEMO_SPACE
        prefix, line = divmod(slot, 1_000_000)
        created = start + timedelta(seconds=i * history_seconds // count)
        yield f"+33{_DEMO_PREFIXES[prefix]}{line:06d}", created.isoformat(" ")
