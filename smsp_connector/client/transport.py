"""HTTP transport for the SMS Partner API: pooling, rate limiting, retries and answer decoding.

Retries use tenacity (exponential backoff with jitter, ``Retry-After`` honoured, bounded attempts
and elapsed time). Every attempt, retries included, is sent inside a permit of the rate limiter,
so the configured request rate holds under retry storms too: in memory by default, or shared by
every process of the account through PostgreSQL (:mod:`smsp_connector.client.rate_limit`).

What is retried:

- connection errors, timeouts and broken answers: only for idempotent calls (every call but
  ``/send``), because the request may have been applied before the answer was lost;
- HTTP 429: always (the provider did not process the request);
- HTTP 5xx: only for idempotent calls.

Redirects (HTTP 3xx) are never followed, nor retried: requests would turn a POST into a GET
on the Location, or post the body, API key included, to another origin. A 3xx is an unusable
answer (:class:`SmspRedirectError`, naming the Location's origin only). Every request the
session sends goes through :class:`_OriginGuard`, which refuses any URL outside the base URL's
origin (and so any breach of the https-except-loopback rule), whatever sends it.

Coded errors (``success: false``) are answers, never retried: they come back as a
:class:`ProviderAnswer` for the caller to interpret. An answer is a JSON object whose ``success``
(``true``/``false``, ``1``/``0`` or their text) or ``code`` says how the call went: ``code``
200 without ``success: false`` is a success; anything else (not JSON, neither field, ``success:
false`` with code 200) is a :class:`SmspResponseError` that keeps the raw body.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
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
    SmspRedirectError,
    SmspResponseError,
    SmspTransportError,
)
from smsp_connector.client.rate_limit import RateLimiter, make_rate_limiter
from smsp_connector.client.redaction import MIN_SECRET_LENGTH, install_log_redaction, redact
from smsp_connector.client.shapes import (
    NotUnicode,
    RepeatedKey,
    Unreadable,
    flag,
    loads,
    whole_number,
)

_T = TypeVar("_T")

DEFAULT_BASE_URL = "https://api.smspartner.fr/v1"
USER_AGENT = "smsp-connector/0.1 (+python-requests)"
RAW_BODY_LIMIT = 1 << 20
"""Characters of an unreadable answer kept in :attr:`SmspResponseError.raw_body`."""
DOWNLOAD_CHUNK_BYTES = 1 << 20
_SNIPPET_LIMIT = 300
"""Characters of an unreadable answer quoted in an error's message."""


DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_MAX_WORKERS = 8
"""Concurrent calls of the bulk helpers (and the connection pool's size) unless given."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard the client tries before giving up on one call."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_initial: float = 0.25
    """First backoff in seconds; doubles each attempt, plus up to this much random jitter."""
    backoff_max: float = 20.0
    max_elapsed: float = 180.0
    """No new attempt starts after this many seconds since the first one."""
    max_retry_after: float = 120.0
    """A ``Retry-After`` longer than this is not waited for: the call fails instead."""


@dataclass(frozen=True, slots=True)
class Download:
    """How a body streamed to a file by :meth:`HttpTransport.download` came (not decoded)."""

    http_status: int
    attempts: int


@dataclass(frozen=True, slots=True)
class ProviderAnswer:
    """A decoded JSON answer that carries a provider code (success or coded error)."""

    body: Mapping[str, Any]
    http_status: int
    attempts: int
    content: bytes = b""
    """The body as received (it may hold the key: show it only through a transport's
    :meth:`HttpTransport.raw_text`)."""
    uncertain_attempts: tuple[int, ...] = ()
    """Earlier attempts of this call that failed after the request may have reached the
    provider (a timeout or a dropped connection once sent, a 5xx): each may have been applied,
    so an "already done" answer may be this call's own doing."""

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
        self,
        description: str,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
        may_have_reached: bool = True,
    ) -> None:
        super().__init__(description)
        self.description = description
        self.http_status = http_status
        self.retry_after = retry_after
        self.may_have_reached = may_have_reached
        """False only when the provider certainly did not process the request (never sent,
        or HTTP 429)."""


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


def url_origin(url: str) -> str | None:
    """``scheme://host:port`` of an absolute URL (the port always written), nothing of its
    userinfo, path or query; ``None`` when it has no host or cannot be read."""
    try:
        parts = urlsplit(url)
        hostname, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not parts.scheme or not hostname:
        return None
    port = port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    host = f"[{hostname}]" if ":" in hostname else hostname
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port else "")


class _OriginGuard(HTTPAdapter):
    """The session's only adapter: it sends a request only to the base URL's origin, which
    :func:`check_base_url` accepted (https, or http to loopback). Anything else (a redirect
    followed by some future change, a URL built wrong) raises :class:`SmspConfigurationError`
    before a byte leaves, naming the origin only (the URL holds the key)."""

    def __init__(self, origin: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._origin = origin

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        origin = url_origin(request.url or "")
        if origin is None or origin != self._origin:
            raise SmspConfigurationError(
                f"refused to send a request to {origin or 'an unreadable URL'}: this client "
                f"sends requests, and its API key, only to {self._origin}"
            )
        return super().send(request, *args, **kwargs)


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
        rate_limit_dsn: str | None = None,
        rate_limit_name: str | None = None,
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
        # With a DSN, one limit for every process and machine of the account (PostgreSQL).
        self._limiter: RateLimiter | None = make_rate_limiter(
            rate_limit, dsn=rate_limit_dsn, name=rate_limit_name
        )
        origin = url_origin(self.base_url)
        if origin is None:  # check_base_url accepted it: it has a scheme and a host
            raise SmspConfigurationError("the base URL has no readable origin")
        self._origin = origin
        self._session = requests.Session()
        adapter = _OriginGuard(origin, pool_connections=1, pool_maxsize=pool_size, pool_block=True)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        self._closed = threading.Event()
        install_log_redaction(api_key)

    def close(self) -> None:
        self._closed.set()
        self._session.close()
        if self._limiter is not None:
            self._limiter.close()

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
        uncertain: list[int] = []

        def attempt(number: int) -> ProviderAnswer:
            try:
                return self._attempt(method, endpoint, params, body, idempotent, mutation, number)
            except _RetryableFailure as failure:
                if failure.may_have_reached:
                    uncertain.append(number)
                raise

        answer = self._with_retries(endpoint, attempt)
        return replace(answer, uncertain_attempts=tuple(uncertain)) if uncertain else answer

    def download(
        self, endpoint: str, destination: Path, *, params: Mapping[str, Any] | None = None
    ) -> Download:
        """GET ``endpoint`` and stream its body into ``destination`` as it arrives, never holding
        it in memory. Retried like any idempotent call (an attempt rewrites the file from its
        start); the body is not decoded: see :meth:`answer_of`."""
        return self._with_retries(
            endpoint, lambda attempt: self._download_attempt(endpoint, params, destination, attempt)
        )

    def _with_retries(self, endpoint: str, attempt: Callable[[int], _T]) -> _T:
        """``attempt(number)`` until it returns, raises a non-retryable error, or the policy
        gives up (then :class:`SmspTransportError`)."""
        retrying = Retrying(
            stop=stop_after_attempt(self._retry.max_attempts)
            | stop_after_delay(self._retry.max_elapsed),
            wait=self._wait,
            retry=retry_if_exception(self._should_retry),
            reraise=True,
        )
        attempts = 0
        try:
            for tried in retrying:
                with tried:
                    attempts = tried.retry_state.attempt_number
                    return attempt(attempts)
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
        query = {"apiKey": self._api_key, **(params or {})} if method == "GET" else params
        payload = {"apiKey": self._api_key, **(body or {})} if method == "POST" else None
        try:
            with self._permit():
                response = self._send(method, endpoint, params=query, json=payload)
        except requests.RequestException as exc:
            failure = self._connection_failure(exc, endpoint, idempotent, attempt_number)
        else:
            return self._decode(response, endpoint, idempotent, mutation, attempt_number)
        # Raised outside the ``except`` block so that the requests exception, whose message holds
        # the URL and so the API key, is not kept as ``__context__`` of what the caller sees.
        raise failure

    def _send(self, method: str, endpoint: str, **kwargs: Any) -> requests.Response:
        """The one place a request is sent: to the base URL, a redirect never followed."""
        return self._session.request(
            method,
            f"{self.base_url}/{endpoint}",
            timeout=self._timeout,
            allow_redirects=False,
            **kwargs,
        )

    def _permit(self) -> AbstractContextManager[None]:
        """The rate limiter's permit for one request (held until its answer is back)."""
        return self._limiter.permit() if self._limiter is not None else nullcontext()

    def _download_attempt(
        self,
        endpoint: str,
        params: Mapping[str, Any] | None,
        destination: Path,
        attempt_number: int,
    ) -> Download:
        try:
            with (
                self._permit(),
                self._send(
                    "GET", endpoint, params={"apiKey": self._api_key, **(params or {})}, stream=True
                ) as response,
            ):
                self._refuse_unusable_status(response, endpoint, True, attempt_number)
                with destination.open("wb") as handle:
                    for chunk in response.iter_content(chunk_size=DOWNLOAD_CHUNK_BYTES):
                        handle.write(chunk)
                status = response.status_code
        except requests.RequestException as exc:
            failure = self._connection_failure(exc, endpoint, True, attempt_number)
        else:
            return Download(status, attempt_number)
        raise failure  # outside ``except``: see _attempt

    def _connection_failure(
        self,
        exc: requests.RequestException,
        endpoint: str,
        idempotent: bool,
        attempt_number: int,
    ) -> Exception:
        description = redact(f"{type(exc).__name__}: {exc}", self._api_key)
        never_sent = _never_sent(exc)
        if idempotent or never_sent:
            return _RetryableFailure(description, may_have_reached=not never_sent)
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
        self._refuse_unusable_status(response, endpoint, idempotent, attempt_number)
        return self.answer_of(
            response.content,
            endpoint,
            http_status=response.status_code,
            attempts=attempt_number,
            mutation=mutation,
        )

    def _refuse_unusable_status(
        self, response: requests.Response, endpoint: str, idempotent: bool, attempt_number: int
    ) -> None:
        """Raise for an answer whose status alone makes it unusable: a redirect
        (:class:`SmspRedirectError`, never followed nor retried), 429 or a retryable 5xx."""
        status = response.status_code
        if 300 <= status < 400:
            location = response.headers.get("Location")
            origin = url_origin(urljoin(response.url, location)) if location else None
            where = (
                f"to {origin}"
                if origin
                else ("with an unreadable Location" if location else "with no Location")
            )
            raise SmspRedirectError(
                self.redact(
                    f"unusable answer from {endpoint}: HTTP {status} {where}, a redirect, not "
                    f"followed: requests and the API key go only to {self._origin}"
                ),
                endpoint=endpoint,
                attempts=attempt_number,
                http_status=status,
                location_origin=origin,
            )
        _raise_if_retryable(response, idempotent=idempotent)

    def answer_of(
        self,
        content: bytes,
        endpoint: str,
        *,
        http_status: int,
        attempts: int,
        mutation: bool = False,
        decoded: Mapping[str, Any] | None = None,
    ) -> ProviderAnswer:
        """The provider's coded answer in ``content``, or in ``decoded`` when the caller has
        read the body's fields itself (``content`` is then what an error quotes). Raises
        :class:`SmspResponseError` when it is not one (see the module's docstring)."""
        body: Any = decoded
        problem = None
        if body is None:
            try:
                body = loads(content)
            except (RepeatedKey, NotUnicode) as odd:
                problem = f"a body with {odd}"
            except ValueError:  # not JSON, or not UTF-8
                pass
        problem = problem or _shape_problem(body)
        if problem is None:
            answer = ProviderAnswer(
                body=body, http_status=http_status, attempts=attempts, content=content
            )
            if not answer.success or 200 <= http_status < 300:
                return answer
            problem = "success with an HTTP error status"
        if mutation:
            problem += " (the change may have been applied)"
        raise self.unreadable(
            endpoint, problem, content=content, http_status=http_status, attempts=attempts
        )


def _shape_problem(body: Any) -> str | None:
    """What makes ``body`` (decoded JSON, or ``None``) not a coded answer; ``None`` if it is."""
    if not isinstance(body, Mapping):
        return "a body that is not the documented JSON shape"
    said, code = flag(body.get("success")), _code(body)
    if said is None and code is None:
        return "neither a readable success nor a numeric code"
    if said is False and code == 200:
        return "success false with code 200"
    return None


def _raise_if_retryable(response: requests.Response, *, idempotent: bool) -> None:
    """429 is always retried (the provider did not process the call), 5xx when idempotent."""
    status = response.status_code
    if status == 429 or (status >= 500 and idempotent):
        raise _RetryableFailure(
            f"HTTP {status}",
            http_status=status,
            retry_after=_parse_retry_after(response.headers.get("Retry-After")),
            may_have_reached=status != 429,
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
