"""Out-of-range dates are a row-level refusal, never a crash (issue 19 §2).

``0001-01-01`` is a common "no date" placeholder; dates before 1677 or after 2262 do not fit the
warehouse's nanosecond timestamps and overflow Python's when moved to UTC. In a consent file, in
the provider's list (for a deletion or the extract) or in a table source, such a date refuses
its row with a reason; every other row carries on.
"""

from __future__ import annotations

import duckdb
import pytest

from smsp_connector.client.shapes import Unreadable, opt_out_time, provider_time, send_time
from smsp_connector.operations.context import RunContext
from smsp_connector.operations.delete import parse_consent_time
from smsp_connector.operations.extract import extract_stop_list
from smsp_connector.operations.inputs import PhoneFile, PhoneValues
from smsp_connector.operations.run import Delete, run_operation
from smsp_connector.operations.table_sources import push_source
from smsp_connector.settings import PushSource
from smsp_connector.warehouse import Warehouse, pushed_cursor
from smsp_connector.warehouse.audit import Outcome

GOOD_OPT_OUT = "2025-03-01 12:00:00"
OUT_OF_RANGE = ["0001-01-01 00:00:00", "1600-06-01 12:00:00", "2300-01-01 00:00:00"]
CONSENT = {"consent_at": "2026-01-15T10:00:00Z", "consent_source": "web form #1"}


def _delete(client, tmp_path, numbers, evidence=CONSENT, *, confirm=False):
    return run_operation(
        Delete(confirm=confirm),
        PhoneValues(numbers, evidence),
        RunContext(
            client=client,
            warehouse=Warehouse.at(tmp_path / "warehouse.duckdb"),
            run_id="dates",
            job="test",
        ),
    )


# -- consent files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "consent_at",
    [
        "0001-01-01",
        "01/01/0001",
        "0001-01-01T00:00:00",
        "1600-01-01T00:00:00+01:00",
        "2300-01-01",
        "9999-12-31T23:59:59-05:00",
        "9999-12-31T23:59:59+14:00",
    ],
)
def test_a_consent_date_out_of_range_refuses_its_row(client, emulator, tmp_path, consent_at):
    emulator.state.seed_entries([("+33611111111", GOOD_OPT_OUT), ("+33622222222", GOOD_OPT_OUT)])

    with pytest.raises(ValueError, match=r"1677.*2262"):
        parse_consent_time(consent_at)
    report = _delete(
        client, tmp_path, ["+33611111111"], {**CONSENT, "consent_at": consent_at}, confirm=True
    )

    assert (report.counts["refused"], report.counts["planned"]) == (1, 0)
    [row] = report.unsent.to_dict("records")
    assert (row["source_row"], row["outcome"]) == (1, Outcome.REFUSED)
    assert repr(consent_at) in row["reason"] and "1677" in row["reason"]
    assert emulator.state.stop_count() == 2, "nothing deleted"


def test_other_rows_of_the_run_carry_on(client, emulator, tmp_path):
    emulator.state.seed_entries([("+33611111111", GOOD_OPT_OUT), ("+33622222222", GOOD_OPT_OUT)])
    path = tmp_path / "consents.csv"
    path.write_text(
        "phone,consent_at,consent_source\n"
        "+33611111111,0001-01-01,migrated\n"
        "+33622222222,2026-01-15T10:00:00Z,web form #2\n",
        encoding="utf-8",
    )
    report = run_operation(
        Delete(confirm=True),
        PhoneFile(path),
        RunContext(
            client=client,
            warehouse=Warehouse.at(tmp_path / "warehouse.duckdb"),
            run_id="dates-file",
            job="test",
        ),
    )

    assert (report.counts["refused"], report.counts["deleted"]) == (1, 1)
    assert report.unsent["source_row"].tolist() == [2]
    assert emulator.state.has_number("+33611111111")
    assert not emulator.state.has_number("+33622222222")


# -- the provider's answers ----------------------------------------------------------------------


@pytest.mark.parametrize("created", OUT_OF_RANGE)
def test_an_opt_out_time_out_of_range_refuses_its_deletion(client, emulator, tmp_path, created):
    emulator.state.seed_entries([("+33611111111", created), ("+33622222222", GOOD_OPT_OUT)])

    assert opt_out_time(created) is None
    report = _delete(client, tmp_path, ["+33611111111", "+33622222222"])

    assert (report.counts["refused"], report.counts["planned"]) == (1, 1)
    [row] = report.unsent.to_dict("records")
    assert (row["target"], row["outcome"]) == ("+33611111111", Outcome.REFUSED)
    assert "the opt-out stands" in row["reason"]


@pytest.mark.parametrize("created", OUT_OF_RANGE)
def test_other_provider_times_out_of_range_are_unreadable_not_overflows(created):
    with pytest.raises(Unreadable):
        provider_time(created, "date")
    with pytest.raises(Unreadable):
        send_time(created, "scheduledDeliveryDate")
    with pytest.raises(Unreadable):
        send_time(created.replace(" ", "T") + "+01:00", "scheduledDeliveryDate")


@pytest.mark.parametrize("created", OUT_OF_RANGE)
def test_the_extract_reports_an_entry_out_of_range_as_a_schema_failure(
    client, emulator, tmp_path, created
):
    emulator.state.seed_entries([("+33611111111", GOOD_OPT_OUT), ("+33622222222", created)])

    extraction = extract_stop_list(
        client, Warehouse.at(tmp_path / "w.duckdb"), run_id="dates", max_shrink_share=0.2
    )

    report = extraction.report
    assert report.failing_rows == 1
    assert set(report.failure_cases["row"]) == {1}
    assert set(report.failure_cases["column"]) == {"created_at"}
    assert repr(created) in report.failure_cases["provider_entry"].iloc[0], "the raw value"
    [schema] = [check for check in extraction.checks if check.name == "schema_valid"]
    assert not schema.passed and schema.blocking
    assert not extraction.published


# -- table sources -------------------------------------------------------------------------------


def test_a_table_source_with_placeholder_dates_pushes_every_opt_out(client, emulator, tmp_path):
    """Dates in a table source are its cursor: an opt-out is never refused for its date."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "CREATE TABLE unsubscribes (mobile VARCHAR, unsubscribed_at TIMESTAMP);"
            "INSERT INTO unsubscribes VALUES ('0611111111', '0001-01-01'), "
            "('0622222222', '2300-01-01'), ('0633333333', '2026-11-01 10:00:00'), "
            "('0644444444', 'infinity'), ('0655555555', '-infinity')"
        )
    source = PushSource(
        name="crm", table="unsubscribes", phone_column="mobile", cursor_column="unsubscribed_at"
    )

    report = push_source(
        source,
        RunContext(client=client, warehouse=Warehouse.at(path), run_id="dates-table", job="test"),
    )

    assert report.counts["added"] == 5
    assert pushed_cursor(Warehouse.at(path), "crm") == "infinity"
