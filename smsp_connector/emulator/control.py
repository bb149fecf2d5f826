"""`/_emulator/*`: inspect and steer a running emulator (no API key; loopback by default).

`stats`, `reset`, `seed`, `faults` and `clock` steer it; `openapi.json` describes the `/v1` API
it serves. A request these cannot apply is answered HTTP 400 with `{"error": "<reason>"}`.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .clock import WIRE_FORMAT, format_wire
from .jsonbody import parse_json_body
from .openapi import openapi_document
from .runtime import EmulatorRuntime
from .seed import MAX_DEMO_SIZE, SeedError, demo_entries, entries_from_json

_MAX_ADVANCE_SECONDS = 1e12
"""About 31,700 years: beyond what the calendar holds either way (the clock checks the rest)."""


class ControlError(ValueError):
    """A control request that cannot be applied (answered 400 with its text)."""


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = parse_json_body(raw)
    except ValueError as exc:
        raise ControlError(f"malformed JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise ControlError("the JSON body must be an object")
    return body


class ControlApi:
    def __init__(self, runtime: EmulatorRuntime) -> None:
        self._runtime = runtime
        self._document = openapi_document(runtime.api.endpoints)

    async def stats(self, request: Request) -> Response:
        """`?detail=1` adds the peak requests in flight and the latest requests' log."""
        detail = request.query_params.get("detail", "").lower() in {"1", "true", "yes"}
        return JSONResponse(self._runtime.stats_payload(detail))

    async def reset(self, request: Request) -> Response:
        self._runtime.reset()
        return JSONResponse(self._runtime.stats_payload())

    async def seed(self, request: Request) -> Response:
        """`{"entries": [{"phoneNumber", "createdAt"}]}` or `{"demo_size": N}`, unvalidated."""
        state = self._runtime.state
        body = await _json_object(request)
        now = state.clock.now()
        before = state.stop_count()
        if "entries" in body:
            try:
                state.seed_entries(entries_from_json(body["entries"], now))
            except SeedError as exc:
                raise ControlError(str(exc)) from exc
        elif "demo_size" in body:
            size = body["demo_size"]
            if (
                not isinstance(size, int)
                or isinstance(size, bool)
                or not 0 <= size <= MAX_DEMO_SIZE
            ):
                raise ControlError(f"demo_size must be an integer within [0, {MAX_DEMO_SIZE}]")
            state.seed_entries(demo_entries(size, now))
        else:
            raise ControlError('expected "entries" or "demo_size"')
        size = state.stop_count()
        return JSONResponse({"added": size - before, "stop_list_size": size})

    async def faults(self, request: Request) -> Response:
        """GET: the current settings. POST: a partial update of them (400 with the reason for
        a value out of range or of the wrong type, the settings unchanged).

        The fields are `FaultSettings`': `latency_ms`, `rate_limit`, `fail_rate`, `reset_rate`,
        `error_status`, and `force_code`, an object mapping an endpoint to the error code every
        authenticated call to it answers (changing nothing), for the codes the emulator cannot
        otherwise produce: `{"force_code": {"message-cancel": 11}}` makes cancel answer 11
        "Manque de crédits", `{"force_code": {"stop-sms/delete": 2}}` makes delete answer 2.
        The code must be one of the endpoint's documented error codes; a wrong key is still
        answered 10 first. `{"force_code": {}}` (or `/_emulator/reset`) clears it.
        """
        faults = self._runtime.faults
        if request.method == "POST":
            changes = await _json_object(request)
            try:
                faults.settings = faults.settings.updated(changes)
            except (TypeError, ValueError) as exc:
                raise ControlError(str(exc)) from exc
        return JSONResponse(faults.settings.as_dict())

    async def clock(self, request: Request) -> Response:
        """GET: now. POST: `{"advance_seconds": n}` or `{"now": "YYYY-MM-DD HH:MM:SS"}` (Paris)."""
        clock = self._runtime.state.clock
        if request.method == "POST":
            body = await _json_object(request)
            if "advance_seconds" in body:
                seconds = body["advance_seconds"]
                if not isinstance(seconds, int | float) or isinstance(seconds, bool):
                    raise ControlError("advance_seconds must be a number")
                if not math.isfinite(seconds) or abs(seconds) > _MAX_ADVANCE_SECONDS:
                    raise ControlError(f"advance_seconds must be within ±{_MAX_ADVANCE_SECONDS:g}")
                try:
                    clock.advance(timedelta(seconds=seconds))
                except ValueError as exc:
                    raise ControlError(str(exc)) from exc
            elif "now" in body:
                text = body["now"]
                try:
                    if not isinstance(text, str):
                        raise ValueError(text)
                    moment = datetime.strptime(text, WIRE_FORMAT)
                except ValueError as exc:
                    raise ControlError('now must be "YYYY-MM-DD HH:MM:SS"') from exc
                try:
                    clock.set(moment)  # naive: Paris wall time
                except ValueError as exc:
                    raise ControlError(str(exc)) from exc
            else:
                raise ControlError('expected "advance_seconds" or "now"')
        return JSONResponse({"now": format_wire(clock.now())})

    async def openapi(self, request: Request) -> Response:
        """The provider API this emulator serves, as an OpenAPI 3 document (see `openapi.py`)."""
        return JSONResponse(self._document)


Endpoint = Callable[[Request], Awaitable[Response]]


def _guarded(endpoint: Endpoint) -> Endpoint:
    """Answer a `ControlError` with HTTP 400 and its text."""

    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ControlError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return guarded


def control_routes(runtime: EmulatorRuntime) -> list[BaseRoute]:
    api = ControlApi(runtime)
    return [
        Route("/_emulator/stats", _guarded(api.stats), methods=["GET"]),
        Route("/_emulator/reset", _guarded(api.reset), methods=["POST"]),
        Route("/_emulator/seed", _guarded(api.seed), methods=["POST"]),
        Route("/_emulator/faults", _guarded(api.faults), methods=["GET", "POST"]),
        Route("/_emulator/clock", _guarded(api.clock), methods=["GET", "POST"]),
        Route("/_emulator/openapi.json", api.openapi, methods=["GET"]),
    ]
