"""A retried change that comes back "already done" may be our own earlier attempt (issue 19 §4).

An add whose answer is slower than the read timeout may still have been applied; its retry then
answers code 3, "already on the list". That is not someone else's add: when an earlier attempt
of the same call may have reached the provider (a timeout, a dropped connection, a 5xx), the
result and the audit row say it may be our own earlier attempt. A 429 was not processed, so it
says nothing of the kind.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from smsp_connector.client import MutationStatus, RetryPolicy, SmspClient
from smsp_connector.operations.context import RunContext
from smsp_connector.operations.inputs import PhoneValues
from smsp_connector.operations.run import Push, run_operation
from smsp_connector.warehouse import Warehouse

from .conftest import API_KEY
from .test_client_boundary import Answer, CannedProvider, _json, _list

RETRY = RetryPolicy(max_attempts=3, backoff_initial=0.01, backoff_max=0.01, max_elapsed=20)
READ_TIMEOUT = 0.3
ALREADY = {"stop-sms/add": 3, "stop-sms/delete": 4, "message-cancel": 5}
CALLS = {
    "stop-sms/add": lambda smsp: list(smsp.bulk_add(["+33611111111"])),
    "stop-sms/delete": lambda smsp: list(smsp.bulk_delete([19])),
    "message-cancel": lambda smsp: list(smsp.bulk_cancel([307])),
}


def _first_then(first: str, endpoint: str):
    """The first attempt: ``slow`` (applied, answered after the client gave up), ``429`` (not
    processed) or ``3`` (already done at once); every later one: the "already done" code."""
    seen: list[int] = []

    def answer(request: dict[str, Any]) -> Answer:
        seen.append(1)
        already = _json({"success": False, "code": ALREADY[endpoint], "message": "already"})
        if len(seen) > 1 or first == "already":
            return already
        if first == "slow":
            time.sleep(READ_TIMEOUT * 3)
            return _json({"success": True, "code": 200, "stopId": 300})
        return 429, b'{"error": "slow down"}'

    return answer


@pytest.fixture
def provider():
    server = CannedProvider()
    yield server
    server.close()


def _client(provider: CannedProvider, read_timeout: float = READ_TIMEOUT) -> SmspClient:
    return SmspClient(API_KEY, base_url=provider.base_url, retry=RETRY, timeout=(2.0, read_timeout))


@pytest.mark.parametrize("endpoint", list(CALLS))
def test_already_done_after_a_lost_answer_may_be_our_own_attempt(provider, endpoint):
    provider.answer(endpoint, _first_then("slow", endpoint))

    with _client(provider) as smsp:
        [result] = CALLS[endpoint](smsp)

    assert result.status is MutationStatus.ALREADY_DONE
    assert result.attempts == 2
    assert result.uncertain_attempts == (1,)
    assert "our own earlier attempt" in result.detail
    assert "attempt 1" in result.detail


@pytest.mark.parametrize("first", ["429", "already"])
@pytest.mark.parametrize("endpoint", list(CALLS))
def test_already_done_says_nothing_of_the_kind_when_no_attempt_reached_it(
    provider, endpoint, first
):
    provider.answer(endpoint, _first_then(first, endpoint))

    # Every answer here is prompt: a read timeout as short as the lost answer's above would
    # make an answer merely late on a loaded machine look lost (CI saw it at load 4).
    with _client(provider, read_timeout=30.0) as smsp:
        [result] = CALLS[endpoint](smsp)

    assert result.status is MutationStatus.ALREADY_DONE
    assert result.uncertain_attempts == ()
    assert result.detail is None


def _push(provider: CannedProvider, tmp_path: Path) -> list[tuple]:
    provider.answer("stop-sms/list", _list([], nbData=0))
    with _client(provider) as smsp:
        report = run_operation(
            Push(),
            PhoneValues(["+33611111111"]),
            RunContext(
                client=smsp,
                warehouse=Warehouse.at(tmp_path / "warehouse.duckdb"),
                run_id="retried",
                job="test",
            ),
        )
    assert report.counts["already_done"] == 1
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT outcome, provider_code, attempts, detail FROM smsp.audit_latest "
            "WHERE run_id = 'retried'"
        ).fetchall()


def test_the_audit_row_of_a_retried_add_says_it_may_be_ours(provider, tmp_path):
    provider.answer("stop-sms/add", _first_then("slow", "stop-sms/add"))

    [(outcome, code, attempts, detail)] = _push(provider, tmp_path)

    assert (outcome, code, attempts) == ("already_done", 3, 2)
    assert "our own earlier attempt" in detail


def test_the_audit_row_of_a_first_time_code_3_has_no_such_note(provider, tmp_path):
    provider.answer("stop-sms/add", _first_then("already", "stop-sms/add"))

    [(outcome, code, attempts, detail)] = _push(provider, tmp_path)

    assert (outcome, code, attempts, detail) == ("already_done", 3, 1, None)
