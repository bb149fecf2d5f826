"""A DuckLake whose data path is on object storage (issue 17 §1-2, first step): ``s3://`` through
DuckDB's httpfs and aws extensions (from their packages), credentials only from the AWS chain,
against a real S3 API on loopback (moto's server, tests/s3_server.py) and a real PostgreSQL
catalog."""

from __future__ import annotations

import logging
import time

import pytest

from smsp_connector.dagster import build_definitions
from smsp_connector.operations.context import RunContext
from smsp_connector.operations.inputs import PhoneFile
from smsp_connector.operations.run import Push, run_on_object
from smsp_connector.settings import Settings, SettingsError
from smsp_connector.warehouse import Warehouse
from smsp_connector.warehouse.lake import LakeTarget, close_lakes, lake_cursor
from smsp_connector.warehouse.object_store import (
    ObjectStoreConfigurationError,
    is_object_store,
    secret_sql,
)

from .conftest import API_KEY
from .instances import instance_for_test
from .pipeline_helpers import PipelineRig
from .s3_server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Bucket, s3_bucket, s3_endpoint  # noqa: F401
from .test_ducklake import Lake, _lake_settings, _materialize, lake  # noqa: F401

# --- without a server -------------------------------------------------------------------------


def test_the_secret_comes_from_the_credential_chain_with_the_standard_endpoint():
    assert secret_sql({}) == "CREATE OR REPLACE SECRET smsp_s3 (TYPE s3, PROVIDER credential_chain)"
    local = secret_sql({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ACCESS_KEY_ID": "K"})
    assert "ENDPOINT '127.0.0.1:9000', URL_STYLE 'path', USE_SSL false" in local
    assert "K" not in local.replace("KEY", "")  # no key in the SQL: the chain reads it
    s3_only = secret_sql(
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_S3": "https://minio.lan"}
    )
    assert "ENDPOINT 'minio.lan'" in s3_only and "USE_SSL true" in s3_only
    with pytest.raises(ObjectStoreConfigurationError, match="only on loopback"):
        secret_sql({"AWS_ENDPOINT_URL": "http://minio.lan:9000"})
    with pytest.raises(ObjectStoreConfigurationError, match="http"):
        secret_sql({"AWS_ENDPOINT_URL": "ftp://127.0.0.1"})


def test_a_data_path_with_credentials_or_no_bucket_is_refused_without_showing_them():
    database = "ducklake:postgres:dbname=smsp host=127.0.0.1"
    assert is_object_store("S3://bucket/x") and not is_object_store("/srv/lake")
    with pytest.raises(SettingsError) as refused:
        Settings(database=database, data_path="s3://AKIAXX:hunter2secret@bucket/lake/")
    assert "hunter2secret" not in str(refused.value) and "AKIAXX" not in str(refused.value)
    assert "s3://bucket/prefix" in str(refused.value)
    with pytest.raises(SettingsError, match="must be s3://bucket/prefix"):
        Settings(database=database, data_path="s3:///lake/")


def test_the_command_line_refuses_an_object_url_in_one_line():
    from click.testing import CliRunner

    from smsp_connector.cli import main

    for args in (["push", "s3://bucket/x.csv"], ["cancel", "--file", "s3://bucket/ids.csv"]):
        done = CliRunner().invoke(main, args, env={"SMSP_API_KEY": "k" * 12})
        assert done.exit_code == 2
        assert "s3://bucket/" in done.output and "reads local files" in done.output


@pytest.mark.parametrize(
    "location",
    [
        # A secret with a "/" ends the URL's host part early: the "@" is in the "path".
        "s3://AKIAXX:wJalrXUtnFEMI/K7MDENGbPxRfiCYSECRETKEY@bucket/lake/",
        # DuckDB reads its s3_* settings from a URL's query: a key, an endpoint, no TLS.
        "s3://bucket/exports?s3_access_key_id=AKIAXX&s3_secret_access_key=SECRETKEY",
        "s3://bucket/exports?s3_endpoint=192.0.2.2:9000&s3_use_ssl=false",
        "s3://bucket/exports#SECRETKEY",
        "s3://AKIAXX:SECRETKEY@bucket",
        "s3://bucket:SECRETKEY/x",
    ],
)
@pytest.mark.parametrize("setting", ["data_path", "export_dir", "inbox_dir"])
def test_a_location_with_credentials_a_query_or_a_fragment_is_refused_unshown(location, setting):
    options = {"database": "ducklake:postgres:dbname=smsp host=127.0.0.1"}
    if setting != "data_path":
        options = {}
    with pytest.raises(SettingsError) as refused:
        Settings(**options, **{setting: location})
    assert "SECRETKEY" not in str(refused.value) and "AKIAXX" not in str(refused.value)
    assert "s3://bucket/prefix" in str(refused.value)


def test_an_endpoint_is_refused_without_showing_it_when_it_holds_credentials_or_a_path():
    for endpoint in (
        "https://AKIAXX:SECRETKEY@minio.lan",
        "https://:SECRETKEY@minio.lan",
        "https://minio.lan/SECRETKEY",
    ):
        with pytest.raises(ObjectStoreConfigurationError) as refused:
            secret_sql({"AWS_ENDPOINT_URL": endpoint})
        assert "SECRETKEY" not in str(refused.value)
    with pytest.raises(ObjectStoreConfigurationError, match="AWS_ENDPOINT_URL_S3 is set but empty"):
        secret_sql({"AWS_ENDPOINT_URL_S3": " "})


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://AKIAXX:SECRETKEY\uff20s3.example",  # a full-width '@': urlsplit's own error
        "https://host%40SECRETKEY",
        "http://127.0.0.1:9000;SECRETKEY",
        "http://127.0.0.1:9000:SECRETKEY.example",
    ],
)
def test_an_endpoint_that_is_not_host_and_port_is_refused_unshown(endpoint):
    with pytest.raises(ObjectStoreConfigurationError) as refused:
        secret_sql({"AWS_ENDPOINT_URL": endpoint})
    assert "SECRETKEY" not in str(refused.value)
    assert refused.value.__context__ is None or "SECRETKEY" not in str(refused.value.__context__)


@pytest.mark.parametrize(
    "location",
    [
        "s3://bucket/exports%3Fs3_secret_access_key%3DSECRETKEY",
        "s3://bucket/AKIAXX%3ASECRETKEY%40x",
        "S3://bucket/exports",
        " s3://bucket/exports?s3_secret_access_key=SECRETKEY",
        "gs://bucket/exports?s3_secret_access_key=SECRETKEY",
        "https://AKIAXX:SECRETKEY@bucket.example/exports",
        "s3:/bucket/exports?s3_secret_access_key=SECRETKEY",
    ],
)
def test_other_spellings_of_a_remote_location_are_refused_unshown(location):
    with pytest.raises(SettingsError) as refused:
        Settings(export_dir=location)
    assert "SECRETKEY" not in str(refused.value)


# --- on moto's S3 server and PostgreSQL -------------------------------------------------------


@pytest.fixture
def s3_lake(lake: Lake, s3_bucket: S3Bucket) -> Lake:  # noqa: F811
    return Lake(lake.database, f"{s3_bucket.url}/lake/", lake.metadata_schema)


@pytest.mark.slow
def test_the_pipeline_writes_its_lake_to_the_bucket_and_no_key_anywhere(
    emulator,
    s3_lake: Lake,
    s3_bucket: S3Bucket,  # noqa: F811
    tmp_path,
    caplog,
):
    caplog.set_level(logging.DEBUG)
    push_file = tmp_path / "opt_outs.csv"
    push_file.write_text("phone\n0644444444\n+33622222222\n0655555555\n")
    with instance_for_test() as instance:
        rig = PipelineRig(emulator, tmp_path / "w.duckdb", tmp_path / "exports", instance)
        rig.settings = _lake_settings(rig, s3_lake)  # type: ignore[method-assign]
        first, pushed, last = _materialize(rig, push_file)
        assert first.success and pushed.success and last.success
        # Logs and events before this test's own S3 client logs its requests.
        logged = [caplog.text] + [
            str(entry)
            for result in (first, pushed, last)
            for entry in instance.all_logs(result.run_id)
        ]

    stored = s3_bucket.keys("lake/")
    assert stored and all(key.endswith(".parquet") for key in stored)
    # No lake file on local disk (the exports are still written to a local folder).
    local = [path for path in tmp_path.glob("**/*.parquet") if "exports" not in path.parts]
    assert not local
    assert s3_lake.query("SELECT phone_number FROM smsp.stop_list ORDER BY 1") == [
        ("+33622222222",),
        ("+33633333333",),
        ("+33644444444",),
        ("+33655555555",),
    ]
    # The secret is in no table, log line or Dagster event; the key id neither.
    tables = s3_lake.query("SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake'")
    for (table,) in tables:
        text = str(s3_lake.query(f"SELECT * FROM smsp.{table}"))
        assert SECRET_ACCESS_KEY not in text and ACCESS_KEY_ID not in text, table
    for text in logged:
        assert SECRET_ACCESS_KEY not in text and ACCESS_KEY_ID not in text


@pytest.mark.slow
def test_upkeep_counts_and_deletes_objects_in_the_bucket(s3_lake: Lake, s3_bucket: S3Bucket):  # noqa: F811
    from datetime import timedelta

    from .test_lake_upkeep import _write_runs

    _write_runs(s3_lake.warehouse(), 3)
    before = len(s3_bucket.keys("lake/"))
    built = build_definitions(
        Settings(
            api_key=API_KEY,
            database=s3_lake.database,
            data_path=s3_lake.data_path,
            metadata_schema=s3_lake.metadata_schema,
            lake_expire_after=timedelta(0),
            lake_delete_after=timedelta(0),
        )
    )
    result = built.job("smsp_lake_upkeep").execute_in_process()

    (event,) = result.get_asset_materialization_events()
    shown = {name: value.value for name, value in event.materialization.metadata.items()}
    assert shown["files_before"] == before >= 3
    assert shown["files_after"] == len(s3_bucket.keys("lake/")) < before
    assert s3_lake.query("SELECT count(*) FROM smsp.audit_log") == [(6_000,)]


@pytest.mark.slow
def test_no_credentials_is_one_line_naming_what_to_set(
    s3_lake: Lake,
    monkeypatch,
):
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(variable)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    close_lakes()
    target = LakeTarget.parse(s3_lake.database, s3_lake.data_path, s3_lake.metadata_schema)
    with (
        pytest.raises(ObjectStoreConfigurationError, match="AWS_ACCESS_KEY_ID") as refused,
        lake_cursor(target),
    ):
        pass
    assert refused.value.__cause__ is None and refused.value.__context__ is None


@pytest.mark.slow
@pytest.mark.parametrize("warehouse", ["file", "lake"])
def test_the_exports_are_objects_in_the_bucket_with_no_partial_one(
    emulator,
    warehouse,
    s3_lake: Lake,
    s3_bucket: S3Bucket,  # noqa: F811
    tmp_path,
):
    emulator.state.seed_entries(
        (n, "2025-07-14 09:30:00") for n in ("+33611111111", "+33622222222", "+33633333333")
    )
    with instance_for_test() as instance:
        rig = PipelineRig(emulator, tmp_path / "w.duckdb", tmp_path / "exports", instance)
        options = {"export_dir": f"{s3_bucket.url}/exports/"}
        if warehouse == "lake":
            lake_settings = _lake_settings(rig, s3_lake)
            rig.settings = lambda **more: lake_settings(**options, **more)  # type: ignore[method-assign]
        else:
            plain = rig.settings
            rig.settings = lambda **more: plain(**options, **more)  # type: ignore[method-assign]
        result = rig.materialize()
        assert result.success
        shown = {
            event.asset_key.to_user_string(): event.materialization.metadata["path"].value
            for event in result.get_asset_materialization_events()
            if "path" in event.materialization.metadata
        }

    assert sorted(s3_bucket.keys("exports/")) == [
        "exports/suppression_list.csv",
        "exports/suppression_list.parquet",
        "exports/suppression_list_sha256.csv",
        "exports/suppression_list_sha256.parquet",
    ]
    assert shown["smsp/suppression_export"] == f"{s3_bucket.url}/exports/suppression_list.csv"
    rows = s3_bucket.body("exports/suppression_list.csv").decode().splitlines()
    assert rows[0] == "phone_number,stop_id,opted_out_at_utc"
    assert sorted(row.split(",")[0] for row in rows[1:]) == [
        "+33611111111",
        "+33622222222",
        "+33633333333",
    ]
    assert not (tmp_path / "exports").exists()


# --- the inbox on object storage --------------------------------------------------------------


def _put(bucket: S3Bucket, key: str, body: str) -> None:
    bucket.client().put_object(Bucket=bucket.name, Key=key, Body=body.encode())


def _push_object(client, tmp_path, url: str, *, source=None, max_bytes=1 << 20, **options):
    """run_on_object of a push of ``url`` on the test emulator and a DuckDB file (``source``:
    the file input whose reading a test hooks; its path is not used)."""
    return run_on_object(
        Push(),
        source or PhoneFile(tmp_path / "unused.csv"),
        url,
        RunContext(
            client=client,
            warehouse=Warehouse.at(tmp_path / "warehouse.duckdb"),
            run_id="object-run",
            job="test",
        ),
        max_bytes=max_bytes,
        **options,
    )


@pytest.mark.slow
def test_an_inbox_object_settles_then_runs_once_and_moves_to_done_with_its_report(
    emulator,
    s3_bucket: S3Bucket,  # noqa: F811
    tmp_path,
):
    from .test_inbox_and_lineage import JOBS, Ticks

    inbox = f"{s3_bucket.url}/inbox"
    _put(s3_bucket, "inbox/add/march.csv", "phone\n06 12 34 56 78\nnot a number\n")
    _put(s3_bucket, "inbox/add/notes.txt", "not an inbox file")
    ticks = Ticks(inbox)
    assert ticks() == [], "an object seen for the first time is never taken at once"
    _put(s3_bucket, "inbox/add/march.csv", "phone\n06 12 34 56 78\nnot a number\n+33698765432\n")
    assert ticks() == [], "replaced since the last tick: its ETag changed, it waits again"
    [request] = ticks()
    assert request.job_name == JOBS["add"].name
    assert request.run_key.startswith("add:etag:")
    config = request.run_config["ops"]["smsp__stop_list_additions"]["config"]
    assert config == {"csv_path": f"{inbox}/add/march.csv", "move_to": f"{inbox}/done"}

    with instance_for_test() as instance:
        rig = PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)
        result = rig.run(rig.pushes(), request.run_config)
        assert result.success
        (event,) = [
            event
            for event in result.get_asset_materialization_events()
            if event.asset_key.to_user_string() == "smsp/stop_list_additions"
        ]
        shown = {name: value.value for name, value in event.materialization.metadata.items()}
        logged = "\n".join(str(entry) for entry in instance.all_logs(result.run_id))

    assert emulator.state.has_number("+33612345678")
    assert emulator.state.has_number("+33698765432")
    keys = s3_bucket.keys("inbox/")
    run8 = result.run_id[:8]
    assert sorted(keys) == [
        "inbox/add/notes.txt",
        f"inbox/done/{run8}-march.csv",
        f"inbox/done/{run8}-march.rejected.csv",
    ]
    assert shown["source_file"] == f"{inbox}/done/{run8}-march.csv"
    assert shown["rejection_report"] == f"{inbox}/done/{run8}-march.rejected.csv"
    assert "not a number" in s3_bucket.body(f"inbox/done/{run8}-march.rejected.csv").decode()
    assert SECRET_ACCESS_KEY not in logged and "smsp-object-" not in logged
    assert not list(tmp_path.glob("**/*.csv")), "nothing of the inbox on local disk"


@pytest.mark.slow
def test_an_object_replaced_after_the_run_read_it_is_not_archived(
    emulator,
    client,
    s3_bucket: S3Bucket,  # noqa: F811
    tmp_path,
):

    url = f"{s3_bucket.url}/inbox/add/growing.csv"
    _put(s3_bucket, "inbox/add/growing.csv", "phone\n+33611111111\n")

    class StillBeingWritten(PhoneFile):
        def read(self, extra_columns=()):
            frame = super().read(extra_columns)
            # The writer uploads a longer version after the run read the object.
            _put(s3_bucket, "inbox/add/growing.csv", "phone\n+33611111111\n+33622222222\n")
            return frame

    report = _push_object(
        client,
        tmp_path,
        url,
        source=StillBeingWritten(tmp_path / "unused.csv"),
        move_to=f"{s3_bucket.url}/inbox/done",
    )

    assert report.changed_after_read and report.source == url
    assert s3_bucket.keys("inbox/") == ["inbox/add/growing.csv"], "left for a run of its own"
    assert emulator.state.has_number("+33611111111")
    assert not emulator.state.has_number("+33622222222"), "only what was read was pushed"


@pytest.mark.slow
def test_an_unusable_or_missing_object_fails_in_one_line_naming_it(
    emulator,
    client,
    s3_bucket: S3Bucket,  # noqa: F811
    tmp_path,
):
    from smsp_connector.intake import IntakeError

    _put(s3_bucket, "inbox/add/empty.csv", "")
    _put(s3_bucket, "inbox/add/big.csv", "phone\n" + "0612345678\n" * 200)
    for key, problem in (
        ("inbox/add/empty.csv", "empty"),
        ("inbox/add/big.csv", "above the 1,000-byte limit"),
        ("inbox/add/missing.csv", "no such object"),
    ):
        url = f"{s3_bucket.url}/{key}"
        with pytest.raises(IntakeError) as refused:
            _push_object(client, tmp_path, url, max_bytes=1_000)
        assert str(refused.value).startswith(f"{url}: ") and problem in str(refused.value)
        assert "smsp-object-" not in str(refused.value)
    assert emulator.stats()["endpoints"] == {}, "nothing was sent"


@pytest.mark.slow
def test_an_inbox_object_put_again_with_the_same_bytes_runs_again(s3_bucket: S3Bucket):  # noqa: F811
    from .test_inbox_and_lineage import Ticks

    inbox = f"{s3_bucket.url}/inbox"
    _put(s3_bucket, "inbox/add/stop.csv", "phone\n0612345678\n")
    _put(s3_bucket, "inbox/add/stop copy.csv", "phone\n0612345678\n")
    ticks = Ticks(inbox)
    ticks()
    first = {request.tags["smsp/source_file"]: request.run_key for request in ticks()}
    assert first["stop.csv"] != first["stop copy.csv"], "each object runs"
    time.sleep(1.1)  # S3's last-modified has one-second steps
    _put(s3_bucket, "inbox/add/stop.csv", "phone\n0612345678\n")  # the same bytes, later
    again = Ticks(inbox)
    again()
    [request] = [r for r in again() if r.tags["smsp/source_file"] == "stop.csv"]

    assert request.run_key != first["stop.csv"]


@pytest.mark.slow
def test_objects_named_with_hash_question_mark_or_a_long_name_run_as_named(
    emulator,
    s3_bucket: S3Bucket,  # noqa: F811
    tmp_path,
):
    from .test_inbox_and_lineage import Ticks

    inbox = f"{s3_bucket.url}/inbox"
    names = {
        "batch#3.csv": "+33611111111",
        "what?.csv": "+33622222222",
        "a.csv#late.csv": "+33633333333",
        "é" * 148 + ".csv": "+33644444444",
    }
    _put(s3_bucket, "inbox/add/a.csv", "phone\n+33655555555\n")
    for name, number in names.items():
        _put(s3_bucket, f"inbox/add/{name}", f"phone\n{number}\nnot a number\n")
    ticks = Ticks(inbox)
    ticks()
    requests_by_name = {request.tags["smsp/source_file"]: request for request in ticks()}
    assert sorted(requests_by_name) == sorted([*names, "a.csv"])

    with instance_for_test() as instance:
        rig = PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)
        for name in names:
            result = rig.run(rig.pushes(), requests_by_name[name].run_config)
            assert result.success, name
            run8 = result.run_id[:8]
            stem = name.rsplit(".", 1)[0]
            done = set(s3_bucket.keys("inbox/done/"))
            assert {f"inbox/done/{run8}-{name}", f"inbox/done/{run8}-{stem}.rejected.csv"} <= done

    for number in names.values():
        assert emulator.state.has_number(number)
    assert not emulator.state.has_number("+33655555555"), "a.csv was never run"
    assert s3_bucket.keys("inbox/add/") == ["inbox/add/a.csv"]


@pytest.mark.slow
def test_an_object_replaced_just_before_the_archive_keeps_its_new_content(
    emulator,
    client,
    s3_bucket: S3Bucket,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    from smsp_connector.operations import object_files

    url = f"{s3_bucket.url}/inbox/add/late.csv"
    _put(s3_bucket, "inbox/add/late.csv", "phone\n+33611111111\n")
    put_file, replaced = object_files.put_file, []

    def writer_first(local, target):
        if "/done/" in target and not replaced:
            # A writer replaces the input between the run's check and its archive.
            _put(s3_bucket, "inbox/add/late.csv", "phone\n+33611111111\n+33622222222\n")
            replaced.append(target)
        return put_file(local, target)

    monkeypatch.setattr(object_files, "put_file", writer_first)
    report = _push_object(client, tmp_path, url, move_to=f"{s3_bucket.url}/inbox/done")

    assert replaced, "the writer came in"
    assert report.changed_after_read and report.source == url
    assert s3_bucket.body("inbox/add/late.csv").decode().count("+336") == 2, "kept for its run"
    [archived] = s3_bucket.keys("inbox/done/")
    assert s3_bucket.body(archived).decode() == "phone\n+33611111111\n", "what was read"
    assert not emulator.state.has_number("+33622222222")


@pytest.mark.slow
def test_an_object_archived_to_a_local_folder_is_refused_before_anything_is_sent(
    emulator,
    client,
    s3_bucket: S3Bucket,  # noqa: F811
    tmp_path,
):
    from smsp_connector.intake import IntakeError

    _put(s3_bucket, "inbox/add/x.csv", "phone\n+33611111111\n")
    with pytest.raises(IntakeError, match="archived to an s3:// folder"):
        _push_object(
            client, tmp_path, f"{s3_bucket.url}/inbox/add/x.csv", move_to=str(tmp_path / "done")
        )
    assert emulator.stats()["endpoints"] == {}


def test_a_local_file_archived_to_an_object_folder_fails_before_anything_is_sent(
    emulator, tmp_path
):
    source = tmp_path / "opt_outs.csv"
    source.write_text("phone\n+33611111111\n")
    config = {"csv_path": str(source), "move_to": "s3://bucket/done"}
    with instance_for_test() as instance:
        rig = PipelineRig(emulator, tmp_path / "warehouse.duckdb", tmp_path / "exports", instance)
        result = rig.run(rig.pushes(), {"ops": {"smsp__stop_list_additions": {"config": config}}})

    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert "move_to" in failure.step_failure_data.error.message
    assert emulator.stats()["endpoints"] == {}, "nothing was sent"
    assert source.exists() and not (tmp_path / "s3:").exists()
