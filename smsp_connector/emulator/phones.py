"""Phone-number rules of the emulator: libphonenumber with default region FR, stored as E.164."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

from .errors import PhoneNumberRequired, ValidationFailed

DEFAULT_REGION = "FR"


@dataclass(frozen=True, slots=True)
class ParsedNumber:
    e164: str
    region: str
    national: str  # digits only, as the provider echoes them ("0600000000")


def parse_phone(raw: object, region: str = DEFAULT_REGION) -> ParsedNumber:
    """Normalise a number as the provider does for `stop-sms/add`.

    Raises `PhoneNumberRequired` (code 2) for a missing/blank value and `ValidationFailed`
    (code 9, "Invalid phone number") when libphonenumber cannot parse it or calls it invalid.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise PhoneNumberRequired("phone number is missing or empty")
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValidationFailed(f"phone number must be text, got {type(raw).__name__}")
    text = str(raw).strip()
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed(f"cannot parse phone number {text!r}: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationFailed(f"{text!r} is not a valid phone number")
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return ParsedNumber(
        e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        region=phonenumbers.region_code_for_number(parsed) or region,
        national="".join(ch for ch in national if ch.isdigit()),
    )


def normalise_phone(raw: object, region: str = DEFAULT_REGION) -> str:
    """E.164 form of `raw` (see `parse_phone` for the errors)."""
    return parse_phone(raw, region).e164
