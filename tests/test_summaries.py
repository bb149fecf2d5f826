"""Each use case's summary says itself which of its counts mean rows did not end as asked
(issue 16): the run report, the command's exit status and the asset's outcome read it."""

from __future__ import annotations

import dataclasses

import pytest

from smsp_connector.operations.cancel import CancelSummary
from smsp_connector.operations.delete import DeleteSummary
from smsp_connector.operations.push import PushSummary


def _zero(summary_type, **counts):
    fields = {
        field.name: 0
        for field in dataclasses.fields(summary_type)
        if field.name not in ("dry_run", "plan_id")
    }
    return summary_type(**{**fields, "dry_run": False, **counts})


@pytest.mark.parametrize(
    ("summary_type", "problems", "not_problems"),
    [
        (PushSummary, {"rejected", "failed"}, {"invalid", "duplicates", "already_done"}),
        (DeleteSummary, {"refused", "rejected", "failed"}, {"invalid", "not_on_list"}),
        (
            CancelSummary,
            {"too_late", "already_sent", "not_found", "other_refusals", "failed", "invalid"},
            {"duplicates", "already_cancelled"},
        ),
    ],
)
def test_a_summary_is_complete_unless_one_of_its_problem_counts_is_not_zero(
    summary_type, problems, not_problems
):
    assert set(summary_type.PROBLEMS) == problems
    assert _zero(summary_type).complete
    for name in problems:
        summary = _zero(summary_type, **{name: 2})
        assert (summary.complete, summary.problems) == (False, {name: 2})
    for name in not_problems:
        assert _zero(summary_type, **{name: 2}).complete
    assert "PROBLEMS" not in _zero(summary_type).counts()
