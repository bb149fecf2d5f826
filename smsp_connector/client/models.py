"""Typed results returned by the SMS Partner client."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

PROVIDER_TZ = ZoneInfo("Europe/Paris")
"""The provider writes local French time with no zone (``YYYY-MM-DD HH:MM:SS``)."""

PROVIDER_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


EARLIEST_TIME = datetime(1677, 9, 22)
LATEST_TIME = datetime(2262, 4, 10, 23, 59, 59, 999999)
"""The dates this project reads (wall-clock, any zone): the warehouse's nanosecond timestamps
hold 1677-09-21 to 2262-04-11, and a day's margin keeps every offset's UTC instant inside. A
date outside (``0001-01-01``, a common "no date" placeholder) is refused, row by row, as an
unreadable date: Python's datetime would overflow moving it to UTC, pandas would refuse it."""

TIME_RANGE_TEXT = "between 1677-09-22 and 2262-04-10"


def in_time_range(moment: datetime) -> bool:
    """Whether ``moment``'s wall-clock time (its zone aside) lies within :data:`EARLIEST_TIME`
    and :data:`LATEST_TIME`: the one rule for every date read from a file, a table or the
    provider."""
    return EARLIEST_TIME <= moment.replace(tzinfo=None) <= LATEST_TIME


def parse_provider_time(text: str) -> datetime:
    """Parse a provider timestamp into an aware Europe/Paris datetime.

    In the hour repeated when clocks go back (last Sunday of October) the string is ambiguous;
    Python's ``fold=0`` picks the first occurrence (summer time), which is at most one hour early.
    """
    return datetime.strptime(text, PROVIDER_TIME_FORMAT).replace(tzinfo=PROVIDER_TZ)


def paris_instants(wall: datetime) -> tuple[datetime, datetime]:
    """The earliest and the latest UTC instants a Paris wall-clock time may mean.

    They differ by an hour in the hour repeated when clocks go back (both occurrences) and in
    the hour skipped when they go forward (a time that never was, read with either offset);
    elsewhere they are the same instant. ``wall``'s own zone, if any, is ignored.
    """
    naive = wall.replace(tzinfo=None)
    readings = [naive.replace(tzinfo=PROVIDER_TZ, fold=fold).astimezone(UTC) for fold in (0, 1)]
    return min(readings), max(readings)


@dataclass(frozen=True, slots=True)
class StopEntry:
    """One opt-out on the provider's stop list."""

    id: int
    phone_number: str
    created_at: datetime | None
    """When the number opted out (aware, Europe/Paris), or ``None`` when the provider's
    ``createdAt`` is not the documented ``YYYY-MM-DD HH:MM:SS`` (``null``,
    ``0000-00-00 00:00:00``, ISO with an offset…): the opt-out stands, and a guarded deletion
    refuses to remove it."""


class MutationKind(StrEnum):
    """A change of the provider's state, named as stored in ``audit_log.operation`` and
    ``plans.operation``: the provider's verbs. The connector calls adding opt-outs a *push*
    (``smsp push``, job ``push_stop_numbers``); its stored name stays ``add``, which every plan's
    content-hash id and the audit log's history hold."""

    ADD = "add"
    DELETE = "delete"
    CANCEL = "cancel"


class MutationStatus(StrEnum):
    """What became of one requested change of the provider's state."""

    APPLIED = "applied"
    """The provider made the change now (code 200)."""
    ALREADY_DONE = "already_done"
    """The goal was already reached: add → 3, delete → 4, cancel → 5."""
    REJECTED = "rejected"
    """The provider refused with a coded error (9 invalid number, 6 too late, 7 already sent…)."""
    FAILED = "failed"
    """No usable answer after every retry, or an answer that could not be read (a success with
    an unreadable ``stopId``…; ``message`` quotes it): the change may or may not have been
    applied, and may be retried later, after checking the provider's state."""


@dataclass(frozen=True, slots=True)
class MutationResult:
    """The outcome of one add, delete or cancel, with what the provider said."""

    kind: MutationKind
    target: str
    """E.164 number (add), stop id (delete) or message id (cancel), as text."""
    status: MutationStatus
    code: int | None
    """The provider's code (200, 3, 4, 5, 9…), or ``None`` when it never answered."""
    message: str | None
    attempts: int
    stop_id: int | None = None
    """For a fresh add: the id of the new stop-list entry."""
    uncertain_attempts: tuple[int, ...] = ()
    """Earlier attempts of this call that got no usable answer after the request may have
    reached the provider (a timeout or a dropped connection once sent, a 5xx)."""

    @property
    def succeeded(self) -> bool:
        """True when the provider's state is now what was asked for."""
        return self.status in (MutationStatus.APPLIED, MutationStatus.ALREADY_DONE)

    @property
    def detail(self) -> str | None:
        """What the provider's code alone does not say, for the audit log's ``detail``: an
        "already done" answer (add 3, delete 4, cancel 5) after an earlier attempt of the same
        call may have reached the provider may be that attempt's own doing, not someone else's
        change made meanwhile. ``None`` otherwise."""
        if self.status is not MutationStatus.ALREADY_DONE or not self.uncertain_attempts:
            return None
        earlier = ", ".join(str(number) for number in self.uncertain_attempts)
        plural = "s" if len(self.uncertain_attempts) > 1 else ""
        return (
            f"already done (code {self.code}) at attempt {self.attempts}, but attempt{plural} "
            f"{earlier} of the same call got no usable answer after the request may have "
            "reached the provider: this may be our own earlier attempt, not a change made by "
            "someone else meanwhile"
        )


@dataclass(frozen=True, slots=True)
class SendResult:
    message_id: int
    """The id that :meth:`~smsp_connector.client.SmspClient.cancel_message` takes."""
    nb_sms: int | None
    """SMS counted by the provider; ``None`` when its answer gives none (or ``null``)."""
    cost: float | None
    """``None`` when the provider's answer gives none (or ``null``)."""
    currency: str
    scheduled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MessageStatus:
    message_id: str
    number: str
    status: str
    """``Delivered``, ``Not delivered``, ``Waiting`` or ``Cancelled``."""
    stop_sms: bool
    date: datetime | None
    cost: float | None
    country_code: str | None
    currency: str | None


@dataclass(frozen=True, slots=True)
class Credits:
    credit_sms: float
    credit_sms_eco: float
    credit_hlr: float
    to_send: float
    balance: str
    currency: str


@dataclass(frozen=True, slots=True)
class Account:
    username: str | None
    firstname: str | None
    lastname: str | None
    credits: Credits
