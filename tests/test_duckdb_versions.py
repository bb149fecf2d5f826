"""The DuckDB release a plain ``pip install`` resolves, whichever it is between 1.4 and 2.x.

A warehouse file written by a newer DuckDB than the one installed is refused by DuckDB with a
storage version number; the project turns it into one line naming the file, both releases and
what to do (in the ``smsp`` command and in a Dagster run), never a traceback. The newer file is
made here from one this DuckDB writes, its header's storage version and library version raised
and its checksum recomputed (DuckDB's header layout and checksum, ``storage/storage_info.cpp``
and ``common/checksum.cpp``), so the test runs on whatever DuckDB the environment has.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import smsp_connector

from .conftest import API_KEY
from .instances import instance_for_test
from .pipeline_helpers import PipelineRig

NEWER = "v99.0.0"


def _checksum(block: bytes) -> int:
    """DuckDB's block checksum: 5381 xor the product of each 64-bit word with a constant."""
    result = 5381
    for (word,) in struct.iter_unpack("<Q", block):
        result ^= (word * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return result


def written_by_a_newer_duckdb(path: Path) -> Path:
    """A DuckDB file whose header says a future release wrote it in a storage format this
    DuckDB cannot read (storage version 10**6)."""
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE t AS SELECT 1 AS x")
    header = bytearray(path.read_bytes()[:4096])
    assert header[8:12] == b"DUCK"
    struct.pack_into("<Q", header, 12, 10**6)  # the storage version number
    header[0x34 : 0x34 + 32] = NEWER.encode().ljust(32, b"\0")  # the library that wrote it
    struct.pack_into("<Q", header, 0, _checksum(bytes(header[8:4096])))
    with path.open("r+b") as file:
        file.write(header)
    return path


def test_the_crafted_file_is_refused_by_duckdb_itself(tmp_path):
    path = written_by_a_newer_duckdb(tmp_path / "newer.duckdb")
    with pytest.raises(duckdb.IOException, match="version number"):
        duckdb.connect(str(path))


def _expected_line(text: str, path: Path) -> None:
    assert str(path) in text
    assert "99.0.0" in text and duckdb.__version__ in text
    assert "pip install" in text
    assert "Traceback" not in text


@pytest.mark.slow  # an smsp subprocess
def test_the_cli_says_in_one_line_which_duckdb_wrote_the_file(emulator, tmp_path):
    path = written_by_a_newer_duckdb(tmp_path / "warehouse.duckdb")
    numbers = tmp_path / "opt_outs.csv"
    numbers.write_text("phone\n0612345678\n")
    done = subprocess.run(
        [sys.executable, "-m", "smsp_connector.cli", "push", str(numbers), "--dry-run"],
        env={
            **os.environ,
            "SMSP_API_KEY": API_KEY,
            "SMSP_BASE_URL": emulator.base_url,
            "SMSP_DUCKDB_PATH": str(path),
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.strip().splitlines()
    _expected_line(line, path)
    assert emulator.stats()["endpoints"] == {}, "nothing is sent"


@pytest.mark.heavy
def test_a_dagster_run_fails_with_that_line_and_no_stack(emulator, tmp_path):
    path = written_by_a_newer_duckdb(tmp_path / "warehouse.duckdb")
    emulator.state.seed_entries([("+33612345678", "2025-07-14 09:30:00")])
    import dagster as dg

    with instance_for_test() as instance:
        rig = PipelineRig(emulator, path, tmp_path / "exports", instance)
        result = rig.materialize()
    assert not result.success
    [failure] = [
        event for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_FAILURE
    ]
    error = failure.step_failure_data.error
    assert error.cls_name == "Failure", error.cls_name
    assert failure.step_failure_data.user_failure_data is not None
    description = failure.step_failure_data.user_failure_data.description
    _expected_line(description, path)
    assert "\n" not in description


def test_no_duckdb_result_is_read_with_fetchone():
    """DuckDB 2 refuses ``register`` and relations on a connection while a result is unread,
    and ``fetchone()`` leaves it so (warehouse/results.py): single rows go through ``one_row``
    or ``scalar``. The PostgreSQL rate limiter's psycopg cursor is not DuckDB's."""
    package = Path(smsp_connector.__file__).parent
    offenders = [
        f"{path.relative_to(package.parent)}:{number}"
        for path in sorted(package.rglob("*.py"))
        if path.name not in {"results.py", "rate_limit.py"}
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if ".fetchone()" in line
    ]
    assert offenders == []
