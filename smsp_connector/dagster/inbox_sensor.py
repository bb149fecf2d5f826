"""A sensor that launches the matching job for each CSV file dropped in an inbox folder.

``inbox/add/`` → push, ``inbox/delete/`` → delete (always a dry run: confirming a deletion is a
deliberate act, done from the launchpad with ``confirm: true``), ``inbox/cancel/`` → cancel.
The run key is a hash of the file's content, so a file launches its job once, however long it
stays there; the job moves it to ``inbox/done/`` once processed. A failed run leaves the file
in place for inspection: fix it and drop it again (new content, new run).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from smsp_connector.dagster.keys import SmspKeys
from smsp_connector.operations.reports import REPORT_SUFFIXES


def _content_key(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_inbox_sensor(
    *,
    inbox: str | Path,
    jobs: Mapping[str, dg.UnresolvedAssetJobDefinition | dg.JobDefinition],
    keys: SmspKeys,
    name: str = "smsp_inbox",
    minimum_interval_seconds: int = 30,
) -> dg.SensorDefinition:
    """``jobs`` maps each operation (add, delete, cancel) to the job that handles it."""
    root = Path(inbox)

    @dg.sensor(
        name=name,
        jobs=list(jobs.values()),
        minimum_interval_seconds=minimum_interval_seconds,
        description=f"Launches the push, delete (dry run) or cancel job for each CSV file "
        f"dropped in {root}/add, {root}/delete or {root}/cancel.",
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def smsp_inbox() -> dg.SensorResult:
        requests = []
        for operation, job in jobs.items():
            folder = root / operation
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.csv")):
                if path.name.endswith(REPORT_SUFFIXES) or not path.is_file():
                    continue
                config = {"csv_path": str(path), "move_to": str(root / "done")}
                requests.append(
                    dg.RunRequest(
                        run_key=f"{operation}:{_content_key(path)}",
                        job_name=job.name,
                        run_config=keys.op_config(keys.mutation(operation), **config),
                        tags={"smsp/source_file": path.name, "smsp/operation": operation},
                    )
                )
        return dg.SensorResult(run_requests=requests)

    return smsp_inbox
