"""Suppression exports on their own: formula neutralisation, hashing, atomic files."""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import resource
import signal
from contextlib import contextmanager
from datetime import UTC, datetime

import duckdb
import pandas as pd
import pytest

from smsp_connector.operations.extract import provider_hours
from smsp_connector.warehouse import (
    ExportForm,
    Warehouse,
    export_suppression_list,
    staging,
)

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def warehouse(tmp_path):
    return Warehouse.at(tmp_path / "warehouse.duckdb")


def _store(warehouse, numbers: list[str]) -> None:
    # Written straight to the table, as if someone exported after a failed schema check.
    frame = pd.DataFrame(
        {
            "stop_id": pd.array(range(1, len(numbers) + 1), dtype="Int64"),
            "phone_number": pd.Series(numbers, dtype=object),
            "created_at": pd.Series([WHEN] * len(numbers), dtype="datetime64[ns, UTC]"),
            "extracted_at": pd.Series([WHEN] * len(numbers), dtype="datetime64[ns, UTC]"),
        }
    )
    with warehouse.connect() as (conn, t):
        conn.register("frame", frame)
        conn.execute(f"CREATE OR REPLACE TABLE {t.stop_list} AS SELECT * FROM frame")


def _cells(path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [row[0] for row in list(csv.reader(handle))[1:]]


def test_cells_a_spreadsheet_would_execute_are_neutralised(warehouse, tmp_path):
    dangerous = ['=HYPERLINK("http://x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1"]
    _store(warehouse, ["+33612345678", *dangerous])

    result = export_suppression_list(warehouse, tmp_path / "exports")

    cells = _cells(result.csv_path)
    assert cells[0] == "+33612345678", "a well-formed E.164 number is left alone"
    assert cells[1:] == ["'" + value for value in dangerous]
    parquet = duckdb.sql(f"SELECT phone_number FROM '{result.parquet_path}'").fetchall()
    assert [row[0] for row in parquet][1:] == dangerous, "Parquet keeps the data as it is"


def test_hashed_export_holds_sha256_of_the_e164_text(warehouse, tmp_path):
    _store(warehouse, ["+33612345678", "+262692123456"])

    result = export_suppression_list(warehouse, tmp_path / "exports", form=ExportForm.SHA256)

    assert _cells(result.csv_path) == [
        hashlib.sha256(b"+33612345678").hexdigest(),
        hashlib.sha256(b"+262692123456").hexdigest(),
    ]
    assert result.row_count == 2
    assert "+33612345678" not in result.csv_path.read_text()


def test_a_failed_export_leaves_the_previous_file_whole(warehouse, tmp_path, monkeypatch):
    _store(warehouse, ["+33612345678"])
    first = export_suppression_list(warehouse, tmp_path / "exports")
    before = first.csv_path.read_bytes()
    with warehouse.connect() as (conn, tables):
        conn.execute(f"DROP TABLE {tables.stop_list}")

    with pytest.raises(duckdb.CatalogException):
        export_suppression_list(warehouse, tmp_path / "exports")

    assert first.csv_path.read_bytes() == before
    assert sorted(p.name for p in first.csv_path.parent.iterdir()) == [
        "suppression_list.csv",
        "suppression_list.parquet",
    ], "no partial file is left behind"


@contextmanager
def _file_size_limit(limit: int):
    """Writes past ``limit`` bytes fail (EFBIG) while inside: a disk that fills up mid-export."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_an_export_that_fails_mid_write_leaves_the_previous_file_whole(warehouse, tmp_path):
    _store(warehouse, ["+33612345678"])
    first = export_suppression_list(warehouse, tmp_path / "exports")
    before = first.csv_path.read_bytes()
    _store(warehouse, [f"+336{n:08d}" for n in range(50_000)])  # about 2 MB of CSV

    with _file_size_limit(256 * 1024), pytest.raises(duckdb.IOException):
        export_suppression_list(warehouse, tmp_path / "exports")

    assert first.csv_path.read_bytes() == before, "a CRM job still reads the whole old list"
    assert sorted(p.name for p in first.csv_path.parent.iterdir()) == [
        "suppression_list.csv",
        "suppression_list.parquet",
    ], "no partial file is left behind"


def test_a_schema_named_in_other_case_is_the_same_schema(tmp_path):
    # DuckDB identifiers are case-insensitive: SMSP is smsp, so the previous snapshot counts.
    _store(Warehouse.at(tmp_path / "w.duckdb", schema="smsp"), ["+33612345678", "+33698765432"])
    entries = tmp_path / "entries.json"
    entries.write_text(json.dumps([{"id": 1, "phoneNumber": "+33612345678", "createdAt": None}]))
    with staging(Warehouse.at(tmp_path / "w.duckdb", schema="SMSP")) as stage:
        stage.load(entries)
        summary = stage.stage(provider_hours(stage.local_hours()), WHEN)
    assert summary.previous_row_count == 2


HMAC_KEY = b"a shared secret of 32 bytes!!!!!"


def test_the_hmac_export_is_keyed_and_never_writes_the_key(warehouse, tmp_path):
    _store(warehouse, ["+33612345678", "+262692123456"])

    result = export_suppression_list(
        warehouse, tmp_path / "exports", form=ExportForm.HMAC_SHA256, hmac_key=HMAC_KEY
    )

    expected = [
        hmac.new(HMAC_KEY, number.encode(), hashlib.sha256).hexdigest()
        for number in ("+33612345678", "+262692123456")
    ]
    assert _cells(result.csv_path) == expected
    assert result.csv_path.name == "suppression_list_hmac_sha256.csv"
    parquet = duckdb.sql(f"SELECT phone_hmac_sha256 FROM '{result.parquet_path}'").fetchall()
    assert [row[0] for row in parquet] == expected
    assert expected[0] != hashlib.sha256(b"+33612345678").hexdigest()
    for path in [*result.csv_path.parent.iterdir(), tmp_path / "warehouse.duckdb"]:
        assert HMAC_KEY not in path.read_bytes(), path.name


@pytest.mark.parametrize("key", [None, b"", b"short"])
def test_the_hmac_export_refuses_a_missing_or_short_key(warehouse, tmp_path, key):
    _store(warehouse, ["+33612345678"])
    with pytest.raises(ValueError, match="at least 16 bytes"):
        export_suppression_list(
            warehouse, tmp_path / "exports", form=ExportForm.HMAC_SHA256, hmac_key=key
        )
