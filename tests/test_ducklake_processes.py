"""Issue 11 §3: several processes writing one DuckLake at once, within one shared rate.

Two ``smsp push`` processes, each in its own working directory with its own HOME, TMPDIR and
DAGSTER_HOME (nothing shared on disk but the lake's data path), push the two halves of a
4,000-number file at the same time against an emulator process started with
``--rate-limit 105``; both have ``SMSP_RATE_LIMIT=100`` and the shared PostgreSQL bucket
(``SMSP_RATE_LIMIT_DSN``). What the emulator recorded and what the lake holds are checked from
the test process (a third connection), then a refresh from a third process
(``dagster asset materialize``) must see the whole list.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests

from smsp_connector.warehouse.lake import close_lakes

from .conftest import API_KEY
from .test_client_resilience import _busiest_second
from .test_ducklake import Lake, conninfo

pytestmark = pytest.mark.slow  # five subprocesses, about a minute

BIN = Path(sys.executable).parent
NUMBERS = 4_000
RATE = 100
PROVIDER_RATE = 105
URL_LINE = re.compile(r"^SMS Partner emulator listening on (http://\S+/v1) ")


def _start_emulator(cwd: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            str(BIN / "smsp"),
            "emulator",
            "--port",
            "0",
            "--rate-limit",
            str(PROVIDER_RATE),
            "--random-seed",
            "11",
        ],
        cwd=cwd,
        env={**os.environ, "SMSP_API_KEY": API_KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if match := URL_LINE.match(line):
            return process, match.group(1)
    process.kill()
    pytest.fail("the emulator printed no URL within 60 s")


def _worker_env(home: Path, base_url: str, lake: Lake, rate_dsn: str) -> dict[str, str]:
    for folder in ("tmp", "dagster_home"):
        (home / folder).mkdir()
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "CI")}
    return {
        **keep,
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "SMSP_API_KEY": API_KEY,
        "SMSP_BASE_URL": base_url,
        "SMSP_DUCKDB_PATH": lake.database,
        "SMSP_DUCKLAKE_DATA_PATH": lake.data_path,
        "SMSP_DUCKLAKE_METADATA_SCHEMA": lake.metadata_schema,
        "SMSP_RATE_LIMIT": str(RATE),
        "SMSP_RATE_LIMIT_DSN": rate_dsn,
        "SMSP_EXPORT_DIR": str(home / "exports"),
        "SMSP_INBOX_DIR": str(home / "inbox"),
    }


_REFRESH_DEFS = textwrap.dedent(
    """
    from smsp_connector.dagster import build_definitions
    from smsp_connector.settings import Settings

    defs = build_definitions(Settings.from_env()).definitions
    """
)


def test_two_processes_push_halves_into_one_lake_within_one_rate(postgres_dsn, tmp_path):
    lake = Lake(
        database=f"ducklake:postgres:{conninfo(postgres_dsn)}",
        data_path=str(tmp_path / "lake_data") + "/",
        metadata_schema=f"lake_{uuid.uuid4().hex[:10]}",
    )
    numbers = [f"+3361{n:07d}" for n in range(NUMBERS)]
    halves = (numbers[: NUMBERS // 2], numbers[NUMBERS // 2 :])
    (tmp_path / "emulator").mkdir()
    emulator, base_url = _start_emulator(tmp_path / "emulator")
    root = base_url.removesuffix("/v1")
    workers: list[subprocess.Popen[str]] = []
    try:
        envs = []
        for index, half in enumerate(halves):
            home = tmp_path / f"worker{index}"
            home.mkdir()
            (home / "opt_outs.csv").write_text("phone\n" + "\n".join(half) + "\n")
            envs.append((home, _worker_env(home, base_url, lake, postgres_dsn)))
        started = time.monotonic()
        workers = [
            subprocess.Popen(
                [str(BIN / "smsp"), "push", "opt_outs.csv"],
                cwd=home,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for home, env in envs
        ]
        outputs = [worker.communicate(timeout=280) for worker in workers]
        elapsed = time.monotonic() - started
        for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
            assert worker.returncode == 0, (stdout + stderr)[-3000:]
            assert API_KEY not in stdout + stderr

        # What reached the provider (the stats first, before this test's own list call):
        # every number once, no 429, never more than RATE a second.
        stats = requests.get(f"{root}/_emulator/stats", params={"detail": "1"}, timeout=30).json()
        listed = requests.get(
            f"{base_url}/stop-sms/list", params={"apiKey": API_KEY}, timeout=30
        ).json()["data"]
        assert Counter(entry["phoneNumber"] for entry in listed) == Counter(numbers)
        outcomes = {endpoint: dict(counts) for endpoint, counts in stats["endpoints"].items()}
        too_many = sum(counts.get("http:429", 0) for counts in stats["endpoints"].values())
        assert too_many == 0, stats["endpoints"]
        adds = sorted(
            (r for r in stats["requests"] if r["endpoint"] == "stop-sms/add"),
            key=lambda r: r["arrived_at"],
        )
        assert len(adds) == NUMBERS and all(r["outcome"] == "code:200" for r in adds)
        arrivals = [r["arrived_at"] for r in stats["requests"]]
        busiest = _busiest_second(arrivals)
        span = max(arrivals) - min(arrivals)
        print(
            f"\n{NUMBERS} numbers by 2 processes in {elapsed:.1f} s; {len(arrivals)} requests "
            f"over {span:.1f} s ({(len(arrivals) - 1) / span:.1f}/s), busiest 1 s window "
            f"{busiest}, HTTP 429: {too_many}, outcomes {dict(outcomes)}"
        )
        # The shared limit lets the two processes send RATE a second together: over the run
        # they never went faster (a limit per process would be twice as fast), whatever the
        # machine's load. Arrivals in one second may bunch past RATE by scheduling jitter on a
        # loaded machine (103 seen at load 4): the provider's own limit, RATE + 5%, is what
        # arrivals must never cross, and its 429s (none, above) would show it.
        assert 0.5 * RATE <= (len(arrivals) - 1) / span <= 1.05 * RATE
        assert busiest <= PROVIDER_RATE, f"{busiest} requests reached the provider in 1 s"

        # What the lake holds, through a third connection: one final audit row per input row.
        audit = lake.query(
            "SELECT run_id, source_file, source_row, target, outcome FROM smsp.audit_latest "
            "WHERE operation = 'add'"
        )
        assert len(audit) == NUMBERS
        assert Counter(row[3] for row in audit) == Counter(numbers)
        assert {row[4] for row in audit} == {"applied"}
        assert len({row[0] for row in audit}) == 2, "two runs"
        assert len({(row[0], row[2]) for row in audit}) == NUMBERS, "one row per input row"
        raw = dict(lake.query("SELECT outcome, count(*) FROM smsp.audit_log GROUP BY 1"))
        assert raw == {"pending": NUMBERS, "applied": NUMBERS}, raw
        # Both at once, not one after the other: their outcomes were written at the same time.
        (first_end, second_start, whole) = lake.query(
            "WITH runs AS (SELECT run_id, min(recorded_at) AS s, max(recorded_at) AS e "
            "FROM smsp.audit_log WHERE outcome = 'applied' GROUP BY 1) "
            "SELECT epoch(min(e)), epoch(max(s)), epoch(max(e)) - epoch(min(s)) FROM runs"
        )[0]
        overlap = first_end - second_start
        print(f"the two pushes overlapped for {overlap:.1f} s of {whole:.1f} s")
        assert overlap > 0.5 * whole
        close_lakes()

        # A refresh from a third process sees all of it.
        third = tmp_path / "refresher"
        third.mkdir()
        (third / "refresh_defs.py").write_text(_REFRESH_DEFS)
        env = _worker_env(third, base_url, lake, postgres_dsn)
        done = subprocess.run(
            [
                str(BIN / "dagster"),
                "asset",
                "materialize",
                "-f",
                "refresh_defs.py",
                "--select",
                "smsp/stop_list,smsp/stop_list_history",
            ],
            cwd=third,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        assert API_KEY not in done.stdout + done.stderr
        listed_in_lake = lake.query("SELECT phone_number FROM smsp.stop_list")
        assert Counter(row[0] for row in listed_in_lake) == Counter(numbers)
        assert lake.query("SELECT change, count(*) FROM smsp.stop_list_history GROUP BY 1") == [
            ("entered", NUMBERS)
        ]
        assert not any((tmp_path / f"worker{i}" / "data").exists() for i in (0, 1))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        emulator.kill()
        emulator.wait(10)
        close_lakes()
