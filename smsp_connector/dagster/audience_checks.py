"""``build_audience_check``: a blocking check a data team attaches to its own campaign-audience
asset, failing while the audience holds a number that opted out."""

from functools import partial

import dagster as dg
import pandas as pd

from smsp_connector.dagster.resource import resource_keys, step_warehouse
from smsp_connector.defaults import DEFAULT_REGION
from smsp_connector.operations.audience import check_numbers
from smsp_connector.settings import Settings
from smsp_connector.warehouse import read_source_rows, table_query


def build_audience_check(
    asset_key: dg.AssetKey | str,
    phone_column: str,
    *,
    settings: Settings,
    table: str | None = None,
    default_region: str = DEFAULT_REGION,
    from_value: bool = False,
) -> dg.AssetChecksDefinition:
    """The check ``no_opted_out_numbers`` on ``asset_key``, an audience kept as a table of the
    account's warehouse (``table``; by default the key's last two parts, ``crm/audience`` ->
    ``crm.audience``), or, ``from_value``, the asset's own value: a pandas DataFrame its IO
    manager loads. Blocking: the assets downstream (the send) do not run while it fails. Its
    metadata: counts and the opted-out numbers as SHA-256, never raw."""
    key = dg.AssetKey.from_user_string(asset_key) if isinstance(asset_key, str) else asset_key
    if from_value and table is not None:
        raise ValueError("table and from_value exclude each other")
    source = "the asset's DataFrame" if from_value else table or ".".join(key.path[-2:])
    check = partial(
        dg.asset_check,
        asset=key,
        name="no_opted_out_numbers",
        blocking=True,
        required_resource_keys=resource_keys(settings),
        description=f"Fails while {source}, column {phone_column}, holds a number that opted "
        f"out (on account {settings.account_label}'s stop list, or received and not yet there).",
    )

    def checked(context: dg.AssetCheckExecutionContext, phones: list) -> dg.AssetCheckResult:
        warehouse = step_warehouse(context, settings)
        result = check_numbers(warehouse, phones, default_region=default_region)
        return dg.AssetCheckResult(
            passed=result.passed,
            metadata={
                "rows": result.rows,
                "opted_out_rows": result.opted_out_rows,
                "opted_out_numbers": result.opted_out_numbers,
                "unreadable_rows": result.unreadable_rows,
                "opted_out_sha256": dg.MetadataValue.json(list(result.samples)),
            },
        )

    if from_value:

        @check()
        def no_opted_out_numbers_in_value(
            context: dg.AssetCheckExecutionContext, audience: pd.DataFrame
        ) -> dg.AssetCheckResult:
            if phone_column not in audience.columns:
                raise KeyError(
                    f"{key.to_user_string()} has no column {phone_column!r} "
                    f"(its columns: {', '.join(map(str, audience.columns))})"
                )
            return checked(context, [_text(value) for value in audience[phone_column]])

        return no_opted_out_numbers_in_value

    query = table_query(source)

    @check()
    def no_opted_out_numbers(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        rows = read_source_rows(step_warehouse(context, settings), query, phone_column=phone_column)
        return checked(context, list(rows.phones))

    return no_opted_out_numbers


def _text(value: object) -> str:
    """A DataFrame cell as the intake reads a CSV cell: missing is empty, ``33612345678.0``
    (an integer column with a gap, read as floats) is ``33612345678``."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
