"""The Dagster UI in a real browser (headless Chromium): the lineage is drawn, and a
materialization launched with the UI's Materialize button succeeds.

Runs `dagster dev` on the repository's workspace.yaml against the test emulator, and refreshes
the screenshots in docs/screenshots/ when run by `make screenshots`.
"""

from __future__ import annotations

import re
import time
from contextlib import suppress

import dagster as dg
import duckdb
import pytest

from .ui_helpers import (
    chromium_page,
    dagster_dev,
    drawn_edges,
    log_tail,
    require_browser,
    screenshot_dir,
)

pytestmark = pytest.mark.slow  # dagster dev and Chromium

SEEDED = 300
UI_TIMEOUT_MS = 120_000
RUN_LAUNCH_SECONDS = 120
RUN_FINISH_SECONDS = 240
STOP_LIST = dg.AssetKey(["smsp", "stop_list"])
GROUP_NODES = [
    "inbox_add_csv",
    "inbox_delete_csv",
    "inbox_cancel_csv",
    "stop_list_additions",
    "stop_list_deletions",
    "message_cancellations",
    "stop_list",
    "stop_list_history",
    "suppression_export",
    "suppression_export_sha256",
]
LINEAGE = {
    ("inbox_add_csv", "stop_list_additions"),
    ("stop_list_additions", "stop_list"),
    ("inbox_delete_csv", "stop_list_deletions"),
    ("stop_list_deletions", "stop_list"),
    ("stop_list", "stop_list_history"),
    ("stop_list", "suppression_export"),
    ("stop_list", "suppression_export_sha256"),
    ("inbox_cancel_csv", "message_cancellations"),
}


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
    ):
        try:
            # (a) The group's lineage: inbox CSV -> additions -> stop list -> exports.
            page.goto(f"{base_url}/locations/assets/asset-groups/smsp/lineage")
            for name in GROUP_NODES:
                node = page.locator(f"svg foreignObject [data-tooltip='{name}']")
                expect(node).to_be_in_viewport(timeout=UI_TIMEOUT_MS)
            stop_list_node = page.locator("svg foreignObject").filter(
                has=page.locator("[data-tooltip='stop_list']")
            )
            # Each node's status comes with the live data, after the layout.
            expect(stop_list_node).to_contain_text("Never materialized", timeout=UI_TIMEOUT_MS)
            deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
            while not (edges := drawn_edges(page)) >= LINEAGE and time.monotonic() < deadline:
                page.wait_for_timeout(500)
            assert edges >= LINEAGE, f"arrows missing from the graph: {LINEAGE - edges}"
            page.mouse.move(0, 0)
            page.screenshot(path=shots / "asset-graph.png")

            # (b) Materialize smsp/stop_list from its page.
            page.goto(f"{base_url}/assets/smsp/stop_list")
            expect(page.get_by_text("Never materialized").first).to_be_visible(
                timeout=UI_TIMEOUT_MS
            )
            page.locator("button", has_text=re.compile(r"^\s*Materialize\s*$")).click()
            run_id = _confirm_until_launched(page, instance)

            run = _wait_for_run_end(instance, run_id)
            assert run.status == dg.DagsterRunStatus.SUCCESS, _run_failure(instance, run)
            assert run.tags.get("dagster/from_ui") == "true"
            assert run.asset_selection == {STOP_LIST}

            # The UI says so too: the run page, then the asset's materialization and metadata.
            page.goto(f"{base_url}/runs/{run_id}")
            expect(page.get_by_text("Success", exact=True).first).to_be_visible(
                timeout=UI_TIMEOUT_MS
            )
            page.goto(f"{base_url}/assets/smsp/stop_list?view=events")
            expect(page.get_by_text(f"Materialized in run {run_id[:8]}")).to_be_visible(
                timeout=UI_TIMEOUT_MS
            )
            row_count = page.get_by_role("row").filter(has_text="dagster/row_count")
            expect(row_count).to_contain_text(str(SEEDED), timeout=UI_TIMEOUT_MS)
            expect(page.get_by_role("row").filter(has_text="valid")).to_contain_text("true")
            # The event list's "Loading..." (older events) goes away shortly; not worth a failure.
            with suppress(PlaywrightTimeoutError):
                page.get_by_text(re.compile(r"^Loading")).first.wait_for(
                    state="hidden", timeout=15_000
                )
            page.mouse.move(0, 0)
            page.screenshot(path=shots / "stop-list-materialized.png")
        except BaseException as error:
            with suppress(Exception):
                page.screenshot(path=tmp_path / "failure.png", timeout=10_000)
            error.add_note(f"page: {page.url}; screenshot: {tmp_path / 'failure.png'}")
            error.add_note(f"dagster dev log:\n{log_tail(server_log)}")
            raise

    with duckdb.connect(env["SMSP_DUCKDB_PATH"], read_only=True) as conn:
        stored = conn.execute("SELECT count(*) FROM smsp.stop_list").fetchone()
    assert stored == (SEEDED,)


def _confirm_until_launched(page, instance: dg.DagsterInstance) -> str:
    """Click through the "Are you sure?" dialog (the upstream additions and deletions were never
    materialized) until the UI has created the run; returns its id."""
    confirm = page.get_by_role("button", name="Confirm")
    deadline = time.monotonic() + RUN_LAUNCH_SECONDS
    while time.monotonic() < deadline:
        runs = instance.get_runs()
        if runs:
            assert len(runs) == 1, [r.run_id for r in runs]
            return runs[0].run_id
        if confirm.is_visible():
            confirm.click()
        page.wait_for_timeout(500)
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
