"""The `stop-sms/list` answer body, cached per format until the stop list changes."""

from __future__ import annotations

import threading

from .responses import JSON, stop_list_json, stop_list_xml
from .state import EmulatorState


class StopListBodies:
    """Builds the list answer outside the state lock and keeps it until the list changes.

    A 1,000,000-entry JSON list is a join of pre-encoded entries (well under a second); a repeated
    list of an unchanged stop list costs nothing. The XML form is written with lxml.
    """

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[int, bytes]] = {}

    def body(self, fmt: str) -> bytes:
        version = self._state.stop_list_version()
        with self._lock:
            cached = self._cache.get(fmt)
        if cached is not None and cached[0] == version:
            return cached[1]
        if fmt == JSON:
            version, fragments = self._state.stop_list_fragments()
            body = stop_list_json(fragments)
        else:
            version, rows = self._state.stop_list_rows()
            body = stop_list_xml(len(rows), rows)
        with self._lock:
            self._cache[fmt] = (version, body)
        return body
