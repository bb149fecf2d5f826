"""What the intake's steps cost at their floor, each alone: the budget of a rewrite.

    .venv/bin/python benchmarks/intake_costs.py [--rows 1000000] [--full-path-only]

Three probes, one line each (seconds, or µs a value):

- appending ``--rows`` rows of (row, E.164 number) to a table of ``audit_log``'s 16 columns,
  10 of them one value per run (parameters), on a DuckDB file: in 65,536-row slices registered
  from pandas, through a temporary table four slices at a time (what ``AuditWriter.record``
  does), and, for the scale, the same rows into a 2-column table and into an in-memory one;
- ``pd.factorize`` of ``--rows`` distinct strings (the intake factorizes its raw values, then
  its E.164 numbers);
- ``normalize_phone_number`` per value, for a valid number and for values it rejects (the
  full path, which the DuckDB forms path leaves undecided values to), with how many times it
  parsed text for each (``PYTHONPATH=OTHER/`` measures another version of the code).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import phonenumbers

from smsp_connector.intake.phone_numbers import normalize_phone_number

AUDIT_COLUMNS = """(
    recorded_at TIMESTAMPTZ NOT NULL, run_id VARCHAR NOT NULL, job VARCHAR NOT NULL,
    operation VARCHAR NOT NULL, dry_run BOOLEAN NOT NULL, source_file VARCHAR,
    source_row BIGINT, target VARCHAR NOT NULL, outcome VARCHAR NOT NULL, detail VARCHAR,
    stop_id BIGINT, provider_code INTEGER, provider_message VARCHAR, attempts INTEGER,
    account VARCHAR, plan_id VARCHAR)"""
SHARED = {
    "recorded_at": datetime.now(UTC), "run_id": "run-1", "job": "push", "operation": "add",
    "dry_run": True, "source_file": "/data/export.csv", "outcome": "dry_run", "detail": None,
    "account": "main", "plan_id": "f" * 64,
}  # fmt: skip
NARROW = "(source_row BIGINT, target VARCHAR)"
SLICE = 65_536


def append_probes(rows: int, folder: Path) -> dict[str, float]:
    numbers = np.array([f"+336{n:08d}" for n in range(rows)], dtype=object)
    positions = np.arange(2, rows + 2, dtype="int64")
    shared = ", ".join(f"? AS {name}" for name in SHARED)
    parameters = list(SHARED.values())
    results = {}
    for label, database, columns in (
        ("audit_log, 65,536-row slices", folder / "slices.duckdb", AUDIT_COLUMNS),
        ("audit_log, through a temporary table", folder / "staged.duckdb", AUDIT_COLUMNS),
        ("2 columns, 65,536-row slices", folder / "narrow.duckdb", NARROW),
        ("audit_log in memory, slices", ":memory:", AUDIT_COLUMNS),
    ):  # fmt: skip
        conn = duckdb.connect(str(database), config={"checkpoint_threshold": "1GB"})
        conn.execute(f"CREATE TABLE log {columns}")
        narrow = "2 columns" in label
        select = "source_row, target" + ("" if narrow else f", {shared}")
        values = [] if narrow else parameters
        started = time.perf_counter()
        if "temporary" in label:
            for group in range(0, rows, 4 * SLICE):
                conn.execute(
                    "CREATE OR REPLACE TEMP TABLE staged (source_row BIGINT, target VARCHAR)"
                )
                for start in range(group, min(group + 4 * SLICE, rows), SLICE):
                    _register(conn, positions, numbers, start)
                    conn.execute("INSERT INTO staged SELECT source_row, target FROM batch")
                conn.execute(f"INSERT INTO log BY NAME SELECT {select} FROM staged", values)
        else:
            for start in range(0, rows, SLICE):
                _register(conn, positions, numbers, start)
                conn.execute(f"INSERT INTO log BY NAME SELECT {select} FROM batch", values)
        conn.close()  # the last close checkpoints: part of the cost
        results[label] = time.perf_counter() - started
    return results


def _register(conn, positions: np.ndarray, numbers: np.ndarray, start: int) -> None:
    piece = slice(start, start + SLICE)
    conn.register("batch", pd.DataFrame({"source_row": positions[piece], "target": numbers[piece]}))


def factorize_seconds(rows: int) -> float:
    rng = np.random.default_rng(1)
    values = np.array([f"+336{n:08d}" for n in rng.permutation(rows)], dtype=object)
    started = time.perf_counter()
    pd.factorize(values)
    return time.perf_counter() - started


def full_path_microseconds(repeat: int = 300) -> dict[str, tuple[float, float]]:
    """µs a value and libphonenumber parses a value, for each kind of value."""
    kinds = {
        "valid (0612345678)": "0612345678",
        "valid overseas (0692 12 34 56)": "0692 12 34 56",
        "not valid (0700000001)": "0700000001",
        "one digit short (06 12 34 56 7)": "06 12 34 56 7",
        "one digit too many (06 12 34 56 78 9)": "06 12 34 56 78 9",
        "one digit short (+33 6 12 34 56 7)": "+33 6 12 34 56 7",
        "too short (12345)": "12345",
    }
    parse, calls = phonenumbers.parse, [0]

    def counted(*args: object, **kwargs: object) -> phonenumbers.PhoneNumber:
        calls[0] += 1
        return parse(*args, **kwargs)

    results = {}
    for label, value in kinds.items():
        phonenumbers.parse, calls[0] = counted, 0
        normalize_phone_number(value, "FR")  # also warms the caches up: not timed
        phonenumbers.parse = parse
        started = time.perf_counter()
        for _ in range(repeat):
            normalize_phone_number(value, "FR")
        seconds = time.perf_counter() - started
        results[label] = (seconds / repeat * 1e6, calls[0])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--full-path-only", action="store_true", help="Only the last probe.")
    args = parser.parse_args()
    if not args.full_path_only:
        with tempfile.TemporaryDirectory(prefix="intake-costs-") as folder:
            for label, seconds in append_probes(args.rows, Path(folder)).items():
                print(f"append {args.rows:,} rows, {label}: {seconds:.2f} s")
        factorized = factorize_seconds(args.rows)
        print(f"pd.factorize of {args.rows:,} distinct strings: {factorized:.2f} s")
    for label, (micros, parses) in full_path_microseconds().items():
        print(f"normalize_phone_number, {label}: {micros:.0f} µs, {parses:.0f} parses")


if __name__ == "__main__":
    main()
