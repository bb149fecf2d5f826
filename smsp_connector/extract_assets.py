"""Dagster assets that extract the stop list: snapshot, history and suppression exports.

A factory, so a deployment picks its key prefix, thresholds and paths; ``assets/`` wires it.
Resources expected: ``smsp`` (:class:`SmspResource`) and ``duckdb`` (dagster-duckdb's
``DuckDBResource``).
"""

import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from dagster_pandera import pandera_schema_to_dagster_type
from pydantic import Field

from smsp_connector.exports import export_suppression_list
from smsp_connector.resources import SmspResource
from smsp_connector.schemas import StopListSchema
from smsp_connector.stop_list import ValidationReport, stop_list_frame, validate_stop_list
from smsp_connector.warehouse import (
    HISTORY,
    STOP_LIST,
    Tables,
    replace_stop_list,
    update_history,
)

DUCKDB_POOL = "smsp_duckdb"
"""Every step that writes the DuckDB file runs in this pool; the instance settings shipped in the
repository limit it to one step at a time, because DuckDB allows one writing process per file."""


class StopListConfig(dg.Config):
    accept_shrink: bool = Field(
        default=False,
        description=(
            "Accept, for this run only, a snapshot that lost more than the allowed share of the "
            "previous one (after checking with the provider that it is intended)."
        ),
    )


def build_extract_assets(
    *,
    prefix: str = "smsp",
    group_name: str = "smsp",
    max_shrink_share: float = 0.2,
    export_dir: str | Path = "exports",
    upstream: Sequence[dg.AssetKey] = (),
) -> list[dg.AssetsDefinition]:
    """The stop list snapshot (with its checks), its history and the two suppression exports.

    ``upstream``: assets that change the provider's list (the push and delete outcomes), drawn
    as the stop list's parents in the asset graph.
    """
    stop_list_key = dg.AssetKey([prefix, "stop_list"])
    checks = [
        dg.AssetCheckSpec(
            "schema_valid",
            asset=stop_list_key,
            blocking=True,
            description="Every row matches StopListSchema (pandera); failures are listed.",
        ),
        dg.AssetCheckSpec(
            "stop_ids_unique",
            asset=stop_list_key,
            blocking=True,
            description="No two entries share an id (deletion resolves numbers to ids).",
        ),
        dg.AssetCheckSpec(
            "phone_numbers_unique",
            asset=stop_list_key,
            description=(
                "Warns when a number has several entries. The provider keeps one entry per "
                "number (a second add answers code 3), so duplicates mean odd provider data."
            ),
        ),
        dg.AssetCheckSpec(
            "no_sudden_shrink",
            asset=stop_list_key,
            blocking=True,
            description=(
                f"Fails when the list lost more than {max_shrink_share:.0%} of the previous "
                "snapshot: a half-empty suppression list sent to a CRM means messages to people "
                "who opted out, so the history and exports do not run."
            ),
        ),
    ]
    with warnings.catch_warnings():  # a beta helper, used only to show the columns in the UI
        warnings.simplefilter("ignore", dg.BetaWarning)
        column_schema = pandera_schema_to_dagster_type(StopListSchema).metadata["schema"]

    @dg.asset(
        key=stop_list_key,
        deps=list(upstream),
        group_name=group_name,
        pool=DUCKDB_POOL,
        kinds={"duckdb", "pandas"},
        check_specs=checks,
        metadata={"dagster/column_schema": column_schema, "dagster/table_name": STOP_LIST},
        description=(
            "The provider's whole stop list (GET /stop-sms/list), validated with pandera and "
            f"stored as {STOP_LIST}; created_at is the provider's Paris time as a UTC instant."
        ),
    )
    def stop_list(
        context: dg.AssetExecutionContext,
        config: StopListConfig,
        smsp: SmspResource,
        duckdb: DuckDBResource,
    ) -> dg.MaterializeResult:
        extracted_at = datetime.now(UTC)
        started = time.monotonic()
        with smsp.get_client() as client:
            records = client.list_stop_records()
        context.log.info(f"fetched {len(records):,} entries in {time.monotonic() - started:.1f} s")
        frame = stop_list_frame(records, extracted_at)
        report = validate_stop_list(frame, records)
        del records
        with duckdb.get_connection() as conn:
            summary = replace_stop_list(
                conn,
                frame,
                run_id=context.run.run_id,
                extracted_at=extracted_at,
                valid=report.valid,
            )
        metadata: dict[str, Any] = {
            "dagster/row_count": summary.row_count,
            "entered": summary.entered,
            "left": summary.left,
            "valid": report.valid,
            "failing_rows": report.failing_rows,
            "preview": dg.MetadataValue.md(_preview(frame)),
        }
        if not report.valid:
            metadata["validation_report"] = dg.MetadataValue.md(report.to_markdown())
            context.log.error(
                f"{report.failing_rows} row(s) fail StopListSchema; see validation_report"
            )
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[
                _schema_check(report),
                _unique_check("stop_ids_unique", frame["stop_id"], dg.AssetCheckSeverity.ERROR),
                _unique_check(
                    "phone_numbers_unique", frame["phone_number"], dg.AssetCheckSeverity.WARN
                ),
                _shrink_check(
                    summary.previous_row_count,
                    summary.row_count,
                    max_shrink_share,
                    accepted=config.accept_shrink,
                ),
            ],
        )

    @dg.asset(
        key=[prefix, "stop_list_history"],
        deps=[stop_list_key],
        group_name=group_name,
        pool=DUCKDB_POOL,
        kinds={"duckdb"},
        metadata={"dagster/table_name": HISTORY},
        description=(
            "Who entered and who left the stop list, and when each number was first and last "
            f"seen, kept across runs ({HISTORY}, append-only)."
        ),
    )
    def stop_list_history(duckdb: DuckDBResource) -> dg.MaterializeResult:
        with duckdb.get_connection() as conn:
            update = update_history(conn)
            recent = conn.execute(
                f"SELECT observed_at, change, phone_number, stop_id, first_seen_at, last_seen_at "
                f"FROM {Tables.of(conn).history} ORDER BY observed_at DESC, phone_number LIMIT 10"
            ).fetchdf()
            total = conn.execute(f"SELECT count(*) FROM {Tables.of(conn).history}").fetchone()[0]
        return dg.MaterializeResult(
            metadata={
                "entered": update.entered,
                "left": update.left,
                "listed": update.listed,
                "dagster/row_count": int(total),
                "recent_changes": dg.MetadataValue.md(_markdown(recent)),
            }
        )

    return [
        stop_list,
        stop_list_history,
        _export_asset(prefix, group_name, stop_list_key, Path(export_dir), hashed=False),
        _export_asset(prefix, group_name, stop_list_key, Path(export_dir), hashed=True),
    ]


def _export_asset(
    prefix: str, group_name: str, upstream: dg.AssetKey, directory: Path, *, hashed: bool
) -> dg.AssetsDefinition:
    name = "suppression_export_sha256" if hashed else "suppression_export"
    form = "SHA-256 hashes of the numbers" if hashed else "E.164 numbers"

    @dg.asset(
        key=[prefix, name],
        deps=[upstream],
        group_name=group_name,
        pool=DUCKDB_POOL,
        kinds={"csv", "parquet"},
        description=(
            f"The suppression list for CRM syncs ({form}) as CSV and Parquet in {directory}/; "
            "CSV cells a spreadsheet would run as a formula are neutralised."
        ),
    )
    def export(duckdb: DuckDBResource) -> dg.MaterializeResult:
        with duckdb.get_connection() as conn:
            result = export_suppression_list(conn, directory, hashed=hashed)
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(result.csv_path.resolve())),
                "parquet_path": dg.MetadataValue.path(str(result.parquet_path.resolve())),
                "dagster/row_count": result.row_count,
                "preview": dg.MetadataValue.md(_markdown(result.preview)),
            }
        )

    return export


def _preview(frame: pd.DataFrame, rows: int = 10) -> str:
    return _markdown(frame.head(rows))


def _markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False) if not frame.empty else "_(no rows)_"


def _schema_check(report: ValidationReport) -> dg.AssetCheckResult:
    metadata: dict[str, Any] = {"failing_rows": report.failing_rows}
    if not report.valid:
        metadata["failure_cases"] = dg.MetadataValue.md(report.to_markdown())
    return dg.AssetCheckResult(check_name="schema_valid", passed=report.valid, metadata=metadata)


def _unique_check(
    name: str, values: pd.Series, severity: dg.AssetCheckSeverity
) -> dg.AssetCheckResult:
    present = values.dropna()
    duplicated = present[present.duplicated(keep=False)]
    examples = sorted({str(value) for value in duplicated.head(20)})
    return dg.AssetCheckResult(
        check_name=name,
        passed=duplicated.empty,
        severity=severity,
        metadata={"duplicated_rows": len(duplicated), "examples": ", ".join(examples) or "-"},
    )


def _shrink_check(
    previous: int | None, current: int, max_share: float, *, accepted: bool
) -> dg.AssetCheckResult:
    lost_share = (previous - current) / previous if previous else 0.0
    passed = lost_share <= max_share or accepted
    return dg.AssetCheckResult(
        check_name="no_sudden_shrink",
        passed=passed,
        metadata={
            "previous_row_count": previous if previous is not None else "-",
            "row_count": current,
            "lost_share": round(lost_share, 4),
            "max_shrink_share": max_share,
            "accepted_by_run_config": accepted,
        },
    )
