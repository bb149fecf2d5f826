"""Dagster assets that change the provider's state: push, guarded delete, cancel.

Each is a thin adapter over :func:`~smsp_connector.operations.run.run_operation`, the run core
that the ``smsp`` command shares: run config in, a summary out as metadata and run tags.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from smsp_connector.dagster.keys import OPERATIONS, SmspKeys
from smsp_connector.dagster.resource import SmspResource, warehouse_of
from smsp_connector.intake import IntakeError
from smsp_connector.operations.delete import DeletionCapExceeded
from smsp_connector.operations.inputs import Input, MessageIdFile, MessageIdValues, PhoneFile
from smsp_connector.operations.progress import log_progress
from smsp_connector.operations.run import Cancel, Delete, Operation, Push, RunReport, run_operation
from smsp_connector.settings import Settings


class InboxFileConfig(dg.Config):
    csv_path: str = Field(description="The CSV file to read.")
    move_to: str | None = Field(
        default=None,
        description="Folder to move the file (and its reports) to once processed; "
        "the inbox sensor sets inbox/done.",
    )


class PhoneFileConfig(InboxFileConfig):
    phone_column: str | None = Field(
        default=None, description="The phone column's header, when it is not recognised."
    )
    default_region: str = Field(default="FR", description="Region of national-format numbers.")

    def input(self) -> PhoneFile:
        return PhoneFile(Path(self.csv_path), self.phone_column, self.default_region)


class PushConfig(PhoneFileConfig):
    dry_run: bool = Field(default=False, description="Plan and record, send nothing.")


class DeleteConfig(PhoneFileConfig):
    confirm: bool = Field(
        default=False,
        description="Really delete. Without it the run is a dry run that records the plan.",
    )
    max_deletions: int = Field(
        default=100, description="A confirmed plan larger than this fails before any call."
    )


class CancelConfig(dg.Config):
    csv_path: str | None = Field(default=None, description="A CSV file of message ids.")
    message_ids: list[str] = Field(default=[], description="Message ids, instead of a file.")
    id_column: str | None = Field(default=None, description="The message id column's header.")
    move_to: str | None = Field(default=None, description="Folder to move the file to after.")


@dataclass(frozen=True)
class MutationAssets:
    """What :func:`build_mutation_assets` built."""

    inbox: dict[str, dg.AssetSpec]
    """The external asset standing for each inbox folder's CSV files, by operation."""
    additions: dg.AssetsDefinition
    deletions: dg.AssetsDefinition
    cancellations: dg.AssetsDefinition

    @property
    def assets(self) -> list[dg.AssetSpec | dg.AssetsDefinition]:
        return [*self.inbox.values(), self.additions, self.deletions, self.cancellations]


def build_mutation_assets(settings: Settings) -> MutationAssets:
    """The three inbox sources and the push, delete and cancel outcome assets."""
    keys = SmspKeys.of(settings)
    runner = _Runner(settings)
    inbox = {
        operation: dg.AssetSpec(
            key=keys.inbox(operation),
            group_name=settings.group_name,
            kinds={"csv"},
            description=f"CSV files dropped in {settings.inbox_dir}/{operation}/ "
            "(marketing and CRM exports).",
        )
        for operation in OPERATIONS
    }
    common: dict[str, Any] = {
        "group_name": settings.group_name,
        "pool": settings.pool,
        "kinds": {"duckdb"},
        "required_resource_keys": {settings.smsp_resource_key, settings.duckdb_resource_key},
    }

    @dg.asset(
        key=keys.additions,
        deps=[inbox["add"].key],
        check_specs=[
            dg.AssetCheckSpec(
                "every_number_pushed",
                asset=keys.additions,
                description="Fails when numbers are still missing after every retry; the next "
                "run of the same file picks them up.",
            )
        ],
        description="Opt-outs from a CSV file pushed to /stop-sms/add (only the missing ones), "
        f"one audit row per input row in {settings.schema}.audit_log.",
        **common,
    )
    def stop_list_additions(
        context: dg.AssetExecutionContext, config: PushConfig
    ) -> dg.MaterializeResult:
        report = runner.run(context, Push(dry_run=config.dry_run), config.input(), config.move_to)
        failed = report.counts["failed"]
        return dg.MaterializeResult(
            metadata=runner.metadata(context, report),
            check_results=[
                dg.AssetCheckResult(
                    check_name="every_number_pushed",
                    passed=failed == 0,
                    metadata={"failed": failed},
                )
            ],
        )

    @dg.asset(
        key=keys.deletions,
        deps=[inbox["delete"].key],
        description="Numbers removed from the stop list with consent evidence (consent_at, "
        "consent_source), dry run unless confirmed, capped; every row in "
        f"{settings.schema}.audit_log.",
        **common,
    )
    def stop_list_deletions(
        context: dg.AssetExecutionContext, config: DeleteConfig
    ) -> dg.MaterializeResult:
        operation = Delete(confirm=config.confirm, max_deletions=config.max_deletions)
        report = runner.run(context, operation, config.input(), config.move_to)
        return dg.MaterializeResult(metadata=runner.metadata(context, report))

    @dg.asset(
        key=keys.cancellations,
        deps=[inbox["cancel"].key],
        description="Scheduled sends cancelled through /message-cancel: cancelled, already "
        "cancelled (5), too late (6), already sent (7), not found (4) or failed, per id.",
        **common,
    )
    def message_cancellations(
        context: dg.AssetExecutionContext, config: CancelConfig
    ) -> dg.MaterializeResult:
        csv_path = config.csv_path or None
        if (csv_path is None) == (not config.message_ids):
            raise dg.Failure("give either csv_path or message_ids", allow_retries=False)
        source: Input = (
            MessageIdFile(Path(csv_path), config.id_column)
            if csv_path
            else MessageIdValues(config.message_ids, label="run config")
        )
        report = runner.run(context, Cancel(), source, config.move_to)
        return dg.MaterializeResult(metadata=runner.metadata(context, report))

    return MutationAssets(inbox, stop_list_additions, stop_list_deletions, message_cancellations)


class _Runner:
    """Runs an operation from a Dagster step: resources in, one-line failures out."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def run(
        self,
        context: dg.AssetExecutionContext,
        operation: Operation[Any],
        source: Input,
        move_to: str | None,
    ) -> RunReport[Any]:
        settings = self._settings
        smsp: SmspResource = getattr(context.resources, settings.smsp_resource_key)
        warehouse = warehouse_of(
            getattr(context.resources, settings.duckdb_resource_key), settings.schema
        )
        try:
            with smsp.get_client() as client:
                return run_operation(
                    operation,
                    source,
                    client=client,
                    warehouse=warehouse,
                    run_id=context.run.run_id,
                    job=context.run.job_name,
                    progress=log_progress(context.log.info),
                    move_to=Path(move_to) if move_to else None,
                )
        except (IntakeError, DeletionCapExceeded) as error:
            # One clear line in the UI and the logs; nothing was sent.
            raise dg.Failure(description=str(error), allow_retries=False) from None

    @staticmethod
    def metadata(context: dg.AssetExecutionContext, report: RunReport[Any]) -> dict[str, Any]:
        counts = report.counts
        context.log.info(f"summary: {counts}")
        context.instance.add_run_tags(
            context.run.run_id, {f"smsp/{name}": str(value) for name, value in counts.items()}
        )
        metadata: dict[str, Any] = {**counts, "source_file": str(report.source or "-")}
        for name, path in (
            ("rejection_report", report.rejection_report),
            ("refusal_report", report.refusal_report),
        ):
            if path is not None:
                metadata[name] = dg.MetadataValue.path(str(path))
        return metadata
