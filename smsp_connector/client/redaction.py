"""Keep the API key out of anything that gets printed, logged or stored.

``requests`` puts GET parameters in the URL, and URLs end up in exception messages and in
urllib3's debug log. :func:`redact` scrubs ``apiKey=…`` query parameters and any literal
occurrence of the configured key; :class:`RedactingFilter` applies it to log records.
"""

from __future__ import annotations

import logging
import re
import threading

REDACTED = "***"
_QUERY_KEY = re.compile(r"(?i)(apiKey=)[^&\s\"']+")
_JSON_KEY = re.compile(r"(?i)(\"apiKey\"\s*:\s*\")[^\"]*")


def redact(text: str, secret: str | None = None) -> str:
    """Return ``text`` with ``apiKey`` values (query string or JSON) and ``secret`` masked."""
    text = _QUERY_KEY.sub(r"\g<1>" + REDACTED, text)
    text = _JSON_KEY.sub(r"\g<1>" + REDACTED, text)
    if secret:
        text = text.replace(secret, REDACTED)
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
            cleaned = cleaned.replace(secret, REDACTED)
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
_installed = False


def register_secret(secret: str) -> None:
    """Make every :class:`RedactingFilter` mask ``secret`` from now on."""
    with _lock:
        _secrets.add(secret)


def install_log_redaction(secret: str) -> None:
    """Register ``secret`` and make sure urllib3's loggers redact it (idempotent)."""
    global _installed
    register_secret(secret)
    with _lock:
        if _installed:
            return
        log_filter = RedactingFilter()
        # Filters on a logger do not see records propagated from its children: name each
        # urllib3 module that logs URLs.
        for name in _URLLIB3_LOGGERS:
            logging.getLogger(name).addFilter(log_filter)
        _installed = True
