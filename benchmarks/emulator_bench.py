"""Emulator benchmark: a 1,000,000-entry stop list, and sustained adds under concurrent load.

Run by hand (not part of the test suite), from the repository root:

    .venv/bin/python benchmarks/emulator_bench.py [--list-size N] [--threads 1,4,8]
        [--duration S] [--wrk]

The emulator runs as `smsp emulator` in its own process (uvicorn + httptools + uvloop), so the
client measurements below do not share its interpreter. Each figure is printed as a Markdown
line, ready for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

API_KEY = "bench-key"
# Two-digit French mobile prefixes libphonenumber accepts: one per client thread, so that every
# thread adds distinct valid numbers (+33 6x/7x then a 7-digit counter).
PREFIXES = ("60", "61", "62", "64", "65", "66", "67", "68", "73", "74", "75", "76", "77", "78")
URL_LINE = re.compile(r"listening on (http://\S+/v1)")
WRK_SCRIPT = """
local counter = 0
local prefixes = {"60", "61", "62", "64", "65", "66", "67", "68"}
local next_thread = 1
function setup(thread)
  thread:set("prefix", prefixes[next_thread])
  next_thread = next_thread + 1
end
function request()
  counter = counter + 1
  local body = string.format('{"apiKey":"%s","phoneNumber":"+33%s%07d"}', "bench-key", prefix,
    counter % 10000000)
  return wrk.format("POST", "/v1/stop-sms/add", {["Content-Type"] = "application/json"}, body)
end
"""


def _field(pattern: str, text: str) -> str:
    """The first group of `pattern` in `text` (a benchmark cannot go on without it)."""
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{pattern!r} not found in:\n{text}")
    return match.group(1)


@dataclass
class Emulator:
    process: subprocess.Popen[str]
    base_url: str
    startup_seconds: float

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = int(_field(r"VmRSS:\s+(\d+) kB", status))
        return kib / 1024


@contextmanager
def emulator(demo_size: int = 0) -> Iterator[Emulator]:
    """`smsp emulator` in a subprocess on a free port; yields once it prints its URL."""
    command = [sys.executable, "-m", "smsp_connector.cli", "emulator", "--port", "0"]
    command += ["--api-key", API_KEY, "--demo-size", str(demo_size)]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    first_line: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: first_line.put(stdout.readline()), daemon=True).start()
    try:
        match = URL_LINE.search(first_line.get(timeout=600))
        assert match, "the emulator did not print its URL"
        yield Emulator(process, match.group(1), time.perf_counter() - started)
    finally:
        process.terminate()
        process.wait(30)


def timed_get(url: str, params: dict[str, str]) -> tuple[float, float, int]:
    """(seconds to the first body byte, seconds in total, body bytes) of one GET."""
    started = time.perf_counter()
    with requests.get(url, params=params, stream=True, timeout=600) as response:
        response.raise_for_status()
        chunks = response.iter_content(chunk_size=1 << 20)
        size = len(next(chunks))
        first_byte = time.perf_counter() - started
        size += sum(len(chunk) for chunk in chunks)
    return first_byte, time.perf_counter() - started, size


def bench_list(size: int) -> None:
    print(f"\n### Listing {size:,} entries\n")
    with emulator(demo_size=size) as server:
        print(
            f"- start-up with `--demo-size {size}` (generate + load): "
            f"{server.startup_seconds:.2f} s; emulator RSS {server.rss_mib():.0f} MiB"
        )
        url = f"{server.base_url}/stop-sms/list"
        report_get("JSON, first request (join of pre-encoded entries)", url, {"apiKey": API_KEY})
        report_get("JSON, repeated (cached body)", url, {"apiKey": API_KEY})
        requests.post(
            f"{server.base_url}/stop-sms/add",
            json={"apiKey": API_KEY, "phoneNumber": "+33699999999"},
            timeout=30,
        )
        report_get("JSON, after one add (body rebuilt)", url, {"apiKey": API_KEY})
        report_get(
            "XML, first request (lxml incremental writer)",
            url,
            {"apiKey": API_KEY, "_format": "xml"},
        )
        print(f"- emulator RSS after the list answers: {server.rss_mib():.0f} MiB")


def report_get(label: str, url: str, params: dict[str, str]) -> None:
    first_byte, total, size = timed_get(url, params)
    print(f"- {label}: first byte {first_byte:.3f} s, total {total:.3f} s, {size / 1e6:.1f} MB")


def add_worker(base_url: str, prefix: str, deadline: float, latencies: list[float]) -> None:
    with requests.Session() as session:
        counter = 0
        while time.perf_counter() < deadline:
            counter += 1
            body = {"apiKey": API_KEY, "phoneNumber": f"+33{prefix}{counter:07d}"}
            started = time.perf_counter()
            response = session.post(f"{base_url}/stop-sms/add", json=body, timeout=30)
            latencies.append(time.perf_counter() - started)
            assert response.json()["code"] == 200, response.text


def bench_adds(threads: list[int], duration: float) -> None:
    print(f"\n### Sustained adds, Python client threads ({duration:.0f} s each)\n")
    for count in threads:
        if count > len(PREFIXES):
            raise SystemExit(f"at most {len(PREFIXES)} client threads")
        with emulator() as server:
            per_thread: list[list[float]] = [[] for _ in range(count)]
            deadline = time.perf_counter() + duration
            workers = [
                threading.Thread(
                    target=add_worker, args=(server.base_url, PREFIXES[i], deadline, per_thread[i])
                )
                for i in range(count)
            ]
            started = time.perf_counter()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            elapsed = time.perf_counter() - started
            latencies = sorted(lat for lats in per_thread for lat in lats)
            p99 = latencies[int(len(latencies) * 0.99)]
            print(
                f"- {count} thread(s): {len(latencies) / elapsed:,.0f} adds/s, latency p50 "
                f"{statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
                f"({len(latencies):,} adds)"
            )


def bench_wrk(duration: float) -> None:
    if shutil.which("wrk") is None:
        print("\n(wrk not installed: `apt-get install -y wrk` to add its figures)")
        return
    print(f"\n### Sustained adds, wrk ({duration:.0f} s each)\n")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        for connections in (8, 64):
            with emulator() as server:
                root = server.base_url.removesuffix("/v1")
                command = ["wrk", "-t2", f"-c{connections}", f"-d{duration:.0f}s", "--latency"]
                output = subprocess.run(
                    [*command, "-s", script.name, root], capture_output=True, text=True, check=True
                ).stdout
                rate = _field(r"Requests/sec:\s+([\d.]+)", output)
                p50 = _field(r"^\s+50%\s+(\S+)", output)
                p99 = _field(r"^\s+99%\s+(\S+)", output)
                print(
                    f"- `{' '.join(command)}`: {float(rate):,.0f} adds/s, "
                    f"latency p50 {p50}, p99 {p99}"
                )
    finally:
        os.unlink(script.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list-size", type=int, default=1_000_000)
    parser.add_argument("--threads", default="1,4,8", help="client thread counts, comma-separated")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per run")
    parser.add_argument("--wrk", action="store_true", help="also load the emulator with wrk")
    args = parser.parse_args()
    bench_list(args.list_size)
    bench_adds([int(n) for n in args.threads.split(",")], args.duration)
    if args.wrk:
        bench_wrk(args.duration)


if __name__ == "__main__":
    main()
