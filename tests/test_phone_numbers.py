"""Tests for smsp_connector.intake.phone_numbers: raw CSV text to E.164 or a rejection."""

import dataclasses
import random
import re
from unittest import mock

import numpy as np
import pandera.errors
import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsp_connector.intake import phone_intake_frame, phone_numbers
from smsp_connector.intake.phone_numbers import (
    E164_PATTERN,
    NormalizedNumber,
    RejectedNumber,
    RejectionReason,
    normalize_phone_number,
)
from smsp_connector.operations.context import RunContext
from smsp_connector.operations.inputs import PhoneFile, PhoneValues
from smsp_connector.operations.run import Push, run_operation
from smsp_connector.warehouse import Warehouse
from smsp_connector.warehouse.phone_forms import french_plan_numbers

FR_MOBILE = "+33612345678"

# raw -> (e164, region, is_valid), default region FR
ACCEPTED: list[tuple[str, str, str, bool]] = [
    ("0612345678", FR_MOBILE, "FR", True),
    ("06 12 34 56 78", FR_MOBILE, "FR", True),
    ("06.12.34.56.78", FR_MOBILE, "FR", True),
    ("06-12-34-56-78", FR_MOBILE, "FR", True),
    ("0033612345678", FR_MOBILE, "FR", True),
    ("+33 6 12 34 56 78", FR_MOBILE, "FR", True),
    ("+33 (0)6 12 34 56 78", FR_MOBILE, "FR", True),
    ("33612345678", FR_MOBILE, "FR", True),
    ("612345678", FR_MOBILE, "FR", True),
    (" 0612345678 ", FR_MOBILE, "FR", True),
    ("\u00a00612345678\u202f", FR_MOBILE, "FR", True),
    ("06\u202f12\u202f34\u202f56\u202f78", FR_MOBILE, "FR", True),
    ("\t06\u00a012\u00a034\u00a056\u00a078\n", FR_MOBILE, "FR", True),
    ("'0612345678", FR_MOBILE, "FR", True),
    ('="0612345678"', FR_MOBILE, "FR", True),
    ("tel: 06 12 34 56 78", FR_MOBILE, "FR", True),
    ("0612345678 ext. 12", FR_MOBILE, "FR", True),
    # France's numbering plan covers the overseas departments.
    ("0692123456", "+262692123456", "RE", True),
    ("692123456", "+262692123456", "RE", True),
    ("262692123456", "+262692123456", "RE", True),
    ("0262201234", "+262262201234", "RE", True),
    ("0639012345", "+262639012345", "YT", True),
    ("0690123456", "+590690123456", "GP", True),
    ("0694201234", "+594694201234", "GF", True),
    ("0696201234", "+596696201234", "MQ", True),
    ("+4915112345678", "+4915112345678", "DE", True),
    ("4915112345678", "+4915112345678", "DE", True),
    ("'4915112345678", "+4915112345678", "DE", True),
    # A 0 after the country code: the E.164 form is parsed again until it gives itself.
    ("+44 (0)020 7946 0000", "+442079460000", "GB", True),
    ("+33 006 12 34 56 78", FR_MOBILE, "FR", True),
]

REJECTED: list[tuple[str | None, RejectionReason]] = [
    (None, RejectionReason.EMPTY),
    ("", RejectionReason.EMPTY),
    ("   ", RejectionReason.EMPTY),
    ("\u00a0\u202f", RejectionReason.EMPTY),
    ('=""', RejectionReason.EMPTY),
    ("3.36123E+10", RejectionReason.SCIENTIFIC_NOTATION),
    ("3,36123E+10", RejectionReason.SCIENTIFIC_NOTATION),
    ("3.36e10", RejectionReason.SCIENTIFIC_NOTATION),
    ("'3.36123E+10", RejectionReason.SCIENTIFIC_NOTATION),
    ("abc", RejectionReason.NOT_A_NUMBER),
    ("--", RejectionReason.NOT_A_NUMBER),
    ("06123", RejectionReason.TOO_SHORT),
    ("061234567890123456", RejectionReason.TOO_LONG),
    ("+999 123456789", RejectionReason.INVALID_COUNTRY_CODE),
    # "00" is the international prefix: +1 2345678 lacks the area code.
    ("0012345678", RejectionReason.NOT_POSSIBLE),
    # Possible lengths, but no such number in its region per libphonenumber: the provider would
    # refuse it (code 9), so it is never sent.
    ("06 12 34 56 7", RejectionReason.NOT_VALID),  # a digit short: read as +33 061234567
    ("061234567", RejectionReason.NOT_VALID),
    ("0712345678", RejectionReason.NOT_VALID),  # in no assigned range
    ("+33692123456", RejectionReason.NOT_VALID),  # an explicit +33 is not moved overseas
    ("+490019549", RejectionReason.NOT_VALID),
]


@pytest.mark.parametrize(("raw", "e164", "region", "is_valid"), ACCEPTED)
def test_accepted(raw: str, e164: str, region: str, is_valid: bool) -> None:
    assert normalize_phone_number(raw) == NormalizedNumber(
        raw=raw, e164=e164, is_valid=is_valid, region=region
    )


@pytest.mark.parametrize(("raw", "reason"), REJECTED)
def test_rejected(raw: str | None, reason: RejectionReason) -> None:
    result = normalize_phone_number(raw)
    assert isinstance(result, RejectedNumber)
    assert result.reason is reason
    assert result.raw == (raw or "")


@pytest.mark.parametrize(
    ("raw", "reason"), [case for case in REJECTED if case[1] is not RejectionReason.EMPTY]
)
def test_rejection_message_names_the_value(raw: str, reason: RejectionReason) -> None:
    assert repr(raw) in normalize_phone_number(raw).message


def test_each_reason_has_its_own_message() -> None:
    one_per_reason = {reason: raw for raw, reason in REJECTED}
    assert set(one_per_reason) == set(RejectionReason)
    templates = {
        normalize_phone_number(raw).message.replace(repr(raw), "<raw>")
        for raw in one_per_reason.values()
    }
    assert len(templates) == len(RejectionReason)


def test_reason_codes_are_stable() -> None:
    assert {reason.name: str(reason) for reason in RejectionReason} == {
        "EMPTY": "empty",
        "SCIENTIFIC_NOTATION": "scientific_notation",
        "NOT_A_NUMBER": "not_a_number",
        "TOO_SHORT": "too_short",
        "TOO_LONG": "too_long",
        "INVALID_COUNTRY_CODE": "invalid_country_code",
        "NOT_POSSIBLE": "not_possible",
        "NOT_VALID": "not_valid",
    }


def test_messages_are_readable() -> None:
    assert normalize_phone_number("06123").message == "'06123' is too short to be a phone number"
    assert normalize_phone_number(None).message == "empty value: no phone number"


def test_an_invalid_number_is_rejected_naming_how_it_was_read() -> None:
    assert normalize_phone_number("06 12 34 56 7").message == (
        "'06 12 34 56 7' is not a valid phone number of FR per libphonenumber (read as "
        "+33061234567): not sent, the provider would refuse it"
    )


def _push(operation: Push, values: list[str], client, tmp_path):
    warehouse = Warehouse.at(tmp_path / "warehouse.duckdb")
    context = RunContext(client=client, warehouse=warehouse, run_id="phone", job="test")
    return run_operation(operation, PhoneValues(values), context)


def test_an_invalid_number_is_never_sent(client, emulator, tmp_path) -> None:
    """Issue 19 §3: "06 12 34 56 7" was sent as +33061234567 and refused (code 9)."""
    report = _push(Push(), ["06 12 34 56 7", "0612345678"], client, tmp_path)

    assert (report.counts["invalid"], report.counts["added"]) == (1, 1)
    assert sum(emulator.stats()["endpoints"]["stop-sms/add"].values()) == 1
    [row] = report.unsent.to_dict("records")
    assert (row["source_row"], row["outcome"]) == (1, "invalid_input")
    assert "not a valid phone number" in row["reason"]


def test_a_valid_number_longer_than_e164_allows_is_a_rows_refusal() -> None:
    """libphonenumber calls some 16-digit German numbers valid; E.164 (and the intake's
    schema) allow 15 digits: the row is refused, the file's other rows are read."""
    assert normalize_phone_number("+4973981527500126").reason is RejectionReason.TOO_LONG
    assert "16 digits" in normalize_phone_number("004973981527500126").message
    frame = phone_intake_frame("f.csv", ["+4973981527500126", "0612345678"], [2, 3])
    assert frame["rejection_reason"].tolist() == ["too_long", None]
    assert frame["e164"].tolist() == [None, "+33612345678"]


@pytest.mark.parametrize("quick_path", [None, french_plan_numbers])
@pytest.mark.parametrize("missing", [None, float("nan")])
def test_a_value_that_is_not_text_fails_the_schema_not_the_quick_path(quick_path, missing) -> None:
    """Callers give text; a missing value never reaches the quick path (which reads text):
    the schema refuses the frame, naming the column."""
    with pytest.raises(pandera.errors.SchemaError, match="raw_value"):
        phone_intake_frame("t", ["0612345678", missing], [1, 2], quick_path=quick_path)


def test_text_that_is_not_unicode_is_read_with_its_bad_bytes_replaced(
    client, emulator, tmp_path
) -> None:
    """A command line's bytes that are not UTF-8 reach Python as lone surrogates
    ("\\udcff" for 0xFF), which DuckDB cannot store: such text is read with U+FFFD in their
    place, each row recorded, nothing lost or half-written."""
    report = _push(
        Push(dry_run=True), ["0612345678\udcff", "\udcff", "0622222222"], client, tmp_path
    )

    assert (report.counts["invalid"], report.counts["to_add"]) == (1, 2)
    [row] = report.unsent.to_dict("records")
    assert (row["source_row"], row["target"]) == (2, "\ufffd")


def test_values_with_lone_surrogates_stay_apart() -> None:
    """pandas' factorize gives every str holding a lone surrogate the same code: repaired
    after it, two such values were one, and the second number was never pushed."""
    frame = PhoneValues(["06 12 34 56 78\udcff", "07 98 76 54 32\udcff"]).read().frame
    assert frame["e164"].tolist() == ["+33612345678", "+33798765432"]
    assert frame["duplicate_of_row"].isna().all()
    assert frame["raw_value"].tolist() == ["06 12 34 56 78\ufffd", "07 98 76 54 32\ufffd"]


def test_a_file_whose_name_is_not_unicode_is_read(tmp_path) -> None:
    """A file name's bytes that are not UTF-8 (a lone surrogate in Python) reach the audit log
    as the file's name: stored with U+FFFD, not a traceback."""
    path = tmp_path / "export\udcff.csv"
    path.write_bytes(b"phone\n0612345678\n")
    read = PhoneFile(path).read()
    assert read.frame["source_file"].tolist() == [str(tmp_path / "export\ufffd.csv")]
    assert read.frame["e164"].tolist() == ["+33612345678"]


@pytest.mark.parametrize("raw", ["0612345678 abc", "+33612345678abc", "0612345678 (mobile)"])
def test_letters_are_not_read_as_a_phone_keypad(raw: str) -> None:
    # phonenumbers alone would turn "abc" into "222" and return another person's number.
    result = normalize_phone_number(raw)
    assert isinstance(result, RejectedNumber)
    assert result.reason is RejectionReason.NOT_A_NUMBER
    assert result.message == f"{raw!r} mixes letters with its digits: not read as a phone keypad"


@pytest.mark.parametrize(
    ("raw", "default_region", "e164", "region"),
    [
        ("0470123456", "BE", "+32470123456", "BE"),
        ("0470123456", "be", "+32470123456", "BE"),
        ("0470123456", "FR", "+33470123456", "FR"),
        ("0692123456", "RE", "+262692123456", "RE"),
        ("0612345678", "RE", FR_MOBILE, "FR"),
        ("0612345678", "YT", FR_MOBILE, "FR"),
        ("+4915112345678", "BE", "+4915112345678", "DE"),
    ],
)
def test_default_region(raw: str, default_region: str, e164: str, region: str) -> None:
    result = normalize_phone_number(raw, default_region=default_region)
    assert isinstance(result, NormalizedNumber)
    assert (result.e164, result.region, result.is_valid) == (e164, region, True)


def test_unknown_default_region_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown default region 'XX'"):
        normalize_phone_number("0612345678", default_region="XX")


def test_results_are_immutable() -> None:
    result = normalize_phone_number("0612345678")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.e164 = "+33700000000"  # type: ignore[misc]


def _random_raw(rng: random.Random) -> str:
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 14)))
    prefix = rng.choice(["", "0", "06", "07", "069", "+", "+33", "0033", "+49", "+1", "'", " "])
    return prefix + digits


def test_normalizing_an_e164_output_gives_itself() -> None:
    rng = random.Random(20240601)
    raws = [raw for raw, *_ in ACCEPTED] + [_random_raw(rng) for _ in range(2000)]
    outputs = [normalize_phone_number(raw) for raw in raws]
    kept = [out for out in outputs if isinstance(out, NormalizedNumber)]
    assert len(kept) > 200
    for out in kept:
        assert out.is_valid and phonenumbers.is_valid_number(phonenumbers.parse(out.e164))
        for default_region in ("FR", "BE"):
            again = normalize_phone_number(out.e164, default_region=default_region)
            assert again == NormalizedNumber(out.e164, out.e164, out.is_valid, out.region)


def _parses(monkeypatch, raw: str) -> tuple[NormalizedNumber | RejectedNumber, int]:
    """``raw`` normalised, and how many times libphonenumber parsed text for it."""
    parse = phonenumbers.parse
    calls = []

    def counted(*args, **kwargs):
        calls.append(args)
        return parse(*args, **kwargs)

    monkeypatch.setattr(phonenumbers, "parse", counted)
    result = normalize_phone_number(raw)
    monkeypatch.setattr(phonenumbers, "parse", parse)
    return result, len(calls)


@pytest.mark.parametrize("raw", ["06 12 34 56 7", "06 12 34 56 78 9", "0612-34-56"])
def test_a_mistyped_french_number_is_not_parsed_in_the_overseas_regions(
    monkeypatch, raw: str
) -> None:
    """No nine consecutive digits of it can be an overseas number: read in FR, settled, and
    rejected, without the four overseas parses (about 100 µs of a rejected value's 190)."""
    result, parses = _parses(monkeypatch, raw)
    assert isinstance(result, RejectedNumber)
    assert parses == 2


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0692 12 34 56", "+262692123456"),
        ("0690 12 34 56", "+590690123456"),
        ("0696 12 34 56", "+596696123456"),
        ("0694 12 34 56", "+594694123456"),
        ("0639 01 23 45", "+262639012345"),
        ("0692 12 34 56 #12", "+262692123456"),  # an extension: digits after the number
    ],
)
def test_an_overseas_number_in_national_form_is_still_found(
    monkeypatch, raw: str, e164: str
) -> None:
    result, _ = _parses(monkeypatch, raw)
    assert isinstance(result, NormalizedNumber) and result.e164 == e164


_OVERSEAS_STARTS = ("692", "693", "639", "269", "262", "690", "691", "590", "696", "596", "694")
_overseas_like = st.builds(
    lambda prefix, start, digits, separator, suffix: (
        prefix + separator.join([start, digits[:2], digits[2:4], digits[4:]]) + suffix
    ),
    prefix=st.sampled_from(
        ("", "0", "00", "+", "262", "0262", "590", "596", "594", "33", "0033", "(0)", "0 ")
    ),
    start=st.sampled_from((*_OVERSEAS_STARTS, "6", "7", "9", "80", "0", "")),
    digits=st.from_regex(r"[0-9]{0,10}", fullmatch=True),
    separator=st.sampled_from(("", " ", ".", "-", "/", "\u202f")),
    suffix=st.sampled_from(
        (
            *("", " ext 12", " x3", "/0692123456", "\u0661\u0662", "\uff10", "a", "ABC", "DEFG"),
            *(" #12", ",12", ";12", "~12"),  # extensions without letters
        )
    ),
)


@pytest.mark.heavy
@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        _overseas_like | st.text(alphabet="0123456789 +-().#x\u0663", max_size=18),
        min_size=1,
        max_size=10,
    )
)
def test_skipping_overseas_parses_changes_no_outcome(values: list[str]) -> None:
    """The shortcut against the same function parsing every overseas region, and the claim
    it rests on against libphonenumber: a text that libphonenumber reads, in a region of
    France's plan, as a valid number of that region's code is never skipped."""
    plan = phone_numbers._FRENCH_PLAN_PARSE_REGIONS
    for value in values:
        for region in plan:
            try:
                number = phonenumbers.parse(value, region, keep_raw_input=True)
            except phonenumbers.NumberParseException:
                continue
            code = phonenumbers.country_code_for_region(region)
            if number.country_code == code and phonenumbers.is_valid_number(number):
                digits = phone_numbers._plan_digits(value)
                assert phone_numbers._may_be_valid_in(digits, code), (value, region)
    shortcut = [normalize_phone_number(value) for value in values]
    with mock.patch.object(phone_numbers, "_plan_digits", return_value=None):
        assert [normalize_phone_number(value) for value in values] == shortcut


E164_TEXT = st.text(alphabet="+0123456789\n٣ a", max_size=20)
WELL_FORMED = st.builds(
    lambda first, rest: f"+{first}{rest}",
    st.integers(1, 9),
    st.text(alphabet="0123456789", min_size=6, max_size=14),
)
CHANGES = {
    "a digit short": lambda n: n[:7],
    "a digit too many": lambda n: n + "0" * (17 - len(n)),
    "a leading 0": lambda n: "+0" + n[2:],
    "no plus": lambda n: n[1:],
    "two in one": lambda n: n + "\n" + n,
    "a line break at the end": lambda n: n + "\n",
    "another script's digit": lambda n: n[:-1] + "٣",
    "not text": lambda n: int(n[1:]),
}
"""What the quick check must leave to pandera, which refuses each of them too."""


@settings(max_examples=300, deadline=None)
@given(
    numbers=st.lists(WELL_FORMED, max_size=6),
    changed=WELL_FORMED,
    change=st.sampled_from(sorted(CHANGES)),
    position=st.integers(0, 6),
)
def test_plainly_e164_leaves_any_list_with_one_changed_number_to_the_full_check(
    numbers: list[str], changed: str, change: str, position: int
) -> None:
    assert phone_numbers.plainly_e164(numbers)
    numbers.insert(position, CHANGES[change](changed))
    assert not phone_numbers.plainly_e164(numbers)
    assert not phone_numbers.plainly_e164(np.array(numbers, dtype=object))


@settings(max_examples=500, deadline=None)
@given(values=st.lists(st.one_of(E164_TEXT, WELL_FORMED, st.none()), max_size=8))
def test_plainly_e164_says_yes_only_to_what_the_pattern_matches(values: list) -> None:
    if phone_numbers.plainly_e164(values):
        assert all(isinstance(v, str) and re.match(E164_PATTERN, v) for v in values)
