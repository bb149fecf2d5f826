"""The stop list's asset checks: their specs, and their results from one extraction."""

from __future__ import annotations

import dagster as dg

from smsp_connector.operations.extract import Extraction


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


def stop_list_check_results(extraction: Extraction) -> list[dg.AssetCheckResult]:
    """The checks the extraction ran on its staged snapshot, as Dagster check results."""
    return [
        dg.AssetCheckResult(
            check_name=check.name,
            passed=check.passed,
            severity=dg.AssetCheckSeverity.ERROR if check.blocking else dg.AssetCheckSeverity.WARN,
            metadata={
                key: dg.MetadataValue.md(value) if key == "failure_cases" else value
                for key, value in check.metadata.items()
            },
        )
        for check in extraction.checks
    ]
