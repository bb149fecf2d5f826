"""The Dagster UI in a real browser: `dagster dev` in a subprocess, driven through Playwright
with Debian's Chromium.

No browser is downloaded: Playwright drives the system's ``/usr/bin/chromium``
(``apt-get install chromium``). Without it the UI test is skipped on a workstation and fails
under ``CI=true``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .cli_helpers import DAGSTER, ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1000}
SCREENSHOTS = ROOT / "docs" / "screenshots"
"""Where ``make screenshots`` (SMSP_SCREENSHOTS=1) refreshes the README's pictures; a plain
``make test`` writes its screenshots to the test's temporary folder, leaving the tree clean."""


def screenshot_dir(tmp_path: Path) -> Path:
    return SCREENSHOTS if os.environ.get("SMSP_SCREENSHOTS") == "1" else tmp_path


SERVER_START_SECONDS = 180
SERVER_STOP_SECONDS = 30


def require_browser() -> None:
    """Skip (or, under CI=true, fail) when Playwright or the system's Chromium is missing."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright not installed: pip install -e '.[dev]'")
    if not CHROMIUM.exists():
        missing.append("Chromium not installed: apt-get install chromium")
    if not missing:
        return
    reason = "; ".join(missing) + "; this test is REQUIRED in CI"
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


@contextmanager
def dagster_dev(
    env: dict[str, str],
    log_path: Path,
    *,
    workspace: Path = ROOT / "workspace.yaml",
    cwd: Path = ROOT,
) -> Iterator[str]:
    """`dagster dev` (webserver + daemon: runs launched from the UI are queued, and the daemon's
    run coordinator starts them) on a free loopback port; yields its base URL.

    By default it serves the repository's workspace.yaml from the repository's root; a test's
    own project passes its ``workspace`` file and working directory.

    The server runs in its own session and is stopped like Ctrl-C would (SIGINT to the group),
    then killed if it is still there after SERVER_STOP_SECONDS.
    """
    port = free_port()
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [DAGSTER, "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_for_server(server, base_url, log_path)
        yield base_url
    finally:
        _stop_group(server)


def _wait_for_server(server: subprocess.Popen, base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while True:
        if server.poll() is not None:
            pytest.fail(
                f"dagster dev exited with {server.returncode}:\n{log_tail(log_path)}", pytrace=False
            )
        try:
            with urllib.request.urlopen(f"{base_url}/server_info", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"dagster dev not serving after {SERVER_START_SECONDS} s:\n{log_tail(log_path)}",
                pytrace=False,
            )
        time.sleep(0.5)


def _stop_group(server: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGINT)
    with suppress(subprocess.TimeoutExpired):
        server.wait(SERVER_STOP_SECONDS)
    # The webserver, daemon and code servers are in the same group: none may outlive the test.
    with suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(10)


@contextmanager
def explain_failure(page: Page, tmp_path: Path, server_log: Path) -> Iterator[None]:
    """On any failure inside, save the page as ``failure.png`` and add the page's address and
    the tail of the dagster dev log to the error."""
    try:
        yield
    except BaseException as error:
        with suppress(Exception):
            page.screenshot(path=tmp_path / "failure.png", timeout=10_000)
        error.add_note(f"page: {page.url}; screenshot: {tmp_path / 'failure.png'}")
        error.add_note(f"dagster dev log:\n{log_tail(server_log)}")
        raise


@contextmanager
def chromium_page(profile_dir: Path) -> Iterator[Page]:
    """A page of headless system Chromium with a fresh profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(profile_dir),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,
        )
        try:
            # The "Join the Dagster community" dialog a fresh profile gets would cover the page.
            context.add_init_script("window.localStorage.setItem('communityNux', '\"1\"')")
            page = context.new_page()
            page.set_default_timeout(90_000)
            yield page
        finally:
            context.close()


_POINTS = re.compile(r"-?\d+(?:\.\d+)?")


def drawn_edges(page: Page) -> set[tuple[str, str]]:
    """The asset graph's arrows as (upstream, downstream) pairs of the node names, read from the
    SVG itself: an arrow starts on the right border of its upstream node and ends just left of
    its downstream node."""
    nodes = page.evaluate(
        """() => Array.from(document.querySelectorAll('svg foreignObject')).map(node => ({
            name: node.querySelector('[data-tooltip]')?.dataset.tooltip
                ?? (node.innerText ?? node.textContent ?? '').split('\\n')[0].trim(),
            x: +node.getAttribute('x'), y: +node.getAttribute('y'),
            width: +node.getAttribute('width'), height: +node.getAttribute('height'),
        }))"""
    )
    paths = page.evaluate(
        "() => Array.from(document.querySelectorAll('svg path[marker-end]'),"
        " path => path.getAttribute('d'))"
    )

    def node_at(x: float, y: float, *, left: bool) -> str | None:
        for node in nodes:
            border = node["x"] if left else node["x"] + node["width"]
            # An arrow ends a few pixels left of its downstream node (the arrow head's room).
            near = border - 20 <= x <= border + 2 if left else abs(x - border) <= 2
            if near and node["y"] <= y <= node["y"] + node["height"]:
                return node["name"]
        return None

    edges = set()
    for d in paths:
        numbers = [float(n) for n in _POINTS.findall(d or "")]
        if len(numbers) < 4:
            continue
        start = node_at(numbers[0], numbers[1], left=False)
        end = node_at(numbers[-2], numbers[-1], left=True)
        if start and end:
            edges.add((start, end))
    return edges


def group_members(page: Page) -> set[tuple[str, str]]:
    """The asset graph's expanded groups and the nodes drawn inside them, as (group, node) pairs
    of names, read from the SVG: an expanded group is a ``foreignObject.group`` box whose header
    carries the group's name, and its nodes' boxes lie within it."""
    boxes = page.evaluate(
        """() => Array.from(document.querySelectorAll('svg foreignObject'), node => ({
            name: node.querySelector('[data-tooltip]')?.dataset.tooltip ?? null,
            group: node.classList.contains('group'),
            x: +node.getAttribute('x'), y: +node.getAttribute('y'),
            width: +node.getAttribute('width'), height: +node.getAttribute('height'),
        }))"""
    )
    named = [box for box in boxes if box["name"]]
    groups = [box for box in named if box["group"]]
    nodes = [box for box in named if not box["group"]]

    def inside(node: dict, group: dict) -> bool:
        return (
            group["x"] <= node["x"]
            and node["x"] + node["width"] <= group["x"] + group["width"]
            and group["y"] <= node["y"]
            and node["y"] + node["height"] <= group["y"] + group["height"]
        )

    return {
        (group["name"], node["name"]) for group in groups for node in nodes if inside(node, group)
    }
