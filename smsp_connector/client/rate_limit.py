"""The client's request rate: in memory for one process, or shared through PostgreSQL.

Both allow the limit per second and a tenth of it per 100 ms slice (a single per-second window
would let a whole second's budget go out in one burst, which a provider counting over a shorter
window answers with 429). A request is sent inside its permit (``with limiter.permit():``).

- :class:`MemoryRateLimiter` (the default) counts in this process only: N processes (Dagster run
  workers in pods of their own, two ``smsp`` commands) together send up to N times the rate. A
  permit keeps its place until one window after the answer, so the provider, counting arrivals,
  never sees more than the limit, whatever the delay between sending and arriving.
- :class:`PostgresRateLimiter` keeps the permits in a PostgreSQL table named after the account's
  label (never its key): every process and machine configured with the same database and label
  shares one limit, held the same way (until one window after each answer), with the database
  server's clock as the one clock. Needs ``psycopg`` and ``psycopg_pool``
  (``pip install 'smsp-connector[postgres]'``).

The DSN may hold a password: it is masked in every message this module raises and in the log
records of psycopg and its pool, and kept out of reprs.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from smsp_connector.client.errors import SmspConfigurationError, SmspTransportError
from smsp_connector.client.redaction import install_log_redaction, redact

DEFAULT_RATE_LIMIT_NAME = "smsp"
CONNECT_TIMEOUT_SECONDS = 10.0
"""How long opening the limiter's database connection may take before the client gives up."""
LEAK_INTERVAL_MS = 1_000
"""How often (at most) a process deletes the permits that every window has left."""
IN_FLIGHT_LEASE_SECONDS = 60.0
"""How long a shared permit holds its place when no answer releases it (the process died, or
lost the database, while its request was out): far beyond a request's usual arrival (the
client's connect timeout is at most 10 s per address tried); a process paused longer than this
between its permit and the wire gets no place held for that request."""
WINDOW_GUARD_SECONDS = 0.002
"""The limiters' window is 1,002 ms: a provider that keeps whole milliseconds may put two
arrivals 1,000.4 ms apart in one second."""
_MAX_WAIT_SECONDS = 0.25
"""A shared permit's longest sleep before it looks at the table again."""
_SESSION_SETTINGS = "SET lock_timeout = '5s'; SET idle_in_transaction_session_timeout = '5s'"
"""Every limiter session: a take waits at most 5 s for the table's lock (then tries again),
and the server ends a transaction left open 5 s (a process frozen in one: a paused VM) so that
it cannot hold every other process's permits for hours."""
_LOGGERS = ("psycopg", "psycopg.pool")
_log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    """Hands out permits: one per request, held while it is out."""

    def permit(self) -> AbstractContextManager[None]:
        """Block until one request may be sent; the request is sent inside the ``with``."""
        ...

    def close(self) -> None: ...


def pacing(requests_per_second: float) -> tuple[int, int]:
    """The places in a window (the rate rounded down, at least 1) and the sends in a tenth of
    it (a tenth of those, rounded up, at least 1): both limiters' rule."""
    limit = max(1, math.floor(requests_per_second))
    return limit, max(1, math.ceil(limit / 10))


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
    hold it until an answer, hence this small condition-variable pacer (and
    :class:`PostgresRateLimiter`, the same rule in a table).
    """

    def __init__(
        self,
        requests_per_second: float,
        *,
        window_seconds: float = 1.0 + WINDOW_GUARD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit, self._per_slice = pacing(requests_per_second)
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
    labels never share a table by accident. The permits' table is this name with
    ``_permits`` after it."""
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
    """One rate for every process that uses the same database and ``name``: the
    :class:`MemoryRateLimiter`'s rule, with the permits in a PostgreSQL table.

    A permit is a row, taken under the table's lock when fewer than the limit hold a place
    and fewer than a tenth of it were sent in the last 100 ms, stamped by the database
    server's ``clock_timestamp()``; its answer sets how long it holds its place, one window
    after the answer (until then it holds it for :data:`IN_FLIGHT_LEASE_SECONDS`). Requests
    that arrive at the provider within one window of each other were all holding a place when
    the last was sent, whatever held any of them up on the way (up to the lease), on whichever
    machine: the provider never counts more than the limit. That clock is the server's wall
    clock: a step forward of it (an NTP step, a fail-over to a server whose clock is off)
    frees places early once. Within a client one thread at a time takes permits; every
    process must be given the same rate. Each client keeps up to two connections: one round
    trip takes a permit, one releases it.
    """

    def __init__(
        self,
        dsn: str,
        requests_per_second: float,
        *,
        name: str = DEFAULT_RATE_LIMIT_NAME,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        window_seconds: float = 1.0 + WINDOW_GUARD_SECONDS,
    ) -> None:
        self._password = dsn_password(dsn)
        install_log_redaction(self._password, _LOGGERS)
        self.name = name
        self.table = permit_table(name)
        self._limit, self._per_slice = pacing(requests_per_second)
        self._window = window_seconds
        self._slice = window_seconds / 10
        try:
            import psycopg
            from psycopg import Error as DatabaseError
            from psycopg import sql
            from psycopg_pool import ConnectionPool, PoolTimeout
        except ImportError as exc:
            raise SmspConfigurationError(
                "a shared rate limit (SMSP_RATE_LIMIT_DSN) needs psycopg and psycopg_pool: "
                f"pip install 'smsp-connector[postgres]' ({exc.name} is missing)"
            ) from None
        self._errors: tuple[type[BaseException], ...] = (DatabaseError, PoolTimeout)
        self._lock_timeout: type[BaseException] = psycopg.errors.LockNotAvailable
        self._sql = _PermitStatements(sql, self.table)
        timeout = max(1, math.ceil(connect_timeout))
        pool, problem = None, None
        try:
            # One plain connection first: a refused or failed login fails at once, with libpq's
            # reason (the pool alone would retry until its timeout, then say only that).
            psycopg.connect(dsn, connect_timeout=timeout).close()
            pool = ConnectionPool(
                dsn,
                min_size=1,
                max_size=2,  # a permit taken while an answer releases another
                open=False,
                name=f"smsp-rate-limit-{self.table}",
                timeout=connect_timeout,
                kwargs={"connect_timeout": timeout, "autocommit": True},
                configure=_configure_session,
            )
            pool.open(wait=True, timeout=connect_timeout)
            with pool.connection() as conn:
                exists = conn.execute(self._sql.exists).fetchone()
                if exists is None or exists[0] is None:  # CREATE needs the schema's privilege
                    with conn.transaction():
                        conn.execute(self._sql.create_lock, (_lock_id(self.table),))
                        conn.execute(self._sql.create)
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
        self._last_leak = -math.inf
        self._take_params = {
            "slice": self._slice,
            "lease": IN_FLIGHT_LEASE_SECONDS,
            "limit": self._limit,
            "per_slice": self._per_slice,
        }

    def _describe(self, exc: BaseException) -> str:
        return redact(f"{type(exc).__name__}: {exc}".strip(), self._password)

    @contextmanager
    def permit(self) -> Iterator[None]:
        """Block until the account's shared rate allows one more request; the permit holds
        its place until one window after the ``with`` block ends (the answer is back)."""
        permit_id = self._acquire()
        try:
            yield
        finally:
            self._release(permit_id)

    def _acquire(self) -> int:
        with self._lock:
            while True:
                problem, taken, wait = None, None, 0.0
                try:
                    taken, wait, now = self._try_take()
                except self._lock_timeout:
                    continue  # another session held the lock 5 s: the server ends it soon
                except self._errors as exc:
                    problem = self._describe(exc)
                if problem is not None:
                    raise SmspTransportError(f"no permit from the shared rate limit: {problem}")
                if taken is not None:
                    self._leak(now)
                    return taken
                time.sleep(min(max(wait, 0.001), _MAX_WAIT_SECONDS))

    def _try_take(self) -> tuple[int | None, float, float]:
        """A permit's id (or ``None``), how long until a place may be free (seconds) and the
        server's clock it read (epoch seconds).

        The transaction (lock the table, count and insert, commit) is sent whole in one
        pipeline, so the server runs it to its end without waiting on this process: the lock
        is held for the statement's time only, whatever happens here meanwhile."""
        with self._pool.connection() as conn:
            with conn.pipeline():
                conn.execute(self._sql.begin)
                conn.execute(self._sql.lock)
                cursor = conn.execute(self._sql.take, self._take_params)
                conn.execute(self._sql.commit)
            row = cursor.fetchone()
        assert row is not None
        now, permit_id, held_wait, slice_wait = row
        if permit_id is None:
            return None, max(wait for wait in (held_wait, slice_wait) if wait is not None), now
        return int(permit_id), 0.0, now

    def _leak(self, now: float) -> None:
        """Delete, at most once a second, the permits that hold no place any more; a failure is
        logged, never raised over the permit just taken."""
        if now - self._last_leak < LEAK_INTERVAL_MS / 1000:
            return
        self._last_leak = now
        params = {"now": now, "window": self._window, "slice": self._slice}
        self._execute_or_warn(self._sql.leak, params, "old permits not deleted")

    def _release(self, permit_id: int) -> None:
        """The answer is back: the permit holds its place one window from now. A database
        that cannot be reached leaves it to its lease: nothing is raised over the request's own
        result (which was sent and maybe applied)."""
        params = {"id": permit_id, "window": self._window}
        self._execute_or_warn(self._sql.release, params, f"permit {permit_id} kept to its lease")

    def _execute_or_warn(self, statement: Any, params: dict[str, Any], failure: str) -> None:
        """Run one statement on a pooled connection; a database error is logged as
        ``failure`` with what went wrong (redacted), never raised."""
        problem = None
        try:
            with self._pool.connection() as conn:
                conn.execute(statement, params)
        except self._errors as exc:
            problem = self._describe(exc)
        if problem is not None:
            _log.warning("shared rate limit: %s: %s", failure, problem)

    def close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresRateLimiter(name={self.name!r}, table={self.table!r})"


def _configure_session(conn: Any) -> None:
    conn.execute(_SESSION_SETTINGS)


def permit_table(name: str) -> str:
    """The shared permits' table for an account label (see :func:`bucket_table`)."""
    return f"{bucket_table(name)}_permits"


def _lock_id(table: str) -> int:
    """The advisory lock taken to create ``table``: the same in every process (``hash()`` of a
    str is salted per interpreter)."""
    return zlib.crc32(table.encode()) & 0x7FFFFFFF


class _PermitStatements:
    """The shared limiter's SQL, its table's name quoted by psycopg. Times are the server's
    ``clock_timestamp()`` as epoch seconds (double precision), so that every machine reads one
    clock; ``now`` is the one the state was read at."""

    def __init__(self, sql: Any, table: str) -> None:
        name = sql.Identifier(table)

        def statement(text: str) -> Any:
            return sql.SQL(text).format(table=name)

        self.exists = sql.SQL("SELECT to_regclass({name})").format(name=sql.Literal(table))
        self.begin = sql.SQL("BEGIN")
        self.commit = sql.SQL("COMMIT")
        self.create_lock = statement("SELECT pg_advisory_xact_lock(%s)")
        self.create = statement(
            "CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, "
            "sent_at double precision NOT NULL, held_until double precision NOT NULL)"
        )
        self.lock = statement("LOCK TABLE {table} IN EXCLUSIVE MODE")
        self.take = statement(
            """
            WITH n AS (
                SELECT extract(epoch FROM clock_timestamp())::double precision AS now
            ), state AS (
                SELECT n.now,
                       count(p.id) FILTER (WHERE p.held_until > n.now) AS held,
                       count(p.id) FILTER (WHERE p.sent_at > n.now - %(slice)s) AS sent,
                       min(p.held_until) FILTER (WHERE p.held_until > n.now) - n.now
                           AS held_wait,
                       min(p.sent_at) FILTER (WHERE p.sent_at > n.now - %(slice)s)
                           + %(slice)s - n.now AS slice_wait
                FROM n LEFT JOIN {table} AS p
                    ON p.held_until > n.now OR p.sent_at > n.now - %(slice)s
                GROUP BY n.now
            ), taken AS (
                INSERT INTO {table} (sent_at, held_until)
                SELECT now, now + %(lease)s FROM state
                WHERE held < %(limit)s AND sent < %(per_slice)s
                RETURNING id
            )
            SELECT now, (SELECT id FROM taken),
                   CASE WHEN held >= %(limit)s THEN held_wait END,
                   CASE WHEN sent >= %(per_slice)s THEN slice_wait END
            FROM state
            """
        )
        self.release = statement(
            "UPDATE {table} SET held_until = "
            "extract(epoch FROM clock_timestamp())::double precision + %(window)s "
            "WHERE id = %(id)s"
        )
        self.leak = statement(
            "DELETE FROM {table} WHERE held_until < %(now)s - %(window)s "
            "AND sent_at < %(now)s - %(slice)s"
        )


def make_rate_limiter(
    requests_per_second: float | None, *, dsn: str | None = None, name: str | None = None
) -> RateLimiter | None:
    """None for no limit; a :class:`PostgresRateLimiter` with a ``dsn``; else in memory."""
    if requests_per_second is None:
        return None
    if dsn:
        return PostgresRateLimiter(dsn, requests_per_second, name=name or DEFAULT_RATE_LIMIT_NAME)
    return MemoryRateLimiter(requests_per_second)
