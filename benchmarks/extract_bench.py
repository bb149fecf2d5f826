"""Extraction benchmark: the whole STOP list from the API into a DuckDB file, side by side.

Run by hand (not part of the test suite), from the repository root:

    .venv/bin/python benchmarks/extract_bench.py [--sizes 10000,100000,1000000,5000000]
        [--repeat 3] [--implementations floor,naive,dlt,dlt-defaults,ours] [--dlt-python PATH]
        [--max-rss-mib M]

For each size, `smsp emulator --demo-size N` serves the list from its own process (its JSON body
is built and cached by one warm-up GET first, so every run downloads the same cached bytes).
Each run is one fresh worker process (`extract_naive.py`, `extract_dlt.py`, `extract_ours.py`)
with a fresh temporary directory and DuckDB file; runs alternate between the implementations so
that the machine's noise spreads over all of them. A worker times only the extraction (fetch,
parse, validate, persist); imports and setup are timed apart, from the spawn. Peak memory is
the worker's peak RSS (`ru_maxrss`). After each run the rows in the DuckDB file are counted.

Implementations: `floor` (the body streamed to a file, DuckDB's `read_json` with an explicit
column schema loading it: what any extraction at least pays; every ratio is also given against
it), `naive` (requests, pandas, pandera, DuckDB as the provider's examples lead a
user to write it), `dlt` (dlt's rest_api source, loading through JSONL files), `dlt-defaults`
(the same with dlt's default load format for DuckDB, SQL INSERT files) and `ours` (this
project's Dagster asset `smsp/stop_list`). The targets compare ours with `dlt`, the faster dlt.
dlt is not a dependency of the project: `--dlt-python` names an interpreter that has
`dlt[duckdb]` (by default this one, if it can import dlt). A worker whose RSS passes
`--max-rss-mib` is killed, and that implementation skips the rest of that size. Output is
Markdown, ready for docs/benchmarks.md; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from emulator_bench import API_KEY, emulator, timed_get
from extract_common import RESULT_PREFIX

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RUN_TIMEOUT_SECONDS = 1800
# Issue 20's targets for ours at 1,000,000 entries (and the floor's ratio at the largest size),
# issue 11's against dlt, and memory flat up to the largest size.
TARGET_SIZE = 1_000_000
TIME_VS_FLOOR_MAX = 1.5
TIME_VS_DLT_MAX = 0.25
PEAK_MAX_MIB = 300
PEAK_GROWTH_MAX = 1.10
# Linear: the seconds per 100k entries at the largest size stay within 20% of the next size's.
LINEAR_TOLERANCE = 1.2


@dataclass(frozen=True)
class Implementation:
    name: str
    script: str
    table: str  # where the rows land in the DuckDB file
    python: str | None  # None: cannot run here, see `missing`
    missing: str = ""
    env: dict[str, str] = field(default_factory=dict)  # added to the worker's environment


@dataclass(frozen=True)
class Run:
    setup_seconds: float
    setup_peak_mib: float
    extract_seconds: float
    peak_mib: float


@dataclass
class Cell:
    """The runs of one implementation at one size."""

    runs: list[Run] = field(default_factory=list)
    error: str = ""

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs)


class RunFailed(RuntimeError):
    pass


def implementations(
    names: Sequence[str], dlt_python: str | None, ours_root: Path
) -> list[Implementation]:
    no_dlt = "" if dlt_python else "no interpreter with dlt (see --dlt-python)"
    no_assets = "" if (ours_root / "assets" / "__init__.py").exists() else "no assets/ package"
    available = {
        "floor": Implementation("floor", "extract_floor.py", "stop_list", sys.executable),
        "naive": Implementation("naive", "extract_naive.py", "stop_list", sys.executable),
        "dlt": Implementation(
            "dlt",
            "extract_dlt.py",
            "smsp.stop_list",
            dlt_python,
            no_dlt,
            env={"EXTRACT_DLT_LOADER_FILE_FORMAT": "jsonl"},
        ),
        "dlt-defaults": Implementation(
            "dlt-defaults", "extract_dlt.py", "smsp.stop_list", dlt_python, no_dlt
        ),
        "ours": Implementation(
            "ours",
            "extract_ours.py",
            "smsp.stop_list",
            None if no_assets else sys.executable,
            no_assets,
            env={"PYTHONPATH": str(ours_root)},  # ahead of the venv's editable install
        ),
    }
    return [available[name] for name in names]


def default_dlt_python() -> str | None:
    return sys.executable if importlib.util.find_spec("dlt") else None


def worker_env(base_url: str, work: Path) -> dict[str, str]:
    """The worker's environment: everything points into its own temporary directory."""
    home = work / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {
        **os.environ,
        "SMSP_API_KEY": API_KEY,
        "SMSP_BASE_URL": base_url,
        "SMSP_DUCKDB_PATH": str(work / "warehouse.duckdb"),
        "SMSP_EXPORT_DIR": str(work / "exports"),
        "DAGSTER_HOME": str(home),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "DLT_DATA_DIR": str(work / "dlt"),
    }


def run_once(impl: Implementation, base_url: str, size: int, max_rss_mib: float) -> Run:
    """One extraction in a fresh worker process and a fresh directory; checks the row count."""
    assert impl.python is not None
    with tempfile.TemporaryDirectory(prefix=f"extract-{impl.name}-") as tmp:
        work = Path(tmp)
        database = work / "warehouse.duckdb"
        command = [impl.python, str(BENCH_DIR / impl.script), "--base-url", base_url]
        command += ["--api-key", API_KEY, "--duckdb-path", str(database), "--work-dir", tmp]
        env = {**worker_env(base_url, work), **impl.env}
        spawned = time.time()
        stdout = supervise(command, work, env, max_rss_mib)
        lines = [line for line in stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        result = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
        rows = row_count(impl.python, database, impl.table)
    if rows != size:
        raise RunFailed(f"{rows} rows in {impl.table}, expected {size}")
    return Run(
        setup_seconds=result["ready_at"] - spawned,
        setup_peak_mib=result["setup_peak_mib"],
        extract_seconds=result["extract_seconds"],
        peak_mib=result["peak_mib"],
    )


def supervise(command: list[str], work: Path, env: dict[str, str], max_rss_mib: float) -> str:
    """Run a worker to its end, or kill it past the time limit or the RSS cap; its stdout."""
    stdout_path, stderr_path = work / "stdout.txt", work / "stderr.txt"
    with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:
        process = subprocess.Popen(command, cwd=work, env=env, stdout=stdout, stderr=stderr)
        try:
            killed_because = watch(process, max_rss_mib)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
    if killed_because:
        raise RunFailed(killed_because)
    if process.returncode != 0:
        raise RunFailed(f"exit {process.returncode}: {stderr_path.read_text().strip()[-2000:]}")
    return stdout_path.read_text()


def watch(process: subprocess.Popen[bytes], max_rss_mib: float) -> str:
    """'' once the process has exited by itself, else why it has to be killed."""
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while process.poll() is None:
        rss = rss_mib(process.pid)
        if rss > max_rss_mib:
            return f"killed at {rss:.0f} MiB RSS (the cap is {max_rss_mib:.0f} MiB)"
        if time.monotonic() > deadline:
            return f"killed after {RUN_TIMEOUT_SECONDS} s"
        time.sleep(0.1)
    return ""


def rss_mib(pid: int) -> float:
    """Current RSS of a child (0 once it is a zombie: its status has no VmRSS line)."""
    found = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(found.group(1)) / 1024 if found else 0.0


def row_count(python: str, database: Path, table: str) -> int:
    """Rows in ``table``, counted by the worker's own interpreter: its DuckDB wrote the file,
    and a DuckDB reads only files of its own storage version or older (dlt's venv may have a
    newer DuckDB than the project's)."""
    probe = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print(c.execute(f'SELECT count(*) FROM {sys.argv[2]}').fetchone()[0])"
    )
    out = subprocess.run(
        [python, "-c", probe, str(database), table], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


def bench_size(
    size: int, impls: list[Implementation], repeat: int, max_rss_mib: float
) -> dict[str, Cell]:
    cells = {impl.name: Cell(error=impl.missing) for impl in impls}
    with emulator(demo_size=size) as server:
        first_byte, total, body = timed_get(f"{server.base_url}/stop-sms/list", {"apiKey": API_KEY})
        print(
            f"- {size:,} entries: emulator up in {server.startup_seconds:.1f} s; warm-up GET "
            f"{total:.2f} s (first byte {first_byte:.2f} s), body {body / 1e6:.1f} MB",
            file=sys.stderr,
        )
        for repetition in range(1, repeat + 1):
            for impl in impls:
                cell = cells[impl.name]
                if cell.error:
                    continue
                try:
                    cell.runs.append(run_once(impl, server.base_url, size, max_rss_mib))
                except RunFailed as exc:
                    cell.error = f"run {repetition} failed: {exc}"
                    print(f"  {impl.name}: {cell.error}", file=sys.stderr)
                    continue
                run = cell.runs[-1]
                print(
                    f"  run {repetition} {impl.name}: {run.extract_seconds:.2f} s, "
                    f"{run.peak_mib:.0f} MiB",
                    file=sys.stderr,
                )
    return cells


def machine_lines(dlt_python: str | None) -> list[str]:
    meminfo = Path("/proc/meminfo").read_text().split()
    cpu = next(
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    )
    libraries = ", ".join(
        f"{name} {version(name)}" for name in ("dagster", "pandas", "pandera", "duckdb", "requests")
    )
    lines = [
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        f"- Machine: {os.cpu_count()} CPUs (`{cpu}`), {int(meminfo[1]) / 2**20:.1f} GiB RAM, "
        f"Linux {platform.release()}, CPython {platform.python_version()}; load average "
        f"{' '.join(f'{load:.2f}' for load in os.getloadavg())} at the end.",
        f"- Project venv: {libraries}.",
    ]
    if dlt_python:
        probe = "import dlt, duckdb; print(dlt.__version__, duckdb.__version__)"
        out = subprocess.run(
            [dlt_python, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.split()
        lines.append(f"- dlt {out[0]} with duckdb {out[1]}, run by `{dlt_python}`.")
    return lines


def code_version(root: Path) -> str:
    """Which code `ours` ran: `root`, its commit, and whether the code differs from it."""
    git = ["git", "-C", str(root)]
    head = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    if head.returncode != 0:
        return f"the code in `{root}` (not a git work tree)"
    status = [*git, "status", "--porcelain", "--", "assets", "smsp_connector"]
    changed = subprocess.run(status, capture_output=True, text=True, check=True).stdout.strip()
    state = "with uncommitted changes" if changed else "no uncommitted change"
    return f"the code in `{root}` at commit {head.stdout.strip()} ({state} in its code)"


def results_table(results: dict[int, dict[str, Cell]]) -> list[str]:
    lines = [
        "| entries | implementation | median s | peak MiB | runs (s) | setup s | MiB after setup |",
        "| ---: | --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for size, cells in results.items():
        for name, cell in cells.items():
            if not cell.runs:
                lines.append(f"| {size:,} | {name} | - | - | no run (see below) | - | - |")
                continue
            runs = ", ".join(f"{run.extract_seconds:.2f}" for run in cell.runs)
            lines.append(
                f"| {size:,} | {name} | {cell.median('extract_seconds'):.2f} | "
                f"{cell.median('peak_mib'):.0f} | {runs} | {cell.median('setup_seconds'):.2f} | "
                f"{cell.median('setup_peak_mib'):.0f} |"
            )
    return lines


def ratio(cells: dict[str, Cell], attribute: str, numerator: str, denominator: str) -> str:
    """numerator / denominator for the median of `attribute`, or '-' when either did not run."""
    top, bottom = cells.get(numerator), cells.get(denominator)
    if top is None or bottom is None or not top.runs or not bottom.runs:
        return "-"
    return f"{top.median(attribute) / bottom.median(attribute):.2f}"


def ratio_table(results: dict[int, dict[str, Cell]], pairs: Sequence[tuple[str, str]]) -> list[str]:
    """Median time and peak as (numerator / denominator) ratios, size by size."""
    if not pairs:
        return []
    columns = [f"{what} {top}/{bottom}" for what in ("time", "peak") for top, bottom in pairs]
    lines = [
        "| entries | " + " | ".join(columns) + " |",
        "| ---: | " + " | ".join("---:" for _ in columns) + " |",
    ]
    for size, cells in results.items():
        figures = [
            ratio(cells, attribute, top, bottom)
            for attribute in ("extract_seconds", "peak_mib")
            for top, bottom in pairs
        ]
        lines.append(f"| {size:,} | {' | '.join(figures)} |")
    return lines


def ratio_tables(results: dict[int, dict[str, Cell]], names: Sequence[str]) -> list[list[str]]:
    """Every implementation against the floor, then ours against every other (left out when it
    is the first table again: floor and ours alone)."""
    against_floor = [(name, "floor") for name in names if "floor" in names and name != "floor"]
    ours_against = [("ours", name) for name in names if "ours" in names and name != "ours"]
    tables = [ratio_table(results, against_floor)]
    if ours_against != against_floor:
        tables.append(ratio_table(results, ours_against))
    return tables


def per_100k(results: dict[int, dict[str, Cell]], name: str) -> dict[int, float]:
    return {
        size: cells[name].median("extract_seconds") * 100_000 / size
        for size, cells in results.items()
        if cells[name].runs
    }


def linearity_table(results: dict[int, dict[str, Cell]], names: Sequence[str]) -> list[str]:
    sizes = list(results)
    lines = [
        "| implementation | " + " | ".join(f"s per 100k at {size:,}" for size in sizes) + " |",
        "| --- | " + " | ".join("---:" for _ in sizes) + " |",
    ]
    for name in names:
        rates = per_100k(results, name)
        cells = (f"{rates[size]:.2f}" if size in rates else "-" for size in sizes)
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return lines


def verdict(passed: bool) -> str:
    return "MET" if passed else "NOT MET"


def target_lines(results: dict[int, dict[str, Cell]]) -> list[str]:
    size = TARGET_SIZE if TARGET_SIZE in results else max(results)
    cells = results[size]
    if "ours" not in cells or not cells["ours"].runs:
        return [f"- Targets at {size:,} entries: not measured (ours did not run)."]
    ours = cells["ours"]
    seconds = ours.median("extract_seconds")
    lines = []
    for other, most in (("floor", TIME_VS_FLOOR_MAX), ("dlt", TIME_VS_DLT_MAX)):
        if cells.get(other) and cells[other].runs:
            times = seconds / cells[other].median("extract_seconds")
            lines.append(
                f"- Time at most x{most} {other}'s at {size:,}: {verdict(times <= most)} "
                f"(ours {seconds:.2f} s, x{times:.2f})."
            )
    peak = ours.median("peak_mib")
    lines.append(
        f"- Peak memory at most {PEAK_MAX_MIB} MiB at {size:,}: "
        f"{verdict(peak <= PEAK_MAX_MIB)} ({peak:.0f} MiB)."
    )
    largest = max(results)
    floor = results[largest].get("floor")
    if largest > size and results[largest]["ours"].runs and floor and floor.runs:
        times = results[largest]["ours"].median("extract_seconds") / floor.median("extract_seconds")
        lines.append(
            f"- Time at most x{TIME_VS_FLOOR_MAX} floor's at {largest:,}: "
            f"{verdict(times <= TIME_VS_FLOOR_MAX)} (x{times:.2f})."
        )
    if largest > size and results[largest]["ours"].runs:
        growth = results[largest]["ours"].median("peak_mib") / peak
        lines.append(
            f"- Peak at {largest:,} at most x{PEAK_GROWTH_MAX} the peak at {size:,} (flat): "
            f"{verdict(growth <= PEAK_GROWTH_MAX)} (x{growth:.2f})."
        )
    rates = per_100k(results, "ours")
    if len(rates) >= 2:
        previous, last = sorted(rates)[-2:]
        growth = rates[last] / rates[previous]
        lines.append(
            f"- Time linear in size: {verdict(growth <= LINEAR_TOLERANCE)} (seconds per 100k "
            f"entries: {rates[previous]:.2f} at {previous:,}, {rates[last]:.2f} at {last:,}; "
            f"x{growth:.2f}, tolerance x{LINEAR_TOLERANCE})."
        )
    return lines


def failure_lines(results: dict[int, dict[str, Cell]]) -> list[str]:
    return [
        f"- {name} at {size:,}: {cell.error}"
        for size, cells in results.items()
        for name, cell in cells.items()
        if cell.error
    ] or ["- No failed or skipped run."]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000,5000000", help="Stop list sizes.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs per size and implementation.")
    parser.add_argument(
        "--implementations",
        default="floor,naive,dlt,dlt-defaults,ours",
        help="Any of floor, naive, dlt, dlt-defaults, ours.",
    )
    parser.add_argument(
        "--ours-root",
        type=Path,
        default=REPO,
        help="The tree whose assets/ and smsp_connector/ ours runs (default: this repository; "
        "e.g. a `git archive` export of a commit while the work tree is mid-edit).",
    )
    parser.add_argument(
        "--max-rss-mib",
        type=float,
        default=6144,
        help="Kill a worker whose RSS passes this (protects the shared machine).",
    )
    parser.add_argument(
        "--dlt-python",
        default=default_dlt_python(),
        help="An interpreter with dlt[duckdb] (default: this one, if it has dlt).",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    impls = implementations(args.implementations.split(","), args.dlt_python, args.ours_root)
    results = {size: bench_size(size, impls, args.repeat, args.max_rss_mib) for size in sizes}
    names = [impl.name for impl in impls]
    command = " ".join(["python", "benchmarks/extract_bench.py", *sys.argv[1:]])
    sections = [
        [
            f"- Command: `{command}`",
            *machine_lines(args.dlt_python),
            f"- ours: {code_version(args.ours_root)}.",
        ],
        results_table(results),
        *ratio_tables(results, names),
        linearity_table(results, names),
        target_lines(results),
        failure_lines(results),
    ]
    print("\n\n".join("\n".join(section) for section in sections if section))


if __name__ == "__main__":
    main()
