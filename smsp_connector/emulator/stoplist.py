"""Storage of the stop list, with each entry's JSON pre-encoded for fast list answers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring_ascii as _json_string

from .clock import format_wire, parse_wire

FIRST_STOP_ID = 1000


@dataclass(frozen=True, slots=True)
class StoredStop:
    """One stop-list entry as the provider lists it.

    `created_at` is the provider's text (`YYYY-MM-DD HH:MM:SS`, Paris time) exactly as served:
    seeded provider data may be malformed on purpose, so it is not forced into a datetime.
    """

    id: int
    phone_number: str
    created_at: str

    def created_at_datetime(self) -> datetime:
        """`created_at` as an aware Europe/Paris datetime (ValueError if it is malformed)."""
        return parse_wire(self.created_at)


def _fragment(stop_id: int, phone: str, created: str) -> bytes:
    """The entry's JSON object, encoded once so a 1M-entry list is served by a join."""
    phone_json, created_json = _json_string(phone), _json_string(created)
    text = f'{{"id":{stop_id},"phoneNumber":{phone_json},"createdAt":{created_json}}}'
    return text.encode("ascii")


class StopList:
    """Entries in id order plus a number -> id index. Not thread-safe: `EmulatorState` locks it.

    Ids come from a counter that is never rewound (not by deletion, nor by `clear`), so an id is
    never reused. `version` changes on every mutation; the list answer is cached against it.
    """

    def __init__(self) -> None:
        self._rows: dict[int, tuple[str, str]] = {}
        self._fragments: dict[int, bytes] = {}
        self._by_number: dict[str, int] = {}
        self._next_id = FIRST_STOP_ID
        self.version = 0

    def __len__(self) -> int:
        return len(self._rows)

    def id_for(self, phone: str) -> int | None:
        return self._by_number.get(phone)

    def add(self, phone: str, created: datetime | str) -> int:
        """Append an entry (no validation) and return its new id."""
        self.extend(((phone, created),))
        return self._next_id - 1

    def extend(self, entries: Iterable[tuple[str, datetime | str]]) -> int:
        """Append entries as given (no validation, duplicates kept); returns how many."""
        rows, fragments, index = self._rows, self._fragments, self._by_number
        next_id = self._next_id
        for phone, created in entries:
            created_text = created if isinstance(created, str) else format_wire(created)
            rows[next_id] = (phone, created_text)
            fragments[next_id] = _fragment(next_id, phone, created_text)
            index[phone] = next_id
            next_id += 1
        added = next_id - self._next_id
        self._next_id = next_id
        self.version += 1
        return added

    def remove(self, stop_id: int) -> bool:
        """Delete the entry `stop_id`; False when there is none."""
        row = self._rows.pop(stop_id, None)
        if row is None:
            return False
        del self._fragments[stop_id]
        if self._by_number.get(row[0]) == stop_id:
            del self._by_number[row[0]]
        self.version += 1
        return True

    def clear(self) -> None:
        """Drop every entry; the id counter keeps running."""
        self._rows.clear()
        self._fragments.clear()
        self._by_number.clear()
        self.version += 1

    def entries(self) -> list[StoredStop]:
        return [StoredStop(i, phone, created) for i, (phone, created) in self._rows.items()]

    def rows(self) -> list[tuple[int, str, str]]:
        """`(id, phoneNumber, createdAt)` in id order."""
        return [(i, phone, created) for i, (phone, created) in self._rows.items()]

    def fragments(self) -> list[bytes]:
        """The entries' JSON objects in id order (a shallow copy, safe to use unlocked)."""
        return list(self._fragments.values())
