"""pandera schemas of the tables this project writes."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from smsp_connector.intake.phone_numbers import E164_PATTERN

UtcTimestamp = Annotated[pd.DatetimeTZDtype, "ns", "UTC"]


class StopListSchema(pa.DataFrameModel):
    """The provider's stop list, one row per entry, as extracted.

    ``created_at`` is the provider's ``createdAt`` (French local time with no zone) converted to
    a UTC instant; in the hour repeated when clocks go back it is read as summer time (the first
    occurrence), like :func:`smsp_connector.client.models.parse_provider_time`.
    """

    stop_id: Series[pd.Int64Dtype] = pa.Field(
        nullable=False, ge=1, description="The provider's id of the entry (what delete takes)."
    )
    phone_number: Series[str] = pa.Field(
        nullable=False, str_matches=E164_PATTERN, description="The opted-out number, E.164."
    )
    created_at: Series[UtcTimestamp] = pa.Field(
        nullable=False, description="When the number opted out, as a UTC instant."
    )
    extracted_at: Series[UtcTimestamp] = pa.Field(
        nullable=False, description="When this snapshot was read from the provider (UTC)."
    )

    class Config:
        name = "stop_list"
        strict = True
        ordered = True
