"""What the anchors' integrations put on their assets (issue 16): each table asset's spec
carries ``TableMetadataSet`` (its fully qualified table name and column schema), and every
materialization says how many rows it holds or handled (``dagster/row_count``)."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.definitions.metadata import TableMetadataSet

from smsp_connector.dagster import build_definitions
from smsp_connector.settings import PushSource, Settings

from .conftest import API_KEY
from .instances import instance_for_test
from .pipeline_helpers import PipelineRig

TABLES = {
    "stop_list": "crm.stop_list",
    "stop_list_history": "crm.stop_list_history",
    "audit_log": "crm.audit_log",
    "input_rejections": "crm.input_rejections",
    "stop_list_snapshots": "crm.stop_list_snapshots",
}


def test_every_table_asset_names_its_table_and_its_columns():
    source = PushSource(name="web", table="web.unsubscribes", phone_column="mobile")
    built = build_definitions(
        Settings(api_key=API_KEY, key_prefix="acme", schema="crm", push_sources=(source,))
    )
    specs = {
        spec.key.to_user_string(): spec
        for asset in built.definitions.assets or []
        for spec in (asset.specs if isinstance(asset, dg.AssetsDefinition) else [asset])
    }

    for table, name in TABLES.items():
        metadata = TableMetadataSet.extract(specs[f"acme/{table}"].metadata)
        assert metadata.table_name == name
        assert metadata.column_schema is not None and len(metadata.column_schema.columns) >= 3
    assert TableMetadataSet.extract(specs["acme/opt_outs_web"].metadata).table_name == (
        "web.unsubscribes"
    )


@pytest.mark.heavy
def test_every_materialization_of_a_push_run_has_a_row_count(emulator, tmp_path):
    with instance_for_test() as instance:
        rig = PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)
        csv = tmp_path / "in.csv"
        csv.write_text("phone\n0611111111\n0622222222\nabc\n", encoding="utf-8")
        keys = rig.defs.keys

        result = rig.run(
            [*rig.pushes(), *rig.defs.extract.assets],
            keys.op_config(keys.additions, csv_path=str(csv)),
        )

    assert result.success
    counts = {
        event.asset_key.to_user_string(): TableMetadataSet.extract(
            event.materialization.metadata
        ).row_count
        for event in result.get_asset_materialization_events()
    }
    assert counts["smsp/stop_list_additions"] == 3, "the input rows it handled"
    assert counts["smsp/stop_list"] == 2
    assert None not in counts.values(), counts
