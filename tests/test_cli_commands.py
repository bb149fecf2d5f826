"""The smsp command line against the emulator, in subprocesses, as a data engineer uses it."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import duckdb
import pytest

from smsp_connector.emulator import FaultSettings

from .conftest import API_KEY

pytestmark = pytest.mark.slow  # smsp subprocesses


@pytest.fixture
def cli(emulator, tmp_path):
    environment = {
        **os.environ,
        "SMSP_API_KEY": API_KEY,
        "SMSP_BASE_URL": emulator.base_url,
        "SMSP_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "SMSP_RATE_LIMIT": "500",
    }

    def run(*args: str, **overrides: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "smsp_connector.cli", *args],
            env={**environment, **overrides},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert API_KEY not in done.stdout + done.stderr
        return done

    return run


def _audit(tmp_path) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT job, operation, source_row, target, outcome FROM smsp.audit_latest "
            "ORDER BY source_row"  # concurrent adds are recorded in either order
        ).fetchall()


def test_list_in_three_formats(cli, emulator):
    emulator.state.seed_entries([("+33612345678", "2025-07-14 09:30:00")])

    table, csv, as_json = (
        cli("stops", "list"),
        cli("stops", "list", "--format", "csv"),
        cli("stops", "list", "--format", "json"),
    )

    assert table.returncode == csv.returncode == as_json.returncode == 0
    assert "+33612345678" in table.stdout and "1 entries" in table.stderr
    assert csv.stdout.splitlines()[1].endswith(",+33612345678,2025-07-14T09:30:00+02:00")
    assert json.loads(as_json.stdout)[0]["phone_number"] == "+33612345678"


def test_push_numbers_reports_a_summary_and_audits_each_one(cli, emulator, tmp_path):
    done = cli("push", "-n", "06 12 34 56 78", "--number", "+33698765432")

    assert done.returncode == 0, done.stderr
    assert "added" in done.stdout and "2" in done.stdout
    assert emulator.state.has_number("+33612345678")
    assert _audit(tmp_path) == [
        ("smsp-cli", "add", 1, "+33612345678", "applied"),
        ("smsp-cli", "add", 2, "+33698765432", "applied"),
    ]


def test_refused_rows_exit_3_and_say_why(cli, emulator, tmp_path):
    emulator.faults = FaultSettings(force_code={"stop-sms/add": 9})  # refused: code 9
    done = cli("push", "-n", "0611223344", "-n", "abc")

    assert done.returncode == 3
    assert "rows that did not go through" in done.stderr
    assert "Invalid phone number" in done.stderr
    assert "does not contain a phone number" in done.stderr


def test_push_a_file_and_run_it_again_without_calls(cli, emulator, tmp_path):
    source = tmp_path / "export.csv"
    source.write_text("Téléphone;Nom\n06 12 34 56 78;Léa\n+33698765432;Hugo\n", encoding="cp1252")

    first = cli("push", str(source))
    calls = emulator.stats()["endpoints"]["stop-sms/add"]
    second = cli("push", str(source))

    assert first.returncode == second.returncode == 0
    assert emulator.stats()["endpoints"]["stop-sms/add"] == calls
    assert "already on list │ 2" in second.stdout


def test_delete_is_a_dry_run_unless_confirmed(cli, emulator):
    emulator.state.seed_entries([("+33612345678", "2025-01-01 10:00:00")])
    evidence = ["--consent-at", "2026-01-15T10:00", "--consent-source", "web form #8812"]

    dry = cli("stops", "delete", "+33612345678", *evidence)
    assert dry.returncode == 0 and "dry run" in dry.stdout
    assert emulator.state.has_number("+33612345678")

    confirmed = cli("stops", "delete", "+33612345678", *evidence, "--confirm")
    assert confirmed.returncode == 0, confirmed.stderr
    assert not emulator.state.has_number("+33612345678")


def test_delete_without_evidence_is_refused(cli, emulator):
    emulator.state.seed_entries([("+33612345678", "2025-01-01 10:00:00")])

    done = cli("stops", "delete", "+33612345678", "--confirm")

    assert done.returncode == 3
    assert "no consent evidence" in done.stderr
    assert emulator.state.has_number("+33612345678")


def test_cancel_with_an_id_that_is_not_one_goes_on_with_the_others(cli, tmp_path):
    done = cli("cancel", "5000", "abc")

    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert "'abc' is not a message id" in done.stderr
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        recorded = conn.execute("SELECT source_file, row_number FROM smsp.input_rejections")
        assert recorded.fetchall() == [("command line", 2)]


def test_cancel_by_id(cli, emulator):
    done = cli("cancel", "999999")

    assert done.returncode == 3
    assert "not found" in done.stdout


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"SMSP_API_KEY": "wrong"}, "the provider refused the API key (code 10"),
        ({"SMSP_API_KEY": ""}, "SMSP_API_KEY is not set"),
        ({"SMSP_BASE_URL": "http://127.0.0.1:1/v1"}, "cannot reach http://127.0.0.1:1: "),
        ({"SMSP_BASE_URL": "http://example.com/v1"}, "must use https://"),
        ({"SMSP_RATE_LIMIT": "fast"}, "SMSP_RATE_LIMIT='fast' is not a valid rate_limit"),
        ({"SMSP_MAX_WORKERS": "0"}, "max_workers must be between 1 and 256"),
        (
            {"SMSP_BASE_URL": f"http://user:{API_KEY}@127.0.0.1:1/v1?apiKey={API_KEY}"},
            "cannot reach http://127.0.0.1:1: ",
        ),
    ],
)
def test_configuration_problems_are_one_clear_line(cli, overrides, expected):
    done = cli("stops", "list", **overrides)

    assert done.returncode == 1
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_bad_file_is_one_clear_line(cli, tmp_path):
    (tmp_path / "garbage.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")

    done = cli("push", str(tmp_path / "garbage.csv"))

    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and "garbage.csv" in done.stderr
    assert "Traceback" not in done.stderr


def test_usage_errors_exit_2(cli, tmp_path):
    for args in (("push",), ("push", str(tmp_path / "f.csv"), "-n", "0612345678")):
        done = cli(*args)

        assert done.returncode == 2
        assert "give one of FILE, --query or --number" in done.stderr


def test_stops_add_is_kept_for_scripts_out_of_the_help(cli, emulator, tmp_path):
    """One word per operation: ``smsp push``; ``smsp stops add``, its earlier name, still runs
    for the scripts that call it, and the help no longer offers it."""
    done = cli("stops", "add", "06 12 34 56 78")
    listed = cli("stops", "--help")

    assert done.returncode == 0, done.stderr
    assert emulator.state.has_number("+33612345678")
    assert "add" not in listed.stdout.split("Commands:")[1]


def test_help_shows_examples(cli):
    done = cli("--help")

    assert done.returncode == 0
    assert (
        "Examples:" in done.stdout and "smsp push" in done.stdout and "Exit status" in done.stdout
    )


def test_a_push_records_rejections_and_writes_both_reports_like_the_jobs(cli, emulator, tmp_path):
    # Rows 2-3 unusable, rows 4-28 refused by the provider (code 9, forced).
    refused = [f"06112233{n:02d}" for n in range(25)]
    source = tmp_path / "export.csv"
    source.write_text(
        'Mobile perso;Nom\nabc;x\n=HYPERLINK("http://x");y\n'
        + "".join(f"{number};r\n" for number in refused),
        encoding="utf-8",
    )
    emulator.faults = FaultSettings(force_code={"stop-sms/add": 9})

    done = cli("push", str(source), "--phone-column", "Mobile perso")

    assert done.returncode == 3, done.stderr
    assert "added" in done.stdout and "rejected" in done.stdout
    shown = [line for line in done.stderr.splitlines() if "│ rejected" in line]
    assert len(shown) == 20 - 2, "at most 20 rows shown (2 invalid, then 18 refusals)"
    assert "... and 7 more" in done.stderr
    rejected_report = tmp_path / "export.rejected.csv"
    refused_report = tmp_path / "export.refused.csv"
    assert f"rejected input rows: {rejected_report}" in done.stderr
    assert str(refused_report) in done.stderr
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        recorded = conn.execute(
            "SELECT job, row_number, reason FROM smsp.input_rejections ORDER BY row_number"
        ).fetchall()
    assert recorded == [("smsp-cli", 2, "not_a_number"), ("smsp-cli", 3, "not_a_number")]
    with open(rejected_report, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["raw_value"] for row in rows] == ["abc", '\'=HYPERLINK("http://x")']
    with open(refused_report, newline="", encoding="utf-8") as handle:
        refusals = list(csv.DictReader(handle))
    assert len(refusals) == 25
    assert {(row["outcome"], row["provider_code"]) for row in refusals} == {("rejected", "9")}


def test_push_file_takes_the_phone_column_and_region(cli, emulator, tmp_path):
    source = tmp_path / "reunion.csv"
    source.write_text("Tel. domicile;Portable\n0262123456;0692123456\n", encoding="utf-8")

    done = cli(
        "push", str(source), "--phone-column", "Portable",
        "--default-region", "RE",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert emulator.state.has_number("+262692123456")
    assert not (tmp_path / "reunion.rejected.csv").exists()


def test_version():
    done = subprocess.run(
        [sys.executable, "-m", "smsp_connector.cli", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("smsp, version ")


def test_stops_list_as_csv_is_formula_safe(cli, emulator):
    emulator.state.seed_entries([('=HYPERLINK("http://x")', "2025-07-14 09:30:00")])
    emulator.state.seed_entries([("+33612345678", "2025-07-14 09:30:00")])

    done = cli("stops", "list", "--format", "csv")

    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(done.stdout.splitlines()))
    assert [row[1] for row in rows[1:]] == ['\'=HYPERLINK("http://x")', "+33612345678"]


def test_a_duckdb_path_that_is_a_folder_is_one_line(cli, tmp_path):
    done = cli("push", "-n", "0612345678", SMSP_DUCKDB_PATH=str(tmp_path))

    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("Error: ") and str(tmp_path) in line


def test_stops_list_shows_an_unreadable_opt_out_time_as_empty(cli, emulator):
    emulator.state.seed_entries([("+33612345678", "0000-00-00 00:00:00")])

    done = cli("stops", "list", "--format", "csv")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].endswith(",+33612345678,")


def test_push_from_a_query_on_the_warehouse(cli, emulator, tmp_path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        conn.execute(
            "CREATE SCHEMA crm; CREATE TABLE crm.unsubscribes AS SELECT * FROM (VALUES "
            "('0611111111', 'acme'), ('0622222222', 'other'), ('abc', 'acme')) t(mobile, brand)"
        )

    done = cli("push", "--query", "SELECT mobile FROM crm.unsubscribes WHERE brand = 'acme'")
    neither = cli("push")

    assert done.returncode == 0, done.stderr
    assert emulator.state.has_number("+33611111111")
    assert not emulator.state.has_number("+33622222222")
    assert _audit(tmp_path) == [
        ("smsp-cli", "add", 1, "+33611111111", "applied"),
        ("smsp-cli", "add", 2, "abc", "invalid_input"),
    ]
    assert neither.returncode == 2 and "give one of FILE, --query or --number" in neither.stderr


def test_a_fifo_or_an_oversized_file_is_one_line(cli, tmp_path):
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    big = tmp_path / "big.csv"
    big.write_text("phone\n" + "0612345678\n" * 100)

    from_fifo = cli("push", str(fifo))
    too_big = cli("push", str(big), SMSP_MAX_INPUT_BYTES="100")

    assert from_fifo.returncode == too_big.returncode == 1
    assert from_fifo.stderr.strip() == f"Error: {fifo}: not a regular file (a FIFO)"
    assert too_big.stderr.strip() == f"Error: {big}: 1,106 bytes, above the 100-byte limit"


def test_a_listing_piped_into_head_ends_quietly(emulator, tmp_path):
    """`smsp stops list --format csv | head` is how people look at a long list: the reader's
    early exit is not an error to report (it was "Error: : Broken pipe")."""
    emulator.state.seed_entries([(f"+3361{n:07d}", "2025-01-01 10:00:00") for n in range(20_000)])
    done = subprocess.run(
        f"{sys.executable} -m smsp_connector.cli stops list --format csv | head -2",
        shell=True,
        env={**os.environ, "SMSP_API_KEY": API_KEY, "SMSP_BASE_URL": emulator.base_url},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.splitlines()[0] == "id,phone_number,created_at"
    assert done.stderr == ""


def test_an_unknown_default_region_is_a_usage_error_in_one_line(cli, tmp_path):
    """Found by an adversarial session: a traceback ending in ValueError, before."""
    source = tmp_path / "f.csv"
    source.write_text("phone\n0612345678\n")

    for args in (("push", "-n", "0612345678"), ("push", str(source)), ("ledger", "0612")):
        done = cli(*args, "--default-region", "XX")

        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and "unknown region 'XX'" in done.stderr


def test_a_query_push_plan_records_its_query_and_reading_options(cli, emulator, tmp_path):
    """Found by an adversarial session: its plan's options were empty, the query nowhere."""
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        conn.execute(
            "CREATE SCHEMA crm; CREATE TABLE crm.u AS SELECT '0692123456' AS mobile, 'x' AS b"
        )
    query = "SELECT b, mobile FROM crm.u"

    done = cli(
        "push", "--query", query, "--phone-column", "mobile", "--default-region", "re",
        "--dry-run", "--format", "json",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)["plan"]
    assert plan["options"] == {"query": query, "phone_column": "mobile", "default_region": "RE"}
