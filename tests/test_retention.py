"""Retention (issue 18, item 3): raw rejected values cleared and the numbers of opt-outs long
ended replaced by their keyed pseudonym, from a stored plan, with every proof kept, over the
emulator and a real DuckDB file."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from smsp_connector.operations.inputs import PhoneFile, PhoneValues
from smsp_connector.operations.plans import PlanRefused
from smsp_connector.operations.retention import Retention, apply_purge_plan, purge
from smsp_connector.operations.run import Delete, Push
from smsp_connector.settings import SettingsError
from smsp_connector.warehouse import Warehouse
from smsp_connector.warehouse.ledger import LedgerRow, ledger_rows, opted_out_numbers
from smsp_connector.warehouse.pseudonyms import pseudonym
from smsp_connector.warehouse.retention import PurgeAudit

from .test_ledger import _refresh, _run
from .warehouses import kept_open

pytestmark = pytest.mark.heavy

KEY = b"k" * 32
ENDED, STANDING, PENDING = "+33612345678", "+33611111111", "+33622222222"
REJECTED = "pas-un-numero"
"""A raw value no id or hash can hold (not hex)."""
RETENTION = Retention(rejected=timedelta(days=90), ended=timedelta(days=3 * 365))
LATER = datetime.now(UTC) + timedelta(days=4 * 365)
"""Past both retentions of everything the story records today."""


@pytest.fixture
def story(emulator, client, tmp_path) -> Warehouse:
    """ENDED pushed, listed, deleted with consent, gone from the list; STANDING pushed and
    listed; PENDING only dry-run; two rejected raw values."""
    warehouse = Warehouse.at(tmp_path / "warehouse.duckdb")
    path = tmp_path / "crm.csv"
    path.write_text(
        "Nom;Portable\nDupont;06 12 34 56 78\nMartin;06 11 11 11 11\nX;pas-un-numero\nY;06 12\n",
        encoding="utf-8",
    )
    _run(Push(), PhoneFile(path), client, warehouse, "push-1")
    _refresh(client, warehouse, "refresh-1")
    evidence = {"consent_at": datetime.now(UTC).isoformat(), "consent_source": "form #8812"}
    _run(Delete(confirm=True), PhoneValues([ENDED], evidence), client, warehouse, "delete-1")
    _refresh(client, warehouse, "refresh-2")
    _run(Push(dry_run=True), PhoneValues(["0622222222"]), client, warehouse, "dry-1")
    return warehouse


def _tables(warehouse: Warehouse) -> dict[str, list[tuple]]:
    """Every row of every table, sorted, as text."""
    with warehouse.connect() as (conn, tables):
        names = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                "AND table_type = 'BASE TABLE'",
                [tables.schema_name],
            ).fetchall()
        ]
        return {
            name: sorted(
                tuple(str(value) for value in row)
                for row in conn.execute(f"SELECT * FROM {tables.qualified(name)}").fetchall()
            )
            for name in names
        }


def _holding(source: Warehouse | dict[str, list[tuple]], text: str) -> list[str]:
    """The tables with a row holding ``text`` in any column (of a warehouse, or of the rows
    :func:`_tables` read from one)."""
    return sorted(
        name
        for name, rows in (_tables(source) if isinstance(source, Warehouse) else source).items()
        if any(text in value for row in rows for value in row)
    )


def _refreshed(warehouse: Warehouse, at: datetime) -> datetime:
    """A published snapshot at ``at``, as the daily refresh would have logged: the purge then
    knows the provider's list as of ``at``; returns ``at``."""
    with warehouse.connect() as (conn, tables):
        conn.execute(
            f"INSERT INTO {tables.snapshots} (run_id, extracted_at, row_count, entered, "
            "left_count, valid, status) VALUES ('refresh', ?, 0, 0, 0, true, 'published')",
            [at],
        )
    return at


def _audit(run_id: str) -> PurgeAudit:
    return PurgeAudit(run_id=run_id, job="test", account="smsp")


def test_a_dry_run_stores_the_plan_and_changes_nothing_else(story):
    now = _refreshed(story, LATER)
    before = _tables(story)

    report = purge(story, RETENTION, key=KEY, audit=_audit("dry"), dry_run=True, now=now)

    assert (report.dry_run, report.numbers, report.number_rows) == (True, 1, 0)
    assert (report.rejected_values, report.rejected_audit_rows) == (2, 2)
    after = _tables(story)
    for name in before.keys() - {"plans", "plan_targets", "audit_log"}:
        assert after[name] == before[name], name
    new_audit = set(after["audit_log"]) - set(before["audit_log"])
    assert {row[3] for row in new_audit} == {"purge"} and len(new_audit) == 2
    with story.connect() as (conn, tables):
        [(target,)] = conn.execute(
            f"SELECT target FROM {tables.plan_targets} WHERE plan_id = ?", [report.plan_id]
        ).fetchall()
    assert target == pseudonym(KEY, ENDED), "the plan holds the pseudonym, never the number"


def test_applying_the_stored_plan_keeps_every_proof_and_removes_every_expired_value(story):
    ledger_before = ledger_rows(story, ENDED)
    needed = opted_out_numbers(story, [ENDED, STANDING, PENDING])
    plan = purge(
        story, RETENTION, key=KEY, audit=_audit("dry"), dry_run=True, now=_refreshed(story, LATER)
    )

    done = apply_purge_plan(
        story, plan.plan_id, key=KEY, audit=_audit("apply"), max_age=timedelta(hours=1)
    )

    assert (done.numbers, done.rejected_values, done.rejected_audit_rows) == (1, 2, 2)
    assert done.number_rows > 0
    assert _holding(story, ENDED) == [] and _holding(story, REJECTED) == []
    assert _holding(story, "06 12'") == []
    assert "stop_list" in _holding(story, STANDING) and _holding(story, PENDING)
    token = pseudonym(KEY, ENDED)
    assert [replace(row, phone_number=ENDED) for row in ledger_rows(story, token)] == ledger_before
    assert opted_out_numbers(story, [ENDED, STANDING, PENDING]) == needed == {STANDING, PENDING}
    with story.connect() as (conn, tables):
        kept = conn.execute(
            f"SELECT source_file IS NOT NULL, row_number, reason, raw_value "
            f"FROM {tables.input_rejections} ORDER BY row_number"
        ).fetchall()
        audited = conn.execute(
            f"SELECT target, outcome, dry_run FROM {tables.audit_log} "
            "WHERE operation = 'purge' AND run_id = 'apply' ORDER BY target"
        ).fetchall()
    assert [(row[0], row[1], row[3]) for row in kept] == [(True, 4, None), (True, 5, None)]
    assert audited == [(token, "applied", False), ("input_rejections", "applied", False)]
    with pytest.raises(PlanRefused, match="applied by run apply"):
        apply_purge_plan(
            story, plan.plan_id, key=KEY, audit=_audit("again"), max_age=timedelta(hours=1)
        )


def test_a_number_needed_again_since_the_plan_refuses_the_whole_plan(story, client):
    plan = purge(
        story, RETENTION, key=KEY, audit=_audit("dry"), dry_run=True, now=_refreshed(story, LATER)
    )
    _run(Push(), PhoneValues([ENDED]), client, story, "push-again")
    before = _tables(story)

    with pytest.raises(PlanRefused, match="1 of the plan's numbers are needed again"):
        apply_purge_plan(
            story, plan.plan_id, key=KEY, audit=_audit("apply"), max_age=timedelta(hours=1)
        )

    assert _tables(story) == before, "nothing half-applied, the plan not claimed"


def test_within_retention_only_the_rejected_values_go(story):
    report = purge(
        story,
        RETENTION,
        key=KEY,
        audit=_audit("p"),
        dry_run=False,
        now=datetime.now(UTC) + timedelta(days=91),
    )

    assert (report.numbers, report.rejected_values) == (0, 2)
    assert _holding(story, ENDED) and _holding(story, REJECTED) == []


def test_without_a_key_numbers_stay_whole_and_the_plan_says_so(story):
    report = purge(
        story, RETENTION, key=None, audit=_audit("p"), dry_run=False, now=_refreshed(story, LATER)
    )

    assert (report.numbers, report.numbers_kept_without_key, report.key_id) == (0, 1, None)
    assert _holding(story, ENDED) and _holding(story, REJECTED) == []


def test_a_plan_made_with_one_key_is_refused_with_another(story):
    plan = purge(
        story, RETENTION, key=KEY, audit=_audit("dry"), dry_run=True, now=_refreshed(story, LATER)
    )

    with pytest.raises(PlanRefused, match="HMAC key"):
        apply_purge_plan(
            story, plan.plan_id, key=b"o" * 32, audit=_audit("a"), max_age=timedelta(hours=1)
        )


def test_a_short_key_is_refused(story):
    with pytest.raises(SettingsError, match="at least 16 bytes"):
        purge(
            story,
            RETENTION,
            key=b"short",
            audit=_audit("p"),
            dry_run=True,
            now=_refreshed(story, LATER),
        )


def test_the_file_holds_no_purged_value_in_its_tables_after_a_checkpoint(story, tmp_path):
    purge(story, RETENTION, key=KEY, audit=_audit("p"), dry_run=False, now=_refreshed(story, LATER))

    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        conn.execute("CHECKPOINT")
        found = conn.execute(
            "SELECT count(*) FROM smsp.audit_log WHERE target = ? OR detail LIKE ?",
            [ENDED, f"%{ENDED}%"],
        ).fetchall()
    assert found == [(0,)]


# Random histories: any sequence of receipts, sends, listings, departures and deletions of a
# few numbers over years, purged at any moment with any retention. The purge removes exactly
# the numbers no longer needed, and nothing still needed to honour an opt-out.

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

BASE = datetime(2020, 1, 1, tzinfo=UTC)
NUMBERS = ("+33600000001", "+33600000002", "+33600000003", "+33600000004")
KINDS = ("receive", "send", "list", "leave", "delete")

_event = st.tuples(st.integers(0, 2000), st.sampled_from(KINDS))
_histories = st.dictionaries(st.sampled_from(NUMBERS), st.lists(_event, max_size=6), max_size=4)


def _write_history(
    warehouse: Warehouse, history: dict[str, list[tuple[int, str]]]
) -> dict[str, datetime]:
    """The events as the connector records them: audit rows, history rows, presence, and the
    published list of what is listed at the end; returns each number's last trace."""
    last: dict[str, datetime] = {}
    with warehouse.connect() as (conn, tables):
        conn.execute(f"CREATE TABLE {tables.stop_list} (phone_number VARCHAR)")
        for number, events in history.items():
            listed = None
            for day, kind in sorted(events):
                at = BASE + timedelta(days=day)
                if kind in ("receive", "send", "delete"):
                    last[number] = at
                    conn.execute(
                        f"INSERT INTO {tables.audit_log} (recorded_at, run_id, job, operation, "
                        "dry_run, target, outcome) VALUES (?, ?, 'test', ?, ?, ?, ?)",
                        [
                            at,
                            f"run-{day}",
                            "delete" if kind == "delete" else "add",
                            kind == "receive",
                            number,
                            "dry_run" if kind == "receive" else "applied",
                        ],
                    )
                if kind in ("list", "leave") or (kind == "delete" and listed):
                    change = "entered" if kind == "list" else "left"
                    if (change == "entered") == bool(listed):
                        continue  # the list shows a change, never a repeat
                    listed = (at, change == "entered", listed[2] if listed else at)
                    last[number] = at
                    conn.execute(
                        f"INSERT INTO {tables.history} (observed_at, snapshot_run_id, change, "
                        "phone_number, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)",
                        [at, f"refresh-{day}", change, number, listed[2], at],
                    )
            if listed:
                at, now_listed, first = listed
                conn.execute(
                    f"INSERT INTO {tables.presence} (phone_number, first_seen_at, last_seen_at, "
                    "listed, left_at) VALUES (?, ?, ?, ?, ?)",
                    [number, first, at, now_listed, None if now_listed else at],
                )
                if now_listed:
                    conn.execute(f"INSERT INTO {tables.stop_list} VALUES (?)", [number])
    return last


def _episodes(warehouse: Warehouse) -> dict[str, list[LedgerRow]]:
    """The ledger's episodes by number (NUMBERS, each with none at least, and the pseudonyms
    a purge left), read in one query: the ledger's view costs tens of milliseconds a query
    whatever it holds."""
    episodes: dict[str, list[LedgerRow]] = {number: [] for number in NUMBERS}
    for row in ledger_rows(warehouse):
        episodes.setdefault(row.phone_number, []).append(row)
    return episodes


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    history=_histories,
    at_day=st.integers(0, 4000),
    ended_days=st.integers(1, 1500),
    rejected_days=st.integers(1, 400),
)
def test_a_purge_over_any_history_removes_exactly_what_is_no_longer_needed(
    tmp_path_factory, history, at_day, ended_days, rejected_days
):
    with kept_open(tmp_path_factory.mktemp("purge") / "w.duckdb") as warehouse:
        last_trace = _write_history(warehouse, history)
        now = BASE + timedelta(days=at_day)
        retention = Retention(
            rejected=timedelta(days=rejected_days), ended=timedelta(days=ended_days)
        )
        _refreshed(warehouse, now)
        # The test's own reads share a connection; the purge and its plan's application open
        # theirs, as in a run (to the file kept open: no new database each time).
        with warehouse.one_connection():
            stories = _episodes(warehouse)
            needed = opted_out_numbers(warehouse, NUMBERS)
            before = _tables(warehouse)

        plan = purge(warehouse, retention, key=KEY, audit=_audit("dry"), dry_run=True, now=now)
        after_dry_run = _tables(warehouse)
        apply_purge_plan(
            warehouse, plan.plan_id, key=KEY, audit=_audit("apply"), max_age=timedelta(hours=1)
        )

        for name in before.keys() - {"plans", "plan_targets", "audit_log"}:
            assert after_dry_run[name] == before[name], name
        with warehouse.one_connection():
            assert opted_out_numbers(warehouse, NUMBERS) == needed
            after = _tables(warehouse)
            episodes = _episodes(warehouse)
            cutoff = now - retention.ended
            for number, story in stories.items():
                token = pseudonym(KEY, number)
                purged = number in last_trace and not _holding(after, number)
                last = last_trace.get(number)
                expected = (
                    last is not None
                    and last < cutoff
                    and number not in needed
                    and all(row.status == "ended" for row in story)
                )
                assert purged == expected, (number, story)
                kept = episodes.get(token if purged else number, [])
                assert [replace(row, phone_number=number) for row in kept] == story


def test_the_scheduled_asset_plans_applies_and_reports_with_no_raw_value_in_its_events(
    story, emulator, tmp_path, monkeypatch
):
    """The account's job ``smsp_retention`` (its schedule's): a dry run first, then the purge;
    Dagster's events hold counts and the plan id, never a number or a raw value."""
    from smsp_connector.dagster.definitions import build_definitions
    from smsp_connector.settings import Settings

    from .conftest import API_KEY

    monkeypatch.setenv("SMSP_TEST_HMAC_KEY", KEY.decode())
    built = build_definitions(
        Settings(
            api_key=API_KEY,
            base_url=emulator.base_url,
            database=str(tmp_path / "warehouse.duckdb"),
            hmac_key_var="SMSP_TEST_HMAC_KEY",
            retain_rejected=timedelta(microseconds=1),
            retain_ended=timedelta(microseconds=1),
        )
    )
    job = built.job("smsp_retention")
    assert built.retention.schedule is not None
    assert built.retention.schedule.cron_schedule == "30 6 * * *"

    dry = job.execute_in_process(
        run_config=built.keys.op_config(built.keys.retention_purge, dry_run=True)
    )
    assert _holding(story, ENDED), "a dry run changes nothing"
    done = job.execute_in_process()

    shown = {}
    for result in (dry, done):
        [event] = result.get_asset_materialization_events()
        shown[result is dry] = {k: v.value for k, v in event.materialization.metadata.items()}
        assert ENDED not in repr(result.all_events) and REJECTED not in repr(result.all_events)
    assert shown[True]["dry_run"] is True and shown[True]["numbers"] == 1
    assert shown[False]["numbers"] == 1 and shown[False]["rejected_values"] == 2
    assert shown[False]["plan_id"] != shown[True]["plan_id"]
    assert _holding(story, ENDED) == [] and "stop_list" in _holding(story, STANDING)


def test_smsp_retention_purge_then_plans_apply_then_ledger_over_the_cli(story, tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "SMSP_API_KEY": "unused",
        "SMSP_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "SMSP_RETAIN_ENDED_DAYS": "0.0000000001",
        "SMSP_EXPORT_HMAC_KEY": KEY.decode(),
    }

    def smsp(*args: str, **extra: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "smsp_connector.cli", *args]
        return subprocess.run(
            command, env={**env, **extra}, capture_output=True, text=True, timeout=120
        )

    dry = smsp("retention", "purge", "--dry-run", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert (planned["dry_run"], planned["numbers"], planned["rejected_values"]) == (True, 1, 0)
    wrong_key = smsp("plans", "apply", planned["plan_id"], SMSP_EXPORT_HMAC_KEY="x" * 32)
    applied = smsp("plans", "apply", planned["plan_id"], "--format", "json")
    story_text = smsp("ledger", "06 12 34 56 78")
    without_key = smsp("ledger", "06 12 34 56 78", SMSP_EXPORT_HMAC_KEY="")

    assert wrong_key.returncode == 1 and "HMAC key" in wrong_key.stderr
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["numbers"] == 1
    lines = story_text.stdout.splitlines()
    assert lines[0].startswith("hmac:") and "opt-out 1 (ended, from the connector)" in lines[0]
    assert "kept as the number's pseudonym" in lines[1] and "ended" in story_text.stdout
    assert "held under pseudonyms: set SMSP_EXPORT_HMAC_KEY" in without_key.stdout
    assert ENDED not in dry.stdout + applied.stdout + story_text.stdout


# Found by an adversarial session (issue 18): each test failed before its fix.


def test_a_number_quoted_in_free_text_goes_with_it(emulator, client, tmp_path):
    """A file named after the number, and consent evidence quoting it in two forms: once the
    number is purged, neither the file name nor the evidence holds it anywhere."""
    warehouse = Warehouse.at(tmp_path / "warehouse.duckdb")
    path = tmp_path / "stop_+33612345678.csv"
    path.write_text("Portable\n06 12 34 56 78\n", encoding="utf-8")
    _run(Push(), PhoneFile(path), client, warehouse, "push-1")
    _refresh(client, warehouse, "refresh-1")
    evidence = {
        "consent_at": datetime.now(UTC).isoformat(),
        "consent_source": "reply 'OUI' from +33612345678 / 06 12 34 56 78",
    }
    _run(Delete(confirm=True), PhoneValues([ENDED], evidence), client, warehouse, "delete-1")
    _refresh(client, warehouse, "refresh-2")

    purge(
        warehouse, RETENTION, key=KEY, audit=_audit("p"), dry_run=False,
        now=_refreshed(warehouse, LATER),
    )  # fmt: skip

    for form in (ENDED, "06 12 34 56 78", "0612345678", "612345678"):
        assert _holding(warehouse, form) == [], form


def test_what_may_be_a_number_in_free_text_is_hidden_whatever_its_separators():
    from smsp_connector.intake.phone_numbers import hide_numbers

    for text in (
        "optouts_06_12_34_56_78.csv",
        "opt-out 06/12/34/56/78.csv",
        "reply from +33 6 12 34 56 78.",
        "0612345678",
    ):
        assert "12" not in hide_numbers(text).replace("[number]", ""), text
    assert hide_numbers("row 12 of crm.csv") == "row 12 of crm.csv"


def test_a_number_purged_again_after_a_new_episode_merges_into_its_pseudonym(story, client):
    """Purged, opted out again, deleted again, aged out again: the second purge succeeds (it
    failed on stop_list_presence's key), and the ledger holds both episodes' proofs. Real
    time and real refreshes throughout; retention as short as it goes."""
    at_once = Retention(rejected=RETENTION.rejected, ended=timedelta(microseconds=1))
    first = purge(story, at_once, key=KEY, audit=_audit("p1"), dry_run=False)
    _run(Push(), PhoneValues([ENDED]), client, story, "push-again")
    _refresh(client, story, "refresh-again")
    evidence = {"consent_at": datetime.now(UTC).isoformat(), "consent_source": "form #9"}
    _run(Delete(confirm=True), PhoneValues([ENDED], evidence), client, story, "delete-again")
    _refresh(client, story, "refresh-after")

    second = purge(story, at_once, key=KEY, audit=_audit("p2"), dry_run=False)

    assert (first.numbers, second.numbers) == (1, 1) and _holding(story, ENDED) == []
    episodes = ledger_rows(story, ENDED, key=KEY)
    assert [row.consent_source for row in episodes] == ["form #8812", "form #9"]
    assert {row.phone_number for row in episodes} == {pseudonym(KEY, ENDED)}


def test_numbers_are_kept_whole_while_the_providers_list_was_not_read_recently(story):
    """The purge knows a number's opt-out ended from the last refresh: without one in the last
    36 hours (the provider may have taken a new STOP since), numbers wait; raw values go."""
    stale = purge(story, RETENTION, key=KEY, audit=_audit("p"), dry_run=False, now=LATER)

    assert (stale.numbers, stale.numbers_kept_list_stale, stale.rejected_values) == (0, 1, 2)
    assert _holding(story, ENDED)


def test_a_null_number_left_in_the_staged_list_does_not_hide_the_others(story):
    with story.connect() as (conn, tables):
        conn.execute(f"CREATE TABLE IF NOT EXISTS {tables.staged} (phone_number VARCHAR)")
        conn.execute(f"INSERT INTO {tables.staged} (phone_number) VALUES (NULL)")

    assert (
        purge(
            story, RETENTION, key=KEY, audit=_audit("p"), dry_run=True, now=_refreshed(story, LATER)
        ).numbers
        == 1
    )
