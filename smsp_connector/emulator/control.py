"""`/_emulator/*`: inspect and steer a running emulator (no API key; loopback by default)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .clock import PARIS, format_wire
from .runtime import EmulatorRuntime
from .seed import SeedError, demo_entries, entries_from_json


class ControlError(ValueError):
    """A control request that cannot be applied (answered 400 with its text)."""


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ControlError(f"malformed JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise ControlError("the JSON body must be an object")
    return body


class ControlApi:
    def __init__(self, runtime: EmulatorRuntime) -> None:
        self._runtime = runtime

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
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ControlError("demo_size must be a non-negative integer")
            state.seed_entries(demo_entries(size, now))
        else:
            raise ControlError('expected "entries" or "demo_size"')
        size = state.stop_count()
        return JSONResponse({"added": size - before, "stop_list_size": size})

    async def faults(self, request: Request) -> Response:
        """GET: the current settings. POST: a partial update of them."""
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
                clock.advance(timedelta(seconds=seconds))
            elif "now" in body:
                try:
                    moment = datetime.strptime(str(body["now"]), "%Y-%m-%d %H:%M:%S")
                except ValueError as exc:
                    raise ControlError('now must be "YYYY-MM-DD HH:MM:SS"') from exc
                clock.set(moment.replace(tzinfo=PARIS))
            else:
                raise ControlError('expected "advance_seconds" or "now"')
        return JSONResponse({"now": format_wire(clock.now())})


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
    ]
