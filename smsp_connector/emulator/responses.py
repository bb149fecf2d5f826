"""The provider's answer bodies: error catalogue, JSON and positional-XML rendering."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree
from starlette.responses import Response

JSON = "json"
XML = "xml"
_MEDIA_TYPES = {JSON: "application/json", XML: "application/xml"}
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# Messages of the English pages, except `message-cancel`, documented on a French page only.
# Codes 1 and 10 are answered in English on every endpoint.
_AUTH_MESSAGES = {1: "API key is required", 10: "Invalid API key"}
ERROR_MESSAGES: dict[str, dict[int, str]] = {
    "stop-sms/list": {},
    "stop-sms/add": {
        2: "Phone number is required",
        3: "Number is already in stop list",
        9: "Invalid phone number",
    },
    "stop-sms/delete": {3: "ID is required", 4: "ID not found"},
    "send": {
        2: "Phone number is required",
        11: "Not enough credits",
        14: "Number is in the STOP SMS list",
    },
    "message-cancel": {
        3: "L'ID du message est requis",
        4: "Message introuvable",
        5: "L'envoi du SMS a déjà été annulé",
        6: (
            "Il n'est pas possible d'annuler l'envoi d'un SMS si celui-ci doit être envoyé "
            "dans moins de 5 minutes."
        ),
        7: "Le SMS a déjà été envoyé",
    },
    "message-status": {
        2: "Phone number is required",
        3: "Message ID is required",
        4: "Message not found",
    },
    "me": {},
}
CANCEL_SUCCESS_MESSAGE = "L'envoi du SMS a été annulé."
MALFORMED_BODY_MESSAGE = "Malformed JSON body"


def error_message(endpoint: str, code: int, default: str) -> str:
    """The documented message of `code` on `endpoint`, else `default`."""
    return ERROR_MESSAGES[endpoint].get(code) or _AUTH_MESSAGES.get(code) or default


@dataclass(frozen=True, slots=True)
class Answer:
    """A rendered provider answer; `code` is the provider code (200 on success), for stats."""

    code: int
    body: bytes
    media_type: str
    status: int = 200

    def to_response(self) -> Response:
        return Response(self.body, status_code=self.status, media_type=self.media_type)


def media_type(fmt: str) -> str:
    return _MEDIA_TYPES[fmt]


def render(payload: Mapping[str, Any], fmt: str, status: int = 200) -> Answer:
    body = render_xml(payload) if fmt == XML else render_json(payload)
    return Answer(int(payload["code"]), body, media_type(fmt), status)


def success(fields: Mapping[str, Any], fmt: str) -> Answer:
    return render({"success": True, "code": 200, **fields}, fmt)


def failure(
    code: int,
    fmt: str,
    status: int,
    *,
    message: str | None = None,
    errors: list[dict[str, str]] | None = None,
) -> Answer:
    """An error body: `message`, or for `/send` validation errors the `errors` list instead."""
    payload: dict[str, Any] = {"success": False, "code": code}
    if errors is not None:
        payload["errors"] = errors
    else:
        payload["message"] = message
    return render(payload, fmt, status)


def render_json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("ascii")


def stop_list_json(fragments: list[bytes]) -> bytes:
    """The list answer from pre-encoded entries: a join, not a `json.dumps` of every entry."""
    head = b'{"success":true,"code":200,"nbData":%d,"data":[' % len(fragments)
    return b"".join((head, b",".join(fragments), b"]}"))


def render_xml(payload: Mapping[str, Any]) -> bytes:
    """`<result>` with one unnamed `<entry>` per field, in field order, as the provider writes.

    Strings go in CDATA, booleans as `true`/`false`, lists and objects as nested entries.
    """
    root = etree.Element("result")
    for value in payload.values():
        _fill(etree.SubElement(root, "entry"), value)
    return _XML_DECLARATION + etree.tostring(root, encoding="UTF-8", xml_declaration=False)


def stop_list_xml(count: int, rows: Iterable[tuple[int, str, str]]) -> bytes:
    """The list answer in XML, `(id, phoneNumber, createdAt)` rows written one at a time.

    lxml's incremental writer: about twice as fast as one big tree for 1,000,000 entries, and
    without holding millions of elements.
    """
    buffer = io.BytesIO()
    buffer.write(_XML_DECLARATION)
    with etree.xmlfile(buffer, encoding="UTF-8") as xml, xml.element("result"):
        for value in (True, 200, count):
            xml.write(_entry(value))
        with xml.element("entry"):
            for row in rows:
                xml.write(_entry(row))
    return buffer.getvalue()


def _entry(value: Any) -> etree._Element:
    element = etree.Element("entry")
    _fill(element, value)
    return element


def _fill(element: etree._Element, value: Any) -> None:
    if isinstance(value, bool):
        element.text = "true" if value else "false"
    elif isinstance(value, str):
        # CDATA cannot hold "]]>": such a (seeded, malformed) value is written escaped instead.
        element.text = value if "]]>" in value else etree.CDATA(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            _fill(etree.SubElement(element, "entry"), item)
    elif isinstance(value, list | tuple):
        for item in value:
            _fill(etree.SubElement(element, "entry"), item)
    elif value is not None:
        element.text = str(value)
