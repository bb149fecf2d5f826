"""Frames as ``MetadataValue.table``: previews and row lists shown as real tables in the UI,
not as Markdown behind a "Show Markdown" link."""

import dagster as dg
import pandas as pd

# What dagster-dlt, dagster-census and dagster-sling use for table metadata: not exported at
# Dagster's top level in 1.13, but the keys it writes (dagster/table_name, dagster/column_schema,
# dagster/row_count) are the ones the UI reads.
from dagster._core.definitions.metadata import TableMetadataSet

__all__ = ["TableMetadataSet", "frame_table"]


def frame_table(frame: pd.DataFrame, limit: int = 100) -> dg.TableMetadataValue:
    """The first ``limit`` rows of ``frame``; integer columns stay integers (nullable ones
    too), the others are shown as text."""
    shown = frame.head(limit)
    integer = {
        name
        for name in shown.columns
        if pd.api.types.is_integer_dtype(shown[name])
        or (shown[name].notna().any() and shown[name].dropna().map(_is_whole).all())
    }
    columns = [dg.TableColumn(name, "int" if name in integer else "string") for name in shown]
    records = [
        dg.TableRecord(
            {
                name: None
                if pd.isna(value)
                else int(value)
                if name in integer
                else value.isoformat()
                if isinstance(value, pd.Timestamp)
                else str(value)
                for name, value in row.items()
            }
        )
        for row in shown.to_dict("records")
    ]
    return dg.MetadataValue.table(records, schema=dg.TableSchema(columns))


def _is_whole(value: object) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
    )
