"""The SMS Partner `/v1` endpoints: parameter rules and answers, without the HTTP plumbing."""

from __future__ import annotations

import hmac
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool

from .clock import PARIS, format_wire
from .errors import (
    ApiKeyRequired,
    EmulatorApiError,
    IdRequired,
    InvalidApiKey,
    NotFound,
    PhoneNumberRequired,
    ValidationFailed,
)
from .listing import StopListBodies
from .messages import CURRENCY, UNIT_PRICES
from .phones import ParsedNumber, parse_phone
from .responses import CANCEL_SUCCESS_MESSAGE, Answer, media_type, success
from .state import EmulatorState

MAX_RECIPIENTS = 500
_TRUE_FLAGS = {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Call:
    """One `/v1` request: query string merged with the JSON body (the body wins), and format."""

    params: Mapping[str, Any]
    fmt: str


Handler = Callable[[Call], Awaitable[Answer]]


def _text(params: Mapping[str, Any], *names: str) -> str | None:
    """The first non-blank value among `names`, as stripped text.

    Numbers are taken as their text; a list, object or boolean is a malformed value (code 9).
    """
    for name in names:
        value = params.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValidationFailed(f"{name} must be text, got {type(value).__name__}")
        if str(value).strip():
            return str(value).strip()
    return None


def _flag(params: Mapping[str, Any], name: str) -> bool:
    return str(params.get(name, "")).strip().lower() in _TRUE_FLAGS


def _int_id(raw: str, what: str) -> int:
    """An id parameter; one that is not an integer cannot exist, hence code 4."""
    try:
        return int(raw)
    except ValueError:
        raise NotFound(f"{what} {raw!r} is not an integer") from None


def _error(element: str, message: str) -> dict[str, str]:
    return {"elementId": f"children[{element}].data", "message": message}


class ProviderApi:
    """The `/v1` endpoints over one `EmulatorState`; each raises `EmulatorApiError` on a coded
    error, which the application renders with the endpoint's documented message."""

    def __init__(self, state: EmulatorState, api_key: str) -> None:
        self._state = state
        self._api_key = api_key.encode()
        self._bodies = StopListBodies(state)
        self.endpoints: dict[str, tuple[str, Handler]] = {
            "stop-sms/list": ("GET", self.stop_list),
            "stop-sms/add": ("POST", self.stop_add),
            "stop-sms/delete": ("GET", self.stop_delete),
            "send": ("POST", self.send),
            "message-cancel": ("GET", self.message_cancel),
            "message-status": ("GET", self.message_status),
            "me": ("GET", self.me),
        }

    def authenticate(self, params: Mapping[str, Any]) -> None:
        key = _text(params, "apiKey")
        if key is None:
            raise ApiKeyRequired("apiKey is missing")
        if not hmac.compare_digest(key.encode(), self._api_key):
            raise InvalidApiKey("apiKey does not match")

    async def stop_list(self, call: Call) -> Answer:
        # Building a large list takes a while: a worker thread keeps the event loop answering.
        body = await run_in_threadpool(self._bodies.body, call.fmt)
        return Answer(200, body, media_type(call.fmt))

    async def stop_add(self, call: Call) -> Answer:
        # `phoneNumbers` is the spelling of the provider's own Python and VB.net samples.
        phone = _text(call.params, "phoneNumber", "phoneNumbers")
        if phone is None:
            raise PhoneNumberRequired("phoneNumber is missing or empty")
        return success({"stopId": self._state.add_stop(phone)}, call.fmt)

    async def stop_delete(self, call: Call) -> Answer:
        raw = _text(call.params, "id")
        if raw is None:
            raise IdRequired("id is missing")
        self._state.delete_stop(_int_id(raw, "id"))
        return success({}, call.fmt)

    async def send(self, call: Call) -> Answer:
        params = call.params
        raw_numbers = params.get("phoneNumbers")
        if isinstance(raw_numbers, list):
            raw_numbers = ",".join(str(n) for n in raw_numbers)
        items = [n.strip() for n in str(raw_numbers or "").split(",") if n.strip()]
        if not items:
            raise PhoneNumberRequired("phoneNumbers is missing or empty")
        errors: list[dict[str, str]] = []
        numbers = self._parse_recipients(items, errors)
        text = params.get("message")
        if not isinstance(text, str) or not text.strip():
            errors.append(_error("message", "The message is required"))
        sender = _text(params, "sender")
        if sender is not None and not 3 <= len(sender) <= 11:
            errors.append(_error("sender", "The sender must contain between 3 and 11 characters"))
        gamme = _text(params, "gamme") or "1"
        if gamme not in {str(g) for g in UNIT_PRICES}:
            errors.append(_error("gamme", "The gamme must be 1 (premium) or 2 (low cost)"))
        scheduled_at = self._scheduled_at(params, errors)
        if errors:
            raise ValidationFailed("invalid /send request", errors=errors)
        message = self._state.send(
            numbers,
            str(text),
            sender=sender,
            tag=_text(params, "tag"),
            gamme=int(gamme),
            sandbox=_flag(params, "sandbox"),
            unicode=_flag(params, "isUnicode"),
            scheduled_at=scheduled_at,
        )
        fields: dict[str, Any] = {
            "message_id": message.id,
            "nb_sms": message.nb_sms,
            "cost": message.cost,
            "currency": CURRENCY,
        }
        if scheduled_at is not None:
            fields["scheduledDeliveryDate"] = format_wire(scheduled_at)
        return success(fields, call.fmt)

    @staticmethod
    def _parse_recipients(items: list[str], errors: list[dict[str, str]]) -> list[ParsedNumber]:
        if len(items) > MAX_RECIPIENTS:
            errors.append(
                _error("phoneNumbers", f"At most {MAX_RECIPIENTS} phone numbers per request")
            )
        numbers = []
        for item in items:
            try:
                numbers.append(parse_phone(item))
            except EmulatorApiError:
                errors.append(_error("phoneNumbers", f"Invalid phone number: {item}"))
        return numbers

    def _scheduled_at(
        self, params: Mapping[str, Any], errors: list[dict[str, str]]
    ) -> datetime | None:
        """A deferred send's time: `dd/MM/yyyy` + `time` (0-24) + `minute` (0-55, step 5), Paris."""
        date_text = _text(params, "scheduledDeliveryDate")
        if date_text is None:
            return None
        before = len(errors)
        try:
            day = datetime.strptime(date_text, "%d/%m/%Y")
        except ValueError:
            errors.append(_error("scheduledDeliveryDate", "The date must be in dd/MM/yyyy format"))
        hour = _text(params, "time")
        if hour is None or not hour.isdigit() or not 0 <= int(hour) <= 24:
            errors.append(_error("time", "The hour is required, between 0 and 24"))
        minute = _text(params, "minute")
        if minute is None or not minute.isdigit() or int(minute) > 55 or int(minute) % 5:
            errors.append(_error("minute", "The minute is required: 0 to 55, a multiple of 5"))
        if len(errors) > before:
            return None
        assert hour is not None and minute is not None
        scheduled = day.replace(tzinfo=PARIS) + timedelta(hours=int(hour), minutes=int(minute))
        if scheduled <= self._state.clock.now():
            errors.append(_error("scheduledDeliveryDate", "The date must be in the future"))
            return None
        return scheduled

    async def message_cancel(self, call: Call) -> Answer:
        raw = _text(call.params, "messageId")
        if raw is None:
            raise IdRequired("messageId is missing")
        self._state.cancel_message(_int_id(raw, "messageId"))
        return success({"message": CANCEL_SUCCESS_MESSAGE}, call.fmt)

    async def message_status(self, call: Call) -> Answer:
        phone = _text(call.params, "phoneNumber")
        if phone is None:
            raise PhoneNumberRequired("phoneNumber is missing")
        raw = _text(call.params, "messageId")
        if raw is None:
            raise IdRequired("messageId is missing")
        message = self._state.get_message(_int_id(raw, "messageId"))
        try:
            number = parse_phone(phone)
        except EmulatorApiError:
            raise NotFound(f"{phone!r} is not a recipient of message {message.id}") from None
        recipient = message.recipient(number.e164)
        if recipient is None:
            raise NotFound(f"{phone!r} is not a recipient of message {message.id}")
        delivered = not recipient.stopped and message.cancelled_at is None
        fields = {
            "number": number.national if number.region == "FR" else number.e164,
            "messageId": str(message.id),
            "stopSms": recipient.stopped,
            "date": format_wire(message.send_date()),
            "statut": message.status_for(recipient, self._state.clock.now()),
            "cost": round(message.parts * message.unit_price, 3) if delivered else 0.0,
            "countryCode": number.region,
            "currency": CURRENCY,
        }
        return success(fields, call.fmt)

    async def me(self, call: Call) -> Answer:
        credits = self._state.credits
        balance = credits * UNIT_PRICES[1]
        fields = {
            "user": {"username": "emulator", "firstname": "SMS", "lastname": "Partner"},
            "credits": {
                "creditSms": credits,
                "creditSmsECO": math.floor(balance / UNIT_PRICES[2]),
                "creditHlr": 0,
                "toSend": self._state.credits_to_send(),
                "balance": f"{balance:.3f}",
                "currency": CURRENCY,
            },
        }
        return success(fields, call.fmt)
