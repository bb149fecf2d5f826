"""The common forms of French-plan numbers read in DuckDB, a column at a time.

A file of a million numbers holds a million distinct values; read one Python call at a time
they cost seconds (``intake/phone_numbers.py``'s quick path is about 2 µs a value, its full
path about 60). :func:`french_plan_numbers` reads them in one SQL statement over an in-memory
database, with the same patterns as the quick path (libphonenumber's own metadata), and leaves
every value it cannot decide to the caller's full path. ``tests/test_phone_forms.py`` checks,
over generated values, that whatever it decides is what ``normalize_phone_number`` gives.
"""

from __future__ import annotations

import os
import threading
from functools import cache

import duckdb
import numpy as np
import pandas as pd

from smsp_connector.intake.phone_numbers import FRENCH_FORM, PlanRegion, french_plan_regions
from smsp_connector.warehouse.sql import literal

__all__ = ["french_plan_numbers"]

_SPACE = r"\s*"
"""What ``str.strip`` removes that RE2's ``\\s`` also matches (tab, newlines, form feed, space):
a value with other white space around it is left to the full path."""

_WRAPPED = (
    f'^{_SPACE}(?:\'{_SPACE}{FRENCH_FORM}|="{_SPACE}{FRENCH_FORM}{_SPACE}"|{FRENCH_FORM}){_SPACE}$'
)
"""A common French form, bare, after a spreadsheet's apostrophe, or in its ``="…"`` formula
(what ``phone_numbers._clean`` unwraps), with white space around: prefix and digits are groups
1 and 2, 3 and 4, or 5 and 6."""


def french_plan_numbers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For text values read in region FR, each one's E.164 form and region where it is a valid
    number of France's plan in a common form (``None`` twice elsewhere: the full path decides).

    ``values`` is an object array of str; the result two object arrays of its length.
    """
    count = len(values)
    e164 = np.full(count, None, dtype=object)
    region = np.full(count, None, dtype=object)
    regions, sql = french_plan_regions(), _statement()
    if count == 0 or regions is None or sql is None:
        return e164, region
    names = np.array([plan.region for plan in regions], dtype=object)
    with _cursor() as conn:
        conn.execute("SET enable_progress_bar = false")
        for start in range(0, count, _BATCH):
            batch = values[start : start + _BATCH]
            positions = np.arange(start, start + len(batch))
            # The forms are ASCII: only ASCII values go to DuckDB, which also cannot take every
            # str (a lone surrogate, a command line's byte that is not UTF-8, fails the whole
            # statement). One C pass over the batch joined first: a call per value is slower.
            if not "".join(batch.tolist()).isascii():
                plain = np.fromiter((value.isascii() for value in batch), bool, len(batch))
                batch, positions = batch[plain], positions[plain]
            frame = pd.DataFrame(
                {"position": positions, "raw": pd.Series(batch, dtype=object, copy=False)}
            )
            conn.register("phone_values", frame)
            found = conn.execute(sql).fetchnumpy()
            conn.unregister("phone_values")
            positions = found["position"].astype("int64")
            e164[positions] = found["e164"]
            # The region's own str object (a str per row from DuckDB: 50 bytes each).
            region[positions] = names.take(found["region"].astype("int64"))
    return e164, region


_DATABASES: dict[int, duckdb.DuckDBPyConnection] = {}
"""This process's in-memory database, by process id: a forked child opens its own instead of
using its parent's. DuckDB is not fork-safe all the same: the parent's database, inherited,
is cleaned up at the child's exit and waits there on threads the child does not have (a fresh
database per call aborted the child instead). Nothing in this project forks: Dagster's runs
and code servers and pytest-xdist's workers are new interpreters."""
_OPENING = threading.Lock()


def _new_lock_in_child() -> None:
    """A lock another thread held at the fork would never be released in the child."""
    global _OPENING
    _OPENING = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_in_child)


def _cursor() -> duckdb.DuckDBPyConnection:
    """A new connection to this process's in-memory database: a fresh database costs tens of
    milliseconds (DuckDB loads ICU, JSON and Parquet into each), a cursor microseconds. Each
    cursor has its own registered views, so concurrent calls do not see each other's values."""
    with _OPENING:
        database = _DATABASES.get(os.getpid())
        if database is None:
            database = _DATABASES[os.getpid()] = duckdb.connect()
        return database.cursor()


_BATCH = 262_144
"""Values read per statement: the statement's work tables (its CTEs are materialised) stay
that size, not the file's (5M distinct values at once peaked at 1 GiB more)."""


@cache
def _statement() -> str | None:
    """The SQL over ``phone_values(raw)``: the position, E.164 form and region (its index in
    :func:`french_plan_regions`) of each value it decides; ``None`` when libphonenumber's
    metadata does not have the expected shape."""
    regions = french_plan_regions()
    if regions is None:
        return None
    france, overseas = regions[0], regions[1:]
    valid_in_france = _valid(france)
    # MATERIALIZED: DuckDB would otherwise inline each CTE where its columns are used, and
    # match the value against the form once per use (three times as slow).
    # The first interpretation is the number in France; a national form ("0…") invalid there
    # is read in each overseas region in turn (normalize_phone_number's order).
    choices = "\n".join(
        f"WHEN prefix = '0' AND {_valid(plan)} THEN {index}"
        for index, plan in enumerate(overseas, start=1)
    )
    codes = "\n".join(
        f"WHEN {index} THEN '+{plan.country_code}'" for index, plan in enumerate(regions)
    )
    return f"""
        WITH forms AS MATERIALIZED (
            SELECT position,
                   regexp_extract(raw, {literal(_WRAPPED)}, ['p1', 'd1', 'p2', 'd2', 'p3', 'd3'])
                       AS parts
            FROM phone_values
            WHERE regexp_full_match(raw, {literal(_WRAPPED)})
        ), numbers AS MATERIALIZED (
            SELECT position,
                   coalesce(nullif(parts.p1, ''), nullif(parts.p2, ''), parts.p3) AS prefix,
                   replace(replace(replace(parts.d1 || parts.d2 || parts.d3, ' ', ''), '.', ''),
                           '-', '') AS digits
            FROM forms
        ), read AS (
            SELECT position, digits,
                   CASE WHEN {valid_in_france} THEN 0
                        {choices}
                   END AS region
            FROM numbers
        )
        SELECT position, (CASE region {codes} END) || digits AS e164, region
        FROM read
        WHERE region IS NOT NULL
    """


def _valid(plan: PlanRegion) -> str:
    """SQL: ``digits`` is a valid national number of ``plan``'s region (RE2 has no
    look-ahead: two full matches where Python's quick path uses one pattern)."""
    types = "|".join(plan.types)
    return (
        f"(regexp_full_match(digits, {literal(plan.general)}) "
        f"AND regexp_full_match(digits, {literal(types)}))"
    )
