"""The provider boundary: no answer shape breaks the client.

The provider's pages show one example per endpoint and leave the rest open. Every odd answer
becomes a correct result or a typed :class:`SmspResponseError` that keeps the (redacted) raw
body, never a bare ``KeyError``/``ValueError``/``TypeError``, and the outcome of a call that
may have been applied is never lost.

The emulator answers only documented shapes, so most tests run the real client (requests,
retries, decoding) over loopback HTTP against :class:`CannedProvider`, a tiny server that
answers canned bodies per path.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from smsp_connector.client import (
    MutationStatus,
    RetryPolicy,
    SmspClient,
    SmspConfigurationError,
    SmspError,
    SmspResponseError,
    SmspTransportError,
)
from smsp_connector.client.models import PROVIDER_TZ
from smsp_connector.client.redaction import redact
from smsp_connector.operations.context import RunContext
from smsp_connector.operations.extract import extract_stop_list
from smsp_connector.operations.inputs import PhoneValues
from smsp_connector.operations.run import Delete, Push, run_operation
from smsp_connector.warehouse import Warehouse, staging
from smsp_connector.warehouse.audit import AuditEntry, Outcome

from .conftest import API_KEY
from .proxy_helpers import SHUTDOWN_POLL_SECONDS

QUICK = RetryPolicy(max_attempts=2, backoff_initial=0.01, backoff_max=0.01, max_elapsed=10)

Answer = tuple[int, bytes]
Handler = Callable[[dict[str, Any]], Answer]


def _json(document: Any, status: int = 200) -> Answer:
    return status, json.dumps(document).encode()


class CannedProvider:
    """An HTTP server on 127.0.0.1 (port 0) that answers each ``/v1/<endpoint>`` with a canned
    ``(status, body)``, or with what a handler returns for the request (``method``,
    ``query``, ``json``). Requests are recorded in arrival order."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer | Handler] = {}
        self.requests: list[dict[str, Any]] = []
        provider = self

        class _Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = {
                    "method": self.command,
                    "endpoint": parts.path.removeprefix("/v1/"),
                    "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                    "json": json.loads(raw) if raw else None,
                }
                provider.requests.append(request)
                answer = provider.answers.get(request["endpoint"], (404, b"no such page"))
                status, body = answer(request) if callable(answer) else answer
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), daemon=True
        )
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}/v1"

    def answer(self, endpoint: str, answer: Answer | Handler) -> None:
        self.answers[endpoint] = answer

    def calls(self, endpoint: str) -> int:
        return sum(1 for request in self.requests if request["endpoint"] == endpoint)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def provider() -> Iterator[CannedProvider]:
    server = CannedProvider()
    yield server
    server.close()


@pytest.fixture
def smsp(provider: CannedProvider) -> Iterator[SmspClient]:
    with SmspClient(API_KEY, base_url=provider.base_url, retry=QUICK) as client:
        yield client


def _entry(stop_id: Any, phone: str = "+33611110000", created: Any = "2025-03-01 12:00:00") -> dict:
    return {"id": stop_id, "phoneNumber": phone, "createdAt": created}


def _list(data: Any, **extra: Any) -> Answer:
    return _json({"success": True, "code": 200, **extra, "data": data})


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- /send: the message id (needed to cancel) is never lost ------------------------------------

SENT = {"success": True, "code": 200, "message_id": 307, "nb_sms": 1, "cost": 0.038}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"message_id": None, "messageId": 307}, (307, 1, 0.038)),
        ({"message_id": "307", "nb_sms": "2", "cost": "0.038"}, (307, 2, 0.038)),
        ({"cost": "0,038"}, (307, 1, 0.038)),
        ({"cost": 0}, (307, 1, 0.0)),
        ({"nb_sms": None}, (307, None, 0.038)),
        ({"nb_sms": None, "cost": None}, (307, None, None)),
    ],
    ids=["messageId", "numbers-as-text", "decimal-comma", "integer-cost", "null-count", "nulls"],
)
def test_send_reads_ids_and_numbers_in_any_spelling(provider, smsp, changes, expected):
    body = {**SENT, **changes}
    body = {key: value for key, value in body.items() if not (key == "message_id" and not value)}
    provider.answer("send", _json({**body, "currency": "EUR"}))

    sent = smsp.send_sms(["+33612345678"], "hello")

    assert (sent.message_id, sent.nb_sms, sent.cost) == expected
    assert sent.currency == "EUR"


@pytest.mark.parametrize(
    "written",
    ["18/08/2030 20:00", "2030-08-18 20:00:00", "18/08/2030 20:00:00"],
)
def test_send_reads_the_scheduled_date_as_either_page_writes_it(provider, smsp, written):
    provider.answer("send", _json({**SENT, "scheduledDeliveryDate": written}))

    sent = smsp.send_sms(["+33612345678"], "hello")

    assert sent.message_id == 307
    assert sent.scheduled_at == datetime(2030, 8, 18, 20, 0, tzinfo=PROVIDER_TZ)


@pytest.mark.parametrize(
    "changes",
    [
        {"message_id": None, "id": 307},
        {"message_id": "three hundred and seven"},
        {"message_id": [307]},
        {"cost": "cheap"},
        {"nb_sms": "one"},
        {"scheduledDeliveryDate": "soon"},
    ],
    ids=["no-id", "id-words", "id-list", "cost-words", "count-words", "date-words"],
)
def test_an_unreadable_send_answer_is_an_error_that_keeps_the_raw_body(provider, smsp, changes):
    body = {**SENT, **changes}
    body = {key: value for key, value in body.items() if value is not None}
    provider.answer("send", _json(body))

    with pytest.raises(SmspResponseError) as caught:
        smsp.send_sms(["+33612345678"], "hello")

    error = caught.value
    assert error.endpoint == "send" and error.http_status == 200
    assert json.loads(error.raw_body) == body, "the id can still be found in the raw answer"
    assert "may have been" in str(error), "the message says the send may have happened"
    assert provider.calls("send") == 1, "a send is never retried"


# -- success: "true", 1, or code 200 alone ----------------------------------------------------


@pytest.mark.parametrize("success", ["true", "TRUE", 1, "1", True])
def test_success_given_as_text_or_number_is_success(provider, smsp, success):
    provider.answer("stop-sms/add", _json({"success": success, "code": 200, "stopId": 300}))
    provider.answer("stop-sms/list", _list([_entry(19)], success=success, nbData=1))

    added = smsp.add_stop("+33612345678")

    assert (added.status, added.code, added.stop_id) == (MutationStatus.APPLIED, 200, 300)
    assert [entry.id for entry in smsp.list_stops()] == [19]


@pytest.mark.parametrize("code", [200, "200"])
def test_code_200_without_success_is_success(provider, smsp, code):
    provider.answer("stop-sms/add", _json({"code": code, "stopId": 300}))
    provider.answer("stop-sms/delete", _json({"code": code}))

    assert smsp.add_stop("+33612345678").status is MutationStatus.APPLIED
    assert smsp.delete_stop(300).status is MutationStatus.APPLIED


@pytest.mark.parametrize("success", [False, "false", 0])
def test_code_200_with_success_false_is_an_unreadable_answer(provider, smsp, success):
    provider.answer("stop-sms/add", _json({"success": success, "code": 200, "stopId": 300}))

    with pytest.raises(SmspResponseError) as caught:
        smsp.add_stop("+33612345678")

    assert '"stopId": 300' in caught.value.raw_body


@pytest.mark.parametrize("success", ["false", 0, "0"])
def test_failure_given_as_text_or_number_is_a_coded_error(provider, smsp, success):
    provider.answer("stop-sms/add", _json({"success": success, "code": 3, "message": "already"}))

    assert smsp.add_stop("+33612345678").status is MutationStatus.ALREADY_DONE


# -- the stop list: never silently short -------------------------------------------------------

LISTS = ("list_stops", "list_stop_records", "download_stop_list")


def _read(smsp: SmspClient, method: str, folder) -> list:
    """The list through ``method``; for the extract's streamed download, the entries DuckDB
    read from the file, once the client has confirmed what it counted."""
    if method != "download_stop_list":
        return getattr(smsp, method)()
    listed = smsp.download_stop_list(folder / "list.json")
    with staging(Warehouse.at(folder / "read.duckdb")) as stage:
        raw = stage.load(listed.path)
        smsp.confirm_stop_list(
            listed, entries=raw.entries, first_not_an_object=raw.first_not_an_object
        )
        sent = stage.raw_entries(range(raw.entries))
    return [json.loads(sent[position]) for position in sorted(sent)]


@pytest.mark.parametrize("method", LISTS)
@pytest.mark.parametrize(
    "answer",
    [
        _list([_entry(1), _entry(2)], nbData=3),
        _list([_entry(1), _entry(2)], nbData="3"),
        _list([_entry(1), _entry(2), _entry(3)], nbData=2),
        _list({"0": _entry(1)}, nbData=2),
        _list(None, nbData=2),
        _json({"success": True, "code": 200, "nbData": 2}),
        _list([_entry(1)], nbData="many"),
        _list(None),
        _list(None, nbData=None),
        _json({"success": True, "code": 200}),
    ],
    ids=[
        "fewer",
        "fewer-count-as-text",
        "more",
        "object-fewer",
        "null",
        "missing",
        "bad-count",
        # An answer that says nothing about the list is not taken for an empty list.
        "null-no-count",
        "null-null-count",
        "nothing",
    ],
)
def test_a_list_that_disagrees_with_its_count_is_an_error(provider, smsp, method, answer, tmp_path):
    provider.answer("stop-sms/list", answer)

    with pytest.raises(SmspResponseError) as caught:
        _read(smsp, method, tmp_path)

    assert caught.value.endpoint == "stop-sms/list"
    sent = json.loads(answer[1])
    if method == "download_stop_list" and isinstance(sent.get("data"), list):
        sent.pop("data")  # left in the file: the error keeps the envelope
    assert json.loads(caught.value.raw_body) == sent


@pytest.mark.parametrize("method", LISTS)
def test_data_given_as_an_object_is_read_in_its_order(provider, smsp, method, tmp_path):
    provider.answer("stop-sms/list", _list({"0": _entry(7), "2": _entry(5)}, nbData=2))

    listed = _read(smsp, method, tmp_path)

    ids = [item.id if method == "list_stops" else item["id"] for item in listed]
    assert ids == [7, 5]


@pytest.mark.parametrize("method", LISTS)
@pytest.mark.parametrize(
    "answer",
    [
        _list(None, nbData=0),
        _list([], nbData=0),
        _list({}, nbData="0"),
        _list([]),
        _list({}),
        _json({"success": True, "code": 200, "nbData": 0}),
    ],
    ids=["null-0", "empty-0", "object-0", "empty-no-count", "object-no-count", "missing-0"],
)
def test_an_empty_list_may_come_in_several_shapes(provider, smsp, method, answer, tmp_path):
    provider.answer("stop-sms/list", answer)

    assert _read(smsp, method, tmp_path) == []


@pytest.mark.parametrize("method", LISTS)
@pytest.mark.parametrize(
    "data", [[_entry(1), 2], [_entry(1), None], ["+33611110001"], "x", 3], ids=repr
)
def test_entries_that_are_not_objects_are_an_error(provider, smsp, method, data, tmp_path):
    provider.answer("stop-sms/list", _list(data))

    with pytest.raises(SmspResponseError) as caught:
        _read(smsp, method, tmp_path)

    assert caught.value.raw_body is not None


@pytest.mark.parametrize(
    "entry",
    [
        {"id": "x", "phoneNumber": "+33611110001", "createdAt": "2025-03-01 12:00:00"},
        {"id": None, "phoneNumber": "+33611110001", "createdAt": "2025-03-01 12:00:00"},
        {"phoneNumber": "+33611110001", "createdAt": "2025-03-01 12:00:00"},
        {"id": 1, "phoneNumber": None, "createdAt": "2025-03-01 12:00:00"},
        {"id": 1, "createdAt": "2025-03-01 12:00:00"},
    ],
    ids=["id-words", "id-null", "no-id", "number-null", "no-number"],
)
def test_a_typed_list_refuses_entries_without_id_or_number(provider, smsp, entry):
    provider.answer("stop-sms/list", _list([entry], nbData=1))

    with pytest.raises(SmspResponseError) as caught:
        smsp.list_stops()

    assert json.loads(caught.value.raw_body)["data"] == [entry]
    assert smsp.list_stop_records() == [entry], "the raw records go to the extract as sent"


def test_ids_given_as_text_are_read(provider, smsp):
    provider.answer("stop-sms/list", _list([_entry("19"), _entry(20.0)], nbData="2"))

    assert [entry.id for entry in smsp.list_stops()] == [19, 20]


# -- one bad createdAt does not fail the list ---------------------------------------------------

BAD_TIMES = ["0000-00-00 00:00:00", "2025-03-01T12:00:00+01:00", "", "yesterday"]


@pytest.mark.parametrize("created", BAD_TIMES)
def test_an_unreadable_opt_out_time_does_not_fail_the_list(client, emulator, created, tmp_path):
    emulator.state.seed_entries(
        [("+33611111111", "2025-03-01 12:00:00"), ("+33622222222", created)]
    )

    good, bad = client.list_stops()
    records = client.list_stop_records()

    assert good.created_at == datetime(2025, 3, 1, 12, 0, tzinfo=PROVIDER_TZ)
    assert (bad.phone_number, bad.created_at) == ("+33622222222", None)
    assert [record["createdAt"] for record in records] == ["2025-03-01 12:00:00", created]
    extraction = extract_stop_list(
        client, Warehouse.at(tmp_path / "w.duckdb"), run_id="bad-time", max_shrink_share=0.2
    )
    report = extraction.report
    assert report.failing_rows == 1, "the extract's validation reports that row"
    assert set(report.failure_cases["row"]) == {1}
    assert repr(created) in report.failure_cases["provider_entry"].iloc[0], "as sent"
    assert not extraction.published


@pytest.mark.parametrize("created", [None, 20250301, {"date": "2025-03-01 12:00:00"}], ids=repr)
def test_an_opt_out_time_that_is_not_text_does_not_fail_the_list(provider, smsp, created):
    provider.answer("stop-sms/list", _list([_entry(1), _entry(2, created=created)], nbData=2))

    good, bad = smsp.list_stops()

    assert good.created_at is not None
    assert (bad.id, bad.created_at) == (2, None)
    assert smsp.list_stop_records()[1]["createdAt"] == created


def _delete_plan(client: SmspClient, tmp_path, number: str):
    evidence = {"consent_at": "2026-01-15T10:00:00Z", "consent_source": "web form #1"}
    return _run(Delete(confirm=False), PhoneValues([number], evidence), client, tmp_path)


def _run(operation, source, client: SmspClient, tmp_path):
    """``operation`` on ``source`` with ``client``, into a warehouse file in ``tmp_path``."""
    return run_operation(
        operation,
        source,
        RunContext(
            client=client,
            warehouse=Warehouse.at(tmp_path / "warehouse.duckdb"),
            run_id="boundary",
            job="test",
        ),
    )


UNREADABLE_OPT_OUT = "the provider's opt-out time is unreadable: the opt-out stands"


@pytest.mark.parametrize("created", BAD_TIMES)
def test_delete_refuses_an_entry_whose_opt_out_time_is_unreadable(
    client, emulator, tmp_path, created
):
    emulator.state.seed_entries(
        [("+33611111111", created), ("+33622222222", "2025-03-01 12:00:00")]
    )

    report = _delete_plan(client, tmp_path, "+33611111111")

    assert (report.counts["refused"], report.counts["planned"]) == (1, 0)
    [row] = report.unsent.to_dict("records")
    assert (row["target"], row["outcome"]) == ("+33611111111", Outcome.REFUSED)
    assert row["reason"] == UNREADABLE_OPT_OUT
    assert emulator.state.stop_count() == 2


def test_delete_refuses_an_entry_whose_opt_out_time_is_null(provider, smsp, tmp_path):
    entries = [_entry(1, "+33611111111", None), _entry(2, "+33622222222")]
    provider.answer("stop-sms/list", _list(entries, nbData=2))

    report = _delete_plan(smsp, tmp_path, "+33611111111")

    assert (report.counts["refused"], report.counts["planned"]) == (1, 0)
    assert report.unsent["reason"].tolist() == [UNREADABLE_OPT_OUT]
    assert provider.calls("stop-sms/delete") == 0


def test_delete_still_plans_an_entry_with_a_readable_time_beside_an_unreadable_one(
    client, emulator, tmp_path
):
    emulator.state.seed_entries(
        [("+33611111111", "0000-00-00 00:00:00"), ("+33622222222", "2025-03-01 12:00:00")]
    )

    report = _delete_plan(client, tmp_path, "+33622222222")

    assert (report.counts["refused"], report.counts["planned"]) == (0, 1)


# -- an unreadable stopId fails its row, not the bulk run --------------------------------------


def _adds(stop_ids: dict[str, Any]) -> Handler:
    def answer(request: dict[str, Any]) -> Answer:
        number = request["json"]["phoneNumber"]
        return _json({"success": True, "code": 200, "stopId": stop_ids[number]})

    return answer


def test_an_unreadable_stop_id_fails_that_row_not_the_bulk_run(provider, smsp):
    stop_ids = {"+33611111111": 300, "+33622222222": "n/a", "+33633333333": "302"}
    provider.answer("stop-sms/add", _adds(stop_ids))

    results = {result.target: result for result in smsp.bulk_add(list(stop_ids))}

    assert set(results) == set(stop_ids), "every row has an outcome"
    assert (results["+33611111111"].status, results["+33611111111"].stop_id) == (
        MutationStatus.APPLIED,
        300,
    )
    assert results["+33633333333"].stop_id == 302, "an id given as text is read"
    unreadable = results["+33622222222"]
    assert unreadable.status is MutationStatus.FAILED
    assert unreadable.stop_id is None
    assert "unreadable" in unreadable.message and "may have been applied" in unreadable.message
    assert '"stopId": "n/a"' in unreadable.message, "the raw answer is kept"
    audited = AuditEntry.from_result(unreadable, "file.csv", 3)
    assert audited.outcome is Outcome.FAILED, "the next run re-checks the list"
    assert audited.provider_message == unreadable.message
    assert provider.calls("stop-sms/add") == 3, "an applied add is not sent again"


@pytest.mark.parametrize("stop_id", ["n/a", "3.5", [300], {"id": 300}, True, -1], ids=repr)
def test_add_stop_with_an_unreadable_stop_id_raises_a_response_error(provider, smsp, stop_id):
    provider.answer("stop-sms/add", _adds({"+33611111111": stop_id}))

    with pytest.raises(SmspResponseError) as caught:
        smsp.add_stop("+33611111111")

    assert caught.value.endpoint == "stop-sms/add"
    assert json.loads(caught.value.raw_body)["stopId"] == stop_id
    assert provider.calls("stop-sms/add") == 1


@pytest.mark.parametrize("stop_id", [None, 300.0, " 300 "], ids=repr)
def test_add_stop_reads_stop_ids_that_are_missing_or_text(provider, smsp, stop_id):
    provider.answer("stop-sms/add", _adds({"+33611111111": stop_id}))

    added = smsp.add_stop("+33611111111")

    assert added.status is MutationStatus.APPLIED
    assert added.stop_id == (None if stop_id is None else 300)


# -- other endpoints, other shapes --------------------------------------------------------------


def test_the_add_page_sample_without_a_comma_is_an_unreadable_answer(provider, smsp):
    provider.answer("stop-sms/add", (200, b'{"success": true, "code": 200\n"stopId": 300}'))

    results = list(smsp.bulk_add(["+33611111111"]))

    assert [r.status for r in results] == [MutationStatus.FAILED]
    assert '"stopId": 300' in results[0].message


@pytest.mark.parametrize(
    "changes",
    [{"date": "07/02/2015 22:39"}, {"cost": "cher"}, {"date": 5}, {"stopSms": "peut-être"}],
    ids=["french-date", "cost-words", "date-number", "stop-words"],
)
def test_message_status_shapes_become_response_errors(provider, smsp, changes):
    status = {
        "success": True,
        "code": 200,
        "number": "0600000000",
        "messageId": "1111",
        "date": "2015-02-07 22:39:46",
        "statut": "Delivered",
        "cost": 0.045,
    }
    provider.answer("message-status", _json({**status, **changes}))

    with pytest.raises(SmspResponseError) as caught:
        smsp.message_status(1111, "0600000000")

    assert json.loads(caught.value.raw_body) == {**status, **changes}


@pytest.mark.parametrize("date", [None, "", "0000-00-00 00:00:00"])
def test_message_status_reads_text_numbers_and_missing_dates(provider, smsp, date):
    answer = {"success": "true", "code": 200, "date": date, "cost": "0,045", "statut": "Waiting"}
    provider.answer("message-status", _json({**answer, "stopSms": 0, "messageId": None}))

    status = smsp.message_status(1111, "0600000000")

    assert (status.date, status.cost, status.status) == (None, 0.045, "Waiting")
    assert (status.message_id, status.stop_sms) == ("1111", False)


def test_account_reads_the_go_sdks_spelling_and_numbers_as_text(provider, smsp):
    credits = {"creditSms": "12", "creditSmsLowCost": "3,5", "creditHlr": None, "balance": 10.5}
    provider.answer("me", _json({"success": True, "code": 200, "user": None, "credits": credits}))

    account = smsp.account()

    assert account.username is None
    assert (account.credits.credit_sms, account.credits.credit_sms_eco) == (12.0, 3.5)
    assert (account.credits.credit_hlr, account.credits.balance) == (0.0, "10.5")


@pytest.mark.parametrize("credits", [{"creditSms": "lots"}, "none", [1]], ids=repr)
def test_unreadable_credits_are_a_response_error(provider, smsp, credits):
    provider.answer("me", _json({"success": True, "code": 200, "credits": credits}))

    with pytest.raises(SmspResponseError):
        smsp.account()


@pytest.mark.parametrize(
    "answer",
    [
        (502, b"<html><body>502 Bad Gateway</body></html>"),
        (200, b""),
        (200, b'<br /><b>Notice</b>: undefined index\n{"success": true}'),
        (200, b"[1, 2]"),
        (200, b'{"message": "no code, no success"}'),
        (200, b"\xff\xfe not utf-8"),
    ],
    ids=["html-502", "empty", "php-notice", "json-list", "no-code", "binary"],
)
@pytest.mark.parametrize("call", ["list_stops", "add_stop", "delete_stop", "send"])
def test_bodies_that_are_not_json_answers_are_response_errors(provider, smsp, answer, call):
    for endpoint in ("stop-sms/list", "stop-sms/add", "stop-sms/delete", "send"):
        provider.answer(endpoint, answer)
    calls = {
        "list_stops": smsp.list_stops,
        "add_stop": lambda: smsp.add_stop("+33611111111"),
        "delete_stop": lambda: smsp.delete_stop(1),
        "send": lambda: smsp.send_sms(["+33611111111"], "x"),
    }

    with pytest.raises(SmspError) as caught:
        calls[call]()

    error = caught.value
    if answer[0] == 502 and call != "send":
        assert isinstance(error, SmspTransportError), "a 5xx of an idempotent call is retried"
    else:
        assert isinstance(error, SmspResponseError)
        assert error.raw_body == answer[1].decode("utf-8", "replace")


# -- the key never shows, and prose is never mangled --------------------------------------------


def test_a_short_loopback_key_does_not_mangle_error_messages():
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    with (
        SmspClient("x", base_url=base_url, retry=QUICK) as short,
        pytest.raises(SmspTransportError) as caught,
    ):
        short.list_stops()

    message = str(caught.value)
    assert "Max retries exceeded" in message, message
    assert "apiKey=***" in message
    assert "apiKey=x" not in message


@pytest.mark.parametrize("key", ["x", "dev", "1234567"])
def test_keys_too_short_to_redact_are_refused_except_for_loopback(key):
    with pytest.raises(SmspConfigurationError, match="8 characters"):
        SmspClient(key, base_url="https://api.smspartner.fr/v1")
    with SmspClient(key, base_url="http://127.0.0.1:8787/v1") as local:
        assert local.base_url == "http://127.0.0.1:8787/v1"
    with SmspClient(key, base_url="http://localhost:8787/v1"):
        pass


def test_an_eight_character_key_is_accepted_anywhere():
    with SmspClient("abcd1234", base_url="https://api.smspartner.fr/v1") as remote:
        assert "abcd1234" not in repr(remote)


@pytest.mark.parametrize(
    "template",
    [
        "http://10.0.0.5:8787/{key}/v1",
        "http://user:{key}@10.0.0.5/v1",
        "http://{key}@10.0.0.5/v1",
        "http://10.0.0.5/v1?apiKey={key}",
        "ftp://127.0.0.1/{key}",
    ],
)
def test_a_refused_base_url_is_not_echoed_with_its_key(template):
    with pytest.raises(SmspConfigurationError) as caught:
        SmspClient(API_KEY, base_url=template.format(key=API_KEY))

    assert API_KEY not in str(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.1:{port}/{key}/v1",
        "http://user:{key}@127.0.0.1:{port}/v1",
        "http://{key}@127.0.0.1:{port}/v1",
    ],
)
def test_a_key_in_the_base_url_is_never_echoed(template):
    base_url = template.format(key=API_KEY, port=_closed_port())
    with (
        SmspClient(API_KEY, base_url=base_url, retry=QUICK) as smsp,
        pytest.raises(SmspTransportError) as caught,
    ):
        assert API_KEY not in repr(smsp)
        smsp.list_stops()

    assert API_KEY not in str(caught.value)
    assert API_KEY not in repr(caught.value)


def test_a_body_echoing_the_key_is_kept_redacted(provider, smsp):
    echo = (
        f"<html>proxy error for {provider.base_url}/{API_KEY}/stop-sms/add\n"
        f'X-Api-Key: {API_KEY}\nquery: apiKey%3D{API_KEY}%26x=1 body: {{"key": "{API_KEY}"}}'
    )
    provider.answer("stop-sms/add", (200, echo.encode()))

    with pytest.raises(SmspResponseError) as caught:
        smsp.add_stop("+33611111111")

    for text in (str(caught.value), repr(caught.value), caught.value.raw_body):
        assert API_KEY not in text
    assert "proxy error for" in caught.value.raw_body


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        (
            "Max retries exceeded with url: /v1/list?apiKey=x",
            "x",
            "Max retries exceeded with url: /v1/list?apiKey=***",
        ),
        (
            "Max retries exceeded with url: /v1/x/list",
            "x",
            "Max retries exceeded with url: /v1/***/list",
        ),
        ("GET /v1/x?apiKey=x&id=1", "x", "GET /v1/***?apiKey=***&id=1"),
        ("https://u:x@host/v1", "x", "https://u:***@host/v1"),
        ("https://x@host/v1", "x", "https://***@host/v1"),
        (
            '{"apiKey": "x", "phone": "+33611111111"}',
            "x",
            '{"apiKey": "***", "phone": "+33611111111"}',
        ),
        ("X-Api-Key: x\r\nAccept: */*", "x", "X-Api-Key: ***\r\nAccept: */*"),
        ("deviance, devices, dev-ops and a dev", "dev", "deviance, devices, dev-ops and a ***"),
        ("key=s3cr3t%2Bk3y", "s3cr3t+k3y", "key=***"),
        ("key=s3cr3t+k3y and s3cr3t+k3y", "s3cr3t+k3y", "key=*** and ***"),
        ("the key abcd1234 and abcd12345", "abcd1234", "the key *** and abcd12345"),
    ],
)
def test_redaction_masks_the_keys_occurrences_not_its_substrings(text, secret, expected):
    assert redact(text, secret) == expected


@pytest.mark.parametrize(
    "odd",
    [
        {"id": "x", "phoneNumber": "+33611110001"},
        {"id": None, "phoneNumber": "+33611110001"},
        {"phoneNumber": "+33611110001"},
        {"id": 7, "phoneNumber": None},
        {"id": 7, "phoneNumber": ""},
        {"id": 7, "phoneNumber": True},
        {"id": -7, "phoneNumber": "+33611110001"},
        {"id": 7.5, "phoneNumber": "+33611110001"},
    ],
    ids=repr,
)
def test_a_deletion_plan_refuses_a_list_with_any_unreadable_entry(provider, smsp, tmp_path, odd):
    """The list is read by DuckDB and only the plan's numbers come back to Python: an entry
    elsewhere in the list that has no readable id or number still refuses the whole plan, as
    reading every entry did."""
    entries = [_entry(1, "+33611111111"), {**odd, "createdAt": "2025-03-01 12:00:00"}]
    provider.answer("stop-sms/list", _list(entries, nbData=2))

    with pytest.raises(SmspResponseError, match=r"#1.*cannot be read"):
        _delete_plan(smsp, tmp_path, "+33611111111")

    assert provider.calls("stop-sms/delete") == 0


def test_a_deletion_reads_ids_given_as_text_or_whole_floats(provider, smsp, tmp_path):
    entries = [_entry("19", "+33611111111"), _entry(20.0, "+33622222222"), _entry(21)]
    provider.answer("stop-sms/list", _list(entries, nbData=3))
    provider.answer("stop-sms/delete", _json({"success": True, "code": 200}))
    evidence = {"consent_at": "2026-01-15T10:00:00Z", "consent_source": "web form #1"}

    report = _run(Delete(confirm=True), PhoneValues(["+33622222222"], evidence), smsp, tmp_path)

    assert report.summary.deleted == 1
    [call] = [r for r in provider.requests if r["endpoint"] == "stop-sms/delete"]
    assert int((call["json"] or call["query"])["id"]) == 20


def _push_dry_run(client: SmspClient, tmp_path, numbers: list[str]):
    return _run(Push(dry_run=True), PhoneValues(numbers), client, tmp_path)


@pytest.mark.parametrize(
    "odd",
    [{"id": 2, "phoneNumber": 1e16}, {"id": 2.5e3, "phoneNumber": "+33622222222"}, {}],
    ids=repr,
)
def test_a_push_finds_listed_numbers_beside_entries_the_fast_reading_may_misread(
    provider, smsp, tmp_path, odd
):
    """A push scans the list's numbers in one pass of fields read as text; an entry whose text
    may read otherwise than its JSON sends the list to the whole JSON reading instead, which
    must find the same numbers. (A number a push looks for is JSON text, read alike both ways:
    what this guards is the fallback's own answer; the refusal below guards the guard.)"""
    entries = [_entry(1, "+33611111111"), odd]
    provider.answer("stop-sms/list", _list(entries, nbData=2))

    report = _push_dry_run(smsp, tmp_path, ["+33611111111", "+33633333333"])

    assert (report.summary.already_on_list, report.summary.to_add) == (1, 1)


def test_a_push_refuses_a_list_with_an_entry_that_is_not_an_object(provider, smsp, tmp_path):
    provider.answer("stop-sms/list", _list([_entry(1, "+33611111111"), None], nbData=2))

    with pytest.raises(SmspResponseError, match="not an object"):
        _push_dry_run(smsp, tmp_path, ["+33633333333"])

    assert provider.calls("stop-sms/add") == 0


REPEATED_KEY = (
    '{"success": true, "code": 200, "nbData": 2, "data": ['
    '{"id": 1, "phoneNumber": "+33611111111", "phoneNumber": "+33622222222"},'
    '{"id": 2, "phoneNumber": "+33633333333"}]}'
)


def _read_the_list(operation: str, smsp: SmspClient, tmp_path) -> None:
    """Read the provider's list as ``operation`` does (nothing is sent: a dry run's plan)."""
    if operation == "push":
        _push_dry_run(smsp, tmp_path, ["+33611111111"])
    elif operation == "delete":
        _delete_plan(smsp, tmp_path, "+33611111111")
    elif operation == "extract":
        extract_stop_list(
            smsp, Warehouse.at(tmp_path / "w.duckdb"), run_id="read", max_shrink_share=0.2
        )
    else:
        smsp.list_stops()


@pytest.mark.parametrize("operation", ["push", "delete", "extract"])
def test_a_list_whose_entry_repeats_a_key_is_refused_by_every_reader(
    provider, smsp, tmp_path, operation
):
    """DuckDB reads the first of a repeated key, Python's json the last: which number is
    listed would depend on the reader (a push could skip a number never listed), so no
    reader acts on such a list."""
    provider.answer("stop-sms/list", (200, REPEATED_KEY.encode()))

    with pytest.raises(SmspResponseError, match=r"#0.*repeats the key 'phoneNumber'"):
        _read_the_list(operation, smsp, tmp_path)

    assert provider.calls("stop-sms/add") == provider.calls("stop-sms/delete") == 0


REPEATED_KEY_IN_AN_OBJECT = (
    '{"success": true, "code": 200, "nbData": 2, "data": {"0":'
    '{"id": 1, "phoneNumber": "+33611111111", "phoneNumber": "+33622222222"},'
    '"3": {"id": 2, "phoneNumber": "+33633333333"}}}'
)


@pytest.mark.parametrize("operation", ["push", "delete", "extract", "stops list"])
def test_a_repeated_key_is_refused_where_the_whole_answer_is_decoded(
    provider, smsp, tmp_path, operation
):
    """``data`` as a JSON object (a PHP array with gaps) is decoded whole, as is every list
    that ``smsp stops list`` shows: Python's json keeps the last of a repeated key, silently,
    so the answer is refused there too, before anything is planned or shown."""
    provider.answer("stop-sms/list", (200, REPEATED_KEY_IN_AN_OBJECT.encode()))

    with pytest.raises(SmspResponseError, match=r"repeats the key 'phoneNumber'"):
        _read_the_list(operation, smsp, tmp_path)

    assert provider.calls("stop-sms/add") == provider.calls("stop-sms/delete") == 0


@pytest.mark.parametrize("operation", ["push", "delete", "extract", "stops list"])
def test_an_answer_decoded_whole_with_text_that_is_not_unicode_is_refused(
    provider, smsp, tmp_path, operation
):
    """JSON may escape a lone surrogate ("\\udcff"), which Python's json decodes and nothing
    can store or print (DuckDB's reader refuses it in the list it reads from disk): refused
    where the answer is decoded whole too, before anything is planned or shown."""
    body = REPEATED_KEY_IN_AN_OBJECT.replace('"phoneNumber": "+33622222222"', '"x": "\\udcff"')
    provider.answer("stop-sms/list", (200, body.encode()))

    with pytest.raises(SmspResponseError, match="not Unicode"):
        _read_the_list(operation, smsp, tmp_path)

    assert provider.calls("stop-sms/add") == provider.calls("stop-sms/delete") == 0


@pytest.mark.parametrize(
    "entry",
    ['{"id": 2, "phoneNumber": "+3363333333\\udcff"}', '{"id": 2, "phoneNumber": +33633}'],
    ids=["lone surrogate", "stray token"],
)
@pytest.mark.parametrize("operation", ["push", "delete", "extract"])
def test_a_list_on_disk_that_is_not_json_is_refused_as_unreadable(
    provider, smsp, tmp_path, operation, entry
):
    """An entry DuckDB's JSON reader cannot read is a list the client cannot read: the same
    SmspResponseError as any unreadable answer (it was DuckDB's InvalidInputException, naming
    a temporary file), before anything is planned."""
    body = (
        '{"success": true, "code": 200, "nbData": 2, "data": ['
        f'{{"id": 1, "phoneNumber": "+33611111111"}}, {entry}]}}'
    )
    provider.answer("stop-sms/list", (200, body.encode()))

    with pytest.raises(SmspResponseError, match=r"not JSON: .*at byte") as refused:
        _read_the_list(operation, smsp, tmp_path)

    assert "stop_list.json" not in str(refused.value)
    assert provider.calls("stop-sms/add") == provider.calls("stop-sms/delete") == 0


def test_a_list_decoded_whole_keeps_its_entries_when_no_key_repeats(provider, smsp):
    provider.answer(
        "stop-sms/list",
        (
            200,
            REPEATED_KEY_IN_AN_OBJECT.replace(
                '"phoneNumber": "+33622222222"', '"createdAt": null'
            ).encode(),
        ),
    )

    assert [(e.id, e.phone_number) for e in smsp.list_stops()] == [
        (1, "+33611111111"),
        (2, "+33633333333"),
    ]
