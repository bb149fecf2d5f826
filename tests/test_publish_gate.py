"""Write-audit-publish: a snapshot is staged, checked, and published into stop_list only when
the blocking checks pass. A blocked snapshot leaves the published table, the history and the
exports exactly as they were, and the run fails with one line saying what to do."""

from __future__ import annotations

import dagster as dg
import pytest

from .instances import instance_for_test
from .pipeline_helpers import PipelineRig, check_results, materialized_keys

pytestmark = pytest.mark.heavy

NUMBERS = [f"+3361000000{n}" for n in range(10)]


@pytest.fixture
def rig(emulator, tmp_path):
    with instance_for_test() as instance:
        yield PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)


def _published(rig: PipelineRig) -> list[tuple]:
    return rig.query("SELECT stop_id, phone_number, created_at FROM smsp.stop_list ORDER BY 1")


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    [failure] = result.get_step_failure_events()
    return failure.event_specific_data.error.message


def test_a_shrink_is_staged_but_never_published_until_accepted(rig):
    rig.emulator.state.seed_entries((number, "2025-07-14 09:30:00") for number in NUMBERS)
    assert rig.materialize().success
    published, export = _published(rig), (rig.export_dir / "suppression_list.csv").read_bytes()
    history = rig.query("SELECT count(*) FROM smsp.stop_list_history")
    for number in NUMBERS[:6]:
        rig.emulator.state.delete_stop(rig.emulator.state.stop_id_for(number))

    blocked = rig.materialize()

    assert not blocked.success
    assert not check_results(blocked)["no_sudden_shrink"].passed
    assert materialized_keys(blocked) == set(), "nothing was published or exported"
    assert _published(rig) == published, "readers of smsp.stop_list still get the whole list"
    assert (rig.export_dir / "suppression_list.csv").read_bytes() == export
    assert rig.query("SELECT count(*) FROM smsp.stop_list_history") == history
    assert rig.query("SELECT count(*) FROM smsp.stop_list_staged") == [(4,)]
    assert rig.query(
        "SELECT run_id, row_count, status, rejected_by FROM smsp.stop_list_snapshots "
        "ORDER BY extracted_at DESC LIMIT 1"
    ) == [(blocked.run_id, 4, "rejected", "no_sudden_shrink")]
    message = _failure_message(blocked)
    assert "\n" not in message.strip()
    for part in ("no_sudden_shrink", "10", "4", "smsp.stop_list is unchanged", "accept_shrink"):
        assert part in message, part

    accepted = rig.materialize({"ops": {"smsp__stop_list": {"config": {"accept_shrink": True}}}})

    assert accepted.success
    assert len(_published(rig)) == 4
    assert rig.query(
        "SELECT status FROM smsp.stop_list_snapshots ORDER BY extracted_at DESC LIMIT 1"
    ) == [("published",)]


def test_invalid_provider_rows_are_never_published(rig):
    rig.emulator.state.seed_entries([("+33612345678", "2025-07-14 09:30:00")])
    assert rig.materialize().success
    published = _published(rig)
    rig.emulator.state.seed_entries([("0612", "2025-07-14 09:30:00")])

    blocked = rig.materialize()

    assert not blocked.success
    assert _published(rig) == published
    assert rig.query(
        "SELECT status, rejected_by FROM smsp.stop_list_snapshots "
        "ORDER BY extracted_at DESC LIMIT 1"
    ) == [("rejected", "schema_valid")]
    assert "schema_valid" in _failure_message(blocked)
    assert "1 row(s)" in _failure_message(blocked)


def test_the_first_snapshot_is_published_when_valid(rig):
    rig.emulator.state.seed_entries([("+33612345678", "2025-07-14 09:30:00")])

    result = rig.materialize()

    assert result.success
    assert [row[1] for row in _published(rig)] == ["+33612345678"]
    assert rig.query("SELECT status FROM smsp.stop_list_snapshots") == [("published",)]
