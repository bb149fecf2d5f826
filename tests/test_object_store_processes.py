"""Issue 17 §2: several processes with no shared disk, the lake, the inbox, the reports and the
exports on object storage (moto's S3 server on loopback) and the catalog and rate limit in
PostgreSQL.

Two Dagster processes (``dagster asset materialize``), each in its own empty working directory
with its own HOME, TMPDIR and DAGSTER_HOME, push the two halves of a file dropped as two inbox
objects at once, against an emulator process started with ``--rate-limit 105``, both with
``SMSP_RATE_LIMIT=100`` shared through PostgreSQL; a third process refreshes the stop list and
writes the exports. Nothing passes through a local folder: every path a process is given is an
``s3://`` URL, and the test checks that no working directory holds a data, inbox or export
file afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from smsp_connector.warehouse.lake import close_lakes
from smsp_connector.warehouse.upkeep import lake_upkeep

from .conftest import API_KEY
from .s3_server import SECRET_ACCESS_KEY, S3Bucket, s3_bucket, s3_endpoint  # noqa: F401
from .test_ducklake import Lake, conninfo
from .test_ducklake_processes import _REFRESH_DEFS, BIN, _start_emulator, _worker_env

pytestmark = pytest.mark.slow  # four subprocesses, PostgreSQL and an S3 server

NUMBERS = 2_000


def _env(home: Path, base_url: str, lake: Lake, rate_dsn: str, bucket: S3Bucket) -> dict:
    """test_ducklake_processes' worker environment, with the AWS variables the fixture set and
    the inbox and exports in the bucket."""
    home.mkdir(parents=True, exist_ok=True)
    aws = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    return {
        **_worker_env(home, base_url, lake, rate_dsn),
        **aws,
        "SMSP_EXPORT_DIR": f"{bucket.url}/exports",
        "SMSP_INBOX_DIR": f"{bucket.url}/inbox",
    }


def _s3_lake(postgres_dsn: str, bucket: S3Bucket) -> Lake:
    return Lake(
        database=f"ducklake:postgres:{conninfo(postgres_dsn)}",
        data_path=f"{bucket.url}/lake/",
        metadata_schema=f"lake_{uuid.uuid4().hex[:10]}",
    )


def _materialize(home: Path, env: dict, select: str, config: dict | None = None):
    (home / "defs.py").write_text(_REFRESH_DEFS)
    command = [str(BIN / "dagster"), "asset", "materialize", "-f", "defs.py", "--select", select]
    if config is not None:
        command += ["--config-json", json.dumps(config)]
    return subprocess.Popen(
        command, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.timeout(900)
def test_two_processes_push_inbox_objects_into_one_lake_and_a_third_refreshes(
    postgres_dsn,
    s3_bucket: S3Bucket,  # noqa: F811
    tmp_path,
):
    lake = _s3_lake(postgres_dsn, s3_bucket)
    numbers = [f"+3361{n:07d}" for n in range(NUMBERS)]
    halves = (numbers[: NUMBERS // 2], numbers[NUMBERS // 2 :])
    client = s3_bucket.client()
    for index, half in enumerate(halves):
        body = "phone\n" + "\n".join(half) + f"\nnot a number {index}\n"
        client.put_object(Bucket=s3_bucket.name, Key=f"inbox/add/half{index}.csv", Body=body)
    (tmp_path / "emulator").mkdir()
    emulator, base_url = _start_emulator(tmp_path / "emulator")
    root = base_url.removesuffix("/v1")
    homes = [tmp_path / f"worker{index}" for index in (0, 1)] + [tmp_path / "refresher"]
    envs = [_env(home, base_url, lake, postgres_dsn, s3_bucket) for home in homes]
    workers: list[subprocess.Popen[str]] = []
    try:
        started = time.monotonic()
        workers = [
            _materialize(
                homes[index],
                envs[index],
                "smsp/stop_list_additions",
                {
                    "ops": {
                        "smsp__stop_list_additions": {
                            "config": {
                                "csv_path": f"{s3_bucket.url}/inbox/add/half{index}.csv",
                                "move_to": f"{s3_bucket.url}/inbox/done",
                            }
                        }
                    }
                },
            )
            for index in (0, 1)
        ]
        outputs = [worker.communicate(timeout=600) for worker in workers]
        elapsed = time.monotonic() - started
        for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
            assert worker.returncode == 0, (stdout + stderr)[-3000:]
            assert API_KEY not in stdout + stderr and SECRET_ACCESS_KEY not in stdout + stderr

        stats = requests.get(f"{root}/_emulator/stats", params={"detail": "1"}, timeout=30).json()
        listed = requests.get(
            f"{base_url}/stop-sms/list", params={"apiKey": API_KEY}, timeout=30
        ).json()["data"]
        assert Counter(entry["phoneNumber"] for entry in listed) == Counter(numbers)
        too_many = sum(counts.get("http:429", 0) for counts in stats["endpoints"].values())
        adds = [r for r in stats["requests"] if r["endpoint"] == "stop-sms/add"]
        assert len(adds) == NUMBERS, "every number pushed once"
        audit = lake.query(
            "SELECT run_id, source_row, target, outcome FROM smsp.audit_latest "
            "WHERE operation = 'add'"
        )
        assert len(audit) == NUMBERS + 2  # and the two rejected rows
        assert Counter(row[3] for row in audit) == {"applied": NUMBERS, "invalid_input": 2}
        assert len({(row[0], row[1]) for row in audit}) == len(audit), "one row per input row"
        raw = dict(lake.query("SELECT outcome, count(*) FROM smsp.audit_log GROUP BY 1"))
        close_lakes()

        refresh = _materialize(
            homes[2],
            envs[2],
            "smsp/stop_list,smsp/stop_list_history,smsp/suppression_export",
        )
        stdout, stderr = refresh.communicate(timeout=600)
        assert refresh.returncode == 0, (stdout + stderr)[-3000:]
        assert Counter(
            row[0] for row in lake.query("SELECT phone_number FROM smsp.stop_list")
        ) == Counter(numbers)

        objects = s3_bucket.keys()
        by_folder = Counter(key.split("/", 1)[0] for key in objects)
        done = sorted(key.split("-", 1)[1] for key in objects if key.startswith("inbox/done/"))
        assert done == [
            "half0.csv",
            "half0.rejected.csv",
            "half1.csv",
            "half1.rejected.csv",
        ]
        assert not [key for key in objects if key.startswith("inbox/add/")]
        assert sorted(key for key in objects if key.startswith("exports/")) == [
            "exports/suppression_list.csv",
            "exports/suppression_list.parquet",
        ]
        exported = s3_bucket.body("exports/suppression_list.csv").decode().splitlines()
        assert len(exported) == NUMBERS + 1
        # No process left a data, inbox or export file in its working directory.
        local = [
            path
            for home in homes
            for path in home.rglob("*")
            if path.is_file() and path.suffix in (".csv", ".parquet", ".duckdb")
        ]
        assert local == []
        # The lake's upkeep on what these runs wrote (every age 0: all that can go, goes).
        upkeep = lake_upkeep(
            lake.warehouse(), expire_older_than=timedelta(0), delete_older_than=timedelta(0)
        )
        assert upkeep.files_before == by_folder["lake"] > upkeep.files_after
        assert upkeep.files_after == len(s3_bucket.keys("lake/"))
        assert lake.query("SELECT count(*) FROM smsp.audit_log") == [(sum(raw.values()),)]
        print(
            f"\n{NUMBERS} numbers from 2 inbox objects by 2 processes in {elapsed:.1f} s; "
            f"{len(adds)} adds, HTTP 429: {too_many}; audit_log {raw}; objects by folder "
            f"{dict(by_folder)}; upkeep: {upkeep.files_merged} files merged into "
            f"{upkeep.files_created}, {upkeep.snapshots_expired} snapshots expired, "
            f"{upkeep.files_deleted} deleted, lake files {upkeep.files_before} -> "
            f"{upkeep.files_after}"
        )
        assert too_many <= 3, "the shared limit holds the rate (see test_ducklake_processes)"
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        emulator.kill()
        emulator.wait(10)
        close_lakes()


_STEP_DEFS = textwrap.dedent(
    """
    # Each step of a run is a process of its own (multiprocess_executor), which imports this
    # file first: it moves to a new empty working directory and temporary folder, and says so.
    import json, os, tempfile

    _folder = tempfile.mkdtemp(prefix="step-", dir=os.environ["STEP_ROOT"])
    os.chdir(_folder)
    os.environ["TMPDIR"] = tempfile.tempdir = _folder
    with open(os.environ["STEP_LOG"], "a") as log:
        log.write(json.dumps({"pid": os.getpid(), "cwd": _folder}) + "\\n")

    import dagster as dg

    from smsp_connector.dagster import build_definitions
    from smsp_connector.settings import Settings

    _built = build_definitions(Settings.from_env())
    defs = dg.Definitions.merge(
        _built.definitions, dg.Definitions(executor=dg.multiprocess_executor)
    )
    """
)


# Eight processes, each importing Dagster and attaching the lake: about a minute on a quiet
# machine, more under make test's other slow tests.
@pytest.mark.timeout(900)
def test_a_push_job_whose_steps_run_in_separate_processes_and_folders(
    postgres_dsn,
    s3_bucket: S3Bucket,  # noqa: F811
    tmp_path,
):
    lake = _s3_lake(postgres_dsn, s3_bucket)
    numbers = [f"+3362{n:07d}" for n in range(50)]
    s3_bucket.client().put_object(
        Bucket=s3_bucket.name,
        Key="inbox/add/opt_outs.csv",
        Body=("phone\n" + "\n".join(numbers) + "\n").encode(),
    )
    (tmp_path / "emulator").mkdir()
    emulator, base_url = _start_emulator(tmp_path / "emulator")
    home, steps = tmp_path / "run", tmp_path / "steps"
    steps.mkdir()
    env = {
        **_env(home, base_url, lake, postgres_dsn, s3_bucket),
        "STEP_ROOT": str(steps),
        "STEP_LOG": str(tmp_path / "steps.jsonl"),
    }
    (home / "defs.py").write_text(_STEP_DEFS)
    config = {
        "ops": {
            "smsp__stop_list_additions": {
                "config": {
                    "csv_path": f"{s3_bucket.url}/inbox/add/opt_outs.csv",
                    "move_to": f"{s3_bucket.url}/inbox/done",
                }
            }
        }
    }
    run_config = home / "run_config.yaml"  # JSON is YAML
    run_config.write_text(json.dumps(config))
    try:
        done = subprocess.run(
            [
                str(BIN / "dagster"),
                "job",
                "execute",
                "-f",
                str(home / "defs.py"),
                "-j",
                "push_stop_numbers",
                "-c",
                str(run_config),
            ],
            cwd=home,
            env=env,
            capture_output=True,
            text=True,
            timeout=840,
            check=False,
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        logged = done.stdout + done.stderr
        assert API_KEY not in logged and SECRET_ACCESS_KEY not in logged

        # The push and the refresh's steps each ran in a process and folder of its own.
        logged_starts = (tmp_path / "steps.jsonl").read_text().splitlines()
        starts = [json.loads(line) for line in logged_starts]
        assert len({start["pid"] for start in starts}) == len(starts)
        assert len({start["cwd"] for start in starts}) == len(starts)
        step_keys = set(re.findall(r'"step_key": "([^"]+)"', logged)) or set(
            re.findall(r"STEP_START - Started execution of step \"([^\"]+)\"", logged)
        )
        assert {"smsp__stop_list_additions", "smsp__stop_list"} <= step_keys, step_keys
        # The command's own process (it orchestrates the run), then one per step.
        assert len(starts) == 1 + len(step_keys), (starts, step_keys)
        # And they passed nothing through a local folder: the input, the lake, the reports and
        # the exports are objects; the folders hold no data file.
        assert lake.query("SELECT count(*) FROM smsp.stop_list") == [(len(numbers),)]
        keys = s3_bucket.keys()
        assert [key for key in keys if key.startswith("inbox/")] == [
            key for key in keys if key.startswith("inbox/done/") and key.endswith("opt_outs.csv")
        ]
        assert "exports/suppression_list.csv" in keys
        local = [
            path
            for folder in (home, steps)
            for path in folder.rglob("*")
            if path.is_file() and path.suffix in (".csv", ".parquet", ".duckdb")
        ]
        assert local == []
        print(f"\n{len(starts)} processes for steps {sorted(step_keys)}")
    finally:
        emulator.kill()
        emulator.wait(10)
        close_lakes()
