"""Dropping a connection with no HTTP answer, which ASGI alone cannot do.

ASGI gives the application no transport. The server therefore runs uvicorn with a subclass of its
HTTP protocol that records each connection's transport under its (client address, server address)
pair; the application finds its own connection from `scope["client"]` and `scope["server"]` and
aborts it. The client then sees a connection reset, never an HTTP status.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any

Address = tuple[Any, ...]
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, not FIN
_DROP_WAIT_STEPS = 100


def _key(client: Any, server: Any) -> tuple[Address, Address]:
    return tuple(client or ()), tuple(server or ())


class ConnectionRegistry:
    """Open connections of one server, keyed by (client, server) address pair.

    Used only from the server's event-loop thread, like the protocol instances that fill it.
    """

    def __init__(self) -> None:
        self._transports: dict[tuple[Address, Address], asyncio.Transport] = {}

    def register(self, client: Any, server: Any, transport: asyncio.Transport) -> None:
        self._transports[_key(client, server)] = transport

    def unregister(self, client: Any, server: Any) -> None:
        self._transports.pop(_key(client, server), None)

    async def drop(self, scope: dict[str, Any]) -> None:
        """Reset the connection that carries `scope`'s request, without answering it."""
        key = _key(scope.get("client"), scope.get("server"))
        transport = self._transports.get(key)
        if transport is None:
            raise RuntimeError("connection not tracked: serve the app with tracked_protocol_class")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Already closing: abort() below still drops it.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        transport.abort()
        # Let uvicorn's connection_lost run, so it marks the request disconnected and does not
        # try to answer 500 for an application that returns without a response.
        for _ in range(_DROP_WAIT_STEPS):
            if key not in self._transports:
                return
            await asyncio.sleep(0)


def tracked_protocol_class(registry: ConnectionRegistry) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools, else h11) that records its transport in `registry`.

    It also never writes access-log lines: they carry the query string, hence the API key, and
    uvicorn would write them whenever the host process has a root log handler.
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:  # httptools is optional in uvicorn; h11 always ships with it
        from uvicorn.protocols.http.h11_impl import H11Protocol as base

    class TrackedHttpProtocol(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.access_log = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            registry.register(self.client, self.server, transport)

        def connection_lost(self, exc: Exception | None) -> None:
            registry.unregister(self.client, self.server)
            super().connection_lost(exc)

    return TrackedHttpProtocol
