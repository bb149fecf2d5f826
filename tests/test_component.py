"""SmspComponent in a data team's own dg project: scaffolded, checked and listed by `dg`, two
accounts side by side against two emulators, and broken YAML reported with file and field."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from smsp_connector.emulator import EmulatorServer

from .conftest import API_KEY
from .dg_project import write_project
from .instances import instance_for_test

pytestmark = pytest.mark.slow  # dg subprocesses

DG = str(Path(sys.executable).with_name("dg"))
SECOND_KEY = API_KEY + "-agency"


def _dg(project: Path, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [DG, *args],
        cwd=project,
        env={**os.environ, "PATH": f"{Path(DG).parent}:{os.environ['PATH']}", **(env or {})},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.fixture
def project(tmp_path) -> Path:
    """A minimal dg project written as a user would: pyproject with [tool.dg], a defs folder,
    and two accounts scaffolded by `dg scaffold defs`."""
    root = write_project(tmp_path / "acme_project")
    for account in ("main", "agency"):
        done = _dg(root, "scaffold", "defs", "smsp_connector.SmspComponent", f"accounts/{account}")
        assert done.returncode == 0, done.stderr
    agency = root / "acme" / "defs" / "accounts" / "agency" / "defs.yaml"
    agency.write_text(
        agency.read_text()
        .replace("env.SMSP_API_KEY", "env.AGENCY_SMSP_API_KEY")
        .replace("data/warehouse.duckdb", "data/agency.duckdb")
        + textwrap.indent(
            textwrap.dedent(
                """\
                push_sources:
                  - name: crm
                    table: crm.unsubscribes
                    phone_column: mobile
                    cursor_column: unsubscribed_at
                """
            ),
            "  ",
        )
    )
    return root


@pytest.fixture
def importable(project, monkeypatch) -> Path:
    """``project`` on ``sys.path`` with no ``acme`` module left from another test's project:
    Python would otherwise import that project's ``acme`` and load its definitions."""
    monkeypatch.syspath_prepend(str(project))
    for name in [name for name in sys.modules if name == "acme" or name.startswith("acme.")]:
        monkeypatch.delitem(sys.modules, name)
    return project


def test_dg_lists_the_component():
    done = subprocess.run([DG, "list", "components"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "smsp_connector.SmspComponent" in done.stdout


def test_scaffolded_accounts_check_and_list_side_by_side(project):
    scaffolded = (project / "acme" / "defs" / "accounts" / "main" / "defs.yaml").read_text()
    assert 'api_key: "{{ env.SMSP_API_KEY }}"' in scaffolded

    checked = _dg(project, "check", "defs")
    listed = _dg(project, "list", "defs", "--json")

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert listed.returncode == 0, listed.stderr
    defs = json.loads(listed.stdout)
    assets = {asset["asset_key"] for asset in defs["assets"]}
    for account in ("main", "agency"):
        assert {f"{account}/stop_list", f"{account}/stop_list_additions"} <= assets
    assert {"agency/opt_outs_crm", "agency/stop_list_additions_crm"} <= assets
    jobs = {job["name"] for job in defs["jobs"]}
    assert {"main__smsp_refresh", "agency__smsp_refresh", "agency__push_stop_numbers"} <= jobs
    assert {"main__smsp_inbox", "agency__smsp_inbox"} <= {s["name"] for s in defs["sensors"]}
    assert {r["name"] for r in defs["resources"]} == {
        "main_smsp", "main_duckdb", "agency_smsp", "agency_duckdb",
    }  # fmt: skip
    assert API_KEY not in listed.stdout + checked.stdout + checked.stderr


def test_the_scaffold_works_where_it_is_made(importable, monkeypatch):
    """The scaffolded account reads its base URL from SMSP_BASE_URL (the provider's URL when
    unset), its comments list the variables it reads, and `schedule: null` means none."""
    project = importable
    path = project / "acme" / "defs" / "accounts" / "main" / "defs.yaml"
    scaffolded = path.read_text()
    assert "base_url: \"{{ env('SMSP_BASE_URL', 'https://api.smspartner.fr/v1') }}\"" in scaffolded
    for variable in ("SMSP_API_KEY", "SMSP_BASE_URL"):
        assert re.search(rf"^#\s+{variable}\s", scaffolded, re.MULTILINE), variable
    path.write_text(scaffolded.replace('schedule: "0 6 * * *"', "schedule: null"))
    checked = _dg(project, "check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    monkeypatch.setenv("SMSP_BASE_URL", "http://127.0.0.1:8787/v1")
    defs = dg.load_from_defs_folder(path_within_project=project / "acme")
    assert defs.resources["main_smsp"].base_url == "http://127.0.0.1:8787/v1"
    monkeypatch.delenv("SMSP_BASE_URL")
    defs = dg.load_from_defs_folder(path_within_project=project / "acme")
    assert defs.resources["main_smsp"].base_url == "https://api.smspartner.fr/v1"
    schedules = {schedule.name for schedule in defs.schedules or []}
    assert "agency__smsp_daily_refresh" in schedules
    assert "main__smsp_daily_refresh" not in schedules


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda text: text.replace('  api_key: "{{ env.SMSP_API_KEY }}"\n', ""), "api_key"),
        (lambda text: text.replace('"0 6 * * *"', '"every morning"'), "schedule"),
        (lambda text: text + "  jobs: [refresh, purge]\n", "jobs"),
        (lambda text: text.replace("{{ env.SMSP_API_KEY }}", "sk-live-123456789"), "api_key"),
    ],
)
def test_a_broken_defs_yaml_is_reported_with_its_file_and_field(project, change, field):
    path = project / "acme" / "defs" / "accounts" / "main" / "defs.yaml"
    path.write_text(change(path.read_text()))

    done = _dg(project, "check", "defs")

    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "accounts/main/defs.yaml" in output
    assert field in output


def test_two_accounts_run_side_by_side_each_against_its_emulator(importable, emulator, monkeypatch):
    project = importable
    monkeypatch.chdir(project)
    monkeypatch.setenv("SMSP_API_KEY", API_KEY)
    monkeypatch.setenv("AGENCY_SMSP_API_KEY", SECOND_KEY)
    emulator.state.seed_entries([("+33611111111", "2025-07-14 09:30:00")])
    with EmulatorServer(api_key=SECOND_KEY) as agency_emulator:
        agency_emulator.state.seed_entries([("+33622222222", "2025-07-14 09:30:00")])
        for account, server in (("main", emulator), ("agency", agency_emulator)):
            path = project / "acme" / "defs" / "accounts" / account / "defs.yaml"
            text = re.sub(
                r"(?m)^  base_url: .*$", f"  base_url: {server.base_url}", path.read_text()
            )
            path.write_text(text)
        (project / "opt_outs.csv").write_text("phone\n0633333333\n")
        defs = dg.load_from_defs_folder(path_within_project=project / "acme")

        with instance_for_test() as instance:
            for account in ("main", "agency"):
                config = {"csv_path": str(project / "opt_outs.csv")}
                op = f"{account}__stop_list_additions"
                result = defs.resolve_job_def(f"{account}__push_stop_numbers").execute_in_process(
                    run_config={"ops": {op: {"config": config}}}, instance=instance
                )
                assert result.success, account
                assert instance.get_run_by_id(result.run_id).tags["smsp/account"] == account

        assert emulator.state.has_number("+33633333333")
        assert agency_emulator.state.has_number("+33633333333")
    main = _query(project / "data" / "warehouse.duckdb", "smsp_main")
    agency = _query(project / "data" / "agency.duckdb", "smsp_agency")
    assert main["stop_list"] == ["+33611111111", "+33633333333"]
    assert agency["stop_list"] == ["+33622222222", "+33633333333"]
    assert main["accounts"] == ["main"] and agency["accounts"] == ["agency"]
    assert (project / "exports" / "main" / "suppression_list.csv").exists()
    assert (project / "exports" / "agency" / "suppression_list.csv").exists()


def _query(database: Path, schema: str) -> dict[str, list]:
    with duckdb.connect(str(database), read_only=True) as conn:
        numbers = conn.execute(f"SELECT phone_number FROM {schema}.stop_list ORDER BY 1").fetchall()
        accounts = conn.execute(f"SELECT DISTINCT account FROM {schema}.audit_log").fetchall()
    return {"stop_list": [row[0] for row in numbers], "accounts": [row[0] for row in accounts]}


def _smsp(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "smsp_connector.cli", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_cli_acts_for_a_component_account(project, emulator):
    """`smsp --account agency` reads that account's defs.yaml: its key variable, base URL,
    database and schema (relative paths from the project's root, as the jobs read them), and
    records the account's label, from any folder of the project."""
    emulator.state.seed_entries([("+33611111111", "2025-07-14 09:30:00")])
    inbox = project / "inbox_files"
    inbox.mkdir()
    (inbox / "opt_outs.csv").write_text("phone\n0611111111\n0633333333\nnot a number\n")
    env = {"AGENCY_SMSP_API_KEY": API_KEY, "SMSP_BASE_URL": emulator.base_url}

    done = _smsp(inbox, "--account", "agency", "push", "opt_outs.csv", "--dry-run", env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert API_KEY not in done.stdout + done.stderr
    database = project / "data" / "agency.duckdb"
    assert not (inbox / "data").exists()
    with duckdb.connect(str(database), read_only=True) as conn:
        rows = conn.execute(
            "SELECT account, target, outcome FROM smsp_agency.audit_latest ORDER BY source_row"
        ).fetchall()
    assert rows == [
        ("agency", "+33611111111", "already_on_list"),
        ("agency", "+33633333333", "dry_run"),
        ("agency", "not a number", "invalid_input"),
    ]
    assert "stop-sms/add" not in emulator.stats()["endpoints"]

    unknown = _smsp(inbox, "--account", "nobody", "push", "opt_outs.csv", "--dry-run", env=env)
    assert unknown.returncode == 1
    [line] = unknown.stderr.strip().splitlines()
    assert "nobody" in line and "agency" in line and "main" in line
