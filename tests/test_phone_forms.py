"""The common French-plan forms read in DuckDB (``warehouse/phone_forms.py``) give what the
full path gives (``normalize_phone_number``), value by value, and decide the common forms."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsp_connector.intake import phone_intake_frame
from smsp_connector.intake.frames import python_quick_path
from smsp_connector.intake.phone_numbers import NormalizedNumber, normalize_phone_number
from smsp_connector.warehouse.phone_forms import french_plan_numbers

PREFIXES = ("+33", "0033", "33", "0", "+262", "00262", "262", "+590", "", "00", "+")
SEPARATORS = ("", " ", ".", "-", "  ", "/", "\u202f", "\u00a0")
AROUND = ("", " ", "\t", "\n", " \r\n", "\v", "\x1c", "\u00a0", "\u2003")


def _decided_agree(values: list[str]) -> int:
    """Every value the SQL decides reads the same on the full path; how many it decided."""
    e164, region = french_plan_numbers(np.array(values, dtype=object))
    decided = 0
    for value, number, area in zip(values, e164, region, strict=True):
        if number is None:
            assert area is None, value
            continue
        decided += 1
        expected = normalize_phone_number(value, "FR")
        assert isinstance(expected, NormalizedNumber), value
        assert (number, area) == (expected.e164, expected.region), value
    return decided


def _form(digits: str, prefix: str, separator: str, wrap: str, before: str, after: str) -> str:
    grouped = separator.join([digits[:1], digits[1:3], digits[3:5], digits[5:7], digits[7:]])
    text = prefix + (separator if prefix else "") + grouped
    if wrap == "'":
        text = "'" + text
    elif wrap == "=":
        text = f'="{text}"'
    return before + text + after


forms = st.builds(
    _form,
    digits=st.from_regex(r"[0-9]{9}", fullmatch=True)
    | st.from_regex(r"[0-9]{7,11}", fullmatch=True),
    prefix=st.sampled_from(PREFIXES),
    separator=st.sampled_from(SEPARATORS),
    wrap=st.sampled_from(("", "'", "=", '"')),
    before=st.sampled_from(AROUND),
    after=st.sampled_from(AROUND),
)


@pytest.mark.heavy
@settings(max_examples=150, deadline=None)
@given(st.lists(forms | st.text(max_size=20), min_size=1, max_size=40))
def test_what_the_sql_decides_is_what_libphonenumber_reads(values: list[str]) -> None:
    _decided_agree(values)


def test_every_prefix_of_the_french_plan_in_the_common_forms() -> None:
    """Every three-digit start of a national number, overseas ones included, in each common
    form: the SQL decides the valid ones as libphonenumber reads them, and most of them."""
    rng = random.Random(20261207)
    values = []
    for start in range(100, 1000):
        digits = f"{start}{rng.randrange(1_000_000):06d}"
        for prefix in ("0", "+33", "0033", "33"):
            separator = rng.choice(SEPARATORS[:4])
            wrap = rng.choice(("", "'", "="))
            values.append(_form(digits, prefix, separator, wrap, rng.choice(" \t"), ""))
    decided = _decided_agree(values)
    valid = sum(isinstance(normalize_phone_number(value), NormalizedNumber) for value in values)
    assert decided == valid, "every valid value in these forms is decided in SQL"
    assert decided > 1_000


def test_overseas_numbers_dialled_from_france_are_read_in_their_region() -> None:
    values = ["0692 12 34 56", "'0690123456", '="0696 12 34 56"', "0694123456", "0639123456"]
    e164, region = french_plan_numbers(np.array(values, dtype=object))
    assert e164.tolist() == [
        "+262692123456",
        "+590690123456",
        "+596696123456",
        "+594694123456",
        None,
    ]
    assert region.tolist() == ["RE", "GP", "MQ", "GF", None]
    assert _decided_agree(values) == 4


def test_the_intake_frame_is_the_same_on_either_quick_path() -> None:
    rng = random.Random(11)
    values = [
        _form(f"{rng.randrange(100_000_000, 999_999_999)}", rng.choice(PREFIXES),
              rng.choice(SEPARATORS), rng.choice(("", "'", "=")), "", rng.choice(AROUND))
        for _ in range(3_000)
    ] + ["", "n/a", "3.36E+10", "06 12 34 56 78", "+33612345678"]  # fmt: skip
    rows = list(range(2, len(values) + 2))
    with_sql = phone_intake_frame("f.csv", values, rows, quick_path=french_plan_numbers)
    in_python = phone_intake_frame("f.csv", values, rows, quick_path=python_quick_path)
    pd.testing.assert_frame_equal(with_sql, in_python)
    assert with_sql["duplicate_of_row"].notna().sum() >= 1


def test_values_read_in_batches_land_at_their_own_positions(monkeypatch) -> None:
    values = np.array(
        [f"06 12 34 {n // 100:02d} {n % 100:02d}" if n % 3 else "n/a" for n in range(1_000)],
        dtype=object,
    )
    whole = french_plan_numbers(values)
    monkeypatch.setattr("smsp_connector.warehouse.phone_forms._BATCH", 64)
    batched = french_plan_numbers(values)
    assert [array.tolist() for array in batched] == [array.tolist() for array in whole]
    assert batched[0][1] == "+33612340001" and batched[0][0] is None


def test_text_duckdb_cannot_hold_is_left_to_the_full_path() -> None:
    """A lone surrogate (a command line's byte that is not UTF-8) is no text DuckDB takes:
    such a value is left undecided instead of failing the whole batch."""
    e164, region = french_plan_numbers(
        np.array(["0612345678\udcff", "\ud83d", "0612345678"], dtype=object)
    )
    assert e164.tolist() == [None, None, "+33612345678"]
    assert region[:2].tolist() == [None, None]


def test_calls_share_one_in_memory_database_and_threads_do_not_mix_their_values(
    monkeypatch,
) -> None:
    """A fresh DuckDB database costs tens of milliseconds (ICU, JSON and Parquet loaded each
    time): the intake's every call paid it. Calls now open a cursor of one database per
    process, so concurrent calls (Dagster's threads) must still each see only their values."""
    import duckdb

    opened = []
    real = duckdb.connect
    monkeypatch.setattr("smsp_connector.warehouse.phone_forms._DATABASES", {})
    monkeypatch.setattr(
        "smsp_connector.warehouse.phone_forms.duckdb.connect",
        lambda *args, **kwargs: opened.append(args) or real(*args, **kwargs),
    )
    batches = [
        np.array([f"06 12 34 {t:02d} {n:02d}" for n in range(100)] + ["n/a"], dtype=object)
        for t in range(8)
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(french_plan_numbers, batches * 3))
    for batch, (e164, region) in zip(batches * 3, results, strict=True):
        assert e164.tolist() == [f"+336{value[3:].replace(' ', '')}" for value in batch[:-1]] + [
            None
        ]
        assert set(region[:-1]) == {"FR"}
    assert len(opened) == 1


def test_a_child_forked_while_a_thread_opens_the_database_can_still_read() -> None:
    """A lock held by another thread at a fork is never released in the child: the child
    gets a new one, and its own database (the parent's is not fork-safe)."""
    import os
    import signal
    import threading

    from smsp_connector.warehouse import phone_forms

    french_plan_numbers(np.array(["0612345678"], dtype=object))
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with phone_forms._OPENING:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(30)
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through its exit status)
        signal.alarm(20)  # a child stuck on the lock dies instead of hanging the test
        e164, _ = french_plan_numbers(np.array(["06 12 34 56 78"], dtype=object))
        os._exit(0 if e164.tolist() == ["+33612345678"] else 1)
    release.set()
    holder.join()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
