"""Reading the provider's loosely typed values.

The provider's pages show one example per endpoint; its answers, and other public clients, show
more: ids and numbers given as text (``"300"``, ``"0,038"``), ``null`` counts, ``success`` as
``"true"`` or ``1``, dates in other forms. Each reader here accepts the spellings that mean one
thing and raises :class:`Unreadable` for anything else, so the client can turn it into a
:class:`~smsp_connector.client.errors.SmspResponseError` that keeps the raw answer.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

from smsp_connector.client.models import (
    PROVIDER_TIME_FORMAT,
    PROVIDER_TZ,
    TIME_RANGE_TEXT,
    in_time_range,
)

_DIGITS = re.compile(r"\d+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)", re.ASCII)
_PROVIDER_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", re.ASCII)
"""The documented ``YYYY-MM-DD HH:MM:SS`` (:data:`PROVIDER_TIME_FORMAT`), zero-padded."""
_ZERO_DATE = "0000-00-00 00:00:00"
"""MySQL's "no date", as a PHP backend writes a missing date."""
_SEND_TIME_FORMATS = (
    PROVIDER_TIME_FORMAT,
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
)


class Unreadable(Exception):
    """A value of the provider's answer that cannot be read; the message says which."""


class RepeatedKey(ValueError):
    """A JSON object of the answer gives one key twice: which value the provider meant depends
    on the reader (Python's json keeps the last, DuckDB the first), so none is taken."""

    def __init__(self, key: str) -> None:
        super().__init__(f"an object that repeats the key {key!r}")
        self.key = key


class NotUnicode(ValueError):
    """A JSON string escapes a lone surrogate (``"\\udcff"``): Python decodes it, but no
    database, file or terminal can hold it (DuckDB's JSON reader refuses it)."""

    def __init__(self) -> None:
        super().__init__("text that is not Unicode (a lone surrogate)")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _checked_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        raise RepeatedKey(next(key for key, _ in pairs if key in seen or seen.add(key)))
    for key, value in pairs:
        for text in (key, value):
            if isinstance(text, str) and not text.isascii() and _SURROGATE.search(text):
                raise NotUnicode
    return members


def loads(document: str | bytes) -> Any:
    """JSON decoded as :func:`json.loads` does, except that an object repeating a key raises
    :class:`RepeatedKey` instead of keeping its last value, and an object's key or text value
    holding a lone surrogate raises :class:`NotUnicode` (both ``ValueError``). Text directly
    in an array is not checked: the provider's answers hold their text in objects."""
    return json.loads(document, object_pairs_hook=_checked_members)


def flag(value: object) -> bool | None:
    """``true``/``false`` as a JSON boolean, ``1``/``0`` or their text (any case); else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return {"true": True, "1": True, "false": False, "0": False}.get(value.strip().lower())
    return None


def whole_number(value: object, what: str) -> int | None:
    """A non-negative whole number given as a number or as text (``300``, ``"300"``,
    ``300.0``); ``None`` stays ``None``. Raises :class:`Unreadable` for anything else."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    raise Unreadable(f"{what} {value!r} is not a whole number")


def decimal(value: object, what: str) -> float | None:
    """A finite number given as a number or as text with a dot or a comma (``0.038``,
    ``"0.038"``, ``"0,038"``); ``None`` stays ``None``. Raises :class:`Unreadable` otherwise."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        return float(value.strip().replace(",", "."))
    raise Unreadable(f"{what} {value!r} is not a number")


def opt_out_time(value: object) -> datetime | None:
    """A stop-list ``createdAt`` in the documented form (``YYYY-MM-DD HH:MM:SS``, Paris time),
    or ``None`` for anything else (``null``, ``0000-00-00 00:00:00``, ISO with an offset, a
    date outside :func:`~smsp_connector.client.models.in_time_range` such as ``0001-01-01``…).

    Only the documented form is read, as the extract's validation does, so the warehouse and
    the deletion guard agree on which entries have a usable opt-out time.
    """
    if not isinstance(value, str):
        return None
    try:
        if _PROVIDER_TIME.fullmatch(value):
            # fromisoformat reads this shape several times faster than strptime.
            moment = datetime.fromisoformat(value)
        else:  # unpadded fields (2025-3-1 9:05:00), as strptime and the extract accept
            moment = datetime.strptime(value, PROVIDER_TIME_FORMAT)
    except ValueError:  # 0000-00-00 00:00:00, 2025-02-30 …, ISO with a T or an offset
        return None
    return moment.replace(tzinfo=PROVIDER_TZ) if in_time_range(moment) else None


def provider_time(value: object, what: str) -> datetime | None:
    """A provider timestamp (``YYYY-MM-DD HH:MM:SS``, Paris time); ``None``, ``""`` and
    ``0000-00-00 00:00:00`` (no date) are ``None``. Raises :class:`Unreadable` otherwise."""
    if value is None or value == "" or value == _ZERO_DATE:
        return None
    moment = opt_out_time(value)
    if moment is None:
        raise Unreadable(f"{what} {value!r} is not a YYYY-MM-DD HH:MM:SS time {TIME_RANGE_TEXT}")
    return moment


def send_time(value: object, what: str) -> datetime | None:
    """A scheduled send time as ``/send`` may echo it: ``YYYY-MM-DD HH:MM:SS`` or the request's
    own ``dd/MM/yyyy HH:mm`` (Paris time), or ISO 8601 with an offset (an exact instant, shown
    in Paris time). ``None``/``""`` are ``None``; raises :class:`Unreadable` otherwise, and for
    a date outside :func:`~smsp_connector.client.models.in_time_range`."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        for pattern in _SEND_TIME_FORMATS:
            try:
                moment = datetime.strptime(text, pattern)
            except ValueError:
                continue
            if in_time_range(moment):
                return moment.replace(tzinfo=PROVIDER_TZ)
            break
        else:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                pass
            else:
                if moment.tzinfo is not None and in_time_range(moment):
                    return moment.astimezone(PROVIDER_TZ)
    raise Unreadable(f"{what} {value!r} is not a date and time {TIME_RANGE_TEXT}")
