"""The code location through Dagster's own command line, on the repository's workspace.yaml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from .conftest import API_KEY

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


@pytest.fixture
def env(emulator, tmp_path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SMSP_API_KEY": API_KEY,
        "SMSP_BASE_URL": emulator.base_url,
        "SMSP_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "SMSP_EXPORT_DIR": str(tmp_path / "exports"),
    }


def _dagster(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_workspace_validates_and_lists_the_refresh_job(env):
    validated = _dagster(env, "definitions", "validate", "-w", "workspace.yaml")
    listed = _dagster(env, "job", "list", "-w", "workspace.yaml")

    assert validated.returncode == 0, validated.stderr[-2000:]
    assert "All code locations passed validation" in validated.stdout + validated.stderr
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "smsp_refresh" in listed.stdout


def test_asset_materialize_from_the_cli(env, emulator):
    emulator.state.seed_entries([("+33612345678", "2025-07-14 09:30:00")])

    done = _dagster(env, "asset", "materialize", "-m", "assets", "--select", "smsp/stop_list")

    assert done.returncode == 0, done.stderr[-3000:]
    with duckdb.connect(env["SMSP_DUCKDB_PATH"], read_only=True) as conn:
        assert conn.execute("SELECT phone_number FROM smsp.stop_list").fetchall() == [
            ("+33612345678",)
        ]
    assert API_KEY not in done.stdout + done.stderr


def test_two_runs_launched_at_once_both_succeed(env, emulator):
    emulator.state.seed_entries((f"+3361234{n:04d}", "2025-07-14 09:30:00") for n in range(500))
    # Create the instance's storage first, as `dagster dev` does: two processes creating a fresh
    # SQLite storage at once race in its migrations, and one run dies holding its pool slot.
    dg.DagsterInstance.from_config(env["DAGSTER_HOME"]).dispose()
    command = [DAGSTER, "job", "execute", "-m", "assets", "-j", "smsp_refresh"]

    runs = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    try:
        outputs = [run.communicate(timeout=240) for run in runs]
    finally:
        for run in runs:
            run.kill()

    logs = [stderr.decode() for _, stderr in outputs]
    for run, log in zip(runs, logs, strict=True):
        assert run.returncode == 0, log[-3000:]
    with duckdb.connect(env["SMSP_DUCKDB_PATH"], read_only=True) as conn:
        snapshots = conn.execute("SELECT count(*) FROM smsp.stop_list_snapshots").fetchone()
        listed = conn.execute("SELECT count(*) FROM smsp.stop_list_presence").fetchone()
    assert snapshots == (2,)
    assert listed == (500,)
    export = Path(env["SMSP_EXPORT_DIR"]) / "suppression_list.csv"
    assert len(export.read_text().splitlines()) == 501


def test_every_duckdb_writer_is_in_a_pool_the_shipped_instance_limits_to_one(env):
    from assets import defs
    from smsp_connector.extract_assets import DUCKDB_POOL

    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        pools = instance.get_concurrency_config().pool_config

    assert pools.default_pool_limit == 1
    assert {asset.op.pool for asset in defs.assets} == {DUCKDB_POOL}
