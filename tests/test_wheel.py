"""The wheel as a data team installs it: only ``smsp_connector`` inside, importable without
side effects, and usable from a user's own Dagster project against the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import duckdb
import pytest

from .cli_helpers import ROOT
from .conftest import API_KEY

pytestmark = [pytest.mark.slow, pytest.mark.repo]  # builds the wheel from this repository

USER_PROJECT = '''
"""A data team's own code location: its prefix, its DuckDB file, its schema."""

from smsp_connector.dagster import build_definitions
from smsp_connector.settings import Settings

acme = build_definitions(
    Settings.from_env(key_prefix="acme", schema="crm_optouts", group_name="acme_smsp")
)
defs = acme.definitions
'''

IMPORT_EVERYTHING = """
import importlib, os, pkgutil, smsp_connector
names = [m.name for m in pkgutil.walk_packages(smsp_connector.__path__, "smsp_connector.")]
for name in names:
    if not name.endswith("__main__"):
        importlib.import_module(name)
print(len(names), "modules;", sorted(os.listdir(".")))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    [built] = out.glob("smsp_connector-*.whl")
    return built


@pytest.fixture(scope="module")
def user_venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv outside the repository with the wheel installed. Its dependencies
    come from this test run's environment (a path entry), not from the registry: the test is
    about what the wheel holds, and must not download anything."""
    venv = tmp_path_factory.mktemp("user") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # Dependencies only: this environment's own smsp_connector is an editable install whose
    # finder a plain path entry does not load, so the wheel's copy is the one imported.
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    return venv


def test_the_wheel_holds_the_library_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    distribution, version = wheel.name.split("-")[:2]
    assert top_level == {"smsp_connector", f"{distribution}-{version}.dist-info"}
    assert not any(name.startswith("assets/") for name in names)


def _python(venv: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [venv / "bin" / "python", "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )


def test_every_module_imports_from_the_wheel_and_creates_no_folder(user_venv, tmp_path):
    done = _python(user_venv, IMPORT_EVERYTHING, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("modules; []"), done.stdout
    located = _python(user_venv, "import smsp_connector; print(smsp_connector.__file__)", tmp_path)
    assert str(user_venv) in located.stdout and str(ROOT) not in located.stdout


def test_a_users_own_project_materializes_the_stop_list(user_venv, emulator, tmp_path):
    emulator.state.seed_entries([("+33612345678", "2025-07-14 09:30:00")])
    project = tmp_path / "acme_project"
    project.mkdir()
    (project / "definitions.py").write_text(textwrap.dedent(USER_PROJECT))
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DAGSTER_HOME")},
        "SMSP_API_KEY": API_KEY,
        "SMSP_BASE_URL": emulator.base_url,
        "SMSP_DUCKDB_PATH": str(project / "lake" / "acme.duckdb"),
        "SMSP_EXPORT_DIR": str(project / "exports"),
    }
    done = subprocess.run(
        [user_venv / "bin" / "python", "-m", "dagster", "asset", "materialize",
         "-f", "definitions.py", "--select", "acme/stop_list"],
        cwd=project, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-3000:]
    assert "RUN_SUCCESS" in done.stderr
    with duckdb.connect(str(project / "lake" / "acme.duckdb"), read_only=True) as conn:
        rows = conn.execute("SELECT phone_number FROM crm_optouts.stop_list").fetchall()
    assert rows == [("+33612345678",)]
    assert API_KEY not in done.stdout + done.stderr
