"""The phone-number normaliser at its edges (issue 19 item 6): each test here fails on a change
to ``intake/phone_numbers.py`` that tests/test_phone_numbers.py let through under mutation
testing (``make mutation``, docs/mutation.md). Only the public functions are called, except
the French shortcut's pattern, which is built once at import and checked here against
libphonenumber itself."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from smsp_connector.intake import phone_numbers
from smsp_connector.intake.phone_numbers import (
    NormalizedNumber,
    RejectedNumber,
    RejectionReason,
    normalize_phone_number,
    valid_french_e164,
)


def _french_samples() -> list[str]:
    """Nine-digit French national numbers: every type's example and random ones."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("FR")
    examples = [
        desc.example_number
        for desc in (
            metadata.fixed_line, metadata.mobile, metadata.toll_free, metadata.premium_rate,
            metadata.shared_cost, metadata.voip, metadata.uan, metadata.pager,
            metadata.personal_number, metadata.voicemail,
        )
        if desc is not None and desc.example_number
    ]  # fmt: skip
    rng = random.Random(20261204)
    randoms = [
        str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(8))
        for _ in range(3000)
    ]
    return examples + randoms


def test_the_french_shortcut_pattern_matches_exactly_the_numbers_libphonenumber_calls_valid():
    pattern = phone_numbers._french_validity()
    samples = _french_samples()

    assert pattern is not None, "no shortcut: the metadata has the shape it relies on"
    verdicts = {
        national: phonenumbers.is_valid_number(phonenumbers.parse("+33" + national))
        for national in samples
    }
    assert sum(verdicts.values()) > 300 and not all(verdicts.values())
    assert {n: pattern.match(n) is not None for n in samples} == verdicts
    assert pattern.match("61234567") is None and pattern.match("6123456789") is None


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("0612345678", "+33612345678"),
        ("06 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("06-12-34-56-78", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("33612345678", "+33612345678"),
        ("+33612345678", "+33612345678"),
        ("0145678901", "+33145678901"),
    ],
)
def test_the_french_shortcut_reads_the_common_forms(text, e164):
    assert valid_french_e164(text) == e164


@pytest.mark.parametrize(
    "text",
    [
        "0712345678",  # no assigned range
        "061234567",  # a digit short
        "06123456789",  # a digit long
        "06  12 34 56 78",  # two spaces
        "06/12/34/56/78",
        "0692123456",  # Réunion: the full path moves it to +262
        "+44 20 7946 0000",
        "٠٦١٢٣٤٥٦٧٨",  # other scripts' digits take the full path
    ],
)
def test_the_french_shortcut_leaves_anything_else_to_the_full_path(text):
    assert valid_french_e164(text) is None


@pytest.mark.parametrize(
    ("raw", "e164", "region"),
    [
        ("1 650 253 0000", "+16502530000", "US"),
        ("4 915112345678", "+4915112345678", "DE"),
        ("4915112345678 x12", "+4915112345678", "DE"),
    ],
)
def test_a_number_that_lost_its_plus_is_read_with_one(raw, e164, region):
    assert normalize_phone_number(raw) == NormalizedNumber(raw, e164, True, region)


def test_a_plus_is_not_put_in_front_of_a_letter():
    # "+X4915112345678" is read as +49 15112345678 (one letter is noise): the plus is only
    # restored in front of a digit, as a spreadsheet drops it.
    result = normalize_phone_number("X4915112345678")

    assert isinstance(result, RejectedNumber)
    assert result.reason is RejectionReason.TOO_LONG


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ('="0033612345678"', "+33612345678"),
        ('="0612345678', "+33612345678"),
        ('0612345678"', "+33612345678"),
        ("'0033612345678", "+33612345678"),
    ],
)
def test_an_excel_text_formula_is_unwrapped_whole_and_only_whole(raw, e164):
    result = normalize_phone_number(raw)

    assert isinstance(result, NormalizedNumber)
    assert (result.raw, result.e164) == (raw, e164)


def test_a_value_read_as_a_phone_keypad_is_rejected_with_its_raw_value():
    assert normalize_phone_number("0612345678 abc") == RejectedNumber(
        "0612345678 abc",
        RejectionReason.NOT_A_NUMBER,
        "'0612345678 abc' mixes letters with its digits: not read as a phone keypad",
    )
