"""A stateful test (issue 19 item 5): random sequences of pushes, deletions, plans, cancels and
provider faults against the real emulator (loopback HTTP) and a real DuckDB file, with the
invariants that matter checked after every step.

The invariants:

1. No opt-out is deleted unless the number's latest consent is strictly after its latest
   opt-out (the provider's ``createdAt``, Paris time without zone, read as its latest instant;
   a consent without zone read as its earliest). An unreadable opt-out time is never deleted.
2. Every input row of a finished run has exactly one final (not ``pending``) outcome in the
   audit log, and no other row is logged for that run.
3. After a push that reports no problem, every valid number of its input is on the list.
4. Nothing is applied that no plan holds: every applied deletion names a plan whose targets
   hold it (add and cancel rows too, when they name a plan), and every entry that leaves the
   provider's list during a step is a target of the plan that step applied.
5. The API key is in no DuckDB table, no file written, and no log line.

``make test`` runs a bounded budget; ``make soak`` (``SMSP_SOAK=1``) a much larger one. Both
are bounded by examples and steps, never by time.
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import hypothesis
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from smsp_connector.client import RetryPolicy, SmspClient
from smsp_connector.client.errors import SmspError
from smsp_connector.emulator import EmulatorServer
from smsp_connector.emulator.faults import FaultSettings
from smsp_connector.operations.context import RunContext
from smsp_connector.operations.delete import DeletionCapExceeded
from smsp_connector.operations.inputs import (
    MessageIdFile,
    MessageIdValues,
    PhoneFile,
    PhoneValues,
    StoredPlan,
)
from smsp_connector.operations.plans import PlanRefused
from smsp_connector.operations.run import Cancel, Delete, Push, RunReport, run_operation
from smsp_connector.warehouse.tables import TABLE_NAMES

from .warehouses import kept_open

pytestmark = pytest.mark.heavy

SOAK = os.environ.get("SMSP_SOAK") == "1"
EXAMPLES, STEPS = (200, 30) if SOAK else (6, 12)

API_KEY = f"soak-state-machine-{secrets.token_hex(16)}"
"""Distinctive: searched for in every table, file and log line."""

PARIS = ZoneInfo("Europe/Paris")
RETRY = RetryPolicy(max_attempts=4, backoff_initial=0.01, backoff_max=0.05, max_elapsed=20)
SLOW_RETRY = RetryPolicy(max_attempts=2, backoff_initial=0.01, backoff_max=0.02, max_elapsed=5)
SLOW_READ_TIMEOUT = 0.2
SLOW_LATENCY_MS = 350.0
"""Longer than the slow client's read timeout: the change is made, the answer comes too late."""

NUMBERS = [f"+3361234560{i}" for i in range(6)]
"""The numbers the machine plays with (French mobiles)."""
SPELLINGS = {number: [number, "0" + number[3:], "+33 " + number[3:]] for number in NUMBERS}
"""Ways an input may write each number (national ones read in region FR)."""
INVALID = ["0612", "not a number"]
OUTSIDER = "+33798765432"
"""Messages are sent to this number, never on the list (a send to listed numbers only fails)."""

OPT_OUT_TIMES = [
    "2025-03-01 12:00:00",
    "2025-10-26 02:30:00",  # the repeated hour: 00:30 or 01:30 UTC
    "2026-03-29 02:30:00",  # the skipped hour
    "2026-01-15 10:00:00",
    "0000-00-00 00:00:00",  # unreadable: the opt-out stands
]

FAULTS: dict[str, FaultSettings | None] = {
    "none": None,
    "5xx": FaultSettings(fail_rate=0.3),
    "resets": FaultSettings(reset_rate=0.3),
    "add 3": FaultSettings(force_code={"stop-sms/add": 3}),
    "add 9": FaultSettings(force_code={"stop-sms/add": 9}),
    "delete 4": FaultSettings(force_code={"stop-sms/delete": 4}),
    "cancel 11": FaultSettings(force_code={"message-cancel": 11}),
}
FAULT_NAMES = [*FAULTS, "slow"]
"""``slow``: every change is answered after the client gave up (applied all the same)."""


STATS: Counter[str] = Counter()
"""What the runs did (printed at the end: shows the machine reaches what it should)."""
TIMES: Counter[str] = Counter()


class Killed(Exception):
    """Raised from the progress callback: the process died mid-run."""


@dataclass
class RunRecord:
    run_id: str
    operation: str
    expected_rows: set[int] | None
    """The input rows a finished run must have one final outcome each for (None: unknown)."""
    finished: bool
    plan_id: str | None = None


@dataclass
class Interrupted:
    operation: Any
    source: Any


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception as error:  # a record that cannot be formatted is kept as its parts
            self.lines.append(f"{record.msg!r} {record.args!r} {error!r}")


def _latest_instant(created_at: str) -> datetime:
    """The latest UTC instant a provider opt-out time may mean; far future when unreadable."""
    try:
        wall = datetime.strptime(created_at, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)
    return max(wall.replace(tzinfo=PARIS, fold=fold).astimezone(UTC) for fold in (0, 1))


def _earliest_instant(created_at: str) -> datetime | None:
    try:
        wall = datetime.strptime(created_at, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return min(wall.replace(tzinfo=PARIS, fold=fold).astimezone(UTC) for fold in (0, 1))


def _consent_text(moment: datetime, style: str) -> tuple[str, datetime]:
    """``moment`` written in ``style``, and the instant the text means at the earliest (a
    time without zone is Paris time, its earliest reading; a bare date, midnight)."""
    paris = moment.astimezone(PARIS)
    if style == "iso utc":
        text = moment.astimezone(UTC).isoformat()
        return text, datetime.fromisoformat(text)
    if style == "iso paris":
        wall = paris.replace(tzinfo=None, microsecond=0)
    elif style == "french":
        wall = paris.replace(tzinfo=None, second=0, microsecond=0)
    else:  # a bare date
        wall = paris.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    text = {
        "iso paris": wall.isoformat(),
        "french": wall.strftime("%d/%m/%Y %H:%M"),
        "date": wall.strftime("%Y-%m-%d"),
    }[style]
    earliest = min(wall.replace(tzinfo=PARIS, fold=fold).astimezone(UTC) for fold in (0, 1))
    return text, earliest


@dataclass(frozen=True)
class ConsentSpec:
    """One deletion input row, relative to the number's opt-out when drawn."""

    number: int
    spelling: int
    anchor: str
    """earliest/latest (of the opt-out's readings), absolute or now."""
    offset: int
    """Seconds added to the anchor."""
    style: str
    source: bool
    """Whether the row has a consent source (none: no evidence, refused)."""


consent_specs = st.builds(
    ConsentSpec,
    number=st.integers(0, len(NUMBERS) - 1),
    spelling=st.integers(0, 2),
    # The simplest (first) values make a consent that may pass: small budgets delete too.
    anchor=st.sampled_from(["absolute", "latest", "earliest", "now"]),
    offset=st.sampled_from([1, 0, -1, 1_800, 3_600, 86_400, -3_600, -86_400]),
    style=st.sampled_from(["iso utc", "iso paris", "french", "date"]),
    source=st.sampled_from([True, True, True, False]),
)


class ProgressBar:
    def __init__(self, machine: StopListMachine, lines: list[str], total: int, what: str):
        self._machine, self._lines = machine, lines
        self._lines.append(f"start {total} {what}")

    def advance(self, count: int = 1) -> None:
        self._machine.on_advance()

    def finish(self) -> None:
        self._lines.append("finish")


class StopListMachine(RuleBasedStateMachine):
    server: EmulatorServer
    base_dir: Path
    logs: LogCapture

    def __init__(self) -> None:
        super().__init__()
        self.server.reset()
        self.folder = Path(tempfile.mkdtemp(dir=self.base_dir))
        self.database = self.folder / "warehouse.duckdb"
        self.holding = ExitStack()
        self.warehouse = self.holding.enter_context(kept_open(self.database))
        self.client = SmspClient(API_KEY, base_url=self.server.base_url, retry=RETRY, max_workers=1)
        self.slow_client = SmspClient(
            API_KEY,
            base_url=self.server.base_url,
            retry=SLOW_RETRY,
            timeout=(2.0, SLOW_READ_TIMEOUT),
            max_workers=1,
        )
        self.step = 0
        self.consents: dict[str, datetime] = {}
        """Each number's latest consent given in a deletion input (its earliest reading)."""
        self.latest_opt_out: dict[str, datetime] = {}
        """Each number's latest opt-out seen on the provider's list (its latest reading)."""
        self.plans: list[tuple[str, dict[str, str]]] = []
        """Stored deletion plans (id, the options a confirmation may give again)."""
        self.messages: list[int] = []
        self.interrupted: Interrupted | None = None
        self.progress_lines: list[str] = []
        self.errors: list[str] = []
        self.runs: list[RunRecord] = []
        self.log_start = len(self.logs.lines)
        STATS["examples"] += 1
        if SOAK:  # progress, with -s
            print(f"example {STATS['examples']} at {time.monotonic():.0f}", flush=True)
        # Per step, set by the rules.
        self.kill_after: int | None = None
        self.slow_pending = False
        self.before: dict[int, tuple[str, str]] = {}
        self.applied_runs: list[str] = []
        self.observe()

    def teardown(self) -> None:
        self.server.faults = FaultSettings()
        try:
            self.client.close()
            self.slow_client.close()
        finally:
            self.holding.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- the provider's list --------------------------------------------------------------

    def listed(self) -> dict[int, tuple[str, str]]:
        return {e.id: (e.phone_number, e.created_at) for e in self.server.state.stop_entries()}

    def observe(self) -> dict[int, tuple[str, str]]:
        """The list now; every opt-out on it counts towards its number's latest."""
        now = self.listed()
        for number, created in now.values():
            moment = _latest_instant(created)
            if number not in self.latest_opt_out or moment > self.latest_opt_out[number]:
                self.latest_opt_out[number] = moment
        return now

    def begin(self) -> None:
        self.step += 1
        self.before = self.observe()
        self.kill_after = None
        self.slow_pending = False

    # -- running ----------------------------------------------------------------------------

    def on_advance(self) -> None:
        if self.kill_after is not None:
            self.kill_after -= 1
            if self.kill_after <= 0:
                raise Killed("killed mid-run")

    def progress(self, total: int, what: str) -> ProgressBar:
        if self.slow_pending:
            # Only the changes are slow, not the list read before them.
            self.server.faults = FaultSettings(latency_ms=SLOW_LATENCY_MS)
        if self.kill_after == 0:
            raise Killed("killed after the write-ahead log")
        return ProgressBar(self, self.progress_lines, total, what)

    def run(
        self,
        operation: Any,
        source: Any,
        *,
        fault: str = "none",
        kill_after: int | None = None,
        archive: bool = False,
    ) -> RunReport | BaseException:
        run_id = uuid.uuid4().hex
        started = time.monotonic()
        expected = self.expected_rows(operation, source)
        self.kill_after = kill_after
        self.slow_pending = fault == "slow"
        settings = FAULTS.get(fault)
        if settings is not None:
            self.server.faults = settings
        client = self.slow_client if fault == "slow" else self.client
        outcome: RunReport | BaseException
        finished = True
        try:
            outcome = run_operation(
                operation,
                source,
                RunContext(
                    client=client,
                    warehouse=self.warehouse,
                    run_id=run_id,
                    job="state_machine",
                    progress=self.progress,
                ),
                move_to=self.folder / "archive" if archive else None,
            )
        except DeletionCapExceeded as error:
            outcome = error.with_traceback(None)
        except (PlanRefused, SmspError) as error:
            outcome = error.with_traceback(None)
            finished = False
        except Killed as error:
            # Without its traceback: the frames it holds keep the sending generator (and
            # its queued calls) alive; collected, the generator waits for its calls in flight.
            outcome = error.with_traceback(None)
            finished = False
            self.interrupted = Interrupted(operation, source)
        finally:
            self.server.faults = FaultSettings()
            self.kill_after = None
            self.slow_pending = False
        if isinstance(outcome, BaseException):
            self.errors.append(f"{type(outcome).__name__}: {outcome}")
            if isinstance(outcome, PlanRefused):
                assert self.audit_count(run_id) == 0, "a refused plan recorded rows"
        # Calls still in flight (a killed run's, slow answers) finish before the checks.
        gc.collect()
        self.quiesce()
        self.runs.append(RunRecord(run_id, operation.name, expected, finished))
        kind = f"{operation.name}{' dry' if operation.dry_run else ''} {fault}"
        TIMES[kind] += time.monotonic() - started
        STATS[f"{kind} -> {type(outcome).__name__}"] += 1
        with self.warehouse.connect() as (conn, tables):
            for name, result, count in conn.execute(
                f"SELECT operation, outcome, count(*) FROM {tables.audit_latest} "
                "WHERE run_id = ? GROUP BY ALL",
                [run_id],
            ).fetchall():
                STATS[f"row {name} {result}"] += count
        self.applied_runs.append(run_id)
        return outcome

    def quiesce(self) -> None:
        stats = self.server._runtime.stats
        deadline = time.monotonic() + 30
        while any(n > 0 for n in stats._in_flight.values()):
            assert time.monotonic() < deadline, "requests still in flight after 30 s"
            time.sleep(0.02)

    def expected_rows(self, operation: Any, source: Any) -> set[int] | None:
        if isinstance(source, StoredPlan):
            with self.warehouse.connect() as (conn, tables):
                rows = conn.execute(
                    f"SELECT source_row FROM {tables.qualified('plan_targets')} WHERE plan_id = ?",
                    [source.plan_id],
                ).fetchall()
            return {int(row) for (row,) in rows}
        frame = source.read(operation.extra_columns).frame
        return {int(row) for row in frame["row_number"]}

    def audit_count(self, run_id: str) -> int:
        with self.warehouse.connect() as (conn, tables):
            (count,) = conn.execute(
                f"SELECT count(*) FROM {tables.audit_log} WHERE run_id = ?", [run_id]
            ).fetchone()
        return int(count)

    # -- inputs -----------------------------------------------------------------------------

    def phone_file(self, header: str, rows: list[str]) -> Path:
        path = self.folder / f"step{self.step}.csv"
        path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
        return path

    def deletion_rows(
        self, specs: list[ConsentSpec], *, shared: bool = False
    ) -> list[tuple[str, str, str]]:
        """(value, consent_at, consent_source) per spec, each its own consent (``shared``:
        the first spec's consent for every row, as inline values give it); the consents are
        counted in the model."""
        consents = [self.consent_of(spec) for spec in specs]
        if shared:
            consents = [consents[0]] * len(specs)
        rows = []
        for spec, (text, meant, source) in zip(specs, consents, strict=True):
            number = NUMBERS[spec.number]
            if source:
                # Counted as consent only with evidence. One a second in the future is counted
                # too: it is not when the run reads it a second later (the future-consent guard
                # is not what this model checks).
                self.consents[number] = max(meant, self.consents.get(number, meant))
            rows.append((SPELLINGS[number][spec.spelling], text, source))
        return rows

    def consent_of(self, spec: ConsentSpec) -> tuple[str, datetime, str]:
        """The consent text of ``spec``, the instant it means at the earliest, its source."""
        listed = {number: created for number, created in self.before.values()}
        created = listed.get(NUMBERS[spec.number])
        latest = _latest_instant(created) if created else None
        earliest = _earliest_instant(created) if created else None
        if spec.anchor == "latest" and latest and latest.year < 9999:
            base = latest
        elif spec.anchor == "earliest" and earliest:
            base = earliest
        elif spec.anchor == "now":
            base = datetime.now(UTC)
        else:
            base = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
        text, meant = _consent_text(base + timedelta(seconds=spec.offset), spec.style)
        return text, meant, "web form #1" if spec.source else ""

    # -- rules: opt-outs arriving -----------------------------------------------------------

    @initialize(
        seeded=st.dictionaries(
            st.integers(0, len(NUMBERS) - 1),
            st.sampled_from(OPT_OUT_TIMES),
            min_size=2,
            max_size=5,
        )
    )
    def provider_list_at_start(self, seeded):
        """The provider's list as the example starts: opt-outs of the past."""
        self.begin()
        self.server.state.seed_entries((NUMBERS[i], created) for i, created in seeded.items())

    @rule(
        numbers=st.lists(st.integers(0, len(NUMBERS) - 1), min_size=1, max_size=3, unique=True),
        created=st.sampled_from([*OPT_OUT_TIMES, "now", "an hour ago"]),
    )
    def provider_opt_outs(self, numbers, created):
        """Numbers opt out on the provider's side (a STOP reply): seeded, as the list gives
        them. Only numbers not listed now (the provider does not list a number twice)."""
        self.begin()
        listed = {number for number, _ in self.before.values()}
        fresh = [NUMBERS[i] for i in numbers if NUMBERS[i] not in listed]
        now = datetime.now(PARIS)
        text = {
            "now": now.strftime("%Y-%m-%d %H:%M:%S"),
            "an hour ago": (now - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
        }.get(created, created)
        self.server.state.seed_entries((number, text) for number in fresh)

    @rule(
        values=st.lists(st.tuples(st.integers(0, len(NUMBERS) - 1), st.integers(0, 2)), max_size=5),
        invalid=st.lists(st.sampled_from(INVALID), max_size=1),
        as_file=st.booleans(),
        dry_run=st.booleans(),
        retry_rejected=st.booleans(),
        fault=st.sampled_from(FAULT_NAMES),
        archive=st.booleans(),
    )
    def push(self, values, invalid, as_file, dry_run, retry_rejected, fault, archive):
        """Opt-outs arriving from our side: a CSV file or values given inline, pushed."""
        self.begin()
        raw = [SPELLINGS[NUMBERS[n]][s] for n, s in values] + invalid
        if not raw and as_file:
            return  # an empty file is unusable input, refused before anything is recorded
        source = (
            PhoneFile(self.phone_file("phone", [f'"{v}"' for v in raw]))
            if as_file
            else PhoneValues(raw)
        )
        report = self.run(
            Push(dry_run=dry_run, retry_rejected=retry_rejected),
            source,
            fault=fault,
            archive=archive and as_file,
        )
        # Invariant 3 (a forced code 3 is the provider saying it has what it has not).
        if isinstance(report, RunReport) and not dry_run and report.complete and fault != "add 3":
            valid = {SPELLINGS[NUMBERS[n]][0] for n, _ in values}
            missing = {n for n in valid if not self.server.state.has_number(n)}
            assert not missing, f"a complete push left {missing} off the list"
        if dry_run:
            assert self.listed() == self.before, "a dry run changed the list"

    # -- rules: deletions -------------------------------------------------------------------

    @rule(
        specs=st.lists(consent_specs, min_size=1, max_size=4),
        invalid=st.booleans(),
        as_file=st.booleans(),
        region=st.sampled_from(["FR", "fr"]),
    )
    def deletion_dry_run(self, specs, invalid, as_file, region):
        """A dry run of deletions with consent evidence: its plan is stored."""
        self.begin()
        rows = self.deletion_rows(specs, shared=not as_file)
        if invalid:
            rows.append(("0612", rows[0][1], rows[0][2]))
        source = self.deletion_source(rows, as_file, region)
        report = self.run(Delete(), source)
        assert self.listed() == self.before, "a dry run deleted"
        if isinstance(report, RunReport):
            plan_id = report.summary.plan_id
            given = {"default_region": region}
            if as_file:
                given["phone_column"] = "phone"
                given["source_sha256"] = report.source_sha256
            self.plans.append((plan_id, given))

    def deletion_source(self, rows, as_file: bool, region: str):
        if as_file:
            lines = [f'"{v}","{at}","{src}"' for v, at, src in rows]
            return PhoneFile(
                self.phone_file("phone,consent_at,consent_source", lines), default_region=region
            )
        _, at, src = rows[0]  # inline values share one consent (see deletion_rows)
        return PhoneValues(
            [v for v, _, _ in rows],
            extra={"consent_at": at, "consent_source": src},
            default_region=region,
        )

    @rule(
        index=st.integers(0, 100),
        change=st.sampled_from(["none", "none", "same", "region", "column", "bytes"]),
        cap=st.sampled_from([100, 1]),
        fault=st.sampled_from(FAULT_NAMES),
        kill_after=st.none() | st.none() | st.integers(0, 2),
    )
    def confirm_plan(self, index, change, cap, fault, kill_after):
        """Confirm a stored plan by its id: as it is, giving its options again, or with one
        that differs (refused, nothing sent)."""
        self.begin()
        if not self.plans:
            return  # no precondition: which rules may run never depends on the runs' outcomes
        plan_id, options = self.plans[index % len(self.plans)]
        given: dict[str, str] = {}
        if change == "same":
            given = dict(options)
        elif change == "region":
            given = {"default_region": "NL"}
        elif change == "column":
            given = {"phone_column": "fixe"}
        elif change == "bytes":
            given = {"source_sha256": "0" * 64}
        applied_before = self.plan_applied(plan_id)
        outcome = self.run(
            Delete(plan_id=plan_id, max_deletions=cap, given=tuple(given.items())),
            StoredPlan(plan_id),
            fault=fault,
            kill_after=kill_after,
        )
        if change in ("region", "column", "bytes"):  # every dry run reads region FR
            assert isinstance(outcome, PlanRefused), f"changed {change} was not refused"
        if applied_before:
            assert isinstance(outcome, PlanRefused | DeletionCapExceeded), (
                f"plan {plan_id}, applied already, was applied again: {outcome!r}"
            )
        if isinstance(outcome, PlanRefused | DeletionCapExceeded):
            assert self.listed() == self.before, "a refused confirmation deleted"

    def plan_applied(self, plan_id: str) -> bool:
        with self.warehouse.connect() as (conn, tables):
            row = conn.execute(
                f"SELECT applied_by_run FROM {tables.qualified('plans')} WHERE plan_id = ?",
                [plan_id],
            ).fetchone()
        return row is not None and row[0] is not None

    @rule(
        specs=st.lists(consent_specs, min_size=1, max_size=4),
        as_file=st.booleans(),
        cap=st.sampled_from([100, 1]),
        fault=st.sampled_from(FAULT_NAMES),
        kill_after=st.none() | st.none() | st.integers(0, 2),
    )
    def confirmed_deletion(self, specs, as_file, cap, fault, kill_after):
        """A confirmed deletion in one run (the plan stored, then applied)."""
        self.begin()
        rows = self.deletion_rows(specs, shared=not as_file)
        source = self.deletion_source(rows, as_file, "FR")
        report = self.run(
            Delete(confirm=True, max_deletions=cap),
            source,
            fault=fault,
            kill_after=kill_after,
        )
        if isinstance(report, RunReport) and report.summary.plan_id:
            # Its plan, applied by this run: confirming it again is refused.
            given = {"default_region": "FR"}
            if as_file:
                given |= {"phone_column": "phone", "source_sha256": report.source_sha256}
            self.plans.append((report.summary.plan_id, given))

    # -- rules: cancels ---------------------------------------------------------------------

    @rule(kind=st.sampled_from(["later", "soon", "now"]))
    def schedule_message(self, kind):
        self.begin()
        state = self.server.state
        now = state.clock.now()
        when = {"later": now + timedelta(hours=2), "soon": now + timedelta(minutes=2)}.get(kind)
        message = state.send([OUTSIDER], "Promo", scheduled_at=when)
        self.messages.append(message.id)

    @rule(
        picks=st.lists(st.integers(0, 100), max_size=3),
        unknown=st.booleans(),
        invalid=st.booleans(),
        as_file=st.booleans(),
        fault=st.sampled_from(FAULT_NAMES),
        kill_after=st.none() | st.none() | st.integers(0, 2),
    )
    def cancel(self, picks, unknown, invalid, as_file, fault, kill_after):
        self.begin()
        ids: list[str] = [
            str(self.messages[i % len(self.messages)]) for i in picks if self.messages
        ]
        if unknown:
            ids.append("99999999")
        if invalid:
            ids.append("abc")
        if not ids:
            return
        if as_file:
            path = self.folder / f"step{self.step}-ids.csv"
            path.write_text("message_id\n" + "\n".join(ids) + "\n", encoding="utf-8")
            source: Any = MessageIdFile(path)
        else:
            source = MessageIdValues(ids)
        self.run(Cancel(), source, fault=fault, kill_after=kill_after)
        assert self.listed() == self.before, "a cancel changed the stop list"

    # -- rules: a killed run, run again -----------------------------------------------------

    @rule()
    def rerun_interrupted(self):
        """The run that was killed, run again (a stored plan, claimed by the killed run, is
        refused: it is applied at most once)."""
        self.begin()
        interrupted, self.interrupted = self.interrupted, None
        if interrupted is None:
            return
        outcome = self.run(interrupted.operation, interrupted.source)
        if isinstance(interrupted.source, StoredPlan):
            assert isinstance(outcome, PlanRefused), "a plan was applied twice"

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def invariants_hold(self):
        """The five invariants, on the list's change in this step, and on the database (read
        once per step, and only after a step that ran an operation)."""
        removed = {i: self.before[i] for i in self.before.keys() - self.listed().keys()}
        if self.applied_runs or removed:
            with self.warehouse.connect() as (conn, tables):
                self.check_deletions(removed, self.applied_targets(conn, tables))
                self.check_final_outcomes(conn, tables)
                self.check_applied_within_plans(conn, tables)
                self.check_key_in_tables(conn, tables)
            self.applied_runs = []
        self.check_key_in_files_and_logs()
        self.before = self.observe()

    def check_deletions(
        self, removed: dict[int, tuple[str, str]], planned: dict[str, datetime]
    ) -> None:
        """Invariant 1, and the list side of 4."""
        for stop_id, (number, created) in removed.items():
            opted_out = self.latest_opt_out.get(number, _latest_instant(created))
            consent = self.consents.get(number)
            assert consent is not None and consent > opted_out, (
                f"entry {stop_id} ({number}, opted out {created}) deleted with latest "
                f"consent {consent} not after the opt-out {opted_out}"
            )
            assert number in planned, f"{number} deleted though no plan applied held it"
            # The consent the applied plan held for it: after the opt-out, and one we gave.
            assert planned[number] > opted_out, (
                f"{number} deleted on a plan's consent {planned[number]}, not after the "
                f"opt-out {opted_out}"
            )
            assert planned[number] <= consent, f"{number}: a plan consent nobody gave"

    def applied_targets(self, conn, tables) -> dict[str, datetime]:
        """Targets of the deletion plans the runs of this step claimed, each with its consent
        (the earliest one, should a number be in two)."""
        if not self.applied_runs:
            return {}
        marks = ", ".join("?" for _ in self.applied_runs)
        rows = conn.execute(
            f"SELECT t.target, min(t.consent_at) FROM {tables.qualified('plan_targets')} "
            f"AS t JOIN {tables.qualified('plans')} AS p USING (plan_id) "
            f"WHERE p.applied_by_run IN ({marks}) AND p.operation = 'delete' "
            "GROUP BY t.target",
            self.applied_runs,
        ).fetchall()
        return {target: consent.astimezone(UTC) for target, consent in rows}

    def check_final_outcomes(self, conn, tables) -> None:
        """Invariant 2."""
        for run in self.runs:
            if not run.finished or run.expected_rows is None:
                continue
            rows = conn.execute(
                f"SELECT source_row, count(*) FILTER (WHERE outcome <> 'pending') "
                f"FROM {tables.audit_log} WHERE run_id = ? GROUP BY source_row",
                [run.run_id],
            ).fetchall()
            latest = conn.execute(
                f"SELECT source_row, outcome FROM {tables.audit_latest} WHERE run_id = ?",
                [run.run_id],
            ).fetchall()
            finals = {int(row): int(count) for row, count in rows}
            assert set(finals) == run.expected_rows, (
                f"run {run.run_id} ({run.operation}) logged rows {sorted(finals)}, "
                f"input rows {sorted(run.expected_rows)}"
            )
            assert all(count == 1 for count in finals.values()), (
                f"run {run.run_id} ({run.operation}): final outcomes per row {finals}"
            )
            pending = [row for row, outcome in latest if outcome == "pending"]
            assert not pending, f"run {run.run_id} finished with rows {pending} pending"
        self.runs = [run for run in self.runs if not run.finished]

    def check_applied_within_plans(self, conn, tables) -> None:
        """Invariant 4, on the audit log: strictly for deletions, for adds and cancels when
        their rows name a plan."""
        stray = conn.execute(
            f"SELECT log.run_id, log.operation, log.target, log.plan_id "
            f"FROM {tables.audit_log} AS log WHERE log.outcome = 'applied' "
            "AND (log.operation = 'delete' OR log.plan_id IS NOT NULL) "
            f"AND NOT EXISTS (SELECT 1 FROM {tables.qualified('plan_targets')} AS t "
            "WHERE t.plan_id = log.plan_id AND t.target = log.target)"
        ).fetchall()
        assert not stray, f"applied outside any plan: {stray}"

    def check_key_in_tables(self, conn, tables) -> None:
        """Invariant 5, in the database."""
        present = {
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                [self.warehouse.schema],
            ).fetchall()
        }
        assert "audit_log" in present
        for name in sorted(present & set(TABLE_NAMES)):
            rows = conn.execute(f"SELECT * FROM {tables.qualified(name)}").fetchall()
            assert API_KEY not in repr(rows), f"the API key is in table {name}"

    def check_key_in_files_and_logs(self) -> None:
        """Invariant 5, in every file under the example's folder (the database's included),
        every log line, error and progress line."""
        for path in self.folder.rglob("*"):
            if path.is_file():
                assert API_KEY.encode() not in path.read_bytes(), f"the API key is in {path}"
        lines = self.logs.lines[self.log_start :]
        self.log_start += len(lines)
        assert not [line for line in lines if API_KEY in line], "the API key is in a log line"
        assert not [e for e in self.errors if API_KEY in e], "the API key is in an error"
        assert not [line for line in self.progress_lines if API_KEY in line]


StopListMachine.TestCase.settings = hypothesis.settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)


@pytest.fixture(scope="module")
def machine_server() -> Iterator[tuple[EmulatorServer, LogCapture]]:
    """One emulator for the module (each example resets it), and every log line captured."""
    capture = LogCapture()
    capture.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "urllib3", "smsp_connector")}
    root.addHandler(capture)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    server = EmulatorServer(api_key=API_KEY, random_seed=20261204)
    server.start()
    try:
        yield server, capture
    finally:
        server.stop()
        root.removeHandler(capture)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
def machine_rig(machine_server, tmp_path) -> None:
    StopListMachine.server, StopListMachine.logs = machine_server
    StopListMachine.base_dir = tmp_path


@pytest.mark.timeout(0 if SOAK else 300)
def test_the_stop_list_machine(machine_rig):
    try:
        StopListMachine.TestCase().runTest()
    finally:  # shown with -s: what the runs did, and where the time went
        print(*sorted(STATS.items()), sep="\n")
        print(*sorted(TIMES.items(), key=lambda item: -item[1]), sep="\n")


# -- sequences worth keeping: plain tests, run in every ``make test`` ------------------------


@pytest.fixture
def machine(machine_rig) -> Iterator[StopListMachine]:
    """A fresh machine (emulator reset, empty database), driven rule by rule."""
    state = StopListMachine()
    try:
        yield state
    finally:
        state.teardown()


def _step(machine: StopListMachine, rule_name: str, **arguments: Any) -> Any:
    """One rule, then the invariants, as the state machine runs them."""
    result = getattr(machine, rule_name)(**arguments)
    machine.invariants_hold()
    return result


def _consent(number: int, anchor: str, offset: int, style: str = "iso utc") -> ConsentSpec:
    return ConsentSpec(number, 0, anchor, offset, style, True)


def _on_list(machine: StopListMachine, number: int) -> bool:
    return machine.server.state.has_number(NUMBERS[number])


@pytest.mark.parametrize("offset, deleted", [(-1, False), (0, False), (1, True)])
def test_a_consent_at_the_opt_out_instant_keeps_it(machine, offset, deleted):
    # 2026-01-15 10:00 Paris is 09:00 UTC, the "absolute" anchor: a tie at offset 0.
    _step(machine, "provider_list_at_start", seeded={0: "2026-01-15 10:00:00"})
    _step(
        machine,
        "confirmed_deletion",
        specs=[_consent(0, "absolute", offset)],
        as_file=True,
        cap=100,
        fault="none",
        kill_after=None,
    )
    assert _on_list(machine, 0) is not deleted


@pytest.mark.parametrize(
    "anchor, offset, style, deleted",
    [
        ("earliest", 1_800, "iso utc", False),  # 01:00 UTC: inside the repeated hour
        ("latest", 0, "iso utc", False),  # 01:30 UTC: the later reading itself
        ("latest", 1, "iso utc", True),
        ("latest", 1, "iso paris", False),  # 02:30:01 without zone: read as 00:30:01 UTC
        ("latest", 3_600, "french", True),  # 03:30 Paris, after both readings
    ],
)
def test_an_opt_out_in_the_repeated_hour_counts_at_its_later_reading(
    machine, anchor, offset, style, deleted
):
    _step(machine, "provider_list_at_start", seeded={1: "2025-10-26 02:30:00"})
    _step(
        machine,
        "confirmed_deletion",
        specs=[_consent(1, anchor, offset, style)],
        as_file=True,
        cap=100,
        fault="none",
        kill_after=None,
    )
    assert _on_list(machine, 1) is not deleted


def test_a_stale_plan_does_not_remove_a_newer_opt_out(machine):
    _step(machine, "provider_list_at_start", seeded={0: "2025-03-01 12:00:00"})
    _step(
        machine,
        "deletion_dry_run",
        specs=[_consent(0, "absolute", 1)],
        invalid=False,
        as_file=False,
        region="FR",
    )
    _step(
        machine,
        "confirmed_deletion",
        specs=[_consent(0, "absolute", 1)],
        as_file=False,
        cap=100,
        fault="none",
        kill_after=None,
    )
    assert not _on_list(machine, 0)
    _step(machine, "provider_opt_outs", numbers=[0], created="an hour ago")
    _step(machine, "confirm_plan", index=0, change="none", cap=100, fault="none", kill_after=None)
    assert _on_list(machine, 0), "the opt-out made after the consent was deleted"


@pytest.mark.parametrize("change", ["region", "column", "bytes", "same"])
def test_a_confirmation_with_other_options_is_refused(machine, change):
    _step(machine, "provider_list_at_start", seeded={0: "2025-03-01 12:00:00", 2: "2025-03-01"})
    _step(
        machine,
        "deletion_dry_run",
        specs=[_consent(0, "absolute", 1)],
        invalid=True,
        as_file=True,
        region="fr",
    )
    _step(machine, "confirm_plan", index=0, change=change, cap=100, fault="none", kill_after=None)
    assert _on_list(machine, 0) is (change != "same")
    # Applied or not, the same plan confirmed (again) as it is.
    _step(machine, "confirm_plan", index=0, change="none", cap=100, fault="none", kill_after=None)
    assert not _on_list(machine, 0)


@pytest.mark.parametrize("kill_after", [0, 1, 2])
def test_a_killed_confirmation_and_its_rerun(machine, kill_after):
    _step(machine, "provider_list_at_start", seeded=dict.fromkeys(range(4), "2025-03-01 12:00:00"))
    specs = [_consent(number, "absolute", 1) for number in range(4)]
    _step(machine, "deletion_dry_run", specs=specs, invalid=False, as_file=True, region="FR")
    _step(
        machine, "confirm_plan", index=0, change="none", cap=100, fault="none",
        kill_after=kill_after,
    )  # fmt: skip
    assert machine.interrupted is not None
    _step(machine, "rerun_interrupted")  # refused: the killed run claimed the plan
    _step(machine, "deletion_dry_run", specs=specs, invalid=False, as_file=True, region="FR")
    _step(machine, "confirm_plan", index=1, change="none", cap=100, fault="none", kill_after=None)
    assert not any(_on_list(machine, number) for number in range(4))


@pytest.mark.parametrize("fault", ["slow", "resets", "5xx", "delete 4"])
def test_deletions_under_provider_faults(machine, fault):
    _step(machine, "provider_list_at_start", seeded=dict.fromkeys(range(3), "2025-03-01 12:00:00"))
    specs = [_consent(number, "absolute", 1) for number in range(3)]
    _step(machine, "confirmed_deletion", specs=specs, as_file=True, cap=100, fault=fault,
          kill_after=None)  # fmt: skip


@pytest.mark.parametrize("fault", ["none", "slow", "resets", "5xx", "add 3", "add 9"])
def test_pushes_under_provider_faults(machine, fault):
    values = [(0, 0), (1, 1), (1, 2), (2, 2)]
    _step(machine, "push", values=values, invalid=["0612"], as_file=True, dry_run=False,
          retry_rejected=False, fault=fault, archive=True)  # fmt: skip
    _step(machine, "push", values=values, invalid=[], as_file=False, dry_run=False,
          retry_rejected=True, fault="none", archive=False)  # fmt: skip
    assert all(_on_list(machine, number) for number in range(3))


@pytest.mark.parametrize("fault", ["none", "resets", "cancel 11"])
def test_cancels(machine, fault):
    for kind in ("later", "soon", "now", "later"):
        _step(machine, "schedule_message", kind=kind)
    _step(machine, "cancel", picks=[0, 1, 2, 3, 0], unknown=True, invalid=True, as_file=True,
          fault=fault, kill_after=None)  # fmt: skip
