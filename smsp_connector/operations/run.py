"""One operation run, shared by the Dagster jobs and the ``smsp`` command: read the input,
record its rejections, send with a write-ahead audit, report what did not go through, archive.

Both callers build an :class:`Operation` and an :class:`~smsp_connector.operations.inputs.Input`
and call :func:`run_operation`; they differ only in where progress goes and how the
:class:`RunReport` is shown, so the CLI and the jobs cannot drift apart.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import pandas as pd

from smsp_connector.client import MutationKind, SmspClient
from smsp_connector.defaults import DEFAULT_PLAN_MAX_AGE
from smsp_connector.intake import Intake, IntakeError, file_sha256
from smsp_connector.intake.rejections import rejected_rows
from smsp_connector.operations import object_files
from smsp_connector.operations.cancel import CancelSummary, apply_cancel_plan, cancel_messages
from smsp_connector.operations.context import RunContext
from smsp_connector.operations.delete import (
    CONSENT_COLUMNS,
    DeleteSummary,
    DeletionCapExceeded,
    apply_deletion_plan,
    delete_numbers,
)
from smsp_connector.operations.inputs import Input
from smsp_connector.operations.progress import ProgressFactory
from smsp_connector.operations.push import PushSummary, apply_push_plan, push_numbers
from smsp_connector.operations.reports import (
    REFUSED_SUFFIX,
    REJECTED_SUFFIX,
    report_path,
    write_report,
)
from smsp_connector.operations.summary import Summary
from smsp_connector.warehouse import (
    AuditWriter,
    Outcome,
    Warehouse,
    record_input_rejections,
    refused_numbers,
    unsent_rows,
)

S = TypeVar("S", bound=Summary)

RUN_MEMORY_LIMIT = "128MB"
"""DuckDB's memory limit while a run writes and reads its audit rows (see
:func:`~smsp_connector.warehouse.tables.capped_memory`): a million rows stay within it."""

PLANNED_PREVIEW_ROWS = 100
"""Rows of a dry run's plan kept in :attr:`RunReport.planned` (what Dagster's metadata table
shows): a dry run of a million rows would otherwise read them all back into memory."""


class Operation(Protocol[S]):
    name: ClassVar[str]
    """The audit log's ``operation`` (:class:`~smsp_connector.client.MutationKind`)."""
    extra_columns: ClassVar[tuple[str, ...]]
    """Columns the input must have besides the target (consent evidence for deletions)."""

    @property
    def dry_run(self) -> bool: ...

    def execute(
        self,
        intake: Intake,
        *,
        client: SmspClient,
        audit: AuditWriter,
        progress: ProgressFactory,
        warehouse: Warehouse,
    ) -> S: ...


@dataclass(frozen=True, slots=True)
class Push:
    """Add the input's numbers that a fresh list lacks; numbers the provider refused (code 9)
    in an earlier run are not sent again unless ``retry_rejected``.

    The plan is stored first (``smsp.plans``). With ``plan_id`` the input is
    :class:`~smsp_connector.operations.inputs.StoredPlan` and the run applies that stored plan
    (a dry run's), unless it is older than ``plan_max_age`` or was applied already."""

    dry_run: bool = False
    retry_rejected: bool = False
    plan_id: str | None = None
    plan_max_age: timedelta = DEFAULT_PLAN_MAX_AGE
    name: ClassVar[str] = MutationKind.ADD.value
    extra_columns: ClassVar[tuple[str, ...]] = ()

    def execute(self, intake, *, client, audit, progress, warehouse) -> PushSummary:
        if self.plan_id is not None:
            return apply_push_plan(
                self.plan_id,
                client=client,
                audit=audit,
                warehouse=warehouse,
                max_age=self.plan_max_age,
                progress=progress,
            )
        return push_numbers(
            intake,
            client=client,
            audit=audit,
            warehouse=warehouse,
            dry_run=self.dry_run,
            progress=progress,
            refused_before={} if self.retry_rejected else refused_numbers(warehouse),
        )


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove the input's numbers that pass every guard; a dry run unless ``confirm``.

    Either way the plan is stored first (``smsp.plans``). With ``plan_id`` the input is
    :class:`~smsp_connector.operations.inputs.StoredPlan` and the run applies that stored plan,
    as it is, unless it is older than ``plan_max_age`` or was applied already."""

    confirm: bool = False
    max_deletions: int = 100
    plan_id: str | None = None
    plan_max_age: timedelta = DEFAULT_PLAN_MAX_AGE
    given: tuple[tuple[str, str], ...] = ()
    """Options given again with ``plan_id`` (``phone_column``, ``default_region``, the file's
    ``source_sha256``): one that differs from the plan's refuses the run."""
    name: ClassVar[str] = MutationKind.DELETE.value
    extra_columns: ClassVar[tuple[str, ...]] = CONSENT_COLUMNS

    @property
    def dry_run(self) -> bool:
        return not self.confirm and self.plan_id is None

    def execute(self, intake, *, client, audit, progress, warehouse) -> DeleteSummary:
        if self.plan_id is not None:
            return apply_deletion_plan(
                self.plan_id,
                client=client,
                audit=audit,
                warehouse=warehouse,
                max_deletions=self.max_deletions,
                max_age=self.plan_max_age,
                progress=progress,
                given=dict(self.given),
            )
        return delete_numbers(
            intake,
            client=client,
            audit=audit,
            warehouse=warehouse,
            confirm=self.confirm,
            max_deletions=self.max_deletions,
            progress=progress,
        )


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel the input's scheduled messages; with ``plan_id``, those of that stored plan."""

    dry_run: bool = False
    plan_id: str | None = None
    plan_max_age: timedelta = DEFAULT_PLAN_MAX_AGE
    name: ClassVar[str] = MutationKind.CANCEL.value
    extra_columns: ClassVar[tuple[str, ...]] = ()

    def execute(self, intake, *, client, audit, progress, warehouse) -> CancelSummary:
        if self.plan_id is not None:
            return apply_cancel_plan(
                self.plan_id,
                client=client,
                audit=audit,
                warehouse=warehouse,
                max_age=self.plan_max_age,
                progress=progress,
            )
        return cancel_messages(
            intake,
            client=client,
            audit=audit,
            warehouse=warehouse,
            progress=progress,
            dry_run=self.dry_run,
        )


@dataclass(frozen=True)
class RunReport(Generic[S]):
    """What one run did: its summary, where its reports are, and the rows that did not go
    through (from the audit log)."""

    operation: str
    run_id: str
    summary: S
    source: Path | str | None
    """The input file, or its ``s3://`` URL (:func:`run_on_object`)."""
    audit_rows: int
    rejection_report: Path | str | None
    refusal_report: Path | str | None
    unsent: pd.DataFrame
    """``source_row``, ``target``, ``outcome``, ``provider_code``, ``reason``, in input order."""
    source_sha256: str | None = None
    """SHA-256 of the bytes the file's rows were read from (``None`` for inline values)."""
    planned: pd.DataFrame | None = None
    """For a dry run, the first :data:`PLANNED_PREVIEW_ROWS` rows that would have been sent
    (the same columns as ``unsent``); the summary counts them all."""
    changed_after_read: bool = False
    """The file, to be archived, changed after it was read: it was not archived, and its new
    content gets its own run (only checked when the run archives)."""

    @property
    def counts(self) -> dict[str, Any]:
        return self.summary.counts()

    @property
    def complete(self) -> bool:
        """Every row ended as asked (or needed nothing): the summary's own verdict."""
        return self.summary.complete


def run_operation(
    operation: Operation[S],
    source: Input,
    context: RunContext,
    *,
    move_to: Path | None = None,
    memory_limit: str | None = RUN_MEMORY_LIMIT,
) -> RunReport[S]:
    """Run ``operation`` on ``source``: read it, record its unusable rows, execute with the
    write-ahead audit, report what did not go through beside the file, archive the file.

    An unusable file raises :class:`~smsp_connector.intake.IntakeError` before anything is
    recorded or sent; a deletion plan over its cap raises
    :class:`~smsp_connector.operations.delete.DeletionCapExceeded` after recording the refusal.
    Either way the file stays where it is. DuckDB works within ``memory_limit`` while the
    run's audit rows are written and read back (``None``: the database's own limit).
    """
    if move_to is not None and str(move_to).lower().startswith(("s3:", "s3a:", "s3n:")):
        raise ValueError("run_operation archives to a local folder: use run_on_object for s3://")
    intake = source.read(operation.extra_columns)
    rejection_report = _record_rejections(intake.frame, source.path, context)
    audit = AuditWriter(
        context.warehouse,
        run_id=context.run_id,
        job=context.job,
        operation=operation.name,
        dry_run=operation.dry_run,
        account=context.account,
        memory_limit=memory_limit,
    )
    try:
        summary = _execute(operation, intake, source.path, context, audit)
    finally:
        # Whatever happened, the report beside the input says what this run recorded (a
        # refused plan included), never what an earlier run of the same file did.
        unsent = unsent_rows(context.warehouse, context.run_id, memory_limit=memory_limit)
        refusal_report = _report_refusals(unsent, source.path)
    report = RunReport(
        operation=operation.name,
        run_id=context.run_id,
        summary=summary,
        source=source.path,
        audit_rows=audit.written,
        rejection_report=rejection_report,
        refusal_report=refusal_report,
        unsent=unsent,
        source_sha256=intake.sha256,
        planned=_planned(context, memory_limit) if operation.dry_run else None,
    )
    return report if move_to is None else _archived(report, move_to, intake.sha256)


def _record_rejections(intake: pd.DataFrame, path: Path | None, context: RunContext) -> Path | None:
    """Record the input's unusable rows in ``input_rejections``, and beside a file in its
    rejection report (returned)."""
    rejected = rejected_rows(intake)
    record_input_rejections(
        context.warehouse, rejected, run_id=context.run_id, job=context.job, account=context.account
    )
    if path is None:
        return None
    return write_report(report_path(path, REJECTED_SUFFIX), rejected.drop(columns=["source_file"]))


def _execute(
    operation: Operation[S],
    intake: Intake,
    path: Path | None,
    context: RunContext,
    audit: AuditWriter,
) -> S:
    """The use case itself, its audit rows written ahead of each call; a deletion cap refusal
    names the file."""
    try:
        with audit:
            return operation.execute(
                intake,
                client=context.client,
                audit=audit,
                progress=context.progress,
                warehouse=context.warehouse,
            )
    except DeletionCapExceeded as error:
        raise DeletionCapExceeded(f"{path or 'command line'}: {error}") from None


def _report_refusals(unsent: pd.DataFrame, path: Path | None) -> Path | None:
    """Beside a file, the rows that did not go through (its unusable rows, in the rejection
    report already, left out)."""
    if path is None:
        return None
    refused = unsent[unsent["outcome"] != Outcome.INVALID_INPUT]
    return write_report(report_path(path, REFUSED_SUFFIX), refused)


def _planned(context: RunContext, memory_limit: str | None) -> pd.DataFrame:
    """A dry run's first :data:`PLANNED_PREVIEW_ROWS` planned rows."""
    return unsent_rows(
        context.warehouse,
        context.run_id,
        (Outcome.DRY_RUN,),
        limit=PLANNED_PREVIEW_ROWS,
        memory_limit=memory_limit,
    )


def _archived(report: RunReport[S], folder: Path, read: str | None) -> RunReport[S]:
    """The report once its file and reports are moved to ``folder``; a file that changed after
    it was read (a writer still appending: the re-hash tells) stays, for a run of its own."""
    path = report.source
    if not isinstance(path, Path):
        return report
    if _changed_since_read(path, read):
        return replace(report, changed_after_read=True)
    source, rejections, refusals = _archive(
        folder, report.run_id, path, report.rejection_report, report.refusal_report
    )
    return replace(report, source=source, rejection_report=rejections, refusal_report=refusals)


def _changed_since_read(path: Path, read: str | None) -> bool:
    """Whether the file no longer holds the bytes its rows were read from (SHA-256 ``read``; a
    writer was still appending): it is then left where it is, so its new content gets a run of
    its own."""
    if not read:
        return False
    try:
        return file_sha256(path) != read
    except FileNotFoundError:
        return True


def _archive(folder: Path, run_id: str, *files: Path | None) -> list[Path | None]:
    """Move the processed file and its reports, prefixed with the run id so that two files
    with the same name, dropped on different days, do not overwrite each other."""
    folder.mkdir(parents=True, exist_ok=True)
    moved: list[Path | None] = []
    for file in files:
        if file is None:
            moved.append(None)
            continue
        target = folder / f"{run_id[:8]}-{file.name}"
        shutil.move(file, target)
        moved.append(target)
    return moved


def run_on_object(
    operation: Operation[S],
    source: Input,
    url: str,
    context: RunContext,
    *,
    max_bytes: int,
    move_to: str | None = None,
) -> RunReport[S]:
    """:func:`run_operation` on an input object (``s3://…``, :mod:`.object_files`): ``source``
    (a file input, its path unused) reads the object staged in a local temporary file; the
    reports are put beside the object, as beside a local file. With ``move_to`` (an ``s3://``
    folder) the object and its reports are archived there, the archive holding the bytes that
    were read; the object itself is deleted only if it still holds them, else it stays and its
    new content gets its own run. Errors and the report name the object, never the temporary
    file."""
    if move_to is not None and (
        not object_files.is_object_store(move_to)
        or object_files.bucket_of(move_to) != object_files.bucket_of(url)
    ):
        raise IntakeError(url, "an object is archived to an s3:// folder of its own bucket")
    with object_files.staged(url, max_bytes) as (local, read):
        try:
            report = run_operation(operation, replace(source, path=local), context)
        except IntakeError as error:
            raise IntakeError(url, error.problem) from None
        except DeletionCapExceeded as error:
            _put_reports(local, url)
            raise DeletionCapExceeded(str(error).replace(str(local), url)) from None
        archive = None
        if move_to is not None and _still_holds(url, read):
            archive = partial(_archived_as, move_to, report.run_id)
        changed, source_url = move_to is not None, url
        reports = _put_reports(local, url, archive)
        if archive is not None:
            # What was read, never what the object holds by now.
            source_url = object_files.put_file(local, archive(url))
            changed = not _still_holds(url, read)
            if changed:
                source_url = url
            else:
                object_files.delete(url)
    return replace(
        report,
        source=source_url,
        rejection_report=reports[0],
        refusal_report=reports[1],
        changed_after_read=changed,
    )


def _archived_as(folder: str, run_id: str, url: str) -> str:
    """Where ``url`` goes in the archive ``folder``: its name after the run id's first 8
    characters, as :func:`_archive` names a local file."""
    return object_files.join(folder, f"{run_id[:8]}-{url.rsplit('/', 1)[1]}")


def _still_holds(url: str, read: object_files.ObjectFile) -> bool:
    """Whether the object is still the one that was read (same ETag)."""
    current = object_files.head(url)
    return current is not None and current.etag == read.etag


def _put_reports(
    local: Path, url: str, archive: Callable[[str], str] | None = None
) -> tuple[str | None, ...]:
    """The reports the run wrote beside the staged file, put beside the object, or straight to
    ``archive(<their place beside it>)`` when the object is archived; a stale report beside it
    from an earlier run is deleted, as :func:`write_report` does on a disk."""
    put: list[str | None] = []
    for suffix in (REJECTED_SUFFIX, REFUSED_SUFFIX):
        made = report_path(local, suffix)
        beside = object_files.report_url(url, suffix)
        if made.is_file() and archive is None:
            put.append(object_files.put_file(made, beside))
            continue
        put.append(object_files.put_file(made, archive(beside)) if made.is_file() else None)
        object_files.delete(beside)
    return tuple(put)
