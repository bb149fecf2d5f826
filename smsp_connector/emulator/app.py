"""The Starlette application: `/v1` endpoints behind the fault pipeline, plus `/_emulator`."""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .api import Call, Handler
from .control import control_routes
from .errors import EmulatorApiError
from .faults import FaultSettings
from .responses import JSON, MALFORMED_BODY_MESSAGE, XML, Answer, error_message, failure
from .runtime import EmulatorRuntime
from .stats import code_outcome, http_outcome, reset_outcome

_FAIL_RETRY_AFTER = {503: 1}
"""`Retry-After` seconds sent with an injected 5xx (a 500 carries none)."""


class MalformedBody(Exception):
    """A POST body that is not a JSON object."""


def _status_page(status: int, headers: dict[str, str] | None = None) -> Response:
    """A bare HTML error page, as a reverse proxy in front of the API would send."""
    title = f"{status} {HTTPStatus(status).phrase}"
    page = f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1>"
    page += "</center>\r\n</body>\r\n</html>\r\n"
    return Response(page, status_code=status, headers=headers, media_type="text/html")


async def _read_call(request: Request) -> Call:
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        raw = await request.body()
        if raw.strip():
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise MalformedBody(str(exc)) from exc
            if not isinstance(body, dict):
                raise MalformedBody("the JSON body is not an object")
            params.update(body)
    fmt = XML if str(params.get("_format", "")).lower() == XML else JSON
    return Call(params, fmt)


class V1Endpoint:
    """One `/v1` endpoint, as a raw ASGI app so that it can also answer nothing at all.

    Per request: rate limit (429) -> latency -> fail rate (5xx) -> reset before handling ->
    handle -> reset after handling (the change is made, the answer is lost). No fault touches the
    state except a reset after handling. Every outcome is counted. The rate is counted when a
    request arrives, as a provider's gateway does: counting after the latency sleep would let
    timer jitter bunch requests that a client paced correctly. Each request is also logged
    with its arrival time and counted in flight until answered (see `stats.EndpointStats`).
    """

    def __init__(self, name: str, handler: Handler, runtime: EmulatorRuntime) -> None:
        self._name = name
        self._handler = handler
        self._runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stats, name = self._runtime.stats, self._name
        arrived_at = stats.arrive(name)
        try:
            await self._serve(scope, receive, send, arrived_at)
        finally:
            stats.leave(name)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, arrived_at: float) -> None:
        runtime, name = self._runtime, self._name
        settings = runtime.faults.settings
        retry_after = runtime.faults.throttle()
        if settings.latency_ms > 0:
            await asyncio.sleep(settings.latency_ms / 1000)
        if retry_after is not None:
            runtime.stats.count(
                name, http_outcome(429), arrived_at=arrived_at, retry_after=retry_after
            )
            await _status_page(429, {"Retry-After": str(retry_after)})(scope, receive, send)
            return
        roll = runtime.faults.roll()
        if roll.fail_status is not None:
            wait = _FAIL_RETRY_AFTER.get(roll.fail_status)
            runtime.stats.count(
                name, http_outcome(roll.fail_status), arrived_at=arrived_at, retry_after=wait
            )
            headers = {"Retry-After": str(wait)} if wait is not None else None
            await _status_page(roll.fail_status, headers)(scope, receive, send)
            return
        if roll.reset == "before":
            runtime.stats.count(name, reset_outcome("before"), arrived_at=arrived_at)
            await runtime.connections.drop(scope)
            return
        answer = await self._answer(Request(scope, receive), settings)
        if roll.reset == "after":
            runtime.stats.count(name, reset_outcome("after"), arrived_at=arrived_at)
            await runtime.connections.drop(scope)
            return
        runtime.stats.count(name, code_outcome(answer.code), arrived_at=arrived_at)
        await answer.to_response()(scope, receive, send)

    async def _answer(self, request: Request, settings: FaultSettings) -> Answer:
        fmt = XML if request.query_params.get("_format", "").lower() == XML else JSON
        try:
            call = await _read_call(request)
            fmt = call.fmt
            self._runtime.api.authenticate(call.params)
            return await self._handler(call)
        except MalformedBody:
            return failure(9, fmt, 400, message=MALFORMED_BODY_MESSAGE)
        except EmulatorApiError as exc:
            message = None if exc.errors else error_message(self._name, exc.code, str(exc))
            return failure(exc.code, fmt, settings.error_status, message=message, errors=exc.errors)


def build_app(runtime: EmulatorRuntime) -> Starlette:
    routes = [
        Route(f"/v1/{name}", V1Endpoint(name, handler, runtime), methods=[method])
        for name, (method, handler) in runtime.api.endpoints.items()
    ]
    return Starlette(routes=[*routes, *control_routes(runtime)])
