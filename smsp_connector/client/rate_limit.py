"""The client's request rate: in memory for one process, or shared through PostgreSQL.

Both allow the limit per second and a tenth of it per 100 ms slice (a single per-second window
would let a whole second's budget go out in one burst, which a provider counting over a shorter
window answers with 429). A request is sent inside its permit (``with limiter.permit():``).

- :class:`MemoryRateLimiter` (the default) counts in this process only: N processes (Dagster run
  workers in pods of their own, two ``smsp`` commands) together send up to N times the rate. A
  permit keeps its place until one window after the answer, so the provider, counting arrivals,
  never sees more than the limit, whatever the delay between sending and arriving.
- :class:`PostgresRateLimiter` counts in a PostgreSQL table, pyrate-limiter's
  :class:`~pyrate_limiter.PostgresBucket`, named after the account's label (never its key): every
  process and machine configured with the same database and label shares one limit, with the
  database server's clock as the one clock. Each permit is taken under the table's lock, with a
  fresh timestamp from that clock. Needs ``psycopg`` and ``psycopg_pool``
  (``pip install 'smsp-connector[postgres]'``).

The DSN may hold a password: it is masked in every message this module raises and in the log
records of psycopg, its pool and pyrate-limiter's PostgreSQL bucket, and kept out of reprs.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from pyrate_limiter import Duration, Rate, RateItem

from smsp_connector.client.errors import SmspConfigurationError, SmspTransportError
from smsp_connector.client.redaction import install_log_redaction, redact

DEFAULT_RATE_LIMIT_NAME = "smsp"
CONNECT_TIMEOUT_SECONDS = 10.0
"""How long opening the limiter's database connection may take before the client gives up."""
LEAK_INTERVAL_MS = 1_000
"""How often (at most) a process deletes the bucket's rows that every window has left."""
SHARED_WINDOW_GUARD_MS = 150
"""The shared limit counts its per-second rate over 1,150 ms. A permit is taken a few ms before
its request reaches the provider, and that delay varies (threads, processes, hosts): measured
here with two processes, the 1st and 51st of 50/s permits arrived as little as 999 ms apart
with no guard, so a provider counting 50 per second saw 51; with 25 ms, two pushes at 100/s on
a loaded machine (load average 8) still put 101 to 105 arrivals in one second at the emulator,
and 100 ms once let two 429 through from an emulator limited to 105. The guard costs 13% of
the rate: a limit the provider enforces is worth more than the last requests of a second."""
WINDOW_GUARD_SECONDS = 0.002
"""The in-memory limiter's window is 1,002 ms: a provider that keeps whole milliseconds may put
two arrivals 1,000.4 ms apart in one second."""
_CONTENTION_SLEEP_MS = (1, 4)
"""Another process held the bucket's lock: sleep this many ms (random) before trying again."""
_LOGGERS = (
    "psycopg",
    "psycopg.pool",
    "pyrate_limiter.buckets.postgres",
    "pyrate_limiter.clocks",
)


class RateLimiter(Protocol):
    """Hands out permits: one per request, held while it is out."""

    def permit(self) -> AbstractContextManager[None]:
        """Block until one request may be sent; the request is sent inside the ``with``."""
        ...

    def close(self) -> None: ...


def pacing_rates(requests_per_second: float, *, guard_ms: int = 0) -> list[Rate]:
    """The limit per second (rounded down, at least 1) and a tenth of it per 100 ms slice;
    ``guard_ms`` lengthens the second's window (see :data:`SHARED_WINDOW_GUARD_MS`)."""
    per_second = max(1, math.floor(requests_per_second))
    per_slice = max(1, math.ceil(per_second / 10))
    return [Rate(per_slice, 100), Rate(per_second, Duration.SECOND + guard_ms)]


class MemoryRateLimiter:
    """The rate within this process, across its threads, as the provider counts it.

    A provider counts requests when they *arrive*, which is somewhere between the moment the
    client sends one and the moment its answer is back; a limiter that counts sends alone loses
    to that delay's jitter (a request held up 30 ms by a thread switch lands in the next second
    beside the ones sent on time: at ``rate_limit`` equal to the provider's 200/s, 2 to 4 HTTP
    429 in 3 runs). So a permit holds one of the second's places from the moment it is taken
    until one window after its answer (or failure) is back: any requests that arrive within one
    window of each other were all holding a place when the last of them was sent, and there are
    never more than the limit. The price is the answer's latency once per place and window
    (20 ms on 1 s: 98% of the rate). A tenth of the limit per 100 ms slice, counted on sending,
    spreads a second's requests out. pyrate-limiter counts an item when it is taken and cannot
    hold it until an answer, hence this small condition-variable pacer.
    """

    def __init__(
        self,
        requests_per_second: float,
        *,
        window_seconds: float = 1.0 + WINDOW_GUARD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = max(1, math.floor(requests_per_second))
        self._per_slice = max(1, math.ceil(self._limit / 10))
        self._window = window_seconds
        self._slice = window_seconds / 10
        self._clock = clock
        self._changed = threading.Condition()
        self._out = 0
        self._answered: deque[float] = deque()
        """When each request that is back came back, oldest first, while within a window."""
        self._sent: deque[float] = deque()
        """When each request was sent, while within a slice."""

    @contextmanager
    def permit(self) -> Iterator[None]:
        self._take()
        try:
            yield
        finally:
            with self._changed:
                self._out -= 1
                self._answered.append(self._clock())
                self._changed.notify_all()

    def _take(self) -> None:
        with self._changed:
            while True:
                now = self._clock()
                while self._answered and self._answered[0] + self._window <= now:
                    self._answered.popleft()
                while self._sent and self._sent[0] + self._slice <= now:
                    self._sent.popleft()
                waits: list[float | None] = []
                if self._out + len(self._answered) >= self._limit:
                    # No request back yet: only an answer can free a place.
                    waits.append(self._answered[0] + self._window - now if self._answered else None)
                if len(self._sent) >= self._per_slice:
                    waits.append(self._sent[0] + self._slice - now)
                if not waits:
                    self._out += 1
                    self._sent.append(now)
                    return
                known = [wait for wait in waits if wait is not None]
                self._changed.wait(max(known) if len(known) == len(waits) else None)

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"MemoryRateLimiter(limit={self._limit}/s)"


def bucket_table(name: str) -> str:
    """The bucket's table name for an account label: lower-case letters, digits and ``_``;
    a label that had to be changed (or cut) gets 8 hex digits of its SHA-256, so that two
    labels never share a table by accident. pyrate-limiter prefixes it with ``ratelimit___``."""
    if not name:
        raise SmspConfigurationError("the shared rate limit needs a name (the account's label)")
    slug = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")[:32]
    if slug != name:
        slug = f"{slug}_{hashlib.sha256(name.encode()).hexdigest()[:8]}".lstrip("_")
    return f"smsp_{slug}"


def dsn_password(dsn: str) -> str | None:
    """The password written in ``dsn`` (URI or ``key=value`` form), if any."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        password = conninfo_to_dict(dsn).get("password")
    except Exception:  # an unreadable DSN: mask what looks like a URL password only
        return None
    return str(password) if password else None


class PostgresRateLimiter:
    """One rate for every process that uses the same database and ``name``.

    Within a process one thread at a time takes permits (the others wait on a lock), so that
    the database sees one caller per process, and each permit is timestamped by PostgreSQL's
    ``clock_timestamp()`` just before it is taken. Every process must be given the same rate.
    """

    def __init__(
        self,
        dsn: str,
        requests_per_second: float,
        *,
        name: str = DEFAULT_RATE_LIMIT_NAME,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    ) -> None:
        self._password = dsn_password(dsn)
        install_log_redaction(self._password, _LOGGERS)
        self.name = name
        self.table = bucket_table(name)
        try:
            import psycopg
            from psycopg import Error as DatabaseError
            from psycopg_pool import ConnectionPool, PoolTimeout
            from pyrate_limiter import PostgresBucket
        except ImportError as exc:
            raise SmspConfigurationError(
                "a shared rate limit (SMSP_RATE_LIMIT_DSN) needs psycopg and psycopg_pool: "
                f"pip install 'smsp-connector[postgres]' ({exc.name} is missing)"
            ) from None
        self._errors: tuple[type[BaseException], ...] = (DatabaseError, PoolTimeout)
        timeout = max(1, math.ceil(connect_timeout))
        pool, problem = None, None
        try:
            # One plain connection first: a refused or failed login fails at once, with libpq's
            # reason (the pool alone would retry until its timeout, then say only that).
            psycopg.connect(dsn, connect_timeout=timeout).close()
            pool = ConnectionPool(
                dsn,
                min_size=1,
                max_size=1,
                open=False,
                name=f"smsp-rate-limit-{self.table}",
                timeout=connect_timeout,
                kwargs={"connect_timeout": timeout},
            )
            pool.open(wait=True, timeout=connect_timeout)
            rates = pacing_rates(requests_per_second, guard_ms=SHARED_WINDOW_GUARD_MS)
            self._bucket = PostgresBucket(pool, self.table, rates)
        except Exception as exc:
            problem = self._describe(exc)
        if problem is not None:
            # Raised outside the ``except`` block: the database error is not kept as context.
            if pool is not None:
                pool.close()
            raise SmspConfigurationError(
                f"cannot reach the shared rate limit's database: {problem}"
            )
        self._pool = pool
        self._lock = threading.Lock()
        self._last_leak: int | None = None

    def _describe(self, exc: BaseException) -> str:
        return redact(f"{type(exc).__name__}: {exc}".strip(), self._password)

    @contextmanager
    def permit(self) -> Iterator[None]:
        """Block until the account's shared rate allows one more request (counted when it is
        sent: see :data:`SHARED_WINDOW_GUARD_MS` for the arrival jitter this allows for)."""
        self._acquire()
        yield

    def _acquire(self) -> None:
        with self._lock:
            while True:
                problem = None
                try:
                    item = RateItem(self.name, self._now(), weight=1)
                    if self._bucket.put(item):
                        self._leak(item.timestamp)
                        return
                    wait_ms = self._bucket.waiting(item)
                except self._errors as exc:
                    problem = self._describe(exc)
                if problem is not None:
                    raise SmspTransportError(f"no permit from the shared rate limit: {problem}")
                assert isinstance(wait_ms, int)
                if wait_ms <= 0:  # no wait computed: another process held the bucket's lock
                    wait_ms = random.randint(*_CONTENTION_SLEEP_MS)
                time.sleep(wait_ms / 1000)

    def _now(self) -> int:
        """The database server's clock, in ms (the same for every machine)."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
            ).fetchone()
        assert row is not None
        return int(row[0])

    def _leak(self, now: int) -> None:
        if self._last_leak is None or now - self._last_leak >= LEAK_INTERVAL_MS:
            self._bucket.leak(now)
            self._last_leak = now

    def close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresRateLimiter(name={self.name!r}, table={self.table!r})"


def make_rate_limiter(
    requests_per_second: float | None, *, dsn: str | None = None, name: str | None = None
) -> RateLimiter | None:
    """None for no limit; a :class:`PostgresRateLimiter` with a ``dsn``; else in memory."""
    if requests_per_second is None:
        return None
    if dsn:
        return PostgresRateLimiter(dsn, requests_per_second, name=name or DEFAULT_RATE_LIMIT_NAME)
    return MemoryRateLimiter(requests_per_second)
