"""Messages created by `/send`: recipients, pricing, and status against the emulator clock."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from .clock import utc
from .phones import ParsedNumber

FIRST_MESSAGE_ID = 5000
CURRENCY = "EUR"
# EUR per SMS part by `gamme`: 1 premium (the default), 2 low cost. The docs' samples show both.
UNIT_PRICES = {1: 0.045, 2: 0.038}
# Characters per SMS part: (single part, each part of a concatenated message).
_GSM_PARTS = (160, 153)
_UNICODE_PARTS = (70, 67)

DELIVERED = "Delivered"
NOT_DELIVERED = "Not delivered"
WAITING = "Waiting"
CANCELLED = "Cancelled"


def sms_parts(text: str, unicode: bool) -> int:
    """How many SMS parts a message takes (GSM 7-bit or Unicode lengths)."""
    single, multi = _UNICODE_PARTS if unicode else _GSM_PARTS
    return 1 if len(text) <= single else math.ceil(len(text) / multi)


@dataclass(frozen=True, slots=True)
class Recipient:
    number: ParsedNumber
    stopped: bool  # in the stop list at send time: skipped, not charged, "Not delivered"


@dataclass(frozen=True, slots=True)
class Message:
    """One `/send` call. Immutable: cancelling stores a replaced copy."""

    id: int
    recipients: tuple[Recipient, ...]
    text: str
    sender: str | None
    tag: str | None
    gamme: int
    sandbox: bool
    parts: int
    created_at: datetime
    scheduled_at: datetime | None
    cancelled_at: datetime | None = None

    @property
    def unit_price(self) -> float:
        return UNIT_PRICES[self.gamme]

    @property
    def nb_sms(self) -> int:
        """SMS parts sent: parts per message times recipients not in the stop list."""
        return self.parts * sum(1 for r in self.recipients if not r.stopped)

    @property
    def cost(self) -> float:
        return round(self.nb_sms * self.unit_price, 3)

    @property
    def credits_used(self) -> int:
        """Credits taken from the account (none in sandbox mode, none once cancelled)."""
        if self.sandbox or self.cancelled_at is not None:
            return 0
        return self.nb_sms

    def is_sent(self, now: datetime) -> bool:
        if self.cancelled_at is not None:
            return False
        return self.scheduled_at is None or utc(now) >= utc(self.scheduled_at)

    def send_date(self) -> datetime:
        return self.scheduled_at or self.created_at

    def recipient(self, e164: str) -> Recipient | None:
        return next((r for r in self.recipients if r.number.e164 == e164), None)

    def status_for(self, recipient: Recipient, now: datetime) -> str:
        if self.cancelled_at is not None:
            return CANCELLED
        if recipient.stopped:
            return NOT_DELIVERED
        return DELIVERED if self.is_sent(now) else WAITING
