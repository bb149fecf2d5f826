"""A run failure sensor that posts one line per failed run to a chat channel.

The failures worth a message all fail their run: a stop list blocked by its checks (the stop
list step fails after yielding them), numbers that could not be pushed or deleted after every
retry (``every_number_pushed`` / ``every_deletion_done`` fail their step), an unusable input
file, a provider that stayed unreachable. So one ``run_failure_sensor`` on the account's jobs
covers them all.

Where the message goes is read from the environment each time the sensor runs, so a
deployment sets it without code and no destination is ever stored in a definition:

- ``SMSP_ALERT_WEBHOOK_URL``: a JSON POST of ``{"text": message}``, which Slack's incoming
  webhooks accept (as do Mattermost's, Rocket.Chat's and most chat tools' "incoming webhook").
- ``SMSP_ALERT_SLACK_TOKEN`` and ``SMSP_ALERT_SLACK_CHANNEL``: a bot token and a channel, for
  Slack's ``chat.postMessage``.

Both may be set (each gets the message); with neither (and no ``notify``), the sensor logs one
warning per evaluation and skips. A webhook URL is a credential (anyone holding it can post),
like the token and the API key: none of them is put in a message, a log line or an error, and
they are masked in urllib3's debug log. ``<``, ``>`` and ``&`` are escaped as Slack asks, so
that no file name or provider message in an error can ``<!channel>`` anyone.

A destination that cannot be reached, or answers 429 or 5xx, is tried three times; one that
still refuses fails the sensor's tick (red in the UI, with a message naming the variable, never
its value). Dagster does not evaluate a run status sensor twice for the same run (its cursor
moves on even when the tick fails), so that run's alert is then lost: the tick's error says so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import dagster as dg
import requests
from dagster._utils.error import SerializableErrorInfo

from smsp_connector.client.redaction import MIN_SECRET_LENGTH, install_log_redaction, redact
from smsp_connector.dagster.keys import ACCOUNT_TAG
from smsp_connector.settings import (
    ALERT_SLACK_CHANNEL_VAR,
    ALERT_SLACK_TOKEN_VAR,
    ALERT_WEBHOOK_URL_VAR,
    API_KEY_VAR,
    AlertSettings,
)

SLACK_POST_MESSAGE_URL = "https://slack.com/api/chat.postMessage"
MAX_MESSAGE_CHARS = 1500
"""A chat line, not a report: the run's page in Dagster has the rest."""
ATTEMPTS = 3
RETRY_WAIT_SECONDS = 1.0
"""The wait after the first failed attempt, doubled after each."""
TIMEOUT_SECONDS = 10.0
MINIMUM_INTERVAL_SECONDS = 30


class AlertDeliveryError(RuntimeError):
    """A destination refused the message or could not be reached (the message says which and
    how, never where)."""


@dataclass(frozen=True)
class _Destination:
    label: str
    url: str
    payload: dict[str, str]
    headers: dict[str, str]
    slack_api: bool = False


def build_failure_alert_sensor(
    *,
    name: str,
    jobs: Sequence[dg.JobDefinition | dg.UnresolvedAssetJobDefinition] | None,
    notify: Callable[[str], None] | None = None,
    account: str | None = None,
    secret_envs: Sequence[str] = (API_KEY_VAR,),
    slack_api_url: str = SLACK_POST_MESSAGE_URL,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """A sensor posting one message per failed run of ``jobs``.

    ``jobs=None``: every job of the code location, including ``__ASSET_JOB``, the job of runs
    launched by automation conditions (the push sources' pushes) and of assets materialized
    from the UI, which no job list can name. In a code location holding several accounts,
    build only one such sensor.

    ``account``: only runs tagged with that account (:data:`.keys.ACCOUNT_TAG`) are announced
    (its jobs' runs, and the runs its automation launches as the asset job, which ``jobs=None``
    watches): one such sensor per account in a code location, none announcing another's runs.
    ``notify`` replaces the chat destinations (tests, other channels). ``secret_envs`` name
    variables whose values are masked in messages (the accounts' API key variables).
    ``slack_api_url`` is there for tests. On by default: an alert that must be switched on
    in the UI first is an alert that is off.
    """
    if jobs is not None and not jobs:
        # Dagster would read an empty list as "every job": say it explicitly with None.
        raise ValueError("jobs is empty: give the jobs to watch, or None for every job")
    monitored = ", ".join(job.name for job in jobs) if jobs else "any job of this code location"

    @dg.run_failure_sensor(
        name=name,
        monitored_jobs=list(jobs) if jobs is not None else None,
        minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
        default_status=default_status,
        description=f"Posts one message per failed run of {monitored} to "
        f"${ALERT_WEBHOOK_URL_VAR} (a Slack-compatible incoming webhook) or to Slack's "
        f"chat.postMessage with ${ALERT_SLACK_TOKEN_VAR} and ${ALERT_SLACK_CHANNEL_VAR}.",
    )
    def failure_alert(context: dg.RunFailureSensorContext) -> dg.SkipReason | None:
        if account is not None and context.dagster_run.tags.get(ACCOUNT_TAG) != account:
            return None  # another account's run, or none of an account's
        alerts = AlertSettings.from_env()
        keys = [os.environ.get(variable, "") for variable in secret_envs]
        secrets = _secret_values([*keys, alerts.webhook_url, alerts.slack_token])
        message = failure_message(context, secrets)
        if notify is not None:
            notify(message)
            return None
        destinations = _destinations(alerts, slack_api_url)
        if not destinations:
            # Returning ends this evaluation (the run status sensor stops at a returned value):
            # one warning per evaluation, and the tick says why nothing was posted.
            reason = (
                f"no alert destination: set {ALERT_WEBHOOK_URL_VAR}, or {ALERT_SLACK_TOKEN_VAR} "
                f"and {ALERT_SLACK_CHANNEL_VAR}; run {context.dagster_run.run_id} failed "
                "unannounced"
            )
            context.log.warning(reason)
            return dg.SkipReason(reason)
        run_id = context.dagster_run.run_id
        posted, problems = [], []
        for destination in destinations:
            problem = _post(destination, message)
            if problem:
                problems.append(_redacted(f"{destination.label}: {problem}", secrets))
            else:
                posted.append(destination.label)
        if posted:
            context.log.info(f"alert for run {run_id} posted to {', '.join(posted)}")
        if problems:
            text = "; ".join(problems)
            context.log.warning(f"alert for run {run_id} not posted: {text}")
            # Raised outside any except block: no chained exception carries a URL along.
            raise AlertDeliveryError(f"alert for run {run_id} not posted: {text}")
        return None

    return failure_alert


def failure_message(context: dg.RunFailureSensorContext, secrets: Sequence[str] = ()) -> str:
    """One line: the job, the account, the run and why it failed (each failed step's error,
    or the run's own failure when no step failed), with ``secrets`` and any ``apiKey=`` value
    masked before it is cut to :data:`MAX_MESSAGE_CHARS`."""
    run = context.dagster_run
    account = run.tags.get(ACCOUNT_TAG)
    reasons = [
        f"{event.step_key}: {_error_line(getattr(event.event_specific_data, 'error', None))}"
        for event in context.get_step_failure_events()
    ]
    if not reasons:
        event = context.failure_event
        error = getattr(event.event_specific_data, "error", None)
        reasons.append(_error_line(error) if error else _first_line(event.message))
    where = f"job {run.job_name}" + (f", account {account}" if account else "")
    text = _redacted(
        f"Dagster run failed ({where}, run {run.run_id}): " + "; ".join(reasons), secrets
    )
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def _error_line(error: SerializableErrorInfo | None) -> str:
    """The first line of the error that the step raised: below Dagster's wrapping errors
    (``DagsterExecutionStepExecutionError``), without the module path of its class, and
    without the class at all for a ``dg.Failure`` (its description is the message)."""
    if error is None:
        return "(no message)"
    while error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause
    line = _first_line(error.message)
    prefix, colon, rest = line.partition(": ")
    if colon and prefix.rsplit(".", 1)[-1] == error.cls_name:
        line = rest if error.cls_name == "Failure" else f"{error.cls_name}: {rest}"
    return line


def _first_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


def _secret_values(given: Sequence[str | None]) -> list[str]:
    """The values given that are set, and the path of any URL among them (what urllib3 logs of
    a request), each registered with the client's log redaction."""
    values = []
    for value in given:
        value = (value or "").strip()
        if not value:
            continue
        values.append(value)
        parts = urlsplit(value)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if parts.netloc and len(path) >= MIN_SECRET_LENGTH:
            values.append(path)
    for value in values:
        install_log_redaction(value)
    return values


def _redacted(text: str, secrets: Sequence[str]) -> str:
    text = redact(text)
    for secret in sorted(secrets, key=len, reverse=True):
        text = redact(text, secret)
        if len(secret) >= MIN_SECRET_LENGTH:  # also where glued to other characters
            text = text.replace(secret, "***")
    return text


def _destinations(alerts: AlertSettings, slack_api_url: str) -> list[_Destination]:
    destinations = []
    if alerts.webhook_url:
        destinations.append(_Destination(f"${ALERT_WEBHOOK_URL_VAR}", alerts.webhook_url, {}, {}))
    token, channel = alerts.slack_token, alerts.slack_channel
    if token and channel:
        destinations.append(
            _Destination(
                f"Slack chat.postMessage to {channel}",
                slack_api_url,
                {"channel": channel},
                {"Authorization": f"Bearer {token}"},
                slack_api=True,
            )
        )
    return destinations


def _post(destination: _Destination, message: str) -> str | None:
    """POST the message; ``None`` once accepted, else what went wrong (no URL in it).
    Retries unreachable destinations, 429 and 5xx answers."""
    problem = "not attempted"
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(RETRY_WAIT_SECONDS * 2 ** (attempt - 1))
        try:
            response = requests.post(
                destination.url,
                json={**destination.payload, "text": _slack_escaped(message)},
                headers=destination.headers,
                timeout=TIMEOUT_SECONDS,
            )
        except requests.RequestException as error:
            problem = f"{type(error).__name__} (unreachable)"
            continue
        if response.ok:
            if not destination.slack_api:
                return None
            refusal = _slack_refusal(response)
            if refusal is None:
                return None
            return f"Slack refused it: {refusal}"
        problem = f"HTTP {response.status_code}"
        if response.text.strip() and len(response.text) <= 100:
            problem += f" {response.text.strip()!r}"
        if response.status_code != 429 and response.status_code < 500:
            break
    return problem


def _slack_escaped(text: str) -> str:
    """Slack reads ``<...>`` as links and mentions (``<!channel>``): escape the three
    characters it asks to, so that no input file name or provider message pings anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_refusal(response: requests.Response) -> str | None:
    """Slack's Web API answers 200 with ``{"ok": false, "error": "channel_not_found"}``."""
    try:
        answer = response.json()
    except ValueError:
        return "an answer that is not JSON"
    if isinstance(answer, dict) and answer.get("ok") is True:
        return None
    error = answer.get("error") if isinstance(answer, dict) else None
    return str(error)[:100] if error else "no reason given"
