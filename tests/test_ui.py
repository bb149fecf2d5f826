"""The Dagster UI in a real browser (headless Chromium): the lineage is drawn, a
materialization launched with the UI's Materialize button succeeds, two accounts of a dg project
show side by side, the audit log's page shows its table and columns, and a push's refused rows
show as a table.

Runs `dagster dev` on the repository's workspace.yaml (or on a temporary dg project's) against
the test emulator, and refreshes the screenshots in docs/screenshots/ when run by
`make screenshots`.
"""

from __future__ import annotations

import re
import time
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import duckdb
import pytest
import yaml

from smsp_connector.emulator import EmulatorServer, FaultSettings
from smsp_connector.warehouse.columns import declared_columns

from .cli_helpers import dagster_cli
from .conftest import API_KEY
from .dg_project import write_project
from .ui_helpers import (
    VIEWPORT,
    chromium_page,
    dagster_dev,
    drawn_edges,
    explain_failure,
    group_members,
    require_browser,
    screenshot_dir,
)

# dagster dev and Chromium, on this repository's workspace.yaml and code location.
pytestmark = [pytest.mark.slow, pytest.mark.repo]

SEEDED = 300
UI_TIMEOUT_MS = 120_000
RUN_LAUNCH_SECONDS = 120
RUN_FINISH_SECONDS = 240
STOP_LIST = dg.AssetKey(["smsp", "stop_list"])
SECOND_KEY = API_KEY + "-agency"
ACCOUNTS = ("main", "agency")
PROJECT_LOCATION = "acme_project"
GROUPS = {
    # group: (its own nodes, the arrows drawn on its page, other groups' assets drawn as links)
    "smsp": (
        [
            "provider_stop_list",
            "stop_list",
            "stop_list_history",
            "suppression_export",
            "suppression_export_sha256",
        ],
        {
            ("stop_list_additions", "provider_stop_list"),
            ("stop_list_deletions", "provider_stop_list"),
            ("provider_stop_list", "stop_list"),
            ("stop_list", "stop_list_history"),
            ("stop_list", "suppression_export"),
            ("stop_list", "suppression_export_sha256"),
        },
        ["stop_list_additions", "stop_list_deletions"],
    ),
    "smsp_changes": (
        [
            "inbox_add_csv",
            "inbox_delete_csv",
            "inbox_cancel_csv",
            "stop_list_additions",
            "stop_list_deletions",
            "message_cancellations",
        ],
        {
            ("inbox_add_csv", "stop_list_additions"),
            ("inbox_delete_csv", "stop_list_deletions"),
            ("inbox_cancel_csv", "message_cancellations"),
            ("stop_list_additions", "provider_stop_list"),
            ("stop_list_deletions", "provider_stop_list"),
        },
        ["provider_stop_list"],
    ),
}
"""The extract's group and the changes' group, each on its own page (the global graph of both
is too large to read)."""
GROUP_SCREENSHOTS = {"smsp": "asset-graph.png", "smsp_changes": "asset-graph-changes.png"}
EXTRACT_GROUP_ASSETS = {
    dg.AssetKey(["smsp", name])
    for name in [
        "stop_list",
        "stop_list_history",
        "opt_out_ledger",
        "suppression_export",
        "suppression_export_sha256",
        "retention_purge",
    ]
}
"""The extract group's materializable assets: what its "Materialize all" runs."""


@pytest.mark.timeout(720)
def test_asset_graph_and_a_materialization_launched_from_the_ui(env, emulator, tmp_path):
    require_browser()
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect

    emulator.state.seed_entries(
        (f"+3361234{n:04d}", f"2025-{n % 12 + 1:02d}-14 09:30:00") for n in range(SEEDED)
    )
    shots = screenshot_dir(tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    server_log = tmp_path / "dagster-dev.log"

    with (
        dagster_dev(env, server_log) as base_url,
        chromium_page(tmp_path / "chromium-profile") as page,
        dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance,
        explain_failure(page, tmp_path, server_log),
    ):
        # (a) Each group's lineage: the changes (inbox CSV -> additions, deletions,
        # cancellations) on one page, the extract (the provider's list -> stop list ->
        # history and exports) on the other; each draws the other's assets as links.
        for group, (nodes, lineage, links) in GROUPS.items():
            page.goto(f"{base_url}/locations/assets/asset-groups/{group}/lineage")
            for name in nodes:
                node = page.locator(f"svg foreignObject [data-tooltip='{name}']")
                expect(node).to_be_in_viewport(timeout=UI_TIMEOUT_MS)
            for name in links:
                # Another group's asset: a link to its page, not a node.
                link = page.locator(f"svg foreignObject span.label[title='{name}']")
                expect(link).to_be_in_viewport(timeout=UI_TIMEOUT_MS)
                node = page.locator(f"svg foreignObject [data-tooltip='{name}']")
                expect(node).to_have_count(0)
            deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
            while not (edges := drawn_edges(page)) >= lineage and time.monotonic() < deadline:
                page.wait_for_timeout(500)
            assert edges >= lineage, f"arrows missing from {group}: {lineage - edges}"
            if group == "smsp":
                stop_list_node = page.locator("svg foreignObject").filter(
                    has=page.locator("[data-tooltip='stop_list']")
                )
                # Each node's status comes with the live data, after the layout.
                expect(stop_list_node).to_contain_text("Never materialized", timeout=UI_TIMEOUT_MS)
            page.mouse.move(0, 0)
            page.screenshot(path=shots / GROUP_SCREENSHOTS[group])

        # (b) Materialize smsp/stop_list from its page: the run starts at once, with no
        # "Are you sure?" about upstream assets never materialized.
        page.goto(f"{base_url}/assets/smsp/stop_list")
        expect(page.get_by_text("Never materialized").first).to_be_visible(timeout=UI_TIMEOUT_MS)
        page.locator("button", has_text=re.compile(r"^\s*Materialize\s*$")).click()
        run_id = _launched_without_asking(page, instance)

        run = _wait_for_run_end(instance, run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS, _run_failure(instance, run)
        assert run.tags.get("dagster/from_ui") == "true"
        assert run.asset_selection == {STOP_LIST}

        # The UI says so too: the run page, then the asset's materialization and metadata.
        page.goto(f"{base_url}/runs/{run_id}")
        expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)
        page.goto(f"{base_url}/assets/smsp/stop_list?view=events")
        expect(page.get_by_text(f"Materialized in run {run_id[:8]}")).to_be_visible(
            timeout=UI_TIMEOUT_MS
        )
        row_count = page.get_by_role("row").filter(has_text="dagster/row_count")
        expect(row_count).to_contain_text(str(SEEDED), timeout=UI_TIMEOUT_MS)
        expect(page.get_by_role("row").filter(has_text="valid")).to_contain_text("true")
        # The event list's "Loading..." (older events) goes away shortly; not worth a failure.
        with suppress(PlaywrightTimeoutError):
            page.get_by_text(re.compile(r"^Loading")).first.wait_for(state="hidden", timeout=15_000)
        page.mouse.move(0, 0)
        page.screenshot(path=shots / "stop-list-materialized.png")

        # (c) "Materialize all" on the extract's group: no launchpad (no asset there needs
        # a csv_path), no question; one run of the group's assets, which succeeds.
        page.goto(f"{base_url}/locations/assets/asset-groups/smsp/lineage")
        materialize_all = page.locator(
            "button",
            has_text=re.compile(rf"^\s*Materialize all \({len(EXTRACT_GROUP_ASSETS)}\)\s*$"),
        )
        expect(materialize_all).to_be_enabled(timeout=UI_TIMEOUT_MS)
        materialize_all.click()
        group_run_id = _launched_without_asking(page, instance, known=(run_id,))
        group_run = _wait_for_run_end(instance, group_run_id)
        assert group_run.status == dg.DagsterRunStatus.SUCCESS, _run_failure(instance, group_run)
        assert group_run.asset_selection == EXTRACT_GROUP_ASSETS
        expect(page.get_by_text("csv_path")).to_have_count(0)

    with duckdb.connect(env["SMSP_DUCKDB_PATH"], read_only=True) as conn:
        stored = conn.execute("SELECT count(*) FROM smsp.stop_list").fetchone()
    assert stored == (SEEDED,)


@pytest.mark.timeout(720)
def test_two_accounts_side_by_side_in_the_catalog_and_the_graph(env, emulator, tmp_path):
    """A data team's own dg project with two SmspComponent accounts, each against its own
    emulator: the catalog and the global lineage show both accounts' stop lists."""
    require_browser()
    from playwright.sync_api import expect

    shots = screenshot_dir(tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    server_log = tmp_path / "dagster-dev.log"

    with EmulatorServer(api_key=SECOND_KEY) as agency_emulator:
        workspace = _two_account_project(
            tmp_path,
            {
                "main": ("SMSP_API_KEY", emulator.base_url),
                "agency": ("AGENCY_SMSP_API_KEY", agency_emulator.base_url),
            },
        )
        project_env = {**env, "AGENCY_SMSP_API_KEY": SECOND_KEY}
        with (
            dagster_dev(project_env, server_log, workspace=workspace, cwd=workspace.parent) as url,
            chromium_page(tmp_path / "chromium-profile") as page,
            explain_failure(page, tmp_path, server_log),
        ):
            # (a) The catalog, filtered to the stop lists: one row per account.
            selection = 'key:"*/stop_list"'
            page.goto(f"{url}/assets?asset-selection={quote(selection, safe='')}")
            for account in ACCOUNTS:
                link = page.locator(f"a[href='/assets/{account}/stop_list']").first
                expect(link).to_be_visible(timeout=UI_TIMEOUT_MS)
                expect(link).to_contain_text(f"{account} / stop_list")
                # Each account's own schema, in its stop list's description.
                expect(page.get_by_text(f"stored as smsp_{account}.stop_list;")).to_be_visible()
            # Only those two rows (the catalog's rows are divs, not table rows), each in the
            # project's code location.
            expect(page.locator("a[href^='/assets/']")).to_have_count(len(ACCOUNTS))
            location = page.locator(f"a[href='/locations/{PROJECT_LOCATION}/']")
            expect(location).to_have_count(len(ACCOUNTS))

            # (b) The global lineage of the same selection, both account groups expanded, as
            # the UI's own group toggles write it in the address.
            expanded = ",".join(f"global@global:{account}" for account in ACCOUNTS)
            page.goto(
                f"{url}/asset-groups~{quote(selection, safe='')}"
                f"?expanded={quote(expanded, safe='')}"
            )
            nodes = page.locator("svg foreignObject [data-tooltip='stop_list']")
            expect(nodes).to_have_count(len(ACCOUNTS), timeout=UI_TIMEOUT_MS)
            for node in nodes.all():
                expect(node).to_be_in_viewport(timeout=UI_TIMEOUT_MS)
            wanted = {(account, "stop_list") for account in ACCOUNTS}
            deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
            while not (members := group_members(page)) >= wanted and time.monotonic() < deadline:
                page.wait_for_timeout(500)
            assert members >= wanted, f"stop lists missing from their groups: {wanted - members}"
            stop_lists = page.locator("svg foreignObject").filter(
                has=page.locator("[data-tooltip='stop_list']")
            )
            for node in stop_lists.all():
                expect(node).to_contain_text("Never materialized", timeout=UI_TIMEOUT_MS)
            page.mouse.move(0, 0)
            page.screenshot(path=shots / "accounts.png")


@pytest.mark.timeout(720)
def test_the_audit_log_page_shows_its_table_name_and_columns(env, emulator, tmp_path):
    """smsp/audit_log, an external asset: its page names the DuckDB table and lists the
    columns the warehouse creates, in order."""
    require_browser()
    from playwright.sync_api import expect

    shots = screenshot_dir(tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    server_log = tmp_path / "dagster-dev.log"
    expected = [column.name for column in declared_columns(("audit_log",))["audit_log"]]
    assert {"run_id", "outcome", "account"} <= set(expected)

    with (
        dagster_dev(env, server_log) as base_url,
        chromium_page(tmp_path / "chromium-profile") as page,
        explain_failure(page, tmp_path, server_log),
    ):
        page.goto(f"{base_url}/assets/smsp/audit_log")
        expect(page.get_by_text("External Asset", exact=True).first).to_be_visible(
            timeout=UI_TIMEOUT_MS
        )
        # The Definition panel's "Storage" is the asset's dagster/table_name.
        expect(page.get_by_text("smsp.audit_log", exact=True).first).to_be_visible(
            timeout=UI_TIMEOUT_MS
        )
        # The Columns section: the asset's dagster/column_schema (its header cells are <td>s).
        columns = page.locator("table").filter(has=page.locator("thead", has_text="Column name"))
        names = columns.locator("tbody > tr > td:first-child > span")
        expect(names).to_have_count(len(expected), timeout=UI_TIMEOUT_MS)
        assert names.all_inner_texts() == expected
        account = columns.locator("tbody > tr").filter(has=page.get_by_text("account", exact=True))
        expect(account).to_contain_text("VARCHAR")
        # A taller window for the picture, so that it holds every column down to `account`.
        page.set_viewport_size({**VIEWPORT, "height": 1300})
        expect(account).to_be_in_viewport(timeout=UI_TIMEOUT_MS)
        expect(page.get_by_text("smsp.audit_log", exact=True).first).to_be_in_viewport()
        page.mouse.move(0, 0)
        page.screenshot(path=shots / "audit-log-table.png")


@pytest.mark.timeout(720)
def test_a_push_s_refused_rows_are_a_table_on_the_asset_page(env, emulator, tmp_path):
    """A push run with `dagster job execute` in the instance the UI reads: the provider refuses
    0611223344 (code 9, forced: an invalid number never reaches it), and the additions'
    materialization shows rows_not_through as a table."""
    require_browser()
    from playwright.sync_api import expect

    shots = screenshot_dir(tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    server_log = tmp_path / "dagster-dev.log"
    source = tmp_path / "opt_outs.csv"
    source.write_text("phone\n0611223344\n", encoding="utf-8")
    emulator.faults = FaultSettings(force_code={"stop-sms/add": 9})
    run_config = tmp_path / "push.yaml"
    run_config.write_text(
        yaml.safe_dump(
            {"ops": {"smsp__stop_list_additions": {"config": {"csv_path": str(source)}}}}
        )
    )

    done = dagster_cli(
        env, "job", "execute", "-m", "assets", "-j", "push_stop_numbers", "-c", str(run_config)
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS, _run_failure(instance, run)
    assert not emulator.state.has_number("+33611223344")

    with (
        dagster_dev(env, server_log) as base_url,
        chromium_page(tmp_path / "chromium-profile") as page,
        explain_failure(page, tmp_path, server_log),
    ):
        page.goto(f"{base_url}/assets/smsp/stop_list_additions?view=events")
        expect(page.get_by_text(f"Materialized in run {run.run_id[:8]}")).to_be_visible(
            timeout=UI_TIMEOUT_MS
        )
        expect(_metadata_value(page, "added")).to_have_text("0", timeout=UI_TIMEOUT_MS)
        expect(_metadata_value(page, "rejected")).to_have_text("1")
        refused = _metadata_value(page, "rows_not_through").locator("table")
        expect(refused).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(refused).to_be_in_viewport()
        expect(refused.locator("tbody tr")).to_have_count(1)
        header = refused.locator("thead th").all_inner_texts()
        assert header == ["source_row", "target", "outcome", "provider_code", "reason"]
        row = dict(zip(header, refused.locator("tbody tr td").all_inner_texts(), strict=True))
        assert row == {
            "source_row": "2",
            "target": "+336•••••344",  # masked in the event log
            "outcome": "rejected",
            "provider_code": "9",
            "reason": "Invalid phone number",
        }
        expect(page.get_by_text("Show Markdown")).to_have_count(0)
        page.mouse.move(0, 0)
        page.screenshot(path=shots / "push-refused-rows.png")


def _three_months_of_opt_outs(env: dict[str, str], emulator: EmulatorServer) -> str:
    """Three months of an account's life in the warehouse the UI's runs use (pushes with
    rejected rows, the provider's own STOP replies, a deletion with consent, an opt-out never
    sent, a retention purge), each month then moved back one; returns last month's key."""
    from datetime import UTC, datetime, timedelta

    from smsp_connector.client import SmspClient
    from smsp_connector.operations.context import RunContext
    from smsp_connector.operations.extract import extract_stop_list
    from smsp_connector.operations.inputs import PhoneFile, PhoneValues
    from smsp_connector.operations.retention import Retention, purge
    from smsp_connector.operations.run import Delete, Push, run_operation
    from smsp_connector.warehouse import Warehouse, update_history
    from smsp_connector.warehouse.retention import PurgeAudit

    from .test_compliance_report import _move_back_a_month

    warehouse = Warehouse.at(env["SMSP_DUCKDB_PATH"])
    folder = Path(env["SMSP_EXPORT_DIR"]).parent
    with SmspClient(API_KEY, base_url=emulator.base_url) as client:

        def run(operation, source, run_id):
            context = RunContext(client, warehouse, run_id, "ui-test", account="smsp")
            return run_operation(operation, source, context)

        for month, count in enumerate((4, 9, 6)):
            path = folder / f"crm_{month}.csv"
            rows = [f"06 {month + 1}0 00 00 {n:02d}" for n in range(count)]
            path.write_text("mobile\n" + "\n".join([*rows, "n/a", "06 12"]) + "\n")
            run(Push(), PhoneFile(path), f"push-{month}")
            emulator.state.seed_entries([(f"+3369900000{month}", "2026-01-05 10:00:00")])
            extract_stop_list(client, warehouse, run_id=f"refresh-{month}", max_shrink_share=1)
            update_history(warehouse)
            if month == 2:
                consent = {
                    "consent_at": datetime.now(UTC).isoformat(),
                    "consent_source": "web form",
                }
                run(Delete(confirm=True), PhoneValues([rows[0]], consent), "delete")
                run(Push(dry_run=True), PhoneValues(["07 77 77 77 77"]), "never-sent")
                purge(
                    warehouse,
                    Retention(rejected=timedelta(microseconds=1), ended=timedelta(days=1095)),
                    key=None,
                    audit=PurgeAudit("purge", "ui-test", "smsp"),
                    dry_run=False,
                )
            _move_back_a_month(warehouse)
    today = datetime.now(UTC).date()
    return f"{(today.replace(day=1) - timedelta(days=1)).replace(day=1):%Y-%m-%d}"


@pytest.mark.timeout(720)
def test_the_monthly_compliance_report_in_the_ui_and_as_the_dpos_file(env, emulator, tmp_path):
    """Last month's report materialized with `dagster asset materialize --partition`: its
    figures and Markdown on the asset's page, and the HTML file a DPO opens, chart included,
    with no raw number in either."""
    require_browser()
    from playwright.sync_api import expect

    shots = screenshot_dir(tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    server_log = tmp_path / "dagster-dev.log"
    partition = _three_months_of_opt_outs(env, emulator)
    done = dagster_cli(
        env, "asset", "materialize", "-m", "assets",
        "--select", "smsp/compliance_report", "--partition", partition,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = Path(env["SMSP_EXPORT_DIR"]) / "reports" / f"compliance_smsp_{partition[:7]}.html"
    page_text = report.read_text(encoding="utf-8")
    assert "+33610000001" not in page_text and "n/a" not in page_text

    with (
        dagster_dev(env, server_log) as base_url,
        chromium_page(tmp_path / "chromium-profile") as page,
        explain_failure(page, tmp_path, server_log),
    ):
        page.goto(f"{base_url}/assets/smsp/compliance_report?view=events")
        expect(_metadata_value(page, "received").first).to_have_text("7", timeout=UI_TIMEOUT_MS)
        expect(_metadata_value(page, "deletions_with_consent").first).to_have_text("1")
        expect(_metadata_value(page, "not_honoured").first).to_have_text("1")
        page.get_by_text("Show Markdown").first.click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_text("Deletions, by consent evidence")).to_be_visible(
            timeout=UI_TIMEOUT_MS
        )
        expect(dialog.get_by_role("cell", name="web form", exact=True)).to_be_visible()
        page.mouse.move(0, 0)
        page.screenshot(path=shots / "compliance-report-ui.png")

        page.set_viewport_size({"width": 1100, "height": 1000})
        page.goto(report.as_uri())
        bars = page.locator('svg rect:not([height="0.0"])')
        expect(bars.first).to_be_visible(timeout=UI_TIMEOUT_MS)
        assert bars.count() >= 3 * 3, "three months of bars, and the legend's boxes"
        expect(page.get_by_role("heading", level=1)).to_contain_text("Opt-out compliance report")
        page.screenshot(path=shots / "compliance-report.png", full_page=True)


def _launched_without_asking(
    page, instance: dg.DagsterInstance, known: tuple[str, ...] = ()
) -> str:
    """Wait until the UI has created a run besides ``known`` runs, failing if it asks anything
    first: an "Are you sure?" about upstream assets never materialized, or a launchpad for
    missing run config. Returns the new run's id."""
    asked = page.get_by_text("Are you sure?")
    launchpad = page.get_by_text("Launchpad (configure assets)")
    deadline = time.monotonic() + RUN_LAUNCH_SECONDS
    while time.monotonic() < deadline:
        if asked.is_visible():
            question = page.get_by_role("dialog").all_inner_texts()
            pytest.fail(f"the UI asked to confirm first: {question}")
        assert not launchpad.is_visible(), "the UI opened a launchpad for run config"
        new = [run.run_id for run in instance.get_runs() if run.run_id not in known]
        if new:
            assert len(new) == 1, new
            return new[0]
        page.wait_for_timeout(250)
    pytest.fail(f"no run launched {RUN_LAUNCH_SECONDS} s after clicking Materialize")


def _wait_for_run_end(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRun:
    deadline = time.monotonic() + RUN_FINISH_SECONDS
    while True:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            return run
        if time.monotonic() > deadline:
            status = run.status if run else "unknown"
            pytest.fail(f"run {run_id} still {status} after {RUN_FINISH_SECONDS} s")
        time.sleep(1)


def _run_failure(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    errors = [
        str(entry.dagster_event.event_specific_data)
        for entry in instance.all_logs(run.run_id)
        if entry.dagster_event and entry.dagster_event.is_failure
    ]
    return f"run {run.run_id} ended {run.status}: " + "\n".join(errors)


def _metadata_value(page, key: str):
    """The value cell of the metadata entry ``key`` in an asset event's metadata table."""
    return page.locator(f"xpath=//tr[td[1][normalize-space()='{key}']]/td[2]")


def _two_account_project(tmp_path: Path, accounts: dict[str, tuple[str, str]]) -> Path:
    """A dg project ``acme`` with one SmspComponent per account (its key's variable, its
    emulator), each with its own DuckDB file, exports and inbox under ``tmp_path``; returns the
    workspace.yaml that loads ``acme.definitions`` from the project."""
    root = write_project(tmp_path / "acme_project")
    for account, (key_variable, base_url) in accounts.items():
        folder = root / "acme" / "defs" / "accounts" / account
        folder.mkdir(parents=True)
        attributes = {
            "api_key": f"{{{{ env.{key_variable} }}}}",
            "base_url": base_url,
            "rate_limit": 1000,
            "key_prefix": account,
            "database": str(tmp_path / f"{account}.duckdb"),
            "schema": f"smsp_{account}",
            "export_dir": str(tmp_path / "exports" / account),
            "inbox_dir": str(tmp_path / "inbox" / account),
            "schedule": "0 6 * * *",
            "timezone": "Europe/Paris",
        }
        (folder / "defs.yaml").write_text(
            yaml.safe_dump({"type": "smsp_connector.SmspComponent", "attributes": attributes})
        )
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "python_module": {
                            "module_name": "acme.definitions",
                            "working_directory": str(root),
                            # dg's name for the project's location (its folder's name).
                            "location_name": PROJECT_LOCATION,
                        }
                    }
                ]
            }
        )
    )
    return workspace
