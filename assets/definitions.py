"""Wires the smsp_connector library into this deployment's assets, jobs and schedules.

Configuration comes from the environment (see the README's configuration table):
``SMSP_API_KEY`` (required to run), ``SMSP_BASE_URL``, ``SMSP_DUCKDB_PATH``, ``SMSP_EXPORT_DIR``,
``SMSP_MAX_SHRINK_SHARE``, ``SMSP_RATE_LIMIT``.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from smsp_connector.client import DEFAULT_BASE_URL
from smsp_connector.extract_assets import build_extract_assets
from smsp_connector.resources import SmspResource

DUCKDB_PATH = Path(os.environ.get("SMSP_DUCKDB_PATH", "data/warehouse.duckdb"))
DUCKDB_PATH.parent.mkdir(parents=True, exist_ok=True)  # DuckDB creates the file, not its folder

extract_assets = build_extract_assets(
    max_shrink_share=float(os.environ.get("SMSP_MAX_SHRINK_SHARE", "0.2")),
    export_dir=os.environ.get("SMSP_EXPORT_DIR", "exports"),
)

refresh_job = dg.define_asset_job(
    "smsp_refresh",
    selection=dg.AssetSelection.assets(*extract_assets),
    description="Extract the stop list, update its history and write the suppression exports.",
)

daily_refresh = dg.ScheduleDefinition(
    name="smsp_daily_refresh",
    job=refresh_job,
    cron_schedule="0 6 * * *",
    execution_timezone="Europe/Paris",
    description="Every day at 06:00 Paris time, before marketing sends start.",
)

defs = dg.Definitions(
    assets=extract_assets,
    jobs=[refresh_job],
    schedules=[daily_refresh],
    resources={
        "smsp": SmspResource(
            api_key=dg.EnvVar("SMSP_API_KEY"),
            base_url=os.environ.get("SMSP_BASE_URL", DEFAULT_BASE_URL),
            rate_limit=float(os.environ.get("SMSP_RATE_LIMIT", "20")),
        ),
        "duckdb": DuckDBResource(database=str(DUCKDB_PATH)),
    },
)
