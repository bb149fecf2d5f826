"""Phone-number rules of the emulator: libphonenumber with default region FR, stored as E.164."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import phonenumbers

from .errors import PhoneNumberRequired, ValidationFailed

DEFAULT_REGION = "FR"
OVERSEAS_REGIONS = ("RE", "YT", "GP", "MQ", "GF", "BL", "MF", "PM")
"""Overseas France with a numbering plan of its own whose national form starts with 0 as in
mainland France (0692… Réunion, 0690… Guadeloupe, 0696… Martinique, 0694… French Guiana)."""


@dataclass(frozen=True, slots=True)
class ParsedNumber:
    e164: str
    region: str
    national: str  # digits only, as the provider echoes them ("0600000000")


def parse_phone(raw: object, region: str = DEFAULT_REGION) -> ParsedNumber:
    """Normalise a number as the provider does for `stop-sms/add`.

    A national French number that is no mainland number is tried as an overseas one (0692… is
    Réunion's +262692…). Raises `PhoneNumberRequired` (code 2) for a missing/blank value and
    `ValidationFailed` (code 9, "Invalid phone number") when libphonenumber cannot parse it or
    calls it invalid.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise PhoneNumberRequired("phone number is missing or empty")
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValidationFailed(f"phone number must be text, got {type(raw).__name__}")
    text = str(raw).strip()
    try:
        parsed = phonenumbers.parse(text, region, keep_raw_input=True)
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed(f"cannot parse phone number {text!r}: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed) and _national_french(parsed, region):
        parsed = _overseas(text) or parsed
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationFailed(f"{text!r} is not a valid phone number")
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return ParsedNumber(
        e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        region=phonenumbers.region_code_for_number(parsed) or region,
        national="".join(ch for ch in national if ch.isdigit()),
    )


def _national_french(parsed: phonenumbers.PhoneNumber, region: str) -> bool:
    """A number written in France's national form (no +33, no 00 33)."""
    return (
        region == DEFAULT_REGION
        and parsed.country_code_source == phonenumbers.CountryCodeSource.FROM_DEFAULT_COUNTRY
    )


def _overseas(text: str) -> phonenumbers.PhoneNumber | None:
    """A national French number that is an overseas one: `0692…` is Réunion's `+262692…`.

    The add page accepts French numbers in national form, and overseas France dials them
    so; with region FR alone libphonenumber reads them as unassigned mainland numbers.
    """
    for region in OVERSEAS_REGIONS:
        with contextlib.suppress(phonenumbers.NumberParseException):
            parsed = phonenumbers.parse(text, region)
            if phonenumbers.is_valid_number(parsed):
                return parsed
    return None


def normalise_phone(raw: object, region: str = DEFAULT_REGION) -> str:
    """E.164 form of `raw` (see `parse_phone` for the errors)."""
    return parse_phone(raw, region).e164
