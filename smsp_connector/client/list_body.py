"""The stop list's answer on disk: its envelope read, its ``data`` array left where it lies.

The list comes in one answer, ``{"success": true, "code": 200, "nbData": N, "data": [...]}``:
about 77 bytes an entry, 385 MB for 5,000,000 entries, several gigabytes once decoded into
Python objects. Streamed to a file instead, only its envelope (every field but ``data``) is
read here, from the file's first and last bytes; the envelope's bytes are then overwritten with
spaces, which JSON ignores, so that the file *is* the ``data`` array: a reader such as DuckDB's
``read_json(format='array')`` parses it in parallel, in bounded memory, with no copy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from smsp_connector.client.shapes import loads

EDGE_BYTES = 1 << 16
"""How much of the file's start and end is read to find the envelope around ``data``."""

_DECODER = json.JSONDecoder()
_SPACE = " \t\r\n"


def isolate_data_array(path: Path) -> dict[str, Any] | None:
    """Blank the envelope of the JSON object in ``path`` around its ``data`` array and return
    the envelope's fields; ``None`` (file untouched) when the body is anything else: not an
    object, no ``data``, ``data`` not an array, or an envelope larger than :data:`EDGE_BYTES`.

    The array itself is not read: its reader must check that it is one (and count it).
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(EDGE_BYTES)
        found = _fields_before_data(head)
        if found is None:
            return None
        fields, start = found
        tail_from = max(start + 1, size - EDGE_BYTES)
        handle.seek(tail_from)
        tail = handle.read()
    closed = _fields_after_data(tail)
    if closed is None:
        return None
    end, after = closed
    duplicated = fields.keys() & after.keys()
    if duplicated:  # which one would the provider mean?
        return None
    with path.open("r+b") as handle:
        handle.write(b" " * start)
        handle.seek(tail_from + end + 1)
        handle.write(b" " * (size - tail_from - end - 1))
        handle.flush()
        os.fsync(handle.fileno())
    return {**fields, **after}


def _fields_before_data(head: bytes) -> tuple[dict[str, Any], int] | None:
    """The fields before ``"data": [`` and the offset of that ``[``."""
    text = head.decode("latin-1")
    at = _skip(text, 0)
    if not text.startswith("{", at):
        return None
    read = _members(head, text, _skip(text, at + 1), first=True)
    if read is None or read[2] is not True:
        return None
    fields, at, _ = read
    return (fields, at) if text.startswith("[", at) else None


def _fields_after_data(tail: bytes) -> tuple[int, dict[str, Any]] | None:
    """The offset in ``tail`` of the ``]`` closing ``data`` and the fields after it.

    That is the first ``]`` after which the rest reads as the end of an object (``}``, or
    ``, "k": v … }``): a ``]`` inside ``data`` leaves the array's own ``]`` unbalanced in the
    rest, which then never reads so; one in a later field (``"k": []``) comes after it.
    """
    text = tail.decode("latin-1")
    found = None
    at = len(text)
    while (at := text.rfind("]", 0, at)) >= 0:
        read = _members(tail, text, _skip(text, at + 1), first=False)
        if read is not None and read[2] is False and _skip(text, read[1]) == len(text):
            found = at, read[0]
    return found


def _members(
    raw: bytes, text: str, at: int, *, first: bool
) -> tuple[dict[str, Any], int, bool] | None:
    """Read an object's members from ``at`` until its ``}`` or a ``"data":`` key: the fields,
    the offset after the ``}`` or after ``"data":`` (and its spaces), and whether ``data`` was
    reached; ``None`` when the text is not that. ``first``: at the object's first member, with
    no ``,`` before it.

    Offsets are bytes: ``text`` is ``raw`` read as Latin-1 (one character a byte; JSON's syntax
    is ASCII), and each key and value is decoded from its own bytes as UTF-8.
    """
    fields: dict[str, Any] = {}
    try:
        while True:
            if text.startswith("}", at):
                return fields, at + 1, False
            if not first:
                if not text.startswith(",", at):
                    return None
                at = _skip(text, at + 1)
            first = False
            _, after_key = _DECODER.raw_decode(text, at)
            key = json.loads(raw[at:after_key])
            at = _skip(text, after_key)
            if not isinstance(key, str) or not text.startswith(":", at):
                return None
            at = _skip(text, at + 1)
            if key == "data":
                return fields, at, True
            _, after_value = _DECODER.raw_decode(text, at)
            if key in fields:  # which one would the provider mean?
                return None
            fields[key] = loads(raw[at:after_value])
            at = _skip(text, after_value)
    except ValueError:  # not JSON, or the bytes end inside it
        return None


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _SPACE:
        at += 1
    return at
