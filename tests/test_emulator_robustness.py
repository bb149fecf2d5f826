"""The emulator under hostile, odd and edge-of-calendar input: never an HTTP 500, the provider's
coded errors instead, UTC decisions across Paris clock changes, the pages' own texts, no key in
a redirect, overseas French numbers, and a fuzz run against the published OpenAPI document."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import schemathesis
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from lxml import etree
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from smsp_connector.cli import main
from smsp_connector.emulator import PARIS, EmulatorServer, FaultSettings

from .conftest import API_KEY
from .test_emulator_cli import SECRET, run_emulator, stop

DEEP = 100_000
TOO_LATE = (
    "Il n'est pas possible d'annuler l'envoi d'un SMS si celui-ci doit être envoyé "
    "dans moins de 5 minutes."
)


def get(server: EmulatorServer, endpoint: str, **params: Any) -> requests.Response:
    params.setdefault("apiKey", API_KEY)
    return requests.get(f"{server.base_url}/{endpoint}", params=params, timeout=10)


def post(server: EmulatorServer, endpoint: str, body: Any) -> requests.Response:
    return requests.post(f"{server.base_url}/{endpoint}", json=body, timeout=10)


def post_raw(url: str, raw: str | bytes) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    return requests.post(url, data=raw, headers=headers, timeout=30)


def control(server: EmulatorServer, what: str, body: Any = None) -> requests.Response:
    url = f"{server.url}/_emulator/{what}"
    if body is None:
        return requests.get(url, timeout=10)
    raw = body if isinstance(body, str) else json.dumps(body)
    return post_raw(url, raw)


def assert_error(response: requests.Response, code: int, message: str, status: int = 200) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"success": False, "code": code, "message": message}


def assert_control_refused(response: requests.Response, *words: str) -> None:
    """HTTP 400 with a reason (an `error` text) naming what was wrong."""
    assert response.status_code == 400, response.text
    reason = response.json()["error"]
    assert isinstance(reason, str) and reason
    for word in words:
        assert word in reason, reason


def set_clock(server: EmulatorServer, paris_wall_time: str) -> str:
    response = control(server, "clock", {"now": paris_wall_time})
    assert response.status_code == 200, response.text
    return response.json()["now"]


def schedule(server: EmulatorServer, day: str, hour: int, minute: int) -> dict[str, Any]:
    body = {
        "apiKey": API_KEY,
        "phoneNumbers": "0612345678",
        "message": "Hello",
        "scheduledDeliveryDate": day,
        "time": hour,
        "minute": minute,
    }
    return post(server, "send", body).json()


def nested(depth: int, leaf: str = "") -> str:
    return "[" * depth + leaf + "]" * depth


# -- 1. never an HTTP 500 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        nested(DEEP),
        "{" + '"a":{' * DEEP + "}" * DEEP + "}",
        f'{{"apiKey": "{API_KEY}", "phoneNumber": {nested(DEEP, "1")}}}',
    ],
    ids=["array", "object", "inside-an-object"],
)
@pytest.mark.parametrize("endpoint", ["stop-sms/add", "send"])
def test_json_nested_100000_deep_is_a_malformed_body(
    emulator: EmulatorServer, endpoint: str, raw: str
) -> None:
    response = post_raw(f"{emulator.base_url}/{endpoint}", raw)
    assert_error(response, 9, "Malformed JSON body", status=400)
    assert emulator.state.stop_count() == 0 and emulator.state.messages == []


@pytest.mark.parametrize("what", ["seed", "faults", "clock"])
def test_json_nested_100000_deep_to_a_control_endpoint_is_a_400(
    emulator: EmulatorServer, what: str
) -> None:
    assert_control_refused(control(emulator, what, nested(DEEP)), "JSON")
    assert control(emulator, "faults").json() == FaultSettings().as_dict()


@pytest.mark.parametrize("field", ["sandbox", "isUnicode", "_format", "gamme", "tag", "sender"])
def test_a_deep_but_parsable_value_is_not_a_500(emulator: EmulatorServer, field: str) -> None:
    """Nesting the JSON parser accepts (a few hundred levels) must not break a handler that
    turns a value into text."""
    body = f'{{"apiKey": "{API_KEY}", "phoneNumbers": "0612345678", "message": "Hi", '
    body += f'"{field}": {nested(900)}}}'
    response = post_raw(f"{emulator.base_url}/send", body)
    assert response.status_code < 500, response.text
    assert response.json()["success"] in (True, False)


@pytest.mark.parametrize(("hour", "minute"), [(24, 0), (23, 55)])
def test_send_scheduled_in_year_9999_is_a_coded_error_or_accepted(
    emulator: EmulatorServer, hour: int, minute: int
) -> None:
    document = schedule(emulator, "31/12/9999", hour, minute)
    if (hour, minute) == (24, 0):  # 10000-01-01: no calendar can hold it
        assert document["success"] is False and document["code"] == 9
        assert [e["elementId"] for e in document["errors"]] == [
            "children[scheduledDeliveryDate].data"
        ]
        assert emulator.state.messages == []
    else:
        assert document["success"] is True
        assert document["scheduledDeliveryDate"] == "9999-12-31 23:55:00"
        status = get(
            emulator, "message-status", messageId=document["message_id"], phoneNumber="0612345678"
        )
        assert status.json()["statut"] == "Waiting"
        cancel = get(emulator, "message-cancel", messageId=document["message_id"])
        assert cancel.json()["success"] is True


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"rate_limit": 1e-9}', "rate_limit"),
        ('{"rate_limit": 0}', "rate_limit"),
        ('{"rate_limit": 1e300}', "rate_limit"),
        ('{"rate_limit": Infinity}', "rate_limit"),
        ('{"rate_limit": "fast"}', "rate_limit"),
        ('{"rate_limit": true}', "rate_limit"),
        ('{"latency_ms": Infinity}', "latency_ms"),
        ('{"latency_ms": NaN}', "latency_ms"),
        ('{"latency_ms": 1e300}', "latency_ms"),
        ('{"latency_ms": -1}', "latency_ms"),
        ('{"latency_ms": [1]}', "latency_ms"),
        ('{"fail_rate": true}', "fail_rate"),
        ('{"fail_rate": NaN}', "fail_rate"),
        ('{"reset_rate": "0.5"}', "reset_rate"),
        ('{"error_status": 400.5}', "error_status"),
        ('{"error_status": "400"}', "error_status"),
        ('{"error_status": true}', "error_status"),
    ],
)
def test_fault_settings_out_of_range_are_a_400_with_a_reason(
    emulator: EmulatorServer, raw: str, field: str
) -> None:
    assert_control_refused(control(emulator, "faults", raw), field)
    assert control(emulator, "faults").json() == FaultSettings().as_dict()
    assert get(emulator, "me").json()["success"] is True


@pytest.mark.parametrize(
    "body",
    [
        '{"advance_seconds": 1e30}',
        '{"advance_seconds": -1e30}',
        '{"advance_seconds": 1e13}',
        '{"advance_seconds": -1e11}',
        '{"advance_seconds": Infinity}',
        '{"advance_seconds": NaN}',
        '{"now": "9999-12-31 23:59:59"}',
        '{"now": "0001-01-01 00:00:00"}',
        '{"now": ["2030-01-01 00:00:00"]}',
    ],
)
def test_clock_moves_out_of_range_are_a_400_with_a_reason(
    emulator: EmulatorServer, body: str
) -> None:
    before = emulator.state.clock.now()
    assert_control_refused(control(emulator, "clock", body))
    assert abs(emulator.state.clock.now() - before) < timedelta(minutes=1), "clock unchanged"
    assert control(emulator, "clock").status_code == 200
    assert get(emulator, "me").json()["success"] is True


def test_many_small_advances_cannot_push_the_clock_off_the_calendar(
    emulator: EmulatorServer,
) -> None:
    step = {"advance_seconds": 9e10}  # about 2,850 years
    answers = [control(emulator, "clock", step).status_code for _ in range(4)]
    assert answers[:2] == [200, 200] and answers[-1] == 400
    assert get(emulator, "me").json()["success"] is True
    assert control(emulator, "clock").status_code == 200


def test_a_demo_size_beyond_the_generator_is_a_400(emulator: EmulatorServer) -> None:
    assert_control_refused(control(emulator, "seed", {"demo_size": 10**12}), "demo_size")
    assert emulator.state.stop_count() == 0


# -- 2. decisions on UTC instants across the Paris clock changes ---------------------------------


def test_cancel_two_real_minutes_before_a_send_across_the_spring_change_is_too_late(
    emulator: EmulatorServer,
) -> None:
    # 01:58 CET is 00:58 UTC; 03:00 CEST is 01:00 UTC: two minutes, though the wall says 62.
    assert set_clock(emulator, "2026-03-29 01:58:00").startswith("2026-03-29 01:58")
    document = schedule(emulator, "29/03/2026", 3, 0)
    assert document["scheduledDeliveryDate"] == "2026-03-29 03:00:00"
    response = get(emulator, "message-cancel", messageId=document["message_id"])
    assert_error(response, 6, TOO_LATE)
    assert emulator.state.get_message(document["message_id"]).cancelled_at is None


def test_cancel_twelve_real_minutes_before_a_send_across_the_spring_change_works(
    emulator: EmulatorServer,
) -> None:
    set_clock(emulator, "2026-03-29 01:58:00")
    document = schedule(emulator, "29/03/2026", 3, 10)
    assert get(emulator, "message-cancel", messageId=document["message_id"]).json()["code"] == 200


def test_a_send_at_a_skipped_spring_time_is_the_instant_after_the_gap(
    emulator: EmulatorServer,
) -> None:
    # 02:30 does not exist on 2026-03-29: read as 01:30 UTC (03:30 CEST), 25 minutes after a
    # clock at 03:05 CEST, so in the future.
    set_clock(emulator, "2026-03-29 03:05:00")
    document = schedule(emulator, "29/03/2026", 2, 30)
    assert document["success"] is True, document
    assert document["scheduledDeliveryDate"] == "2026-03-29 03:30:00"
    scheduled = emulator.state.get_message(document["message_id"]).scheduled_at
    assert scheduled is not None
    assert scheduled.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_cancel_an_hour_before_a_send_across_the_autumn_change_works(
    emulator: EmulatorServer,
) -> None:
    # 02:58 CEST (first pass) is 00:58 UTC; 03:00 CET is 02:00 UTC: 62 minutes, the wall says 2.
    set_clock(emulator, "2026-10-25 02:58:00")
    document = schedule(emulator, "25/10/2026", 3, 0)
    response = get(emulator, "message-cancel", messageId=document["message_id"])
    assert response.json()["code"] == 200, response.text


def test_a_send_due_in_the_repeated_autumn_hour_goes_on_its_first_pass(
    emulator: EmulatorServer,
) -> None:
    # The clock starts at 02:00 CEST (00:00 UTC); the send at 02:30 is the first 02:30 (00:30
    # UTC). 70 minutes later the wall shows 02:10 again (CET, 01:10 UTC): the send is gone.
    set_clock(emulator, "2026-10-25 02:00:00")
    document = schedule(emulator, "25/10/2026", 2, 30)
    assert document["success"] is True, document
    moved = control(emulator, "clock", {"advance_seconds": 70 * 60}).json()["now"]
    assert moved.startswith("2026-10-25 02:10")
    status = get(
        emulator, "message-status", messageId=document["message_id"], phoneNumber="0612345678"
    )
    assert status.json()["statut"] == "Delivered"
    response = get(emulator, "message-cancel", messageId=document["message_id"])
    assert response.json()["code"] == 7, response.text
    assert get(emulator, "me").json()["credits"]["toSend"] == 0


def test_a_send_at_an_autumn_wall_time_already_passed_once_is_in_the_past(
    emulator: EmulatorServer,
) -> None:
    # At 02:50 CET (second pass, 01:50 UTC), 02:55 reads as its first pass (00:55 UTC): past.
    set_clock(emulator, "2026-10-25 02:50:00")
    control(emulator, "clock", {"advance_seconds": 3600})
    document = schedule(emulator, "25/10/2026", 2, 55)
    assert document["success"] is False and document["code"] == 9, document
    assert [e["elementId"] for e in document["errors"]] == ["children[scheduledDeliveryDate].data"]


# -- 3. the pages' texts, a language switch, forced codes ----------------------------------------


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"apiKey": "", "messageId": "1"}, 1, "La Clé API est requise"),
        ({"apiKey": "nope", "messageId": "1"}, 10, "Clé API incorrecte"),
        ({}, 3, "L'ID du message est requis"),
        ({"messageId": "424242"}, 4, "Message introuvable"),
    ],
)
def test_cancel_answers_in_french_as_its_page(
    emulator: EmulatorServer, params: dict[str, str], code: int, message: str
) -> None:
    assert_error(get(emulator, "message-cancel", **params), code, message)


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"apiKey": ""}, 1, "API Key is required"),
        ({"apiKey": "nope", "id": "1"}, 10, "Incorrect API Key"),
        ({}, 3, "L\u2019ID number is required"),
        ({"id": "999999"}, 4, "L\u2019ID number not found."),
    ],
)
def test_delete_answers_as_its_page_writes_them(
    emulator: EmulatorServer, params: dict[str, str], code: int, message: str
) -> None:
    assert_error(get(emulator, "stop-sms/delete", **params), code, message)


@pytest.fixture(scope="module")
def servers_by_language() -> Iterator[dict[str, EmulatorServer]]:
    with (
        EmulatorServer(api_key=API_KEY, lang="fr") as french,
        EmulatorServer(api_key=API_KEY, lang="en") as english,
    ):
        yield {"fr": french, "en": english}


@pytest.mark.parametrize(
    ("lang", "endpoint", "params", "code", "message"),
    [
        ("fr", "stop-sms/list", {"apiKey": ""}, 1, "La Clé API est requise"),
        ("fr", "stop-sms/list", {"apiKey": "nope"}, 10, "Clé API incorrecte"),
        ("fr", "message-cancel", {"apiKey": "nope"}, 10, "Clé API incorrecte"),
        ("fr", "stop-sms/delete", {"apiKey": "nope"}, 10, "Clé API incorrecte"),
        ("fr", "me", {"apiKey": "nope"}, 10, "Clé API incorrecte"),
        ("en", "stop-sms/list", {"apiKey": "nope"}, 10, "Invalid API key"),
        ("en", "message-cancel", {"apiKey": ""}, 1, "API key is required"),
        ("en", "message-cancel", {"apiKey": "nope"}, 10, "Invalid API key"),
        ("en", "message-cancel", {"messageId": "424242"}, 4, "Message not found"),
        ("en", "stop-sms/delete", {"id": "999999"}, 4, "ID number not found."),
    ],
)
def test_the_language_switch(
    servers_by_language: dict[str, EmulatorServer],
    lang: str,
    endpoint: str,
    params: dict[str, str],
    code: int,
    message: str,
) -> None:
    assert_error(get(servers_by_language[lang], endpoint, **params), code, message)


def test_the_default_language_is_each_pages_own(emulator: EmulatorServer) -> None:
    assert_error(get(emulator, "stop-sms/list", apiKey="nope"), 10, "Invalid API key")
    assert_error(get(emulator, "message-cancel", apiKey="nope"), 10, "Clé API incorrecte")
    body = {"apiKey": "nope", "phoneNumber": "0612345678"}
    assert_error(post(emulator, "stop-sms/add", body), 10, "Invalid API key")


def test_cancel_success_message_follows_the_language(
    emulator: EmulatorServer, servers_by_language: dict[str, EmulatorServer]
) -> None:
    texts = {}
    for lang, server in [("page", emulator), *servers_by_language.items()]:
        server.state.clock.reset()
        due = (server.state.clock.now() + timedelta(hours=2)).astimezone(PARIS)
        document = schedule(server, due.strftime("%d/%m/%Y"), due.hour, 0)
        texts[lang] = get(server, "message-cancel", messageId=document["message_id"]).json()
    assert texts["page"]["message"] == texts["fr"]["message"] == "L'envoi du SMS a été annulé."
    assert texts["en"]["success"] is True and texts["en"]["message"] != texts["fr"]["message"]


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="lang"):
        EmulatorServer(api_key=API_KEY, lang="de")


def test_the_lang_option_is_offered_and_checked() -> None:
    runner = CliRunner()
    assert "--lang" in runner.invoke(main, ["emulator", "--help"]).output
    result = runner.invoke(main, ["emulator", "--api-key", "k", "--lang", "de"])
    assert result.exit_code == 2


@pytest.mark.parametrize(("option", "value"), [("--latency-ms", "inf"), ("--rate-limit", "1e-9")])
def test_fault_options_out_of_range_are_usage_errors(option: str, value: str) -> None:
    result = CliRunner().invoke(main, ["emulator", "--api-key", "k", option, value])
    assert result.exit_code == 2 and option.strip("-").replace("-", "_") in result.output


@pytest.mark.slow  # an emulator subprocess
def test_smsp_emulator_lang_fr_answers_the_list_in_french() -> None:
    with run_emulator("--lang", "fr") as running:
        url = f"{running.base_url}/stop-sms/list"
        response = requests.get(url, params={"apiKey": "nope"}, timeout=10)
        assert response.json() == {"success": False, "code": 10, "message": "Clé API incorrecte"}
        response = requests.get(url, params={"apiKey": SECRET}, timeout=10)
        assert response.json()["success"] is True
        stop(running, signal.SIGTERM)


def test_cancel_code_11_can_be_forced(emulator: EmulatorServer) -> None:
    due = (emulator.state.clock.now() + timedelta(hours=2)).astimezone(PARIS)
    message_id = schedule(emulator, due.strftime("%d/%m/%Y"), due.hour, 0)["message_id"]
    settings = control(emulator, "faults", {"force_code": {"message-cancel": 11}})
    assert settings.status_code == 200 and settings.json()["force_code"] == {"message-cancel": 11}
    assert_error(get(emulator, "message-cancel", messageId=message_id), 11, "Manque de crédits")
    assert emulator.state.get_message(message_id).cancelled_at is None, "nothing changed"
    # Authentication comes first, and other endpoints are not affected.
    assert get(emulator, "message-cancel", apiKey="nope").json()["code"] == 10
    assert get(emulator, "me").json()["success"] is True
    assert emulator.stats()["endpoints"]["message-cancel"]["code:11"] == 1
    control(emulator, "faults", {"force_code": {}})
    assert get(emulator, "message-cancel", messageId=message_id).json()["code"] == 200


def test_delete_code_2_can_be_forced_and_honours_error_status(emulator: EmulatorServer) -> None:
    stop_id = emulator.state.add_stop("0612345678")
    control(emulator, "faults", {"force_code": {"stop-sms/delete": 2}, "error_status": 400})
    response = get(emulator, "stop-sms/delete", id=stop_id)
    assert_error(response, 2, "Phone number is required", status=400)
    assert emulator.state.stop_count() == 1
    emulator.reset()
    assert emulator.faults.force_code == {}


def test_forced_codes_from_python() -> None:
    settings = FaultSettings(force_code={"message-cancel": 11})
    assert settings.as_dict()["force_code"] == {"message-cancel": 11}
    with pytest.raises(ValueError, match="force_code"):
        FaultSettings(force_code={"stop-sms/delete": 11})


@pytest.mark.parametrize(
    "force_code",
    [
        {"nowhere": 11},
        {"stop-sms/delete": 11},
        {"message-cancel": 200},
        {"message-cancel": "11"},
        {"message-cancel": True},
        ["message-cancel", 11],
    ],
)
def test_a_force_code_that_the_endpoint_does_not_document_is_a_400(
    emulator: EmulatorServer, force_code: object
) -> None:
    assert_control_refused(control(emulator, "faults", {"force_code": force_code}), "force_code")
    assert control(emulator, "faults").json()["force_code"] == {}


# -- 4. api keys of the wrong type, ids in other digits, redirects, overseas numbers -------------


@pytest.mark.parametrize("key", [[API_KEY], {"key": API_KEY}, True, False, [], {}])
def test_an_api_key_that_is_not_text_is_code_10(emulator: EmulatorServer, key: object) -> None:
    response = post(emulator, "stop-sms/add", {"apiKey": key, "phoneNumber": "0612345678"})
    assert_error(response, 10, "Invalid API key")
    body = {"apiKey": key, "phoneNumbers": "0612345678", "message": "Hi"}
    assert post(emulator, "send", body).json()["code"] == 10
    assert emulator.state.stop_count() == 0 and emulator.state.messages == []


def _digits(number: int, zero: str) -> str:
    return "".join(chr(ord(zero) + int(d)) for d in str(number))


@pytest.mark.parametrize(
    "spell",
    [
        lambda n: _digits(n, "\u0660"),  # Arabic-Indic
        lambda n: _digits(n, "\uff10"),  # fullwidth
        lambda n: _digits(n, "\u0966"),  # Devanagari
        lambda n: f"{str(n)[:1]}_{str(n)[1:]}",  # Python's digit separator
    ],
    ids=["arabic-indic", "fullwidth", "devanagari", "underscore"],
)
def test_an_id_in_other_digits_deletes_nothing(emulator: EmulatorServer, spell: Any) -> None:
    stop_id = emulator.state.add_stop("0698765432")
    assert_error(
        get(emulator, "stop-sms/delete", id=spell(stop_id)), 4, "L\u2019ID number not found."
    )
    assert [e.id for e in emulator.state.stop_entries()] == [stop_id]
    due = (emulator.state.clock.now() + timedelta(hours=2)).astimezone(PARIS)
    message_id = schedule(emulator, due.strftime("%d/%m/%Y"), due.hour, 0)["message_id"]
    cancel = get(emulator, "message-cancel", messageId=spell(message_id))
    assert_error(cancel, 4, "Message introuvable")
    status = get(emulator, "message-status", messageId=spell(message_id), phoneNumber="0612345678")
    assert status.json()["code"] == 4
    assert emulator.state.get_message(message_id).cancelled_at is None


@pytest.mark.parametrize(
    ("field", "value"), [("time", "\u0661\u0660"), ("minute", "\uff13\uff10"), ("time", "9" * 5000)]
)
def test_send_time_fields_take_ascii_digits_only(
    emulator: EmulatorServer, field: str, value: str
) -> None:
    due = (emulator.state.clock.now() + timedelta(days=2)).astimezone(PARIS)
    body = {
        "apiKey": API_KEY,
        "phoneNumbers": "0612345678",
        "message": "Hello",
        "scheduledDeliveryDate": due.strftime("%d/%m/%Y"),
        "time": 10,
        "minute": 30,
        field: value,
    }
    document = post(emulator, "send", body).json()
    assert document["code"] == 9
    assert [e["elementId"] for e in document["errors"]] == [f"children[{field}].data"]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_trailing_slash_redirect_does_not_echo_the_api_key(
    emulator: EmulatorServer, method: str
) -> None:
    endpoint = "stop-sms/list" if method == "GET" else "stop-sms/add"
    response = requests.request(
        method,
        f"{emulator.base_url}/{endpoint}/",
        params={"apiKey": API_KEY, "_format": "xml"},
        json={"phoneNumber": "0612345678"} if method == "POST" else None,
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 307
    location = urlsplit(response.headers["location"])
    assert location.path == f"/v1/{endpoint}"
    assert parse_qs(location.query) == {"_format": ["xml"]}
    assert API_KEY not in json.dumps(dict(response.headers)) and API_KEY not in response.text
    assert emulator.state.stop_count() == 0


@pytest.mark.parametrize(
    ("national", "e164"),
    [
        ("0692123456", "+262692123456"),  # Réunion
        ("0690123456", "+590690123456"),  # Guadeloupe
        ("0696123456", "+596696123456"),  # Martinique
        ("0694123456", "+594694123456"),  # French Guiana
    ],
)
def test_overseas_french_numbers_in_national_form_are_accepted(
    emulator: EmulatorServer, national: str, e164: str
) -> None:
    added = post(emulator, "stop-sms/add", {"apiKey": API_KEY, "phoneNumber": national})
    assert added.json()["success"] is True, added.text
    assert [e.phone_number for e in emulator.state.stop_entries()] == [e164]
    again = post(emulator, "stop-sms/add", {"apiKey": API_KEY, "phoneNumber": e164})
    assert_error(again, 3, "Number is already in stop list")
    # The metropolitan reading of the same digits is no number at all.
    wrong = post(emulator, "stop-sms/add", {"apiKey": API_KEY, "phoneNumber": "+33" + national[1:]})
    assert_error(wrong, 9, "Invalid phone number")


def test_an_overseas_number_can_be_sent_to_and_queried(emulator: EmulatorServer) -> None:
    body = {"apiKey": API_KEY, "phoneNumbers": "0692123456", "message": "Hello"}
    message_id = post(emulator, "send", body).json()["message_id"]
    status = get(emulator, "message-status", messageId=message_id, phoneNumber="0692123456").json()
    assert (status["success"], status["countryCode"]) == (True, "RE")


def test_xml_answers_survive_text_xml_cannot_hold(emulator: EmulatorServer) -> None:
    body = {"apiKey": API_KEY, "phoneNumbers": "0612345678,06\x0112\ud800", "message": "Hi"}
    response = requests.post(
        f"{emulator.base_url}/send", params={"_format": "xml"}, json=body, timeout=10
    )
    assert response.status_code == 200 and response.text.startswith("<?xml")
    emulator.state.seed_entries([("+33\x0b612", "2020-01-01 00:00:00")])
    assert get(emulator, "stop-sms/list", _format="xml").status_code == 200


# -- 5. the published OpenAPI document, and a fuzz run against it --------------------------------

V1_OPERATIONS = [
    ("GET", "/stop-sms/list"),
    ("POST", "/stop-sms/add"),
    ("GET", "/stop-sms/delete"),
    ("POST", "/send"),
    ("GET", "/message-cancel"),
    ("GET", "/message-status"),
    ("GET", "/me"),
]


@pytest.mark.heavy
def test_the_openapi_document_lists_every_v1_endpoint(emulator: EmulatorServer) -> None:
    response = control(emulator, "openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": "/v1"}]
    served = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    assert served == set(V1_OPERATIONS)
    assert API_KEY not in response.text
    schema = schemathesis.openapi.from_url(f"{emulator.url}/_emulator/openapi.json")
    schema.validate()  # against the OpenAPI 3 meta-schema
    for method, path in V1_OPERATIONS:
        parameters = {p["name"] for p in schema[path][method].definition.raw.get("parameters", [])}
        assert {"apiKey", "_format"} <= parameters


def test_documented_answers_match_what_the_emulator_sends(emulator: EmulatorServer) -> None:
    """A few hand-made calls checked against the document, so the fuzz run is not the only
    guard of its response shapes."""

    schema = schemathesis.openapi.from_url(f"{emulator.url}/_emulator/openapi.json")
    stop_id = emulator.state.add_stop("0611111111")
    due = (emulator.state.clock.now() + timedelta(hours=2)).astimezone(PARIS)
    message_id = schedule(emulator, due.strftime("%d/%m/%Y"), due.hour, 0)["message_id"]
    calls = [
        ("GET", "/stop-sms/list", {}, None),
        ("GET", "/stop-sms/list", {"_format": "xml"}, None),
        ("GET", "/stop-sms/list", {"apiKey": "nope"}, None),
        ("POST", "/stop-sms/add", {}, {"apiKey": API_KEY, "phoneNumber": "0698765432"}),
        ("POST", "/stop-sms/add", {}, {"apiKey": API_KEY, "phoneNumber": "0612"}),
        ("GET", "/message-status", {"messageId": message_id, "phoneNumber": "0612345678"}, None),
        ("GET", "/message-cancel", {"messageId": message_id}, None),
        ("GET", "/stop-sms/delete", {"id": stop_id}, None),
        ("POST", "/send", {}, {"apiKey": API_KEY, "phoneNumbers": "0612"}),
        ("POST", "/send", {}, {"apiKey": API_KEY, "phoneNumbers": "0612345678", "message": "x"}),
        ("GET", "/me", {}, None),
    ]
    for method, path, query, body in calls:
        query = {"apiKey": API_KEY, **query} if body is None else query
        operation = schema[path][method]
        case = operation.Case(query=query) if body is None else operation.Case(body=body)
        response = case.call(base_url=emulator.base_url)
        case.validate_response(response, checks=FUZZ_CHECKS)
    # What fault injection adds is documented too: 4xx coded errors, 429, 500 and 503.
    me = schema["/me"]["GET"].Case(query={"apiKey": "nope"})
    for faults, status in [
        (FaultSettings(error_status=400), {400}),
        (FaultSettings(rate_limit=0.001), {200, 429}),
        (FaultSettings(fail_rate=1.0), {500, 503}),
    ]:
        emulator.faults = faults
        statuses = set()
        for _ in range(4):
            response = me.call(base_url=emulator.base_url)
            me.validate_response(response, checks=DOCUMENT_CHECKS)
            statuses.add(response.status_code)
        assert statuses <= status and statuses & (status - {200})


def xml_answer_is_positional(ctx: Any, response: Any, case: Any) -> bool | None:
    """The document cannot describe the positional XML form; check it here: well-formed,
    `<result>` of unnamed `<entry>` elements, `success` then `code` first."""
    content_type = response.headers.get("content-type", [""])[0]
    if not content_type.startswith("application/xml"):
        return None
    root = etree.fromstring(response.content)
    assert root.tag == "result", root.tag
    assert all(child.tag == "entry" for child in root.iter() if child is not root)
    assert root[0].text in ("true", "false") and (root[1].text or "").isdigit()
    return True


DOCUMENT_CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    xml_answer_is_positional,
]
"""What every answer must meet: a documented status, media type, headers and body shape."""
FUZZ_CHECKS = [not_a_server_error, *DOCUMENT_CHECKS]
FUZZ_EXAMPLES = 24
"""Generated requests per endpoint and generation mode: 7 x 2 x 24 = 336 in total."""
VALID_NUMBERS = [None, "+33612345678", "06 98 76 54 32", "0692123456", "+4915112345678"]
"""Generated numbers are hardly ever valid: some cases get one of these (None: keep it)."""
KNOWN_IDS = [None, 1000, 1001, 5000, 5001]
"""Stop ids of the fuzz emulator's seed and ids of its scheduled messages (None: keep it)."""


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[tuple[EmulatorServer, Any]]:
    with EmulatorServer(api_key=API_KEY, random_seed=5) as server:
        server.state.seed_entries([("+33612345678", "2024-01-01 00:00:00"), ("0612", "x")])
        later = server.state.clock.now() + timedelta(days=30)
        for number in ("+33698765432", "+33611111111"):
            server.state.send([number], "Hello", scheduled_at=later.replace(second=0))
        yield server, schemathesis.openapi.from_url(f"{server.url}/_emulator/openapi.json")


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize(("method", "path"), V1_OPERATIONS)
def test_fuzz_the_provider_api_against_its_document(
    fuzz_target: tuple[EmulatorServer, Any], method: str, path: str, mode: str
) -> None:

    server, schema = fuzz_target
    strategy = schema[path][method].as_strategy(generation_mode=GenerationMode(mode))
    sent: list[int] = []
    session = requests.Session()

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=strategy,
        with_key=st.booleans(),
        number=st.sampled_from(VALID_NUMBERS),
        known_id=st.sampled_from(KNOWN_IDS),
    )
    def fuzz(case: Any, with_key: bool, number: str | None, known_id: int | None) -> None:
        fields = case.body if isinstance(case.body, dict) else case.query
        if fields is None:
            fields = case.query = {}
        if with_key:  # half the cases get past authentication
            fields["apiKey"] = API_KEY
        for names, value in (
            (("phoneNumber", "phoneNumbers"), number),
            (("id", "messageId"), known_id),
        ):
            for name in names:
                if value is not None and name in fields:
                    fields[name] = value
        response = case.call(base_url=server.base_url, session=session, timeout=10)
        sent.append(response.status_code)
        case.validate_response(response, checks=FUZZ_CHECKS)

    fuzz()
    # Bounded by examples, not seconds: a loaded machine takes longer, never tests less.
    assert len(sent) == FUZZ_EXAMPLES, len(sent)
    assert all(status < 500 for status in sent)
