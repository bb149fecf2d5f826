"""The inbox sensor's run requests, and the lineage drawn in the asset graph."""

from __future__ import annotations

import hashlib
import os
import time

import dagster as dg
import pytest

from smsp_connector.dagster import SmspKeys, build_inbox_sensor
from smsp_connector.operations.context import RunContext
from smsp_connector.operations.inputs import PhoneFile
from smsp_connector.operations.run import Push, run_operation
from smsp_connector.warehouse import Warehouse

from .instances import instance_for_test
from .pipeline_helpers import PipelineRig

pytestmark = pytest.mark.heavy

JOBS = {
    operation: dg.define_asset_job(f"{operation}_job", selection=[f"smsp/{asset}"])
    for operation, asset in {
        "add": "stop_list_additions",
        "delete": "stop_list_deletions",
        "cancel": "message_cancellations",
    }.items()
}


@pytest.fixture
def inbox(tmp_path):
    for folder in ("add", "delete", "cancel"):
        (tmp_path / "inbox" / folder).mkdir(parents=True)
    return tmp_path / "inbox"


class Ticks:
    """Successive evaluations of the inbox sensor, its cursor carried from one to the next."""

    def __init__(self, inbox, settle_seconds: float = 0.0) -> None:
        self.sensor = build_inbox_sensor(
            inbox=inbox, jobs=JOBS, keys=SmspKeys("smsp"), settle_seconds=settle_seconds
        )
        self.cursor: str | None = None

    def __call__(self) -> list[dg.RunRequest]:
        with instance_for_test() as instance:
            context = dg.build_sensor_context(instance=instance, cursor=self.cursor)
            result = self.sensor(context)
        self.cursor = result.cursor
        return result.run_requests


def _requests(inbox) -> list[dg.RunRequest]:
    """The requests once every file has settled: a first tick sees them, a second takes them."""
    ticks = Ticks(inbox)
    assert ticks() == [], "a file seen for the first time is never taken at once"
    return ticks()


def test_a_file_still_being_copied_in_is_taken_only_once_it_stops_changing(inbox):
    path = inbox / "add" / "big.csv"
    path.write_text("phone\n" + "".join(f"+336{n:08d}\n" for n in range(1_700)))
    ticks = Ticks(inbox)

    assert ticks() == []
    with path.open("a") as handle:  # the copy goes on
        handle.write("".join(f"+337{n:08d}\n" for n in range(4_300)))
    assert ticks() == [], "the size changed since the last tick: still being written"
    [request] = ticks()

    assert request.run_key.startswith(f"add:{hashlib.sha256(path.read_bytes()).hexdigest()}:")


def test_a_settled_file_waits_for_the_settle_interval(inbox):
    (inbox / "add" / "list.csv").write_text("phone\n0612345678\n")
    ticks = Ticks(inbox, settle_seconds=3600)

    assert ticks() == []
    assert ticks() == [], "unchanged, but not for an hour yet"


def test_upper_case_and_tab_separated_files_are_taken(inbox):
    (inbox / "add" / "EXPORT.CSV").write_text("phone\n0612345678\n")
    (inbox / "add" / "crm.tsv").write_text("phone\tname\n0698765432\tx\n")
    (inbox / "add" / "EXPORT.rejected.csv").write_text("row_number\n")
    (inbox / "add" / "notes.txt").write_text("not an export")

    requests = _requests(inbox)

    assert sorted(r.tags["smsp/source_file"] for r in requests) == ["EXPORT.CSV", "crm.tsv"]


def test_a_file_that_changed_after_the_run_read_it_is_not_archived(inbox, emulator, client):
    path = inbox / "add" / "growing.csv"
    path.write_text("phone\n+33611111111\n")

    class StillBeingWritten(PhoneFile):
        def read(self, extra_columns=()):
            frame = super().read(extra_columns)
            with path.open("a") as handle:  # the writer appends after the run read the file
                handle.write("+33622222222\n")
            return frame

    report = run_operation(
        Push(),
        StillBeingWritten(path),
        RunContext(
            client=client,
            warehouse=Warehouse.at(inbox.parent / "warehouse.duckdb"),
            run_id="growing-file",
            job="test",
        ),
        move_to=inbox / "done",
    )

    assert report.changed_after_read
    assert path.exists() and not (inbox / "done").exists(), "left for a run of its own"
    assert emulator.state.has_number("+33611111111")
    assert not emulator.state.has_number("+33622222222"), "only what was read was pushed"


def test_each_dropped_file_asks_for_its_job_once_per_content(inbox):
    (inbox / "add" / "march.csv").write_text("phone\n0612345678\n")
    (inbox / "add" / "march copy.csv").write_text("phone\n0612345678\n")
    (inbox / "add" / "march.rejected.csv").write_text("row_number,raw_value\n")
    (inbox / "delete" / "consents.csv").write_text("phone,consent_at,consent_source\n")
    (inbox / "cancel" / "campaign.csv").write_text("message_id\n5000\n")

    requests = _requests(inbox)

    by_file = {request.tags["smsp/source_file"]: request for request in requests}
    assert sorted(by_file) == ["campaign.csv", "consents.csv", "march copy.csv", "march.csv"]
    # Same content, two files: each runs (a push sends only what is missing; skipping one
    # would skip whatever opt-out it alone was meant to carry if the other failed).
    assert by_file["march.csv"].run_key != by_file["march copy.csv"].run_key
    assert by_file["march.csv"].job_name == "add_job"
    assert by_file["consents.csv"].job_name == "delete_job"
    assert by_file["campaign.csv"].job_name == "cancel_job"
    config = by_file["consents.csv"].run_config["ops"]["smsp__stop_list_deletions"]["config"]
    assert config == {
        "csv_path": str(inbox / "delete" / "consents.csv"),
        "move_to": str(inbox / "done"),
    }, "deletions from the inbox are dry runs: no confirm"


def test_changed_content_gets_a_new_run_key(inbox):
    path = inbox / "add" / "list.csv"
    path.write_text("phone\n0612345678\n")
    [before] = _requests(inbox)
    path.write_text("phone\n0612345678\n0698765432\n")
    [after] = _requests(inbox)

    assert before.run_key != after.run_key


def test_a_file_dropped_again_with_the_same_content_runs_again(inbox):
    """A number opted out, deleted with consent, then opted out again: the same one-line file
    dropped again must push it again, not be taken for the first drop."""
    path = inbox / "add" / "stop.csv"
    path.write_text("phone\n0612345678\n")
    [first] = _requests(inbox)
    path.unlink()  # archived by its run
    path.write_text("phone\n0612345678\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    [again] = _requests(inbox)

    assert first.run_key != again.run_key
    assert _requests(inbox)[0].run_key == again.run_key, "left in place: asked once"


def test_a_file_moved_back_with_its_old_modification_time_runs_again(inbox):
    """``mv done/x inbox/add/x`` or ``cp -p`` keeps the modification time: the key must still
    change, or the file is silently never run again."""
    path = inbox / "add" / "stop.csv"
    path.write_text("phone\n0612345678\n")
    kept = path.stat()
    [first] = _requests(inbox)
    archived = inbox / "stop.csv"
    path.rename(archived)
    time.sleep(0.01)
    archived.rename(path)
    os.utime(path, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    [again] = _requests(inbox)

    assert first.run_key != again.run_key


def test_a_requested_run_pushes_the_file_and_moves_it_to_done(inbox, emulator, tmp_path):
    (inbox / "add" / "march.csv").write_text("phone\n06 12 34 56 78\n")
    [request] = _requests(inbox)

    with instance_for_test() as instance:
        rig = PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)
        result = rig.run(rig.pushes(), request.run_config)

    assert result.success
    assert emulator.state.has_number("+33612345678")
    assert not (inbox / "add" / "march.csv").exists()
    assert [p.name.split("-", 1)[1] for p in (inbox / "done").iterdir()] == ["march.csv"]


@pytest.mark.repo  # this repository's code location, assets/
def test_lineage_runs_from_the_inbox_csvs_through_the_stop_list_to_the_exports():
    from assets import defs

    graph = defs.resolve_asset_graph()

    def parents(key: str) -> set[str]:
        return {
            k.to_user_string() for k in graph.get(dg.AssetKey.from_user_string(key)).parent_keys
        }

    assert parents("smsp/stop_list_additions") == {"smsp/inbox_add_csv"}
    assert parents("smsp/stop_list_deletions") == {"smsp/inbox_delete_csv"}
    assert parents("smsp/message_cancellations") == {"smsp/inbox_cancel_csv"}
    assert parents("smsp/provider_stop_list") == {
        "smsp/stop_list_additions",
        "smsp/stop_list_deletions",
    }
    assert parents("smsp/stop_list") == {"smsp/provider_stop_list"}
    assert parents("smsp/stop_list_history") == {"smsp/stop_list"}
    assert parents("smsp/suppression_export") == {"smsp/stop_list"}
    assert parents("smsp/suppression_export_sha256") == {"smsp/stop_list"}


@pytest.mark.repo  # this repository's code location, assets/
def test_the_code_location_has_every_job_the_schedule_and_the_sensor():
    from assets import defs

    for job in (
        "smsp_refresh",
        "push_stop_numbers",
        "delete_stop_numbers",
        "cancel_scheduled_messages",
    ):
        assert defs.resolve_job_def(job) is not None
    sensor = defs.get_sensor_def("smsp_inbox")
    assert {job.name for job in sensor.jobs} == {
        "push_stop_numbers",
        "delete_stop_numbers",
        "cancel_scheduled_messages",
    }
    assert defs.get_schedule_def("smsp_daily_refresh").job_name == "smsp_refresh"
