"""`smsp emulator` as a user runs it: a subprocess, a URL line, signals, seeds."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import phonenumbers
import pytest
import requests
from click.testing import CliRunner

from smsp_connector.cli import main

pytestmark = pytest.mark.slow  # emulator subprocesses

SECRET = "cli-secret-key-4b1d"
URL_LINE = re.compile(r"^SMS Partner emulator listening on (http://\S+/v1) \(api key: set\)$")


class Emulator:
    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process = process
        self.base_url = base_url

    def list_numbers(self) -> list[str]:
        response = requests.get(f"{self.base_url}/stop-sms/list", params={"apiKey": SECRET})
        return [d["phoneNumber"] for d in response.json()["data"]]


def _read_lines(stream: object, lines: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)


@contextmanager
def run_emulator(*args: str, env_key: bool = False) -> Iterator[Emulator]:
    """Start `python -m smsp_connector.cli emulator --port 0 ...`; yields once its URL is out.

    On exit it must still be running; the caller's `stop()` decides how it ends.
    """
    env = {**os.environ}
    command = [sys.executable, "-m", "smsp_connector.cli", "emulator", "--port", "0", *args]
    if env_key:
        env["SMSP_API_KEY"] = SECRET
    else:
        command += ["--api-key", SECRET]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        try:
            first = lines.get(timeout=30)
        except queue.Empty:
            pytest.fail("the emulator printed no URL line within 30 s")
        match = URL_LINE.match(first.rstrip("\n"))
        assert match, first
        yield Emulator(process, match.group(1))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def stop(emulator: Emulator, signum: int) -> str:
    """Send `signum`, check a clean exit, return everything the process printed."""
    emulator.process.send_signal(signum)
    assert emulator.process.wait(15) == 0
    assert emulator.process.stderr is not None
    return emulator.process.stderr.read()


def test_serves_requests_and_stops_on_sigterm_without_leaking_the_key() -> None:
    with run_emulator() as emulator:
        response = requests.get(f"{emulator.base_url}/me", params={"apiKey": SECRET}, timeout=10)
        assert response.json()["success"] is True
        added = requests.post(
            f"{emulator.base_url}/stop-sms/add",
            json={"apiKey": SECRET, "phoneNumber": "0612345678"},
            timeout=10,
        )
        assert added.json()["success"] is True
        wrong = requests.get(f"{emulator.base_url}/me", params={"apiKey": "nope"}, timeout=10)
        assert wrong.json()["code"] == 10
        stderr = stop(emulator, signal.SIGTERM)
    assert SECRET not in stderr


def test_stops_on_sigint_with_the_key_from_the_environment() -> None:
    with run_emulator(env_key=True) as emulator:
        response = requests.get(f"{emulator.base_url}/me", params={"apiKey": SECRET}, timeout=10)
        assert response.json()["success"] is True
        assert SECRET not in stop(emulator, signal.SIGINT)


def test_seed_from_a_provider_json_export(tmp_path: Path) -> None:
    export = {
        "success": True,
        "code": 200,
        "nbData": 2,
        "data": [
            {"id": 19, "phoneNumber": "+33612345678", "createdAt": "2015-07-20 10:19:45"},
            {"id": 20, "phoneNumber": "0612", "createdAt": "2016-01-01 00:00:00"},
        ],
    }
    seed = tmp_path / "stops.json"
    seed.write_text(json.dumps(export))
    with run_emulator("--seed", str(seed)) as emulator:
        assert emulator.list_numbers() == ["+33612345678", "0612"]
        stop(emulator, signal.SIGTERM)


def test_seed_from_a_bare_json_list(tmp_path: Path) -> None:
    seed = tmp_path / "stops.json"
    seed.write_text(
        json.dumps([{"phoneNumber": "+33698765432", "createdAt": "2020-02-02 02:02:02"}])
    )
    with run_emulator("--seed", str(seed)) as emulator:
        assert emulator.list_numbers() == ["+33698765432"]
        stop(emulator, signal.SIGTERM)


def test_seed_from_csv_keeps_numbers_as_text(tmp_path: Path) -> None:
    seed = tmp_path / "stops.csv"
    seed.write_text(
        "id,phoneNumber,createdAt\n"
        "7,0612345678,2019-03-04 05:06:07\n"
        "8,+4915112345678,2019-03-05 05:06:07\n"
    )
    with run_emulator("--seed", str(seed)) as emulator:
        assert emulator.list_numbers() == ["0612345678", "+4915112345678"]
        stop(emulator, signal.SIGTERM)


def test_demo_size_generates_distinct_valid_french_mobiles() -> None:
    with run_emulator("--demo-size", "300") as emulator:
        numbers = emulator.list_numbers()
        stop(emulator, signal.SIGTERM)
    assert len(numbers) == len(set(numbers)) == 300
    for number in numbers:
        assert re.fullmatch(r"\+33[67]\d{8}", number)
        assert phonenumbers.is_valid_number(phonenumbers.parse(number))


def test_fault_options_are_applied() -> None:
    with run_emulator(
        "--fail-rate", "1", "--random-seed", "3", "--error-status", "400"
    ) as emulator:
        response = requests.get(f"{emulator.base_url}/me", params={"apiKey": SECRET}, timeout=10)
        assert response.status_code in (500, 503)
        stop(emulator, signal.SIGTERM)


def test_bad_invocations_fail_clearly(tmp_path: Path) -> None:
    runner = CliRunner()
    missing_key = runner.invoke(main, ["emulator"], env={"SMSP_API_KEY": None})
    assert missing_key.exit_code == 2 and "--api-key" in missing_key.output
    bad_seed = tmp_path / "stops.csv"
    bad_seed.write_text("number,date\n0612345678,2020-01-01 00:00:00\n")
    result = runner.invoke(main, ["emulator", "--api-key", "k", "--seed", str(bad_seed)])
    assert result.exit_code == 1 and "phoneNumber column" in result.output
    result = runner.invoke(main, ["emulator", "--api-key", "k", "--fail-rate", "2"])
    assert result.exit_code == 2


def test_without_the_emulator_extra_one_line_says_which_to_install() -> None:
    # Python refuses to import a module whose sys.modules entry is None: as if uvicorn were
    # not installed.
    script = (
        "import sys; sys.modules['uvicorn'] = None\n"
        "from smsp_connector.cli import main\n"
        "main(['emulator', '--api-key', 'k'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: the emulator needs its extra (uvicorn is missing): "
        "pip install 'smsp-connector[emulator]'"
    ]
