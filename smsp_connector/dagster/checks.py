"""The stop list's asset checks: their specs, and their results from one extraction."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pandas as pd

from smsp_connector.operations.extract import Extraction, ValidationReport


def stop_list_check_specs(key: dg.AssetKey, max_shrink_share: float) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            "schema_valid",
            asset=key,
            blocking=True,
            description="Every row matches StopListSchema (pandera); failures are listed.",
        ),
        dg.AssetCheckSpec(
            "stop_ids_unique",
            asset=key,
            blocking=True,
            description="No two entries share an id (deletion resolves numbers to ids).",
        ),
        dg.AssetCheckSpec(
            "phone_numbers_unique",
            asset=key,
            description=(
                "Warns when a number has several entries. The provider keeps one entry per "
                "number (a second add answers code 3), so duplicates mean odd provider data."
            ),
        ),
        dg.AssetCheckSpec(
            "no_sudden_shrink",
            asset=key,
            blocking=True,
            description=(
                f"Fails when the list lost more than {max_shrink_share:.0%} of the previous "
                "snapshot: a half-empty suppression list sent to a CRM means messages to people "
                "who opted out, so the history and exports do not run."
            ),
        ),
    ]


def stop_list_check_results(
    extraction: Extraction, max_shrink_share: float, *, accept_shrink: bool
) -> list[dg.AssetCheckResult]:
    frame, snapshot = extraction.frame, extraction.snapshot
    return [
        _schema_check(extraction.report),
        _unique_check("stop_ids_unique", frame["stop_id"], dg.AssetCheckSeverity.ERROR),
        _unique_check("phone_numbers_unique", frame["phone_number"], dg.AssetCheckSeverity.WARN),
        _shrink_check(
            snapshot.previous_row_count,
            snapshot.row_count,
            max_shrink_share,
            accepted=accept_shrink,
        ),
    ]


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
