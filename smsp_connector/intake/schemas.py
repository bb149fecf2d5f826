"""pandera schemas of what the CSV readers return: one row per data line of the file."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.dtypes import DataType, immutable
from pandera.engines import pandas_engine
from pandera.typing import Series

from smsp_connector.intake.phone_numbers import E164_PATTERN, RejectionReason

__all__ = ["PhoneIntakeSchema", "Text", "TextIntakeSchema"]


@pandas_engine.Engine.register_dtype
@immutable
class Text(pandas_engine.NpString):
    """``str``, as pandera checks it (each value a ``str``, or null, in an object column),
    checked by one pass of pandas' ``infer_dtype`` in C instead of a Python call per value
    (six text columns of a million rows: 1.4 s). When that pass finds anything else, pandera's
    own check runs and names the values."""

    def check(self, pandera_dtype: DataType, data_container: Any = None) -> Any:
        if (
            isinstance(data_container, pd.Series)
            and data_container.dtype == object
            and pd.api.types.infer_dtype(data_container, skipna=True) in ("string", "empty")
        ):
            return True
        return super().check(pandera_dtype, data_container)


class _IntakeRows(pa.DataFrameModel):
    """The columns every intake frame starts with.

    Its dataframe checks do not ignore nulls: pandera would pass a row whose every value is
    null (none is: ``row_number`` never is) by checking every column for nulls, for each
    check and slice (a third of the validation's time). The same rows pass and fail; a
    failure's report lists the failing row's null cells too.
    """

    source_file: Series[Text] = pa.Field(nullable=False, description="The path as given.")
    row_number: Series[int] = pa.Field(
        nullable=False,
        ge=1,
        unique=True,
        description="Physical line in the file (header = 1, so data rows start at 2), or the "
        "position of a value given on the command line or in run config (from 1).",
    )

    class Config:
        strict = True
        ordered = True


class PhoneIntakeSchema(_IntakeRows):
    """A phone CSV file read: each data row an E.164 number or a rejection, never both.

    The reader adds one str column per requested extra column after these (see
    :func:`phone_intake_schema`).
    """

    raw_value: Series[Text] = pa.Field(nullable=False, description="The cell as read.")
    e164: Series[Text] = pa.Field(nullable=True, str_matches=E164_PATTERN)
    is_valid: Series[pd.BooleanDtype] = pa.Field(
        nullable=True, description="libphonenumber validity; null for a rejected row."
    )
    region: Series[Text] = pa.Field(nullable=True)
    rejection_reason: Series[Text] = pa.Field(
        nullable=True, isin=[reason.value for reason in RejectionReason]
    )
    rejection_message: Series[Text] = pa.Field(nullable=True)
    duplicate_of_row: Series[pd.Int64Dtype] = pa.Field(
        nullable=True, ge=1, description="The first row with the same e164."
    )

    class Config:
        name = "phone_intake"

    @pa.dataframe_check(ignore_na=False)  # see _IntakeRows
    def one_outcome_per_row(cls, df: pd.DataFrame) -> Series[bool]:
        """An e164 with a validity, or a rejection reason with its message."""
        kept = df["e164"].notna()
        return (
            (kept == df["is_valid"].notna())
            & (kept != df["rejection_reason"].notna())
            & (kept != df["rejection_message"].notna())
        )

    @pa.dataframe_check(ignore_na=False)  # see _IntakeRows
    def duplicates_point_back(cls, df: pd.DataFrame) -> Series[bool]:
        """A duplicate is a kept number and names an earlier row."""
        return _points_back(df, has_key=df["e164"].notna())


class TextIntakeSchema(_IntakeRows):
    """A text column read from a CSV file; empty values are kept as rows, for the caller."""

    raw_value: Series[Text] = pa.Field(nullable=False, description="The cell, stripped.")
    duplicate_of_row: Series[pd.Int64Dtype] = pa.Field(
        nullable=True, ge=1, description="The first row with the same non-empty value."
    )

    class Config:
        name = "text_intake"

    @pa.dataframe_check(ignore_na=False)  # see _IntakeRows
    def duplicates_point_back(cls, df: pd.DataFrame) -> Series[bool]:
        """A duplicate has a value and names an earlier row."""
        return _points_back(df, has_key=df["raw_value"] != "")


def phone_intake_schema(extra_columns: tuple[str, ...]) -> pa.DataFrameSchema:
    """:class:`PhoneIntakeSchema` followed by the caller's extra columns, all str."""
    return PhoneIntakeSchema.to_schema().add_columns(
        {name: pa.Column(Text, nullable=False) for name in extra_columns}
    )


def _points_back(df: pd.DataFrame, *, has_key: pd.Series) -> pd.Series:
    """Rows that are not duplicates, or that have a key and name an earlier row."""
    duplicate = df["duplicate_of_row"]
    return duplicate.isna() | ((duplicate < df["row_number"]).fillna(False) & has_key)
