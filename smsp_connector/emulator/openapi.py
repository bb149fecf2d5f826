"""The provider API the emulator serves, as an OpenAPI 3 document (`GET /_emulator/openapi.json`).

It describes the `/v1` endpoints as the emulator answers them: parameters (query string, or
JSON body for the POST endpoints), success bodies, coded error bodies with the codes each
endpoint can answer, the XML form, and the HTTP errors that fault injection adds. The shapes are
strict (`additionalProperties: false`), so a fuzzer can check every answer against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .responses import documented_codes

OPENAPI_VERSION = "3.0.3"
MALFORMED_BODY_CODE = 9

Schema = dict[str, Any]


def _object(properties: Mapping[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    return {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "properties": dict(properties),
        "additionalProperties": False,
    }


def _success(fields: Mapping[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    head = {
        "success": {"type": "boolean", "enum": [True]},
        "code": {"type": "integer", "enum": [200]},
    }
    return _object({**head, **fields}, optional)


_INTEGER: Schema = {"type": "integer"}
_COUNT: Schema = {"type": "integer", "minimum": 0}
_NUMBER: Schema = {"type": "number"}
_STRING: Schema = {"type": "string"}
_WIRE_TIME: Schema = {
    "type": "string",
    "description": "`YYYY-MM-DD HH:MM:SS`, Paris wall-clock time, no zone (seeded entries are "
    "served verbatim and may be malformed).",
}
_FLAG: Schema = {"type": "integer", "enum": [0, 1]}
_ID: Schema = {"type": "integer", "example": 1000}
_MESSAGE_ID: Schema = {"type": "integer", "example": 5000}
_PHONE: Schema = {"type": "string", "example": "0612345678"}
_FORMAT: Schema = {"type": "string", "enum": ["json", "xml"], "default": "json"}

_SUCCESS: dict[str, Schema] = {
    "stop-sms/list": _success(
        {
            "nbData": _COUNT,
            "data": {
                "type": "array",
                "items": _object({"id": _INTEGER, "phoneNumber": _STRING, "createdAt": _WIRE_TIME}),
            },
        }
    ),
    "stop-sms/add": _success({"stopId": _INTEGER}),
    "stop-sms/delete": _success({}),
    "send": _success(
        {
            "message_id": _INTEGER,
            "nb_sms": _COUNT,
            "cost": _NUMBER,
            "currency": _STRING,
            "scheduledDeliveryDate": _WIRE_TIME,
        },
        optional=("scheduledDeliveryDate",),
    ),
    "message-cancel": _success({"message": _STRING}),
    "message-status": _success(
        {
            "number": _STRING,
            "messageId": _STRING,
            "stopSms": {"type": "boolean"},
            "date": _WIRE_TIME,
            "statut": {
                "type": "string",
                "enum": ["Delivered", "Not delivered", "Waiting", "Cancelled"],
            },
            "cost": _NUMBER,
            "countryCode": _STRING,
            "currency": _STRING,
        }
    ),
    "me": _success(
        {
            "user": _object({"username": _STRING, "firstname": _STRING, "lastname": _STRING}),
            "credits": _object(
                {
                    "creditSms": _INTEGER,
                    "creditSmsECO": _INTEGER,
                    "creditHlr": _INTEGER,
                    "toSend": _INTEGER,
                    "balance": {"type": "string", "description": "EUR, 3 decimals, as text"},
                    "currency": _STRING,
                }
            ),
        }
    ),
}

_QUERY: dict[str, list[tuple[str, Schema, str]]] = {
    "stop-sms/delete": [("id", _ID, "The entry's `id` from the stop list.")],
    "message-cancel": [("messageId", _MESSAGE_ID, "`message_id` of the `/send` answer.")],
    "message-status": [
        ("messageId", _MESSAGE_ID, "`message_id` of the `/send` answer."),
        ("phoneNumber", _PHONE, "A recipient of the message, national or international."),
    ],
}

_BODY: dict[str, Schema] = {
    "stop-sms/add": {
        "type": "object",
        "required": ["apiKey", "phoneNumber"],
        "properties": {
            "apiKey": _STRING,
            "phoneNumber": {
                "type": "string",
                "example": "+33612345678",
                "description": "One number: French in national (06…) or international "
                "(+336…) form, overseas French in national form (0692…: Réunion), others "
                "international.",
            },
            "phoneNumbers": {
                "type": "string",
                "description": "The spelling of the provider's Python and VB.net samples.",
            },
            "_format": _FORMAT,
        },
    },
    "send": {
        "type": "object",
        "required": ["apiKey", "phoneNumbers", "message"],
        "properties": {
            "apiKey": _STRING,
            "phoneNumbers": {
                "type": "string",
                "example": "0612345678,+33698765432",
                "description": "Comma-separated, at most 500 (a JSON list is read too).",
            },
            "message": {"type": "string", "example": "Hello"},
            "sender": {"type": "string", "minLength": 3, "maxLength": 11},
            "tag": _STRING,
            "sandbox": _FLAG,
            "isStopSms": _FLAG,
            "isUnicode": _FLAG,
            "gamme": {"type": "integer", "enum": [1, 2], "description": "1 premium, 2 low cost"},
            "scheduledDeliveryDate": {
                "type": "string",
                "pattern": "^[0-9]{2}/[0-9]{2}/[0-9]{4}$",
                "example": "31/12/2099",
                "description": "`dd/MM/yyyy`, for a deferred send (with `time` and `minute`).",
            },
            "time": {"type": "integer", "minimum": 0, "maximum": 24},
            "minute": {"type": "integer", "enum": list(range(0, 60, 5))},
            "_format": _FORMAT,
        },
    },
}

_SUMMARIES = {
    "stop-sms/list": "The whole stop list (opt-outs), in one answer",
    "stop-sms/add": "Add one number to the stop list",
    "stop-sms/delete": "Remove an entry from the stop list, by id",
    "send": "Send an SMS now, or schedule it",
    "message-cancel": "Cancel a scheduled SMS (not less than 5 minutes before it is due)",
    "message-status": "The status of a message for one recipient",
    "me": "The account's credits",
}


def _name(endpoint: str) -> str:
    """`stop-sms/list` -> `StopSmsList`, a component name."""
    return "".join(part.capitalize() for part in endpoint.replace("/", "-").split("-"))


def _error_codes(endpoint: str, method: str) -> list[int]:
    codes = set(documented_codes(endpoint))
    if method == "POST":
        codes.add(MALFORMED_BODY_CODE)
    return sorted(codes)


def _coded_errors(endpoint: str) -> list[Schema]:
    schemas = [{"$ref": f"#/components/schemas/{_name(endpoint)}Error"}]
    if endpoint == "send":
        schemas.append({"$ref": "#/components/schemas/ValidationErrors"})
    return schemas


def _answers(endpoint: str, method: str) -> dict[str, Any]:
    name = _name(endpoint)
    xml = {
        "schema": {
            "type": "string",
            "description": "`<result>` with one unnamed `<entry>` per JSON field, in order; "
            "strings in CDATA, lists and objects as nested entries.",
        }
    }
    html = {"text/html": {"schema": {"type": "string"}}}
    retry_after = {
        "Retry-After": {"required": True, "schema": {"type": "integer", "minimum": 1}},
    }
    errors = _coded_errors(endpoint)
    return {
        "200": {
            "description": "Success, or a coded error (`success: false`) with HTTP 200 as the "
            "provider sends it.",
            "content": {
                "application/json": {
                    "schema": {"oneOf": [{"$ref": f"#/components/schemas/{name}Answer"}, *errors]}
                },
                "application/xml": xml,
            },
        },
        "4XX": {
            "description": "A coded error sent with a 4xx status (the emulator's `error_status` "
            "switch), or 400 code 9 for a body that is not a JSON object.",
            "content": {
                "application/json": {"schema": {"oneOf": errors} if len(errors) > 1 else errors[0]},
                "application/xml": xml,
            },
        },
        "429": {
            "description": "Rate limited (fault injection: `rate_limit`).",
            "headers": retry_after,
            "content": html,
        },
        "500": {"description": "Injected server error (`fail_rate`).", "content": html},
        "503": {
            "description": "Injected unavailability (`fail_rate`).",
            "headers": retry_after,
            "content": html,
        },
    }


def _parameters(endpoint: str, method: str) -> list[Schema]:
    in_body = method == "POST"
    parameters: list[Schema] = [
        {
            "name": "apiKey",
            "in": "query",
            "required": not in_body,
            "description": "The account's API key"
            + (" (may be in the body instead)." if in_body else "."),
            "schema": _STRING,
        },
        {
            "name": "_format",
            "in": "query",
            "required": False,
            "description": "Answer format, JSON by default.",
            "schema": _FORMAT,
        },
    ]
    for name, schema, description in _QUERY.get(endpoint, []):
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": True,
                "description": description,
                "schema": schema,
            }
        )
    return parameters


def openapi_document(endpoints: Mapping[str, tuple[str, object]]) -> dict[str, Any]:
    """The OpenAPI 3 document of `endpoints` (name -> (HTTP method, handler)), relative to the
    emulator's root: its server is `/v1`."""
    undocumented = set(endpoints) - set(_SUCCESS)
    if undocumented:
        raise ValueError(f"endpoints without an OpenAPI description: {sorted(undocumented)}")
    paths: dict[str, Any] = {}
    schemas: dict[str, Schema] = {
        "ValidationErrors": _object(
            {
                "success": {"type": "boolean", "enum": [False]},
                "code": {"type": "integer", "enum": [9]},
                "errors": {
                    "type": "array",
                    "items": _object({"elementId": _STRING, "message": _STRING}),
                },
            }
        ),
    }
    for endpoint, (method, _handler) in endpoints.items():
        name = _name(endpoint)
        schemas[f"{name}Answer"] = _SUCCESS[endpoint]
        schemas[f"{name}Error"] = _object(
            {
                "success": {"type": "boolean", "enum": [False]},
                "code": {"type": "integer", "enum": _error_codes(endpoint, method)},
                "message": _STRING,
            }
        )
        operation: dict[str, Any] = {
            "operationId": name[0].lower() + name[1:],
            "summary": _SUMMARIES[endpoint],
            "parameters": _parameters(endpoint, method),
            "responses": _answers(endpoint, method),
        }
        if method == "POST":
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _BODY[endpoint]}},
            }
        paths[f"/{endpoint}"] = {method.lower(): operation}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "SMS Partner API (local emulator)",
            "version": "1",
            "description": "The SMS Partner endpoints this emulator serves. A coded error is "
            "`success: false` with the provider's `code` and the endpoint page's `message`; "
            "`/_emulator/faults` adds latency, 429, 5xx, dropped connections, 4xx coded errors "
            "and forced codes.",
        },
        "servers": [{"url": "/v1"}],
        "paths": paths,
        "components": {"schemas": schemas},
    }
