"""The opt-out ledger (``opt_out_ledger``) on a large account: the whole ledger and one number's
story, timed on a DuckDB file holding N numbers listed by the provider, N/2 of them pushed by
the connector first (a pending and an applied audit row each, as a push writes them) and N/100
deleted with consent (an audit row and a plan target each, then their departure observed).

    .venv/bin/python benchmarks/ledger_bench.py --entries 1000000 --repeat 3

Measures: the whole view derived (``whole``), one number's story (``one``), and the
incremental table ``ledger_episodes`` (``refresh_ledger``): its first refresh (every number
derived), a refresh with nothing changed, and one after 5,000 numbers got a new event; each
refresh on its own copy of the file.

Prints one line per measure: the median seconds of ``--repeat`` fresh processes and the peak
RSS of the process (MiB). Results in docs/benchmarks.md ("Opt-out ledger").
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from smsp_connector.warehouse import Warehouse  # noqa: E402
from smsp_connector.warehouse.ledger import refresh_ledger  # noqa: E402


def build(path: Path, entries: int) -> None:
    """The account's tables, filled with SQL (what runs would have written, without runs)."""
    warehouse = Warehouse.at(path)
    with warehouse.connect() as (conn, t):
        conn.execute(
            f"""
            INSERT INTO {t.history}
            SELECT TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i), 'refresh',
                   'entered', '+336' || lpad(i::VARCHAR, 8, '0'), i,
                   TIMESTAMPTZ '2025-12-31 00:00:00+00' + to_seconds(i),
                   TIMESTAMPTZ '2026-01-01 00:00:00+00', TIMESTAMPTZ '2026-01-01 00:00:00+00'
            FROM range({entries}) AS r(i);
            INSERT INTO {t.audit_log} (recorded_at, run_id, job, operation, dry_run, source_file,
                source_row, target, outcome, account, plan_id)
            SELECT TIMESTAMPTZ '2025-12-31 00:00:00+00' + to_seconds(i) + to_milliseconds(o),
                   'push', 'bench', 'add', false, 'crm.csv', i + 2,
                   '+336' || lpad(i::VARCHAR, 8, '0'),
                   CASE o WHEN 0 THEN 'pending' ELSE 'applied' END, 'smsp', 'plan-push'
            FROM range(0, {entries}, 2) AS r(i), range(2) AS s(o);
            INSERT INTO {t.plan_targets} (plan_id, position, source_row, target, stop_id,
                consent_at, consent_source)
            SELECT 'plan-delete', i, i, '+336' || lpad(i::VARCHAR, 8, '0'), i,
                   TIMESTAMPTZ '2026-02-01 00:00:00+00', 'web form'
            FROM range(0, {entries}, 100) AS r(i);
            INSERT INTO {t.audit_log} (recorded_at, run_id, job, operation, dry_run, source_file,
                source_row, target, outcome, account, plan_id)
            SELECT TIMESTAMPTZ '2026-02-02 00:00:00+00' + to_seconds(i), 'delete', 'bench',
                   'delete', false, 'consents.csv', i, '+336' || lpad(i::VARCHAR, 8, '0'),
                   'applied', 'smsp', 'plan-delete'
            FROM range(0, {entries}, 100) AS r(i);
            INSERT INTO {t.history}
            SELECT TIMESTAMPTZ '2026-02-03 00:00:00+00', 'refresh-2', 'left',
                   '+336' || lpad(i::VARCHAR, 8, '0'), i, NULL,
                   TIMESTAMPTZ '2026-01-01 00:00:00+00', TIMESTAMPTZ '2026-02-02 00:00:00+00'
            FROM range(0, {entries}, 100) AS r(i);
            CHECKPOINT;
            """
        )


MEASURES = ("whole", "one", "refresh_first", "refresh_nothing", "refresh_changed")
CHANGED = 5_000
"""Numbers given a new event before the incremental refresh measured."""


def measure_refresh(path: Path, what: str) -> dict[str, float]:
    """A refresh of ``ledger_episodes`` on a copy of the built file: the first, one with
    nothing changed, or one after :data:`CHANGED` numbers got an audit row."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "copy.duckdb"
        shutil.copy(path, copy)
        warehouse = Warehouse.at(copy)
        if what != "refresh_first":
            refresh_ledger(warehouse)
        if what == "refresh_changed":
            with warehouse.connect() as (conn, t):
                conn.execute(
                    f"INSERT INTO {t.audit_log} (recorded_at, run_id, job, operation, dry_run, "
                    "target, outcome) SELECT now(), 'later', 'bench', 'add', false, "
                    f"'+336' || lpad(i::VARCHAR, 8, '0'), 'applied' FROM range({CHANGED}) AS r(i)"
                )
        started = time.perf_counter()
        rows = refresh_ledger(warehouse)
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mib": peak, "rows": rows}


def measure(path: Path, what: str) -> dict[str, float]:
    """One measure in this (fresh) process."""
    if what.startswith("refresh"):
        return measure_refresh(path, what)
    warehouse = Warehouse.at(path)
    started = time.perf_counter()
    with warehouse.connect() as (conn, t):
        if what == "whole":
            (rows,) = conn.execute(
                f"SELECT count(*) FROM (SELECT * FROM {t.ledger} WHERE status <> '')"
            ).fetchone()
        else:
            rows = len(
                conn.execute(
                    f"SELECT * FROM {t.ledger} WHERE phone_number = ?", ["+33600000100"]
                ).fetchall()
            )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mib": peak, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--measure", choices=MEASURES)
    parser.add_argument("--path", type=Path)
    args = parser.parse_args()
    if args.measure:  # a child process: one measure on a built file
        print(json.dumps(measure(args.path, args.measure)))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ledger.duckdb"
        started = time.perf_counter()
        build(path, args.entries)
        print(f"built {args.entries:,} entries in {time.perf_counter() - started:.1f} s")
        for what in MEASURES:
            runs = [
                json.loads(
                    subprocess.run(
                        [sys.executable, __file__, "--measure", what, "--path", str(path)],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                )
                for _ in range(args.repeat)
            ]
            seconds = statistics.median(run["seconds"] for run in runs)
            peak = max(run["peak_mib"] for run in runs)
            each = ", ".join(f"{run['seconds']:.2f}" for run in runs)
            print(
                f"{what:15}  rows {runs[0]['rows']:>9,}  median {seconds:.2f} s  "
                f"peak {peak:.0f} MiB  (runs: {each})"
            )


if __name__ == "__main__":
    main()
