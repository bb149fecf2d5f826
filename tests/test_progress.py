"""Progress lines of long pushes: count, rate, time left, at most every interval."""

from __future__ import annotations

import re

from smsp_connector.operations import progress
from smsp_connector.operations.progress import ProgressReporter


def test_progress_reports_count_rate_and_time_left(monkeypatch):
    clock = iter([100.0, 101.0, 102.0, 106.0, 110.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    lines: list[str] = []
    reporter = ProgressReporter(1_000, "numbers pushed", lines.append, interval=5.0)

    reporter.advance(100)  # t=101: too early for a line
    reporter.advance(100)  # t=102: too early
    reporter.advance(100)  # t=106: 300 in 6 s
    reporter.finish()  # t=110

    assert lines[0] == "300/1,000 numbers pushed (50.0/s, ~14 s left)"
    assert re.fullmatch(r"300/1,000 numbers pushed in 10\.0 s", lines[1])
    assert len(lines) == 2
