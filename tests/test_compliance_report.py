"""The monthly compliance report (issue 18, item 4): the month's figures from the ledger, the
audit log, the plans and the rejections; Markdown in Dagster and an HTML file for the DPO, with
no raw number in either."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from smsp_connector.operations.compliance_report import (
    build_report,
    html_document,
    markdown,
    write_html,
)
from smsp_connector.operations.retention import Retention, purge
from smsp_connector.warehouse import Warehouse
from smsp_connector.warehouse.compliance import month_bounds, previous_months
from smsp_connector.warehouse.pseudonyms import pseudonym
from smsp_connector.warehouse.retention import PurgeAudit

from .test_retention import ENDED, KEY, PENDING, REJECTED, STANDING, story  # noqa: F401

PARIS = "Europe/Paris"


def _this_month() -> date:
    return datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo(PARIS)).date()


def test_a_month_is_counted_in_the_accounts_time_zone_with_its_clock_changes():
    march = month_bounds(date(2026, 3, 1), PARIS)
    october = month_bounds(date(2026, 10, 1), PARIS)

    assert march[0] == datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert (march[1] - march[0]) / timedelta(hours=1) == 743
    assert (october[1] - october[0]) / timedelta(hours=1) == 745
    assert previous_months(date(2026, 2, 14), 3) == [
        date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1),
    ]  # fmt: skip


def test_the_schedule_writes_the_month_before_the_ticks_in_the_accounts_time_zone():
    import dagster as dg

    from smsp_connector.dagster.definitions import build_definitions
    from smsp_connector.settings import Settings

    built = build_definitions(Settings(report_schedule="30 0 1 * *"))
    repository = built.definitions.get_repository_def()
    schedule = built.compliance_report.schedule
    assert schedule is not None and schedule.execution_timezone == PARIS

    def partition_at(moment: datetime) -> str | None:
        context = dg.build_schedule_context(
            scheduled_execution_time=moment, repository_def=repository
        )
        [request] = schedule.evaluate_tick(context).run_requests or []
        return request.partition_key

    # 00:30 in Paris on 1 December is still 30 November in UTC: November is the month before.
    assert partition_at(datetime(2026, 11, 30, 23, 30, tzinfo=UTC)) == "2026-11-01"
    assert partition_at(datetime(2026, 1, 1, 6, tzinfo=UTC)) == "2025-12-01"


@pytest.mark.heavy
def test_the_report_counts_the_months_opt_outs_deletions_rejections_and_purges(story):  # noqa: F811
    purge(
        story,
        Retention(rejected=timedelta(microseconds=1), ended=timedelta(microseconds=1)),
        key=KEY,
        audit=PurgeAudit("purge", "test", "smsp"),
        dry_run=False,
    )
    with story.connect() as (conn, tables):  # an opt-out received two days ago, never sent
        conn.execute(
            f"UPDATE {tables.audit_log} SET recorded_at = recorded_at - INTERVAL 2 DAY "
            "WHERE run_id = 'dry-1'"
        )
    month = _this_month()
    if (datetime.now(UTC) - timedelta(days=2)).astimezone().month != month.month:
        pytest.skip("the backdated row falls in last month: the first two days of a month")

    report = build_report(story, month, account="smsp", within=timedelta(hours=24), timezone=PARIS)

    f = report.figures
    assert (f["received"], f["honoured_in_time"], f["honoured_late"]) == (3, 2, 0)
    assert f["not_honoured"] == 1 and f["deletions"] == f["deletions_with_consent"] == 1
    assert (f["rejected_rows"], f["purged_numbers"], f["purged_rejected_values"]) == (2, 1, 2)
    detail = report.detail
    assert dict(zip(detail.by_source.source, detail.by_source.opt_outs, strict=True)) == {
        "crm.csv": 2,
        "command line": 1,
    }
    assert detail.consent.to_dict("records") == [{"consent_source": "form #8812", "deletions": 1}]
    assert sorted(detail.rejected.reason) == sorted(detail.rejected.reason.unique())
    assert len(detail.late) == 1 and detail.late.hours.iloc[0] >= 47.9
    assert len(detail.figures) == 12 and detail.figures.month.iloc[-1] == month.replace(day=1)
    text = markdown(report) + html_document(report)
    for raw in (ENDED, STANDING, PENDING, REJECTED):
        assert raw not in text
    assert "<svg" in html_document(report) and "<script" not in html_document(report)
    assert "## Deletions, by consent evidence" in markdown(report)


def test_an_opt_out_received_after_midnight_paris_on_the_first_counts_in_the_new_month(tmp_path):
    warehouse = Warehouse.at(tmp_path / "w.duckdb")
    with warehouse.connect() as (conn, tables):
        conn.execute(
            f"INSERT INTO {tables.audit_log} (recorded_at, run_id, job, operation, dry_run, "
            "source_file, source_row, target, outcome) VALUES "
            "('2026-03-31 22:30:00+00', 'r', 'test', 'add', false, 'a.csv', 2, "
            "'+33611111111', 'applied')"
        )

    march, april = (
        build_report(warehouse, month, account="a", within=timedelta(hours=24), timezone=PARIS)
        for month in (date(2026, 3, 1), date(2026, 4, 1))
    )

    assert (march.figures["received"], april.figures["received"]) == (0, 1)
    assert april.detail.figures.received.tolist()[-2:] == [0, 1]


def _move_back_a_month(warehouse: Warehouse) -> None:
    """Every time in every table one month earlier: the story, as if told last month (a
    month's partition exists once the month is over)."""
    with warehouse.connect() as (conn, tables):
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND data_type LIKE 'TIMESTAMP%' AND table_name IN "
            "(SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE')",
            [tables.schema_name],
        ).fetchall()
        for table, column in columns:
            conn.execute(
                f"UPDATE {tables.qualified(table)} SET {column} = {column} - INTERVAL 1 MONTH"
            )


@pytest.mark.heavy
def test_the_monthly_asset_writes_the_html_file_and_shows_the_report(story, emulator, tmp_path):  # noqa: F811
    from smsp_connector.dagster.definitions import build_definitions
    from smsp_connector.settings import Settings

    from .conftest import API_KEY

    built = build_definitions(
        Settings(
            api_key=API_KEY,
            base_url=emulator.base_url,
            database=str(tmp_path / "warehouse.duckdb"),
            export_dir=str(tmp_path / "exports"),
        )
    )
    this_month = _this_month()
    if this_month.day < 3:
        pytest.skip("rows moved back a month could cross into another near a month's start")
    month = (this_month.replace(day=1) - timedelta(days=1)).replace(day=1)
    _move_back_a_month(Warehouse.at(tmp_path / "warehouse.duckdb"))
    schedule = built.compliance_report.schedule
    assert schedule is not None and schedule.cron_schedule == "0 7 1 * *"

    result = built.job("smsp_compliance_report").execute_in_process(
        partition_key=f"{month:%Y-%m-%d}"
    )

    [event] = result.get_asset_materialization_events()
    shown = {k: v.value for k, v in event.materialization.metadata.items()}
    path = Path(shown["path"])
    assert path.name == f"compliance_smsp_{month:%Y-%m}.html" and path.parent.name == "reports"
    assert shown["received"] == 3 and shown["deletions"] == 1
    assert shown["report"].startswith(f"# Opt-out compliance report, smsp, {month:%B %Y}")
    page = path.read_text(encoding="utf-8")
    assert "<svg" in page and ENDED not in page + repr(result.all_events)


@pytest.mark.heavy
def test_free_text_in_the_report_holds_no_number_and_no_markdown(emulator, client, tmp_path):
    """Found by an adversarial session: a file named after a number and consent evidence
    quoting one reached the report whole; Markdown in them was rendered; times said UTC in
    the machine's zone; late rows were unsalted SHA-256 (reversible)."""
    from smsp_connector.operations.inputs import PhoneFile, PhoneValues
    from smsp_connector.operations.run import Delete, Push

    from .test_ledger import _refresh, _run

    warehouse = Warehouse.at(tmp_path / "w.duckdb")
    path = tmp_path / "stop_+33612345678.csv"
    path.write_text("Portable\n06 12 34 56 78\n06 11 11 11 11\n", encoding="utf-8")
    _run(Push(), PhoneFile(path), client, warehouse, "push-1")
    _refresh(client, warehouse, "refresh-1")
    evidence = {
        "consent_at": datetime.now(UTC).isoformat(),
        "consent_source": "reply from 06 12 34 56 78\n# Heading [x](http://evil) ![i](http://t)",
    }
    _run(Delete(confirm=True), PhoneValues([ENDED], evidence), client, warehouse, "delete-1")
    _run(Push(dry_run=True), PhoneValues(["0622222222"]), client, warehouse, "dry-1")

    report = build_report(
        warehouse, _this_month(), account="../../x y", within=timedelta(hours=24),
        timezone=PARIS, key=KEY,
    )  # fmt: skip

    text = markdown(report) + html_document(report)
    for raw in (ENDED, "06 12 34 56 78", "0622222222", "+33622222222"):
        assert raw not in text, raw
    assert "[number]" in text
    md = markdown(report)
    assert "\n# Heading" not in md and "](http" not in md
    late = report.detail.late.phone.tolist()
    assert late == [pseudonym(KEY, PENDING)]
    received = report.detail.late.received_at.iloc[0]
    assert f"{received.astimezone(UTC):%Y-%m-%d %H:%M} UTC" in html_document(report)
    written = write_html(report, str(tmp_path / "reports"))
    assert Path(written).parent == tmp_path / "reports"


def test_a_late_row_already_pseudonymised_keeps_its_pseudonym():
    """Found in review: a month built after its numbers were purged hashed the pseudonym again
    (no longer verifiable against the number)."""
    import pandas as pd

    from smsp_connector.warehouse.compliance import _shown

    token = pseudonym(KEY, ENDED)
    late = pd.DataFrame({"phone_number": [token, STANDING], "hours": [30.0, 40.0]})

    shown = _shown(late, KEY)

    assert shown.phone.tolist() == [token, pseudonym(KEY, STANDING)]
    assert _shown(pd.DataFrame({"phone_number": [token]}), None).phone.tolist() == [token]
