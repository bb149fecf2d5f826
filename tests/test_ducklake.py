"""DuckLake with a PostgreSQL catalog as the warehouse (issue 11 §3).

A real PostgreSQL (tests/postgres_server.py: skipped without Debian's binaries, failed under
CI=true) holds the catalog; each test gets its own lake (a catalog schema of its own and a data
path in its temporary folder). The extensions are loaded from the ``duckdb-extension-*``
packages, never downloaded.
"""

from __future__ import annotations

import csv
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import duckdb
import psycopg
import pytest

from smsp_connector.dagster.ducklake_resource import DuckLakeResource, duckdb_resource
from smsp_connector.settings import Settings, SettingsError
from smsp_connector.warehouse import Warehouse, is_local_database
from smsp_connector.warehouse.lake import (
    LakeConnectError,
    LakeTarget,
    close_lakes,
    extension_file,
    lake_cursor,
    redact,
)
from smsp_connector.warehouse.tables import _DDL, lake_ddl

from .conftest import API_KEY
from .instances import instance_for_test
from .pipeline_helpers import PipelineRig, materialized_keys
from .postgres_server import postgres_server, require_postgres

pytestmark = pytest.mark.slow  # a PostgreSQL server (started per worker)

PASSWORD = f"pw-{uuid.uuid4().hex}"


def conninfo(dsn: str) -> str:
    """The libpq conninfo of the fixture's ``postgresql://user@host:port/db``."""
    url = urlsplit(dsn)
    return f"dbname={url.path.lstrip('/')} host={url.hostname} port={url.port} user={url.username}"


@dataclass(frozen=True)
class Lake:
    database: str
    data_path: str
    metadata_schema: str

    def warehouse(self, schema: str = "smsp") -> Warehouse:
        return Warehouse.at(
            self.database,
            schema=schema,
            data_path=self.data_path,
            metadata_schema=self.metadata_schema,
        )

    def query(self, sql: str, parameters: list | None = None) -> list[tuple]:
        with self.warehouse().connect() as (conn, _):
            return conn.execute(sql, parameters or []).fetchall()


@pytest.fixture
def lake(postgres_dsn, tmp_path) -> Lake:
    yield Lake(
        database=f"ducklake:postgres:{conninfo(postgres_dsn)}",
        data_path=str(tmp_path / "lake_data") + "/",
        metadata_schema=f"lake_{uuid.uuid4().hex[:10]}",
    )
    close_lakes()


# --- without PostgreSQL ----------------------------------------------------------------------


def test_the_lake_ddl_has_no_constraint_ducklake_refuses():
    ddl = lake_ddl(_DDL)

    for refused in ("PRIMARY KEY", "UNIQUE", "CHECK", "SEQUENCE", "INDEX", "OR REPLACE VIEW"):
        assert refused not in ddl
    assert "phone_number VARCHAR NOT NULL" in ddl
    assert "status VARCHAR NOT NULL DEFAULT 'published',\n" in ddl
    assert "CREATE VIEW IF NOT EXISTS" in ddl


def test_settings_select_a_lake_and_refuse_what_cannot_work():
    database = f"ducklake:postgres:dbname=smsp host=db.internal user=smsp password={PASSWORD}"
    env = {"SMSP_DUCKDB_PATH": database, "SMSP_DUCKLAKE_DATA_PATH": "/srv/lake/"}

    settings = Settings.from_env(env)

    assert (settings.database, settings.data_path) == (database, "/srv/lake/")
    assert PASSWORD not in repr(settings)
    assert not is_local_database(database)
    with pytest.raises(SettingsError, match="needs its data path"):
        Settings(database=database)
    with pytest.raises(SettingsError, match="only a PostgreSQL catalog"):
        Settings(database="ducklake:sqlite:meta.sqlite", data_path="/srv/lake/")
    with pytest.raises(SettingsError, match="for a ducklake: database"):
        Settings(database="data/warehouse.duckdb", data_path="/srv/lake/")
    with pytest.raises(SettingsError, match="lake's own name"):
        Settings(database=database, data_path="/srv/lake/", schema="lake")
    assert isinstance(duckdb_resource(Settings()), dg.ConfigurableResource)
    assert not isinstance(duckdb_resource(Settings()), DuckLakeResource)


def test_passwords_are_redacted_in_conninfos_and_urls():
    assert redact(f"dbname=x password={PASSWORD} user=u") == "dbname=x password=*** user=u"
    assert redact(f"host=h password = '{PASSWORD} x' port=1") == "host=h password = *** port=1"
    assert redact(f"postgresql://u:{PASSWORD}@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact(f"postgresql://h/db?sslmode=require&password={PASSWORD}").endswith("=***")
    assert redact("postgresql://u@h/db dbname=x") == "postgresql://u@h/db dbname=x"


def test_the_extensions_come_from_the_installed_packages():
    for name in ("ducklake", "postgres_scanner"):
        path = extension_file(name)
        assert path.is_file()
        assert f"v{duckdb.__version__}" in path.parts


# --- on a lake -------------------------------------------------------------------------------


def test_the_lake_attaches_offline_once_per_process(lake, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    warehouse = lake.warehouse()

    with warehouse.connect() as (conn, tables):
        assert conn.execute("SELECT current_database()").fetchone() == ("lake",)
        loaded = conn.execute(
            "SELECT extension_name, loaded, installed FROM duckdb_extensions() "
            "WHERE extension_name IN ('ducklake', 'postgres_scanner') ORDER BY 1"
        ).fetchall()
        first = conn.execute("SELECT count(*) FROM ducklake_snapshots('lake')").fetchone()[0]
    assert warehouse.is_lake and tables.schema == '"lake".smsp'
    assert loaded == [("ducklake", True, False), ("postgres_scanner", True, False)]
    assert not (tmp_path / "home" / ".duckdb").exists(), "nothing installed, nothing downloaded"
    # A second warehouse (another step, another run) finds the tables and writes nothing.
    again = lake.warehouse()
    with again.connect() as (conn, _):
        assert conn.execute("SELECT count(*) FROM ducklake_snapshots('lake')").fetchone() == (
            first,
        )
        locks = conn.execute("SELECT name FROM smsp.warehouse_locks ORDER BY 1").fetchall()
    assert locks == [("cursors",), ("history",), ("ledger",), ("plans",), ("publish",)]


def _materialize(rig: PipelineRig, push_file: Path):
    """Seed, refresh, push a file, change the list, refresh again: every warehouse write."""
    state = rig.emulator.state
    state.seed_entries(
        (n, "2025-07-14 09:30:00") for n in ("+33611111111", "+33622222222", "+33633333333")
    )
    first = rig.materialize()
    pushed = rig.run(
        [*rig.pushes(), *rig.defs.extract.assets],
        {"ops": {"smsp__stop_list_additions": {"config": {"csv_path": str(push_file)}}}},
    )
    state.delete_stop(state.stop_id_for("+33611111111"))
    last = rig.materialize()
    return first, pushed, last


_SEEDED = "TIMESTAMPTZ '2025-07-14 07:30:00+00'"
_COMPARED = {
    # The emulator's ids keep counting across resets, pushed numbers get the time of the push
    # and concurrent pushes their ids in any order: the seeded time or not, ids only as a set.
    "stop_list": f"SELECT phone_number, created_at = {_SEEDED}, stop_id IS NOT NULL "
    "FROM smsp.stop_list ORDER BY phone_number",
    "stop_ids": "SELECT count(DISTINCT stop_id), max(stop_id) - min(stop_id) FROM smsp.stop_list",
    "snapshots": "SELECT row_count, entered, left_count, valid, status, rejected_by "
    "FROM smsp.stop_list_snapshots ORDER BY extracted_at",
    "presence": f"SELECT phone_number, listed, left_at IS NULL, created_at = {_SEEDED}, "
    "first_seen_at <= last_seen_at FROM smsp.stop_list_presence ORDER BY phone_number",
    "history": "SELECT change, phone_number, stop_id IS NOT NULL FROM smsp.stop_list_history "
    "ORDER BY observed_at, change, phone_number",
    "audit": "SELECT job, operation, dry_run, source_row, target, outcome, detail, "
    "provider_code, account FROM smsp.audit_latest ORDER BY source_row",
    "audit_rows": "SELECT outcome, count(*) FROM smsp.audit_log GROUP BY 1 ORDER BY 1",
    "rejections": "SELECT row_number, raw_value, reason FROM smsp.input_rejections ORDER BY 1",
}


def _exports(folder: Path) -> dict[str, list[dict[str, str]]]:
    found = {}
    for name in ("suppression_list.csv", "suppression_list_sha256.csv"):
        with open(folder / name, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        # Ids and push times differ from run to run (see _COMPARED).
        found[name] = sorted(
            (
                {k: v for k, v in row.items() if k not in ("stop_id", "opted_out_at_utc")}
                for row in rows
            ),
            key=lambda row: sorted(row.items()),
        )
        found[name + " columns"] = list(rows[0]) if rows else []
    return found


def test_the_pipeline_on_a_lake_writes_the_rows_it_writes_on_a_file(emulator, lake, tmp_path):
    push_file = tmp_path / "opt_outs.csv"
    push_file.write_text("phone\n0644444444\n+33622222222\nnot a number\n0655555555\n")
    results = {}
    for kind in ("file", "lake"):
        emulator.reset()
        folder = tmp_path / kind
        with instance_for_test() as instance:
            rig = PipelineRig(emulator, folder / "warehouse.duckdb", folder / "exports", instance)
            if kind == "lake":
                rig.settings = _lake_settings(rig, lake)  # type: ignore[method-assign]
                assert isinstance(rig.defs.resources["duckdb"], DuckLakeResource)
            first, pushed, last = _materialize(rig, push_file)
            assert first.success and pushed.success and last.success, kind
            assert materialized_keys(last) == {
                "smsp/stop_list",
                "smsp/stop_list_history",
                "smsp/opt_out_ledger",
                "smsp/suppression_export",
                "smsp/suppression_export_sha256",
            }
            query = lake.query if kind == "lake" else rig.query
            results[kind] = {name: query(sql) for name, sql in _COMPARED.items()}
            results[kind]["exports"] = _exports(folder / "exports")
    assert not (tmp_path / "lake" / "warehouse.duckdb").exists(), "the lake wrote no DuckDB file"
    assert results["lake"] == results["file"]
    lake_rows = results["lake"]
    assert [row[0] for row in lake_rows["stop_list"]] == [
        "+33622222222",
        "+33633333333",
        "+33644444444",
        "+33655555555",
    ]
    assert [row[0] for row in lake_rows["history"]].count("left") == 1
    assert {row[5] for row in lake_rows["audit"]} == {
        "applied",
        "already_on_list",
        "invalid_input",
    }
    assert len(lake_rows["rejections"]) == 1


def _lake_settings(rig: PipelineRig, lake: Lake):
    plain = rig.settings

    def settings(**options):
        return plain(
            **{
                "database": lake.database,
                "data_path": lake.data_path,
                "metadata_schema": lake.metadata_schema,
                **options,
            }
        )

    return settings


def test_concurrent_cursor_upserts_keep_one_row_per_source(lake):
    from smsp_connector.warehouse import Outcome, advance_cursor, pushed_cursor

    warehouse = lake.warehouse()
    for value in ("2026-01-01", "2026-01-02", "2026-01-03"):
        advance_cursor(warehouse, "crm", run_id="r", cursors=[value], outcomes=[Outcome.APPLIED])
    assert pushed_cursor(warehouse, "crm") == "2026-01-03"
    assert lake.query("SELECT source, cursor_value FROM smsp.push_cursors") == [
        ("crm", "2026-01-03")
    ]


def test_a_transaction_whose_commit_loses_runs_again_on_the_winners_state(lake):
    warehouse = lake.warehouse()
    target = LakeTarget.parse(lake.database, lake.data_path, lake.metadata_schema)
    seen = []

    def work(conn, t):
        seen.append(conn.execute(f"SELECT count(*) FROM {t.cursors}").fetchone()[0])
        if len(seen) == 1:
            # Meanwhile another connection takes the same lock and commits first.
            with lake_cursor(target) as other:
                other.execute(f"UPDATE {t.locks} SET taken_at = now() WHERE name = 'cursors'")
                other.execute(f"INSERT INTO {t.cursors} VALUES ('crm', 'a', 'other', now())")
        conn.execute(f"INSERT INTO {t.cursors} VALUES ('web', 'b', 'mine', now())")
        return len(seen)

    # The first COMMIT fails (and the ROLLBACK after it is tolerated); the second attempt
    # sees the other's row.
    assert warehouse.transaction(work, lock="cursors") == 2
    assert seen == [0, 1]
    assert lake.query("SELECT source FROM smsp.push_cursors ORDER BY 1") == [("crm",), ("web",)]


def test_no_password_nor_key_in_reprs_logs_or_errors(emulator, lake, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    # Trust authentication ignores the password, so this conninfo works.
    database = f"{lake.database} password={PASSWORD}"
    emulator.state.seed_entries([("+33612345678", "2025-07-14 09:30:00")])
    with instance_for_test() as instance:
        rig = PipelineRig(emulator, tmp_path / "unused.duckdb", tmp_path / "exports", instance)
        plain = rig.settings
        rig.settings = lambda **o: plain(  # type: ignore[method-assign]
            **{
                "database": database,
                "data_path": lake.data_path,
                "metadata_schema": lake.metadata_schema,
                **o,
            }
        )
        result = rig.materialize()
        assert result.success
        events = instance.all_logs(result.run_id)
        logged = "\n".join(str(event) for event in events)
    settings = rig.settings()
    resource = duckdb_resource(settings)
    warehouse = Warehouse.at(
        database, data_path=lake.data_path, metadata_schema=lake.metadata_schema
    )
    shown = [
        repr(settings),
        str(settings),
        repr(resource),
        str(resource),
        repr(warehouse),
        repr(LakeTarget.parse(database, lake.data_path)),
    ]
    unreachable = f"ducklake:postgres:dbname=x host=127.0.0.1 port=1 user=x password={PASSWORD}"
    with (
        pytest.raises(LakeConnectError) as refused,
        Warehouse.at(unreachable, data_path=str(tmp_path / "x")).connect(),
    ):
        pass
    message = str(refused.value)
    assert "cannot attach the lake" in message and "password=***" in message
    assert refused.value.__cause__ is None and refused.value.__context__ is None
    for text in [*shown, message, caplog.text, logged]:
        assert PASSWORD not in text
        assert API_KEY not in text


def test_a_catalog_that_checks_passwords_takes_one_from_the_conninfo_or_pgpassword(
    tmp_path, monkeypatch
):
    require_postgres()
    with postgres_server("lake_auth") as server:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(f"ALTER ROLE {server.user} PASSWORD '{PASSWORD}'")
            hba = server.data_dir / "pg_hba.conf"
            hba.write_text(hba.read_text().replace("trust", "scram-sha-256"))
            conn.execute("SELECT pg_reload_conf()")
        catalog = f"ducklake:postgres:{conninfo(server.dsn)}"
        monkeypatch.delenv("PGPASSWORD", raising=False)

        def attach(database: str, name: str) -> list[tuple]:
            warehouse = Warehouse.at(database, data_path=str(tmp_path / name), metadata_schema=name)
            with warehouse.connect() as (conn, _):
                return conn.execute("SELECT current_database()").fetchall()

        try:
            with pytest.raises(LakeConnectError, match="password") as refused:
                attach(catalog, "no_password")
            assert attach(f"{catalog} password={PASSWORD}", "in_conninfo") == [("lake",)]
            monkeypatch.setenv("PGPASSWORD", PASSWORD)
            assert attach(catalog, "from_pgpassword") == [("lake",)]
        finally:
            close_lakes()
    assert PASSWORD not in str(refused.value)


def test_a_password_in_the_environment_reaches_dagster_as_the_variable_name(lake, monkeypatch):
    database = f"{lake.database} password={PASSWORD}"
    monkeypatch.setenv("SMSP_DUCKDB_PATH", database)
    monkeypatch.setenv("SMSP_DUCKLAKE_DATA_PATH", lake.data_path)

    resource = duckdb_resource(Settings.from_env())

    assert isinstance(resource, DuckLakeResource)
    assert isinstance(resource.database, dg.EnvVar)
    assert resource.database.env_var_name == "SMSP_DUCKDB_PATH"
    assert PASSWORD not in repr(resource)


def test_the_command_line_writes_the_lake(lake, emulator, tmp_path):
    from click.testing import CliRunner

    from smsp_connector.cli import main

    source = tmp_path / "opt_outs.csv"
    source.write_text("phone\n0612345678\n0698765432\n")
    env = {
        "SMSP_API_KEY": API_KEY,
        "SMSP_BASE_URL": emulator.base_url,
        "SMSP_DUCKDB_PATH": lake.database,
        "SMSP_DUCKLAKE_DATA_PATH": lake.data_path,
        "SMSP_DUCKLAKE_METADATA_SCHEMA": lake.metadata_schema,
        "SMSP_RATE_LIMIT": "1000",
    }
    done = CliRunner().invoke(main, ["push", str(source)], env=env)

    assert done.exit_code == 0, done.output
    assert lake.query("SELECT target, outcome FROM smsp.audit_latest ORDER BY 1") == [
        ("+33612345678", "applied"),
        ("+33698765432", "applied"),
    ]
    assert os.environ.get("SMSP_DUCKDB_PATH") != lake.database
