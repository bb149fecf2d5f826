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
content, with a new hash, gets its own run). The key also holds the file's name and
modification time: the same bytes dropped again later, or under another name, run again (a
number opted out, deleted with consent, then opted out again must be pushed again). A failed
run leaves the file in place for inspection: fix it and drop it again (a new run).

The inbox may be an object-store folder (``s3://bucket/inbox``, see
:mod:`smsp_connector.operations.object_files`): an object has settled when its size and ETag
have stayed the same, its run key is its ETag, name and last change, and the run archives it
to ``…/done`` only if it still holds what was read.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from smsp_connector.dagster.keys import SmspKeys
from smsp_connector.intake import file_sha256
from smsp_connector.operations import object_files
from smsp_connector.operations.reports import REPORT_SUFFIXES

INBOX_SUFFIXES = (".csv", ".tsv")


@dataclass(frozen=True, slots=True)
class _Entry:
    """A file (or object) in an operation's folder."""

    location: str
    name: str
    state: list[Any]
    """What must stay the same for ``settle_seconds``: size and modification time, or ETag."""
    identity: Callable[[], str]
    """The content's identity for the run key (read once the file has settled)."""


def _taken(name: str) -> bool:
    return name.lower().endswith(INBOX_SUFFIXES) and not name.lower().endswith(REPORT_SUFFIXES)


def _run_key(name: str, modified: object, content: str) -> str:
    """The run key's identity of a file: its content, name and last change. The same file left
    in place is asked for once; the same bytes dropped again later (an opt-out given again
    after a deletion) or under another name run again."""
    named = hashlib.sha256(f"{name}\x1f{modified}".encode()).hexdigest()[:16]
    return f"{content}:{named}"


def _entries(root: str, operation: str) -> list[_Entry]:
    if object_files.is_object_store(root):
        return [
            _Entry(
                found.url,
                found.name,
                [found.size, found.etag, found.modified],
                lambda f=found: _run_key(f.name, f.modified, "etag:" + f.etag.strip('"')),
            )
            for found in object_files.list_files(object_files.join(root, operation))
            if _taken(found.name)
        ]
    folder = Path(root) / operation
    if not folder.is_dir():
        return []
    entries = []
    for path in sorted(folder.iterdir()):
        if _taken(path.name) and path.is_file():
            stat = path.stat()
            entries.append(
                _Entry(
                    str(path),
                    path.name,
                    [stat.st_size, stat.st_mtime_ns],
                    # The inode's change time too: `mv` and `cp -p` keep the mtime.
                    lambda path=path, stat=stat: _run_key(
                        path.name, (stat.st_mtime_ns, stat.st_ctime_ns), file_sha256(path)
                    ),
                )
            )
    return entries


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
    root = str(inbox).rstrip("/")

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
        seen: dict[str, list[Any]] = json.loads(context.cursor) if context.cursor else {}
        observed: dict[str, list[Any]] = {}
        requests = []
        for operation, job in jobs.items():
            for entry in _entries(root, operation):
                before = seen.get(entry.location)
                if before is None or before[:-1] != entry.state:
                    observed[entry.location] = [*entry.state, now]  # new or changing: wait
                    continue
                observed[entry.location] = before
                if now - before[-1] < settle_seconds:
                    continue
                config = {"csv_path": entry.location, "move_to": f"{root}/done"}
                requests.append(
                    dg.RunRequest(
                        run_key=f"{operation}:{entry.identity()}",
                        job_name=job.name,
                        run_config=keys.op_config(keys.mutation(operation), **config),
                        tags={"smsp/source_file": entry.name, "smsp/operation": operation},
                    )
                )
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(observed))

    return smsp_inbox
