"""Fault injection: latency, rate limiting (429), server errors (5xx), connection resets, and
forced error codes."""

from __future__ import annotations

import dataclasses
import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

from pyrate_limiter import InMemoryBucket, Limiter, Rate, RateItem

from .responses import ERROR_MESSAGES, documented_codes

ResetPoint = Literal["before", "after"]
_LIMITER_ITEM = "v1"

MAX_LATENCY_MS = 600_000.0
"""Ten minutes: longer than any client waits for an answer."""
MIN_RATE_LIMIT = 0.001
"""One request per 1,000 s: the finest rate the limiter's whole-millisecond windows express."""
MAX_RATE_LIMIT = 1_000_000.0


def _number(name: str, value: object) -> float:
    """`value` as a finite real number (a bool is no number here), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def _force_codes(value: object) -> dict[str, int]:
    """A checked copy of `force_code`: endpoint -> a code that endpoint documents."""
    if not isinstance(value, Mapping):
        raise ValueError('force_code must map endpoints to codes, e.g. {"message-cancel": 11}')
    codes: dict[str, int] = {}
    for endpoint, code in value.items():
        if endpoint not in ERROR_MESSAGES:
            known = ", ".join(ERROR_MESSAGES)
            raise ValueError(f"force_code: unknown endpoint {endpoint!r} (one of {known})")
        documented = documented_codes(endpoint)
        if isinstance(code, bool) or not isinstance(code, int) or code not in documented:
            listed = ", ".join(str(c) for c in sorted(documented))
            raise ValueError(f"force_code: {endpoint} answers one of {listed}, not {code!r}")
        codes[endpoint] = code
    return codes


@dataclass(frozen=True)
class FaultSettings:
    """What goes wrong, and how often, on every `/v1` request.

    latency_ms: added before every answer (an `asyncio.sleep`: other requests go on meanwhile),
        at most `MAX_LATENCY_MS`.
    rate_limit: requests per second across `/v1` (`MIN_RATE_LIMIT` to `MAX_RATE_LIMIT`); above
        it HTTP 429 with `Retry-After` (>= 1 s).
    fail_rate: probability of an HTTP 500 or 503 (half each) that leaves the state untouched.
    reset_rate: probability of dropping the connection with no HTTP answer; half of these drop
        before handling (nothing changed), half after (the change happened, the answer is lost).
    error_status: HTTP status of coded errors (`success: false`): 200 as the provider, or a 4xx.
    force_code: endpoint (`"message-cancel"`, `"stop-sms/delete"`, ...) -> an error code of its
        catalogue that every authenticated call to it answers, changing nothing: for the codes
        the emulator cannot otherwise produce (cancel 11 "Manque de crédits", delete 2).

    Every value is checked (ValueError): a number must be finite and in range, and a bool is
    not a number.
    """

    latency_ms: float = 0.0
    rate_limit: float | None = None
    fail_rate: float = 0.0
    reset_rate: float = 0.0
    error_status: int = 200
    force_code: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= _number("latency_ms", self.latency_ms) <= MAX_LATENCY_MS:
            raise ValueError(f"latency_ms must be within [0, {MAX_LATENCY_MS:.0f}]")
        if self.rate_limit is not None and not (
            MIN_RATE_LIMIT <= _number("rate_limit", self.rate_limit) <= MAX_RATE_LIMIT
        ):
            raise ValueError(
                f"rate_limit must be None or within [{MIN_RATE_LIMIT}, {MAX_RATE_LIMIT:.0f}] "
                f"requests per second, got {self.rate_limit}"
            )
        for name in ("fail_rate", "reset_rate"):
            value = getattr(self, name)
            if not 0.0 <= _number(name, value) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        status = self.error_status
        if isinstance(status, bool) or not isinstance(status, int):
            raise ValueError(f"error_status must be an integer, got {status!r}")
        if status != 200 and not 400 <= status <= 499:
            raise ValueError(f"error_status must be 200 or a 4xx, got {status}")
        object.__setattr__(self, "force_code", _force_codes(self.force_code))

    def __hash__(self) -> int:  # the force_code mapping is not hashable itself
        forced = tuple(sorted(self.force_code.items()))
        fields = (self.latency_ms, self.rate_limit, self.fail_rate, self.reset_rate)
        return hash((*fields, self.error_status, forced))

    def updated(self, changes: dict[str, Any]) -> FaultSettings:
        """A copy with some fields changed (unknown field names raise ValueError)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class FaultRoll:
    """The dice of one request: an HTTP 5xx to answer, or where to drop the connection."""

    fail_status: int | None = None
    reset: ResetPoint | None = None


def _rate(per_second: float) -> Rate:
    """`per_second` as whole requests per whole-millisecond window (2.5 -> 5 per 2 s)."""
    fraction = Fraction(per_second).limit_denominator(1000)
    return Rate(fraction.numerator, fraction.denominator * 1000)


class FaultInjector:
    """Holds the current `FaultSettings`, the seeded dice and the request-rate limiter."""

    def __init__(self, settings: FaultSettings, random_seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._random_seed = random_seed
        self._random = random.Random(random_seed)
        self._settings = settings
        self._bucket: InMemoryBucket | None = None
        self._limiter: Limiter | None = None
        self._build_limiter()

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    @settings.setter
    def settings(self, settings: FaultSettings) -> None:
        with self._lock:
            previous, self._settings = self._settings, settings
            if previous.rate_limit != settings.rate_limit:
                self._build_limiter()

    def _build_limiter(self) -> None:
        if self._limiter is not None:
            self._limiter.close()
        self._bucket = self._limiter = None
        if self._settings.rate_limit is not None:
            self._bucket = InMemoryBucket([_rate(self._settings.rate_limit)])
            self._limiter = Limiter(self._bucket)

    def throttle(self) -> int | None:
        """Count one request; None if it is within the rate, else the Retry-After seconds."""
        with self._lock:
            if self._limiter is None or self._bucket is None:
                return None
            if self._limiter.try_acquire(_LIMITER_ITEM, blocking=False):
                return None
            wait_ms = self._bucket.waiting(RateItem(_LIMITER_ITEM, self._bucket.now()))
        assert isinstance(wait_ms, int)  # an in-memory bucket answers synchronously
        return max(1, math.ceil(wait_ms / 1000))

    def roll(self) -> FaultRoll:
        """Throw this request's dice. Always four draws, so a seed gives one sequence."""
        settings = self._settings
        with self._lock:
            fail, status, reset, point = (self._random.random() for _ in range(4))
        if fail < settings.fail_rate:
            return FaultRoll(fail_status=500 if status < 0.5 else 503)
        if reset < settings.reset_rate:
            return FaultRoll(reset="before" if point < 0.5 else "after")
        return FaultRoll()

    def reset(self) -> None:
        """Default settings and freshly seeded dice."""
        self.settings = FaultSettings()
        with self._lock:
            self._random = random.Random(self._random_seed)

    def close(self) -> None:
        with self._lock:
            if self._limiter is not None:
                self._limiter.close()
            self._bucket = self._limiter = None
