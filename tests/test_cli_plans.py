"""Plans people and CI can read: a dry run's plan as JSON on stdout, `smsp plans show` and
`smsp plans apply`, through the smsp command in subprocesses against the emulator."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from .test_cli_commands import cli  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow  # smsp subprocesses

EVIDENCE = ["--consent-at", "2026-01-15T10:00", "--consent-source", "web form #8812"]


def test_a_push_dry_run_prints_its_plan_as_json_and_plans_apply_applies_it(
    cli,  # noqa: F811
    emulator,
    tmp_path,
):
    emulator.state.seed_entries([("+33611111111", "2025-01-01 10:00:00")])
    (tmp_path / "opt_outs.csv").write_text("phone\n0611111111\n0622222222\nnope\n")

    dry = cli("push", "opt_outs.csv", "--dry-run", "--format", "json")

    assert dry.returncode == 0, dry.stderr  # a rejected input row is reported, not a failure
    document = json.loads(dry.stdout)
    plan = document["plan"]
    assert plan["operation"] == "add" and plan["applied_by_run"] is None
    assert plan["targets"] == [{"source_row": 3, "target": "+33622222222"}]
    assert document["counts"]["to_add"] == 1 and document["counts"]["dry_run"] is True
    assert [(r["source_row"], r["outcome"]) for r in document["rejections"]] == [
        (4, "invalid_input")
    ]
    assert not emulator.state.has_number("+33622222222")

    shown = cli("plans", "show", plan["plan_id"], "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == plan

    applied = cli("plans", "apply", plan["plan_id"])
    assert applied.returncode == 0, applied.stderr
    assert emulator.state.has_number("+33622222222")

    again = cli("plans", "apply", plan["plan_id"])
    assert again.returncode == 1
    assert f"plan {plan['plan_id']} was applied by run cli-" in again.stderr
    assert "Traceback" not in again.stderr


def test_a_deletion_plan_shows_its_evidence_and_is_applied_with_its_guard(
    cli,  # noqa: F811
    emulator,
):
    emulator.state.seed_entries([("+33612345678", "2025-01-01 10:00:00")])

    dry = cli("stops", "delete", "+33612345678", *EVIDENCE, "--format", "json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)["plan"]
    [target] = plan["targets"]
    assert target["target"] == "+33612345678"
    assert target["consent_source"] == "web form #8812"
    assert target["opted_out_at"] == "2025-01-01T10:00:00"
    assert target["consent_at"] == "2026-01-15T09:00:00+00:00"

    table = cli("plans", "show", plan["plan_id"])
    assert table.returncode == 0 and "+33612345678" in table.stdout
    assert "web form #8812" in table.stdout
    assert emulator.state.has_number("+33612345678")

    applied = cli("plans", "apply", plan["plan_id"])
    assert applied.returncode == 0, applied.stderr
    assert not emulator.state.has_number("+33612345678")


def test_a_cancel_dry_run_cancels_nothing_until_its_plan_is_applied(cli, emulator):  # noqa: F811
    when = (emulator.state.clock.now() + timedelta(days=1)).replace(minute=0, second=0)
    message = emulator.state.send(["+33645454545"], "Soldes", scheduled_at=when)

    dry = cli("cancel", str(message.id), "--dry-run", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)["plan"]
    assert [t["target"] for t in plan["targets"]] == [str(message.id)]
    assert emulator.state.get_message(message.id).cancelled_at is None

    applied = cli("plans", "apply", plan["plan_id"])
    assert applied.returncode == 0, applied.stderr
    assert emulator.state.get_message(message.id).cancelled_at is not None


@pytest.mark.parametrize("plan_id", ["0" * 64, "ab\udcff"], ids=["hex", "not UTF-8"])
def test_an_unknown_plan_is_one_line(cli, plan_id):  # noqa: F811
    """Also an id whose bytes are not UTF-8 (a lone surrogate in Python), which DuckDB cannot
    take as a parameter: no plan has it."""
    for command in ("show", "apply"):
        done = cli("plans", command, plan_id)
        assert done.returncode == 1
        assert done.stderr.strip().splitlines()[-1].endswith(f"no plan {plan_id!r}")
        assert "Traceback" not in done.stderr
