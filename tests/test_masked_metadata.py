"""Dagster's event log (often hosted by a third party, Dagster+) holds no raw phone number by
default (issue 18, item 3): previews and row tables show them masked, ``+336•••••678``; a local
deployment may show them whole (``show_raw_numbers``)."""

from __future__ import annotations

import dagster as dg
import pytest

from smsp_connector.dagster import build_definitions

from .instances import instance_for_test
from .pipeline_helpers import PipelineRig, materialization_metadata

SEEDED = ("+33612345678", "+33698765432")


@pytest.fixture
def rig(emulator, tmp_path):
    with instance_for_test() as instance:
        yield PipelineRig(emulator, tmp_path / "w.duckdb", tmp_path / "exports", instance)


def _events(result: dg.ExecuteInProcessResult) -> str:
    """Every event of the run as the event log stores it."""
    return "".join(dg.serialize_value(event) for event in result.all_events)


@pytest.mark.heavy
def test_no_raw_number_reaches_the_event_log_by_default(rig, tmp_path):
    rig.emulator.state.seed_entries((number, "2025-07-14 09:30:00") for number in SEEDED)
    refreshed = rig.materialize()
    path = tmp_path / "crm.csv"
    path.write_text("phone\n06 11 22 33 44\nnot a number 0699\n", encoding="utf-8")
    config = {"ops": {"smsp__stop_list_additions": {"config": {"csv_path": str(path)}}}}
    pushed = rig.run(rig.pushes(), config)

    assert refreshed.success and pushed.success
    shown = _events(refreshed) + _events(pushed)
    for number in (*SEEDED, "+33611223344", "06 11 22 33 44", "not a number 0699"):
        at = shown.find(number)
        assert at < 0, shown[max(0, at - 300) : at + 100]
    preview = materialization_metadata(refreshed, "smsp/stop_list")["preview"]
    assert preview.records[0].data["phone_number"] == "+336•••••678"
    not_through = materialization_metadata(pushed, "smsp/stop_list_additions")
    assert [r.data["target"] for r in not_through["rows_not_through"].records] == [
        "not ••••••••••699"
    ]


@pytest.mark.heavy
def test_a_local_deployment_may_show_them_whole(rig):
    rig.emulator.state.seed_entries((number, "2025-07-14 09:30:00") for number in SEEDED)
    assets = build_definitions(rig.settings(show_raw_numbers=True)).extract.assets

    result = rig.run(assets)

    assert result.success
    preview = materialization_metadata(result, "smsp/stop_list")["preview"]
    assert preview.records[0].data["phone_number"] == "+33612345678"
