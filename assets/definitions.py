"""Wires the smsp_connector library into this deployment's assets, jobs and schedules.

Configuration comes from the environment (see the README's configuration table):
``SMSP_API_KEY`` (required to run), ``SMSP_BASE_URL``, ``SMSP_DUCKDB_PATH``, ``SMSP_EXPORT_DIR``,
``SMSP_MAX_SHRINK_SHARE``, ``SMSP_RATE_LIMIT``, ``SMSP_INBOX_DIR``.
"""

import os
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from smsp_connector.client import DEFAULT_BASE_URL
from smsp_connector.extract_assets import build_extract_assets
from smsp_connector.inbox_sensor import build_inbox_sensor
from smsp_connector.mutation_assets import build_mutation_assets
from smsp_connector.resources import SmspResource

DUCKDB_PATH = Path(os.environ.get("SMSP_DUCKDB_PATH", "data/warehouse.duckdb"))
DUCKDB_PATH.parent.mkdir(parents=True, exist_ok=True)  # DuckDB creates the file, not its folder

mutation_assets = build_mutation_assets()
additions, deletions, cancellations = (
    dg.AssetKey(["smsp", name])
    for name in ("stop_list_additions", "stop_list_deletions", "message_cancellations")
)
extract_assets = build_extract_assets(
    max_shrink_share=float(os.environ.get("SMSP_MAX_SHRINK_SHARE", "0.2")),
    export_dir=os.environ.get("SMSP_EXPORT_DIR", "exports"),
    upstream=[additions, deletions],
)
refresh = dg.AssetSelection.assets(*extract_assets)

refresh_job = dg.define_asset_job(
    "smsp_refresh",
    selection=refresh,
    description="Extract the stop list, update its history and write the suppression exports.",
)
push_job = dg.define_asset_job(
    "push_stop_numbers",
    selection=dg.AssetSelection.assets(additions) | refresh,
    description="Push the numbers of a CSV file to the stop list (only the missing ones), then "
    "refresh the stop list, its history and the exports.",
)
delete_job = dg.define_asset_job(
    "delete_stop_numbers",
    selection=dg.AssetSelection.assets(deletions) | refresh,
    description="Remove numbers with consent evidence (dry run unless confirm: true), then "
    "refresh the stop list, its history and the exports.",
)
cancel_job = dg.define_asset_job(
    "cancel_scheduled_messages",
    selection=dg.AssetSelection.assets(cancellations),
    description="Cancel scheduled sends by message id (from a CSV file or run config).",
)

inbox = build_inbox_sensor(
    inbox=os.environ.get("SMSP_INBOX_DIR", "inbox"),
    jobs={"add": push_job, "delete": delete_job, "cancel": cancel_job},
)

daily_refresh = dg.ScheduleDefinition(
    name="smsp_daily_refresh",
    job=refresh_job,
    cron_schedule="0 6 * * *",
    execution_timezone="Europe/Paris",
    description="Every day at 06:00 Paris time, before marketing sends start.",
)

defs = dg.Definitions(
    assets=[*mutation_assets, *extract_assets],
    jobs=[refresh_job, push_job, delete_job, cancel_job],
    schedules=[daily_refresh],
    sensors=[inbox],
    resources={
        "smsp": SmspResource(
            api_key=dg.EnvVar("SMSP_API_KEY"),
            base_url=os.environ.get("SMSP_BASE_URL", DEFAULT_BASE_URL),
            rate_limit=float(os.environ.get("SMSP_RATE_LIMIT", "20")),
        ),
        "duckdb": DuckDBResource(database=str(DUCKDB_PATH)),
    },
)
