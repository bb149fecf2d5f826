"""The emulator's clock: French local time that tests can move without sleeping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
WIRE_FORMAT = "%Y-%m-%d %H:%M:%S"
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 1, 1, tzinfo=UTC)
"""The range the clock may be set or moved within: every date computation the emulator makes
from its clock (a send due up to the end of 9999, five minutes before it) stays on the calendar,
with a year of real running time to spare."""


def to_paris(moment: datetime) -> datetime:
    """Return `moment` as an aware Europe/Paris datetime (a naive one is taken as Paris time)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=PARIS)
    return moment.astimezone(PARIS)


def utc(moment: datetime) -> datetime:
    """`moment` as a UTC instant (a naive one is taken as Paris time).

    Decisions compare instants, never wall times: Python compares and subtracts two datetimes
    of the same zone by their wall clocks, which is wrong by an hour across a DST change.
    """
    return to_paris(moment).astimezone(UTC)


def paris_wall_time(naive: datetime) -> datetime:
    """The instant a Paris wall-clock reading names, as an aware Paris datetime.

    A reading skipped by the spring change (02:30 on the last Sunday of March) is the instant
    one hour later on the wall (03:30 summer time); a reading the autumn change repeats is its
    first occurrence (summer time). Raises OverflowError at the edges of the calendar.
    """
    return naive.replace(tzinfo=PARIS).astimezone(UTC).astimezone(PARIS)


def format_wire(moment: datetime) -> str:
    """The provider's timestamp text: `YYYY-MM-DD HH:MM:SS`, Paris local time, no zone."""
    return to_paris(moment).strftime(WIRE_FORMAT)


def parse_wire(text: str) -> datetime:
    """The provider's timestamp text as an aware Paris datetime (ValueError if malformed)."""
    return datetime.strptime(text, WIRE_FORMAT).replace(tzinfo=PARIS)


def _checked_offset(real: datetime, target: Callable[[], datetime]) -> timedelta:
    """The offset from `real` to `target()`, if that is a time the clock may show."""
    reason = f"the clock must stay between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)"
    try:
        moment = target()
    except (OverflowError, ValueError) as exc:
        raise ValueError(reason) from exc
    if not EARLIEST <= moment < LATEST:
        raise ValueError(reason)
    return moment - real


class EmulatorClock:
    """Wall-clock time plus an adjustable offset.

    The clock keeps running at real speed; `advance` and `set` only shift it, so a test can make a
    scheduled message "within 5 minutes" or "already sent" without sleeping. Both refuse (with
    ValueError, the clock unchanged) a time outside `EARLIEST`..`LATEST`.
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
            real = datetime.now(UTC)
            self._offset = _checked_offset(real, lambda: real + self._offset + delta)
        return self.now()

    def set(self, moment: datetime) -> datetime:
        """Make now equal `moment` (naive = Paris time); the clock keeps running from there."""
        with self._lock:
            real = datetime.now(UTC)
            self._offset = _checked_offset(real, lambda: utc(moment))
        return self.now()

    def reset(self) -> None:
        """Follow the real wall clock again."""
        with self._lock:
            self._offset = timedelta(0)
