"""The audit log, input rejections and snapshot log as external assets: their keys, tables,
columns (as DuckDB reports them for the tables Warehouse creates) and lineage."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from smsp_connector.dagster import SmspKeys, build_definitions
from smsp_connector.dagster.table_assets import TABLE_ASSETS, build_table_assets
from smsp_connector.settings import Settings
from smsp_connector.warehouse import Warehouse

from .instances import instance_for_test
from .pipeline_helpers import PipelineRig


def _described(database: str, schema: str, table: str) -> list[tuple[str, str, bool]]:
    """Name, type and nullability of each column, from DuckDB's DESCRIBE."""
    with duckdb.connect(database, read_only=True) as conn:
        catalog = conn.execute("SELECT current_database()").fetchone()[0]
        rows = conn.execute(f'DESCRIBE "{catalog}".{schema}.{table}').fetchall()
    return [(name, column_type, null == "YES") for name, column_type, null, *_ in rows]


def _specs(assets: list[dg.AssetsDefinition]) -> list[dg.AssetSpec]:
    return [spec for asset in assets for spec in asset.specs]


def _schema_columns(spec: dg.AssetSpec) -> list[tuple[str, str, bool]]:
    schema = spec.metadata["dagster/column_schema"]
    schema = getattr(schema, "schema", schema)  # a TableSchemaMetadataValue, or the schema
    assert isinstance(schema, dg.TableSchema)
    return [(c.name, c.type, c.constraints.nullable) for c in schema.columns]


@pytest.mark.parametrize(
    "options",
    [{}, {"key_prefix": "acme/eu", "schema": "crm_optouts", "group_name": "acme"}],
    ids=["defaults", "named"],
)
def test_the_specs_name_their_tables_and_show_the_columns_duckdb_creates(tmp_path, options):
    settings = Settings(**options)
    keys = SmspKeys.of(settings)
    specs = {spec.key: spec for spec in _specs(build_table_assets(settings))}
    database = str(tmp_path / "warehouse.duckdb")
    with Warehouse.at(database, schema=settings.schema).connect():
        pass  # the tables, created as every run creates them

    assert list(specs) == [keys.key(table) for table in TABLE_ASSETS]
    for table in TABLE_ASSETS:
        spec = specs[keys.key(table)]
        assert spec.metadata["dagster/table_name"] == f"{settings.schema}.{table}"
        columns = _schema_columns(spec)
        assert columns == _described(database, settings.schema, table), table
        assert len(columns) >= 8
        assert spec.group_name == settings.group_name
        assert spec.kinds == {"duckdb"}
        assert spec.description
    outcomes = {keys.additions, keys.deletions, keys.cancellations}
    assert {dep.asset_key for dep in specs[keys.key("audit_log")].deps} == outcomes
    assert {dep.asset_key for dep in specs[keys.key("input_rejections")].deps} == outcomes
    assert [dep.asset_key for dep in specs[keys.key("stop_list_snapshots")].deps] == [
        keys.stop_list
    ]


def test_other_writers_of_the_audit_log_are_drawn_upstream_of_it():
    keys = SmspKeys.of(Settings())
    source_push = keys.key("stop_list_additions_crm")
    audit, rejections, snapshots = _specs(
        build_table_assets(Settings(), changes=[source_push, keys.additions])
    )

    for spec in (audit, rejections):
        assert [dep.asset_key for dep in spec.deps] == [
            keys.additions,
            keys.deletions,
            keys.cancellations,
            source_push,
        ]
    assert [dep.asset_key for dep in snapshots.deps] == [keys.stop_list]


def test_the_types_and_defaults_are_duckdbs_own():
    [audit, _, snapshots] = _specs(build_table_assets(Settings()))
    audit_types = {name: kind for name, kind, _ in _schema_columns(audit)}
    assert audit_types["recorded_at"] == "TIMESTAMP WITH TIME ZONE"
    assert audit_types["provider_code"] == "INTEGER"
    assert audit_types["account"] == "VARCHAR"  # added by the migration at the DDL's end
    schema = snapshots.metadata["dagster/column_schema"]
    schema = getattr(schema, "schema", schema)
    status = next(column for column in schema.columns if column.name == "status")
    assert status.description == "default 'published'"
    assert not status.constraints.nullable


@pytest.mark.heavy
def test_in_the_definitions_they_draw_the_lineage_and_match_what_a_run_writes(emulator, tmp_path):
    with instance_for_test() as instance:
        rig = PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)
        settings = rig.settings()
        built = build_definitions(settings)
        tables = build_table_assets(settings)
        definitions = built.definitions
        dg.Definitions.validate_loadable(definitions)
        graph = definitions.resolve_asset_graph()
        keys = built.keys

        assert graph.get(keys.key("audit_log")).parent_keys == {
            keys.additions,
            keys.deletions,
            keys.cancellations,
        }
        assert keys.key("stop_list_snapshots") in graph.get(keys.stop_list).child_keys
        assert graph.get(keys.key("audit_log")).is_observable

        emulator.state.seed_entries([("+33612345678", "2025-07-14 09:30:00")])
        assert built.job("smsp_refresh").execute_in_process(instance=instance).success

        snapshots = next(
            spec for spec in _specs(tables) if spec.key == keys.key("stop_list_snapshots")
        )
        table = snapshots.metadata["dagster/table_name"]
        assert rig.query(f"SELECT row_count, status FROM {table}") == [(1, "published")]
        observed = dg.materialize(
            tables, resources=built.resources, instance=instance, selection=[snapshots.key]
        )
        [observation] = observed.asset_observations_for_node(keys.op_name(snapshots.key))
        assert observation.metadata["dagster/row_count"].value == 1
        assert _schema_columns(snapshots) == _described(
            str(rig.duckdb_path), "smsp", "stop_list_snapshots"
        )
