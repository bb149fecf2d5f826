"""Keep the API key out of anything that gets printed, logged or stored.

``requests`` puts GET parameters in the URL, and URLs end up in exception messages and in
urllib3's debug log; a proxy's error page or a provider's answer may echo them too.
:func:`redact` masks every ``apiKey=…`` query parameter, every ``"apiKey": "…"`` JSON member and
every password in a URL's userinfo, whatever the key; and, given the configured key, each
*occurrence* of it (also percent-encoded): a query value, a path segment, userinfo, a header
value, a JSON string, a word. An occurrence is the key standing alone, not glued to more letters,
digits or ``-._~``: a short key is not masked inside words ("Max retries exceeded" stays as it
is for the key ``x``). Keys shorter than :data:`MIN_SECRET_LENGTH` are refused by the client
except for loopback base URLs (see :class:`~smsp_connector.client.SmspClient`).

:class:`RedactingFilter` applies :func:`redact` to log records.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from collections.abc import Sequence
from urllib.parse import quote, quote_plus

REDACTED = "***"
MIN_SECRET_LENGTH = 8
"""Keys shorter than this are refused, except for loopback base URLs (the local emulator)."""

_QUERY_KEY = re.compile(r"(?i)(apiKey=)[^&\s\"']+")
_JSON_KEY = re.compile(r"(?i)(\"apiKey\"\s*:\s*\")[^\"]*")
_USERINFO_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^/?#@\s:]*):[^/?#@\s]*@")
_TOKEN_CHARS = r"A-Za-z0-9\-._~"
"""Characters that continue a token (URL-unreserved): the key glued to one is another token."""


@functools.lru_cache(maxsize=64)
def _occurrences(secret: str) -> re.Pattern[str]:
    """The key as it may be written (plain, percent-encoded, JSON-escaped), standing alone.

    A percent-escape just before it (``apiKey%3D<key>``) counts as a separator.
    """
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        quote(secret),
        json.dumps(secret)[1:-1],
    }
    alternatives = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    return re.compile(
        rf"(?:(?<=%[0-9A-Fa-f]{{2}})|(?<![{_TOKEN_CHARS}]))(?:{alternatives})(?![{_TOKEN_CHARS}])"
    )


def redact(text: str, secret: str | None = None) -> str:
    """Return ``text`` with ``apiKey`` values (query string or JSON), URL passwords and each
    occurrence of ``secret`` masked."""
    text = _QUERY_KEY.sub(r"\g<1>" + REDACTED, text)
    text = _JSON_KEY.sub(r"\g<1>" + REDACTED, text)
    text = _USERINFO_PASSWORD.sub(r"\g<1>:" + REDACTED + "@", text)
    if secret:
        text = _occurrences(secret).sub(REDACTED, text)
    return text


_secrets: set[str] = set()
_lock = threading.Lock()


class RedactingFilter(logging.Filter):
    """A logging filter that redacts API keys from a record's message and arguments.

    The client installs one on the ``urllib3`` logger, whose debug lines contain full request
    URLs. Secrets are registered process-wide because log records do not say which client
    produced them.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        with _lock:
            secrets = tuple(_secrets)
        cleaned = redact(message)
        for secret in secrets:
            cleaned = redact(cleaned, secret)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_URLLIB3_LOGGERS = (
    "urllib3",
    "urllib3.connection",
    "urllib3.connectionpool",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
)
_filtered: set[str] = set()
"""The loggers that have a :class:`RedactingFilter` already."""


def register_secret(secret: str) -> None:
    """Make every :class:`RedactingFilter` mask ``secret`` from now on."""
    with _lock:
        _secrets.add(secret)


def install_log_redaction(secret: str | None, loggers: Sequence[str] = _URLLIB3_LOGGERS) -> None:
    """Register ``secret`` (if any) and make sure each of ``loggers`` redacts (idempotent).

    Filters on a logger do not see records propagated from its children: name each module
    that logs (by default urllib3's, whose debug lines hold full request URLs)."""
    if secret:
        register_secret(secret)
    with _lock:
        for name in loggers:
            if name not in _filtered:
                logging.getLogger(name).addFilter(RedactingFilter())
                _filtered.add(name)
