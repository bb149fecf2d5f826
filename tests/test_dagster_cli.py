"""The code location through Dagster's own command line, on the repository's workspace.yaml."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from .cli_helpers import DAGSTER, ROOT, dagster_cli
from .conftest import API_KEY

# Dagster CLI subprocesses, on this repository's code location (assets/).
pytestmark = [pytest.mark.slow, pytest.mark.repo]


def test_workspace_validates_and_lists_the_refresh_job(env):
    validated = dagster_cli(env, "definitions", "validate", "-w", "workspace.yaml")
    listed = dagster_cli(env, "job", "list", "-w", "workspace.yaml")

    assert validated.returncode == 0, validated.stderr[-2000:]
    assert "All code locations passed validation" in validated.stdout + validated.stderr
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "smsp_refresh" in listed.stdout


def test_asset_materialize_from_the_cli(env, emulator):
    emulator.state.seed_entries([("+33612345678", "2025-07-14 09:30:00")])

    done = dagster_cli(env, "asset", "materialize", "-m", "assets", "--select", "smsp/stop_list")

    assert done.returncode == 0, done.stderr[-3000:]
    with duckdb.connect(env["SMSP_DUCKDB_PATH"], read_only=True) as conn:
        assert conn.execute("SELECT phone_number FROM smsp.stop_list").fetchall() == [
            ("+33612345678",)
        ]
    assert API_KEY not in done.stdout + done.stderr


def test_the_stop_list_and_everything_after_it_materialize_from_the_cli(env, emulator):
    """`--select 'smsp/stop_list*'`, the first selection a Dagster user types, takes the stop
    list and every asset downstream of it, the warehouse's table assets included."""
    emulator.state.seed_entries([("+33612345678", "2025-07-14 09:30:00")])

    done = dagster_cli(env, "asset", "materialize", "-m", "assets", "--select", "smsp/stop_list*")

    assert done.returncode == 0, done.stderr[-3000:]
    assert "RUN_SUCCESS" in done.stderr
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        for key in ("stop_list", "stop_list_history", "suppression_export"):
            assert instance.get_latest_materialization_event(dg.AssetKey(["smsp", key])), key
        [observed] = instance.fetch_observations(
            dg.AssetKey(["smsp", "stop_list_snapshots"]), limit=5
        ).records
    assert observed.asset_observation.metadata["dagster/row_count"].value == 1


def test_two_runs_launched_at_once_both_succeed(env, emulator):
    emulator.state.seed_entries((f"+3361234{n:04d}", "2025-07-14 09:30:00") for n in range(500))
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
    from smsp_connector.settings import Settings

    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        pools = instance.get_concurrency_config().pool_config

    assert pools.default_pool_limit == 1
    # Every materialized asset writes the file; the provider's list is only observed (no call,
    # no DuckDB) between a push or deletion and the refresh.
    executable = [
        asset
        for asset in defs.assets
        if isinstance(asset, dg.AssetsDefinition) and asset.is_materializable
    ]
    # The extract's five, the three changes, the retention purge and the compliance report.
    assert len(executable) == 10
    assert {asset.op.pool for asset in executable} == {Settings().pool}
