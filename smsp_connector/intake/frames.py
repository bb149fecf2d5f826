"""The public readers: one validated row per data line of a CSV file.

Both read and classify the whole file before returning (pure reads, nothing is sent): a caller
that pushes, deletes or cancels works from a complete, accounted-for list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import phonenumbers

from smsp_connector.intake.phone_numbers import (
    DEFAULT_REGION,
    E164_PATTERN,
    NormalizedNumber,
    normalize_phone_number,
    plainly_e164,
    valid_french_e164,
)
from smsp_connector.intake.reader import MAX_INPUT_BYTES, CsvTable, read_table
from smsp_connector.intake.schemas import TextIntakeSchema, phone_intake_schema

__all__ = [
    "PHONE_COLUMN_ALIASES", "Intake", "QuickPath", "python_quick_path", "read_phone_csv",
    "read_text_column_csv", "storable", "storable_text",
]  # fmt: skip

QuickPath = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""Reads many values (an object array of str) in region FR at once: each one's E.164 form and
region where it is a valid number in a common form, ``None`` twice elsewhere (the full path,
``normalize_phone_number``, reads those). What it decides must be what the full path gives:
``tests/test_phone_forms.py`` checks the project's two."""


@dataclass(frozen=True)
class Intake:
    """An input read: its rows, and what identifies what was read, as a plan records it."""

    frame: pd.DataFrame
    """One row per input row (:func:`read_phone_csv`'s or a text column's layout)."""
    sha256: str | None = None
    """The SHA-256 of the bytes a file's rows were read from; ``None`` for values given inline
    or read from a table."""
    options: Mapping[str, str] = field(default_factory=dict)
    """How the rows were read (the phone column's header as found, the default region)."""

    @property
    def source_file(self) -> str | None:
        """The file (or label) the rows came from; ``None`` when there is no row."""
        return str(self.frame["source_file"].iloc[0]) if len(self.frame) else None


PHONE_COLUMN_ALIASES: tuple[str, ...] = (
    # English
    "phone", "phonenumber", "phoneno", "phonenum", "mobile", "mobilephone", "mobilenumber",
    "mobileno", "mobilephonenumber", "cell", "cellphone", "cellnumber", "cellphonenumber",
    "cellular", "msisdn", "gsm", "telephone", "telephonenumber", "tel", "telno",
    # French ("N° de téléphone" normalises to "ndetelephone")
    "telephoneportable", "telephonemobile", "telportable", "telmobile", "portable", "numero",
    "numerodetelephone", "numerotelephone", "numerotel", "numeroportable", "numeromobile",
    "numerogsm", "numtel", "numtelephone", "numportable", "ntel", "ntelephone", "ndetelephone",
    "notel", "notelephone", "nportable",
)  # fmt: skip
"""Phone column names as :func:`~smsp_connector.intake.reader.normalize_header` leaves them."""

_PHONE_COLUMNS = (
    "source_file", "row_number", "raw_value", "e164", "is_valid", "region", "rejection_reason",
    "rejection_message", "duplicate_of_row",
)  # fmt: skip


def read_phone_csv(
    path: str | Path,
    *,
    phone_column: str | None = None,
    extra_columns: Sequence[str] = (),
    default_region: str = DEFAULT_REGION,
    max_bytes: int = MAX_INPUT_BYTES,
    quick_path: QuickPath | None = None,
) -> Intake:
    """Read a CSV file of phone numbers: each data row normalised to E.164 or rejected
    (``quick_path``: see :func:`phone_intake_frame`).

    The phone column is ``phone_column`` or the one header in :data:`PHONE_COLUMN_ALIASES`;
    ``extra_columns`` are copied, stripped, after the fixed columns of
    :class:`~smsp_connector.intake.schemas.PhoneIntakeSchema`. A number seen on an earlier row
    has ``duplicate_of_row`` set to that row. Raises
    :class:`~smsp_connector.intake.reader.IntakeError` for a file that cannot be used, and
    ``ValueError`` for an unknown region or an extra column that collides with a fixed one.
    """
    extras = tuple(extra_columns)
    _check_arguments(extras, default_region)

    def select(header: CsvTable) -> list[int]:
        return [
            phone_column_index(header, phone_column),
            *(
                header.find_column(name=name, aliases=(), what="column", override="extra_columns")
                for name in extras
            ),
        ]

    table = read_table(path, max_bytes=max_bytes, select=select)
    phone_index, *extra_indexes = select(table)
    frame = phone_intake_frame(
        str(path),
        table.column(phone_index),
        table.row_numbers,
        extra={
            name: _stripped(table.column(index))
            for name, index in zip(extras, extra_indexes, strict=True)
        },
        default_region=default_region,
        quick_path=quick_path,
    )
    options = {"phone_column": table.headers[phone_index], "default_region": default_region.upper()}
    return Intake(frame, table.sha256, options)


def phone_column_index(table: CsvTable, phone_column: str | None) -> int:
    """The phone column of ``table``: ``phone_column``, or the one header among
    :data:`PHONE_COLUMN_ALIASES`; raises :class:`~smsp_connector.intake.reader.IntakeError`
    naming what it found otherwise."""
    return table.find_column(
        name=phone_column,
        aliases=PHONE_COLUMN_ALIASES,
        what="phone column",
        override="phone_column",
    )


def phone_intake_frame(
    source: str,
    raws: Sequence[str],
    row_numbers: Sequence[int],
    *,
    extra: Mapping[str, Sequence[str]] | None = None,
    default_region: str = DEFAULT_REGION,
    regions: Sequence[str | None] | None = None,
    quick_path: QuickPath | None = None,
) -> pd.DataFrame:
    """The :func:`read_phone_csv` frame for values from anywhere (a file, the command line, a
    warehouse table): ``source`` names where they came from, ``row_numbers`` where each was.
    ``regions`` gives each row's region for numbers in national form (a row without one, or
    with one libphonenumber does not know, uses ``default_region``). ``quick_path`` reads the
    values of region FR first (by default :func:`python_quick_path`); the full path reads
    what it leaves."""
    extra = extra or {}
    _check_arguments(tuple(extra), default_region)
    default_region = default_region.upper()
    count = len(raws)
    raw_values = _object_array(raws)
    # Each distinct (value, region) is normalised once: libphonenumber costs ~30 µs a call,
    # and a file of a million rows repeats many values.
    codes, distinct = pd.factorize(raw_values, use_na_sentinel=False)
    if storable_text(distinct) is not None:
        # pandas gives every str holding a lone surrogate one and the same code: repair the
        # values themselves, then tell them apart again.
        raw_values = storable_text(raw_values)
        codes, distinct = pd.factorize(raw_values, use_na_sentinel=False)
    if regions is None:
        pair_raws = np.asarray(distinct, dtype=object)
        pair_regions = _repeated(default_region, len(distinct))
    else:
        if len(regions) != count:
            raise ValueError(f"{len(regions)} regions for {count} values")
        region_codes, region_names = pd.factorize(
            _object_array([_usable_region(region, default_region) for region in regions]),
            use_na_sentinel=False,
        )
        width = max(len(region_names), 1)
        codes, combined = pd.factorize(
            codes.astype("int64") * width + region_codes, use_na_sentinel=False
        )
        pair_raws = np.asarray(distinct, dtype=object).take(combined // width)
        pair_regions = np.asarray(region_names, dtype=object).take(combined % width)
    frame = pd.DataFrame(
        {
            "source_file": pd.Series(_repeated(storable(source), count), dtype=object),
            "row_number": pd.Series(np.asarray(row_numbers, dtype="int64"), dtype="int64"),
            "raw_value": pd.Series(raw_values, dtype=object),
            **_outcome_columns(pair_raws, pair_regions, codes, quick_path),
        },
        copy=False,  # each column stays its own block: no consolidated copy of them all
    )
    frame["duplicate_of_row"] = _duplicate_of_row(frame["e164"], frame["row_number"])
    for name, values in extra.items():
        column = _object_array(values)
        if (repaired := storable_text(column)) is not None:
            column = repaired
        frame[name] = pd.Series(column, dtype=object)
    return _validated(frame, phone_intake_schema(tuple(extra)))


_VALIDATION_ROWS = 131_072
"""Rows validated at a time: pandera's checks build temporaries as long as what they check."""


def _validated(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> pd.DataFrame:
    """``frame`` validated by ``schema`` in slices of :data:`_VALIDATION_ROWS` rows, in place
    (no copy of the frame); ``row_number``'s uniqueness, the one check across rows, is also
    checked on the whole column. Raises pandera's ``SchemaError`` as one whole validation.

    A slice whose numbers :func:`plainly_e164` passes skips pandera's pattern check on
    ``e164`` (a regular expression per value: 40% of the validation), which the others get."""
    quick = _without_pattern_check(schema)
    for start in range(0, max(len(frame), 1), _VALIDATION_ROWS):
        part = frame.iloc[start : start + _VALIDATION_ROWS]
        numbers = part["e164"].to_numpy() if quick is not None else None
        plain = numbers is not None and plainly_e164(numbers[np.not_equal(numbers, None)])
        (quick if plain else schema).validate(part, inplace=True)
    if len(frame) > _VALIDATION_ROWS and frame["row_number"].duplicated().any():
        schema.columns["row_number"].validate(frame, inplace=True)  # raises, naming them
    return frame


def _without_pattern_check(schema: pa.DataFrameSchema) -> pa.DataFrameSchema | None:
    """``schema`` without its check of :data:`E164_PATTERN` on ``e164``, the one check that
    :func:`plainly_e164` proves (``None``: it has no such check)."""
    column = schema.columns.get("e164")
    if column is None:
        return None
    checks = [check for check in column.checks if not _is_e164_pattern(check)]
    if len(checks) == len(column.checks):
        return None
    return schema.update_column("e164", checks=checks)


def _is_e164_pattern(check: pa.Check) -> bool:
    return check.name == "str_matches" and check.statistics.get("pattern") == E164_PATTERN


def _usable_region(region: str | None, default_region: str) -> str:
    """A row's region for numbers in national form: its own if libphonenumber knows it."""
    if region and region.strip().upper() in phonenumbers.SUPPORTED_REGIONS:
        return region.strip().upper()
    return default_region


def read_text_column_csv(
    path: str | Path,
    *,
    column_aliases: Sequence[str],
    column: str | None = None,
    what: str,
    max_bytes: int = MAX_INPUT_BYTES,
) -> Intake:
    """Read one text column (message ids, …): ``raw_value`` is each cell stripped.

    The column is ``column`` or the one header matching ``column_aliases`` (compared like
    phone columns: case, accents, spaces and punctuation ignored); ``what`` names it in error
    messages. An empty cell stays a row with ``raw_value`` "" (the caller rejects it); a
    non-empty value seen on an earlier row has ``duplicate_of_row`` set to that row.
    """

    def select(header: CsvTable) -> list[int]:
        return [
            header.find_column(name=column, aliases=column_aliases, what=what, override="column")
        ]

    table = read_table(path, max_bytes=max_bytes, select=select)
    [index] = select(table)
    values = _stripped(table.column(index))
    frame = pd.DataFrame(_base_columns(path, table, values))
    keys = frame["raw_value"].where(frame["raw_value"] != "")
    frame["duplicate_of_row"] = _duplicate_of_row(keys, frame["row_number"])
    return Intake(TextIntakeSchema.validate(frame), table.sha256)


def _check_arguments(extras: tuple[str, ...], default_region: str) -> None:
    if default_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown default region {default_region!r}")
    clashes = sorted(set(extras) & set(_PHONE_COLUMNS))
    if clashes or len(set(extras)) != len(extras):
        raise ValueError(f"extra_columns must be distinct and not {list(_PHONE_COLUMNS)}")


def _base_columns(path: str | Path, table: CsvTable, values: list[str]) -> dict[str, pd.Series]:
    return {
        "source_file": _strings(storable(str(path)) for _ in values),
        "row_number": pd.Series(np.asarray(table.row_numbers, dtype="int64"), dtype="int64"),
        "raw_value": _strings(values),
    }


def _outcome_columns(
    raws: np.ndarray, regions: np.ndarray, codes: np.ndarray, quick_path: QuickPath | None
) -> dict[str, pd.Series]:
    """The outcome columns of every row, from its distinct (value, region) pair's (``codes``
    gives each row's pair): a row holds references to its pair's strings, no copies.

    The quick path reads the pairs of region FR at once; :func:`normalize_phone_number` the
    rest, one value at a time."""
    count = len(raws)
    # Object arrays filled in place (None where nothing is set): no list per column first.
    e164, region, reason, message = (np.full(count, None, dtype=object) for _ in range(4))
    in_france = np.flatnonzero(_texts_in_france(raws, regions))
    e164[in_france], region[in_france] = (quick_path or python_quick_path)(raws[in_france])
    valid = np.not_equal(e164, None)
    known = valid.copy()  # is_valid is not null
    for index in np.flatnonzero(~valid).tolist():
        raw = raws[index]
        if isinstance(raw, float) and raw != raw:
            raw = None  # factorize gives a missing value (None) back as NaN
        outcome = normalize_phone_number(raw, regions[index])
        if isinstance(outcome, NormalizedNumber):
            e164[index] = outcome.e164
            valid[index] = outcome.is_valid
            known[index] = True
            region[index] = outcome.region
        else:
            reason[index] = outcome.reason.value
            message[index] = outcome.message
    return {
        "e164": pd.Series(e164.take(codes), dtype=object),
        "is_valid": pd.Series(
            pd.arrays.BooleanArray(valid.take(codes), ~known.take(codes)), dtype="boolean"
        ),
        "region": pd.Series(region.take(codes), dtype=object),
        "rejection_reason": pd.Series(reason.take(codes), dtype=object),
        "rejection_message": pd.Series(message.take(codes), dtype=object),
    }


def _texts_in_france(raws: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Which values are text to read in region FR (a mask): one C pass over each array, and a
    Python call per value only when some value is not a str (a missing one: NaN)."""
    mask = np.asarray(regions == "FR", dtype=bool)
    if len(raws) and pd.api.types.infer_dtype(raws, skipna=False) != "string":
        mask &= np.fromiter((isinstance(raw, str) for raw in raws), bool, len(raws))
    return mask


def python_quick_path(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The default :data:`QuickPath`: each value in a common French form that libphonenumber
    calls valid in FR, read by ``valid_french_e164`` one at a time."""
    e164 = np.fromiter(
        (valid_french_e164(value.strip()) for value in values), dtype=object, count=len(values)
    )
    region = np.where(np.not_equal(e164, None), "FR", None).astype(object)
    return e164, region


_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(values: np.ndarray) -> np.ndarray | None:
    """``values`` with each lone surrogate replaced by U+FFFD, or ``None`` when none has one.

    Python gives a command line's bytes that are not UTF-8 as lone surrogates (``"\\udcff"``
    for 0xFF), and JSON run config may hold them too: no database, file or report can store
    such text (DuckDB invalidates the whole database on a frame holding it), so it is read
    as the replacement character a UTF-8 reader would show."""
    if not any(
        _holds_surrogate(values[start : start + _SCAN]) for start in range(0, len(values), _SCAN)
    ):
        return None
    broken = [
        index
        for index, value in enumerate(values.tolist())
        if isinstance(value, str) and storable(value) is not value
    ]
    fixed = values.copy()
    for index in broken:
        fixed[index] = storable(values[index])
    return fixed


_SCAN = 262_144
"""Values joined into one text at a time to look for a lone surrogate (bounded memory)."""


def _holds_surrogate(values: np.ndarray) -> bool:
    """Whether a str among ``values`` holds a lone surrogate: one C pass over their text
    joined (a Python call per value costs a second at 5M values)."""
    texts = values.tolist()
    try:
        joined = "".join(texts)
    except TypeError:  # None or NaN among them
        joined = "".join(text for text in texts if isinstance(text, str))
    return not joined.isascii() and _SURROGATE.search(joined) is not None


def storable(text: str) -> str:
    """``text`` itself, or a copy with each lone surrogate replaced by U+FFFD (see
    :func:`storable_text`; a file name's bytes that are not UTF-8 arrive so too)."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub("\ufffd", text)


def _repeated(value: str, count: int) -> np.ndarray:
    """``value`` ``count`` times, as one str object (``np.full`` makes a copy per element)."""
    array = np.empty(count, dtype=object)
    array.fill(value)
    return array


def _object_array(values: Iterable[str | None]) -> np.ndarray:
    """Text (or None) as an object array of the very str objects: never inferred as numbers."""
    values = values if isinstance(values, list) else list(values)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _stripped(cells: list[str]) -> list[str]:
    """Cells stripped, each distinct cell once (extra columns repeat their values)."""
    seen: dict[str, str] = {}
    return [seen[cell] if cell in seen else seen.setdefault(cell, cell.strip()) for cell in cells]


def _strings(values: Iterable[str | None]) -> pd.Series:
    """Text (or None) kept as Python str in an object column: never inferred as numbers."""
    return pd.Series(list(values), dtype=object)


def _duplicate_of_row(keys: pd.Series, row_numbers: pd.Series) -> pd.Series:
    """The first row with the same key, for every later row with it; null elsewhere."""
    codes, uniques = pd.factorize(keys)  # a missing key is -1
    rows = row_numbers.to_numpy(dtype="int64")
    first = np.full(len(uniques) + 1, np.iinfo(np.int64).max)  # the last one: no key
    has_key = codes >= 0
    np.minimum.at(first, codes[has_key], rows[has_key])
    earlier = first[codes]
    result = pd.array(earlier, dtype="Int64")
    result[~has_key | (earlier == rows)] = pd.NA
    return pd.Series(result, index=keys.index)
