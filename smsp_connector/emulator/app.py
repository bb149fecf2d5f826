"""The Starlette application: `/v1` endpoints behind the fault pipeline, plus `/_emulator`."""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from .api import Call, Handler
from .control import control_routes
from .errors import EmulatorApiError
from .faults import FaultSettings
from .jsonbody import parse_json_body
from .responses import JSON, XML, Answer, error_message, failure, malformed_body_message
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


def _format(value: object) -> str:
    return XML if isinstance(value, str) and value.lower() == XML else JSON


async def _read_call(request: Request) -> Call:
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        raw = await request.body()
        if raw.strip():
            try:
                body = parse_json_body(raw)
            except ValueError as exc:  # UnicodeDecodeError is a ValueError
                raise MalformedBody(str(exc)) from exc
            if not isinstance(body, dict):
                raise MalformedBody("the JSON body is not an object")
            params.update(body)
    return Call(params, _format(params.get("_format")))


class ForcedCode(EmulatorApiError):
    """The code `FaultSettings.force_code` sets for an endpoint."""

    def __init__(self, code: int) -> None:
        super().__init__(f"code {code} forced by the fault settings")
        self.code = code


class _RedirectWithoutKey:
    """`/v1/<endpoint>/` -> 307 to `/v1/<endpoint>`, as the router would redirect, but with the
    query string's `apiKey` left out of `Location`: a redirect must not copy the key into
    proxies' and clients' logs. (A key in a POST body is kept by a 307 and still works.)"""

    def __init__(self, path: str) -> None:
        self._path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        kept = [(name, value) for name, value in query if name.lower() != "apikey"]
        location = f"{self._path}?{urlencode(kept)}" if kept else self._path
        await RedirectResponse(location, status_code=307)(scope, receive, send)


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
        api = self._runtime.api
        fmt = _format(request.query_params.get("_format"))
        try:
            call = await _read_call(request)
            fmt = call.fmt
            api.authenticate(call.params)
            forced = settings.force_code.get(self._name)
            if forced is not None:
                raise ForcedCode(forced)
            return await self._handler(call)
        except MalformedBody:
            return failure(9, fmt, 400, message=malformed_body_message(api.lang))
        except EmulatorApiError as exc:
            message = None
            if not exc.errors:
                message = error_message(self._name, exc.code, str(exc), api.lang)
            return failure(exc.code, fmt, settings.error_status, message=message, errors=exc.errors)


def build_app(runtime: EmulatorRuntime) -> Starlette:
    routes: list[BaseRoute] = []
    for name, (method, handler) in runtime.api.endpoints.items():
        routes.append(Route(f"/v1/{name}", V1Endpoint(name, handler, runtime), methods=[method]))
        routes.append(Route(f"/v1/{name}/", _RedirectWithoutKey(f"/v1/{name}")))
    app = Starlette(routes=[*routes, *control_routes(runtime)])
    # The router's own trailing-slash redirect copies the whole query string, key included;
    # the routes above redirect the /v1 endpoints without it, any other path is a 404.
    app.router.redirect_slashes = False
    return app
