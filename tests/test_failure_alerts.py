"""The failure alert sensor, evaluated against real failed runs in a test instance: one message
per failed run of the monitored jobs, posted to a local webhook or Slack-like API, or given to
``notify``; never the webhook URL, the token or the API key in a message, a log or an error."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dagster as dg
import pytest

from smsp_connector.dagster import alerts, build_definitions
from smsp_connector.dagster.alerts import build_failure_alert_sensor
from smsp_connector.settings import Settings

from .conftest import API_KEY
from .instances import instance_for_test
from .pipeline_helpers import PipelineRig
from .proxy_helpers import SHUTDOWN_POLL_SECONDS, failing_proxy

pytestmark = pytest.mark.heavy

NUMBERS = [f"+3361000000{n}" for n in range(10)]
HOOK_SECRET = f"hook-{secrets.token_hex(12)}"
SLACK_TOKEN = f"xoxb-{secrets.token_hex(12)}"


@dataclass
class Recorder:
    """A local HTTP server that records each POST and answers with the next queued reply."""

    server: ThreadingHTTPServer
    requests: list[dict[str, Any]] = field(default_factory=list)
    replies: list[tuple[int, str]] = field(default_factory=list)
    default_reply: tuple[int, str] = (200, "ok")

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def reply(self) -> tuple[int, str]:
        return self.replies.pop(0) if self.replies else self.default_reply


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    recorder = Recorder(server)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            recorder.requests.append(
                {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
            )
            status, text = recorder.reply()
            payload = text.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(
        target=server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), daemon=True
    )
    thread.start()
    yield recorder
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def alert_env(monkeypatch) -> None:
    for name in ("SMSP_ALERT_WEBHOOK_URL", "SMSP_ALERT_SLACK_TOKEN", "SMSP_ALERT_SLACK_CHANNEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SMSP_API_KEY", API_KEY)
    monkeypatch.setattr(alerts, "RETRY_WAIT_SECONDS", 0.01)


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def text(self) -> str:
        return "\n".join(record.getMessage() for record in self.records)

    def at(self, level: int) -> list[str]:
        return [record.getMessage() for record in self.records if record.levelno == level]


@dataclass
class SensorRig:
    """Evaluates a sensor as the daemon does: its cursor carried from tick to tick."""

    sensor: dg.SensorDefinition
    instance: dg.DagsterInstance
    cursor: str | None = None
    lines: Lines = field(default_factory=Lines)

    def tick(self):
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor)
        context.log.addHandler(self.lines)
        data = self.sensor.evaluate_tick(context)
        self.cursor = data.cursor
        return data


def _failing_job(name: str = "tiny_job", message: str = "the provider said no", **tags: str):
    @dg.op(name="boom")
    def boom() -> None:
        raise dg.Failure(description=message)

    @dg.job(name=name, tags=tags)
    def job() -> None:
        boom()

    return job


def test_a_blocked_stop_list_run_posts_one_line_to_the_webhook(
    emulator, recorder, monkeypatch, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG, logger="urllib3")
    webhook = f"{recorder.url}/services/T000/B000/{HOOK_SECRET}"
    monkeypatch.setenv("SMSP_ALERT_WEBHOOK_URL", webhook)
    with instance_for_test() as instance:
        rig = PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)
        built = build_definitions(rig.settings())
        jobs = built.jobs
        sensor = build_failure_alert_sensor(
            name="smsp_failure_alert", jobs=[jobs.refresh, jobs.push, jobs.delete, jobs.cancel]
        )
        ticks = SensorRig(sensor, instance)
        assert ticks.tick().skip_message.startswith("Initiating smsp_failure_alert")

        emulator.state.seed_entries((number, "2025-07-14 09:30:00") for number in NUMBERS)
        assert built.job("smsp_refresh").execute_in_process(instance=instance).success
        for number in NUMBERS[:6]:
            emulator.state.delete_stop(emulator.state.stop_id_for(number))
        blocked = built.job("smsp_refresh").execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert not blocked.success
        unmonitored = _failing_job().execute_in_process(instance=instance, raise_on_error=False)
        assert not unmonitored.success

        data = ticks.tick()

        [posted] = recorder.requests
        assert posted["path"] == f"/services/T000/B000/{HOOK_SECRET}"
        assert posted["headers"]["Content-Type"] == "application/json"
        assert list(posted["json"]) == ["text"]
        message = posted["json"]["text"]
        assert message.startswith(
            f"Dagster run failed (job smsp_refresh, account smsp, run {blocked.run_id}): "
            "smsp__stop_list: no_sudden_shrink: the list went from 10 to 4 entries"
        )
        for part in ("no_sudden_shrink", "smsp.stop_list is unchanged", "accept_shrink"):
            assert part in message, part
        assert "\n" not in message
        [reaction] = data.dagster_run_reactions
        assert reaction.dagster_run.run_id == blocked.run_id
        assert reaction.error is None
        assert "posted to $SMSP_ALERT_WEBHOOK_URL" in ticks.lines.text

        assert (
            built.job("smsp_refresh")
            .execute_in_process(
                instance=instance,
                run_config=built.keys.op_config(built.keys.stop_list, accept_shrink=True),
            )
            .success
        )
        ticks.tick()
        assert len(recorder.requests) == 1, "a successful run posts nothing"

        assert '"POST *** HTTP/1.1" 200' in caplog.text, "urllib3's debug line, its path masked"
        for text in (message, ticks.lines.text, caplog.text):
            for secret in (HOOK_SECRET, webhook, API_KEY):
                assert secret not in text


def test_a_push_whose_rows_failed_after_every_retry_is_announced(emulator, tmp_path):
    messages: list[str] = []
    source = tmp_path / "opt_outs.csv"
    source.write_text("phone\n+33611111111\n+33622222222\n", encoding="utf-8")
    with (
        instance_for_test() as instance,
        failing_proxy(emulator.base_url, {"/v1/stop-sms/add"}) as base_url,
    ):
        rig = PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)
        built = build_definitions(rig.settings(base_url=base_url, max_attempts=2))
        sensor = build_failure_alert_sensor(
            name="alerts", jobs=[built.jobs.push], notify=messages.append
        )
        ticks = SensorRig(sensor, instance)
        ticks.tick()
        result = built.job("push_stop_numbers").execute_in_process(
            instance=instance,
            run_config=built.keys.op_config(built.keys.additions, csv_path=str(source)),
            raise_on_error=False,
        )
        assert not result.success

        ticks.tick()

    assert messages == [
        f"Dagster run failed (job push_stop_numbers, account smsp, run {result.run_id}): "
        "smsp__stop_list_additions_every_number_pushed: 2 number(s) could not be pushed after "
        f"every retry (outcome 'failed' in smsp.audit_log, run {result.run_id}); every outcome "
        "is recorded and the list refreshed: run the same file again."
    ]


def test_notify_gets_the_message_of_a_failed_run(monkeypatch):
    """Invoked directly, as Dagster's docs test run failure sensors."""
    messages: list[str] = []
    job = _failing_job(
        "push_stop_numbers",
        f"the provider said no (GET /v1/stop-sms/list?apiKey={API_KEY}&page=1, key {API_KEY})",
        **{"smsp/account": "acme"},
    )
    sensor = build_failure_alert_sensor(name="alerts", jobs=[job], notify=messages.append)
    with instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        context = dg.build_run_status_sensor_context(
            sensor_name="alerts",
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
        )

        assert sensor(context) is None

    assert messages == [
        f"Dagster run failed (job push_stop_numbers, account acme, run {result.run_id}): "
        "boom: the provider said no (GET /v1/stop-sms/list?apiKey=***&page=1, key ***)"
    ]


def test_an_error_names_its_class_and_a_long_message_is_cut():
    messages: list[str] = []

    @dg.op(name="explode")
    def explode() -> None:
        raise ValueError("x" * 5000 + "\nsecond line")

    @dg.job(name="cancel_scheduled_messages")
    def job() -> None:
        explode()

    sensor = build_failure_alert_sensor(name="alerts", jobs=[job], notify=messages.append)
    with instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        sensor(
            dg.build_run_status_sensor_context(
                sensor_name="alerts",
                dagster_event=result.get_run_failure_event(),
                dagster_instance=instance,
                dagster_run=result.dagster_run,
            )
        )

    [message] = messages
    assert message.startswith(
        f"Dagster run failed (job cancel_scheduled_messages, run {result.run_id}): "
        "explode: ValueError: xxx"
    )
    assert len(message) == alerts.MAX_MESSAGE_CHARS
    assert message.endswith("x…")
    assert "second line" not in message


def _reaction_to_one_failed_run():
    """The alert sensor's one reaction to one failed run, and the ticks' log lines."""
    job = _failing_job()
    sensor = build_failure_alert_sensor(name="alerts", jobs=[job])
    with instance_for_test() as instance:
        ticks = SensorRig(sensor, instance)
        ticks.tick()
        job.execute_in_process(instance=instance, raise_on_error=False)

        [reaction] = ticks.tick().dagster_run_reactions
    return reaction, ticks


def test_without_a_destination_it_warns_once_per_evaluation_and_posts_nothing(recorder):
    job = _failing_job()
    sensor = build_failure_alert_sensor(name="alerts", jobs=[job])
    with instance_for_test() as instance:
        ticks = SensorRig(sensor, instance)
        ticks.tick()
        first, second = (
            job.execute_in_process(instance=instance, raise_on_error=False) for _ in range(2)
        )

        data = ticks.tick()

        assert data.skip_message.startswith("no alert destination: set SMSP_ALERT_WEBHOOK_URL")
        assert first.run_id in data.skip_message
        assert len(ticks.lines.at(logging.WARNING)) == 1
        assert second.run_id in ticks.tick().skip_message, "the next evaluation, the next run"
        assert len(ticks.lines.at(logging.WARNING)) == 2
        assert not ticks.tick().dagster_run_reactions
        assert len(ticks.lines.at(logging.WARNING)) == 2
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("replies", "attempts", "problem"),
    [
        ([(500, "oops")] * 3, 3, "HTTP 500 'oops'"),
        ([(503, ""), (200, "ok")], 2, None),
        ([(404, "no_service")], 1, "HTTP 404 'no_service'"),
    ],
    ids=["5xx-three-times", "5xx-then-ok", "404-at-once"],
)
def test_a_refusing_webhook_is_retried_and_reported_without_its_url(
    recorder, monkeypatch, replies, attempts, problem
):
    webhook = f"{recorder.url}/services/T000/B000/{HOOK_SECRET}"
    monkeypatch.setenv("SMSP_ALERT_WEBHOOK_URL", webhook)
    recorder.replies = list(replies)
    reaction, ticks = _reaction_to_one_failed_run()

    assert len(recorder.requests) == attempts
    if problem is None:
        assert reaction.error is None
        return
    error = reaction.error.to_string()
    assert "AlertDeliveryError: alert for run " in error
    assert f"not posted: $SMSP_ALERT_WEBHOOK_URL: {problem}" in error
    for text in (error, ticks.lines.text):
        assert HOOK_SECRET not in text
        assert recorder.url not in text
    assert problem in ticks.lines.at(logging.WARNING)[0]


def test_an_unreachable_webhook_is_reported_without_its_url(recorder, monkeypatch):
    recorder.server.shutdown()
    recorder.server.server_close()
    webhook = f"{recorder.url}/services/T000/B000/{HOOK_SECRET}"
    monkeypatch.setenv("SMSP_ALERT_WEBHOOK_URL", webhook)
    reaction, _ = _reaction_to_one_failed_run()

    error = reaction.error.to_string()
    assert "ConnectionError (unreachable)" in error
    assert HOOK_SECRET not in error
    assert recorder.url not in error


def test_slack_chat_post_message_gets_the_channel_and_the_token_in_its_header(
    recorder, monkeypatch
):
    monkeypatch.setenv("SMSP_ALERT_SLACK_TOKEN", SLACK_TOKEN)
    monkeypatch.setenv("SMSP_ALERT_SLACK_CHANNEL", "#stop-list")
    recorder.replies = [(200, '{"ok": true}'), (200, '{"ok": false, "error": "not_in_channel"}')]
    job = _failing_job(message="<!channel> file a&b.csv", **{"smsp/account": "main"})
    sensor = build_failure_alert_sensor(
        name="alerts", jobs=[job], slack_api_url=f"{recorder.url}/api/chat.postMessage"
    )
    with instance_for_test() as instance:
        ticks = SensorRig(sensor, instance)
        ticks.tick()
        posted = job.execute_in_process(instance=instance, raise_on_error=False)
        [accepted] = ticks.tick().dagster_run_reactions
        job.execute_in_process(instance=instance, raise_on_error=False)
        [refused] = ticks.tick().dagster_run_reactions

    first = recorder.requests[0]
    assert first["path"] == "/api/chat.postMessage"
    assert first["headers"]["Authorization"] == f"Bearer {SLACK_TOKEN}"
    assert first["json"] == {
        "channel": "#stop-list",
        "text": f"Dagster run failed (job tiny_job, account main, run {posted.run_id}): "
        "boom: &lt;!channel&gt; file a&amp;b.csv",
    }
    assert accepted.error is None
    assert len(recorder.requests) == 2, "a refusal in a 200 answer is not retried"
    error = refused.error.to_string()
    assert "Slack chat.postMessage to #stop-list: Slack refused it: not_in_channel" in error
    for text in (error, ticks.lines.text):
        assert SLACK_TOKEN not in text


def test_jobs_none_watches_every_job_of_the_code_location_and_an_empty_list_is_refused():
    messages: list[str] = []
    job = _failing_job("__ASSET_JOB")  # the job of automation-condition and UI runs
    sensor = build_failure_alert_sensor(name="alerts", jobs=None, notify=messages.append)
    with instance_for_test() as instance:
        ticks = SensorRig(sensor, instance)
        ticks.tick()
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        ticks.tick()

    assert messages == [
        f"Dagster run failed (job __ASSET_JOB, run {result.run_id}): boom: the provider said no"
    ]
    with pytest.raises(ValueError, match="jobs is empty"):
        build_failure_alert_sensor(name="alerts", jobs=[])


@pytest.mark.parametrize(
    ("environ", "status"),
    [
        ({}, dg.DefaultSensorStatus.STOPPED),
        ({"SMSP_ALERT_SLACK_TOKEN": "xoxb-token-1234"}, dg.DefaultSensorStatus.STOPPED),
        (
            {"SMSP_ALERT_SLACK_TOKEN": "xoxb-token-1234", "SMSP_ALERT_SLACK_CHANNEL": "#ops"},
            dg.DefaultSensorStatus.RUNNING,
        ),
        (
            {"SMSP_ALERT_WEBHOOK_URL": "https://hooks.example/T0/B0/x"},
            dg.DefaultSensorStatus.RUNNING,
        ),
    ],
)
def test_an_accounts_alert_sensor_is_on_once_a_destination_is_set(monkeypatch, environ, status):
    """Setting where alerts go is what turns them on: no second step in the UI to forget."""
    for variable in (
        "SMSP_ALERT_WEBHOOK_URL",
        "SMSP_ALERT_SLACK_TOKEN",
        "SMSP_ALERT_SLACK_CHANNEL",
    ):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environ.items():
        monkeypatch.setenv(variable, value)

    built = build_definitions(Settings(api_key=API_KEY))

    assert built.failure_alert_sensor.default_status == status


def test_a_failed_run_launched_by_the_accounts_automation_is_announced(recorder, monkeypatch):
    """Under ``refresh_by: automation`` the refresh runs as Dagster's asset job, which no job
    list names: the account's own automation sensor tags its runs with the account, and the
    account's alert sensor announces the failed runs carrying that tag (not another
    account's)."""
    monkeypatch.setenv("SMSP_ALERT_WEBHOOK_URL", f"{recorder.url}/services/T0/B0/{HOOK_SECRET}")
    built = build_definitions(Settings(api_key=API_KEY, key_prefix="acme", refresh_by="automation"))
    automation = {
        sensor.name: sensor
        for sensor in built.definitions.sensors or []
        if isinstance(sensor, dg.AutomationConditionSensorDefinition)
    }
    mine = _failing_job("__ASSET_JOB", **{"smsp/account": "acme"})
    other = _failing_job("__ASSET_JOB", **{"smsp/account": "main"})

    with instance_for_test() as instance:
        ticks = SensorRig(built.failure_alert_sensor, instance)
        ticks.tick()
        failed = mine.execute_in_process(instance=instance, raise_on_error=False)
        other.execute_in_process(instance=instance, raise_on_error=False)
        ticks.tick()

    assert list(automation) == ["acme__smsp_automation"]
    assert automation["acme__smsp_automation"].run_tags == {"smsp/account": "acme"}
    [posted] = recorder.requests
    assert f"job __ASSET_JOB, account acme, run {failed.run_id}" in posted["json"]["text"]
