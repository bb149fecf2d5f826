"""Fault injection: rate limit, 5xx, dropped connections, latency, and their counters."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from smsp_connector.emulator import EmulatorServer, FaultSettings

API_KEY = "faults-key-0123456789"


def get(server: EmulatorServer, endpoint: str, **params: str) -> requests.Response:
    params.setdefault("apiKey", API_KEY)
    return requests.get(f"{server.base_url}/{endpoint}", params=params, timeout=10)


def add(server: EmulatorServer, phone: str) -> requests.Response:
    body = {"apiKey": API_KEY, "phoneNumber": phone}
    return requests.post(f"{server.base_url}/stop-sms/add", json=body, timeout=10)


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(api_key=API_KEY, random_seed=1234) as server:
        yield server


def phone(i: int) -> str:
    return f"+3361{i:07d}"


def outcome(server: EmulatorServer, i: int) -> str:
    """Add `phone(i)` and tell how it went: a provider code, an HTTP status, or a reset."""
    try:
        response = add(server, phone(i))
    except requests.exceptions.ConnectionError:
        return "reset"
    if response.status_code != 200:
        return f"http:{response.status_code}"
    return f"code:{response.json()['code']}"


def test_rate_limit_answers_429_above_the_rate_only(server: EmulatorServer) -> None:
    server.faults = FaultSettings(rate_limit=5)
    with requests.Session() as session:
        answers = [
            session.get(f"{server.base_url}/me", params={"apiKey": API_KEY}, timeout=10)
            for _ in range(20)
        ]
    limited = [r for r in answers if r.status_code == 429]
    assert [r.status_code for r in answers[:5]] == [200] * 5
    assert len(limited) >= 10
    for response in limited:
        assert int(response.headers["Retry-After"]) >= 1
    assert server.stats()["endpoints"]["me"]["http:429"] == len(limited)

    server.faults = FaultSettings(rate_limit=50)
    for _ in range(10):
        assert get(server, "me").status_code == 200
        time.sleep(0.05)


def test_rate_limited_requests_change_nothing(server: EmulatorServer) -> None:
    server.faults = FaultSettings(rate_limit=2)
    outcomes = [outcome(server, i) for i in range(10)]
    assert outcomes.count("http:429") >= 7
    added = {phone(i) for i, o in enumerate(outcomes) if o == "code:200"}
    assert {e.phone_number for e in server.state.stop_entries()} == added


def test_fail_rate_gives_500_and_503_without_state_change(server: EmulatorServer) -> None:
    server.faults = FaultSettings(fail_rate=0.5)
    outcomes = [outcome(server, i) for i in range(300)]
    counts = Counter(outcomes)
    assert set(counts) == {"code:200", "http:500", "http:503"}
    assert 100 <= counts["http:500"] + counts["http:503"] <= 200
    assert counts["http:500"] >= 40 and counts["http:503"] >= 40
    added = {phone(i) for i, o in enumerate(outcomes) if o == "code:200"}
    assert {e.phone_number for e in server.state.stop_entries()} == added
    stats = server.stats()["endpoints"]["stop-sms/add"]
    assert (stats["code:200"], stats["http:500"], stats["http:503"]) == (
        counts["code:200"],
        counts["http:500"],
        counts["http:503"],
    )


def test_503_carries_retry_after(server: EmulatorServer) -> None:
    server.faults = FaultSettings(fail_rate=1.0)
    statuses = set()
    for _ in range(20):
        response = get(server, "me")
        statuses.add(response.status_code)
        if response.status_code == 503:
            assert response.headers["Retry-After"] == "1"
        assert response.headers["content-type"].startswith("text/html")
    assert statuses == {500, 503}


def test_reset_rate_drops_connections_before_and_after_the_change(server: EmulatorServer) -> None:
    server.faults = FaultSettings(reset_rate=1.0)
    outcomes = [outcome(server, i) for i in range(60)]
    assert set(outcomes) == {"reset"}
    stats = server.stats()["endpoints"]["stop-sms/add"]
    assert stats["reset:before"] + stats["reset:after"] == 60
    assert 15 <= stats["reset:after"] <= 45
    # After-handling resets applied their change; before-handling ones did not.
    assert server.state.stop_count() == stats["reset:after"]
    assert "code:200" not in stats


def test_reset_is_not_an_http_answer_on_a_raw_socket(server: EmulatorServer) -> None:
    server.faults = FaultSettings(reset_rate=1.0)
    address = urlsplit(server.url)
    request = f"GET /v1/me?apiKey={API_KEY} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(request)
        try:
            received = sock.recv(1024)
        except ConnectionResetError:
            received = b""
    assert received == b""


def test_partial_reset_rate_mixes_answers_and_drops(server: EmulatorServer) -> None:
    server.faults = FaultSettings(reset_rate=0.3)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda i: outcome(server, i), range(200)))
    counts = Counter(outcomes)
    assert set(counts) == {"code:200", "reset"}
    assert 30 <= counts["reset"] <= 90
    stats = server.stats()["endpoints"]["stop-sms/add"]
    assert stats["reset:before"] + stats["reset:after"] == counts["reset"]
    assert server.state.stop_count() == counts["code:200"] + stats["reset:after"]


def test_latency_is_concurrent(server: EmulatorServer) -> None:
    server.faults = FaultSettings(latency_ms=200)
    together = threading.Barrier(20, timeout=30)

    def call(_: int) -> int:
        together.wait()  # all 20 requests leave at once
        return get(server, "me").status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(call, range(20)))
    assert statuses == [200] * 20
    stats = server.stats(detail=True)
    assert stats["endpoints"]["me"] == {"code:200": 20}
    # Without latency a /me request is answered in one go, and a blocking sleep would hold the
    # event loop: either way the server would never have more than one /me in flight (maybe two,
    # as one is being sent). Sleeping without blocking, the 200 ms overlap.
    assert stats["peak_in_flight"]["me"] >= 10


def test_error_status_can_change_at_runtime(server: EmulatorServer) -> None:
    assert get(server, "me", apiKey="bad").status_code == 200
    server.faults = FaultSettings(error_status=400)
    response = get(server, "me", apiKey="bad")
    assert (response.status_code, response.json()["code"]) == (400, 10)
    assert get(server, "me").status_code == 200


def test_faults_are_reproducible_with_a_random_seed() -> None:
    faults = FaultSettings(fail_rate=0.3, reset_rate=0.2)
    runs = []
    for _ in range(2):
        with EmulatorServer(api_key=API_KEY, faults=faults, random_seed=7) as server:
            runs.append([outcome(server, i) for i in range(40)])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 4  # answers, 500, 503 and resets all occur


def test_stats_count_every_outcome(server: EmulatorServer) -> None:
    server.faults = FaultSettings(fail_rate=0.2, reset_rate=0.2, rate_limit=1000)
    outcomes = Counter(outcome(server, i % 50) for i in range(150))
    stats = server.stats()["endpoints"]["stop-sms/add"]
    assert sum(stats.values()) == 150
    assert stats["reset:before"] + stats["reset:after"] == outcomes["reset"]
    for key in ("code:200", "code:3", "http:500", "http:503"):
        assert stats.get(key, 0) == outcomes[key]
    assert set(server.stats()["endpoints"]) == {"stop-sms/add"}
    assert server.stats()["stop_list_size"] == server.state.stop_count()
    server.reset()
    assert server.stats()["endpoints"] == {}
    assert server.faults == FaultSettings()


def test_invalid_fault_settings_are_refused() -> None:
    for bad in (
        {"fail_rate": 1.5},
        {"reset_rate": -0.1},
        {"latency_ms": -1},
        {"rate_limit": 0},
        {"error_status": 500},
    ):
        with pytest.raises(ValueError):
            FaultSettings(**bad)  # type: ignore[arg-type]


def test_stop_is_idempotent_and_frees_the_port() -> None:
    server = EmulatorServer(api_key=API_KEY).start()
    port = server.port
    assert get(server, "me").status_code == 200
    server.stop()
    server.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/v1/me", timeout=2)
    assert API_KEY not in repr(server)


def test_the_api_key_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    access = logging.getLogger("uvicorn.access")
    with EmulatorServer(api_key=API_KEY, faults=FaultSettings(fail_rate=0.5)) as server:
        # A host process that logs everything, uvicorn's access log included (whose lines
        # would carry the query string, hence the key).
        access.propagate = True
        try:
            for _ in range(10):
                get(server, "me")
            get(server, "stop-sms/list", apiKey=API_KEY + "-wrong")
        finally:
            access.propagate = False
    server_records = [r for r in caplog.records if not r.name.startswith("urllib3")]
    assert server_records, "uvicorn logs its start and stop"
    assert not any(API_KEY in record.getMessage() for record in server_records)
    assert API_KEY not in repr(server) and API_KEY not in repr(server.state)
