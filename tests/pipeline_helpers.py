"""Materialize the project's assets against the test emulator into temporary files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from smsp_connector.dagster import SmspDefinitions, build_definitions
from smsp_connector.emulator import EmulatorServer
from smsp_connector.settings import Settings

from .conftest import API_KEY


@dataclass
class PipelineRig:
    emulator: EmulatorServer
    duckdb_path: Path
    export_dir: Path
    instance: dg.DagsterInstance

    def settings(self, **options: Any) -> Settings:
        """Settings on the test emulator and files; ``options`` override any of them."""
        defaults: dict[str, Any] = {
            "api_key": API_KEY,
            "base_url": self.emulator.base_url,
            "rate_limit": None,
            "database": str(self.duckdb_path),
            "export_dir": str(self.export_dir),
            "inbox_dir": str(self.duckdb_path.parent / "inbox"),
        }
        return Settings(**{**defaults, **options})

    @property
    def defs(self) -> SmspDefinitions:
        """The definitions of :func:`build_definitions`, on the test emulator and files."""
        return build_definitions(self.settings())

    def materialize(self, run_config: dict[str, Any] | None = None) -> dg.ExecuteInProcessResult:
        """The extract assets alone (the daily refresh)."""
        return self.run(self.defs.extract.assets, run_config)

    def run(
        self,
        assets: Sequence[dg.AssetsDefinition | dg.AssetSpec],
        run_config: dict[str, Any] | None = None,
        **settings: Any,
    ) -> dg.ExecuteInProcessResult:
        """Materialize ``assets`` with the resources of :meth:`settings` (``settings`` give
        e.g. ``max_workers``)."""
        return dg.materialize(
            assets,
            # Observed assets too: the provider's list orders a push or deletion before the
            # refresh, as in the jobs (materialize selects only materializable ones).
            selection=[
                key
                for asset in assets
                if isinstance(asset, dg.AssetsDefinition) and asset.is_executable
                for key in asset.keys
            ],
            resources=build_definitions(self.settings(**settings)).resources,
            run_config=run_config,
            instance=self.instance,
            raise_on_error=False,
        )

    def pushes(self) -> list[dg.AssetsDefinition | dg.AssetSpec]:
        """The inbox sources (external assets, never executed) and the push asset."""
        mutations = self.defs.mutations
        return [*mutations.inbox.values(), mutations.additions, mutations.checks[0]]

    def only(self, operation: str) -> list[dg.AssetsDefinition | dg.AssetSpec]:
        """The inbox sources and the outcome asset of ``add``, ``delete`` or ``cancel``."""
        mutations = self.defs.mutations
        asset = {"add": mutations.additions, "delete": mutations.deletions}.get(
            operation, mutations.cancellations
        )
        return [*mutations.inbox.values(), asset]

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
