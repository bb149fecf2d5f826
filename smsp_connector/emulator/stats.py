"""Per-endpoint outcome counters, as served by `GET /_emulator/stats`.

Sparse: an endpoint appears once it has been called, an outcome once it has occurred. Outcome
keys: `code:<provider code>` for answered requests, `http:429|500|503` for injected HTTP errors,
`reset:before|after` for dropped connections.
"""

from __future__ import annotations

import threading
from collections import defaultdict


def code_outcome(code: int) -> str:
    return f"code:{code}"


def http_outcome(status: int) -> str:
    return f"http:{status}"


def reset_outcome(point: str) -> str:
    return f"reset:{point}"


class EndpointStats:
    """Thread-safe counters: endpoint (without `/v1/`) -> outcome key -> count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )

    def count(self, endpoint: str, outcome: str) -> None:
        with self._lock:
            self._counts[endpoint][outcome] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {endpoint: dict(outcomes) for endpoint, outcomes in self._counts.items()}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
