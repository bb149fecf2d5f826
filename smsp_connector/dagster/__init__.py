"""The Dagster layer: the only place that imports Dagster (the CLI imports it lazily)."""

from smsp_connector.dagster.audience_checks import build_audience_check
from smsp_connector.dagster.definitions import SmspDefinitions, SmspJobs, build_definitions
from smsp_connector.dagster.extract_assets import ExtractAssets, build_extract_assets
from smsp_connector.dagster.inbox_sensor import build_inbox_sensor
from smsp_connector.dagster.keys import SmspKeys
from smsp_connector.dagster.mutation_assets import MutationAssets, build_mutation_assets
from smsp_connector.dagster.resource import SmspResource, warehouse_of

__all__ = [
    "ExtractAssets",
    "MutationAssets",
    "SmspDefinitions",
    "SmspJobs",
    "SmspKeys",
    "SmspResource",
    "build_audience_check",
    "build_definitions",
    "build_extract_assets",
    "build_inbox_sensor",
    "build_mutation_assets",
    "warehouse_of",
]
