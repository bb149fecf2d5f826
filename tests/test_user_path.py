"""The user's path: README.md's "Your own project, step by step", run as written.

The block's commands are read from the README (so the page and the test cannot drift), split as
bash parses them, and run one at a time in ``bash -e -o pipefail`` from an empty folder, each
starting in the folder and with the exported variables the previous one left, as in one terminal
session. After each, the test checks its exit status and a count: what it listed, pushed,
deleted, cancelled or audited, read from the emulator, the DuckDB file and the files written.
Every command has its check, and a command the test does not know fails it.

The commands run in this environment: its ``bin`` folder (``dg``, ``create-dagster``, ``smsp``,
``pip``) leads ``PATH``. So the first two, which make and fill a virtualenv, are stood in for:
this one must be a virtualenv where ``smsp-connector`` is installed from its wheel with every
requirement of the README's extras, and ``pip check`` passes in it. ``make test-matrix``
(scripts/matrix.py) makes such an environment per cell, installing the extras it reads from the
same README line, and runs this test there. In the development environment, where the library is
an editable install, it skips, saying so (and fails instead under ``SMSP_USER_PATH_REQUIRED=1``,
which the matrix sets).

The emulator the block starts in the background listens on a free port instead of 8787 (the only
change made to the commands), and is stopped at the end. ``DAGSTER_DG_UPDATE_CHECK_ENABLED=0``
keeps ``dg`` and ``create-dagster`` from asking PyPI for their newest version, and a wide
``COLUMNS`` keeps ``dg list defs`` from shortening names.
"""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import requests
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SECTION = "## Your own project, step by step"
BIN = Path(sys.executable).parent
SITE = Path(sysconfig.get_paths()["purelib"]).resolve()
DISTRIBUTION = "smsp-connector"
STEP_TIMEOUT = 420
"""Seconds for one command (a `dg launch` with a process per step on a loaded machine)."""
README_PORT = "8787"

JOBS = {
    "main__smsp_refresh",
    "main__push_stop_numbers",
    "main__delete_stop_numbers",
    "main__cancel_scheduled_messages",
    "main__smsp_retention",
    "main__smsp_compliance_report",
}
PUSHED = {"applied": 3, "duplicate_in_file": 1, "invalid_input": 1}
"""The README's messy export: three numbers (two in French national form, one of Réunion), one
of them again in international form, and a spreadsheet-mangled one."""
DELETED_NUMBER = "+33612345678"


# -- The README's block, as bash splits it ----------------------------------------------------


def readme_block(text: str | None = None) -> str:
    text = README.read_text() if text is None else text
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end >= 0 else len(text)]
    found = re.search(r"^```sh\n(.*?)^```$", section, re.S | re.M)
    assert found, f"README.md's {SECTION!r} has no sh block"
    return found.group(1)


def complete(text: str) -> bool:
    """Whether bash reads ``text`` as whole commands: no open quote, substitution or here
    document (bash -n warns, and still succeeds, on a here document cut short)."""
    done = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True, check=False)
    return done.returncode == 0 and not done.stderr


def commands(block: str) -> list[str]:
    """The block's commands, lines joined until bash finds the command complete; blank and
    comment lines between commands are no command."""
    found: list[str] = []
    pending: list[str] = []
    for line in block.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending.append(line)
        if complete("\n".join(pending) + "\n"):
            found.append("\n".join(pending))
            pending = []
    assert not pending, f"the block ends inside a command: {pending}"
    return found


def background(command: str) -> list[str] | None:
    """The words of a command the block runs in the background (``... &``), else None."""
    if "\n" in command:
        return None
    words = shlex.split(command, comments=True)
    return words[:-1] if words and words[-1] == "&" else None


# -- The terminal session ---------------------------------------------------------------------


@dataclass
class Shell:
    """One terminal session: each command in its own bash, which starts in the folder and with
    the exported variables the previous one left."""

    cwd: Path
    env: dict[str, str]
    state: Path
    started: list[subprocess.Popen] = field(default_factory=list)

    def run(self, command: str) -> subprocess.CompletedProcess:
        script = f"set -eo pipefail\n{command}\nenv -0 > {shlex.quote(str(self.state))}\n"
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
        if done.returncode == 0:
            pairs = self.state.read_bytes().decode().split("\0")
            self.env = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
            self.cwd = Path(self.env["PWD"])
        return done

    def start(self, words: list[str], log: Path) -> subprocess.Popen:
        with log.open("w") as output:
            process = subprocess.Popen(
                ["bash", "-c", "exec " + shlex.join(words)],
                cwd=self.cwd,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(process)
        return process

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def output(done: subprocess.CompletedProcess) -> str:
    tail = 4000
    return (
        f"exit {done.returncode}\n--- stdout\n{done.stdout[-tail:]}\n"
        f"--- stderr\n{done.stderr[-tail:]}"
    )


# -- The checks, one per command --------------------------------------------------------------


@dataclass
class UserPath:
    shell: Shell
    port: int
    logs: Path
    emulator_key: str = ""
    demo_size: int = 0
    project: Path | None = None
    database: Path | None = None
    schema: str = ""
    messages_scheduled: int = 0

    # The emulator and the warehouse, as the test sees them.

    def stats(self) -> dict:
        session = requests.Session()
        session.trust_env = False  # loopback, whatever proxy the environment names
        answer = session.get(f"http://127.0.0.1:{self.port}/_emulator/stats", timeout=10)
        answer.raise_for_status()
        return answer.json()

    def query(self, sql: str, *parameters: object) -> list[tuple]:
        assert self.database is not None
        with duckdb.connect(str(self.database), read_only=True) as conn:
            return conn.execute(sql.format(schema=self.schema), list(parameters)).fetchall()

    def audit(self, job: str, *, run_id: str | None = None) -> Counter:
        """Outcomes of the audit log's final rows (``audit_latest``) of one job (or run)."""
        rows = self.query(
            "SELECT outcome, dry_run, account, run_id FROM {schema}.audit_latest WHERE job = ?",
            job,
        )
        assert {account for _, _, account, _ in rows} <= {"main"}, rows
        return Counter(outcome for outcome, _, _, run in rows if run_id in (None, run))

    def runs_of(self, job: str) -> list[str]:
        rows = self.query(
            "SELECT run_id FROM {schema}.audit_log WHERE job = ? "
            "GROUP BY run_id ORDER BY min(recorded_at)",
            job,
        )
        return [run for (run,) in rows]

    def stop_list(self) -> set[str]:
        return {number for (number,) in self.query("SELECT phone_number FROM {schema}.stop_list")}

    def launched(self, done: subprocess.CompletedProcess, job: str) -> str:
        assert done.returncode == 0, output(done)
        assert "RUN_SUCCESS" in done.stderr and job in done.stderr, output(done)
        [run_id] = set(re.findall(rf"- {job} - ([0-9a-f-]{{36}}) - ", done.stderr))
        return run_id

    # Stood in for: this environment is the README's virtualenv.

    def venv(self, match: re.Match, done: None) -> None:
        assert sys.prefix != sys.base_prefix, "the test must run in a virtualenv"
        assert (Path(sys.prefix) / "pyvenv.cfg").is_file()
        env = self.shell.env
        env["VIRTUAL_ENV"] = sys.prefix
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"

    def install(self, match: re.Match, done: None) -> None:
        dist = installed()
        assert dist is not None
        extras = set(match.group("extras").split(","))
        assert extras <= set(dist.metadata.get_all("Provides-Extra") or []), extras
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
        assert not direct.get("dir_info", {}).get("editable"), "an editable install"
        assert direct.get("url", ".whl").endswith(".whl"), f"not installed from a wheel: {direct}"
        wanted = [
            Requirement(line)
            for line in dist.requires or []
            if Requirement(line).marker is None
            or any(Requirement(line).marker.evaluate({"extra": extra}) for extra in extras)
        ]
        unmet = []
        for requirement in wanted:
            try:
                version = importlib.metadata.version(requirement.name)
            except importlib.metadata.PackageNotFoundError:
                unmet.append(f"{requirement} (missing)")
                continue
            if not requirement.specifier.contains(version, prereleases=True):
                unmet.append(f"{requirement} ({version})")
        assert not unmet, unmet
        assert len(wanted) >= 20, wanted  # the base requirements and the three extras'
        checked = self.shell.run("pip check")
        assert checked.returncode == 0, output(checked)
        assert checked.stdout.strip() == "No broken requirements found.", output(checked)

    # Run as written.

    def create_project(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        assert done.returncode == 0, output(done)
        self.project = self.shell.cwd / match.group("name")
        pyproject = (self.project / "pyproject.toml").read_text()
        assert "[tool.dg]" in pyproject
        # Pins that hold: the project requires exactly the Dagster installed here.
        pinned = re.findall(r'"dagster==([^"]+)"', pyproject)
        assert pinned == [importlib.metadata.version("dagster")], pyproject

    def install_project(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        assert done.returncode == 0, output(done)
        assert self.shell.cwd == self.project
        [installed] = re.findall(r"^Successfully installed (.+)$", done.stdout, re.M)
        assert installed.split() == [f"{self.project.name}-0.1.0"], installed  # nothing else
        assert importlib.metadata.version(self.project.name) == "0.1.0"

    def scaffold(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        assert done.returncode == 0, output(done)
        [defs] = list(self.project.rglob("defs.yaml"))
        assert defs.parent.parts[-3:] == ("defs", "accounts", "main"), defs
        component = yaml.safe_load(defs.read_text())
        attributes = component["attributes"]
        assert component["type"] == "smsp_connector.SmspComponent"
        assert attributes["key_prefix"] == "main"
        assert "SMSP_BASE_URL" in attributes["base_url"], attributes  # so the emulator is used
        self.database = self.project / attributes["database"]
        self.schema = attributes["schema"]

    def emulator(self, match: re.Match, words: list[str]) -> None:
        self.emulator_key = words[words.index("--api-key") + 1]
        self.demo_size = int(words[words.index("--demo-size") + 1])
        deadline = time.monotonic() + 120
        while True:
            try:
                stats = self.stats()
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, (self.logs / "emulator.log").read_text()
                assert self.shell.started[-1].poll() is None, (
                    self.logs / "emulator.log"
                ).read_text()
                time.sleep(0.2)
        assert stats["stop_list_size"] == self.demo_size == 1000

    def export_api(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        assert done.returncode == 0, output(done)
        env = self.shell.env
        assert env["SMSP_API_KEY"] == self.emulator_key
        assert env["SMSP_BASE_URL"] == f"http://127.0.0.1:{self.port}/v1"

    def export_home(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        assert done.returncode == 0, output(done)
        home = Path(self.shell.env["DAGSTER_HOME"])
        assert home.is_dir() and home.parent == self.project

    def instance_settings(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        assert done.returncode == 0, output(done)
        written = yaml.safe_load(
            (Path(self.shell.env["DAGSTER_HOME"]) / "dagster.yaml").read_text()
        )
        shipped = yaml.safe_load((ROOT / "dagster_home" / "dagster.yaml").read_text())
        assert written["concurrency"] == shipped["concurrency"]  # the repository's pool limit
        assert written["concurrency"]["pools"]["default_limit"] == 1

    def check_defs(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        assert done.returncode == 0, output(done)
        assert "All definitions loaded successfully" in done.stdout + done.stderr, output(done)

    def list_defs(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        assert done.returncode == 0, output(done)
        sections: dict[str, set[str]] = {}
        section = ""
        for line in done.stdout.splitlines():
            named = re.match(r"^│ ([A-Z][A-Za-z ]*?)\s*│", line)
            if named:
                section = named.group(1)
            key = re.match(r"^│[^│]*│ │ (\S+)", line)
            if key:
                sections.setdefault(section, set()).add(key.group(1))
        assert sections.get("Jobs") == JOBS, output(done)
        assets = sections.get("Assets", set())
        assert {"main/stop_list", "main/stop_list_additions", "main/audit_log"} <= assets, assets
        assert all(asset.startswith("main/") for asset in assets), assets
        assert len(assets) >= 12, assets
        assert sections.get("Resources") == {"main_duckdb", "main_smsp"}, output(done)

    def refresh(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        self.launched(done, "main__smsp_refresh")
        # The default executor: a process per step, the pool limit keeping DuckDB to one writer.
        assert done.stderr.count("STEP_WORKER_STARTED") >= 4, output(done)
        assert len(self.stop_list()) == self.stats()["stop_list_size"] == 1000

    def crm_export(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        assert done.returncode == 0, output(done)
        with (self.shell.cwd / "crm_export.csv").open(encoding="utf-8") as file:
            rows = list(csv.reader(file, delimiter=";"))
        assert len(rows) == 1 + sum(PUSHED.values()), rows

    def run_config(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        assert done.returncode == 0, output(done)
        config = yaml.safe_load((self.shell.cwd / match.group("file")).read_text())
        assert config["execution"] == {"config": {"in_process": {}}}, config
        [(op, op_config)] = config["ops"].items()
        [value] = op_config["config"].values()
        assert op.startswith("main__") and value and all(value), config  # no empty $VARIABLE

    def push(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        run_id = self.launched(done, "main__push_stop_numbers")
        assert "STEP_WORKER_STARTED" not in done.stderr  # in_process
        assert self.audit("main__push_stop_numbers", run_id=run_id) == Counter(PUSHED)
        assert self.stats()["stop_list_size"] == 1000 + PUSHED["applied"]
        assert len(self.stop_list()) == 1000 + PUSHED["applied"]  # refreshed after the push
        with (self.shell.cwd / "crm_export.rejected.csv").open() as file:
            rejected = list(csv.DictReader(file))
        assert [row["reason"] for row in rejected] == ["scientific_notation"], rejected

    def consents(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        assert done.returncode == 0, output(done)
        with (self.shell.cwd / "consents.csv").open() as file:
            [row] = list(csv.DictReader(file))
        consent = datetime.fromisoformat(row["consent_at"].replace("Z", "+00:00"))
        assert consent <= datetime.now(UTC), row

    def delete_dry_run(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        run_id = self.launched(done, "main__delete_stop_numbers")
        assert self.audit("main__delete_stop_numbers", run_id=run_id) == Counter(dry_run=1)
        assert self.stats()["stop_list_size"] == 1000 + PUSHED["applied"]  # nothing sent
        assert "stop-sms/delete" not in self.stats()["endpoints"]

    def dry_run_id(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        assert done.returncode == 0, output(done)
        assert self.runs_of("main__delete_stop_numbers") == [self.shell.env["DRY_RUN"]]

    def confirm(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        run_id = self.launched(done, "main__delete_stop_numbers")
        assert run_id != self.shell.env["DRY_RUN"]
        assert self.audit("main__delete_stop_numbers", run_id=run_id) == Counter(applied=1)
        assert self.stats()["stop_list_size"] == 1000 + PUSHED["applied"] - 1
        listed = self.stop_list()
        assert DELETED_NUMBER not in listed and len(listed) == 1000 + PUSHED["applied"] - 1

    def schedule(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        assert done.returncode == 0, output(done)
        assert self.shell.env["MESSAGE_ID"].isdigit(), self.shell.env["MESSAGE_ID"]
        assert self.stats()["messages"] == 1

    def cancel(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        run_id = self.launched(done, "main__cancel_scheduled_messages")
        assert self.audit("main__cancel_scheduled_messages", run_id=run_id) == Counter(applied=1)
        assert self.stats()["endpoints"]["message-cancel"] == {"code:200": 1}

    def cli_dry_run(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        assert done.returncode == 0, output(done)
        adds = self.stats()["endpoints"]["stop-sms/add"]
        [run_id] = self.runs_of("smsp-cli")
        assert run_id.startswith("cli-") and run_id in done.stderr, output(done)
        # The deleted number would go back on the list; the two others are on it already.
        assert self.audit("smsp-cli") == Counter(
            dry_run=1, already_on_list=2, duplicate_in_file=1, invalid_input=1
        )
        assert self.stats()["endpoints"]["stop-sms/add"] == adds  # a dry run sends nothing
        assert sum(self.stats()["endpoints"]["stop-sms/add"].values()) == PUSHED["applied"]

    def audit_rows(self, match: re.Match, done: subprocess.CompletedProcess) -> None:
        assert done.returncode == 0, output(done)
        rows = self.query(
            "SELECT job, operation, outcome, count(*) FROM {schema}.audit_latest "
            "GROUP BY ALL ORDER BY ALL"
        )
        assert sum(n for *_, n in rows) == 5 + 1 + 1 + 1 + 5, rows
        lines = done.stdout.splitlines()
        for job, operation, outcome, n in rows:
            shown = rf"\b{job}\b.*\b{operation}\b.*\b{outcome}\b.*\b{n}\b"
            assert any(re.search(shown, line) for line in lines), (rows, done.stdout)


Check = Callable[[UserPath, re.Match, object], None]
STEPS: list[tuple[str, str, Check]] = [
    # (what the command must look like, how it runs, its check)
    (r"python3 -m venv \.venv && \. \.venv/bin/activate", "stand-in", UserPath.venv),
    (r"pip install '(?P<pkg>smsp-connector)\[(?P<extras>[a-z,]+)\]'", "stand-in", UserPath.install),
    (r"create-dagster project (?P<name>\w+) --no-uv-sync\b.*", "run", UserPath.create_project),
    (r"cd (?P<name>\w+) && pip install --editable \.", "run", UserPath.install_project),
    (r"dg scaffold defs smsp_connector\.SmspComponent accounts/main", "run", UserPath.scaffold),
    (r"smsp emulator --port \d+ .*&.*", "background", UserPath.emulator),
    (r"export SMSP_API_KEY=\S+ SMSP_BASE_URL=\S+", "run", UserPath.export_api),
    (r"export DAGSTER_HOME=.*", "run", UserPath.export_home),
    (r'cat > "\$DAGSTER_HOME/dagster\.yaml" <<.*', "run", UserPath.instance_settings),
    (r"dg check defs", "run", UserPath.check_defs),
    (r"dg list defs\b.*", "run", UserPath.list_defs),
    (r"dg launch --job main__smsp_refresh\b.*", "run", UserPath.refresh),
    (r"cat > crm_export\.csv <<.*", "run", UserPath.crm_export),
    (r"cat > (?P<file>push\.yaml) <<.*", "run", UserPath.run_config),
    (r"dg launch --job main__push_stop_numbers -c push\.yaml\b.*", "run", UserPath.push),
    (r"cat > consents\.csv <<.*", "run", UserPath.consents),
    (r"cat > (?P<file>delete\.yaml) <<.*", "run", UserPath.run_config),
    (r"dg launch --job main__delete_stop_numbers -c delete\.yaml\b.*", "run",
     UserPath.delete_dry_run),
    (r"export DRY_RUN=\$\(python -c .*", "run", UserPath.dry_run_id),
    (r"cat > (?P<file>confirm\.yaml) <<.*", "run", UserPath.run_config),
    (r"dg launch --job main__delete_stop_numbers -c confirm\.yaml\b.*", "run", UserPath.confirm),
    (r"export MESSAGE_ID=\$\(python -c .*", "run", UserPath.schedule),
    (r"cat > (?P<file>cancel\.yaml) <<.*", "run", UserPath.run_config),
    (r"dg launch --job main__cancel_scheduled_messages -c cancel\.yaml\b.*", "run",
     UserPath.cancel),
    (r"smsp --account main push crm_export\.csv --dry-run\b.*", "run", UserPath.cli_dry_run),
    (r"python -c 'import duckdb; .*audit_latest.*", "run", UserPath.audit_rows),
]  # fmt: skip


def matched(command_list: list[str]) -> list[tuple[re.Match, str, Check]]:
    """Each command with its step; fails on a command without one, or one missing."""
    assert len(command_list) == len(STEPS), (
        f"README.md's block has {len(command_list)} commands and the test checks {len(STEPS)}: "
        "give each new command its check in tests/test_user_path.py"
    )
    pairs = []
    for command, (pattern, kind, check) in zip(command_list, STEPS, strict=True):
        first_line = command.splitlines()[0]
        found = re.fullmatch(pattern, first_line)
        assert found, f"README.md's command {first_line!r} is not the step {pattern!r}"
        pairs.append((found, kind, check))
    return pairs


def test_every_command_of_the_readme_block_has_its_check():
    """Cheap, and run by `make test` too: the page and the test agree on the steps."""
    found = commands(readme_block())
    matched(found)
    assert README_PORT in readme_block()
    assert [background(command) is not None for command in found].count(True) == 1


def test_commands_are_split_as_bash_reads_them():
    block = (
        "a && b   # one\n\n# a comment\ncat > f <<'X'\nline\nX\n"
        "export Y=$(python -c '\nprint(1)')\nz &\n"
    )
    assert commands(block) == [
        "a && b   # one",
        "cat > f <<'X'\nline\nX",
        "export Y=$(python -c '\nprint(1)')",
        "z &",
    ]
    assert background("z --port 1 &   # note") == ["z", "--port", "1"]
    assert background("a && b") is None


def installed() -> importlib.metadata.Distribution | None:
    """The distribution in this environment's site-packages (not an ``.egg-info`` folder that
    the current directory may put first on the path)."""
    for dist in importlib.metadata.distributions(path=[SITE]):
        if dist.metadata["Name"] == DISTRIBUTION:
            return dist
    return None


def environment_problem() -> str | None:
    """Why this environment cannot stand for the README's virtualenv, or None."""
    if sys.prefix == sys.base_prefix:
        return "this Python is not a virtualenv's"
    dist = installed()
    if dist is None:
        return f"{DISTRIBUTION} is not installed in this environment"
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    imported = Path(importlib.util.find_spec("smsp_connector").origin).resolve()
    if direct.get("dir_info", {}).get("editable") or not imported.is_relative_to(SITE):
        return f"{DISTRIBUTION} is an editable install here (make install), not the wheel"
    missing = [
        tool for tool in ("create-dagster", "dg", "smsp", "pip") if not (BIN / tool).exists()
    ]
    if missing:
        return f"{', '.join(missing)} not installed beside {sys.executable}"
    return None


@pytest.fixture
def user_path(tmp_path) -> Iterator[UserPath]:
    problem = environment_problem()
    if problem:
        if os.environ.get("SMSP_USER_PATH_REQUIRED") == "1":
            pytest.fail(f"the user's path cannot run: {problem}")
        pytest.skip(
            f"the user's path needs the wheel installed as users install it: {problem}; "
            "`make test-matrix` runs it in a fresh virtualenv per cell"
        )
    folder = tmp_path / "empty"
    folder.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "DAGSTER_HOME", "VIRTUAL_ENV") and not k.startswith("SMSP_")
    }
    env |= {"DAGSTER_DG_UPDATE_CHECK_ENABLED": "0", "COLUMNS": "200", "NO_PROXY": "127.0.0.1"}
    shell = Shell(cwd=folder, env=env, state=tmp_path / "env.state")
    path = UserPath(shell=shell, port=free_port(), logs=logs)
    try:
        yield path
    finally:
        shell.stop()


@pytest.mark.slow  # two dozen subprocesses: dg, create-dagster, pip, smsp and Dagster runs
@pytest.mark.timeout(1800)
def test_the_readme_path_from_an_empty_folder(user_path):
    block = readme_block().replace(README_PORT, str(user_path.port))
    for (found, kind, check), command in zip(
        matched(commands(block)), commands(block), strict=True
    ):
        started = time.monotonic()
        if kind == "stand-in":
            check(user_path, found, None)
        elif kind == "background":
            words = background(command)
            assert words is not None, command
            user_path.shell.start(words, user_path.logs / "emulator.log")
            check(user_path, found, words)
        else:
            check(user_path, found, user_path.shell.run(command))
        print(f"{time.monotonic() - started:6.1f} s  {command.splitlines()[0][:90]}")
