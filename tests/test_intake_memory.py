"""What keeps a push of a million rows in bounded memory gives what the whole-frame code gave:
audit rows built a slice at a time from a mask, a dry run's plan read back as a preview, the
audit's reads computed from the rows concerned only, pandera validation in slices, DuckDB's
memory capped while a run writes."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pandera.errors
import pytest

from smsp_connector.intake import frames
from smsp_connector.intake.frames import phone_intake_frame
from smsp_connector.warehouse import Warehouse
from smsp_connector.warehouse.audit import (
    AuditEntry,
    AuditWriter,
    Outcome,
    audit_entries,
    unsent_rows,
)
from smsp_connector.warehouse.plans import Plan, PlanTargets, load_plan, store_plan
from smsp_connector.warehouse.tables import capped_memory


def test_entries_of_a_mask_are_the_entries_of_the_subset() -> None:
    intake = pd.DataFrame(
        {
            "source_file": ["f.csv"] * 5,
            "row_number": [2, 3, 5, 8, 9],
            "e164": ["+33612345678", None, "+33612345679", "+33612345670", "+33612345671"],
        }
    )
    mask = pd.Series([True, False, True, False, True])
    by_mask = audit_entries(intake, Outcome.DRY_RUN, where=mask)
    assert len(by_mask) == 3
    assert list(by_mask) == list(audit_entries(intake[mask], Outcome.DRY_RUN))
    assert by_mask[1] == AuditEntry("f.csv", 5, "+33612345679", Outcome.DRY_RUN)
    assert list(audit_entries(intake, Outcome.DRY_RUN, where=mask & ~mask)) == []
    assert by_mask.frame.equals(audit_entries(intake[mask], Outcome.DRY_RUN).frame)


def _entry(row: int, outcome: Outcome, target: str | None = None) -> AuditEntry:
    return AuditEntry("f.csv", row, target or f"+336123456{row:02d}", outcome, f"row {row}")


@pytest.mark.heavy
def test_a_preview_of_unsent_rows_is_the_head_of_them_all(tmp_path: Path) -> None:
    warehouse = Warehouse.at(tmp_path / "w.duckdb")
    with AuditWriter(warehouse, run_id="r", job="j", operation="add", dry_run=False) as audit:
        # Row 2 was pending then failed, row 3 pending then applied (not unsent), rows 4 to 9
        # failed, row 10 failed then applied: the first "failed" log rows are not all final.
        audit.record(_entry(row, Outcome.PENDING) for row in range(2, 11))
        audit.flush()
        audit.record([_entry(3, Outcome.APPLIED), _entry(10, Outcome.FAILED)])
        audit.record(_entry(row, Outcome.FAILED) for row in (2, 4, 5, 6, 7, 8, 9))
        audit.flush()
        audit.record([_entry(10, Outcome.APPLIED)])
    with AuditWriter(warehouse, run_id="other", job="j", operation="add", dry_run=False) as audit:
        audit.record([_entry(1, Outcome.FAILED)])
    everything = unsent_rows(warehouse, "r")
    assert everything["source_row"].tolist() == [2, 4, 5, 6, 7, 8, 9]
    for limit in range(1, 10):
        preview = unsent_rows(warehouse, "r", limit=limit, memory_limit="64MB")
        pd.testing.assert_frame_equal(preview, everything.head(limit))
    # A row logged twice with the same final outcome is one row.
    with AuditWriter(warehouse, run_id="d", job="j", operation="add", dry_run=True) as audit:
        audit.record([_entry(2, Outcome.DRY_RUN), _entry(3, Outcome.DRY_RUN)])
        audit.flush()
        audit.record([_entry(2, Outcome.DRY_RUN), _entry(4, Outcome.DRY_RUN)])
    for limit in (1, 2, 3, 4):
        rows = unsent_rows(warehouse, "d", (Outcome.DRY_RUN,), limit=limit)["source_row"]
        assert rows.tolist() == [2, 3, 4][:limit]


def test_unsent_rows_without_a_source_are_found(tmp_path: Path) -> None:
    warehouse = Warehouse.at(tmp_path / "w.duckdb")
    with AuditWriter(warehouse, run_id="r", job="j", operation="add", dry_run=False) as audit:
        audit.record([AuditEntry(None, None, "+33612345678", Outcome.PENDING)])
        audit.flush()
        audit.record([AuditEntry(None, None, "+33612345678", Outcome.FAILED, "gone")])
    rows = unsent_rows(warehouse, "r")
    assert rows[["target", "outcome", "reason"]].values.tolist() == [
        ["+33612345678", "failed", "gone"]
    ]


def test_capped_memory_gives_the_limit_back(tmp_path: Path) -> None:
    warehouse = Warehouse.at(tmp_path / "w.duckdb")
    with warehouse.connect() as (conn, _):
        before = conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        with capped_memory(conn, "64MB"):
            inside = conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        after = conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        with capped_memory(conn, None):
            unchanged = conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert inside != before and inside.replace(" ", "").upper().startswith(("61", "64"))
    assert after == before == unchanged


def test_validation_in_slices_still_refuses_what_the_whole_frame_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(frames, "_VALIDATION_ROWS", 4)
    values = ["06 12 34 56 78", "n/a", "+33 6 12 34 56 79", "0612345678", "0033612345680"] * 3
    frame = phone_intake_frame("f.csv", values, list(range(2, 17)))
    assert frame["duplicate_of_row"].tolist()[3] == 2
    assert frame["rejection_reason"].notna().sum() == 3
    # The same row number in two slices: refused, as a whole-frame validation refuses it.
    with pytest.raises(pandera.errors.SchemaError, match="row_number"):
        phone_intake_frame("f.csv", values, [*range(2, 16), 3])
    # A bad row in the last slice only.
    with pytest.raises(pandera.errors.SchemaError):
        phone_intake_frame("f.csv", values, [*range(2, 16), 0])


def test_the_source_column_holds_one_str_object() -> None:
    frame = phone_intake_frame("some/file.csv", ["0612345678"] * 3, [2, 3, 4])
    assert len({id(value) for value in frame["source_file"]}) == 1
    assert isinstance(frame["row_number"].to_numpy(), np.ndarray)


@pytest.mark.heavy
def test_storing_a_push_plan_does_not_read_its_targets_back(tmp_path: Path) -> None:
    """A push plan of a million targets was read back whole once stored (a frame, then one
    Python object per time and per target): about 450 MiB for nothing, as a push sends from
    its intake. Its targets are what was stored (the plan's id hashes them)."""
    count = 200_000
    targets = PlanTargets.rows(
        pd.Series(np.arange(2, count + 2)), pd.Series([f"+336{i:08d}" for i in range(count)])
    )
    draft = Plan("add", None, {}, "f.csv", "0" * 64, targets)
    warehouse = Warehouse.at(tmp_path / "w.duckdb")

    tracemalloc.start()
    try:
        stored = store_plan(warehouse, draft, run_id="r1", read_back=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MiB of Python objects to store the plan"
    assert stored.plan_id and stored.targets is targets
    [again] = [load_plan(warehouse, stored.plan_id)]
    assert again is not None and list(again.targets) == list(targets)


def test_the_slices_of_one_record_share_one_connection_and_one_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing a file's last connection checkpoints it: a million rows' slices written on a
    connection each checkpointed 16 times. Every slice is written, each its own transaction."""
    monkeypatch.setattr("smsp_connector.warehouse.audit._INSERT_ROWS", 100)
    path = tmp_path / "w.duckdb"
    opened = []
    real = Warehouse.at(path)

    def connect():
        opened.append(1)
        return real._connect()

    warehouse = Warehouse(connect, database=str(path))
    rows = pd.DataFrame(
        {
            "source_file": ["f.csv"] * 1_050,
            "row_number": range(2, 1_052),
            "e164": [f"+3361234{n:04d}" for n in range(1_050)],
        }
    )
    audit = AuditWriter(warehouse, run_id="r", job="j", operation="add", dry_run=True)
    audit.record(audit_entries(rows, Outcome.DRY_RUN))
    assert len(opened) == 1
    assert audit.written == 1_050
    with warehouse.connect() as (conn, tables):
        assert conn.execute(
            f"SELECT count(*), count(DISTINCT target) FROM {tables.audit_log}"
        ).fetchall() == [(1_050, 1_050)]
        assert (
            conn.execute("SELECT current_setting('checkpoint_threshold')").fetchall()[0][0]
            != "16.0 MiB"
        )


@pytest.mark.parametrize("one_file", [True, False], ids=["one file", "several files"])
@pytest.mark.parametrize("detail", [None, "detail"])
def test_a_bulk_record_writes_its_entries_row_for_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_file: bool, detail: str | None
) -> None:
    """Entries are written through a temporary table, a group of slices at a time, with the
    values they share as parameters: the log holds each chosen row exactly once, whichever
    columns are shared."""
    monkeypatch.setattr("smsp_connector.warehouse.audit._INSERT_ROWS", 7)
    monkeypatch.setattr("smsp_connector.warehouse.audit._GROUP_SLICES", 3)
    count = 50
    rows = pd.DataFrame(
        {
            "source_file": ["f.csv" if one_file or n % 3 else "g.csv" for n in range(count)],
            "row_number": range(2, count + 2),
            "e164": [f"+3361234{n:04d}" for n in range(count)],
            "detail": [f"same value as row {n}" for n in range(count)],
        }
    )
    mask = np.arange(count) % 4 != 1
    entries = audit_entries(rows, Outcome.DUPLICATE_IN_FILE, detail, where=mask)
    warehouse = Warehouse.at(tmp_path / "w.duckdb")
    audit = AuditWriter(warehouse, run_id="r", job="j", operation="add", dry_run=True)
    audit.record(entries)
    assert audit.written == len(entries) == int(mask.sum())
    with warehouse.connect() as (conn, tables):
        written = conn.execute(
            f"SELECT source_file, source_row, target, outcome, detail, run_id, dry_run "
            f"FROM {tables.audit_log} ORDER BY source_row"
        ).fetchall()
    chosen = rows[mask]
    assert written == [
        (source, row, target, "duplicate_in_file", text if detail else None, "r", True)
        for source, row, target, text in zip(
            chosen["source_file"], chosen["row_number"], chosen["e164"], chosen["detail"],
            strict=True,
        )
    ]  # fmt: skip


@pytest.mark.parametrize("memory_limit", [None, "128MB"])
def test_a_bulk_record_that_fails_raises_its_own_error_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_limit: str | None
) -> None:
    """A statement failing inside a group's transaction aborts it: the clean-up after it (the
    staged table, the memory cap) must not replace DuckDB's own error with "transaction is
    aborted", and the cap comes back."""

    def failing(self, conn, tables, relation, columns, shared) -> None:
        conn.execute("SELECT CAST('not a number' AS INTEGER)")

    monkeypatch.setattr(AuditWriter, "_append_from", failing)
    rows = pd.DataFrame(
        {"source_file": ["f.csv"] * 3, "row_number": [2, 3, 4], "e164": ["+33612345678"] * 3}
    )
    warehouse = Warehouse.at(tmp_path / "w.duckdb")
    audit = AuditWriter(
        warehouse, run_id="r", job="j", operation="add", dry_run=True, memory_limit=memory_limit
    )
    with warehouse.one_connection():
        with warehouse.connect() as (conn, _):
            before = conn.execute("SELECT current_setting('memory_limit')").fetchall()
        with pytest.raises(duckdb.ConversionException, match="not a number"):
            audit.record(audit_entries(rows, Outcome.DRY_RUN))
        with warehouse.connect() as (conn, tables):
            assert conn.execute(f"SELECT count(*) FROM {tables.audit_log}").fetchall() == [(0,)]
            assert conn.execute("SELECT current_setting('memory_limit')").fetchall() == before
            assert not conn.execute(
                "SELECT 1 FROM duckdb_tables() WHERE table_name = 'audit_staged'"
            ).fetchall()
    assert audit.written == 0


def test_a_plans_content_hash_reads_its_targets_in_slices_as_one_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The plan id hashes the targets joined by a separator: fed in slices, the same bytes."""
    import hashlib

    numbers = [f"+336123456{n:02d}" for n in range(50)]
    targets = PlanTargets.rows(list(range(2, 52)), numbers)
    whole = hashlib.sha256()
    whole.update(np.arange(2, 52, dtype="int64").tobytes())
    whole.update("\x1f".join(numbers).encode())
    monkeypatch.setattr("smsp_connector.warehouse.plans._DIGEST_ROWS", 7)
    sliced = hashlib.sha256()
    targets.digest(sliced)
    assert sliced.hexdigest() == whole.hexdigest()
