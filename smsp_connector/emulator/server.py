"""`EmulatorServer`: the emulator served by uvicorn in a background thread."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from types import TracebackType
from typing import Any

import uvicorn

from .api import ProviderApi
from .app import build_app
from .connections import tracked_protocol_class
from .faults import FaultInjector, FaultSettings
from .runtime import EmulatorRuntime
from .seed import demo_entries, load_seed_file
from .state import EmulatorState

SeedSource = str | os.PathLike[str] | Iterable[tuple[str, datetime | str]]
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0
_GRACEFUL_SHUTDOWN_SECONDS = 3


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port` (port 0: a free port), IPv4 or IPv6 as `host` resolves."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=2048)


class EmulatorServer:
    """A local SMS Partner API on `host:port`, served by uvicorn in a background thread.

    `seed` is a seed file (`.json`/`.csv`) or an iterable of `(phoneNumber, createdAt)` pairs,
    loaded unvalidated; `demo_size` adds that many generated French mobile numbers.
    `random_seed` makes the fault dice reproducible. `lang` is the language of the answers'
    texts: None (the default) for each endpoint's own documentation page (`message-cancel`
    French, `stop-sms/delete` as its page writes it, the others English), "fr" or "en" for the
    whole API in one language. Use as a context manager, or call `start()` / `stop()`.
    """

    def __init__(
        self,
        api_key: str,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultSettings | None = None,
        seed: SeedSource | None = None,
        demo_size: int = 0,
        random_seed: int | None = None,
        lang: str | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        self.host = host
        self._requested_port = port
        self.state = EmulatorState()
        self._runtime = EmulatorRuntime(
            state=self.state,
            api=ProviderApi(self.state, api_key, lang=lang),
            faults=FaultInjector(faults or FaultSettings(), random_seed),
        )
        self.app = build_app(self._runtime)
        now = self.state.clock.now()
        if isinstance(seed, str | os.PathLike):
            self.state.seed_entries(load_seed_file(seed, now))
        elif seed is not None:
            self.state.seed_entries(seed)
        if demo_size:
            self.state.seed_entries(demo_entries(demo_size, now))
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    def __repr__(self) -> str:  # never shows the API key
        where = self.url if self._port is not None else "not started"
        return f"EmulatorServer({where}, stop_count={self.state.stop_count()})"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def faults(self) -> FaultSettings:
        return self._runtime.faults.settings

    @faults.setter
    def faults(self, settings: FaultSettings) -> None:
        """Takes effect for the next request."""
        self._runtime.faults.settings = settings

    def stats(self, detail: bool = False) -> dict[str, Any]:
        """The same document as `GET /_emulator/stats` (`?detail=1` for `detail=True`).

        With `detail`, also `peak_in_flight` (per endpoint, the most requests in flight at once)
        and `requests` (the latest requests: endpoint, `arrived_at` on `time.monotonic()`'s
        clock, outcome, `retry_after`), so that tests can check concurrency, pacing and
        `Retry-After` handling from what the server saw instead of timing the client.
        """
        return self._runtime.stats_payload(detail)

    def reset(self) -> None:
        """Empty state, zero stats, default faults. Stop and message ids keep counting."""
        self._runtime.reset()

    def start(self) -> EmulatorServer:
        """Serve in a background thread; returns once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already started")
        sock = _bind(self.host, self._requested_port)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=tracked_protocol_class(self._runtime.connections),
            lifespan="off",
            # No logging setup of the host process, and no access log: its lines carry the
            # query string, hence the API key.
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
            backlog=2048,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"smsp-emulator-{self._port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError("the emulator failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Shut down cleanly and join the thread. Idempotent."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(_STOP_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(_STOP_TIMEOUT)
        self._runtime.faults.close()
        self._server = self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
