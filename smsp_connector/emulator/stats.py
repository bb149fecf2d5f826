"""Per-endpoint outcome counters, as served by `GET /_emulator/stats`, and a request log.

Sparse: an endpoint appears once it has been called, an outcome once it has occurred. Outcome
keys: `code:<provider code>` for answered requests, `http:429|500|503` for injected HTTP errors,
`reset:before|after` for dropped connections.

Besides the counters, what a test needs to check a client's behaviour without timing it: each
endpoint's peak number of requests in flight at once, and a bounded log of the latest requests
(arrival time, outcome, `Retry-After` sent). Both are in the stats document only on demand
(`EmulatorServer.stats(detail=True)`, `GET /_emulator/stats?detail=1`), so it stays small.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass
from typing import Any

REQUEST_LOG_SIZE = 10_000
"""How many of the latest requests the log keeps (older ones are forgotten)."""


def code_outcome(code: int) -> str:
    return f"code:{code}"


def http_outcome(status: int) -> str:
    return f"http:{status}"


def reset_outcome(point: str) -> str:
    return f"reset:{point}"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One `/v1` request as the emulator saw it, logged once its outcome is known."""

    endpoint: str
    arrived_at: float
    """`time.monotonic()` when the request reached its endpoint, before any fault or latency.
    Only differences between records (or with `time.monotonic()` on this machine) mean anything."""
    outcome: str
    retry_after: int | None = None
    """The `Retry-After` seconds sent with a 429 or 503 answer, else None."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class EndpointStats:
    """Thread-safe: endpoint (without `/v1/`) -> outcome key -> count, plus requests in flight
    (current and peak per endpoint) and the log of the latest `REQUEST_LOG_SIZE` requests.

    A request calls `arrive` first, `count` once with its outcome, and `leave` when done. The
    cost per request is three short lock holds and one small record.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self._in_flight: defaultdict[str, int] = defaultdict(int)
        self._peak_in_flight: dict[str, int] = {}
        self._log: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_SIZE)

    def arrive(self, endpoint: str) -> float:
        """Count a request to `endpoint` as in flight; returns its arrival time (monotonic)."""
        with self._lock:
            in_flight = self._in_flight[endpoint] + 1
            self._in_flight[endpoint] = in_flight
            if in_flight > self._peak_in_flight.get(endpoint, 0):
                self._peak_in_flight[endpoint] = in_flight
            return time.monotonic()

    def leave(self, endpoint: str) -> None:
        """The request to `endpoint` is answered (or dropped): no longer in flight."""
        with self._lock:
            self._in_flight[endpoint] -= 1

    def count(
        self, endpoint: str, outcome: str, *, arrived_at: float, retry_after: int | None = None
    ) -> None:
        """Count one outcome of `endpoint` and log the request (`arrived_at` from `arrive`)."""
        record = RequestRecord(endpoint, arrived_at, outcome, retry_after)
        with self._lock:
            self._counts[endpoint][outcome] += 1
            self._log.append(record)

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {endpoint: dict(outcomes) for endpoint, outcomes in self._counts.items()}

    def peak_in_flight(self) -> dict[str, int]:
        """Per endpoint, the most requests that were in flight at once since the last reset.

        In flight means from arrival to the answer being sent, latency included: a server that
        handled requests one at a time would show 1 whatever the clients do.
        """
        with self._lock:
            return dict(self._peak_in_flight)

    def requests(self) -> list[RequestRecord]:
        """The latest requests (at most `REQUEST_LOG_SIZE`), in the order their outcomes were
        counted; sort by `arrived_at` for arrival order."""
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        """Zero the counters and the log. Requests still in flight stay counted as such, and
        the peak restarts from them."""
        with self._lock:
            self._counts.clear()
            self._log.clear()
            self._peak_in_flight = {e: n for e, n in self._in_flight.items() if n > 0}
