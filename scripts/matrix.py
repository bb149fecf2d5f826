"""`make test-matrix`: the wheel installed as users install it, in fresh virtualenvs.

Builds the wheel once from the working tree (a copy of its tracked and untracked, not ignored
files, so that nothing stale in ``build/`` slips in), then for each cell:

1. a fresh virtualenv outside the repository (``uv venv --seed``: pip is in it, as in a
   ``python -m venv`` one, for the README's ``pip install --editable .`` and ``pip check``);
2. ``uv pip install`` of ``smsp-connector[<the README's extras>]`` from the wheel, its own
   requirements repeated as direct requirements (uv counts a wheel's requirements as transitive,
   and ``--resolution lowest-direct`` lowers only direct ones), and the test tools pinned to the
   versions of this environment (so that the lowest resolution does not drag pytest down);
3. ``uv pip check``, and the versions that resolved; in the lowest cell, every direct
   requirement must have resolved to its declared lower bound (a bound that another requirement
   lifts is not the version tested, and fails the cell);
4. ``tests/test_user_path.py``: the README's "Your own project, step by step", command by
   command, in subprocesses of the cell's binaries;
5. the suite's tests but the slow ones and those that need this repository's own files (marked
   ``repo``), against the installed wheel, from a copy of ``tests/`` outside the repository.

Each cell's folder is removed when it passes and kept (its path printed) when it fails. The cells
run one after the other; the report lists each cell's versions, wall time and result, and the
exit status is 1 when a cell failed.

    python scripts/matrix.py                          # every cell
    python scripts/matrix.py --cells newest-3.13,lowest-3.11
    python scripts/matrix.py --list                   # the cells and their interpreters

Interpreters: ``SMSP_MATRIX_PYTHON_3_13`` (and so on) when set, else the newest pyenv build of
that version, else ``python3.13`` on ``PATH`` (pyenv shims that cannot run it are skipped), else
what ``uv python find`` finds. Nothing is downloaded but packages from the package index
(``UV_PYTHON_DOWNLOADS=never``).
"""

from __future__ import annotations

import argparse
import email.parser
import glob
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "smsp-connector"
USER_PATH_TEST = "tests/test_user_path.py"
README_SECTION = "## Your own project, step by step"
REPORTED = ("duckdb", "dagster", "pandas", "pandera", "numpy")
"""The distributions whose resolved versions each cell reports."""
CELL_TIMEOUT = 1800
"""Seconds for one pytest command of a cell: a hung cell fails rather than holding CI."""
NOT_TEST_TOOLS = {"ruff", "playwright", "mutmut", "moto", "flask", "flask-cors"}
"""`dev` requirements a cell does not need: lint, the UI test's browser driver (test_ui.py
is slow and imports Playwright inside its tests, which a cell does not run), mutation
testing (make mutation), whose click>=8.4.2 and rich>=14.2.0 (through textual) would lift the
lowest cell's bounds (tests/test_matrix_tools.py), and moto's S3 server (flask needs
click>=8.1.3), which only the slow object-store tests start."""
IMPORTED_BY_TESTS = ("hypothesis",)
"""Imported by the tests but required by a test tool only (schemathesis): pinned as well."""


@dataclass(frozen=True)
class Cell:
    name: str
    python: str
    resolution: str
    """uv's --resolution: ``highest`` or ``lowest-direct``."""
    extras: tuple[str, ...] = ()
    """Extras installed beside the README's."""
    extra_tests: tuple[str, ...] = ()
    """Slow test files this cell runs besides the user's path."""
    about: str = ""


CELLS = {
    cell.name: cell
    for cell in (
        Cell("newest-3.13", "3.13", "highest", about="the newest allowed dependencies"),
        Cell(
            "lowest-3.11",
            "3.11",
            "lowest-direct",
            about="every direct requirement at its lower bound (pyproject.toml)",
        ),
        Cell("newest-3.12", "3.12", "highest", about="the newest allowed dependencies"),
        Cell(
            "ducklake-3.12",
            "3.12",
            "highest",
            extras=("ducklake",),
            # DuckLake with a PostgreSQL catalog (started by the tests; skipped without Debian's
            # postgresql package, and failed under CI=true).
            extra_tests=("tests/test_ducklake.py",),
            about="the ducklake extra's pinned duckdb and extensions",
        ),
    )
}


@dataclass
class Result:
    cell: Cell
    ok: bool = False
    versions: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    folder: Path | None = None


def log(message: str) -> None:
    print(f"[matrix] {message}", flush=True)


def run(
    command: list[str | Path], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a command, its output streamed to this one's; returns it (never raises)."""
    log("$ " + " ".join(str(part) for part in command))
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, check=False, timeout=CELL_TIMEOUT
    )


def captured(command: list[str | Path], *, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"{command[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


# -- Interpreters, uv, the wheel -------------------------------------------------------------


def uv_binary() -> str:
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        raise SystemExit("uv is not installed: `make install` puts it in .venv (the dev extra)")
    return found


def uv_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def runs(python: str) -> bool:
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print(sys.version)"],
            capture_output=True,
            check=False,
            timeout=60,
        )
    except OSError:
        return False
    return done.returncode == 0


def find_python(version: str) -> str | None:
    override = os.environ.get("SMSP_MATRIX_PYTHON_" + version.replace(".", "_"))
    if override:
        return override
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    if shutil.which("pyenv"):
        roots.insert(0, subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout)
    for root in filter(None, (root.strip() for root in roots)):
        builds = glob.glob(f"{root}/versions/{version}.*/bin/python{version}")
        builds.sort(key=lambda path: [int(n) for n in re.findall(r"\d+", Path(path).parts[-3])])
        for build in reversed(builds):
            if runs(build):
                return build
    on_path = shutil.which(f"python{version}")
    if on_path and runs(on_path):
        return on_path
    done = subprocess.run(
        [uv_binary(), "python", "find", version],
        capture_output=True,
        text=True,
        env=uv_env(),
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def build_wheel(work: Path) -> Path:
    """The wheel of the working tree: its files as git sees them (tracked or untracked, and
    not ignored), copied to ``work`` and built there."""
    source = work / "source"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        origin = ROOT / name
        if origin.is_file():  # a tracked file deleted in the working tree is left out
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, source / name)
    out = work / "wheel"
    command = [uv_binary(), "build", "--wheel", "--out-dir", str(out), str(source)]
    log("$ " + " ".join(command))
    done = subprocess.run(command, env=uv_env(), capture_output=True, text=True, check=False)
    if done.returncode:  # the build's chatter only when it failed
        raise SystemExit(f"the wheel did not build:\n{done.stdout}{done.stderr}")
    [wheel] = out.glob("smsp_connector-*.whl")
    return wheel


def wheel_requirements(wheel: Path) -> tuple[str, list[Requirement]]:
    """The wheel's name and its Requires-Dist."""
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(name).decode())
    return metadata["Name"], [Requirement(line) for line in metadata.get_all("Requires-Dist")]


def for_extras(requirements: list[Requirement], extras: set[str]) -> list[Requirement]:
    """The requirements that apply with these extras (the base ones included)."""
    chosen = []
    for requirement in requirements:
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras | {""}):
            chosen.append(requirement)
    return chosen


def without_extra_marker(requirement: Requirement) -> str:
    """The requirement as a direct one: its ``extra ==`` marker dropped (no other markers are
    used by this package; one would be kept)."""
    text = str(requirement)
    base, _, marker = text.partition(";")
    kept = [part for part in re.split(r"\s+and\s+", marker) if part and "extra" not in part]
    return base.strip() + (f"; {' and '.join(p.strip() for p in kept)}" if kept else "")


def readme_extras() -> tuple[str, ...]:
    """The extras of the README's ``pip install 'smsp-connector[...]'`` in its step-by-step
    section: the cells install what the README tells users to install."""
    text = (ROOT / "README.md").read_text()
    start = text.find(README_SECTION)
    if start < 0:
        raise SystemExit(f"README.md has no section {README_SECTION!r}")
    found = re.search(r"pip install '?smsp-connector\[([a-z,]+)\]'?", text[start:])
    if not found:
        raise SystemExit(f"README.md's {README_SECTION!r} installs no smsp-connector extras")
    return tuple(found.group(1).split(","))


def test_tools(requirements: list[Requirement], own: str, installed: set[str]) -> list[str]:
    """The `dev` extra's test tools pinned to this environment's versions (a cell tests the
    library's dependencies, not pytest's), with the tools the tests import themselves. Dagster's
    libraries follow the cell's Dagster (they are released in step), and the package's own
    extras are expanded but for those the cell installs, and ``ducklake`` and ``s3``, which pin
    DuckDB: that is a cell's choice."""
    tools = [f"{name}=={importlib.metadata.version(name)}" for name in IMPORTED_BY_TESTS]
    for requirement in for_extras(requirements, {"dev"}):
        if requirement.marker is None:
            continue  # a base requirement, not the dev extra's
        if requirement.name == own:
            nested = set(requirement.extras) - installed - {"ducklake", "s3", "dev"}
            for inner in for_extras(requirements, nested):
                if inner.marker is not None and inner.name != own:
                    tools.extend(_pinned(inner))
        elif requirement.name not in NOT_TEST_TOOLS:
            tools.extend(_pinned(requirement))
    return sorted(set(tools))


def _pinned(requirement: Requirement) -> list[str]:
    if requirement.name.startswith("dagster"):
        return [without_extra_marker(requirement)]
    pins = [f"{requirement.name}=={importlib.metadata.version(requirement.name)}"]
    for extra in requirement.extras:  # psycopg[binary,pool]: psycopg-binary and psycopg-pool
        for name in (f"{requirement.name}-{extra}", f"{requirement.name}_{extra}"):
            try:
                pins.append(f"{name}=={importlib.metadata.version(name)}")
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return pins


# -- The suite's copy ------------------------------------------------------------------------


def pytest_ini() -> str:
    """pyproject.toml's pytest settings, as the copy's pytest.ini."""
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    lines = ["[pytest]"]
    for key, value in options.items():
        if key == "testpaths":
            continue
        if isinstance(value, list):
            lines.append(f"{key} =")
            lines.extend(f"    {item}" for item in value)
        else:
            lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


def copy_suite(folder: Path) -> Path:
    """tests/, the README (the user's path reads its commands there) and the instance settings
    (the tests copy them), in a folder of their own: pytest imports the installed wheel, since
    nothing there is called smsp_connector."""
    suite = folder / "suite"
    shutil.copytree(
        ROOT / "tests", suite / "tests", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    shutil.copy2(ROOT / "README.md", suite / "README.md")
    (suite / "dagster_home").mkdir()
    shutil.copy2(ROOT / "dagster_home" / "dagster.yaml", suite / "dagster_home" / "dagster.yaml")
    (suite / "pytest.ini").write_text(pytest_ini())
    return suite


FAILED = re.compile(r"^(FAILED|ERROR) (\S+)(?: - (.*))?$")


def pytest_failures(log_file: Path) -> list[str]:
    """The "FAILED"/"ERROR" lines of pytest's short summary (``-ra``)."""
    lines = log_file.read_text(errors="replace").splitlines()
    return [line[:300] for line in lines if FAILED.match(line)]


def tee_run(command: list[str | Path], *, cwd: Path, env: dict[str, str], log_file: Path):
    """Run a command with its output both shown and saved (for the failure summary)."""
    log("$ " + " ".join(str(part) for part in command))
    with log_file.open("w") as saved:
        process = subprocess.Popen(
            [str(part) for part in command],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        deadline = time.monotonic() + CELL_TIMEOUT
        for line in process.stdout:
            sys.stdout.write(line)
            saved.write(line)
            if time.monotonic() > deadline:
                process.kill()
                saved.write("ERROR matrix: timed out\n")
                break
        return process.wait()


# -- One cell --------------------------------------------------------------------------------


def run_cell(cell: Cell, wheel: Path, base: Path, keep: bool) -> Result:
    result = Result(cell)
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix=f"smsp-matrix-{cell.name}-"))
    result.folder = folder
    try:
        result.ok = _run_cell(cell, wheel, folder, result)
    except Exception as problem:  # the cell fails with its reason; the next cell still runs
        result.failures.append(f"matrix: {type(problem).__name__}: {problem}")
        result.ok = False
    result.seconds = time.monotonic() - started
    if result.ok and not keep:
        shutil.rmtree(folder, ignore_errors=True)
        result.folder = None
    return result


def _run_cell(cell: Cell, wheel: Path, folder: Path, result: Result) -> bool:
    interpreter = find_python(cell.python)
    if interpreter is None:
        result.failures.append(f"matrix: no Python {cell.python} found (see --list)")
        return False
    uv, env = uv_binary(), uv_env()
    venv = folder / "venv"
    python = venv / "bin" / "python"
    if run([uv, "venv", "--seed", "--python", interpreter, venv], env=env).returncode:
        result.failures.append("matrix: uv venv failed")
        return False

    own, requirements = wheel_requirements(wheel)
    extras = (*readme_extras(), *cell.extras)
    direct = [without_extra_marker(r) for r in for_extras(requirements, set(extras))]
    install = [
        uv, "pip", "install", "--python", python, "--resolution", cell.resolution,
        f"{own}[{','.join(extras)}] @ {wheel.as_uri()}",
        *direct,
        *test_tools(requirements, own, set(extras)),
    ]  # fmt: skip
    if run(install, env=env).returncode:
        result.failures.append(f"matrix: uv pip install ({cell.resolution}) failed")
        return False
    if run([uv, "pip", "check", "--python", python], env=env).returncode:
        result.failures.append("matrix: uv pip check failed")
        return False
    result.versions = versions(python)
    log(f"{cell.name}: " + ", ".join(f"{k} {v}" for k, v in result.versions.items()))
    if cell.resolution == "lowest-direct":
        # A lower bound that another requirement (the test tools' included) lifts is not the
        # version tested: the bounds in pyproject.toml are to be the ones that pass.
        untested = unreachable_bounds(python, direct)
        if untested:
            result.failures.extend(f"matrix: lower bound not tested: {note}" for note in untested)
            return False

    suite = copy_suite(folder)
    test_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DAGSTER_HOME") and not k.startswith("PYTEST")
    }
    test_env["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    test_env["SMSP_USER_PATH_REQUIRED"] = "1"  # the user's path fails, not skips, if it cannot run
    pytest = [python, "-m", "pytest", "-p", "no:cacheprovider", "--basetemp"]
    ok = True
    commands = [
        ("user-path", [*pytest, folder / "tmp-user", USER_PATH_TEST]),
        (
            "suite",
            [*pytest, folder / "tmp-suite", "-n", "2", "-m", "not slow and not repo", "tests"],
        ),
    ]
    if cell.extra_tests:
        commands.append(("extra", [*pytest, folder / "tmp-extra", *cell.extra_tests]))
    for label, command in commands:
        log_file = folder / f"{label}.log"
        status = tee_run(command, cwd=suite, env=test_env, log_file=log_file)
        if status:
            ok = False
            failures = pytest_failures(log_file) or [f"pytest exited {status}"]
            result.failures.extend(f"{label}: {line}" for line in failures)
    return ok


def versions(python: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, platform; "
        "print('python', platform.python_version()); "
        f"[print(n, m.version(n)) for n in {REPORTED!r}]"
    )
    return dict(line.split(" ", 1) for line in captured([python, "-c", code]).splitlines())


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def unreachable_bounds(python: Path, direct: list[str]) -> list[str]:
    """Direct requirements whose lowest installable version is above their declared lower
    bound (another requirement forbids the bound): the bound claims more than is tested."""
    installed = dict(
        (normalized(line.split(" ", 1)[0]), line.split(" ", 1)[1])
        for line in captured(
            [python, "-c", "import importlib.metadata as m; "
             "[print(d.metadata['Name'].lower(), d.version) for d in m.distributions()]"]
        ).splitlines()
    )  # fmt: skip
    notes = []
    for text in direct:
        requirement = Requirement(text)
        lows = [s.version for s in requirement.specifier if s.operator in (">=", "==")]
        version = installed.get(normalized(requirement.name))
        if lows and version and Version(version) > Version(lows[0]):
            notes.append(f"{requirement.name}: declared >={lows[0]}, lowest installable {version}")
    return notes


# -- The report ------------------------------------------------------------------------------


def report(results: list[Result]) -> str:
    header = ["cell", "python", "resolution", *REPORTED, "wall time", "result"]
    rows = [header, ["---"] * len(header)]
    for result in results:
        minutes, seconds = divmod(round(result.seconds), 60)
        rows.append(
            [
                result.cell.name,
                result.versions.get("python", "?"),
                result.cell.resolution,
                *(result.versions.get(name, "?") for name in REPORTED),
                f"{minutes}m{seconds:02d}s",
                "pass" if result.ok else "FAIL",
            ]
        )
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    for result in results:
        if not result.ok:
            lines.append(f"\n{result.cell.name} failed (its files: {result.folder}):")
            lines.extend(f"  {failure}" for failure in result.failures)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cells",
        default=",".join(CELLS),
        help=f"comma-separated cells to run (default: all: {', '.join(CELLS)})",
    )
    parser.add_argument("--list", action="store_true", help="list the cells and exit")
    parser.add_argument("--keep", action="store_true", help="keep the folders of passed cells")
    args = parser.parse_args(argv)
    if args.list:
        for cell in CELLS.values():
            print(f"{cell.name:15} {find_python(cell.python) or 'NOT FOUND':50} {cell.about}")
        return 0
    names = [name.strip() for name in args.cells.split(",") if name.strip()]
    unknown = [name for name in names if name not in CELLS]
    if unknown or not names:
        parser.error(f"unknown cells {unknown}; the cells are {', '.join(CELLS)}")

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="smsp-matrix-wheel-") as work:
        wheel = build_wheel(Path(work))
        log(f"built {wheel.name}")
        results = []
        for name in names:
            log(f"cell {name}: {CELLS[name].about}")
            results.append(run_cell(CELLS[name], wheel, Path(work), args.keep))
            log(f"cell {name}: {'pass' if results[-1].ok else 'FAIL'}")
    print("\n" + report(results))
    print(f"\n{len(results)} cell(s) in {round(time.monotonic() - started)} s")
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
