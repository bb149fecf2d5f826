"""The CSV reports written beside an input file: its rejected rows and the rows that did not
go through (refused by a guard or the provider, or failed after every retry).

Cells a spreadsheet would run as a formula get a leading apostrophe (OWASP's advice); a
well-formed E.164 number starts with ``+`` yet cannot carry a formula, so it is left as is.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from smsp_connector.intake.phone_numbers import E164_PATTERN
from smsp_connector.warehouse.exports import FORMULA_START

REJECTED_SUFFIX = ".rejected.csv"
REFUSED_SUFFIX = ".refused.csv"
REPORT_SUFFIXES = (REJECTED_SUFFIX, REFUSED_SUFFIX)

_FORMULA_START = re.compile(FORMULA_START)
_E164 = re.compile(E164_PATTERN)


def report_path(source: Path, suffix: str) -> Path:
    return source.with_name(source.stem + suffix)


def formula_safe(value: object) -> object:
    """``value`` with a leading apostrophe when a spreadsheet would execute it."""
    if isinstance(value, str) and _FORMULA_START.match(value) and not _E164.match(value):
        return "'" + value
    return value


def write_report(path: Path, rows: pd.DataFrame) -> Path | None:
    """Write ``rows`` to ``path`` (formula-safe); remove a stale report when there are none."""
    if rows.empty:
        path.unlink(missing_ok=True)
        return None
    safe = rows.astype(object).map(formula_safe)
    partial = path.with_name(f".{path.name}.partial")
    safe.to_csv(partial, index=False)
    partial.replace(path)
    return path
