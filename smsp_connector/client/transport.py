"""HTTP transport for the SMS Partner API: pooling, rate limiting, retries and answer decoding.

Retries use tenacity (exponential backoff with jitter, ``Retry-After`` honoured, bounded attempts
and elapsed time). Every attempt, retries included, first takes a permit from a pyrate-limiter
limiter, so the configured request rate holds under retry storms too.

What is retried:

- connection errors, timeouts and broken answers: only for idempotent calls (every call but
  ``/send``), because the request may have been applied before the answer was lost;
- HTTP 429: always (the provider did not process the request);
- HTTP 5xx: only for idempotent calls.

Coded errors (``success: false``) are answers, never retried: they come back as a
:class:`ProviderAnswer` for the caller to interpret. An answer is a JSON object whose ``success``
(``true``/``false``, ``1``/``0`` or their text) or ``code`` says how the call went: ``code``
200 without ``success: false`` is a success; anything else (not JSON, neither field, ``success:
false`` with code 200) is a :class:`SmspResponseError` that keeps the raw body.
"""

from __future__ import annotations

import ipaddress
import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)
from urllib3.exceptions import NewConnectionError

from smsp_connector.client.errors import (
    SmspConfigurationError,
    SmspResponseError,
    SmspTransportError,
)
from smsp_connector.client.redaction import MIN_SECRET_LENGTH, install_log_redaction, redact
from smsp_connector.client.shapes import Unreadable, flag, whole_number

DEFAULT_BASE_URL = "https://api.smspartner.fr/v1"
USER_AGENT = "smsp-connector/0.1 (+python-requests)"
RAW_BODY_LIMIT = 1 << 20
"""Characters of an unreadable answer kept in :attr:`SmspResponseError.raw_body`."""
_SNIPPET_LIMIT = 300
"""Characters of an unreadable answer quoted in an error's message."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard the client tries before giving up on one call."""

    max_attempts: int = 6
    backoff_initial: float = 0.25
    """First backoff in seconds; doubles each attempt, plus up to this much random jitter."""
    backoff_max: float = 20.0
    max_elapsed: float = 180.0
    """No new attempt starts after this many seconds since the first one."""
    max_retry_after: float = 120.0
    """A ``Retry-After`` longer than this is not waited for: the call fails instead."""


@dataclass(frozen=True, slots=True)
class ProviderAnswer:
    """A decoded JSON answer that carries a provider code (success or coded error)."""

    body: Mapping[str, Any]
    http_status: int
    attempts: int
    content: bytes = b""
    """The body as received (it may hold the key: show it only through a transport's
    :meth:`HttpTransport.raw_text`)."""

    @property
    def success(self) -> bool:
        """``success`` is true (``true``, ``1``, ``"true"``…), or absent or unreadable with
        code 200."""
        said = flag(self.body.get("success"))
        return said if said is not None else self.code == 200

    @property
    def code(self) -> int | None:
        return _code(self.body)


def _code(body: Mapping[str, Any]) -> int | None:
    """The answer's ``code`` (a number or its text), or None when absent or unreadable."""
    try:
        return whole_number(body.get("code"), "code")
    except Unreadable:
        return None


class _RetryableFailure(Exception):
    """One failed attempt that may be retried; never escapes the transport."""

    def __init__(
        self, description: str, *, http_status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(description)
        self.description = description
        self.http_status = http_status
        self.retry_after = retry_after


def check_base_url(base_url: str, api_key: str | None = None) -> str:
    """Refuse plain HTTP except to loopback: the API key travels in every request.

    The refusal quotes the URL with ``api_key`` (and any URL password or ``apiKey=``) masked.
    """
    try:
        parts = urlsplit(base_url)
        hostname = parts.hostname
    except ValueError:  # an invalid port or IPv6 literal
        parts, hostname = None, None
    if parts is not None and hostname:
        if parts.scheme == "https":
            return base_url.rstrip("/")
        if parts.scheme == "http" and _is_loopback(hostname):
            return base_url.rstrip("/")
    raise SmspConfigurationError(
        f"base URL {redact(base_url, api_key)!r} must use https:// (plain http:// is allowed "
        "only for loopback addresses such as the local emulator)"
    )


def is_loopback_url(base_url: str) -> bool:
    """True when ``base_url`` names a loopback host (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    try:
        hostname = urlsplit(base_url).hostname
    except ValueError:
        return False
    return bool(hostname) and _is_loopback(hostname)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _rate_limiter(requests_per_second: float) -> Limiter:
    """A limiter that never exceeds the rate in any 1 s window and paces within 100 ms slices.

    A single per-second sliding window would let a whole second's budget go out in one burst,
    which a provider counting over a shorter window answers with 429.
    """
    per_second = max(1, math.floor(requests_per_second))
    per_slice = max(1, math.ceil(per_second / 10))
    rates = [Rate(per_slice, 100), Rate(per_second, Duration.SECOND)]
    # buffer_ms is how long a blocked caller sleeps past the computed wait: 5 ms capped 200/s at
    # ~187/s (20 per ~105 ms); 1 ms reaches the configured rate (measured: 200.0/s, never
    # more than 200 in any 1 s window).
    return Limiter(InMemoryBucket(rates), buffer_ms=1)


class HttpTransport:
    """Thread-safe: one pooled ``requests.Session`` shared by every worker thread.

    The provider sets no cookies, so the session's only shared mutable state is its connection
    pool, which urllib3 guards itself.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: tuple[float, float],
        retry: RetryPolicy,
        rate_limit: float | None,
        pool_size: int,
    ) -> None:
        if not api_key:
            raise SmspConfigurationError("an SMS Partner API key is required (SMSP_API_KEY)")
        self.base_url = check_base_url(base_url, api_key)
        if len(api_key) < MIN_SECRET_LENGTH and not is_loopback_url(self.base_url):
            # A key of a few characters cannot be masked in messages without masking words.
            raise SmspConfigurationError(
                f"an API key shorter than {MIN_SECRET_LENGTH} characters is accepted only for a "
                "loopback base URL (the local emulator): check SMSP_API_KEY"
            )
        if rate_limit is not None and not rate_limit > 0:
            # 0 would otherwise read as "no limit" and unleash every worker on the provider.
            raise SmspConfigurationError(
                f"rate limit must be a positive number of requests per second, not {rate_limit!r}"
            )
        self._api_key = api_key
        self._timeout = timeout
        self._retry = retry
        self._backoff = wait_exponential_jitter(
            multiplier=retry.backoff_initial, max=retry.backoff_max, jitter=retry.backoff_initial
        )
        self._limiter = _rate_limiter(rate_limit) if rate_limit is not None else None
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, pool_block=True)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        self._closed = threading.Event()
        install_log_redaction(api_key)

    def close(self) -> None:
        self._closed.set()
        self._session.close()

    def redact(self, text: str) -> str:
        """``text`` with this transport's key (and any ``apiKey=`` or URL password) masked."""
        return redact(text, self._api_key)

    def raw_text(self, content: bytes) -> str:
        """An answer's body as text for errors: decoded (bad bytes replaced), key masked, cut
        after :data:`RAW_BODY_LIMIT` characters."""
        text = self.redact(content.decode("utf-8", "replace"))
        if len(text) > RAW_BODY_LIMIT:
            return text[:RAW_BODY_LIMIT] + f"… ({len(text) - RAW_BODY_LIMIT} more characters)"
        return text

    def unreadable(
        self, endpoint: str, problem: str, *, content: bytes, http_status: int, attempts: int
    ) -> SmspResponseError:
        """A :class:`SmspResponseError` saying ``problem``, quoting the start of the body and
        keeping it whole (redacted) in ``raw_body``."""
        raw = self.raw_text(content)
        snippet = raw if len(raw) <= _SNIPPET_LIMIT else raw[:_SNIPPET_LIMIT] + "…"
        return SmspResponseError(
            self.redact(
                f"unreadable answer from {endpoint} (HTTP {http_status}): {problem}: {snippet!r}"
            ),
            endpoint=endpoint,
            attempts=attempts,
            http_status=http_status,
            raw_body=raw,
        )

    def call(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
        mutation: bool = False,
    ) -> ProviderAnswer:
        """Send one API call with retries; return the provider's coded answer.

        Raises :class:`SmspTransportError` when no usable answer came after every attempt, and
        :class:`SmspResponseError` when the answer is not the documented JSON shape; for a
        ``mutation`` (a call that changes the provider's state) its message says that the change
        may have been applied.
        """
        retrying = Retrying(
            stop=stop_after_attempt(self._retry.max_attempts)
            | stop_after_delay(self._retry.max_elapsed),
            wait=self._wait,
            retry=retry_if_exception(self._should_retry),
            reraise=True,
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    return self._attempt(
                        method, endpoint, params, body, idempotent, mutation, attempts
                    )
        except _RetryableFailure as failure:
            raise SmspTransportError(
                f"no usable answer from {endpoint} after {attempts} attempt(s): "
                f"{failure.description}",
                endpoint=endpoint,
                attempts=attempts,
                http_status=failure.http_status,
            ) from None
        raise AssertionError("unreachable: tenacity either returns or reraises")

    def _should_retry(self, exc: BaseException) -> bool:
        if not isinstance(exc, _RetryableFailure) or self._closed.is_set():
            return False
        return exc.retry_after is None or exc.retry_after <= self._retry.max_retry_after

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableFailure) and exc.retry_after is not None:
            return exc.retry_after
        return self._backoff(state)

    def _attempt(
        self,
        method: str,
        endpoint: str,
        params: Mapping[str, Any] | None,
        body: Mapping[str, Any] | None,
        idempotent: bool,
        mutation: bool,
        attempt_number: int,
    ) -> ProviderAnswer:
        if self._limiter is not None:
            self._limiter.try_acquire("smsp")
        query = {"apiKey": self._api_key, **(params or {})} if method == "GET" else params
        payload = {"apiKey": self._api_key, **(body or {})} if method == "POST" else None
        try:
            response = self._session.request(
                method,
                f"{self.base_url}/{endpoint}",
                params=query,
                json=payload,
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            failure = self._connection_failure(exc, endpoint, idempotent, attempt_number)
        else:
            return self._decode(response, endpoint, idempotent, mutation, attempt_number)
        # Raised outside the ``except`` block so that the requests exception, whose message holds
        # the URL and so the API key, is not kept as ``__context__`` of what the caller sees.
        raise failure

    def _connection_failure(
        self,
        exc: requests.RequestException,
        endpoint: str,
        idempotent: bool,
        attempt_number: int,
    ) -> Exception:
        description = redact(f"{type(exc).__name__}: {exc}", self._api_key)
        if idempotent or _never_sent(exc):
            return _RetryableFailure(description)
        return SmspTransportError(
            f"{endpoint} failed and was not retried because it is not idempotent "
            f"(the request may have been applied): {description}",
            endpoint=endpoint,
            attempts=attempt_number,
        )

    def _decode(
        self,
        response: requests.Response,
        endpoint: str,
        idempotent: bool,
        mutation: bool,
        attempt_number: int,
    ) -> ProviderAnswer:
        status = response.status_code
        if status == 429 or (status >= 500 and idempotent):
            raise _RetryableFailure(
                f"HTTP {status}",
                http_status=status,
                retry_after=_parse_retry_after(response.headers.get("Retry-After")),
            )
        content = response.content
        try:
            body = json.loads(content)
        except ValueError:  # not JSON, or not UTF-8
            body = None
        problem = None
        if not isinstance(body, dict):
            problem = "a body that is not the documented JSON shape"
        else:
            said, code = flag(body.get("success")), _code(body)
            if said is None and code is None:
                problem = "neither a readable success nor a numeric code"
            elif said is False and code == 200:
                problem = "success false with code 200"
        if problem is None:
            answer = ProviderAnswer(
                body=body, http_status=status, attempts=attempt_number, content=content
            )
            if not answer.success or 200 <= status < 300:
                return answer
            problem = "success with an HTTP error status"
        if mutation:
            problem += " (the change may have been applied)"
        raise self.unreadable(
            endpoint, problem, content=content, http_status=status, attempts=attempt_number
        )


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request certainly never reached the server (safe to retry anything)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return True
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None))
        pending.extend(e for e in (*linked, *current.args) if isinstance(e, BaseException))
    return False
