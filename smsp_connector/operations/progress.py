"""Progress lines for long runs: count, rate and estimated time left, at most every few seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Progress(Protocol):
    def advance(self, count: int = 1) -> None: ...

    def finish(self) -> None: ...


ProgressFactory = Callable[[int, str], Progress]
"""Makes the progress of ``total`` items of ``what``: log lines in Dagster, a bar in the CLI."""


def log_progress(log: Callable[[str], None]) -> ProgressFactory:
    return lambda total, what: ProgressReporter(total, what, log)


class ProgressReporter:
    def __init__(
        self, total: int, what: str, log: Callable[[str], None], interval: float = 5.0
    ) -> None:
        self._total, self._what, self._log, self._interval = total, what, log, interval
        self._started = self._last = time.monotonic()
        self.done = 0

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._log(self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self._started, 1e-9)
        rate = self.done / elapsed
        left = (self._total - self.done) / rate if rate else float("inf")
        eta = f"~{left:,.0f} s left" if left != float("inf") else "time left unknown"
        return f"{self.done:,}/{self._total:,} {self._what} ({rate:,.1f}/s, {eta})"

    def finish(self) -> None:
        elapsed = time.monotonic() - self._started
        self._log(f"{self.done:,}/{self._total:,} {self._what} in {elapsed:,.1f} s")


QUIET: ProgressFactory = log_progress(lambda line: None)
"""Progress that goes nowhere (a run nobody watches: tests, tools)."""
