"""push_stop_numbers: a messy CSV to /stop-sms/add, only what is missing, every row audited."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from smsp_connector.emulator import FaultSettings

from .instances import instance_for_test
from .pipeline_helpers import PipelineRig, check_results, materialization_metadata

pytestmark = pytest.mark.heavy

MESSY = (
    "Nom;Téléphone portable;Email\n"
    "Alice;06 12 34 56 78;a@example.com\n"  # row 2
    "Bob;+33 6 98 76 54 32;b@example.com\n"  # row 3
    "Carla;3.36123E+10;c@example.com\n"  # row 4: a spreadsheet ate the digits
    "Dan;0612345678;d@example.com\n"  # row 5: same number as row 2
    "Eve;0692123456;e@example.com\n"  # row 6: Réunion
    "Fay;+33601010101;f@example.com\n"  # row 7: already on the list
)


@pytest.fixture
def rig(emulator, tmp_path):
    with instance_for_test() as instance:
        yield PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)


def _assets(rig: PipelineRig):
    """The push and, downstream of it as in the push job, the stop list and its exports."""
    return [*rig.pushes(), *rig.defs.extract.assets]


def _config(path: Path, **options) -> dict:
    return {"ops": {"smsp__stop_list_additions": {"config": {"csv_path": str(path), **options}}}}


def _write(tmp_path: Path, text: str, name: str = "opt_outs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _adds(rig: PipelineRig) -> Counter:
    return Counter(rig.emulator.stats()["endpoints"].get("stop-sms/add", {}))


def _latest(rig: PipelineRig, run_id: str) -> dict[int, tuple[str, str]]:
    rows = rig.query(
        "SELECT source_row, target, outcome FROM smsp.audit_latest "
        f"WHERE run_id = '{run_id}' ORDER BY source_row"
    )
    return {row: (target, outcome) for row, target, outcome in rows}


def test_push_adds_only_missing_numbers_and_audits_every_row(rig, tmp_path):
    rig.emulator.state.add_stop("+33601010101")
    source = _write(tmp_path, MESSY)

    result = rig.run(_assets(rig), _config(source))

    assert result.success
    listed = {entry.phone_number for entry in rig.emulator.state.stop_entries()}
    assert listed == {"+33601010101", "+33612345678", "+33698765432", "+262692123456"}
    assert _adds(rig) == Counter({"code:200": 3})
    assert _latest(rig, result.run_id) == {
        2: ("+33612345678", "applied"),
        3: ("+33698765432", "applied"),
        4: ("3.36123E+10", "invalid_input"),
        5: ("+33612345678", "duplicate_in_file"),
        6: ("+262692123456", "applied"),
        7: ("+33601010101", "already_on_list"),
    }
    summary = materialization_metadata(result, "smsp/stop_list_additions")
    assert {k: summary[k] for k in ("requested", "invalid", "duplicates", "already_on_list")} == {
        "requested": 6,
        "invalid": 1,
        "duplicates": 1,
        "already_on_list": 1,
    }
    assert (summary["to_add"], summary["added"], summary["failed"]) == (3, 3, 0)
    assert check_results(result)["every_number_pushed"].passed
    tags = rig.instance.get_run_by_id(result.run_id).tags
    assert {k: v for k, v in tags.items() if k.startswith("smsp/")} == {
        "smsp/operation": "add",
        "smsp/dry_run": "false",
        "smsp/outcome": "complete",
    }, "few, low-cardinality tags: the counts are metadata"
    # The stop list was refreshed in the same run, after the push.
    assert rig.query("SELECT count(*) FROM smsp.stop_list") == [(4,)]
    report = (tmp_path / "opt_outs.rejected.csv").read_text(encoding="utf-8")
    assert "4,3.36123E+10,scientific_notation" in report
    assert rig.query("SELECT row_number, reason FROM smsp.input_rejections") == [
        (4, "scientific_notation")
    ]


def test_a_second_run_of_the_same_file_makes_no_add_call(rig, tmp_path):
    source = _write(tmp_path, MESSY)
    assert rig.run(_assets(rig), _config(source)).success
    calls_before = _adds(rig)

    again = rig.run(_assets(rig), _config(source))

    assert again.success
    assert _adds(rig) == calls_before
    outcomes = Counter(outcome for _, outcome in _latest(rig, again.run_id).values())
    assert outcomes == Counter({"already_on_list": 4, "invalid_input": 1, "duplicate_in_file": 1})


def test_dry_run_records_the_plan_and_sends_nothing(rig, tmp_path):
    source = _write(tmp_path, MESSY)

    result = rig.run(rig.pushes(), _config(source, dry_run=True))

    assert result.success
    assert "stop-sms/add" not in rig.emulator.stats()["endpoints"]
    outcomes = Counter(outcome for _, outcome in _latest(rig, result.run_id).values())
    assert outcomes["dry_run"] == 4
    assert rig.query("SELECT DISTINCT dry_run FROM smsp.audit_log") == [(True,)]


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "empty"), (b"name;email\nAlice;a@example.com\n", "no phone column")],
)
def test_an_unusable_file_fails_the_run_naming_the_file_before_any_call(
    rig, tmp_path, content, problem
):
    source = tmp_path / "bad.csv"
    source.write_bytes(content)

    result = rig.run(rig.pushes(), _config(source))

    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "bad.csv" in failure.message and problem in failure.message
    assert "stop-sms/list" not in rig.emulator.stats()["endpoints"], "nothing was asked"
    assert source.exists()


def test_processed_files_move_to_the_done_folder(rig, tmp_path):
    source = _write(tmp_path, MESSY)
    done = tmp_path / "done"

    result = rig.run(rig.pushes(), _config(source, move_to=str(done)))

    assert result.success
    assert not source.exists()
    prefix = result.run_id[:8]
    assert sorted(p.name for p in done.iterdir()) == [
        f"{prefix}-opt_outs.csv",
        f"{prefix}-opt_outs.rejected.csv",
    ]


@pytest.mark.slow
def test_a_faulty_provider_still_ends_with_every_number_on_the_list(rig, tmp_path):
    numbers = [f"+3361{n:07d}" for n in range(5_000)]
    source = _write(tmp_path, "phone\n" + "\n".join(numbers) + "\n")
    rig.emulator.faults = FaultSettings(fail_rate=0.1, reset_rate=0.05, latency_ms=5)

    result = rig.run(rig.pushes(), _config(source), max_workers=16, max_attempts=10)

    rig.emulator.faults = FaultSettings()
    assert result.success, result.get_step_failure_events()
    assert rig.emulator.state.stop_count() == 5_000
    assert {e.phone_number for e in rig.emulator.state.stop_entries()} == set(numbers)
    adds = _adds(rig)
    assert adds["reset:after"] > 0 and adds["http:500"] + adds["http:503"] > 0
    assert adds["code:200"] <= 5_000, "no number was freshly added twice"
    final = _latest(rig, result.run_id)
    assert sorted(final) == list(range(2, 5_002)), "one final audit row per input row"
    assert {outcome for _, outcome in final.values()} <= {"applied", "already_done"}
