"""The public readers: one validated row per data line of a CSV file.

Both read and classify the whole file before returning (pure reads, nothing is sent): a caller
that pushes, deletes or cancels works from a complete, accounted-for list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd
import phonenumbers

from smsp_connector.intake.phone_numbers import (
    NormalizedNumber,
    RejectedNumber,
    normalize_phone_number,
)
from smsp_connector.intake.reader import MAX_INPUT_BYTES, CsvTable, read_table
from smsp_connector.intake.schemas import TextIntakeSchema, phone_intake_schema

__all__ = ["PHONE_COLUMN_ALIASES", "read_phone_csv", "read_text_column_csv"]

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
    default_region: str = "FR",
    max_bytes: int = MAX_INPUT_BYTES,
) -> pd.DataFrame:
    """Read a CSV file of phone numbers: each data row normalised to E.164 or rejected.

    The phone column is ``phone_column`` or the one header in :data:`PHONE_COLUMN_ALIASES`;
    ``extra_columns`` are copied, stripped, after the fixed columns of
    :class:`~smsp_connector.intake.schemas.PhoneIntakeSchema`. A number seen on an earlier row
    has ``duplicate_of_row`` set to that row. Raises
    :class:`~smsp_connector.intake.reader.IntakeError` for a file that cannot be used, and
    ``ValueError`` for an unknown region or an extra column that collides with a fixed one.
    """
    extras = tuple(extra_columns)
    _check_arguments(extras, default_region)
    table = read_table(path, max_bytes=max_bytes)
    phone_index = table.find_column(
        name=phone_column,
        aliases=PHONE_COLUMN_ALIASES,
        what="phone column",
        override="phone_column",
    )
    extra_indexes = [
        table.find_column(name=name, aliases=(), what="column", override="extra_columns")
        for name in extras
    ]
    frame = phone_intake_frame(
        str(path),
        table.column(phone_index),
        table.row_numbers,
        extra={
            name: [cell.strip() for cell in table.column(index)]
            for name, index in zip(extras, extra_indexes, strict=True)
        },
        default_region=default_region,
    )
    return _with_source_digest(frame, table)


def phone_intake_frame(
    source: str,
    raws: Sequence[str],
    row_numbers: Sequence[int],
    *,
    extra: Mapping[str, Sequence[str]] | None = None,
    default_region: str = "FR",
    regions: Sequence[str | None] | None = None,
) -> pd.DataFrame:
    """The :func:`read_phone_csv` frame for values from anywhere (a file, the command line, a
    warehouse table): ``source`` names where they came from, ``row_numbers`` where each was.
    ``regions`` gives each row's region for numbers in national form (a row without one, or
    with one libphonenumber does not know, uses ``default_region``)."""
    extra = extra or {}
    _check_arguments(tuple(extra), default_region)
    row_regions = [
        region.strip().upper()
        if region and region.strip().upper() in phonenumbers.SUPPORTED_REGIONS
        else default_region
        for region in (regions or [None] * len(raws))
    ]
    pairs = list(zip(raws, row_regions, strict=True))
    results = {pair: normalize_phone_number(*pair) for pair in set(pairs)}
    outcomes = [results[pair] for pair in pairs]
    frame = pd.DataFrame(
        {
            "source_file": _strings(source for _ in raws),
            "row_number": pd.Series(list(row_numbers), dtype="int64"),
            "raw_value": _strings(raws),
            **_outcome_columns(outcomes),
        }
    )
    frame["duplicate_of_row"] = _duplicate_of_row(frame["e164"], frame["row_number"])
    for name, values in extra.items():
        frame[name] = _strings(values)
    return phone_intake_schema(tuple(extra)).validate(frame)


def read_text_column_csv(
    path: str | Path,
    *,
    column_aliases: Sequence[str],
    column: str | None = None,
    what: str,
    max_bytes: int = MAX_INPUT_BYTES,
) -> pd.DataFrame:
    """Read one text column (message ids, …): ``raw_value`` is each cell stripped.

    The column is ``column`` or the one header matching ``column_aliases`` (compared like
    phone columns: case, accents, spaces and punctuation ignored); ``what`` names it in error
    messages. An empty cell stays a row with ``raw_value`` "" (the caller rejects it); a
    non-empty value seen on an earlier row has ``duplicate_of_row`` set to that row.
    """
    table = read_table(path, max_bytes=max_bytes)
    index = table.find_column(name=column, aliases=column_aliases, what=what, override="column")
    values = [cell.strip() for cell in table.column(index)]
    frame = pd.DataFrame(_base_columns(path, table, values))
    keys = frame["raw_value"].where(frame["raw_value"] != "")
    frame["duplicate_of_row"] = _duplicate_of_row(keys, frame["row_number"])
    return _with_source_digest(TextIntakeSchema.validate(frame), table)


SOURCE_SHA256 = "source_sha256"
"""``frame.attrs`` key of the SHA-256 of the bytes a file's frame was read from."""


def _with_source_digest(frame: pd.DataFrame, table: CsvTable) -> pd.DataFrame:
    frame.attrs[SOURCE_SHA256] = table.sha256
    return frame


def _check_arguments(extras: tuple[str, ...], default_region: str) -> None:
    if default_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown default region {default_region!r}")
    clashes = sorted(set(extras) & set(_PHONE_COLUMNS))
    if clashes or len(set(extras)) != len(extras):
        raise ValueError(f"extra_columns must be distinct and not {list(_PHONE_COLUMNS)}")


def _base_columns(path: str | Path, table: CsvTable, values: list[str]) -> dict[str, pd.Series]:
    return {
        "source_file": _strings(str(path) for _ in values),
        "row_number": pd.Series(table.row_numbers, dtype="int64"),
        "raw_value": _strings(values),
    }


def _outcome_columns(outcomes: list[NormalizedNumber | RejectedNumber]) -> dict[str, pd.Series]:
    kept = [o if isinstance(o, NormalizedNumber) else None for o in outcomes]
    rejected = [o if isinstance(o, RejectedNumber) else None for o in outcomes]
    return {
        "e164": _strings(number.e164 if number else None for number in kept),
        "is_valid": pd.Series(
            [number.is_valid if number else None for number in kept], dtype="boolean"
        ),
        "region": _strings(number.region if number else None for number in kept),
        "rejection_reason": _strings(r.reason.value if r else None for r in rejected),
        "rejection_message": _strings(r.message if r else None for r in rejected),
    }


def _strings(values: Iterable[str | None]) -> pd.Series:
    """Text (or None) kept as Python str in an object column: never inferred as numbers."""
    return pd.Series(list(values), dtype=object)


def _duplicate_of_row(keys: pd.Series, row_numbers: pd.Series) -> pd.Series:
    """The first row with the same key, for every later row with it; null elsewhere."""
    first = row_numbers.groupby(keys, dropna=True).transform("min")
    return first.where(first != row_numbers).astype("Int64")
