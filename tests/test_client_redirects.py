"""The transport stays where it was pointed (issue 19 §1).

A 3xx answer is never followed: requests would turn a redirected POST into a GET (another
server's ``{"success": true}`` taken for the provider's), or post the body, API key included,
to another origin (307/308). A 3xx is an unusable answer: the call is recorded ``failed`` with
the status and the Location's origin (never its path or query), and the other origin gets no
request. Every request the transport sends is checked (https, or http to loopback; the base
URL's origin), not only the base URL.

Two real loopback HTTP servers: the one the client is pointed at, which redirects the endpoint
under test, and the one the Location names, which answers every request with a success.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from smsp_connector.client import SmspClient, SmspConfigurationError, SmspResponseError
from smsp_connector.operations.context import RunContext
from smsp_connector.operations.extract import extract_stop_list
from smsp_connector.operations.inputs import MessageIdValues, PhoneValues
from smsp_connector.operations.run import Cancel, Delete, Push, run_operation
from smsp_connector.warehouse import Warehouse
from smsp_connector.warehouse.audit import Outcome

from .conftest import API_KEY
from .proxy_helpers import SHUTDOWN_POLL_SECONDS
from .test_client_boundary import QUICK

Reply = tuple[int, dict[str, str], bytes]

REDIRECTS = [301, 302, 303, 307, 308]
SECRET_PATH = "/private/landing-7f3a"
SECRET_QUERY = "token=q9-not-for-logs"
NUMBER = "+33611111111"
LISTED = {
    "success": True,
    "code": 200,
    "nbData": 1,
    "data": [{"id": 19, "phoneNumber": NUMBER, "createdAt": "2025-03-01 12:00:00"}],
}
SUCCESS = {"success": True, "code": 200, "stopId": 999, "nbData": 0, "data": []}


class Server:
    """A loopback HTTP server: ``reply(request)`` gives (status, headers, body); requests
    (``method``, ``path``, ``query``, ``body``) are recorded in arrival order."""

    def __init__(self, reply: Callable[[dict[str, Any]], Reply]) -> None:
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = {
                    "method": self.command,
                    "path": parts.path,
                    "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                    "body": self.rfile.read(length) if length else b"",
                }
                server.requests.append(request)
                status, headers, body = reply(request)
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), daemon=True
        ).start()
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def elsewhere() -> Iterator[Server]:
    """The origin a redirect names: it would accept anything."""
    server = Server(lambda request: (200, {}, json.dumps(SUCCESS).encode()))
    yield server
    server.close()


@pytest.fixture
def redirecting(elsewhere: Server) -> Iterator[Callable[[str, int], Server]]:
    """``make(endpoint, status)``: a provider that lists one entry and answers ``status`` with
    a Location on ``elsewhere`` to ``/v1/<endpoint>``."""
    made: list[Server] = []

    def make(endpoint: str, status: int) -> Server:
        location = f"{elsewhere.origin}{SECRET_PATH}/{endpoint}?{SECRET_QUERY}"

        def reply(request: dict[str, Any]) -> Reply:
            if request["path"] == f"/v1/{endpoint}":
                return status, {"Location": location}, b"<html>moved</html>"
            if request["path"] == "/v1/stop-sms/list":
                return 200, {}, json.dumps(LISTED).encode()
            return 404, {}, b"{}"

        server = Server(reply)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def _client(server: Server) -> SmspClient:
    return SmspClient(API_KEY, base_url=f"{server.origin}/v1", retry=QUICK)


def _assert_reported(text: str, status: int, elsewhere: Server) -> None:
    assert f"HTTP {status}" in text, text
    assert elsewhere.origin in text, "the Location's origin is named"
    assert SECRET_PATH not in text and SECRET_QUERY not in text, "never its path or query"
    assert API_KEY not in text


OPERATIONS = {
    "stop-sms/add": lambda: (Push(), PhoneValues(["+33622222222"])),
    "stop-sms/delete": lambda: (
        Delete(confirm=True),
        PhoneValues(
            [NUMBER], {"consent_at": "2026-01-15T10:00:00Z", "consent_source": "web form #1"}
        ),
    ),
    "message-cancel": lambda: (Cancel(), MessageIdValues(["307"])),
}


@pytest.mark.parametrize("status", REDIRECTS)
@pytest.mark.parametrize("endpoint", list(OPERATIONS))
def test_a_redirected_mutation_is_recorded_failed_and_not_followed(
    redirecting, elsewhere, tmp_path, endpoint, status
):
    provider = redirecting(endpoint, status)
    operation, values = OPERATIONS[endpoint]()

    with _client(provider) as client:
        report = run_operation(
            operation,
            values,
            RunContext(
                client=client,
                warehouse=Warehouse.at(tmp_path / "warehouse.duckdb"),
                run_id=f"redirect-{status}",
                job="test",
            ),
        )

    assert elsewhere.requests == [], "the other origin got no request (and never the key)"
    assert sum(r["path"] == f"/v1/{endpoint}" for r in provider.requests) == 1, "not retried"
    assert report.counts["failed"] == 1
    [row] = report.unsent.to_dict("records")
    assert row["outcome"] == Outcome.FAILED
    assert row["provider_code"] is None or row["provider_code"] != row["provider_code"]
    _assert_reported(row["reason"], status, elsewhere)


@pytest.mark.parametrize("status", REDIRECTS)
def test_a_redirected_list_is_an_error_and_not_followed(redirecting, elsewhere, status, tmp_path):
    provider = redirecting("stop-sms/list", status)

    with _client(provider) as client:
        with pytest.raises(SmspResponseError) as listed:
            client.list_stops()
        with pytest.raises(SmspResponseError) as extracted:
            extract_stop_list(
                client, Warehouse.at(tmp_path / "w.duckdb"), run_id="r", max_shrink_share=0.2
            )

    assert elsewhere.requests == []
    for caught in (listed, extracted):
        assert caught.value.http_status == status
        _assert_reported(str(caught.value), status, elsewhere)


def test_a_relative_location_is_named_by_the_providers_own_origin(redirecting, elsewhere):
    provider = Server(lambda request: (302, {"Location": "/elsewhere?apiKey=x"}, b""))
    try:
        with _client(provider) as client, pytest.raises(SmspResponseError) as caught:
            client.add_stop(NUMBER)
    finally:
        provider.close()

    assert f"HTTP 302 to {provider.origin}" in str(caught.value)
    assert "/elsewhere" not in str(caught.value) and "apiKey=x" not in str(caught.value)
    assert len(provider.requests) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/v1/stop-sms/list",
        "http://127.0.0.1:1/v1/stop-sms/list",
        "https://api.smspartner.fr.example/v1/stop-sms/list",
    ],
)
def test_every_request_is_checked_not_only_the_base_url(redirecting, url):
    """The session itself refuses a request that leaves the base URL's origin or breaks the
    scheme rule, whatever sends it (a redirect followed by some future change included)."""
    provider = redirecting("stop-sms/add", 302)
    with _client(provider) as client:
        session = client._transport._session  # white-box: the one session every call uses
        with pytest.raises(SmspConfigurationError) as caught:
            session.get(url, params={"apiKey": API_KEY}, timeout=1)

    assert API_KEY not in str(caught.value)
    assert provider.requests == []
