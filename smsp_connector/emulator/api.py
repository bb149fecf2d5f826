"""The SMS Partner `/v1` endpoints: parameter rules and answers, without the HTTP plumbing."""

from __future__ import annotations

import contextlib
import hmac
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool

from .clock import format_wire, paris_wall_time, utc
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
from .responses import EN, FR, Answer, cancel_success_message, check_lang, media_type, success
from .state import EmulatorState

MAX_RECIPIENTS = 500
_TRUE_FLAGS = {"1", "true", "yes", "on"}
# Digits as the provider's PHP reads them: ASCII only. Python's int() would also read 1011 from
# Arabic-Indic or fullwidth digits, and from "1_011".
_ASCII_DIGITS = re.compile(r"[0-9]+")
_MAX_ID_DIGITS = 18
_DATE = re.compile(r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}")

# `/send` validation texts (the `errors` list), by language; English unless `lang` is "fr".
_SEND_TEXTS: dict[str, dict[str, str]] = {
    EN: {
        "not_text": "The {field} must be text",
        "too_many": f"At most {MAX_RECIPIENTS} phone numbers per request",
        "invalid_number": "Invalid phone number: {item}",
        "message": "The message is required",
        "sender": "The sender must contain between 3 and 11 characters",
        "gamme": "The gamme must be 1 (premium) or 2 (low cost)",
        "date_format": "The date must be in dd/MM/yyyy format",
        "date_range": "The date is out of range",
        "date_past": "The date must be in the future",
        "time": "The hour is required, between 0 and 24",
        "minute": "The minute is required: 0 to 55, a multiple of 5",
    },
    FR: {
        "not_text": "Le champ {field} doit être un texte",
        "too_many": f"{MAX_RECIPIENTS} numéros au plus par envoi",
        "invalid_number": "Numéro de téléphone invalide : {item}",
        "message": "Le message est requis",
        "sender": "L'émetteur doit contenir entre 3 et 11 caractères",
        "gamme": "La gamme doit être 1 (premium) ou 2 (low cost)",
        "date_format": "La date doit être au format dd/MM/yyyy",
        "date_range": "La date est hors limites",
        "date_past": "La date est anterieure a la date actuelle.",
        "time": "L'heure est requise, entre 0 et 24",
        "minute": "La minute est requise : de 0 à 55, par pas de 5",
    },
}


@dataclass(frozen=True, slots=True)
class Call:
    """One `/v1` request: query string merged with the JSON body (the body wins), and format."""

    params: Mapping[str, Any]
    fmt: str


Handler = Callable[[Call], Awaitable[Answer]]


def _scalar(value: object) -> bool:
    """A value that has a text form: a string or a number (a bool is not one here)."""
    return not isinstance(value, bool) and isinstance(value, str | int | float)


def _text(params: Mapping[str, Any], *names: str) -> str | None:
    """The first non-blank value among `names`, as stripped text.

    Numbers are taken as their text; a list, object or boolean is a malformed value (code 9).
    """
    for name in names:
        value = params.get(name)
        if value is None:
            continue
        if not _scalar(value):
            raise ValidationFailed(f"{name} must be text, got {type(value).__name__}")
        if str(value).strip():
            return str(value).strip()
    return None


def _flag(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name)
    if not (_scalar(value) or isinstance(value, bool)):  # a list or an object is no flag
        return False
    return str(value).strip().lower() in _TRUE_FLAGS


def _ascii_int(raw: str, max_digits: int) -> int | None:
    """`raw` as an integer if it is 1 to `max_digits` ASCII digits, else None."""
    if len(raw) > max_digits or not _ASCII_DIGITS.fullmatch(raw):
        return None
    return int(raw)


def _int_id(raw: str, what: str) -> int:
    """An id parameter; one that is not an integer cannot exist, hence code 4."""
    value = _ascii_int(raw, _MAX_ID_DIGITS)
    if value is None:
        raise NotFound(f"{what} {raw!r} is not an integer in ASCII digits")
    return value


def _error(element: str, message: str) -> dict[str, str]:
    return {"elementId": f"children[{element}].data", "message": message}


class _SendErrors:
    """The `/send` validation errors collected so far, written in the emulator's language."""

    def __init__(self, lang: str | None) -> None:
        self.texts = _SEND_TEXTS[lang or EN]
        self.items: list[dict[str, str]] = []

    def add(self, element: str, text: str, **values: str) -> None:
        self.items.append(_error(element, self.texts[text].format(**values)))

    def field(self, params: Mapping[str, Any], name: str) -> str | None:
        """`_text` of one field; a list, object or boolean is an error on that field."""
        try:
            return _text(params, name)
        except ValidationFailed:
            self.add(name, "not_text", field=name)
            return None


class ProviderApi:
    """The `/v1` endpoints over one `EmulatorState`; each raises `EmulatorApiError` on a coded
    error, which the application renders with the endpoint's documented message.

    `lang` is the language of the answers' texts: None for each endpoint's own page (see
    `responses.ERROR_MESSAGES`), "en" or "fr" for the whole API in one language.
    """

    def __init__(self, state: EmulatorState, api_key: str, lang: str | None = None) -> None:
        check_lang(lang)
        self._state = state
        self._api_key = api_key.encode()
        self.lang = lang
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
        """Code 1 for a missing or blank key; code 10 for any other key that is not ours,
        including one sent as a JSON list, object or boolean."""
        value = params.get("apiKey")
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ApiKeyRequired("apiKey is missing")
        if not _scalar(value):
            raise InvalidApiKey(f"apiKey is a {type(value).__name__}, not text")
        key = str(value).strip().encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(key, self._api_key):
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
        errors = _SendErrors(self.lang)
        items = self._recipient_items(params.get("phoneNumbers"), errors)
        if not items and not errors.items:
            raise PhoneNumberRequired("phoneNumbers is missing or empty")
        numbers = self._parse_recipients(items, errors)
        text = params.get("message")
        if not isinstance(text, str) or not text.strip():
            errors.add("message", "message")
        sender = errors.field(params, "sender")
        if sender is not None and not 3 <= len(sender) <= 11:
            errors.add("sender", "sender")
        gamme = errors.field(params, "gamme") or "1"
        if gamme not in {str(g) for g in UNIT_PRICES}:
            errors.add("gamme", "gamme")
        tag = errors.field(params, "tag")
        scheduled_at = self._scheduled_at(params, errors)
        if errors.items:
            raise ValidationFailed("invalid /send request", errors=errors.items)
        message = self._state.send(
            numbers,
            str(text),
            sender=sender,
            tag=tag,
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
    def _recipient_items(raw: object, errors: _SendErrors) -> list[str]:
        """`phoneNumbers` as a list of non-blank texts: comma-separated text, or a JSON list."""
        if raw is None:
            return []
        if isinstance(raw, list):
            if not all(_scalar(n) for n in raw):
                errors.add("phoneNumbers", "not_text", field="phoneNumbers")
                return []
            raw = ",".join(str(n) for n in raw)
        elif not _scalar(raw):
            errors.add("phoneNumbers", "not_text", field="phoneNumbers")
            return []
        return [n.strip() for n in str(raw).split(",") if n.strip()]

    @staticmethod
    def _parse_recipients(items: list[str], errors: _SendErrors) -> list[ParsedNumber]:
        if len(items) > MAX_RECIPIENTS:
            errors.add("phoneNumbers", "too_many")
        numbers = []
        for item in items:
            try:
                numbers.append(parse_phone(item))
            except EmulatorApiError:
                errors.add("phoneNumbers", "invalid_number", item=item)
        return numbers

    def _scheduled_at(self, params: Mapping[str, Any], errors: _SendErrors) -> datetime | None:
        """A deferred send's time: `dd/MM/yyyy` + `time` (0-24) + `minute` (0-55, step 5), read
        as a Paris wall time (see `clock.paris_wall_time` for the clock changes)."""
        date_text = errors.field(params, "scheduledDeliveryDate")
        if date_text is None:
            return None
        before = len(errors.items)
        day = None
        if _DATE.fullmatch(date_text):
            with contextlib.suppress(ValueError):  # 31/02/2030
                day = datetime.strptime(date_text, "%d/%m/%Y")
        if day is None:
            errors.add("scheduledDeliveryDate", "date_format")
        hour = _ascii_int(errors.field(params, "time") or "", 2)
        if hour is None or hour > 24:
            errors.add("time", "time")
        minute = _ascii_int(errors.field(params, "minute") or "", 2)
        if minute is None or minute > 55 or minute % 5:
            errors.add("minute", "minute")
        if len(errors.items) > before or day is None or hour is None or minute is None:
            return None
        try:
            scheduled = paris_wall_time(day + timedelta(hours=hour, minutes=minute))
        except OverflowError:  # 31/12/9999 at 24:00 is past the end of the calendar
            errors.add("scheduledDeliveryDate", "date_range")
            return None
        if utc(scheduled) <= utc(self._state.clock.now()):
            errors.add("scheduledDeliveryDate", "date_past")
            return None
        return scheduled

    async def message_cancel(self, call: Call) -> Answer:
        raw = _text(call.params, "messageId")
        if raw is None:
            raise IdRequired("messageId is missing")
        self._state.cancel_message(_int_id(raw, "messageId"))
        return success({"message": cancel_success_message(self.lang)}, call.fmt)

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
