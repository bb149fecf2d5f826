"""A loopback HTTP proxy in front of the emulator that answers HTTP 503 on chosen paths: calls
that fail after every retry, while the rest of the API (the list, say) keeps working."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import requests

SHUTDOWN_POLL_SECONDS = 0.01
"""How often a test server's serve_forever looks for shutdown() (the standard library's
0.5 s made every test that stops one wait half a second)."""


@contextmanager
def failing_proxy(upstream: str, fail_paths: set[str]) -> Iterator[str]:
    """Yield the proxy's base URL (``http://127.0.0.1:PORT/v1``); requests to ``fail_paths``
    (e.g. ``/v1/stop-sms/add``) get a 503, every other one is forwarded to ``upstream``."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(upstream))
    session = requests.Session()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if urlsplit(self.path).path in fail_paths:
                self._answer(503, b'{"error": "injected by the test proxy"}', "application/json")
                return
            headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
            upstream_answer = session.request(
                self.command, origin + self.path, data=body, headers=headers, timeout=30
            )
            self._answer(
                upstream_answer.status_code,
                upstream_answer.content,
                upstream_answer.headers.get("Content-Type", "application/json"),
            )

        def _answer(self, status: int, content: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_DELETE = do_PUT = _handle

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{urlsplit(upstream).path}"
    finally:
        server.shutdown()
        server.server_close()
        session.close()
