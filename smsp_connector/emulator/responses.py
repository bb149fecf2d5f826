"""The provider's answer bodies: error catalogue, JSON and positional-XML rendering."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree
from starlette.responses import Response

JSON = "json"
XML = "xml"
_MEDIA_TYPES = {JSON: "application/json", XML: "application/xml"}
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
# What XML 1.0 cannot hold at all (control characters, lone surrogates, U+FFFE/U+FFFF), even
# escaped; an echoed request value or seeded entry with one gets U+FFFD in the XML form instead.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

EN = "en"
FR = "fr"
LANGUAGES = (EN, FR)
PAGE = "page"
"""The catalogue key of each endpoint's own page: its language and its exact words."""

# Codes 1 and 10 as the English and French pages write them.
_EN_AUTH = {1: "API key is required", 10: "Invalid API key"}
_FR_AUTH = {1: "La Clé API est requise", 10: "Clé API incorrecte"}

_LIST_EN = dict(_EN_AUTH)  # page 001
_ADD_EN = {  # page 000
    **_EN_AUTH,
    2: "Phone number is required",
    3: "Number is already in stop list",
    9: "Invalid phone number",
}
_DELETE_PAGE = {  # page 003: English, with French fragments and typographic apostrophes
    1: "API Key is required",
    2: "Phone number is required",
    3: "L\u2019ID number is required",
    4: "L\u2019ID number not found.",
    10: "Incorrect API Key",
}
_SEND_EN = {
    **_EN_AUTH,
    2: "Phone number is required",
    11: "Not enough credits",
    14: "Number is in the STOP SMS list",
}
_CANCEL_FR = {  # page 004; 7 is not on it (another page lists it)
    **_FR_AUTH,
    3: "L'ID du message est requis",
    4: "Message introuvable",
    5: "L'envoi du SMS a déjà été annulé",
    6: (
        "Il n'est pas possible d'annuler l'envoi d'un SMS si celui-ci doit être envoyé "
        "dans moins de 5 minutes."
    ),
    7: "Le SMS a déjà été envoyé",
    11: "Manque de crédits",
}
_STATUS_EN = {
    **_EN_AUTH,
    2: "Phone number is required",
    3: "Message ID is required",
    4: "Message not found",
}

ERROR_MESSAGES: dict[str, dict[str, dict[int, str]]] = {
    "stop-sms/list": {PAGE: _LIST_EN, EN: _LIST_EN, FR: dict(_FR_AUTH)},  # FR: page 002
    "stop-sms/add": {
        PAGE: _ADD_EN,
        EN: _ADD_EN,
        FR: {
            **_FR_AUTH,
            2: "Le numéro de téléphone est requis",
            3: "Le numéro est déjà dans la liste des STOP SMS",
            9: "Numéro de téléphone invalide",
        },
    },
    "stop-sms/delete": {
        PAGE: _DELETE_PAGE,
        EN: {
            1: "API Key is required",
            2: "Phone number is required",
            3: "ID number is required",
            4: "ID number not found.",
            10: "Incorrect API Key",
        },
        FR: {
            **_FR_AUTH,
            2: "Le numéro de téléphone est requis",
            3: "L\u2019ID est requis",
            4: "L\u2019ID est introuvable.",
        },
    },
    "send": {
        PAGE: _SEND_EN,
        EN: _SEND_EN,
        FR: {
            **_FR_AUTH,
            2: "Le numéro de téléphone est requis",
            11: "Manque de crédits",
            14: "Le numéro est dans la liste des STOP SMS",
        },
    },
    "message-cancel": {
        PAGE: _CANCEL_FR,
        FR: _CANCEL_FR,
        EN: {
            **_EN_AUTH,
            3: "Message ID is required",
            4: "Message not found",
            5: "The SMS has already been cancelled",
            6: "An SMS cannot be cancelled less than 5 minutes before it is sent.",
            7: "The SMS has already been sent",
            11: "Not enough credits",
        },
    },
    "message-status": {
        PAGE: _STATUS_EN,
        EN: _STATUS_EN,
        FR: {
            **_FR_AUTH,
            2: "Le numéro de téléphone est requis",
            3: "L'ID du message est requis",
            4: "Message introuvable",
        },
    },
    "me": {PAGE: _EN_AUTH, EN: _EN_AUTH, FR: dict(_FR_AUTH)},
}
"""endpoint -> PAGE | EN | FR -> code -> message. PAGE is the text of the endpoint's own page
(the French page for `message-cancel`, page 003's mixed words for `stop-sms/delete`, English for
the others); EN and FR are the whole API in one language (`--lang`)."""

_CANCEL_SUCCESS = {EN: "The SMS has been cancelled.", FR: "L'envoi du SMS a été annulé."}
CANCEL_SUCCESS_MESSAGE = _CANCEL_SUCCESS[FR]
_MALFORMED_BODY = {EN: "Malformed JSON body", FR: "Corps JSON mal formé"}
MALFORMED_BODY_MESSAGE = _MALFORMED_BODY[EN]


def check_lang(lang: str | None) -> None:
    """ValueError unless `lang` is None (each page's own language), "en" or "fr"."""
    if lang is not None and lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {', '.join(LANGUAGES)} or None, got {lang!r}")


def error_message(endpoint: str, code: int, default: str, lang: str | None = None) -> str:
    """The message of `code` on `endpoint` in `lang` (None: the page's own words), else
    `default`."""
    return ERROR_MESSAGES[endpoint][lang or PAGE].get(code) or default


def documented_codes(endpoint: str) -> frozenset[int]:
    """The error codes `endpoint`'s catalogue has a message for, in any language."""
    return frozenset(code for texts in ERROR_MESSAGES[endpoint].values() for code in texts)


def cancel_success_message(lang: str | None = None) -> str:
    """`message-cancel`'s success text: its French page's, unless `lang` is "en"."""
    return _CANCEL_SUCCESS[lang or FR]


def malformed_body_message(lang: str | None = None) -> str:
    """The text of code 9 for a body that is not a JSON object (the POST pages are English)."""
    return _MALFORMED_BODY[lang or EN]


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
        value = _NOT_XML.sub("\ufffd", value)
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
