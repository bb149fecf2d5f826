"""Push opt-outs to the provider's stop list, adding only what is missing, from a stored plan.

A push first plans: the numbers its fresh read of the provider's list lacks, each with its
source row, stored (``smsp.plans``) before any call. A dry run stops there; its plan can be
applied later by its id (:func:`apply_push_plan`), exactly, once, skipping the numbers listed
since. Otherwise the run applies the plan it has just made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import ClassVar

import pandas as pd

from smsp_connector.client import MutationKind, SmspClient
from smsp_connector.intake import Intake
from smsp_connector.operations.listing import listed_numbers
from smsp_connector.operations.plans import claim, plan_intake, plan_to_apply
from smsp_connector.operations.progress import ProgressFactory
from smsp_connector.operations.sending import (
    SendTally,
    record_unusable_rows,
    send_plan,
    unusable_masks,
)
from smsp_connector.operations.summary import Summary
from smsp_connector.warehouse.audit import AuditWriter, Outcome, audit_entries
from smsp_connector.warehouse.plans import PlanTargets
from smsp_connector.warehouse.tables import Warehouse


@dataclass(frozen=True, slots=True)
class PushSummary(Summary):
    PROBLEMS: ClassVar[tuple[str, ...]] = ("rejected", "failed")

    requested: int
    """Input rows read (a stored plan's targets, when one is applied)."""
    invalid: int
    duplicates: int
    already_on_list: int
    to_add: int
    """Distinct valid numbers missing from the fresh list."""
    added: int
    already_done: int
    """Numbers the provider already had when called (code 3): added meanwhile by someone else,
    or, when an earlier attempt of the same call got no answer, maybe by that attempt (the
    audit row's detail says so)."""
    rejected: int
    failed: int
    dry_run: bool
    plan_id: str | None = None
    """The stored plan (``smsp.plans``) that the run made or applied."""


def push_numbers(
    read: Intake,
    *,
    client: SmspClient,
    audit: AuditWriter,
    warehouse: Warehouse,
    dry_run: bool,
    progress: ProgressFactory,
    refused_before: Mapping[str, str] | None = None,
) -> PushSummary:
    """Plan the add of every valid number ``read`` (:func:`read_phone_csv`'s rows) that
    the provider's fresh list lacks, store the plan, and apply it unless ``dry_run``; one audit
    row per input row, each naming the plan.

    A second run of the same file makes no add call. Numbers that fail after every retry stay
    missing, so the next run picks them up. Numbers in ``refused_before`` (number → the run
    that the provider refused it in, code 9) are not planned: recorded as rejected.
    """
    refused_before, intake = refused_before or {}, read.frame
    invalid, duplicate = unusable_masks(intake)
    usable = ~invalid & ~duplicate
    listed = _listed(client, warehouse, intake["e164"][usable], audit)
    on_list = usable & intake["e164"].isin(listed)
    refused = usable & ~on_list & intake["e164"].isin(set(refused_before))
    # The subsets are masks, not copies: a million-row file's audit rows are built a slice
    # at a time as they are written.
    missing = usable & ~on_list & ~refused
    plan = plan_intake(
        MutationKind.ADD.value,
        read,
        PlanTargets.rows(intake["row_number"][missing], intake["e164"][missing]),
        warehouse=warehouse,
        audit=audit,
        made_to_apply=not dry_run,
        read_back=False,  # sent from the intake's rows, the plan's targets by construction
    )
    record_unusable_rows(intake, audit)
    audit.record(audit_entries(intake, Outcome.ALREADY_ON_LIST, where=on_list))
    audit.record(
        replace(
            entry,
            provider_code=9,
            detail=f"refused by the provider (code 9) in run {refused_before[entry.target]}"
            "; not sent again (retry_rejected: true sends it)",
        )
        for entry in audit_entries(intake, Outcome.REJECTED, where=refused)
    )
    tally = SendTally()
    if dry_run:
        audit.record(audit_entries(intake, Outcome.DRY_RUN, where=missing))
    else:
        claim(warehouse, plan, run_id=audit.run_id)
        tally = _send(intake, missing, client=client, audit=audit, progress=progress)
    audit.flush()
    counts = tally.outcomes
    return PushSummary(
        requested=len(intake),
        invalid=int(invalid.sum()),
        duplicates=int(duplicate.sum()),
        already_on_list=int(on_list.sum()),
        to_add=int(missing.sum()),
        added=counts[Outcome.APPLIED],
        already_done=counts[Outcome.ALREADY_DONE],
        rejected=counts[Outcome.REJECTED] + int(refused.sum()),
        failed=counts[Outcome.FAILED],
        dry_run=dry_run,
        plan_id=plan.plan_id,
    )


def apply_push_plan(
    plan_id: str,
    *,
    client: SmspClient,
    audit: AuditWriter,
    warehouse: Warehouse,
    max_age: timedelta,
    progress: ProgressFactory,
) -> PushSummary:
    """Apply the stored push plan ``plan_id``: exactly its numbers, less those the provider's
    list holds now (recorded ``already_on_list``). Raises
    :class:`~smsp_connector.operations.plans.PlanRefused` before any call for a plan that is
    unknown, another operation's or account's, applied already or older than ``max_age``."""
    plan = plan_to_apply(
        warehouse, plan_id, operation=MutationKind.ADD.value, account=audit.account, max_age=max_age
    )
    audit.name_plan(plan.plan_id)
    targets = plan.target_columns.frame
    intake = pd.DataFrame(
        {
            "source_file": plan.source_file or f"plan {plan.plan_id}",
            "row_number": targets["source_row"],
            "e164": targets["target"],
            "detail": "when applied: already on the stop list",
        }
    )
    on_list = intake["e164"].isin(_listed(client, warehouse, intake["e164"], audit))
    claim(warehouse, plan, run_id=audit.run_id)
    audit.record(audit_entries(intake, Outcome.ALREADY_ON_LIST, "detail", where=on_list))
    tally = _send(intake, ~on_list, client=client, audit=audit, progress=progress)
    audit.flush()
    counts = tally.outcomes
    return PushSummary(
        requested=len(intake),
        invalid=0,
        duplicates=0,
        already_on_list=int(on_list.sum()),
        to_add=int((~on_list).sum()),
        added=counts[Outcome.APPLIED],
        already_done=counts[Outcome.ALREADY_DONE],
        rejected=counts[Outcome.REJECTED],
        failed=counts[Outcome.FAILED],
        dry_run=False,
        plan_id=plan.plan_id,
    )


def _listed(
    client: SmspClient, warehouse: Warehouse, numbers: pd.Series, audit: AuditWriter
) -> set[str]:
    return listed_numbers(client, warehouse, numbers, memory_limit=audit.memory_limit)


def _send(
    intake: pd.DataFrame,
    where: pd.Series,
    *,
    client: SmspClient,
    audit: AuditWriter,
    progress: ProgressFactory,
) -> SendTally:
    calls = {entry.target: entry for entry in audit_entries(intake, Outcome.PENDING, where=where)}
    return send_plan(calls, client.bulk_add, audit=audit, what="numbers pushed", progress=progress)
