"""``build_audience_check``: a blocking check a data team attaches to its own campaign-audience
asset, failing while the audience holds a number that opted out."""

import dagster as dg

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
) -> dg.AssetChecksDefinition:
    """The check ``no_opted_out_numbers`` on ``asset_key``, an audience kept as a table of the
    account's warehouse (``table``; by default the key's last two parts, ``crm/audience`` ->
    ``crm.audience``). Blocking: the assets downstream (the send) do not run while it fails.
    Its metadata: counts and the opted-out numbers as SHA-256, never raw."""
    key = dg.AssetKey.from_user_string(asset_key) if isinstance(asset_key, str) else asset_key
    source = table or ".".join(key.path[-2:])
    query = table_query(source)

    @dg.asset_check(
        asset=key,
        name="no_opted_out_numbers",
        blocking=True,
        required_resource_keys=resource_keys(settings),
        description=f"Fails while {source}.{phone_column} holds a number that opted out (on "
        f"account {settings.account_label}'s stop list, or received and not yet there).",
    )
    def no_opted_out_numbers(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        warehouse = step_warehouse(context, settings)
        rows = read_source_rows(warehouse, query, phone_column=phone_column)
        result = check_numbers(warehouse, list(rows.phones), default_region=default_region)
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

    return no_opted_out_numbers
