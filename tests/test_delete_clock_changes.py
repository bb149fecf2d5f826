"""The deletion guard across Paris clock changes: when the order of an opt-out and a consent is
unknown (a provider time in the repeated autumn hour or the skipped spring hour, a zoneless
consent time), the opt-out wins and the number stays on the list."""

from __future__ import annotations

import pytest

from smsp_connector.operations.context import RunContext
from smsp_connector.operations.inputs import PhoneValues
from smsp_connector.operations.run import Delete, run_operation
from smsp_connector.warehouse import Warehouse

NUMBER = "+33612345678"


def _plan(client, emulator, tmp_path, opted_out_at: str, consent_at: str):
    emulator.state.seed_entries([(NUMBER, opted_out_at)])
    evidence = {"consent_at": consent_at, "consent_source": "web form #1"}
    report = run_operation(
        Delete(confirm=False),
        PhoneValues([NUMBER], evidence),
        RunContext(
            client=client,
            warehouse=Warehouse.at(tmp_path / "warehouse.duckdb"),
            run_id="clock-change",
            job="test",
        ),
    )
    return report.counts


@pytest.mark.parametrize(
    ("opted_out_at", "consent_at", "why"),
    [
        # 02:30 happens twice on 2025-10-26: at 00:30Z and at 01:30Z. The consent at 01:00Z
        # may be before the opt-out, so the later instant is taken for the opt-out.
        ("2025-10-26 02:30:00", "2025-10-26T01:00:00Z", "autumn: repeated opt-out hour"),
        # Opt-out at 02:10 (00:10Z or 01:10Z); consent at 02:45 with no zone (00:45Z or
        # 01:45Z): the earlier consent instant is taken, so the consent may be before.
        ("2025-10-26 02:10:00", "2025-10-26T02:45:00", "autumn: zoneless consent too"),
        # 02:30 does not exist on 2025-03-30 (02:00 -> 03:00): read as 00:30Z or 01:30Z.
        ("2025-03-30 02:30:00", "2025-03-30T01:00:00Z", "spring: skipped opt-out hour"),
        # Opt-out at 02:10 in the gap (00:10Z or 01:10Z), consent at 02:45 in the gap with no
        # zone (00:45Z or 01:45Z).
        ("2025-03-30 02:10:00", "2025-03-30T02:45:00", "spring: zoneless consent too"),
    ],
)
def test_when_the_order_is_unknown_the_opt_out_wins(
    client, emulator, tmp_path, opted_out_at, consent_at, why
):
    counts = _plan(client, emulator, tmp_path, opted_out_at, consent_at)

    assert (counts["refused"], counts["planned"]) == (1, 0), why


@pytest.mark.parametrize(
    ("opted_out_at", "consent_at"),
    [
        ("2025-10-26 02:30:00", "2025-10-26T01:31:00Z"),  # after both readings of 02:30
        ("2025-03-30 02:30:00", "2025-03-30T01:31:00Z"),
        ("2025-10-26 01:59:00", "2025-10-26T03:00:00"),  # unambiguous on both sides
    ],
)
def test_a_consent_surely_after_the_opt_out_is_planned(
    client, emulator, tmp_path, opted_out_at, consent_at
):
    counts = _plan(client, emulator, tmp_path, opted_out_at, consent_at)

    assert (counts["refused"], counts["planned"]) == (0, 1)
