"""A deletion's plan: stored by the dry run, applied exactly as stored by its confirmation.

A confirmation deletes the numbers that were reviewed, never those that re-reading the file
with other options (another region, another column) would give.
"""

from __future__ import annotations

import dagster as dg
import pytest

from .pipeline_helpers import PipelineRig, materialization_metadata


@pytest.fixture
def rig(emulator, tmp_path):
    with dg.instance_for_test() as instance:
        yield PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)


def _delete(rig: PipelineRig, **config) -> dg.ExecuteInProcessResult:
    return rig.run(rig.only("delete"), {"ops": {"smsp__stop_list_deletions": {"config": config}}})


def _listed(rig: PipelineRig) -> set[str]:
    return {entry.phone_number for entry in rig.emulator.state.stop_entries()}


def test_a_confirmation_deletes_the_number_the_dry_run_planned_in_its_region(rig, tmp_path):
    rig.emulator.state.seed_entries(
        [("+31612345678", "2025-03-01 12:00:00"), ("+33612345678", "2025-03-01 12:00:00")]
    )
    path = tmp_path / "consents.csv"
    path.write_text("phone,consent_at,consent_source\n0612345678,2026-01-15,web form\n")

    dry = _delete(rig, csv_path=str(path), default_region="NL")
    confirmed = _delete(rig, confirm_dry_run=dry.run_id)

    assert dry.success and confirmed.success
    assert [
        r.data["target"]
        for r in materialization_metadata(dry, "smsp/stop_list_deletions")["planned_rows"].records
    ] == ["+31612345678"]
    assert "+33612345678" in _listed(rig), "a number nobody reviewed was deleted"
    assert "+31612345678" not in _listed(rig), "the reviewed number stayed listed"


def test_a_confirmation_deletes_from_the_column_the_dry_run_read(rig, tmp_path):
    rig.emulator.state.seed_entries(
        [("+33611111111", "2025-03-01 12:00:00"), ("+33622222222", "2025-03-01 12:00:00")]
    )
    path = tmp_path / "consents.csv"
    path.write_text(
        "phone,fixe,consent_at,consent_source\n+33611111111,+33622222222,2026-01-15,web form\n"
    )

    dry = _delete(rig, csv_path=str(path), phone_column="fixe")
    confirmed = _delete(rig, confirm_dry_run=dry.run_id)

    assert dry.success and confirmed.success
    assert "+33611111111" in _listed(rig), "a number nobody reviewed was deleted"
    assert "+33622222222" not in _listed(rig), "the reviewed number stayed listed"
