"""What `push_bench.py` and its workers share: the input numbers, the emulator process and its
control endpoints, and the workers' one-line JSON result."""

from __future__ import annotations

import csv
import json
import queue
import re
import resource
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

API_KEY = "push-bench-key"
# The parent reads the last stdout line that starts with this (libraries may print too).
RESULT_PREFIX = "PUSH-RESULT "
SEEDED_AT = "2025-01-01 10:00:00"
# French mobile ranges libphonenumber accepts (+33 6x / 7x), each followed by 7 free digits.
MOBILE_PREFIXES = ("60", "61", "62", "64", "65", "66", "67", "68", "73", "74", "75", "76", "77")
URL_LINE = re.compile(r"listening on (http://\S+/v1)")
STARTUP_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class InputNumbers:
    """The CSV rows (E.164) in file order; rows at even positions are already on the list."""

    e164: list[str]

    @property
    def on_list(self) -> list[str]:
        return self.e164[::2]

    @property
    def missing(self) -> list[str]:
        return self.e164[1::2]

    def missing_in_first(self, count: int) -> int:
        return count // 2


def make_numbers(count: int) -> InputNumbers:
    """`count` distinct valid French mobile numbers, spread over the mobile ranges."""
    width = len(MOBILE_PREFIXES)
    return InputNumbers([f"+33{MOBILE_PREFIXES[i % width]}{i // width:07d}" for i in range(count)])


def written_form(e164: str, position: int) -> str:
    """Every third row in national form (`06…`), the others international (`+336…`)."""
    return "0" + e164.removeprefix("+33") if position % 3 == 0 else e164


def write_csv(numbers: InputNumbers, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["phone"])
        writer.writerows([written_form(number, i)] for i, number in enumerate(numbers.e164))


@dataclass
class Emulator:
    process: subprocess.Popen[str]
    base_url: str
    faults: dict[str, float | None]
    """The fault settings given on its command line (`/_emulator/reset` clears them)."""

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.base_url.removesuffix('/v1')}/_emulator/{path}"
        response = requests.request(method, url, json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def prepare(self, on_list: Sequence[str]) -> None:
        """Empty the list and the counters, restore the start-up faults, seed `on_list`."""
        self.control("POST", "reset")
        applied = self.control("POST", "faults", self.faults)
        if any(applied[name] != value for name, value in self.faults.items()):
            raise RuntimeError(f"fault settings not restored: {applied}")
        entries = [{"phoneNumber": number, "createdAt": SEEDED_AT} for number in on_list]
        seeded = self.control("POST", "seed", {"entries": entries})
        if seeded["stop_list_size"] != len(on_list):
            raise RuntimeError(f"seeding left {seeded['stop_list_size']} entries")

    def stats(self) -> dict[str, Any]:
        return self.control("GET", "stats")

    def add_outcomes(self) -> dict[str, int]:
        return self.stats()["endpoints"].get("stop-sms/add", {})


@contextmanager
def emulator(latency_ms: float, rate_limit: float | None = None) -> Iterator[Emulator]:
    """`smsp emulator` in its own process on a free loopback port, stopped (by PID) on exit."""
    command = [sys.executable, "-m", "smsp_connector.cli", "emulator", "--host", "127.0.0.1"]
    command += ["--port", "0", "--api-key", API_KEY, "--latency-ms", str(latency_ms)]
    if rate_limit is not None:
        command += ["--rate-limit", str(rate_limit)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    print(f"  emulator started, pid {process.pid}: {' '.join(command[3:])}", file=sys.stderr)
    try:
        base_url = _announced_url(process)
        yield Emulator(process, base_url, {"latency_ms": latency_ms, "rate_limit": rate_limit})
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(f"  emulator pid {process.pid} stopped", file=sys.stderr)


def _announced_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    stdout = process.stdout
    first_line: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: first_line.put(stdout.readline()), daemon=True).start()
    match = URL_LINE.search(first_line.get(timeout=STARTUP_TIMEOUT_SECONDS))
    if match is None:
        raise RuntimeError("the emulator did not print its URL")
    return match.group(1)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(result: dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def parse_result(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if not lines:
        raise RuntimeError(f"no result line in the worker's output:\n{stdout[-2000:]}")
    return json.loads(lines[-1].removeprefix(RESULT_PREFIX))
