"""A push or a deletion whose rows failed after every retry ends as a failed run, once every
outcome is recorded and the list refreshed, so alerts fire; provider refusals only warn."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from smsp_connector.emulator import FaultSettings

from .instances import instance_for_test
from .pipeline_helpers import PipelineRig, check_results, materialized_keys
from .proxy_helpers import failing_proxy

pytestmark = pytest.mark.heavy


@pytest.fixture
def rig(emulator, tmp_path):
    with instance_for_test() as instance:
        yield PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)


def _push_job(rig: PipelineRig) -> list:
    return [*rig.pushes(), *rig.defs.extract.assets]


def _source(tmp_path: Path, *numbers: str) -> dict:
    path = tmp_path / "opt_outs.csv"
    path.write_text("phone\n" + "\n".join(numbers) + "\n", encoding="utf-8")
    return {"ops": {"smsp__stop_list_additions": {"config": {"csv_path": str(path)}}}}


def _failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    return [event.event_specific_data.error.message for event in result.get_step_failure_events()]


def test_a_push_whose_adds_failed_ends_failed_after_recording_and_refreshing(rig, tmp_path):
    rig.emulator.state.add_stop("+33600000001")
    config = _source(tmp_path, "+33600000001", "+33611111111", "+33622222222")

    with failing_proxy(rig.emulator.base_url, {"/v1/stop-sms/add"}) as base_url:
        result = rig.run(_push_job(rig), config, base_url=base_url, max_attempts=2)

    assert not result.success
    assert {"smsp/stop_list_additions", "smsp/stop_list", "smsp/suppression_export"} <= (
        materialized_keys(result)
    ), "every outcome recorded and the list refreshed before the run failed"
    assert rig.query(
        "SELECT source_row, outcome FROM smsp.audit_latest "
        f"WHERE run_id = '{result.run_id}' ORDER BY source_row"
    ) == [(2, "already_on_list"), (3, "failed"), (4, "failed")]
    [message] = _failure_messages(result)
    assert "2 number(s) could not be pushed after every retry" in message
    assert "\n" not in message.strip()


def test_provider_refusals_warn_without_failing_the_run(rig, tmp_path):
    # The provider refuses the number (code 9); an invalid one never reaches it (issue 19 §3).
    rig.emulator.faults = FaultSettings(force_code={"stop-sms/add": 9})
    config = _source(tmp_path, "+33611111111")

    result = rig.run(_push_job(rig), config)

    assert result.success
    check = check_results(result)["every_number_pushed"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["rejected"].value == 1
    assert check.metadata["failed"].value == 0
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "smsp/stop_list_additions"
    ]
    table = event.materialization.metadata["rows_not_through"]
    assert isinstance(table, dg.TableMetadataValue), "a real table in the UI, not Markdown"
    [row] = table.records
    assert (row.data["target"], row.data["outcome"], row.data["provider_code"]) == (
        "+336•••••111",  # masked in Dagster's event log
        "rejected",
        9,
    )


def test_a_clean_push_passes_the_check(rig, tmp_path):
    result = rig.run(_push_job(rig), _source(tmp_path, "+33611111111"))

    assert result.success
    assert check_results(result)["every_number_pushed"].passed


def test_a_confirmed_deletion_whose_calls_failed_ends_failed(rig, tmp_path):
    rig.emulator.state.seed_entries([("+33611111111", "2025-07-14 09:30:00")])
    path = tmp_path / "consents.csv"
    path.write_text("phone,consent_at,consent_source\n+33611111111,2026-01-15,web form\n")
    config = {
        "ops": {"smsp__stop_list_deletions": {"config": {"csv_path": str(path), "confirm": True}}}
    }
    mutations = rig.defs.mutations
    assets = [
        *mutations.inbox.values(),
        mutations.deletions,
        *mutations.checks[1:],
        *(rig.defs.extract.assets),
    ]

    with failing_proxy(rig.emulator.base_url, {"/v1/stop-sms/delete"}) as base_url:
        result = rig.run(assets, config, base_url=base_url, max_attempts=2)

    assert not result.success
    assert "smsp/stop_list" in materialized_keys(result)
    assert rig.emulator.state.has_number("+33611111111")
    [message] = _failure_messages(result)
    assert "1 number(s) could not be deleted after every retry" in message
