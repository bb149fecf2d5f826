"""Materialize the project's assets against the test emulator into temporary files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from smsp_connector.emulator import EmulatorServer
from smsp_connector.extract_assets import build_extract_assets
from smsp_connector.resources import SmspResource

from .conftest import API_KEY


@dataclass
class PipelineRig:
    emulator: EmulatorServer
    duckdb_path: Path
    export_dir: Path
    instance: dg.DagsterInstance

    def materialize(self, run_config: dict[str, Any] | None = None) -> dg.ExecuteInProcessResult:
        """The extract assets alone (the daily refresh)."""
        return self.run(build_extract_assets(export_dir=self.export_dir), run_config)

    def run(
        self,
        assets: Sequence[dg.AssetsDefinition | dg.AssetSpec],
        run_config: dict[str, Any] | None = None,
        **resource_options: Any,
    ) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            assets,
            resources={
                "smsp": SmspResource(
                    api_key=API_KEY,
                    base_url=self.emulator.base_url,
                    rate_limit=None,
                    **resource_options,
                ),
                "duckdb": DuckDBResource(database=str(self.duckdb_path)),
            },
            run_config=run_config,
            instance=self.instance,
            raise_on_error=False,
        )

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.duckdb_path), read_only=True) as conn:
            return conn.execute(sql).fetchall()


def materialized_keys(result: dg.ExecuteInProcessResult) -> set[str]:
    return {
        event.asset_key.to_user_string()
        for event in result.get_asset_materialization_events()
        if event.asset_key
    }


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()
    }


def materialization_metadata(result: dg.ExecuteInProcessResult, key: str) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        if event.asset_key and event.asset_key.to_user_string() == key:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise KeyError(key)
