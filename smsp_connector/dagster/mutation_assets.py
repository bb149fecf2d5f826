"""Dagster assets that change the provider's state: push, guarded delete, cancel.

Each is a thin adapter over :func:`~smsp_connector.operations.run.run_operation`, the run core
that the ``smsp`` command shares: run config in, a summary out as metadata and run tags.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import dagster as dg
from pydantic import Field

from smsp_connector.client import MutationKind
from smsp_connector.dagster.keys import OPERATIONS, SmspKeys, asset_attributes
from smsp_connector.dagster.metadata import TableMetadataSet, frame_table
from smsp_connector.dagster.resource import (
    resource_keys,
    step_context,
    step_warehouse,
)
from smsp_connector.intake import DEFAULT_REGION, IntakeError
from smsp_connector.operations.delete import DeletionCapExceeded
from smsp_connector.operations.inputs import (
    Input,
    MessageIdFile,
    MessageIdValues,
    PhoneFile,
    StoredPlan,
)
from smsp_connector.operations.object_files import is_object_store, location_sha256
from smsp_connector.operations.plans import PlanRefused
from smsp_connector.operations.run import (
    Cancel,
    Delete,
    Operation,
    Push,
    RunReport,
    run_on_object,
    run_operation,
)
from smsp_connector.settings import Settings
from smsp_connector.warehouse import Outcome, outcome_counts


class Request(NamedTuple):
    """What one run of a change asset does, decided from its run config alone: the operation,
    the input it reads, where the file goes after, and the location the run reports."""

    operation: Operation[Any]
    source: Input
    move_to: str | None
    location: str | None


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
    default_region: str = Field(
        default=DEFAULT_REGION, description="Region of national-format numbers."
    )

    def input(self, max_bytes: int) -> PhoneFile:
        """The file to read (subclasses make ``csv_path`` optional, checked before this)."""
        return PhoneFile(
            Path(str(self.csv_path)),
            self.phone_column,
            self.default_region or DEFAULT_REGION,
            max_bytes,
        )


_CONFIRM_PLAN = (
    "The id of a stored plan (a dry run's plan_id metadata) to apply instead of reading a file: "
    "exactly its targets, once, and not when older than plan_max_age."
)


class PushConfig(PhoneFileConfig):
    csv_path: str | None = Field(  # type: ignore[assignment]
        default=None, description="The CSV file to read (or confirm_plan)."
    )
    dry_run: bool = Field(default=False, description="Store the plan, send nothing.")
    retry_rejected: bool = Field(
        default=False,
        description="Send again the numbers the provider refused (code 9) in earlier runs.",
    )
    confirm_plan: str | None = Field(default=None, description=_CONFIRM_PLAN)

    def request(self, settings: Settings) -> Request:
        if self.confirm_plan is not None:
            if self.csv_path is not None or self.dry_run:
                raise dg.Failure(
                    "confirm_plan applies a stored plan as it is: give it without csv_path or "
                    "dry_run",
                    allow_retries=False,
                )
            push = Push(plan_id=self.confirm_plan, plan_max_age=settings.plan_max_age)
            return Request(push, StoredPlan(self.confirm_plan), None, None)
        if self.csv_path is None:
            raise dg.Failure("give csv_path or confirm_plan", allow_retries=False)
        push = Push(dry_run=self.dry_run, retry_rejected=self.retry_rejected)
        return Request(push, self.input(settings.max_input_bytes), self.move_to, self.csv_path)


class DeleteConfig(PhoneFileConfig):
    csv_path: str | None = Field(  # type: ignore[assignment]
        default=None,
        description="The CSV file to read (or confirm_plan / confirm_dry_run; given with them, "
        "it must be the file the plan was made from).",
    )
    default_region: str | None = Field(  # type: ignore[assignment]
        default=None,
        description="Region of national-format numbers (FR when not given). With confirm_plan "
        "or confirm_dry_run it may only repeat the plan's.",
    )
    confirm: bool = Field(
        default=False,
        description="Really delete: the plan is built, stored and applied in this run. Without "
        "it the run is a dry run that stores the plan (its id: the plan_id metadata).",
    )
    confirm_plan: str | None = Field(
        default=None,
        description="The id of a stored plan (a dry run's plan_id) to apply: exactly its "
        "numbers, each one's consent checked again against the provider's list. Implies "
        "confirm; a plan is applied once, and not when older than plan_max_age.",
    )
    confirm_dry_run: str | None = Field(
        default=None,
        description="The run id of a dry run to confirm: its stored plan is applied, as with "
        "confirm_plan (refused if the dry run's file has changed since). Implies confirm.",
    )

    max_deletions: int = Field(
        default=100, description="A confirmed plan larger than this fails before any call."
    )

    def request(self, settings: Settings, dry_run_plan: Callable[[], str]) -> Request:
        """``dry_run_plan`` finds the plan of ``confirm_dry_run`` (in the instance's events)."""
        if self.confirm_plan is not None and self.confirm_dry_run is not None:
            raise dg.Failure("give confirm_plan or confirm_dry_run, not both", allow_retries=False)
        if self.confirm_plan is None and self.confirm_dry_run is None:
            if self.csv_path is None:
                raise dg.Failure(
                    "give csv_path, confirm_plan or confirm_dry_run", allow_retries=False
                )
            delete = Delete(confirm=self.confirm, max_deletions=self.max_deletions)
            return Request(
                delete, self.input(settings.max_input_bytes), self.move_to, self.csv_path
            )
        plan_id = self.confirm_plan or dry_run_plan()
        delete = Delete(
            max_deletions=self.max_deletions,
            plan_id=plan_id,
            plan_max_age=settings.plan_max_age,
            given=_given_again(self, settings.max_input_bytes),
        )
        return Request(delete, StoredPlan(plan_id), None, None)


class CancelConfig(dg.Config):
    csv_path: str | None = Field(default=None, description="A CSV file of message ids.")
    message_ids: list[str] = Field(default=[], description="Message ids, instead of a file.")
    id_column: str | None = Field(default=None, description="The message id column's header.")
    move_to: str | None = Field(default=None, description="Folder to move the file to after.")
    dry_run: bool = Field(default=False, description="Store the plan, cancel nothing.")
    confirm_plan: str | None = Field(default=None, description=_CONFIRM_PLAN)

    def request(self, settings: Settings) -> Request:
        csv_path = self.csv_path or None
        given = (csv_path is not None) + bool(self.message_ids) + (self.confirm_plan is not None)
        if given != 1:
            raise dg.Failure(
                "give one of csv_path, message_ids or confirm_plan", allow_retries=False
            )
        if self.confirm_plan is not None:
            cancel = Cancel(plan_id=self.confirm_plan, plan_max_age=settings.plan_max_age)
            return Request(cancel, StoredPlan(self.confirm_plan), self.move_to, None)
        source: Input = (
            MessageIdFile(Path(csv_path), self.id_column, settings.max_input_bytes)
            if csv_path
            else MessageIdValues(self.message_ids, label="run config")
        )
        return Request(Cancel(dry_run=self.dry_run), source, self.move_to, csv_path)


@dataclass(frozen=True)
class MutationAssets:
    """What :func:`build_mutation_assets` built."""

    inbox: dict[str, dg.AssetSpec]
    """The external asset standing for each inbox folder's CSV files, by operation."""
    additions: dg.AssetsDefinition
    deletions: dg.AssetsDefinition
    cancellations: dg.AssetsDefinition
    checks: list[dg.AssetChecksDefinition]
    """``every_number_pushed`` and ``every_deletion_done``: they run after the refresh."""

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
            **asset_attributes(settings, {"csv"}, changes=True),
            description=f"CSV files dropped in {settings.inbox_dir}/{operation}/ "
            "(marketing and CRM exports).",
        )
        for operation in OPERATIONS
    }
    common: dict[str, Any] = {
        **asset_attributes(settings, {"duckdb"}, changes=True),
        "pool": settings.pool,
        "required_resource_keys": resource_keys(settings, smsp=True),
    }

    @dg.asset(
        key=keys.additions,
        deps=[inbox[MutationKind.ADD].key],
        description="Opt-outs from a CSV file pushed to /stop-sms/add (only the missing ones), "
        f"one audit row per input row in {settings.schema}.audit_log.",
        **common,
    )
    def stop_list_additions(
        context: dg.AssetExecutionContext, config: PushConfig
    ) -> dg.MaterializeResult:
        return runner.materialize(context, config.request(settings))

    @dg.asset(
        key=keys.deletions,
        deps=[inbox[MutationKind.DELETE].key],
        description="Numbers removed from the stop list with consent evidence (consent_at, "
        "consent_source), dry run unless confirmed, capped; every row in "
        f"{settings.schema}.audit_log.",
        **common,
    )
    def stop_list_deletions(
        context: dg.AssetExecutionContext, config: DeleteConfig
    ) -> dg.MaterializeResult:
        def dry_run_plan() -> str:
            return _dry_run_plan(context, keys.deletions, config, settings.max_input_bytes)

        return runner.materialize(context, config.request(settings, dry_run_plan))

    @dg.asset(
        key=keys.cancellations,
        deps=[inbox[MutationKind.CANCEL].key],
        description="Scheduled sends cancelled through /message-cancel: cancelled, already "
        "cancelled (5), too late (6), already sent (7), not found (4) or failed, per id.",
        **common,
    )
    def message_cancellations(
        context: dg.AssetExecutionContext, config: CancelConfig
    ) -> dg.MaterializeResult:
        return runner.materialize(context, config.request(settings))

    checks = [
        _outcome_check(
            settings, keys.additions, "every_number_pushed", MutationKind.ADD.value, "pushed"
        ),
        _outcome_check(
            settings, keys.deletions, "every_deletion_done", MutationKind.DELETE.value, "deleted"
        ),
    ]
    return MutationAssets(
        inbox, stop_list_additions, stop_list_deletions, message_cancellations, checks
    )


def _outcome_check(
    settings: Settings, key: dg.AssetKey, name: str, operation: str, done: str
) -> dg.AssetChecksDefinition:
    """Fails the run when some of the run's rows failed after every retry, once the refresh
    has run (the stop list is an additional dependency); provider refusals only warn."""
    keys = SmspKeys.of(settings)

    @dg.asset_check(
        asset=key,
        name=name,
        additional_deps=[keys.stop_list],
        required_resource_keys=resource_keys(settings),
        pool=settings.pool,
        description=f"Fails the run when numbers could not be {done} after every retry (the "
        "next run of the same file tries them again); warns when the provider refused some.",
    )
    def outcome_check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        warehouse = step_warehouse(context, settings)
        counts = outcome_counts(warehouse, context.run.run_id, operation)
        failed, rejected = counts[Outcome.FAILED], counts[Outcome.REJECTED]
        if failed:
            raise dg.Failure(
                description=f"{failed} number(s) could not be {done} after every retry "
                f"(outcome 'failed' in {settings.schema}.audit_log, run {context.run.run_id}); "
                "every outcome is recorded and the list refreshed: run the same file again.",
                allow_retries=False,
            )
        return dg.AssetCheckResult(
            passed=rejected == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"failed": 0, "rejected": rejected},
        )

    return outcome_check


class _Runner:
    """Runs an operation from a Dagster step: resources in, one-line failures out."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def materialize(
        self, context: dg.AssetExecutionContext, request: Request
    ) -> dg.MaterializeResult:
        report = self.run(context, request)
        return dg.MaterializeResult(metadata=self.metadata(context, report))

    def run(self, context: dg.AssetExecutionContext, request: Request) -> RunReport[Any]:
        """The request's ``location`` is the file input's ``csv_path`` as given (an ``s3://``
        object is run through :func:`run_on_object`)."""
        operation, source, move_to, location = request
        if move_to and is_object_store(move_to) != is_object_store(location or ""):
            raise dg.Failure(
                description="move_to and csv_path must both be local or both s3:// locations: "
                "nothing was read or sent",
                allow_retries=False,
            )
        try:
            with step_context(context, self._settings) as run:
                if location is not None and is_object_store(location):
                    return run_on_object(
                        operation,
                        source,
                        location,
                        run,
                        max_bytes=self._settings.max_input_bytes,
                        move_to=move_to,
                    )
                return run_operation(
                    operation, source, run, move_to=Path(move_to) if move_to else None
                )
        except (IntakeError, DeletionCapExceeded, PlanRefused) as error:
            # One clear line in the UI and the logs; nothing was sent.
            raise dg.Failure(description=str(error), allow_retries=False) from None

    def metadata(self, context: dg.AssetExecutionContext, report: RunReport[Any]) -> dict[str, Any]:
        """The counts, the rows that did not go through as a table, the reports' paths; and
        three low-cardinality run tags (counts stay in metadata, where they belong)."""
        counts, raw = report.counts, self._settings.show_raw_numbers
        context.log.info(f"summary: {counts}")
        outcome = "complete" if report.complete else "partial"
        context.instance.add_run_tags(
            context.run.run_id,
            {
                "smsp/operation": report.operation,
                "smsp/dry_run": str(bool(counts.get("dry_run", False))).lower(),
                "smsp/outcome": "failed" if counts.get("failed") else outcome,
            },
        )
        metadata: dict[str, Any] = {
            **counts,
            # The input rows this run handled (a stored plan's targets when one is applied).
            **TableMetadataSet(row_count=counts["requested"]),
            "source_file": str(report.source or "-"),
        }
        if report.source_sha256:
            metadata["source_sha256"] = report.source_sha256
        if not report.unsent.empty:
            metadata["rows_not_through"] = frame_table(report.unsent, raw_numbers=raw)
        if report.planned is not None and not report.planned.empty:
            metadata["planned_rows"] = frame_table(report.planned, raw_numbers=raw)
        for name, path in (
            ("rejection_report", report.rejection_report),
            ("refusal_report", report.refusal_report),
        ):
            if path is not None:
                metadata[name] = dg.MetadataValue.path(str(path))
        return metadata


def _given_again(config: DeleteConfig, max_bytes: int) -> tuple[tuple[str, str], ...]:
    """The plan's options that a confirmation's config repeats (each must be the plan's), and
    the SHA-256 of the file it names again (it must hold the plan's bytes)."""
    given = [
        (name, value)
        for name, value in (
            ("phone_column", config.phone_column),
            ("default_region", config.default_region),
        )
        if value is not None
    ]
    if config.csv_path is not None:
        try:
            given.append(("source_sha256", location_sha256(config.csv_path, max_bytes)))
        except FileNotFoundError:
            raise dg.Failure(f"{config.csv_path} does not exist", allow_retries=False) from None
    return tuple(given)


def _dry_run_plan(
    context: dg.AssetExecutionContext, key: dg.AssetKey, config: DeleteConfig, max_bytes: int
) -> str:
    """The plan a dry run of ``key`` stored, after checking that its file, if still there,
    holds the bytes the dry run planned from (a file edited since was meant to change the
    plan: the edit needs a dry run of its own)."""
    run_id = str(config.confirm_dry_run)
    metadata: dict[str, Any] = {}
    if context.instance.get_run_by_id(run_id) is not None:
        for event in context.instance.all_logs(
            run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ):
            materialization = event.asset_materialization
            if materialization is not None and materialization.asset_key == key:
                metadata = {name: value.value for name, value in materialization.metadata.items()}
    if not metadata.get("dry_run") or not metadata.get("plan_id"):
        raise dg.Failure(
            f"{run_id} is not a dry run of {key.to_user_string()} with a stored plan: "
            "run a dry run, then confirm its plan",
            allow_retries=False,
        )
    path = str(metadata.get("source_file", "-"))
    try:
        changed = location_sha256(path, max_bytes) != metadata.get("source_sha256")
    except (FileNotFoundError, IsADirectoryError):
        changed = False  # the plan holds the targets: the file is not read again
    if changed:
        raise dg.Failure(
            f"{path} changed since the dry run {run_id} planned from it: run a new dry run",
            allow_retries=False,
        )
    return str(metadata["plan_id"])
