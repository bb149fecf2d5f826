"""The emulator's account: stop list, messages, credits and clock, behind one lock."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from .clock import EmulatorClock, utc
from .errors import (
    AllNumbersStopped,
    AlreadyCancelled,
    AlreadyInStopList,
    AlreadySent,
    NotEnoughCredits,
    NotFound,
    TooLateToCancel,
)
from .messages import FIRST_MESSAGE_ID, UNIT_PRICES, Message, Recipient, sms_parts
from .phones import ParsedNumber, normalise_phone, parse_phone
from .stoplist import StopList, StoredStop

DEFAULT_CREDITS = 10_000
CANCEL_DEADLINE = timedelta(minutes=5)


class EmulatorState:
    """Thread-safe account state shared by the HTTP handlers and by Python callers (tests).

    Every method takes the one lock, so a test may read or change the state while the server
    answers requests. Errors are the provider-coded exceptions of `errors.py`.
    """

    def __init__(self, credits: int = DEFAULT_CREDITS) -> None:
        self._lock = threading.Lock()
        self.clock = EmulatorClock()
        self._stops = StopList()
        self._messages: dict[int, Message] = {}
        self._next_message_id = FIRST_MESSAGE_ID
        self._initial_credits = credits
        self._credits = credits

    def __repr__(self) -> str:
        return f"EmulatorState(stop_count={self.stop_count()}, messages={len(self._messages)})"

    # -- stop list -------------------------------------------------------------------------

    def add_stop(self, phone_number: str, created_at: datetime | None = None) -> int:
        """Add a number as `stop-sms/add` does and return its new stop id.

        The number is normalised to E.164 (region FR). Raises `PhoneNumberRequired` (code 2),
        `ValidationFailed` (code 9) or `AlreadyInStopList` (code 3, nothing changed).
        """
        e164 = normalise_phone(phone_number)
        created = created_at if created_at is not None else self.clock.now()
        with self._lock:
            existing = self._stops.id_for(e164)
            if existing is not None:
                raise AlreadyInStopList(f"{e164} is already in the stop list (id {existing})")
            return self._stops.add(e164, created)

    def seed_entries(self, entries: Iterable[tuple[str, datetime | str]]) -> None:
        """Bulk-load `(phoneNumber, createdAt)` pairs exactly as given, without any validation.

        For provider data that may be malformed on purpose ("0612", "+33 6 12"); a string
        `createdAt` is served verbatim, a datetime is formatted in Paris time.
        """
        with self._lock:
            self._stops.extend(entries)

    def delete_stop(self, stop_id: int) -> None:
        """Remove entry `stop_id`; raises `NotFound` (code 4) if it does not exist (any more)."""
        with self._lock:
            if not self._stops.remove(stop_id):
                raise NotFound(f"no stop-list entry with id {stop_id}")

    def stop_entries(self) -> list[StoredStop]:
        """A snapshot of the stop list, in id order."""
        with self._lock:
            return self._stops.entries()

    def stop_count(self) -> int:
        with self._lock:
            return len(self._stops)

    def has_number(self, e164: str) -> bool:
        with self._lock:
            return self._stops.id_for(e164) is not None

    def stop_id_for(self, e164: str) -> int | None:
        with self._lock:
            return self._stops.id_for(e164)

    def stop_list_version(self) -> int:
        with self._lock:
            return self._stops.version

    def stop_list_fragments(self) -> tuple[int, list[bytes]]:
        """`(version, JSON objects in id order)`, taken atomically."""
        with self._lock:
            return self._stops.version, self._stops.fragments()

    def stop_list_rows(self) -> tuple[int, list[tuple[int, str, str]]]:
        """`(version, (id, phoneNumber, createdAt) rows in id order)`, taken atomically."""
        with self._lock:
            return self._stops.version, self._stops.rows()

    # -- messages --------------------------------------------------------------------------

    def send(
        self,
        numbers: Sequence[str | ParsedNumber],
        text: str,
        *,
        sender: str | None = None,
        tag: str | None = None,
        gamme: int = 1,
        sandbox: bool = False,
        unicode: bool = False,
        scheduled_at: datetime | None = None,
    ) -> Message:
        """Record a `/send`: numbers in the stop list are skipped (not sent, not charged).

        Raises `ValidationFailed` (code 9) for an invalid number, `AllNumbersStopped` (code 14)
        when every number is in the stop list, `NotEnoughCredits` (code 11) when the account
        cannot pay (sandbox sends use no credit).
        """
        parsed = [n if isinstance(n, ParsedNumber) else parse_phone(n) for n in numbers]
        if gamme not in UNIT_PRICES:
            raise ValueError(f"gamme must be one of {sorted(UNIT_PRICES)}")
        with self._lock:
            recipients = tuple(
                Recipient(number, self._stops.id_for(number.e164) is not None) for number in parsed
            )
            if all(r.stopped for r in recipients):
                raise AllNumbersStopped("every number is in the stop list")
            message = Message(
                id=self._next_message_id,
                recipients=recipients,
                text=text,
                sender=sender,
                tag=tag,
                gamme=gamme,
                sandbox=sandbox,
                parts=sms_parts(text, unicode),
                created_at=self.clock.now(),
                scheduled_at=scheduled_at,
            )
            if message.credits_used > self._credits:
                raise NotEnoughCredits(
                    f"{message.credits_used} credits needed, {self._credits} available"
                )
            self._credits -= message.credits_used
            self._messages[message.id] = message
            self._next_message_id += 1
            return message

    def cancel_message(self, message_id: int) -> Message:
        """Cancel a scheduled message and refund its credits, as `message-cancel` does.

        Raises `NotFound` (4), `AlreadyCancelled` (5), `AlreadySent` (7: immediate, or its time
        has passed on the emulator clock) or `TooLateToCancel` (6: less than 5 minutes left).
        """
        with self._lock:
            message = self._messages.get(message_id)
            if message is None:
                raise NotFound(f"no message with id {message_id}")
            if message.cancelled_at is not None:
                raise AlreadyCancelled(f"message {message_id} is already cancelled")
            now = self.clock.now()
            if message.is_sent(now):
                raise AlreadySent(f"message {message_id} has already been sent")
            assert message.scheduled_at is not None  # an unsent, uncancelled message is scheduled
            # On instants: across a clock change the wall clocks differ by an extra hour.
            if utc(message.scheduled_at) - utc(now) < CANCEL_DEADLINE:
                raise TooLateToCancel(f"message {message_id} is due in less than 5 minutes")
            refund = message.credits_used
            cancelled = dataclasses.replace(message, cancelled_at=now)
            self._messages[message_id] = cancelled
            self._credits += refund
            return cancelled

    def get_message(self, message_id: int) -> Message:
        with self._lock:
            message = self._messages.get(message_id)
        if message is None:
            raise NotFound(f"no message with id {message_id}")
        return message

    @property
    def messages(self) -> list[Message]:
        """A snapshot of every message, in id order."""
        with self._lock:
            return list(self._messages.values())

    def message_count(self) -> int:
        with self._lock:
            return len(self._messages)

    # -- credits ---------------------------------------------------------------------------

    @property
    def credits(self) -> int:
        """SMS credits left on the account."""
        with self._lock:
            return self._credits

    def set_credits(self, credits: int) -> None:
        with self._lock:
            self._credits = credits

    def credits_to_send(self) -> int:
        """Credits held by scheduled messages that have not gone yet (`/me`'s `toSend`)."""
        now = self.clock.now()
        with self._lock:
            return sum(
                m.credits_used
                for m in self._messages.values()
                if m.cancelled_at is None and not m.is_sent(now)
            )

    # -- whole state -----------------------------------------------------------------------

    def reset(self) -> None:
        """Empty stop list and messages, initial credits, real time. Ids keep counting."""
        with self._lock:
            self._stops.clear()
            self._messages.clear()
            self._credits = self._initial_credits
        self.clock.reset()
