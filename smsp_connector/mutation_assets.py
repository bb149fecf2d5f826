"""Dagster assets that change the provider's state: push, guarded delete, cancel.

Each reads a CSV file (an external asset: the inbox folder it lands in), records one audit row
per input row in DuckDB as outcomes arrive, and reports a summary as metadata and run tags.
Resources: ``smsp`` and ``duckdb`` as for the extract assets.
"""

import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from smsp_connector.audit import AuditWriter, record_input_rejections
from smsp_connector.cancel import (
    MESSAGE_ID_ALIASES,
    cancel_messages,
    check_message_ids,
    ids_from_config,
)
from smsp_connector.delete import CONSENT_COLUMNS, DeletionCapExceeded, delete_numbers
from smsp_connector.extract_assets import DUCKDB_POOL
from smsp_connector.intake import IntakeError, read_phone_csv, read_text_column_csv
from smsp_connector.progress import log_progress
from smsp_connector.push import push_numbers
from smsp_connector.rejections import rejected_rows, report_path, write_rejection_report
from smsp_connector.resources import SmspResource


class InboxFileConfig(dg.Config):
    csv_path: str = Field(description="The CSV file to read.")
    move_to: str | None = Field(
        default=None,
        description="Folder to move the file (and its rejection report) to once processed; "
        "the inbox sensor sets inbox/done.",
    )


class PhoneFileConfig(InboxFileConfig):
    phone_column: str | None = Field(
        default=None, description="The phone column's header, when it is not recognised."
    )
    default_region: str = Field(default="FR", description="Region of national-format numbers.")


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


def inbox_spec(prefix: str, group_name: str, operation: str, folder: str) -> dg.AssetSpec:
    """An external asset standing for the CSV files dropped in one inbox folder (lineage)."""
    return dg.AssetSpec(
        key=[prefix, f"inbox_{operation}_csv"],
        group_name=group_name,
        kinds={"csv"},
        description=f"CSV files dropped in {folder}/ (marketing and CRM exports).",
    )


class _MutationRun:
    """The parts every mutation asset shares: input rejections, the audit writer, the
    summary as metadata and run tags, and archiving the processed file."""

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        duckdb: DuckDBResource,
        operation: str,
        *,
        dry_run: bool,
    ) -> None:
        self.context, self.duckdb = context, duckdb
        self.run_id, self.job = context.run.run_id, context.run.job_name
        self.audit = AuditWriter(
            duckdb.get_connection,
            run_id=self.run_id,
            job=self.job,
            operation=operation,
            dry_run=dry_run,
        )
        self.report: Path | None = None

    def record_rejections(self, path: Path | None, intake: pd.DataFrame) -> None:
        rejected = rejected_rows(intake)
        if path is not None:
            self.report = write_rejection_report(path, rejected)
        with self.duckdb.get_connection() as conn:
            record_input_rejections(conn, rejected, run_id=self.run_id, job=self.job)

    def finish(self, result: Any, path: Path | None, move_to: str | None) -> dict[str, Any]:
        """``result``: the push, delete or cancel summary (a dataclass of counts)."""
        summary = asdict(result)
        self.context.log.info(f"summary: {summary}")
        self.context.instance.add_run_tags(
            self.run_id, {f"smsp/{name}": str(value) for name, value in summary.items()}
        )
        metadata: dict[str, Any] = {**summary, "source_file": str(path or "-")}
        if self.report is not None:
            metadata["rejection_report"] = dg.MetadataValue.path(str(self.report))
        if path is not None and move_to is not None:
            _archive(path, Path(move_to), self.run_id)
        return metadata


def build_mutation_assets(
    *, prefix: str = "smsp", group_name: str = "smsp", inbox: str = "inbox"
) -> list[dg.AssetSpec | dg.AssetsDefinition]:
    """The three inbox sources and the push, delete and cancel outcome assets."""
    sources = {
        operation: inbox_spec(prefix, group_name, operation, f"{inbox}/{operation}")
        for operation in ("add", "delete", "cancel")
    }
    additions_key = dg.AssetKey([prefix, "stop_list_additions"])
    common = {"group_name": group_name, "pool": DUCKDB_POOL, "kinds": {"duckdb"}}

    @dg.asset(
        key=additions_key,
        deps=[sources["add"].key],
        check_specs=[
            dg.AssetCheckSpec(
                "every_number_pushed",
                asset=additions_key,
                description="Fails when numbers are still missing after every retry; the next "
                "run of the same file picks them up.",
            )
        ],
        description="Opt-outs from a CSV file pushed to /stop-sms/add (only the missing ones), "
        "one audit row per input row in smsp.audit_log.",
        **common,
    )
    def stop_list_additions(
        context: dg.AssetExecutionContext,
        config: PushConfig,
        smsp: SmspResource,
        duckdb: DuckDBResource,
    ) -> dg.MaterializeResult:
        path = Path(config.csv_path)
        intake = _read(
            lambda: read_phone_csv(
                path, phone_column=config.phone_column, default_region=config.default_region
            )
        )
        run = _MutationRun(context, duckdb, "add", dry_run=config.dry_run)
        run.record_rejections(path, intake)
        with smsp.get_client() as client, run.audit as audit:
            summary = push_numbers(
                intake,
                client=client,
                audit=audit,
                dry_run=config.dry_run,
                progress=log_progress(context.log.info),
            )
        return dg.MaterializeResult(
            metadata=run.finish(summary, path, config.move_to),
            check_results=[
                dg.AssetCheckResult(
                    check_name="every_number_pushed",
                    passed=summary.failed == 0,
                    metadata={"failed": summary.failed},
                )
            ],
        )

    @dg.asset(
        key=[prefix, "stop_list_deletions"],
        deps=[sources["delete"].key],
        description="Numbers removed from the stop list with consent evidence (consent_at, "
        "consent_source), dry run unless confirmed, capped; every row in smsp.audit_log.",
        **common,
    )
    def stop_list_deletions(
        context: dg.AssetExecutionContext,
        config: DeleteConfig,
        smsp: SmspResource,
        duckdb: DuckDBResource,
    ) -> dg.MaterializeResult:
        path = Path(config.csv_path)
        intake = _read(
            lambda: read_phone_csv(
                path,
                phone_column=config.phone_column,
                extra_columns=CONSENT_COLUMNS,
                default_region=config.default_region,
            )
        )
        run = _MutationRun(context, duckdb, "delete", dry_run=not config.confirm)
        run.record_rejections(path, intake)
        try:
            with smsp.get_client() as client, run.audit as audit:
                summary = delete_numbers(
                    intake,
                    client=client,
                    audit=audit,
                    confirm=config.confirm,
                    max_deletions=config.max_deletions,
                    progress=log_progress(context.log.info),
                )
        except DeletionCapExceeded as error:
            raise dg.Failure(description=f"{path}: {error}", allow_retries=False) from None
        return dg.MaterializeResult(metadata=run.finish(summary, path, config.move_to))

    @dg.asset(
        key=[prefix, "message_cancellations"],
        deps=[sources["cancel"].key],
        description="Scheduled sends cancelled through /message-cancel: cancelled, already "
        "cancelled (5), too late (6), already sent (7), not found (4) or failed, per id.",
        **common,
    )
    def message_cancellations(
        context: dg.AssetExecutionContext,
        config: CancelConfig,
        smsp: SmspResource,
        duckdb: DuckDBResource,
    ) -> dg.MaterializeResult:
        path = Path(config.csv_path) if config.csv_path else None
        if (path is None) == (not config.message_ids):
            raise dg.Failure("give either csv_path or message_ids", allow_retries=False)
        ids = check_message_ids(
            ids_from_config(config.message_ids)
            if path is None
            else _read(
                lambda: read_text_column_csv(
                    path,
                    column_aliases=MESSAGE_ID_ALIASES,
                    column=config.id_column,
                    what="message id column",
                )
            )
        )
        run = _MutationRun(context, duckdb, "cancel", dry_run=False)
        run.record_rejections(path, ids)
        with smsp.get_client() as client, run.audit as audit:
            summary = cancel_messages(
                ids, client=client, audit=audit, progress=log_progress(context.log.info)
            )
        return dg.MaterializeResult(metadata=run.finish(summary, path, config.move_to))

    return [*sources.values(), stop_list_additions, stop_list_deletions, message_cancellations]


def _read(read: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    try:
        return read()
    except IntakeError as error:
        # One clear line in the UI and the logs; nothing has been sent.
        raise dg.Failure(description=str(error), allow_retries=False) from None


def _archive(path: Path, folder: Path, run_id: str) -> None:
    """Move the processed file and its report, prefixed with the run id so that two files
    with the same name, dropped on different days, do not overwrite each other."""
    folder.mkdir(parents=True, exist_ok=True)
    for file in (path, report_path(path)):
        if file.exists():
            shutil.move(file, folder / f"{run_id[:8]}-{file.name}")
