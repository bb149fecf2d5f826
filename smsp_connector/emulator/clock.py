"""The emulator's clock: French local time that tests can move without sleeping."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
WIRE_FORMAT = "%Y-%m-%d %H:%M:%S"


def to_paris(moment: datetime) -> datetime:
    """Return `moment` as an aware Europe/Paris datetime (a naive one is taken as Paris time)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=PARIS)
    return moment.astimezone(PARIS)


def format_wire(moment: datetime) -> str:
    """The provider's timestamp text: `YYYY-MM-DD HH:MM:SS`, Paris local time, no zone."""
    return to_paris(moment).strftime(WIRE_FORMAT)


def parse_wire(text: str) -> datetime:
    """The provider's timestamp text as an aware Paris datetime (ValueError if malformed)."""
    return datetime.strptime(text, WIRE_FORMAT).replace(tzinfo=PARIS)


class EmulatorClock:
    """Wall-clock time plus an adjustable offset.

    The clock keeps running at real speed; `advance` and `set` only shift it, so a test can make a
    scheduled message "within 5 minutes" or "already sent" without sleeping.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)

    def now(self) -> datetime:
        """The emulator's current time, aware, in Europe/Paris."""
        with self._lock:
            offset = self._offset
        # Shift in UTC, then convert: adding to a Paris wall time would ignore DST changes.
        return (datetime.now(UTC) + offset).astimezone(PARIS)

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock by `delta` (may be negative); returns the new now."""
        with self._lock:
            self._offset += delta
        return self.now()

    def set(self, moment: datetime) -> datetime:
        """Make now equal `moment` (naive = Paris time); the clock keeps running from there."""
        target = to_paris(moment)
        with self._lock:
            self._offset = target - datetime.now(UTC)
        return self.now()

    def reset(self) -> None:
        """Follow the real wall clock again."""
        with self._lock:
            self._offset = timedelta(0)
