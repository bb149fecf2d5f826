"""An account's jobs run in process, their results as plain values: what a script (``smsp
demo``, a notebook, a smoke test) needs without Dagster's own result types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""Run config that keeps a run's console quiet below warnings."""


@dataclass(frozen=True)
class JobRun:
    """What one in-process run did."""

    run_id: str
    success: bool
    materialized: tuple[tuple[str, dict[str, Any]], ...]
    """Each materialization in order: the asset key (``smsp/stop_list``) and its metadata's
    plain values."""
    failed_checks: tuple[str, ...]
    errors: tuple[str, ...]
    """Each failed step: ``step: message`` of the error it raised (below Dagster's wrapping)."""


def execute_job(
    definitions: dg.Definitions,
    job_name: str,
    run_config: Mapping[str, Any] | None = None,
    *,
    assets: Sequence[dg.AssetKey] | None = None,
    instance: dg.DagsterInstance | None = None,
) -> JobRun:
    """Run ``job_name`` of ``definitions`` in process (only ``assets`` of it if given), its
    console quiet below warnings; a failed run is returned, not raised."""
    result = definitions.resolve_job_def(job_name).execute_in_process(
        run_config={**QUIET_LOGS, **(run_config or {})},
        instance=instance,
        asset_selection=list(assets) if assets is not None else None,
        raise_on_error=False,
    )
    return JobRun(
        run_id=result.run_id,
        success=result.success,
        materialized=tuple(
            (
                event.asset_key.to_user_string(),
                {key: value.value for key, value in event.materialization.metadata.items()},
            )
            for event in result.get_asset_materialization_events()
        ),
        failed_checks=tuple(
            check.check_name for check in result.get_asset_check_evaluations() if not check.passed
        ),
        errors=tuple(
            f"{event.step_key}: {_root_cause(event.step_failure_data.error)}"
            for event in result.all_events
            if event.is_step_failure and event.step_failure_data.error is not None
        ),
    )


def _root_cause(error: Any) -> str:
    """The innermost message of a step failure's ``SerializableErrorInfo`` (Dagster wraps the
    step's own error in its own)."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()
