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
:class:`ProviderAnswer` for the caller to interpret.
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
from smsp_connector.client.redaction import install_log_redaction, redact

DEFAULT_BASE_URL = "https://api.smspartner.fr/v1"
USER_AGENT = "smsp-connector/0.1 (+python-requests)"


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

    @property
    def success(self) -> bool:
        return self.body.get("success") is True

    @property
    def code(self) -> int | None:
        code = self.body.get("code")
        try:
            return int(code) if code is not None else None
        except (TypeError, ValueError):
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


def check_base_url(base_url: str) -> str:
    """Refuse plain HTTP except to loopback: the API key travels in every request."""
    parts = urlsplit(base_url)
    if parts.scheme == "https" and parts.hostname:
        return base_url.rstrip("/")
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return base_url.rstrip("/")
    raise SmspConfigurationError(
        f"base URL {redact(base_url)!r} must use https:// (plain http:// is allowed only for "
        "loopback addresses such as the local emulator)"
    )


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
        if rate_limit is not None and not rate_limit > 0:
            # 0 would otherwise read as "no limit" and unleash every worker on the provider.
            raise SmspConfigurationError(
                f"rate limit must be a positive number of requests per second, not {rate_limit!r}"
            )
        self.base_url = check_base_url(base_url)
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

    def call(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> ProviderAnswer:
        """Send one API call with retries; return the provider's coded answer.

        Raises :class:`SmspTransportError` when no usable answer came after every attempt, and
        :class:`SmspResponseError` when the answer is not the documented JSON shape.
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
                    return self._attempt(method, endpoint, params, body, idempotent, attempts)
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
            return self._decode(response, endpoint, idempotent, attempt_number)
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
        self, response: requests.Response, endpoint: str, idempotent: bool, attempt_number: int
    ) -> ProviderAnswer:
        status = response.status_code
        if status == 429 or (status >= 500 and idempotent):
            raise _RetryableFailure(
                f"HTTP {status}",
                http_status=status,
                retry_after=_parse_retry_after(response.headers.get("Retry-After")),
            )
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if not isinstance(body, dict) or "success" not in body:
            snippet = redact(response.content[:200].decode("utf-8", "replace"), self._api_key)
            raise SmspResponseError(
                f"{endpoint} answered HTTP {status} with a body that is not the documented JSON "
                f"shape: {snippet!r}",
                endpoint=endpoint,
                attempts=attempt_number,
                http_status=status,
            )
        answer = ProviderAnswer(body=body, http_status=status, attempts=attempt_number)
        if answer.success and not 200 <= status < 300:
            raise SmspResponseError(
                f"{endpoint} answered success with HTTP {status}",
                endpoint=endpoint,
                attempts=attempt_number,
                http_status=status,
            )
        return answer


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
