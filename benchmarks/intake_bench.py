"""CSV intake at scale: `smsp push --dry-run` on messy marketing exports of 100k to 5M rows.

Each file is generated once into a temporary folder (kept between runs with `--work`): a French
CRM export with a `;` delimiter, Windows-1252 (the default) or UTF-8 with BOM, headers
`id;Nom;Prénom;Téléphone portable;Email;Ville;Inscrit le`, quoted names (some with a `;`
inside), numbers in every form a spreadsheet produces (`06 12 34 56 78`, `06.12.34.56.78`,
`06-12-34-56-78`, `+33 6 12 34 56 78`, `0033612345678`, `33612345678`, `="0612345678"`, 3%
overseas `0692 …` read as Réunion numbers), about 4% of values that are not numbers (empty,
`n/a`, `3.36E+10`, too short, letters), about 10% of numbers repeated from earlier rows (in
any form), and blank lines. `--typos SHARE` adds that share of rows holding a distinct
mistyped number (a national form one digit short or one too long, `06 12 34 56 7`), each
rejected after libphonenumber's full path (the common forms' quick path cannot decide it).

Every run is the real command line in a fresh process, `python -m smsp_connector.cli push
--dry-run FILE`, against `smsp emulator` (its own process, seeded with 5% of the file's
numbers) and a fresh DuckDB file. Time: wall clock of the process (interpreter start and
imports included). Memory: its peak RSS as `wait4` reports it (children included). The
result is checked: the command's exit status and the audit log's row count (one row per data
row of the file), and the `.rejected.csv` report's row count against the generator's own.

    .venv/bin/python benchmarks/intake_bench.py --rows 100000,1000000,5000000
    .venv/bin/python benchmarks/intake_bench.py --rows 100000 --code /tmp/baseline  # other code
    .venv/bin/python benchmarks/intake_bench.py --rows 1000000 --typos 0.05  # distinct junk
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from push_common import API_KEY, MOBILE_PREFIXES, emulator

REPO = Path(__file__).resolve().parents[1]
HEADER = ["id", "Nom", "Prénom", "Téléphone portable", "Email", "Ville", "Inscrit le"]
NAMES = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Lefèvre"]
FIRST = ["Jean", "Marie", "Chloé", "Léa", "Hugo", "Émile", "Zoé", "Noël", "Inès", "Loïc"]
CITIES = ["Paris", "Lyon", "Marseille", "Saint-Étienne", "Besançon", "Orléans", "Nîmes", "Sète"]
INVALID = ["", "n/a", "3.36123E+10", "0612", "inconnu", "06 12 34", "+999 123", "tel: abc"]
SEED_SHARE = 0.05


@dataclass(frozen=True)
class Generated:
    path: Path
    rows: int
    rejected: int
    seeded: list[str]


def national(index: int) -> str:
    """A French mobile number's nine national digits, in a range libphonenumber calls valid,
    distinct per index (below 1.3 x 10^8)."""
    prefix = MOBILE_PREFIXES[index % len(MOBILE_PREFIXES)]
    return f"{prefix}{(index // len(MOBILE_PREFIXES) * 7919) % 10_000_000:07d}"


def written(digits: str, rng: random.Random) -> str:
    pick = rng.random()
    pairs = " ".join([digits[0], *(digits[i : i + 2] for i in range(1, 9, 2))])
    if pick < 0.25:
        return "0" + pairs  # 06 12 34 56 78
    if pick < 0.40:
        return "0" + digits[0] + "." + ".".join(digits[i : i + 2] for i in range(1, 9, 2))
    if pick < 0.50:
        return "0" + digits[0] + "-" + "-".join(digits[i : i + 2] for i in range(1, 9, 2))
    if pick < 0.65:
        return "+33 " + pairs
    if pick < 0.75:
        return "+33" + digits
    if pick < 0.82:
        return "0033" + digits
    if pick < 0.88:
        return "33" + digits
    if pick < 0.92:
        return '="0' + digits + '"'
    if pick < 0.95:
        return "0692 " + digits[3:5] + " " + digits[5:7] + " " + digits[7:9]  # Réunion
    return "0" + digits


def mistyped(digits: str, rng: random.Random) -> str:
    """A French number in national form with its last digit dropped or one digit added, in
    pairs: no region of France's numbering plan has such a number (nine national digits)."""
    typed = "0" + (digits[:-1] if rng.random() < 0.5 else digits + digits[-1])
    return " ".join(typed[i : i + 2] for i in range(0, len(typed), 2))


def generate(
    folder: Path, rows: int, encoding: str, seed: int = 20261124, typos: float = 0.0
) -> Generated:
    """The messy export of ``rows`` data rows (cached in ``folder`` with its summary)."""
    suffix = f"_typos{typos:g}" if typos else ""
    path = folder / f"crm_{rows}_{encoding.replace('-', '')}{suffix}.csv"
    summary = path.with_suffix(".json")
    if path.exists() and summary.exists():
        info = json.loads(summary.read_text())
        return Generated(path, rows, info["rejected"], info["seeded"])
    rng = random.Random(seed)
    rejected = 0
    seen: list[str] = []
    seeded: list[str] = []
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding=encoding, newline="", errors="strict") as stream:
        writer = csv.writer(stream, delimiter=";", lineterminator="\r\n")
        writer.writerow(HEADER)
        for row in range(rows):
            pick = rng.random()
            if pick < 0.04:
                phone = rng.choice(INVALID)
                rejected += 1
            elif pick < 0.04 + typos:
                phone = mistyped(national(row), rng)
                rejected += 1
            elif pick < 0.14 + typos and seen:
                phone = written(rng.choice(seen), rng)  # the same number, maybe another form
            else:
                digits = national(row)
                seen.append(digits)
                phone = written(digits, rng)
                if rng.random() < SEED_SHARE:
                    seeded.append("+33" + digits)
            name = rng.choice(NAMES)
            if rng.random() < 0.02:
                name += "; " + rng.choice(NAMES)  # a delimiter inside a quoted field
            writer.writerow(
                [
                    row + 1,
                    name,
                    rng.choice(FIRST),
                    phone,
                    f"client{row}@exemple.fr",
                    rng.choice(CITIES),
                    f"2024-{1 + row % 12:02d}-{1 + row % 28:02d}",
                ]
            )
            if rng.random() < 0.001:
                stream.write("\r\n")  # a blank line: counted in row numbers, not data
    # Réunion numbers built from a mainland number's digits are valid Réunion mobiles
    # only when their digits fall in its ranges; the rejected count is read back below.
    partial.replace(path)
    summary.write_text(json.dumps({"rejected": rejected, "seeded": seeded}))
    return Generated(path, rows, rejected, seeded)


def run_push(file: Generated, base_url: str, work: Path, code: Path | None) -> dict[str, object]:
    database = work / f"warehouse-{file.rows}-{time.time_ns()}.duckdb"
    env = {
        **os.environ,
        "SMSP_API_KEY": API_KEY,
        "SMSP_BASE_URL": base_url,
        "SMSP_DUCKDB_PATH": str(database),
        "SMSP_RATE_LIMIT": "1000",
        "COLUMNS": "120",
    }
    if code is not None:
        env["PYTHONPATH"] = str(code)
    command = [sys.executable, "-m", "smsp_connector.cli", "push", "--dry-run", str(file.path)]
    started = time.perf_counter()
    # From the work folder: `-m` puts the current folder first on sys.path, before PYTHONPATH.
    process = subprocess.Popen(
        command, env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stdout, stderr = process.communicate()
    # communicate() has reaped the child: its rusage is in RUSAGE_CHILDREN, as a maximum over
    # every child so far; each run is measured in its own measuring process for that reason.
    seconds = time.perf_counter() - started
    if process.returncode not in (0, 3):
        raise RuntimeError(f"exit {process.returncode}:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    with duckdb.connect(str(database), read_only=True) as conn:
        audit_rows = conn.execute("SELECT count(*) FROM smsp.audit_log").fetchone()[0]
        rejections = conn.execute("SELECT count(*) FROM smsp.input_rejections").fetchone()[0]
    database.unlink()
    report = file.path.with_name(file.path.stem + ".rejected.csv")
    with report.open(encoding="utf-8") as stream:
        report_rows = sum(1 for _ in csv.reader(stream)) - 1
    return {
        "seconds": seconds,
        "audit_rows": audit_rows,
        "rejections": rejections,
        "report_rows": report_rows,
        "stderr_tail": stderr[-400:],
    }


def measure(file: Generated, base_url: str, work: Path, code: Path | None) -> dict[str, object]:
    """One run in a fresh measuring process, so that RUSAGE_CHILDREN is this run's alone."""
    script = (
        "import json, resource, sys; sys.path.insert(0, sys.argv[1]); import intake_bench as b;"
        "from pathlib import Path; f = b.Generated(Path(sys.argv[2]), int(sys.argv[3]), "
        "int(sys.argv[4]), []); r = b.run_push(f, sys.argv[5], Path(sys.argv[6]), "
        "Path(sys.argv[7]) if sys.argv[7] else None);"
        "r['peak_mib'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024;"
        "print('INTAKE-RESULT ' + json.dumps(r))"
    )
    arguments = [str(Path(__file__).resolve().parent), str(file.path), str(file.rows)]
    arguments += [str(file.rejected), base_url, str(work), str(code or "")]
    done = subprocess.run(
        [sys.executable, "-c", script, *arguments], capture_output=True, text=True, check=True
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("INTAKE-RESULT "))
    return json.loads(line.removeprefix("INTAKE-RESULT "))


FLOOR_MEASURE = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=True)
seconds = time.perf_counter() - started
line = next(x for x in done.stdout.splitlines() if x.startswith("FLOOR-RESULT "))
counts = json.loads(line.removeprefix("FLOOR-RESULT "))
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print("INTAKE-RESULT " + json.dumps({"seconds": seconds, "peak_mib": peak, "counts": counts}))
"""


def measure_floor(file: Generated, work: Path) -> dict[str, object]:
    """`intake_floor.py` on the same file, in a fresh measuring process (see :func:`measure`)."""
    database = work / f"floor-{file.rows}-{time.time_ns()}.duckdb"
    floor = Path(__file__).resolve().parent / "intake_floor.py"
    command = [sys.executable, "-c", FLOOR_MEASURE, sys.executable, str(floor)]
    done = subprocess.run(
        [*command, str(file.path), str(database)], capture_output=True, text=True, check=True
    )
    database.unlink()
    database.with_suffix(".rejected.csv").unlink()
    line = next(x for x in done.stdout.splitlines() if x.startswith("INTAKE-RESULT "))
    return json.loads(line.removeprefix("INTAKE-RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="100000,1000000,5000000")
    parser.add_argument("--runs", type=int, default=1, help="Runs per size (the median kept).")
    parser.add_argument("--encoding", default="cp1252", choices=["cp1252", "utf-8-sig"])
    parser.add_argument("--work", type=Path, help="Folder for the files (default: a temp one).")
    parser.add_argument("--code", type=Path, help="PYTHONPATH of another smsp_connector.")
    parser.add_argument(
        "--floor", action="store_true", help="Also run intake_floor.py, alternating with ours."
    )
    parser.add_argument(
        "--typos", type=float, default=0.0, help="Share of rows holding a distinct mistyped number."
    )
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="intake-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    sizes = [int(value) for value in args.rows.split(",")]
    print(f"files in {work}; {platform.python_version()}, load {os.getloadavg()}", flush=True)
    results = []
    for rows in sizes:
        started = time.perf_counter()
        file = generate(work, rows, args.encoding, typos=args.typos)
        megabytes = file.path.stat().st_size / 1e6
        print(f"{rows:,} rows: {megabytes:.0f} MB ({time.perf_counter() - started:.0f} s)")
        with emulator(0) as server:
            runs, floors = [], []
            for _ in range(args.runs):
                if args.floor:
                    floor = measure_floor(file, work)
                    floors.append(floor)
                    print(
                        f"  floor {floor['seconds']:.2f} s, {floor['peak_mib']:.0f} MiB peak, "
                        f"{floor['counts']}",
                        flush=True,
                    )
                server.prepare(file.seeded)
                result = measure(file, server.base_url, work, args.code)
                if result["audit_rows"] < rows or result["report_rows"] != result["rejections"]:
                    raise RuntimeError(f"inconsistent run: {result}")
                runs.append(result)
                print(
                    f"  {result['seconds']:.2f} s, {result['peak_mib']:.0f} MiB peak, "
                    f"{result['audit_rows']:,} audit rows, {result['rejections']:,} rejected "
                    f"(generated {file.rejected:,} not numbers)",
                    flush=True,
                )
        runs.sort(key=lambda r: r["seconds"])
        median = runs[len(runs) // 2]
        if floors:
            floors.sort(key=lambda r: r["seconds"])
            floor_median = floors[len(floors) // 2]
            median = {
                **median,
                "floor_seconds": floor_median["seconds"],
                "floor_peak_mib": max(f["peak_mib"] for f in floors),
                "floor_invalid": floor_median["counts"].get("invalid", 0),
            }
        results.append({"rows": rows, "megabytes": megabytes, **median})
    print("\n| rows | file MB | s | peak MiB | s per 100k rows | rejected |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        per = r["seconds"] / r["rows"] * 100_000
        print(
            f"| {r['rows']:,} | {r['megabytes']:.0f} | {r['seconds']:.2f} | "
            f"{r['peak_mib']:.0f} | {per:.2f} | {r['rejections']:,} |"
        )
    if any("floor_seconds" in r for r in results):
        print("\n| rows | floor s | ours s | ours/floor | floor MiB | ours MiB | floor rejected |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in results:
            print(
                f"| {r['rows']:,} | {r['floor_seconds']:.2f} | {r['seconds']:.2f} | "
                f"x{r['seconds'] / r['floor_seconds']:.2f} | {r['floor_peak_mib']:.0f} | "
                f"{r['peak_mib']:.0f} | {r['floor_invalid']:,} |"
            )
    print(json.dumps([{k: v for k, v in r.items() if k != "stderr_tail"} for r in results]))


if __name__ == "__main__":
    main()
