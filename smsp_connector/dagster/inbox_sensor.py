"""A sensor that launches the matching job for each CSV file dropped in an inbox folder.

``inbox/add/`` → push, ``inbox/delete/`` → delete (always a dry run: confirming a deletion is a
deliberate act, done from the launchpad with ``confirm: true``), ``inbox/cancel/`` → cancel.
Files ending in ``.csv`` or ``.tsv``, in any case, are taken; the reports the runs write beside
them are not.

A file is taken only once it has settled: the same size and modification time as seen at least
``settle_seconds`` earlier (the sensor's cursor remembers what it saw), so a file still being
copied in is left for a later tick. The run key is a hash of the file's content, so a file
launches its job once, however long it stays there; the job moves it to ``inbox/done/`` once
processed, unless its content changed after the run read it (then it stays, and its new
content, with a new hash, gets its own run). A failed run leaves the file in place for
inspection: fix it and drop it again (new content, new run).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from smsp_connector.dagster.keys import SmspKeys
from smsp_connector.intake import file_sha256
from smsp_connector.operations.reports import REPORT_SUFFIXES

INBOX_SUFFIXES = (".csv", ".tsv")


def _inbox_files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.iterdir()
        if path.suffix.lower() in INBOX_SUFFIXES
        and not path.name.lower().endswith(REPORT_SUFFIXES)
        and path.is_file()
    )


def build_inbox_sensor(
    *,
    inbox: str | Path,
    jobs: Mapping[str, dg.UnresolvedAssetJobDefinition | dg.JobDefinition],
    keys: SmspKeys,
    name: str = "smsp_inbox",
    minimum_interval_seconds: int = 30,
    settle_seconds: float = 10.0,
) -> dg.SensorDefinition:
    """``jobs`` maps each operation (add, delete, cancel) to the job that handles it.
    ``settle_seconds``: how long a file's size and modification time must stay the same."""
    root = Path(inbox)

    @dg.sensor(
        name=name,
        jobs=list(jobs.values()),
        minimum_interval_seconds=minimum_interval_seconds,
        description=f"Launches the push, delete (dry run) or cancel job for each CSV file "
        f"dropped in {root}/add, {root}/delete or {root}/cancel, once it has settled.",
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def smsp_inbox(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        now = time.time()
        seen: dict[str, list[float]] = json.loads(context.cursor) if context.cursor else {}
        observed: dict[str, list[float]] = {}
        requests = []
        for operation, job in jobs.items():
            folder = root / operation
            if not folder.is_dir():
                continue
            for path in _inbox_files(folder):
                stat = path.stat()
                state = [stat.st_size, stat.st_mtime_ns]
                before = seen.get(str(path))
                if before is None or before[:2] != state:
                    observed[str(path)] = [*state, now]  # new or still changing: wait
                    continue
                observed[str(path)] = before
                if now - before[2] < settle_seconds:
                    continue
                config = {"csv_path": str(path), "move_to": str(root / "done")}
                requests.append(
                    dg.RunRequest(
                        run_key=f"{operation}:{file_sha256(path)}",
                        job_name=job.name,
                        run_config=keys.op_config(keys.mutation(operation), **config),
                        tags={"smsp/source_file": path.name, "smsp/operation": operation},
                    )
                )
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(observed))

    return smsp_inbox
