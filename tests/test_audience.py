"""The pre-send guard on a campaign's audience (issue 18, item 5): ``smsp audience check``
finds the numbers that opted out (on the published list, or received and not yet there), in
any input form, names them only as SHA-256, exits 3, and writes the audience without them."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys

import dagster as dg
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource

from smsp_connector.operations.context import RunContext
from smsp_connector.operations.extract import extract_stop_list
from smsp_connector.operations.inputs import PhoneValues
from smsp_connector.operations.run import Push, run_operation
from smsp_connector.settings import Settings
from smsp_connector.warehouse import Warehouse

from .conftest import API_KEY

pytestmark = pytest.mark.heavy

AUDIENCE = (
    "Nom;Mobile\n"
    "Dupont;06 12 34 56 78\n"  # on the provider's list as +33612345678
    "Martin;0033 6 98 76 54 32\n"  # received in a dry run, not yet on the list
    "Durand;06 11 22 33 44\n"
    '=HYPERLINK("http://x");06 55 66 77 88\n'
    "Petit;not a number\n"
)


def test_an_audience_with_two_opted_out_numbers_in_other_forms_is_blocked(emulator, tmp_path):
    database = tmp_path / "w.duckdb"
    settings = Settings(api_key=API_KEY, base_url=emulator.base_url, database=str(database))
    emulator.state.seed_entries([("+33612345678", "2026-03-03 09:15:00")])
    warehouse = Warehouse.at(database)
    with settings.client() as client:
        extract_stop_list(client, warehouse, run_id="refresh", max_shrink_share=1.0)
        run_operation(
            Push(dry_run=True),
            PhoneValues(["+33698765432"]),
            RunContext(client=client, warehouse=warehouse, run_id="dry", job="t"),
        )
    audience = tmp_path / "campaign.csv"
    audience.write_text(AUDIENCE, encoding="utf-8")
    clean = tmp_path / "campaign.clean.csv"
    env = {**os.environ, "SMSP_API_KEY": API_KEY, "SMSP_DUCKDB_PATH": str(database)}

    def smsp(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "smsp_connector.cli", "audience", "check", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    text = smsp(str(audience), "--write-clean", str(clean))
    as_json = smsp(str(audience), "--format", "json")
    cleaned = smsp(str(clean))

    assert text.returncode == 3, text.stderr
    assert text.stdout.splitlines()[0] == (
        "rows: 5, opted out rows: 2, opted out numbers: 2, unreadable rows: 1"
    )
    for number in ("+33612345678", "+33698765432", "06 12 34 56 78", "6 98 76 54 32"):
        assert number not in text.stdout + as_json.stdout
    assert json.loads(as_json.stdout)["opted_out_sha256"] == sorted(
        hashlib.sha256(n.encode()).hexdigest() for n in ("+33612345678", "+33698765432")
    )
    with open(clean, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["Mobile"] for row in rows] == ["06 11 22 33 44", "06 55 66 77 88", "not a number"]
    assert rows[1]["Nom"] == '\'=HYPERLINK("http://x")'  # formula-safe
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr


def test_the_blocking_check_on_a_teams_audience_asset_stops_the_send(emulator, tmp_path):
    """``build_audience_check`` on the team's own asset: the send downstream does not run while
    the audience holds opted-out numbers, whatever their form; the check shows SHA-256 only."""
    from smsp_connector.dagster import build_audience_check, build_definitions

    database = tmp_path / "w.duckdb"
    settings = Settings(api_key=API_KEY, base_url=emulator.base_url, database=str(database))
    emulator.state.seed_entries([("+33612345678", "2026-03-03 09:15:00")])
    with settings.client() as client:
        extract_stop_list(client, Warehouse.at(database), run_id="r", max_shrink_share=1.0)
    sent: list[str] = []

    @dg.asset(key=["crm", "campaign_audience"], required_resource_keys={"duckdb"})
    def campaign_audience(context) -> None:
        duckdb: DuckDBResource = context.resources.duckdb
        with duckdb.get_connection() as conn:
            conn.execute(
                "CREATE SCHEMA IF NOT EXISTS crm; CREATE OR REPLACE TABLE crm.campaign_audience "
                "AS SELECT * FROM (VALUES ('0033 6 12 34 56 78'), ('06 11 22 33 44')) t(mobile)"
            )

    @dg.asset(key=["crm", "send"], deps=[campaign_audience])
    def send() -> None:
        sent.append("sent")

    check = build_audience_check("crm/campaign_audience", "mobile", settings=settings)
    result = dg.materialize(
        [campaign_audience, send, check],
        resources=build_definitions(settings).resources,
        raise_on_error=False,
    )

    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    shown = {name: value.value for name, value in evaluation.metadata.items()}
    assert (shown["rows"], shown["opted_out_rows"]) == (2, 1)
    assert shown["opted_out_sha256"] == [hashlib.sha256(b"+33612345678").hexdigest()]
    assert sent == [], "the send ran past a failed blocking check"


def test_a_dataframe_audience_asset_is_checked_from_its_value(emulator, tmp_path):
    """``from_value``: the audience is the asset's DataFrame (its IO manager's), numbers in any
    form, integers and gaps included; the send does not run while it holds an opted-out number,
    and runs once the audience is clean."""
    from smsp_connector.dagster import build_audience_check, build_definitions

    database = tmp_path / "w.duckdb"
    settings = Settings(api_key=API_KEY, base_url=emulator.base_url, database=str(database))
    emulator.state.seed_entries([("+33612345678", "2026-03-03 09:15:00")])
    with settings.client() as client:
        extract_stop_list(client, Warehouse.at(database), run_id="r", max_shrink_share=1.0)
    sent: list[int] = []
    audiences = {
        "opted out": [33612345678.0, None, "06 11 22 33 44"],
        "clean": [33611223344, "+33 6 11 22 33 45"],
    }
    check = build_audience_check(
        "crm/campaign_audience", "mobile", settings=settings, from_value=True
    )
    results = {}
    for name, mobiles in audiences.items():

        @dg.asset(key=["crm", "campaign_audience"])
        def campaign_audience() -> pd.DataFrame:
            return pd.DataFrame({"mobile": mobiles})  # noqa: B023 (run at once)

        @dg.asset(key=["crm", "send"], deps=[campaign_audience])
        def send(context) -> None:
            sent.append(len(sent))

        results[name] = dg.materialize(
            [campaign_audience, send, check],
            resources=build_definitions(settings).resources,
            raise_on_error=False,
        )

    blocked, clean = (results[name].get_asset_check_evaluations()[0] for name in audiences)
    shown = {name: value.value for name, value in blocked.metadata.items()}
    assert not blocked.passed and clean.passed
    assert (shown["rows"], shown["opted_out_rows"], shown["unreadable_rows"]) == (3, 1, 1)
    assert shown["opted_out_sha256"] == [hashlib.sha256(b"+33612345678").hexdigest()]
    assert sent == [0], "the send ran once: after the clean audience only"
    with pytest.raises(ValueError, match="exclude each other"):
        build_audience_check("crm/a", "mobile", settings=settings, table="t", from_value=True)


def test_a_components_audience_checks_guard_the_teams_asset(emulator, tmp_path, monkeypatch):
    """``audience_checks`` in a ``defs.yaml``: the same blocking check, from the account's one
    configuration, on an asset that the team's own code defines."""
    from smsp_connector import SmspComponent
    from smsp_connector.dagster import build_definitions

    database = tmp_path / "w.duckdb"
    emulator.state.seed_entries([("+33612345678", "2026-03-03 09:15:00")])
    component = SmspComponent.resolve_from_yaml(
        'api_key: "{{ env.SMSP_API_KEY }}"\n'
        f"base_url: {emulator.base_url}\ndatabase: {database}\n"
        "audience_checks: [{asset: crm/audience, phone_column: mobile, table: crm.people}]\n"
    )
    settings = component.settings()
    with Settings(api_key=API_KEY, base_url=emulator.base_url).client() as client:
        extract_stop_list(client, Warehouse.at(database), run_id="r", max_shrink_share=1.0)
    with Warehouse.at(database).connect() as (conn, _):
        conn.execute(
            "CREATE SCHEMA crm; CREATE TABLE crm.people AS SELECT '06 12 34 56 78' AS mobile"
        )

    @dg.asset(key=["crm", "audience"])
    def audience() -> None: ...

    @dg.asset(key=["crm", "send"], deps=[audience])
    def send() -> None: ...

    job = dg.define_asset_job("campaign", selection=["crm/audience", "crm/send"])
    defs = dg.Definitions.merge(
        build_definitions(settings).definitions,
        dg.Definitions(assets=[audience, send], jobs=[job]),
    )
    monkeypatch.setenv("SMSP_API_KEY", API_KEY)
    result = defs.resolve_job_def("campaign").execute_in_process(raise_on_error=False)

    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "no_opted_out_numbers" and not evaluation.passed
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == {
        "crm/audience"
    }
