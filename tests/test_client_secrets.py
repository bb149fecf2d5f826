"""The API key never shows in reprs, error messages, exception chains or logs."""

from __future__ import annotations

import logging
import socket

import pytest
import requests

from smsp_connector.client import (
    AuthenticationError,
    RetryPolicy,
    SmspClient,
    SmspError,
    SmspResponseError,
    SmspTransportError,
)

from .conftest import API_KEY


def _chain(error: BaseException) -> list[BaseException]:
    seen, pending = [], [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        pending += [current.__cause__, current.__context__]
        pending += [a for a in current.args if isinstance(a, BaseException)]
    return seen


def _assert_no_key(error: BaseException) -> None:
    for link in _chain(error):
        assert API_KEY not in str(link) and API_KEY not in repr(link), type(link).__name__


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_repr_hides_the_key():
    with SmspClient(API_KEY, base_url="http://127.0.0.1:1/v1") as smsp:
        assert API_KEY not in repr(smsp)
        assert "***" in repr(smsp)


def test_connection_errors_hide_the_key_in_the_whole_chain():
    policy = RetryPolicy(max_attempts=2, backoff_initial=0.01, backoff_max=0.01)
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    with (
        SmspClient(API_KEY, base_url=base_url, retry=policy) as smsp,
        pytest.raises(SmspTransportError) as caught,
    ):
        smsp.list_stops()

    assert "apiKey=***" in str(caught.value), "the URL is shown, redacted"
    _assert_no_key(caught.value)


def test_api_errors_hide_the_key(emulator):
    with (
        SmspClient(API_KEY + "x", base_url=emulator.base_url) as smsp,
        pytest.raises(AuthenticationError) as caught,
    ):
        smsp.delete_stop(1)
    _assert_no_key(caught.value)


def test_urllib3_debug_log_hides_the_key(client, caplog):
    with caplog.at_level(logging.DEBUG, logger="urllib3"):
        client.list_stops()
        client.delete_stop(12345)

    lines = [record.getMessage() for record in caplog.records]
    assert any("stop-sms/list?apiKey=***" in line for line in lines), lines
    assert not [line for line in lines if API_KEY in line]


def test_unexpected_bodies_are_quoted_without_the_key(client, monkeypatch):
    def fake_request(method, url, **kwargs):
        response = requests.Response()
        response.status_code = 502 if "list" in url else 200
        response._content = f"<html>proxy error for {url}?apiKey={API_KEY}</html>".encode()
        return response

    monkeypatch.setattr(client._transport._session, "request", fake_request)
    with pytest.raises(SmspResponseError) as caught:
        client.delete_stop(1)

    assert caught.value.http_status == 200
    assert "not the documented JSON shape" in str(caught.value)
    _assert_no_key(caught.value)


def test_every_error_is_an_smsp_error_subclass():
    assert issubclass(SmspTransportError, SmspError)
    assert issubclass(AuthenticationError, SmspError)
