"""Retries, rate limiting and bulk concurrency, against the emulator's fault injection."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from smsp_connector.client import (
    AuthenticationError,
    MutationStatus,
    RetryPolicy,
    SmspClient,
    SmspTransportError,
)
from smsp_connector.emulator import FaultSettings

from .conftest import API_KEY, FAST_RETRY


def _numbers(count: int, start: int = 0) -> list[str]:
    return [f"+336{n:08d}" for n in range(start, start + count)]


def test_faulty_provider_ends_with_every_number_added_once(emulator):
    numbers = _numbers(200)
    emulator.faults = FaultSettings(fail_rate=0.25, reset_rate=0.15)
    # 40% of attempts fail: 12 attempts leave about 1 chance in 2 million that a number runs out.
    policy = RetryPolicy(max_attempts=12, backoff_initial=0.01, backoff_max=0.1)
    with SmspClient(API_KEY, base_url=emulator.base_url, retry=policy) as client:
        results = list(client.bulk_add(numbers))
        emulator.faults = FaultSettings()
        listed = [entry.phone_number for entry in client.list_stops()]
    add_stats = emulator.stats()["endpoints"]["stop-sms/add"]
    statuses = Counter(result.status for result in results)
    assert sorted(listed) == numbers, "every number is on the list exactly once"
    assert sorted(result.target for result in results) == numbers
    assert set(statuses) <= {MutationStatus.APPLIED, MutationStatus.ALREADY_DONE}, [
        result for result in results if not result.succeeded
    ]
    # A reset after the change means the change happened and the answer was lost: the retry
    # then meets code 3, which counts as done.
    assert add_stats["reset:after"] > 0 and statuses[MutationStatus.ALREADY_DONE] > 0
    assert add_stats.get("http:500", 0) + add_stats.get("http:503", 0) > 0
    assert add_stats["code:200"] + add_stats["reset:after"] >= len(numbers)
    assert add_stats["code:200"] <= len(numbers), "no number was freshly added twice"
    assert max(result.attempts for result in results) > 1


def test_exhausted_retries_raise_a_transport_error_with_attempt_count(emulator):
    emulator.faults = FaultSettings(fail_rate=1.0)
    policy = RetryPolicy(max_attempts=3, backoff_initial=0.01, backoff_max=0.05)
    with (
        SmspClient(API_KEY, base_url=emulator.base_url, retry=policy) as smsp,
        pytest.raises(SmspTransportError) as caught,
    ):
        smsp.add_stop("+33612345678")

    assert caught.value.attempts == 3
    assert caught.value.http_status in (500, 503)
    assert sum(emulator.stats()["endpoints"]["stop-sms/add"].values()) == 3
    assert emulator.state.stop_count() == 0


def test_bulk_records_failures_instead_of_stopping(emulator):
    emulator.faults = FaultSettings(fail_rate=1.0)
    policy = RetryPolicy(max_attempts=2, backoff_initial=0.01, backoff_max=0.02)
    with SmspClient(API_KEY, base_url=emulator.base_url, retry=policy) as smsp:
        results = list(smsp.bulk_add(_numbers(5)))

    assert [r.status for r in results] == [MutationStatus.FAILED] * 5
    assert all(r.code is None and r.attempts == 2 and "HTTP 5" in r.message for r in results)


def test_bulk_keeps_provider_refusals_apart(client):
    results = {r.target: r for r in client.bulk_add(["+33612345678", "12", "+33698765432"])}

    assert results["+33612345678"].status is MutationStatus.APPLIED
    assert results["+33698765432"].status is MutationStatus.APPLIED
    assert results["12"].status is MutationStatus.REJECTED
    assert results["12"].code == 9


def test_bulk_stops_on_authentication_errors(emulator):
    with (
        SmspClient("wrong-key", base_url=emulator.base_url, retry=FAST_RETRY) as smsp,
        pytest.raises(AuthenticationError),
    ):
        list(smsp.bulk_add(_numbers(20)))


def test_send_is_not_retried_when_the_answer_is_lost(client, emulator):
    emulator.faults = FaultSettings(reset_rate=1.0)

    with pytest.raises(SmspTransportError, match="not idempotent"):
        client.send_sms(["+33612345678"], "hello")

    assert sum(emulator.stats()["endpoints"]["send"].values()) == 1


def test_retry_after_is_honoured(client, emulator):
    emulator.faults = FaultSettings(rate_limit=1)

    started = time.monotonic()
    first = client.add_stop("+33612345678")
    second = client.add_stop("+33698765432")
    elapsed = time.monotonic() - started

    assert first.status is second.status is MutationStatus.APPLIED
    assert emulator.stats()["endpoints"]["stop-sms/add"]["http:429"] >= 1
    assert second.attempts >= 2
    assert elapsed >= 0.9, "the client waited for Retry-After (1 s) before trying again"


def test_client_rate_limit_keeps_under_the_providers_limit(emulator):
    emulator.faults = FaultSettings(rate_limit=50)
    with SmspClient(
        API_KEY, base_url=emulator.base_url, rate_limit=45, max_workers=8, retry=FAST_RETRY
    ) as smsp:
        started = time.monotonic()
        results = list(smsp.bulk_add(_numbers(90)))
        elapsed = time.monotonic() - started

    assert all(r.status is MutationStatus.APPLIED for r in results)
    assert "http:429" not in emulator.stats()["endpoints"]["stop-sms/add"]
    assert elapsed >= 1.0, "90 calls at 45/s cannot finish within one second"


def test_bulk_runs_calls_concurrently(emulator):
    emulator.faults = FaultSettings(latency_ms=200)
    with SmspClient(API_KEY, base_url=emulator.base_url, max_workers=8) as smsp:
        started = time.monotonic()
        results = list(smsp.bulk_add(_numbers(16)))
        elapsed = time.monotonic() - started

    assert len(results) == 16
    assert elapsed < 16 * 0.2 / 2, f"16 calls of 200 ms on 8 workers took {elapsed:.2f} s"


def test_closing_a_bulk_run_early_stops_submitting(client, emulator):
    run = client.bulk_add(_numbers(500))
    first = [next(run) for _ in range(3)]
    run.close()

    assert len(first) == 3
    assert sum(emulator.stats()["endpoints"]["stop-sms/add"].values()) < 100
