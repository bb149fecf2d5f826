"""Reading a request's JSON body, for the `/v1` endpoints and the `/_emulator` control ones."""

from __future__ import annotations

import json
from typing import Any


def parse_json_body(raw: bytes) -> Any:
    """A request body's JSON; ValueError for one that is not JSON (UnicodeDecodeError and
    JSONDecodeError are ValueErrors), including one nested too deep for the parser, which
    raises RecursionError, or holding an integer of more than 4,300 digits."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("the JSON body is nested too deep") from None
