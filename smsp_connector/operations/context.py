"""What one run acts with, whoever starts it: a Dagster step (``dagster/resource.py``'s
``step_context``), the ``smsp`` command (``cli/running.py``) or a test."""

from __future__ import annotations

from dataclasses import dataclass

from smsp_connector.client import SmspClient
from smsp_connector.operations.progress import QUIET, ProgressFactory
from smsp_connector.warehouse import Warehouse


@dataclass(frozen=True, slots=True)
class RunContext:
    """The account's client and warehouse, the run's id and job (as the audit log records
    them), where progress goes, and the account's label."""

    client: SmspClient
    warehouse: Warehouse
    run_id: str
    job: str
    progress: ProgressFactory = QUIET
    account: str | None = None
