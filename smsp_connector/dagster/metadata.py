"""Frames as ``MetadataValue.table``: previews and row lists shown as real tables in the UI,
not as Markdown behind a "Show Markdown" link."""

import dagster as dg
import pandas as pd

# What dagster-dlt, dagster-census and dagster-sling use for table metadata: not exported at
# Dagster's top level in 1.13, but the keys it writes (dagster/table_name, dagster/column_schema,
# dagster/row_count) are the ones the UI reads.
from dagster._core.definitions.metadata import TableMetadataSet

from smsp_connector.intake.phone_numbers import masked

__all__ = ["TableMetadataSet", "frame_table", "masked"]

NUMBER_COLUMNS = ("phone_number", "target", "raw_value", "e164")
"""The columns of the frames shown that may hold a phone number, or a raw input value."""


def frame_table(
    frame: pd.DataFrame, limit: int = 100, *, raw_numbers: bool = False
) -> dg.TableMetadataValue:
    """The first ``limit`` rows of ``frame``; integer columns stay integers (nullable ones
    too), the others are shown as text; the :data:`NUMBER_COLUMNS` masked unless
    ``raw_numbers`` (Dagster's event log may be hosted by a third party)."""
    shown = frame.head(limit).copy()
    if not raw_numbers:
        shown = _masked_rows(shown)
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


def _masked_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The number columns masked, and each row's number masked where its other text quotes it
    (a rejection's reason names the raw value)."""
    numbers = [name for name in NUMBER_COLUMNS if name in frame.columns]
    texts = [name for name in frame.columns if name not in numbers and frame[name].dtype == object]

    def row(values: pd.Series) -> pd.Series:
        quoted = [str(values[name]) for name in numbers if pd.notna(values[name])]
        for name in texts:
            if isinstance(values[name], str):
                for number in quoted:
                    if len(number) >= 8:
                        values[name] = values[name].replace(number, masked(number))
        for name in numbers:
            if pd.notna(values[name]):
                values[name] = masked(values[name])
        return values

    return frame.apply(row, axis=1) if len(frame) and numbers else frame
