"""Normalise phone numbers read as text (messy marketing CSV files) to E.164, or reject them.

libphonenumber (the ``phonenumbers`` package) does the parsing and validation; this module only
cleans spreadsheet artefacts, picks between interpretations and names the reason for a rejection.
Only a number libphonenumber holds *valid* for its region is kept: one that is merely possible
("06 12 34 56 7", a digit short, reads as +33 061234567) would be refused by the provider
(code 9), so it is rejected here, before any call, with a reason that names how it was read
(a rejected row is recorded and reported, never silently dropped).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

import phonenumbers
from phonenumbers import CountryCodeSource, NumberParseException, PhoneNumber, ValidationResult

from smsp_connector.defaults import DEFAULT_REGION

__all__ = [
    "E164_PATTERN",
    "E164_SQL_PATTERN",
    "NormalizedNumber",
    "RejectedNumber",
    "RejectionReason",
    "normalize_phone_number",
]


_E164_NUMBER = r"\+[1-9][0-9]{6,14}"
E164_PATTERN = rf"\A{_E164_NUMBER}\Z"
"""E.164: a plus, a country code that does not start with 0, at most 15 digits in all, ASCII
digits and nothing after them (Python's ``\\d`` takes any script's digits, ``$`` a final line
break: a number stored so would match no number written in plain digits). Python's syntax;
DuckDB's is :data:`E164_SQL_PATTERN`."""
E164_SQL_PATTERN = f"^{_E164_NUMBER}$"
""":data:`E164_PATTERN` in DuckDB's RE2, whose ``$`` ends the text (it has no ``\\Z``)."""
_E164 = re.compile(E164_PATTERN)
_E164_LINES = re.compile(f"{_E164_NUMBER}(?:\n{_E164_NUMBER})*")


def plainly_e164(values: Sequence[object]) -> bool:
    """Whether every value is a str that :data:`E164_PATTERN` matches, by one pass of the
    regular expression over them joined (a match per value costs ten times as much); ``False``
    decides nothing, a check per value does.

    As many line breaks as separators: no value holds one, so each line is one value.
    """
    if not len(values):
        return True
    try:
        joined = "\n".join(values)  # type: ignore[arg-type]  # TypeError: not all str
    except TypeError:
        return False
    return joined.count("\n") == len(values) - 1 and _E164_LINES.fullmatch(joined) is not None


PHONE_LIKE = r"\+?[0-9][0-9 ._/()-]{6,}[0-9]"
"""What may be a phone number inside free text (a file name, consent evidence): eight or more
digits and separators (spaces, dots, dashes, underscores, slashes, brackets). Python's and
DuckDB's regular expressions both read it."""

HIDDEN_NUMBER = "[number]"


def hide_numbers(text: str) -> str:
    """``text`` with whatever may be a phone number in it replaced by ``[number]``."""
    return re.sub(PHONE_LIKE, HIDDEN_NUMBER, text)


def masked(value: object) -> str:
    """``+33612345678`` as ``+336•••••678``: enough to tell rows apart and recognise a number
    one holds, not enough to write to it. Text under 8 characters (a message id) is kept."""
    text = str(value)
    if len(text) < 8:
        return text
    return text[:4] + "•" * (len(text) - 7) + text[-3:]


class RejectionReason(StrEnum):
    """Why a value is not a phone number. The values are stable codes, stored in tables."""

    EMPTY = "empty"
    SCIENTIFIC_NOTATION = "scientific_notation"
    NOT_A_NUMBER = "not_a_number"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    INVALID_COUNTRY_CODE = "invalid_country_code"
    NOT_POSSIBLE = "not_possible"
    NOT_VALID = "not_valid"


@dataclass(frozen=True, slots=True)
class NormalizedNumber:
    """A number in E.164 form that libphonenumber holds valid for its region (``is_valid`` is
    always true: it stays for the intake frame's column)."""

    raw: str
    e164: str
    is_valid: bool
    region: str | None


@dataclass(frozen=True, slots=True)
class RejectedNumber:
    """A value that cannot be a phone number, with a stable reason and an English message."""

    raw: str
    reason: RejectionReason
    message: str


_MESSAGES: dict[RejectionReason, str] = {
    RejectionReason.EMPTY: "empty value: no phone number",
    RejectionReason.SCIENTIFIC_NOTATION: (
        "{raw!r} is in scientific notation: a spreadsheet turned it into a number and its digits "
        "are lost"
    ),
    RejectionReason.NOT_A_NUMBER: "{raw!r} does not contain a phone number",
    RejectionReason.TOO_SHORT: "{raw!r} is too short to be a phone number",
    RejectionReason.TOO_LONG: "{raw!r} is too long to be a phone number",
    RejectionReason.INVALID_COUNTRY_CODE: "{raw!r} does not start with a valid country code",
    RejectionReason.NOT_POSSIBLE: (
        "{raw!r} cannot be a complete phone number of its country "
        "(impossible length or missing area code)"
    ),
    RejectionReason.NOT_VALID: (
        "{raw!r} is not a valid phone number of {region} per libphonenumber (read as {e164}): "
        "not sent, the provider would refuse it"
    ),
}
# Letters are not always noise to phonenumbers: three or more are read as a phone keypad
# ("abc" -> "222", for vanity numbers), which would opt out a stranger.
_LETTERS_MESSAGE = "{raw!r} mixes letters with its digits: not read as a phone keypad"

_PARSE_ERRORS: dict[int, RejectionReason] = {
    NumberParseException.INVALID_COUNTRY_CODE: RejectionReason.INVALID_COUNTRY_CODE,
    NumberParseException.NOT_A_NUMBER: RejectionReason.NOT_A_NUMBER,
    NumberParseException.TOO_SHORT_AFTER_IDD: RejectionReason.TOO_SHORT,
    NumberParseException.TOO_SHORT_NSN: RejectionReason.TOO_SHORT,
    NumberParseException.TOO_LONG: RejectionReason.TOO_LONG,
}
_IMPOSSIBLE: dict[int, RejectionReason] = {
    ValidationResult.TOO_SHORT: RejectionReason.TOO_SHORT,
    ValidationResult.TOO_LONG: RejectionReason.TOO_LONG,
    ValidationResult.INVALID_COUNTRY_CODE: RejectionReason.INVALID_COUNTRY_CODE,
}  # any other failure (INVALID_LENGTH, IS_POSSIBLE_LOCAL_ONLY) is NOT_POSSIBLE

# "3.36123E+10", "3,36123E+10", "3.36e10": a spreadsheet stored the number as a float.
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d*)?[eE][+-]?\d+")
# Unicode spaces that phonenumbers does not skip, made plain: French spreadsheets group digits
# with U+202F (narrow no-break space). U+00A0 is already skipped.
_SPACES = str.maketrans(dict.fromkeys([*range(0x2000, 0x200B), 0x202F, 0x205F], " "))

# France's 10-digit plan covers these overseas regions: "0692 12 34 56" dialled in France is a
# Réunion mobile (+262). One region per country code is enough to parse (RE also yields YT, GP
# also yields BL and MF: phonenumbers.region_code_for_number tells them apart).
_FRENCH_PLAN_PARSE_REGIONS = ("FR", "RE", "GP", "MQ", "GF")
_FRENCH_PLAN_REGIONS = frozenset({*_FRENCH_PLAN_PARSE_REGIONS, "YT", "BL", "MF"})


def normalize_phone_number(
    raw: str | None, default_region: str = DEFAULT_REGION
) -> NormalizedNumber | RejectedNumber:
    """Normalise one raw text value to E.164, or reject it with a reason.

    Surrounding whitespace, a leading apostrophe and the ``="…"`` Excel text formula are removed
    first; text around the digits ("tel: 06…") is skipped by phonenumbers and an extension
    ("… ext. 12") is dropped, E.164 has none. Interpretations are tried in this fixed order and
    the first that libphonenumber calls *valid* wins:

    1. the text as given, in ``default_region`` (phonenumbers already reads "33612345678" and
       "612345678" as French, so no "add a trunk 0" attempt is needed);
    2. if that was read as a national number of a region of France's numbering plan, the same
       text in the plan's other regions ("0692…" is +262 Réunion, "0690…" +590 Guadeloupe);
    3. if the text starts with a digit other than 0, the text with a "+" in front (a
       spreadsheet dropped it: "4915112345678" is German).

    If none is valid, the first interpretation decides, once its E.164 form is settled (see
    ``_settle``): it is kept if settling made it valid; a possible number is rejected as
    ``not_valid`` (naming the E.164 form it was read as), anything else with its own reason.
    Raises ``ValueError`` for an unknown region.
    """
    region = default_region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown default region {default_region!r}")
    if raw is None:
        return _reject("", RejectionReason.EMPTY)
    text = _clean(raw)
    if not text:
        return _reject(raw, RejectionReason.EMPTY)
    if _SCIENTIFIC.fullmatch(text):
        return _reject(raw, RejectionReason.SCIENTIFIC_NOTATION)

    if region == "FR" and (quick := _valid_french_form(raw, text)) is not None:
        return quick
    first = _parse(text, region)
    if isinstance(first, PhoneNumber) and phonenumbers.is_valid_number(first):
        return _keep(raw, first, is_valid=True)
    for candidate_text, candidate_region in _alternatives(text, region, first):
        candidate = _parse(candidate_text, candidate_region)
        if isinstance(candidate, PhoneNumber) and phonenumbers.is_valid_number(candidate):
            return _keep(raw, candidate, is_valid=True)

    if first is None:
        return RejectedNumber(raw, RejectionReason.NOT_A_NUMBER, _LETTERS_MESSAGE.format(raw=raw))
    if isinstance(first, PhoneNumber):
        first = _settle(first)
    if isinstance(first, RejectionReason):
        return _reject(raw, first)
    if phonenumbers.is_valid_number(first):
        return _keep(raw, first, is_valid=True)
    possible = phonenumbers.is_possible_number_with_reason(first)
    if possible == ValidationResult.IS_POSSIBLE:
        return _reject(
            raw,
            RejectionReason.NOT_VALID,
            e164=_e164(first),
            region=phonenumbers.region_code_for_number(first) or f"+{first.country_code}",
        )
    return _reject(raw, _IMPOSSIBLE.get(possible, RejectionReason.NOT_POSSIBLE))


# The forms most French files hold, "06 12 34 56 78", "+33 6 12 34 56 78", "0033612345678",
# "33612345678", with at most one space, dot or dash between digits: the nine digits after the
# prefix are the national significant number, as phonenumbers reads each of these forms in FR.
# ASCII digits only: phonenumbers reads other scripts' digits too, the full path handles those.
FRENCH_FORM = r"(\+33|0033|33|0)[ .-]?([1-9](?:[ .-]?[0-9]){8})"
"""The common French forms, read by Python's ``re`` and by RE2 alike: the prefix (group 1) and
the nine digits of the national significant number with their separators (group 2)."""
_FRENCH_FORM = re.compile(FRENCH_FORM)
_SEPARATORS = str.maketrans("", "", " .-")


def validity_patterns(region: str, length: int) -> tuple[str, list[str]] | None:
    """libphonenumber's general pattern of ``region``'s national numbers and one pattern per
    number type that allows ``length`` digits (a number is valid when it fully matches the
    first and one of the others); ``None`` if the metadata does not have that shape."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        return None
    general = metadata.general_desc
    if general is None or length not in general.possible_length:
        return None
    if not general.national_number_pattern:
        return None
    descs = (
        metadata.premium_rate, metadata.toll_free, metadata.shared_cost, metadata.voip,
        metadata.personal_number, metadata.pager, metadata.uan, metadata.voicemail,
        metadata.fixed_line, metadata.mobile,
    )  # fmt: skip
    types = [
        f"(?:{desc.national_number_pattern})"
        for desc in descs
        if desc is not None
        and desc.national_number_pattern
        and (not desc.possible_length or length in desc.possible_length)
    ]
    return (general.national_number_pattern, types) if types else None


def _french_validity() -> re.Pattern[str] | None:
    """One pattern that a nine-digit French national number fully matches exactly when
    libphonenumber calls it valid: its general pattern and one of its types' patterns (what
    ``phonenumbers.is_valid_number`` checks, in one regular expression instead of eleven).
    ``None`` if the metadata does not have the shape this relies on (then no shortcut)."""
    if phonenumbers.region_codes_for_country_code(33) != ("FR",):
        return None
    patterns = validity_patterns("FR", 9)
    if patterns is None:
        return None
    return re.compile(_validity_pattern(*patterns), re.ASCII)


def _validity_pattern(general: str, types: Iterable[str]) -> str:
    """One pattern a national number fully matches when it fully matches ``general`` and one
    of ``types`` (see :func:`validity_patterns`)."""
    return f"(?=(?:{general})$)(?:{'|'.join(types)})$"


_FRENCH_VALID = _french_validity()


@dataclass(frozen=True, slots=True)
class PlanRegion:
    """One region of France's numbering plan, as libphonenumber's metadata describes it: a
    nine-digit national number is valid there when it fully matches ``general`` and one of
    ``types``."""

    region: str
    country_code: int
    general: str
    types: tuple[str, ...]


@cache
def french_plan_regions() -> tuple[PlanRegion, ...] | None:
    """The regions that :func:`normalize_phone_number` tries, in its order, for a national
    number ("0…") read in FR: FR, then each country code of the plan's other regions in
    ``_FRENCH_PLAN_PARSE_REGIONS``' order, each code's regions in libphonenumber's order (the
    first valid one is the number's region, as ``region_code_for_number`` picks it).

    ``None`` when the metadata does not have the shape this order relies on (nine-digit
    numbers, a national prefix of "0" only, no leading-digits rule choosing a region): then
    only the full path reads these numbers."""
    regions: list[PlanRegion] = []
    for parse_region in _FRENCH_PLAN_PARSE_REGIONS:
        code = phonenumbers.country_code_for_region(parse_region)
        for region in phonenumbers.region_codes_for_country_code(code):
            metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
            patterns = validity_patterns(region, 9)
            if (
                metadata is None
                or patterns is None
                or metadata.leading_digits is not None
                or metadata.national_prefix_for_parsing not in (None, "0")
                or metadata.national_prefix_transform_rule is not None
                or metadata.general_desc.possible_length != (9,)
            ):
                return None
            regions.append(PlanRegion(region, code, patterns[0], tuple(patterns[1])))
    return tuple(regions)


def valid_french_e164(text: str) -> str | None:
    """The E.164 form of a cleaned value in one of the common French forms that libphonenumber
    calls valid (in region FR), without parsing it (about 20 times quicker); ``None`` for
    anything else, which takes the full path. ``tests/test_intake_scale.py`` checks both give
    the same."""
    if _FRENCH_VALID is None:
        return None
    form = _FRENCH_FORM.fullmatch(text)
    if form is None:
        return None
    national = form.group(2).translate(_SEPARATORS)
    if _FRENCH_VALID.match(national) is None:
        return None
    return "+33" + national


def _valid_french_form(raw: str, text: str) -> NormalizedNumber | None:
    e164 = valid_french_e164(text)
    if e164 is None:
        return None
    return NormalizedNumber(raw=raw, e164=e164, is_valid=True, region="FR")


def _clean(raw: str) -> str:
    text = raw.translate(_SPACES).strip()
    if text.startswith("'"):
        text = text[1:]
    elif text.startswith('="') and text.endswith('"'):
        text = text[2:-1]
    return text.strip()


def _parse(text: str, region: str) -> PhoneNumber | RejectionReason | None:
    """Parse, or return the rejection reason; None when letters were turned into digits."""
    try:
        number = phonenumbers.parse(text, region, keep_raw_input=True)
    except NumberParseException as error:
        return _PARSE_ERRORS[error.error_type]
    if any(map(str.isalpha, text)) and str(number.national_number) not in (
        phonenumbers.normalize_digits_only(text)
    ):
        return None
    return number


def _alternatives(
    text: str, region: str, first: PhoneNumber | RejectionReason | None
) -> Iterator[tuple[str, str]]:
    """Steps 2 and 3 of ``normalize_phone_number``'s order, as (text, region) pairs, each
    worked out only once the one before it was not valid."""
    if (
        isinstance(first, PhoneNumber)
        and first.country_code_source == CountryCodeSource.FROM_DEFAULT_COUNTRY
        and region in _FRENCH_PLAN_REGIONS
    ):
        own_code = first.country_code
        digits = _plan_digits(text)
        for other in _FRENCH_PLAN_PARSE_REGIONS:
            code = phonenumbers.country_code_for_region(other)
            if code != own_code and _may_be_valid_in(digits, code):
                yield text, other
    if text[0] in "123456789":
        yield "+" + text, region


@cache
def _plan_validity() -> dict[int, re.Pattern[str]] | None:
    """For each country code of France's numbering plan, one pattern that a nine-digit
    national number fully matches when libphonenumber calls it valid in one of that code's
    regions; ``None`` when :func:`french_plan_regions` is (then no shortcut)."""
    regions = french_plan_regions()
    if regions is None:
        return None
    by_code: dict[int, list[str]] = {}
    for plan in regions:
        by_code.setdefault(plan.country_code, []).append(
            f"(?:{_validity_pattern(plan.general, plan.types)})"
        )
    return {code: re.compile("|".join(patterns), re.ASCII) for code, patterns in by_code.items()}


_NOT_ASCII_DIGITS = re.compile("[^0-9]")


def _plan_digits(text: str) -> str | None:
    """The digits of ``text`` as libphonenumber reads them (other scripts' digits as ASCII),
    for :func:`_may_be_valid_in`; ``None`` when it may read others (letters, on a phone
    keypad) or the metadata lacks the shape the shortcut relies on."""
    if _plan_validity() is None or any(map(str.isalpha, text)):
        return None
    if text.isascii():
        return _NOT_ASCII_DIGITS.sub("", text)  # what normalize_digits_only gives, in C
    return phonenumbers.normalize_digits_only(text)


def _may_be_valid_in(digits: str | None, code: int) -> bool:
    """Whether a text of these :func:`_plan_digits` may parse, in a region of ``code`` (a
    country code of France's numbering plan), as a valid number of that code; ``False``
    spares that parse (a rejected value tried all four other codes of the plan: four parses
    of about 25 µs each).

    Such a number's national number is nine digits (the plan's metadata, which
    :func:`french_plan_regions` checks) standing next to each other among the text's digits:
    parsing drops digits only at the ends (a national prefix, a country code, an extension)
    and adds none, unless letters are read as a phone keypad (``digits`` is then ``None``:
    always maybe). So the code is possible only if nine consecutive digits match its
    validity pattern. ``tests/test_phone_numbers.py`` holds this against libphonenumber's
    own parse."""
    if digits is None:
        return True
    pattern = (_plan_validity() or {}).get(code)
    if pattern is None:
        return True
    return any(pattern.fullmatch(digits, start, start + 9) for start in range(len(digits) - 8))


def _settle(number: PhoneNumber) -> PhoneNumber | RejectionReason:
    """Parse the E.164 form again until it stops changing.

    phonenumbers keeps a 0 written after the country code of an invalid number and strips it
    when that E.164 form is parsed ("+44 (0)020 7946 0000" gives "+4402079460000", which gives
    "+442079460000"). The kept E.164 is the key compared run after run: it must give itself.
    """
    current = number
    while True:
        e164 = _e164(current)
        try:
            again = phonenumbers.parse(e164)
        except NumberParseException as error:
            return _PARSE_ERRORS[error.error_type]
        if _e164(again) == e164:
            return current
        current = again


def _e164(number: PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _keep(raw: str, number: PhoneNumber, *, is_valid: bool) -> NormalizedNumber | RejectedNumber:
    e164 = _e164(number)
    if _E164.fullmatch(e164) is None:
        # libphonenumber calls some 16-digit German numbers valid; E.164 has 15 at most.
        digits = len(e164) - 1
        return RejectedNumber(
            raw,
            RejectionReason.TOO_LONG if digits > 15 else RejectionReason.TOO_SHORT,
            f"{raw!r} reads as {e164}, {digits} digits: E.164 numbers have 7 to 15",
        )
    return NormalizedNumber(
        raw=raw,
        e164=e164,
        is_valid=is_valid,
        region=phonenumbers.region_code_for_number(number),
    )


def _reject(raw: str, reason: RejectionReason, **reading: str) -> RejectedNumber:
    return RejectedNumber(raw, reason, _MESSAGES[reason].format(raw=raw, **reading))
