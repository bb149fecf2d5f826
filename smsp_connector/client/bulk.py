"""Run many independent API calls on a bounded thread pool, yielding results as they complete."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from itertools import islice
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_concurrently(
    call: Callable[[T], R], items: Iterable[T], *, max_workers: int
) -> Iterator[tuple[T, R | Exception]]:
    """Apply ``call`` to every item with at most ``max_workers`` calls in flight.

    Yields ``(item, result)`` or ``(item, exception)`` in completion order, so a caller can
    record each outcome while the rest runs. ``items`` is consumed lazily (at most two items per
    worker are queued), so a million-number push does not create a million futures. Closing the
    generator early (an exception in the consumer, Ctrl-C) cancels what has not started and
    waits for the calls already in flight.
    """
    if max_workers < 1:
        raise ValueError("max_workers must be at least 1")
    source = iter(items)
    window = 2 * max_workers
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="smsp") as pool:
        pending: dict[Future[R], T] = {}

        def refill() -> None:
            for item in islice(source, window - len(pending)):
                pending[pool.submit(call, item)] = item

        try:
            refill()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    item = pending.pop(future)
                    error = future.exception()
                    yield item, (error if isinstance(error, Exception) else future.result())
                refill()
        finally:
            for future in pending:
                future.cancel()
