"""Push benchmark: the provider's own add loop against this project's push, side by side.

Run by hand (not part of the test suite), from the repository root:

    .venv/bin/python benchmarks/push_bench.py [--numbers 10000] [--baseline-numbers N]
        [--workers 16,32,64] [--repeat 3] [--client-rates 200,195] [--rate-workers 16]
        [--shared-limit]

Input: a CSV of `--numbers` distinct valid French mobile numbers (a third in national form
`06…`, the others `+336…`), every other row already on the stop list. `smsp emulator` runs in
its own process with `--latency-ms 20`; before every run it is reset, its faults restored (the
reset clears them) and the on-list half seeded. Each run is one fresh worker process:

- `push_provider.py`, the baseline: the provider's Python example, one sequential
  `requests.post` per row (through one `requests.Session`), on the first `--baseline-numbers`
  rows once; its time is extrapolated linearly to `--numbers` when fewer are sent.
- `push_ours.py`: the Dagster asset `smsp/stop_list_additions` materialized with
  `max_workers` from `--workers`, each `--repeat` times (the worker counts alternate), into a
  fresh DuckDB file and a fresh `DAGSTER_HOME`.

Then the emulator is restarted with `--rate-limit 200` and ours runs with the client's
`rate_limit` set to each of `--client-rates`: its sustained add rate is read from the audit log
(`recorded_at` of the `applied` rows: (rows - 1) / (last - first)), the HTTP 429 answers from
`/_emulator/stats`; with `--shared-limit`, through the PostgreSQL limiter
(`SMSP_RATE_LIMIT_DSN`) of a throwaway server (`tests/postgres_server.py`). Every run is
checked (outcome counts at the emulator, the push summary and the audit log). Output is Markdown,
ready for docs/benchmarks.md; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import duckdb
from push_common import (
    API_KEY,
    Emulator,
    InputNumbers,
    emulator,
    make_numbers,
    parse_result,
    write_csv,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
LATENCY_MS = 20.0
PROVIDER_RATE = 200.0
SPEEDUP_TARGET = 20.0
RATE_TARGET = 0.97 * PROVIDER_RATE  # issue 20: 97% of the limit, no 429
RUN_TIMEOUT_SECONDS = 1800
SUMMARY_CHECKED = ("to_add", "added", "already_on_list", "failed", "rejected")


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mib: float
    add_outcomes: dict[str, int]
    """The emulator's answers to `stop-sms/add` during the run (`code:200`, `http:429`…)."""
    setup_seconds: float | None = None
    setup_peak_mib: float | None = None
    """Ours: peak RSS once imports and the Dagster instance are ready, before the run."""
    add_rate: float | None = None
    """Ours: adds per second from the first to the last `applied` row of the audit log."""


@dataclass
class Series:
    """The runs of one implementation and setting."""

    label: str
    runs: list[Run] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs)

    def listed(self, attribute: str, digits: int) -> str:
        return ", ".join(f"{getattr(run, attribute):.{digits}f}" for run in self.runs)

    def outcome(self, key: str) -> list[int]:
        return [run.add_outcomes.get(key, 0) for run in self.runs]


def run_worker(script: str, options: list[str], work: Path) -> dict[str, Any]:
    """One worker process in `work` (also its DAGSTER_HOME's parent); its result line."""
    env = {**os.environ, "DAGSTER_HOME": str(work / "dagster_home")}
    command = [sys.executable, str(BENCH_DIR / script), *options]
    spawned = time.time()
    done = subprocess.run(
        command, cwd=work, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} exited {done.returncode}: {done.stderr[-3000:]}")
    return {**parse_result(done.stdout), "spawned": spawned}


def expect(what: str, actual: object, expected: object) -> None:
    if actual != expected:
        raise RuntimeError(f"{what}: {actual!r}, expected {expected!r}")


def run_provider(server: Emulator, numbers: InputNumbers, csv_path: Path, limit: int) -> Run:
    server.prepare(numbers.on_list)
    with tempfile.TemporaryDirectory(prefix="push-provider-") as tmp:
        options = ["--base-url", server.base_url, "--api-key", API_KEY]
        options += ["--csv-path", str(csv_path), "--limit", str(limit)]
        result = run_worker("push_provider.py", options, Path(tmp))
    missing = numbers.missing_in_first(limit)
    outcomes = server.add_outcomes()
    expect("provider loop, add answers", outcomes, {"code:200": missing, "code:3": limit - missing})
    expect("provider loop, successes", result["succeeded"], missing)
    return Run(result["seconds"], result["peak_mib"], outcomes)


def run_ours(
    server: Emulator,
    numbers: InputNumbers,
    csv_path: Path,
    workers: int,
    rate_limit: float | None,
    rate_limit_dsn: str | None = None,
) -> Run:
    server.prepare(numbers.on_list)
    with tempfile.TemporaryDirectory(prefix="push-ours-") as tmp:
        work = Path(tmp)
        (work / "dagster_home").mkdir()
        shutil.copy(REPO / "dagster_home" / "dagster.yaml", work / "dagster_home")
        database = work / "warehouse.duckdb"
        options = ["--base-url", server.base_url, "--api-key", API_KEY, "--csv-path", str(csv_path)]
        options += ["--duckdb-path", str(database), "--max-workers", str(workers)]
        if rate_limit is not None:
            options += ["--rate-limit", str(rate_limit)]
        if rate_limit_dsn is not None:
            options += ["--rate-limit-dsn", rate_limit_dsn]
        result = run_worker("push_ours.py", options, work)
        check_audit(database, result["run_id"], numbers)
        add_rate = sustained_add_rate(database, result["run_id"])
    missing, on_list = len(numbers.missing), len(numbers.on_list)
    summary = {key: result["summary"][key] for key in SUMMARY_CHECKED}
    expected = {"to_add": missing, "added": missing, "already_on_list": on_list}
    expect("ours, summary", summary, {**expected, "failed": 0, "rejected": 0})
    outcomes = server.add_outcomes()
    answered = {key: count for key, count in outcomes.items() if key != "http:429"}
    expect("ours, add answers besides 429", answered, {"code:200": missing})
    expect("ours, stop list size", server.stats()["stop_list_size"], len(numbers.e164))
    return Run(
        seconds=result["seconds"],
        peak_mib=result["peak_mib"],
        add_outcomes=outcomes,
        setup_seconds=result["ready_at"] - result["spawned"],
        setup_peak_mib=result["setup_peak_mib"],
        add_rate=add_rate,
    )


def check_audit(database: Path, run_id: str, numbers: InputNumbers) -> None:
    """One final audit row per input row: the missing half applied, the other half on the list."""
    with duckdb.connect(str(database), read_only=True) as conn:
        rows = conn.execute(
            "SELECT outcome, count(*) FROM smsp.audit_latest WHERE run_id = ? GROUP BY outcome",
            [run_id],
        ).fetchall()
    expected = {"applied": len(numbers.missing), "already_on_list": len(numbers.on_list)}
    expect("ours, final audit outcomes", dict(rows), expected)


def sustained_add_rate(database: Path, run_id: str) -> float:
    """(applied rows - 1) / seconds from the first to the last `applied` audit row."""
    with duckdb.connect(str(database), read_only=True) as conn:
        found = conn.execute(
            "SELECT count(*), epoch_us(max(recorded_at)) - epoch_us(min(recorded_at)) "
            "FROM smsp.audit_log WHERE run_id = ? AND outcome = 'applied'",
            [run_id],
        ).fetchone()
    assert found is not None
    count, span_us = found
    return (count - 1) / (span_us / 1e6)


def progress(label: str, run: Run) -> None:
    rate = f", {run.add_rate:,.0f} adds/s" if run.add_rate is not None else ""
    print(
        f"  {label}: {run.seconds:.2f} s{rate}, {run.peak_mib:.0f} MiB, adds {run.add_outcomes}",
        file=sys.stderr,
    )


def bench_unthrottled(
    numbers: InputNumbers, csv_path: Path, baseline_numbers: int, workers: list[int], repeat: int
) -> tuple[Series, list[Series]]:
    baseline = Series(f"provider loop, {baseline_numbers:,} rows")
    ours = [Series(f"ours, max_workers={count}") for count in workers]
    with emulator(LATENCY_MS) as server:
        baseline.runs.append(run_provider(server, numbers, csv_path, baseline_numbers))
        progress(baseline.label, baseline.runs[-1])
        for _ in range(repeat):
            for count, series in zip(workers, ours, strict=True):
                series.runs.append(run_ours(server, numbers, csv_path, count, None))
                progress(series.label, series.runs[-1])
    return baseline, ours


def bench_rate_limited(
    numbers: InputNumbers,
    csv_path: Path,
    client_rates: list[float],
    workers: int,
    repeat: int,
    shared: bool,
) -> list[Series]:
    kind = ", shared (PostgreSQL)" if shared else ""
    limited = [
        Series(f"ours, rate_limit={rate:g}{kind}, max_workers={workers}") for rate in client_rates
    ]
    with ExitStack() as stack:
        server = stack.enter_context(emulator(LATENCY_MS, PROVIDER_RATE))
        dsn = None
        if shared:
            sys.path.insert(0, str(REPO))
            from tests.postgres_server import postgres_server

            dsn = stack.enter_context(postgres_server()).dsn
        for _ in range(repeat):
            for rate, series in zip(client_rates, limited, strict=True):
                series.runs.append(run_ours(server, numbers, csv_path, workers, rate, dsn))
                progress(series.label, series.runs[-1])
    return limited


def unthrottled_table(baseline: Series, ours: list[Series], scale: float, rows: int) -> list[str]:
    lines = [
        f"| implementation | runs (s) | median s | s for {rows:,} rows | add calls: 200 / 3 | "
        "add phase, adds/s | peak MiB | setup s | MiB after setup |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for series in [baseline, *ours]:
        extrapolated = series.median("seconds") * (scale if series is baseline else 1)
        answers = f"{series.outcome('code:200')[0]:,} / {series.outcome('code:3')[0]:,}"
        has_audit = series is not baseline
        rate = f"{series.median('add_rate'):,.0f}" if has_audit else "-"
        setup = f"{series.median('setup_seconds'):.2f}" if has_audit else "-"
        setup_mib = f"{series.median('setup_peak_mib'):.0f}" if has_audit else "-"
        lines.append(
            f"| {series.label} | {series.listed('seconds', 2)} | {series.median('seconds'):.2f} | "
            f"{extrapolated:.2f} | {answers} (each run) | {rate} | {series.median('peak_mib'):.0f} "
            f"| {setup} | {setup_mib} |"
        )
    return lines


def ratio_lines(baseline_seconds: float, ours: list[Series]) -> list[str]:
    lines = []
    for series in ours:
        seconds, setup = series.median("seconds"), series.median("setup_seconds")
        speedup = baseline_seconds / seconds
        lines.append(
            f"- Baseline / {series.label}: **x{speedup:.1f}** ({baseline_seconds:.1f} s / "
            f"{seconds:.2f} s; x{baseline_seconds / (seconds + setup):.1f} counting the worker's "
            f"{setup:.2f} s of imports and set-up); target x{SPEEDUP_TARGET:.0f}: "
            f"{verdict(speedup >= SPEEDUP_TARGET)}."
        )
    return lines


def rate_table(limited: list[Series]) -> list[str]:
    lines = [
        "| implementation | runs (s) | median s | add phase, adds/s (runs) | median adds/s | "
        "HTTP 429 (runs) | peak MiB |",
        "| --- | --- | ---: | --- | ---: | --- | ---: |",
    ]
    for series in limited:
        throttled = ", ".join(str(count) for count in series.outcome("http:429"))
        lines.append(
            f"| {series.label} | {series.listed('seconds', 2)} | {series.median('seconds'):.2f} | "
            f"{series.listed('add_rate', 1)} | {series.median('add_rate'):.1f} | {throttled} | "
            f"{series.median('peak_mib'):.0f} |"
        )
    return lines


def rate_target_lines(limited: list[Series]) -> list[str]:
    lines = []
    for series in limited:
        rate, throttled = series.median("add_rate"), sum(series.outcome("http:429"))
        lines.append(
            f"- {series.label}: median {rate:.1f} adds/s ({rate / PROVIDER_RATE:.1%} of "
            f"{PROVIDER_RATE:g}/s), {throttled} HTTP 429 over {len(series.runs)} run(s); target "
            f">= {RATE_TARGET:g} adds/s with zero 429: "
            f"{verdict(rate >= RATE_TARGET and throttled == 0)}."
        )
    return lines


def verdict(passed: bool) -> str:
    return "MET" if passed else "NOT MET"


def machine_lines(load_at_start: tuple[float, ...], code_at_start: str) -> list[str]:
    free = subprocess.run(["free", "-h"], capture_output=True, text=True, check=True).stdout
    memory = next(line.split()[1] for line in free.splitlines() if line.startswith("Mem:"))
    cpu = next(
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    )
    libraries = ", ".join(
        f"{name} {version(name)}" for name in ("dagster", "duckdb", "requests", "urllib3")
    )
    loads = (load_at_start, os.getloadavg())
    start, end = (" ".join(f"{value:.2f}" for value in load) for load in loads)
    code = code_at_end = code_version()
    if code_at_end != code_at_start:
        code = f"{code_at_start} at the start, {code_at_end} at the end"
    return [
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC (end of the run).",
        f"- Machine: {len(os.sched_getaffinity(0))} CPUs (`nproc`), `{cpu}`, {memory} RAM "
        f"(`free -h`), Linux {platform.release()}, CPython {platform.python_version()}; "
        f"load average {start} at the start, {end} at the end.",
        f"- Libraries: {libraries}. Ours: {code}.",
    ]


def code_version() -> str:
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    status = [*git, "status", "--porcelain", "--", "smsp_connector"]
    changed = subprocess.run(status, capture_output=True, text=True).stdout.strip()
    state = "with uncommitted changes" if changed else "no uncommitted change"
    return f"the work tree at commit {head.stdout.strip()} ({state} in smsp_connector/)"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--numbers", type=int, default=10_000, help="Rows of the input CSV.")
    parser.add_argument(
        "--baseline-numbers",
        type=int,
        help="Rows the provider loop sends (default: all); its time is scaled to --numbers.",
    )
    parser.add_argument("--workers", default="16,32,64", help="max_workers values for ours.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each setting of ours.")
    parser.add_argument("--client-rates", default="200,195", help="Client rate_limit values.")
    parser.add_argument("--rate-workers", type=int, default=16, help="max_workers when limited.")
    parser.add_argument(
        "--shared-limit", action="store_true", help="Limited runs through a PostgreSQL limiter."
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    load_at_start, code_at_start = os.getloadavg(), code_version()
    baseline_numbers = args.baseline_numbers or args.numbers
    if not 0 < baseline_numbers <= args.numbers:
        raise SystemExit("--baseline-numbers must be within 1..--numbers")
    workers = [int(count) for count in args.workers.split(",")]
    client_rates = [float(rate) for rate in args.client_rates.split(",")]
    numbers = make_numbers(args.numbers)
    with tempfile.TemporaryDirectory(prefix="push-bench-") as tmp:
        csv_path = Path(tmp) / "opt_outs.csv"
        write_csv(numbers, csv_path)
        baseline, ours = bench_unthrottled(
            numbers, csv_path, baseline_numbers, workers, args.repeat
        )
        limited = bench_rate_limited(
            numbers, csv_path, client_rates, args.rate_workers, args.repeat, args.shared_limit
        )
    scale = args.numbers / baseline_numbers
    baseline_seconds = baseline.median("seconds") * scale
    missing = len(numbers.missing)
    flags = f"--latency-ms {LATENCY_MS:g}"
    command = " ".join([".venv/bin/python", "benchmarks/push_bench.py", *sys.argv[1:]])
    sections = [
        [f"- Command: `{command}`", *machine_lines(load_at_start, code_at_start)],
        [f"### Unthrottled: {args.numbers:,} rows, {missing:,} to add, emulator `{flags}`"],
        unthrottled_table(baseline, ours, scale, args.numbers),
        ratio_lines(baseline_seconds, ours),
        [f"### Rate limited: {missing:,} to add, `{flags} --rate-limit {PROVIDER_RATE:g}`"],
        rate_table(limited),
        rate_target_lines(limited),
    ]
    print("\n\n".join("\n".join(section) for section in sections))


if __name__ == "__main__":
    main()
