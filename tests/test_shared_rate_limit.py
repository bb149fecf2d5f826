"""One rate limit per account for every process, through a table of permits in PostgreSQL.

Issue 11 §3: with a run per pod, each process's in-memory limiter allows the full rate, so N
processes send N times the provider's limit. Here two client processes push halves of one list
against the emulator; what the emulator recorded (outcomes, arrival times) is what is checked.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from smsp_connector.client import SmspClient, SmspConfigurationError, SmspTransportError
from smsp_connector.client.rate_limit import (
    MemoryRateLimiter,
    PostgresRateLimiter,
    bucket_table,
    permit_table,
)
from smsp_connector.dagster.resource import SmspResource
from smsp_connector.emulator import FaultSettings
from smsp_connector.settings import Settings

from .conftest import API_KEY, FAST_RETRY
from .instances import instance_for_test
from .pipeline_helpers import PipelineRig
from .postgres_server import postgres_server, require_postgres
from .test_client_resilience import _busiest_second

ROOT = Path(__file__).resolve().parents[1]
SHARED_LIMIT = 50
PROVIDER_LIMIT = 70  # requests a second: above one shared limit, below two
PER_PROCESS = 150
PASSWORD = f"pw-{uuid.uuid4().hex}"

_WORKER = textwrap.dedent(
    f"""
    import json, random, sys, time
    from smsp_connector.client import SmspClient, RetryPolicy
    from smsp_connector.client.transport import HttpTransport

    api_key, base_url, rate, dsn, name, start, hold_up = sys.argv[1:8]
    send, dice = HttpTransport._send, random.Random(int(start))

    def held_up_send(self, *args, **kwargs):
        # Half the requests held up between the permit and the wire (a busy machine, a
        # slow network): those land among the ones sent later.
        time.sleep(dice.choice((0.0, float(hold_up))))
        return send(self, *args, **kwargs)

    HttpTransport._send = held_up_send
    retry = RetryPolicy(max_attempts=8, backoff_initial=0.01, backoff_max=0.2)
    with SmspClient(api_key, base_url=base_url, rate_limit=float(rate), retry=retry,
                    rate_limit_dsn=dsn or None, rate_limit_name=name, max_workers=8) as client:
        print("ready", flush=True)
        sys.stdin.readline()  # both processes start together
        numbers = [f"+336{{n:08d}}" for n in range(int(start), int(start) + {PER_PROCESS})]
        began = time.monotonic()
        results = list(client.bulk_add(numbers))
        ended = time.monotonic()
    statuses = sorted({{r.status.value for r in results}})
    print(json.dumps({{"statuses": statuses, "began": began, "ended": ended}}), flush=True)
    """
)


def _push_from_two_processes(
    emulator, dsn: str | None, name: str, *, rate: int = SHARED_LIMIT, hold_up: float = 0.0
) -> list[dict]:
    """Two worker processes, each pushing 150 numbers at ``rate``/s, half their requests (at
    random) held up ``hold_up`` seconds between the permit and the wire; what each reports: its
    results' statuses and when (``time.monotonic()``, one clock for the machine) its push
    began and ended."""
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                API_KEY,
                emulator.base_url,
                str(rate),
                dsn or "",
                name,
                str(start),
                str(hold_up),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for start in (0, PER_PROCESS)
    ]
    try:
        for worker in workers:
            line = worker.stdout.readline()
            assert line.strip() == "ready", worker.stderr.read()[-3000:]
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=120) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-3000:]
    return [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]


def _adds(emulator) -> list[dict]:
    log = emulator.stats(detail=True)["requests"]
    return sorted(
        (r for r in log if r["endpoint"] == "stop-sms/add"), key=lambda r: r["arrived_at"]
    )


@pytest.mark.slow
def test_two_processes_sharing_the_bucket_stay_within_one_limit(emulator, postgres_dsn):
    # The provider's limit between one shared limit and two: two processes each at the full
    # limit exceed it (the control below sees more than 75 in a second), one shared limit does
    # not, and the provider never counts more than that limit in a second.
    emulator.faults = FaultSettings(rate_limit=PROVIDER_LIMIT)

    reports = _push_from_two_processes(emulator, postgres_dsn, f"shared_{uuid.uuid4().hex[:8]}")

    assert [report["statuses"] for report in reports] == [["applied"], ["applied"]]
    assert emulator.state.stop_count() == 2 * PER_PROCESS
    log = _adds(emulator)
    outcomes = [r["outcome"] for r in log]
    assert outcomes.count("http:429") == 0, "the provider refused some: the limit was exceeded"
    assert outcomes == ["code:200"] * 2 * PER_PROCESS, "one request per number, no retry"
    arrivals = [r["arrived_at"] for r in log]
    busiest = _busiest_second(arrivals)
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    print(f"shared bucket: busiest 1 s window {busiest}, mean rate {rate:.1f}/s")
    assert busiest <= SHARED_LIMIT, f"{busiest} requests reached the provider in one second"
    assert rate <= SHARED_LIMIT
    # Not one process after the other: both pushed at once, each paced by the shared limit.
    overlap = min(r["ended"] for r in reports) - max(r["began"] for r in reports)
    span = max(r["ended"] for r in reports) - min(r["began"] for r in reports)
    assert overlap > 0.5 * span, (overlap, span)


@pytest.mark.slow
def test_at_the_providers_own_limit_nothing_is_refused_whatever_holds_requests_up(
    emulator, postgres_dsn
):
    """Two processes sharing the provider's own limit, half their requests held up a second
    between the permit and the wire: a shared limit counting sends lets the late ones land in
    one second beside those sent on time (HTTP 429); permits held until one window after
    their answer never let the provider count more than the limit."""
    emulator.faults = FaultSettings(rate_limit=SHARED_LIMIT, latency_ms=5)

    reports = _push_from_two_processes(
        emulator, postgres_dsn, f"held_{uuid.uuid4().hex[:8]}", hold_up=1.0
    )

    assert [report["statuses"] for report in reports] == [["applied"], ["applied"]]
    log = _adds(emulator)
    assert [r["outcome"] for r in log] == ["code:200"] * 2 * PER_PROCESS
    assert _busiest_second([r["arrived_at"] for r in log]) <= SHARED_LIMIT


@contextlib.contextmanager
def _limiter_and_a_waiting_peer(
    dsn: str, label: str
) -> Iterator[tuple[PostgresRateLimiter, threading.Thread, threading.Event]]:
    """A limiter at 5/s; a thread, not started, that takes a permit from another limiter of
    the same name (another process's view) and then sets the event."""
    name = f"{label}_{uuid.uuid4().hex[:8]}"
    limiter, other = (PostgresRateLimiter(dsn, 5, name=name) for _ in range(2))
    granted = threading.Event()

    def take() -> None:
        with other.permit():
            granted.set()

    try:
        yield limiter, threading.Thread(target=take, daemon=True), granted
    finally:
        limiter.close()
        other.close()


@pytest.mark.slow  # a PostgreSQL server
def test_a_request_still_out_holds_its_place(postgres_dsn):
    """Five permits at 5/s still out (their answers not back): a sixth waits for one of them
    (up to their 60 s lease), and is given one window after the first answer is back."""
    with _limiter_and_a_waiting_peer(postgres_dsn, "out") as (limiter, sixth, granted):
        with ExitStack() as out:
            for _ in range(5):
                out.enter_context(limiter.permit())
            sixth.start()
            # A limit counting sends would let the sixth go 1 s after the first was sent.
            assert not granted.wait(2.5), "a sixth permit while five requests were still out"
            answered = time.monotonic()
        assert granted.wait(10)
        assert time.monotonic() - answered >= 0.9
        sixth.join()


@pytest.mark.slow  # a PostgreSQL server
def test_a_process_frozen_inside_a_transaction_stalls_the_others_for_seconds_only(postgres_dsn):
    """A process stopped while one of its limiter sessions holds the table's lock (a paused
    VM) would stall every other process's permits until the server noticed the dead
    connection, hours later: the server ends such a transaction after 5 s."""
    with _limiter_and_a_waiting_peer(postgres_dsn, "frozen") as (frozen, waiting, granted):
        # One of its own sessions, left as a frozen process would; the server ends it.
        with contextlib.suppress(psycopg.Error), frozen._pool.connection() as conn:
            conn.execute("BEGIN")
            conn.execute(f'LOCK TABLE "{frozen.table}" IN EXCLUSIVE MODE')
            waiting.start()
            assert granted.wait(30), "a frozen session held every permit"
        waiting.join()


@pytest.mark.slow  # a PostgreSQL server
def test_a_failed_clean_up_does_not_fail_the_permit(postgres_dsn, monkeypatch, caplog):
    limiter = PostgresRateLimiter(postgres_dsn, 5, name=f"leak_{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(limiter._sql, "leak", psycopg.sql.SQL("SELECT 1/0"))
    try:
        with limiter.permit():
            pass
        with limiter.permit():  # no second clean-up within a second: nothing logged again
            pass
    finally:
        limiter.close()
    assert caplog.text.count("old permits not deleted: DivisionByZero") == 1


@pytest.mark.slow
def test_without_the_shared_bucket_two_processes_send_twice_the_limit(emulator):
    """The control: what the emulator sees from two processes with in-memory limiters."""
    reports = _push_from_two_processes(emulator, None, "unused")

    assert [report["statuses"] for report in reports] == [["applied"], ["applied"]]
    busiest = _busiest_second([r["arrived_at"] for r in _adds(emulator)])
    print(f"in-memory limiters: busiest 1 s window {busiest}")
    assert busiest > 1.5 * SHARED_LIMIT > PROVIDER_LIMIT


@pytest.mark.slow  # a PostgreSQL server
def test_settings_flow_to_a_postgres_limiter_named_after_the_account(emulator, postgres_dsn):
    settings = Settings(
        api_key=API_KEY,
        base_url=emulator.base_url,
        rate_limit_dsn=postgres_dsn,
        key_prefix="acme_fr",
    )
    resource = SmspResource.from_settings(settings)

    with resource.get_client() as client:
        client.add_stop("+33612345678")
        limiter = client._transport._limiter
        assert isinstance(limiter, PostgresRateLimiter)
        assert limiter.table == "smsp_acme_fr_permits"
    with psycopg.connect(postgres_dsn) as conn:
        (count,) = conn.execute('SELECT count(*) FROM "smsp_acme_fr_permits"').fetchone()
        tables = [row[0] for row in conn.execute("SELECT tablename FROM pg_tables").fetchall()]
    assert count == 1
    assert not any(API_KEY.lower() in table for table in tables)
    # Without a DSN: today's in-memory limiter.
    with Settings(api_key=API_KEY, base_url=emulator.base_url).client() as client:
        assert isinstance(client._transport._limiter, MemoryRateLimiter)


@pytest.mark.slow  # a PostgreSQL server
def test_the_dsn_comes_from_the_environment_and_dagster_shows_its_name(postgres_dsn):
    env = {"SMSP_RATE_LIMIT_DSN": postgres_dsn}

    settings = Settings.from_env(env)

    assert settings.rate_limit_dsn_var == "SMSP_RATE_LIMIT_DSN"
    assert settings.rate_limit_dsn is None
    assert settings.resolve_rate_limit_dsn(env) == postgres_dsn
    resource = SmspResource.from_settings(settings)
    assert isinstance(resource.rate_limit_dsn, dg.EnvVar)
    assert resource.rate_limit_dsn.env_var_name == "SMSP_RATE_LIMIT_DSN"
    assert Settings.from_env({}).resolve_rate_limit_dsn({}) is None


def test_the_component_takes_the_dsn_only_as_a_variable():
    from smsp_connector import SmspComponent

    component = SmspComponent.resolve_from_yaml(
        'api_key: "{{ env.SMSP_API_KEY }}"\nrate_limit_dsn: "{{ env.SMSP_RATE_LIMIT_DSN }}"\n'
    )
    assert component.settings().rate_limit_dsn_var == "SMSP_RATE_LIMIT_DSN"
    with pytest.raises(Exception, match="rate_limit_dsn must name an environment variable"):
        SmspComponent.resolve_from_yaml(
            'api_key: "{{ env.SMSP_API_KEY }}"\n'
            f'rate_limit_dsn: "postgresql://u:{PASSWORD}@db.example/x"\n'
        )
    unset = SmspComponent.resolve_from_yaml('api_key: "{{ env.SMSP_API_KEY }}"\n')
    assert unset.settings().rate_limit_dsn_var is None


@pytest.mark.slow  # a PostgreSQL server
def test_the_dsn_password_is_never_shown(emulator, postgres_dsn, caplog):
    caplog.set_level(logging.DEBUG)
    # Trust authentication ignores the password, so this DSN works.
    with_password = postgres_dsn.replace("@", f":{PASSWORD}@", 1)
    settings = Settings(api_key=API_KEY, base_url=emulator.base_url, rate_limit_dsn=with_password)
    resource = SmspResource.from_settings(settings)
    with resource.get_client() as client:
        client.add_stop("+33612345678")
        shown = [repr(settings), repr(resource), repr(client), repr(client._transport._limiter)]
    # Nothing listens on port 1: the error names the failure, not the password.
    unreachable = f"postgresql://smsp:{PASSWORD}@127.0.0.1:1/smsp"
    with pytest.raises(SmspConfigurationError) as refused:
        SmspClient(
            API_KEY,
            base_url=emulator.base_url,
            rate_limit=10,
            rate_limit_dsn=unreachable,
            retry=FAST_RETRY,
        )
    message = str(refused.value)
    assert "cannot reach the shared rate limit's database" in message
    assert refused.value.__cause__ is None and refused.value.__context__ is None
    for text in [*shown, message, caplog.text]:
        assert PASSWORD not in text


def test_a_database_lost_mid_run_fails_the_call_without_the_password(emulator, caplog):
    require_postgres()
    caplog.set_level(logging.DEBUG)
    with postgres_server() as server:
        dsn = server.dsn.replace("@", f":{PASSWORD}@", 1)
        client = SmspClient(
            API_KEY, base_url=emulator.base_url, rate_limit=10, rate_limit_dsn=dsn, retry=FAST_RETRY
        )
        client.add_stop("+33612345678")
    # The server is gone: the next call gets no permit, and nothing is sent.
    with client, pytest.raises(SmspTransportError, match="no permit from the shared rate limit"):
        client.add_stop("+33698765432")
    assert emulator.state.stop_count() == 1
    assert PASSWORD not in caplog.text


def test_bucket_tables_are_named_from_the_label_only():
    assert bucket_table("smsp") == "smsp_smsp"
    assert bucket_table("main") == "smsp_main"
    odd = bucket_table("Acme/EU")
    assert odd.startswith("smsp_acme_eu_") and len(odd) == len("smsp_acme_eu_") + 8
    assert bucket_table("Acme/EU") != bucket_table("acme_eu")
    assert len(permit_table("x" * 200)) <= 63  # PostgreSQL's longest name
    with pytest.raises(SmspConfigurationError):
        bucket_table("")


@pytest.mark.slow  # a PostgreSQL server
def test_a_pipeline_run_takes_its_permits_from_the_shared_bucket(emulator, postgres_dsn, tmp_path):
    emulator.state.seed_entries([("+33612345678", "2025-07-14 09:30:00")])
    with instance_for_test() as instance:
        rig = PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)
        name = f"run_{uuid.uuid4().hex[:8]}"
        result = rig.run(
            rig.defs.extract.assets, rate_limit=20, rate_limit_dsn=postgres_dsn, account=name
        )
    assert result.success
    with psycopg.connect(postgres_dsn) as conn:
        (count,) = conn.execute(f'SELECT count(*) FROM "smsp_{name}_permits"').fetchone()
    assert count >= 1, "the stop list's request took a permit from the shared bucket"
