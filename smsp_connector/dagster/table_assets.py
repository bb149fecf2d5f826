"""The warehouse tables that runs write besides their assets' own, as observable assets: the
audit log, the input rejections and the stop list's snapshot log, each with its table name,
columns and lineage, so that the asset graph shows where they come from and the catalog what
they hold.

They are never materialized by a step of their own: the push, delete and cancel steps write
``audit_log`` and ``input_rejections``, the stop list's step writes ``stop_list_snapshots``.
Observing one reads its row count (``dagster/row_count``). Observable rather than external, so
that a selection such as ``smsp/stop_list*`` (the stop list and all that follows it) can be
executed: Dagster refuses a selection holding an asset no step can execute.
"""

import warnings
from collections.abc import Iterator, Sequence

import dagster as dg

from smsp_connector.dagster.keys import SmspKeys, asset_attributes
from smsp_connector.dagster.metadata import TableMetadataSet
from smsp_connector.dagster.resource import resource_keys, step_warehouse
from smsp_connector.settings import Settings
from smsp_connector.warehouse import table_name
from smsp_connector.warehouse.columns import Column, declared_columns, row_count

TABLE_ASSETS = ("audit_log", "input_rejections", "stop_list_snapshots")

_DESCRIPTIONS = {
    "audit_log": "Append-only: one row per input row and outcome of every push, delete and "
    "cancel (pending, then the final outcome), with the provider's code and message, the "
    "attempts and the account. Query {schema}.audit_latest for each row's final state.",
    "input_rejections": "Input rows of a push, delete or cancel that could not be used, with "
    "the file, the row, the raw value, a reason code and a message; nothing was sent for them.",
    "stop_list_snapshots": "One row per extraction of the stop list: run id, time, row count, "
    "entries that entered and left, whether it was valid, and whether it was published or "
    "rejected (and by which check).",
}


def build_table_assets(
    settings: Settings, *, changes: Sequence[dg.AssetKey] = ()
) -> list[dg.AssetsDefinition]:
    """Observable assets for :data:`TABLE_ASSETS`, in the extract's group, drawn downstream of
    the assets whose runs write them: the push, delete and cancel outcomes, and ``changes``
    (other assets that write the audit log, e.g. the pushes of warehouse push sources)."""
    keys = SmspKeys.of(settings)
    columns = declared_columns(TABLE_ASSETS)
    outcomes = list(dict.fromkeys([keys.additions, keys.deletions, keys.cancellations, *changes]))
    deps = {
        "audit_log": outcomes,
        "input_rejections": outcomes,
        "stop_list_snapshots": [keys.stop_list],
    }
    specs = [
        dg.AssetSpec(
            key=keys.key(table),
            deps=deps[table],
            description=_DESCRIPTIONS[table].format(schema=settings.schema),
            metadata=dict(
                TableMetadataSet(
                    table_name=table_name(settings.schema, table),
                    column_schema=table_schema(columns[table]),
                )
            ),
            **asset_attributes(settings, {"duckdb"}),
        )
        for table in TABLE_ASSETS
    ]
    return [
        _observed(settings, spec, table) for spec, table in zip(specs, TABLE_ASSETS, strict=True)
    ]


def _observed(settings: Settings, spec: dg.AssetSpec, table: str) -> dg.AssetsDefinition:
    """``spec`` observed by reading its table's row count."""
    with warnings.catch_warnings():  # a beta decorator; the only one that gives deps
        warnings.simplefilter("ignore", dg.BetaWarning)

        @dg.multi_observable_source_asset(
            specs=[spec],
            name=SmspKeys.of(settings).op_name(spec.key),
            required_resource_keys=resource_keys(settings),
        )
        def observe_table(context: dg.AssetExecutionContext) -> Iterator[dg.ObserveResult]:
            warehouse = step_warehouse(context, settings)
            yield dg.ObserveResult(
                asset_key=spec.key,
                metadata={"dagster/row_count": row_count(warehouse, table)},
            )

    return observe_table


def table_schema(columns: tuple[Column, ...]) -> dg.TableSchema:
    """The columns as Dagster's table schema (types as DuckDB declares them)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=column.name,
                type=column.type,
                description=f"default {column.default}" if column.default else None,
                constraints=dg.TableColumnConstraints(nullable=column.nullable),
            )
            for column in columns
        ]
    )
