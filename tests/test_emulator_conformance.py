"""The emulator against the provider's documented answers: shapes, codes, messages, XML form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
import pytest
import requests
from lxml import etree

from smsp_connector.emulator import PARIS, EmulatorServer, EmulatorState, FaultSettings
from smsp_connector.emulator.errors import AlreadyInStopList, NotFound, ValidationFailed

API_KEY = "conformance-key-0123456789"
WIRE_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")

STOP_ITEM_SHAPE = [("id", int), ("phoneNumber", str), ("createdAt", str)]
CANCELLED = "L'envoi du SMS a été annulé."
# The delete page's own words: English, with French fragments and typographic apostrophes.
ID_REQUIRED = "L\u2019ID number is required"
ID_NOT_FOUND = "L\u2019ID number not found."


def get(server: EmulatorServer, endpoint: str, **params: Any) -> requests.Response:
    params.setdefault("apiKey", API_KEY)
    return requests.get(f"{server.base_url}/{endpoint}", params=params, timeout=10)


def post(server: EmulatorServer, endpoint: str, body: Any, **params: Any) -> requests.Response:
    return requests.post(f"{server.base_url}/{endpoint}", json=body, params=params, timeout=10)


def add(server: EmulatorServer, phone: str) -> requests.Response:
    return post(server, "stop-sms/add", {"apiKey": API_KEY, "phoneNumber": phone})


def send(server: EmulatorServer, **fields: Any) -> requests.Response:
    body = {"apiKey": API_KEY, "phoneNumbers": "0612345678", "message": "Hello", **fields}
    return post(server, "send", body)


def assert_shape(document: dict[str, Any], shape: list[tuple[str, type]]) -> None:
    """Same keys, in the same order, with values of the given types (a bool is no int here)."""
    assert list(document) == [key for key, _ in shape]
    for key, expected in shape:
        value = document[key]
        assert isinstance(value, expected), f"{key}: {value!r} is not {expected}"
        assert expected is bool or not isinstance(value, bool), f"{key}: {value!r} is a bool"


def xml_tree(response: requests.Response) -> list[Any]:
    """The positional structure of a provider XML answer.

    Each `<entry>` becomes the list of its children, or a leaf `("cdata"|"text", value)`.
    """
    assert response.headers["content-type"] == "application/xml"
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = etree.fromstring(response.content, etree.XMLParser(strip_cdata=False))
    assert root.tag == "result"
    return [_xml_node(child) for child in root]


def _xml_node(element: etree._Element) -> Any:
    assert element.tag == "entry"
    if len(element):
        return [_xml_node(child) for child in element]
    raw = etree.tostring(element, encoding="unicode", with_tail=False)
    return ("cdata" if "<![CDATA[" in raw else "text", element.text or "")


def assert_error(response: requests.Response, status: int, code: int, message: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"success": False, "code": code, "message": message}
    assert list(response.json()) == ["success", "code", "message"]


@pytest.fixture(scope="module")
def running() -> Iterator[EmulatorServer]:
    with EmulatorServer(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def server(running: EmulatorServer) -> EmulatorServer:
    running.reset()
    return running


@pytest.fixture(params=[200, 400], ids=["errors-http-200", "errors-http-400"])
def error_status(request: pytest.FixtureRequest, server: EmulatorServer) -> int:
    server.faults = FaultSettings(error_status=request.param)
    return request.param


def schedule(server: EmulatorServer, minutes_ahead: int) -> int:
    """A deferred send due `minutes_ahead` minutes after a clock set to 2030-03-01 12:00."""
    server.state.clock.set(datetime(2030, 3, 1, 12, 0))
    due = datetime(2030, 3, 1, 12, 0) + timedelta(minutes=minutes_ahead)
    response = send(
        server,
        scheduledDeliveryDate=due.strftime("%d/%m/%Y"),
        time=due.hour,
        minute=due.minute,
    )
    assert response.json()["success"] is True, response.text
    return response.json()["message_id"]


# -- stop-sms/list ------------------------------------------------------------------------------


def test_list_json_matches_the_documented_example(server: EmulatorServer) -> None:
    server.state.seed_entries([("+33612345678", "2015-07-20 10:19:45"), ("+33698765432", "x")])
    response = get(server, "stop-sms/list")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert_shape(document, [("success", bool), ("code", int), ("nbData", int), ("data", list)])
    assert document["success"] is True and document["code"] == 200 and document["nbData"] == 2
    for item in document["data"]:
        assert_shape(item, STOP_ITEM_SHAPE)
    first, second = document["data"]
    assert first["phoneNumber"] == "+33612345678"
    assert first["createdAt"] == "2015-07-20 10:19:45"
    assert second["id"] > first["id"] >= 1000


def test_list_xml_matches_the_documented_sample(server: EmulatorServer) -> None:
    server.state.seed_entries([("+33612345678", "2015-07-20 10:19:45")])
    (entry,) = server.state.stop_entries()
    response = get(server, "stop-sms/list", _format="xml")
    assert response.status_code == 200
    assert xml_tree(response) == [
        ("text", "true"),
        ("text", "200"),
        ("text", "1"),
        [[("text", str(entry.id)), ("cdata", "+33612345678"), ("cdata", "2015-07-20 10:19:45")]],
    ]


def test_list_serves_malformed_seeded_data_verbatim(server: EmulatorServer) -> None:
    server.state.seed_entries([("0612", "2020-01-01 00:00:00"), ("+33 6 12", "not a date")])
    data = get(server, "stop-sms/list").json()["data"]
    assert [(d["phoneNumber"], d["createdAt"]) for d in data] == [
        ("0612", "2020-01-01 00:00:00"),
        ("+33 6 12", "not a date"),
    ]


def test_list_is_in_id_order_and_follows_changes(server: EmulatorServer) -> None:
    ids = [add(server, phone).json()["stopId"] for phone in ("0612345678", "0698765432")]
    assert get(server, "stop-sms/list").json()["nbData"] == 2
    get(server, "stop-sms/delete", id=ids[0])
    data = get(server, "stop-sms/list").json()["data"]
    assert [d["id"] for d in data] == [ids[1]]


@pytest.mark.heavy
def test_large_list_is_served_whole_in_id_order(server: EmulatorServer) -> None:
    """One answer with every entry (how fast: benchmarks/emulator_bench.py, 1,000,000 entries)."""
    size = 200_000
    server.state.seed_entries((f"+3361{i:07d}", "2024-01-01 00:00:00") for i in range(size))
    document = get(server, "stop-sms/list").json()
    assert document["nbData"] == len(document["data"]) == size
    ids = [d["id"] for d in document["data"]]
    assert ids == list(range(ids[0], ids[0] + size)), "consecutive ids, in seeding order"
    assert document["data"][-1]["phoneNumber"] == f"+3361{size - 1:07d}"


# -- stop-sms/add -------------------------------------------------------------------------------


def test_add_json_and_xml_answers(server: EmulatorServer) -> None:
    response = add(server, "+33612345678")
    assert response.status_code == 200
    assert_shape(response.json(), [("success", bool), ("code", int), ("stopId", int)])
    assert response.json()["code"] == 200
    xml = post(
        server, "stop-sms/add", {"apiKey": API_KEY, "phoneNumber": "0698765432"}, _format="xml"
    )
    assert xml_tree(xml) == [("text", "true"), ("text", "200"), ("text", str(xml_stop_id(server)))]


def xml_stop_id(server: EmulatorServer) -> int:
    return server.state.stop_id_for("+33698765432") or -1


def test_national_and_international_forms_are_the_same_entry(server: EmulatorServer) -> None:
    first = add(server, "06 12 34 56 78").json()
    assert first["success"] is True
    assert_error(add(server, "+33612345678"), 200, 3, "Number is already in stop list")
    (entry,) = server.state.stop_entries()
    assert (entry.id, entry.phone_number) == (first["stopId"], "+33612345678")
    assert server.state.has_number("+33612345678")


def test_add_accepts_the_phone_numbers_spelling_and_foreign_numbers(server: EmulatorServer) -> None:
    body = {"apiKey": API_KEY, "phoneNumbers": "0612345678"}
    assert post(server, "stop-sms/add", body).json()["success"] is True
    assert add(server, "+4915112345678").json()["success"] is True
    assert [e.phone_number for e in server.state.stop_entries()] == [
        "+33612345678",
        "+4915112345678",
    ]


def test_add_accepts_the_api_key_in_the_query_string(server: EmulatorServer) -> None:
    response = post(server, "stop-sms/add", {"phoneNumber": "0612345678"}, apiKey=API_KEY)
    assert response.json()["success"] is True


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"phoneNumber": "0612345678"}, 1, "API key is required"),
        ({"apiKey": "", "phoneNumber": "0612345678"}, 1, "API key is required"),
        ({"apiKey": "wrong", "phoneNumber": "0612345678"}, 10, "Invalid API key"),
        ({"apiKey": API_KEY}, 2, "Phone number is required"),
        ({"apiKey": API_KEY, "phoneNumber": "  "}, 2, "Phone number is required"),
        ({"apiKey": API_KEY, "phoneNumber": "0612"}, 9, "Invalid phone number"),
        ({"apiKey": API_KEY, "phoneNumber": "not a number"}, 9, "Invalid phone number"),
        ({"apiKey": API_KEY, "phoneNumber": "0712345678"}, 9, "Invalid phone number"),
        ({"apiKey": API_KEY, "phoneNumber": ["0612345678"]}, 9, "Invalid phone number"),
    ],
)
def test_add_errors(
    server: EmulatorServer, error_status: int, body: dict[str, object], code: int, message: str
) -> None:
    assert_error(post(server, "stop-sms/add", body), error_status, code, message)
    assert server.state.stop_count() == 0


def test_add_duplicate_is_code_3_without_change(server: EmulatorServer, error_status: int) -> None:
    stop_id = add(server, "0612345678").json()["stopId"]
    assert_error(add(server, "0612345678"), error_status, 3, "Number is already in stop list")
    assert [e.id for e in server.state.stop_entries()] == [stop_id]


def test_xml_error_answer(server: EmulatorServer) -> None:
    response = get(server, "stop-sms/list", apiKey="wrong", _format="xml")
    assert xml_tree(response) == [("text", "false"), ("text", "10"), ("cdata", "Invalid API key")]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_malformed_json_body_is_a_clear_400(server: EmulatorServer, raw: bytes) -> None:
    response = requests.post(
        f"{server.base_url}/stop-sms/add",
        data=raw,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert_error(response, 400, 9, "Malformed JSON body")


def test_json_body_without_content_type_is_read(server: EmulatorServer) -> None:
    # The provider's PHP sample posts JSON text with curl's default form content type.
    response = requests.post(
        f"{server.base_url}/stop-sms/add",
        data=f'{{"apiKey": "{API_KEY}", "phoneNumber": "0612345678"}}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert response.json()["success"] is True


# -- stop-sms/delete ----------------------------------------------------------------------------


def test_delete_answers(server: EmulatorServer) -> None:
    stop_id = add(server, "0612345678").json()["stopId"]
    response = get(server, "stop-sms/delete", id=stop_id)
    assert response.json() == {"success": True, "code": 200}
    assert list(response.json()) == ["success", "code"]
    assert server.state.stop_count() == 0
    other = add(server, "0612345678").json()["stopId"]
    xml = get(server, "stop-sms/delete", id=other, _format="xml")
    assert xml_tree(xml) == [("text", "true"), ("text", "200")]


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({}, 3, ID_REQUIRED),
        ({"id": ""}, 3, ID_REQUIRED),
        ({"id": "999999"}, 4, ID_NOT_FOUND),
        ({"id": "abc"}, 4, ID_NOT_FOUND),
        ({"apiKey": ""}, 1, "API Key is required"),
        ({"apiKey": "wrong", "id": "1"}, 10, "Incorrect API Key"),
    ],
)
def test_delete_errors(
    server: EmulatorServer, error_status: int, params: dict[str, str], code: int, message: str
) -> None:
    assert_error(get(server, "stop-sms/delete", **params), error_status, code, message)


def test_delete_twice_is_not_found(server: EmulatorServer, error_status: int) -> None:
    stop_id = add(server, "0612345678").json()["stopId"]
    assert get(server, "stop-sms/delete", id=stop_id).json()["success"] is True
    assert_error(get(server, "stop-sms/delete", id=stop_id), error_status, 4, ID_NOT_FOUND)


def test_ids_are_never_reused(server: EmulatorServer) -> None:
    first = add(server, "0612345678").json()["stopId"]
    get(server, "stop-sms/delete", id=first)
    second = add(server, "0612345678").json()["stopId"]
    server.reset()
    server.state.seed_entries([("+33698765432", "2020-01-01 00:00:00")])
    (seeded,) = server.state.stop_entries()
    third = add(server, "0612345678").json()["stopId"]
    assert first < second < seeded.id < third


# -- send ---------------------------------------------------------------------------------------

SEND_SHAPE = [
    ("success", bool),
    ("code", int),
    ("message_id", int),
    ("nb_sms", int),
    ("cost", float),
    ("currency", str),
]


def test_send_answer_and_credits(server: EmulatorServer) -> None:
    credits = server.state.credits
    response = send(server, phoneNumbers="0612345678,+33698765432")
    assert_shape(response.json(), SEND_SHAPE)
    document = response.json()
    assert (document["nb_sms"], document["cost"], document["currency"]) == (2, 0.09, "EUR")
    assert server.state.credits == credits - 2
    (message,) = server.state.messages
    assert message.id == document["message_id"]


def test_send_in_sandbox_uses_no_credit(server: EmulatorServer) -> None:
    credits = server.state.credits
    assert send(server, sandbox=1).json()["success"] is True
    assert server.state.credits == credits


def test_deferred_send_echoes_its_date_and_waits(server: EmulatorServer) -> None:
    message_id = schedule(server, minutes_ahead=60)
    (message,) = server.state.messages
    assert message.scheduled_at == datetime(2030, 3, 1, 13, 0, tzinfo=PARIS)
    status = get(server, "message-status", messageId=message_id, phoneNumber="0612345678").json()
    assert status["statut"] == "Waiting"
    server.state.clock.advance(timedelta(hours=2))
    status = get(server, "message-status", messageId=message_id, phoneNumber="0612345678").json()
    assert status["statut"] == "Delivered"


def test_deferred_send_answer_shape(server: EmulatorServer) -> None:
    server.state.clock.set(datetime(2030, 3, 1, 12, 0))
    response = send(server, scheduledDeliveryDate="01/03/2030", time=20, minute=0)
    assert_shape(response.json(), [*SEND_SHAPE, ("scheduledDeliveryDate", str)])
    assert response.json()["scheduledDeliveryDate"] == "2030-03-01 20:00:00"


def test_send_validation_errors_list(server: EmulatorServer, error_status: int) -> None:
    body = {"apiKey": API_KEY, "phoneNumbers": "0612345678,0612", "sender": "ab"}
    response = post(server, "send", body)
    assert response.status_code == error_status
    assert response.json() == {
        "success": False,
        "code": 9,
        "errors": [
            {"elementId": "children[phoneNumbers].data", "message": "Invalid phone number: 0612"},
            {"elementId": "children[message].data", "message": "The message is required"},
            {
                "elementId": "children[sender].data",
                "message": "The sender must contain between 3 and 11 characters",
            },
        ],
    }
    assert server.state.messages == []


def test_send_errors_list_in_xml(server: EmulatorServer) -> None:
    response = post(
        server, "send", {"apiKey": API_KEY, "phoneNumbers": "0612345678"}, _format="xml"
    )
    assert xml_tree(response) == [
        ("text", "false"),
        ("text", "9"),
        [[("cdata", "children[message].data"), ("cdata", "The message is required")]],
    ]


@pytest.mark.parametrize(
    ("fields", "element"),
    [
        ({"phoneNumbers": ",".join(["0612345678"] * 501)}, "children[phoneNumbers].data"),
        (
            {"scheduledDeliveryDate": "2030-03-01", "time": 10, "minute": 0},
            "children[scheduledDeliveryDate].data",
        ),
        ({"scheduledDeliveryDate": "01/03/2030", "minute": 0}, "children[time].data"),
        ({"scheduledDeliveryDate": "01/03/2030", "time": 25, "minute": 0}, "children[time].data"),
        ({"scheduledDeliveryDate": "01/03/2030", "time": 10}, "children[minute].data"),
        ({"scheduledDeliveryDate": "01/03/2030", "time": 10, "minute": 7}, "children[minute].data"),
        (
            {"scheduledDeliveryDate": "01/03/2000", "time": 10, "minute": 0},
            "children[scheduledDeliveryDate].data",
        ),
        ({"gamme": 3}, "children[gamme].data"),
        ({"sender": "TwelveChars!"}, "children[sender].data"),
    ],
)
def test_send_field_rules(server: EmulatorServer, fields: dict[str, object], element: str) -> None:
    document = send(server, **fields).json()
    assert document["code"] == 9
    assert [e["elementId"] for e in document["errors"]] == [element]


def test_send_without_numbers_is_code_2(server: EmulatorServer, error_status: int) -> None:
    assert_error(send(server, phoneNumbers=" , "), error_status, 2, "Phone number is required")


def test_send_without_credits_is_code_11(server: EmulatorServer, error_status: int) -> None:
    server.state.set_credits(1)
    response = send(server, phoneNumbers="0612345678,0698765432")
    assert_error(response, error_status, 11, "Not enough credits")
    assert server.state.credits == 1 and server.state.messages == []
    assert send(server, phoneNumbers="0612345678,0698765432", sandbox=1).json()["success"]


def test_send_skips_stopped_numbers_and_refuses_all_stopped(
    server: EmulatorServer, error_status: int
) -> None:
    server.state.add_stop("0612345678")
    document = send(server, phoneNumbers="0612345678,0698765432").json()
    assert (document["nb_sms"], document["cost"]) == (1, 0.045)
    stopped = get(
        server, "message-status", messageId=document["message_id"], phoneNumber="0612345678"
    )
    assert (stopped.json()["stopSms"], stopped.json()["statut"]) == (True, "Not delivered")
    response = send(server, phoneNumbers="+33612345678")
    assert_error(response, error_status, 14, "Number is in the STOP SMS list")


def test_long_and_unicode_messages_take_several_parts(server: EmulatorServer) -> None:
    assert send(server, message="x" * 161).json()["nb_sms"] == 2
    assert send(server, message="é" * 71, isUnicode=1).json()["nb_sms"] == 2
    assert send(server, message="x" * 10, gamme=2).json()["cost"] == 0.038


# -- message-cancel -----------------------------------------------------------------------------


def test_cancel_answers_in_json_and_xml(server: EmulatorServer) -> None:
    credits = server.state.credits
    message_id = schedule(server, minutes_ahead=30)
    assert server.state.credits == credits - 1
    response = get(server, "message-cancel", messageId=message_id)
    assert response.json() == {"success": True, "code": 200, "message": CANCELLED}
    assert list(response.json()) == ["success", "code", "message"]
    assert server.state.credits == credits  # refunded
    other = schedule(server, minutes_ahead=30)
    xml = get(server, "message-cancel", messageId=other, _format="xml")
    assert xml_tree(xml) == [("text", "true"), ("text", "200"), ("cdata", CANCELLED)]
    status = get(server, "message-status", messageId=message_id, phoneNumber="0612345678").json()
    assert (status["statut"], status["cost"]) == ("Cancelled", 0.0)


def test_cancel_twice_is_code_5(server: EmulatorServer, error_status: int) -> None:
    message_id = schedule(server, minutes_ahead=30)
    assert get(server, "message-cancel", messageId=message_id).json()["success"] is True
    response = get(server, "message-cancel", messageId=message_id)
    assert_error(response, error_status, 5, "L'envoi du SMS a déjà été annulé")


def test_cancel_within_5_minutes_is_code_6(server: EmulatorServer, error_status: int) -> None:
    message_id = schedule(server, minutes_ahead=30)
    server.state.clock.advance(timedelta(minutes=26))
    response = get(server, "message-cancel", messageId=message_id)
    message = (
        "Il n'est pas possible d'annuler l'envoi d'un SMS si celui-ci doit être envoyé "
        "dans moins de 5 minutes."
    )
    assert_error(response, error_status, 6, message)
    assert server.state.get_message(message_id).cancelled_at is None


def test_cancel_once_sent_is_code_7(server: EmulatorServer, error_status: int) -> None:
    message_id = schedule(server, minutes_ahead=30)
    server.state.clock.advance(timedelta(minutes=31))
    response = get(server, "message-cancel", messageId=message_id)
    assert_error(response, error_status, 7, "Le SMS a déjà été envoyé")
    immediate = send(server).json()["message_id"]
    response = get(server, "message-cancel", messageId=immediate)
    assert_error(response, error_status, 7, "Le SMS a déjà été envoyé")


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({}, 3, "L'ID du message est requis"),
        ({"messageId": "424242"}, 4, "Message introuvable"),
        ({"messageId": "x"}, 4, "Message introuvable"),
        ({"apiKey": "", "messageId": "1"}, 1, "La Clé API est requise"),
        ({"apiKey": "nope", "messageId": "1"}, 10, "Clé API incorrecte"),
    ],
)
def test_cancel_errors(
    server: EmulatorServer, error_status: int, params: dict[str, str], code: int, message: str
) -> None:
    assert_error(get(server, "message-cancel", **params), error_status, code, message)


# -- message-status -----------------------------------------------------------------------------


def test_status_answer(server: EmulatorServer) -> None:
    message_id = send(server, phoneNumbers="+33612345678").json()["message_id"]
    response = get(server, "message-status", messageId=message_id, phoneNumber="0612345678")
    assert_shape(
        response.json(),
        [
            ("success", bool),
            ("code", int),
            ("number", str),
            ("messageId", str),
            ("stopSms", bool),
            ("date", str),
            ("statut", str),
            ("cost", float),
            ("countryCode", str),
            ("currency", str),
        ],
    )
    document = response.json()
    assert document["number"] == "0612345678"
    assert document["messageId"] == str(message_id)
    assert (document["stopSms"], document["statut"], document["cost"]) == (
        False,
        "Delivered",
        0.045,
    )
    assert WIRE_TIME.match(document["date"])
    assert (document["countryCode"], document["currency"]) == ("FR", "EUR")
    xml = get(
        server, "message-status", messageId=message_id, phoneNumber="0612345678", _format="xml"
    )
    tree = xml_tree(xml)
    assert tree[:5] == [
        ("text", "true"),
        ("text", "200"),
        ("cdata", "0612345678"),
        ("cdata", str(message_id)),
        ("text", "false"),
    ]


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"messageId": "5000"}, 2, "Phone number is required"),
        ({"phoneNumber": "0612345678"}, 3, "Message ID is required"),
        ({"phoneNumber": "0612345678", "messageId": "1"}, 4, "Message not found"),
        ({"phoneNumber": "0698765432", "messageId": "{sent}"}, 4, "Message not found"),
        ({"phoneNumber": "0612", "messageId": "{sent}"}, 4, "Message not found"),
    ],
)
def test_status_errors(
    server: EmulatorServer, error_status: int, params: dict[str, str], code: int, message: str
) -> None:
    sent = send(server).json()["message_id"]
    params = {k: v.replace("{sent}", str(sent)) for k, v in params.items()}
    assert_error(get(server, "message-status", **params), error_status, code, message)


# -- me -----------------------------------------------------------------------------------------


def test_me_answer(server: EmulatorServer) -> None:
    server.state.set_credits(1000)
    schedule(server, minutes_ahead=60)
    document = get(server, "me").json()
    assert_shape(document, [("success", bool), ("code", int), ("user", dict), ("credits", dict)])
    assert_shape(document["user"], [("username", str), ("firstname", str), ("lastname", str)])
    assert_shape(
        document["credits"],
        [
            ("creditSms", int),
            ("creditSmsECO", int),
            ("creditHlr", int),
            ("toSend", int),
            ("balance", str),
            ("currency", str),
        ],
    )
    assert (document["credits"]["creditSms"], document["credits"]["toSend"]) == (999, 1)
    assert_error(get(server, "me", apiKey="nope"), 200, 10, "Invalid API key")


# -- Python state API and inspection routes -----------------------------------------------------


def test_state_api_applies_the_endpoint_rules() -> None:
    state = EmulatorState()
    stop_id = state.add_stop("06 12 34 56 78", created_at=datetime(2020, 5, 1, 8, 30))
    with pytest.raises(AlreadyInStopList):
        state.add_stop("+33612345678")
    with pytest.raises(ValidationFailed):
        state.add_stop("0612")
    (entry,) = state.stop_entries()
    assert (entry.id, entry.phone_number, entry.created_at) == (
        stop_id,
        "+33612345678",
        "2020-05-01 08:30:00",
    )
    assert entry.created_at_datetime() == datetime(2020, 5, 1, 8, 30, tzinfo=PARIS)
    state.delete_stop(stop_id)
    with pytest.raises(NotFound):
        state.delete_stop(stop_id)


@pytest.mark.heavy
def test_seed_entries_loads_a_million() -> None:
    """Every entry, in the order given (how fast: benchmarks/emulator_bench.py)."""
    state = EmulatorState()
    state.seed_entries((f"+336{i:08d}", "2024-01-01 00:00:00") for i in range(1_000_000))
    assert state.stop_count() == 1_000_000
    first, last = state.stop_id_for("+33600000000"), state.stop_id_for("+33600999999")
    assert first is not None and last == first + 999_999


def test_clock_set_and_advance() -> None:
    state = EmulatorState()
    now = state.clock.set(datetime(2030, 10, 27, 1, 0))
    assert now.tzinfo is not None and now.utcoffset() == timedelta(hours=2)
    later = state.clock.advance(timedelta(hours=3))  # across the end of summer time
    assert later.utcoffset() == timedelta(hours=1)
    assert later.replace(microsecond=0, second=0) == datetime(2030, 10, 27, 3, 0, tzinfo=PARIS)


def test_inspection_routes(server: EmulatorServer) -> None:
    url = f"{server.url}/_emulator"
    body = {"entries": [{"phoneNumber": "0612", "createdAt": "2021-01-01 00:00:00"}]}
    assert requests.post(f"{url}/seed", json=body, timeout=10).json() == {
        "added": 1,
        "stop_list_size": 1,
    }
    assert requests.post(f"{url}/seed", json={"demo_size": 20}, timeout=10).json()["added"] == 20
    numbers = [e.phone_number for e in server.state.stop_entries()[1:]]
    assert len(set(numbers)) == 20
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(n)) for n in numbers)
    assert requests.post(f"{url}/seed", json={"nothing": 1}, timeout=10).status_code == 400

    clock = requests.post(f"{url}/clock", json={"now": "2031-01-02 03:04:05"}, timeout=10).json()
    assert clock["now"].startswith("2031-01-02 03:04")
    clock = requests.post(f"{url}/clock", json={"advance_seconds": 3600}, timeout=10).json()
    assert clock["now"].startswith("2031-01-02 04:04")

    faults = requests.post(f"{url}/faults", json={"error_status": 400}, timeout=10).json()
    assert faults["error_status"] == 400 and server.faults.error_status == 400
    assert requests.post(f"{url}/faults", json={"fail_rate": 2}, timeout=10).status_code == 400
    assert requests.post(f"{url}/faults", json={"bogus": 1}, timeout=10).status_code == 400

    get(server, "me")
    stats = requests.get(f"{url}/stats", timeout=10).json()
    assert stats == server.stats()
    assert stats["stop_list_size"] == 21 and stats["messages"] == 0
    assert stats["endpoints"]["me"]["code:200"] == 1
    detail = requests.get(f"{url}/stats", params={"detail": 1}, timeout=10).json()
    assert {key: detail[key] for key in stats} == stats
    assert detail["peak_in_flight"] == {"me": 1}
    assert [(r["endpoint"], r["outcome"], r["retry_after"]) for r in detail["requests"]] == [
        ("me", "code:200", None)
    ]
    assert detail == server.stats(detail=True)
    reset = requests.post(f"{url}/reset", timeout=10).json()
    assert reset == {"endpoints": {}, "stop_list_size": 0, "messages": 0}
    assert server.stats(detail=True)["requests"] == []
    assert server.stats(detail=True)["peak_in_flight"] == {}
    assert server.faults == FaultSettings()
