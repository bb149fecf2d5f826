"""Settings: every variable read once, in one place, with one-line errors for bad values."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest

from smsp_connector import SmspComponent
from smsp_connector.dagster import build_definitions
from smsp_connector.settings import Settings, SettingsError
from smsp_connector.warehouse import is_local_database

from .conftest import API_KEY


def test_defaults_without_any_variable():
    settings = Settings.from_env({})
    assert settings.database == "data/warehouse.duckdb"
    assert settings.rate_limit == 20.0
    assert settings.schema == "smsp"
    assert settings.base_url == "https://api.smspartner.fr/v1"


def test_variables_are_read_and_converted():
    settings = Settings.from_env(
        {
            "SMSP_RATE_LIMIT": "55.5",
            "SMSP_MAX_WORKERS": "3",
            "SMSP_DUCKDB_PATH": "/tmp/x.duckdb",
            "SMSP_SCHEDULE": "off",
        }
    )
    assert (settings.rate_limit, settings.max_workers) == (55.5, 3)
    assert settings.database == "/tmp/x.duckdb"
    assert is_local_database(settings.database)
    assert settings.schedule is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SMSP_RATE_LIMIT", "fast"), ("SMSP_RATE_LIMIT", "0"), ("SMSP_MAX_WORKERS", "0")],
)
def test_a_bad_value_is_one_error_naming_it(variable, value):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert variable.removeprefix("SMSP_").lower() in str(caught.value).replace(" ", "_")
    assert "\n" not in str(caught.value)


def test_the_key_is_needed_only_when_a_client_is_made():
    settings = Settings.from_env({})
    with pytest.raises(SettingsError, match="SMSP_API_KEY is not set"):
        settings.resolve_api_key({})
    assert settings.resolve_api_key({"SMSP_API_KEY": API_KEY}) == API_KEY


def test_the_key_is_never_in_the_repr():
    assert API_KEY not in repr(Settings(api_key=API_KEY))


def test_a_client_from_settings_talks_to_the_emulator(emulator):
    settings = Settings(api_key=API_KEY, base_url=emulator.base_url, rate_limit=None)
    with settings.client() as smsp:
        assert smsp.base_url == emulator.base_url
        assert smsp.list_stops() == []


@pytest.mark.parametrize("database", [":memory:", "md:my_db", "md:"])
def test_databases_that_are_not_local_files_get_no_folder(database):
    assert not is_local_database(Settings(database=database).database)


@pytest.mark.parametrize("value", ["0", "-5", "nan"])
def test_a_timeout_that_is_not_positive_is_refused(value):
    with pytest.raises(SettingsError, match="timeout_seconds"):
        Settings.from_env({"SMSP_TIMEOUT_SECONDS": value})


def test_the_resource_never_falls_back_to_another_accounts_key(monkeypatch):
    from smsp_connector.dagster import SmspResource

    monkeypatch.setenv("SMSP_API_KEY", API_KEY)
    resource = SmspResource(api_key="", base_url="http://127.0.0.1:1/v1")
    with pytest.raises(SettingsError.__mro__[1], match="api_key is empty"), resource.get_client():
        pass


def test_the_lake_upkeep_settings_come_from_the_environment():
    settings = Settings.from_env(
        {
            "SMSP_LAKE_UPKEEP_SCHEDULE": "off",
            "SMSP_LAKE_EXPIRE_AFTER_DAYS": "90",
            "SMSP_LAKE_DELETE_AFTER_DAYS": "0.5",
            "SMSP_LAKE_UPKEEP_DRY_RUN": "yes",
        }
    )
    assert settings.lake_upkeep_schedule is None
    assert settings.lake_expire_after == timedelta(days=90)
    assert settings.lake_delete_after == timedelta(hours=12)
    assert settings.lake_upkeep_dry_run is True
    defaults = Settings.from_env({})
    assert (defaults.lake_upkeep_schedule, defaults.lake_upkeep_dry_run) == ("30 4 * * 0", False)
    for variable, value in (
        ("SMSP_LAKE_EXPIRE_AFTER_DAYS", "-1"),
        ("SMSP_LAKE_DELETE_AFTER_DAYS", "nan"),
        ("SMSP_LAKE_UPKEEP_DRY_RUN", "maybe"),
    ):
        with pytest.raises(SettingsError, match=variable if value != "-1" else "lake_expire"):
            Settings.from_env({variable: value})


def test_a_duckdb_file_has_no_lake_upkeep(tmp_path):
    built = build_definitions(Settings(api_key=API_KEY, database=str(tmp_path / "w.duckdb")))
    assert built.lake_upkeep is None
    assert "smsp_lake_upkeep" not in {job.name for job in built.definitions.jobs or []}


def test_a_component_sets_the_lake_upkeep():
    attributes = {"api_key": "{{ env.SMSP_API_KEY }}"}
    assert SmspComponent.resolve_from_dict(attributes).settings().lake_upkeep_schedule == (
        "30 4 * * 0"
    )
    upkeep = {"schedule": None, "expire_after_days": 3, "delete_after_days": 1, "dry_run": True}
    settings = SmspComponent.resolve_from_dict({**attributes, "lake_upkeep": upkeep}).settings()
    assert settings.lake_upkeep_schedule is None and settings.lake_upkeep_dry_run
    assert (settings.lake_expire_after, settings.lake_delete_after) == (
        timedelta(days=3),
        timedelta(days=1),
    )
    with pytest.raises(Exception, match="schedule"):
        SmspComponent.resolve_from_dict({**attributes, "lake_upkeep": {"schedule": "daily"}})


@pytest.mark.parametrize("days", ["1e9", "5e8", "36501"])
def test_a_lake_age_beyond_a_century_is_one_settings_error(days):
    with pytest.raises(SettingsError, match=r"SMSP_LAKE_EXPIRE_AFTER_DAYS|lake_expire_after"):
        Settings.from_env({"SMSP_LAKE_EXPIRE_AFTER_DAYS": days})
    with pytest.raises(Exception, match="expire_after_days"):
        SmspComponent.resolve_from_dict(
            {"api_key": "{{ env.SMSP_API_KEY }}", "lake_upkeep": {"expire_after_days": float(days)}}
        )


def test_the_command_line_bounds_the_lake_ages_as_the_settings_do():
    from smsp_connector.cli.lake import MAX_DAYS
    from smsp_connector.settings import MAX_DURATION

    assert timedelta(days=MAX_DAYS) == MAX_DURATION


NAMES = (
    "group_name", "export_dir", "inbox_dir", "job_prefix", "smsp_resource_key",
    "duckdb_resource_key", "account_label",
)  # fmt: skip


@pytest.mark.parametrize("key_prefix", ["smsp", "acme", "eu/acme"])
def test_an_accounts_names_follow_its_key_prefix_from_python_as_from_the_component(key_prefix):
    """One naming rule: the Component and ``Settings(key_prefix=...)`` name an account's
    groups, folders, jobs and resources alike."""
    from_python = Settings(key_prefix=key_prefix)
    from_component = SmspComponent(api_key="SMSP_API_KEY", key_prefix=key_prefix).settings()

    assert {name: getattr(from_python, name) for name in NAMES} == {
        name: getattr(from_component, name) for name in NAMES
    }


def test_an_account_built_from_python_beside_the_default_one_collides_with_nothing(tmp_path):
    default = build_definitions(Settings(database=str(tmp_path / "a.duckdb")))
    acme = build_definitions(Settings(key_prefix="acme", database=str(tmp_path / "b.duckdb")))

    merged = dg.Definitions.merge(default.definitions, acme.definitions)
    dg.Definitions.validate_loadable(merged)

    assert sorted(acme.resources) == ["acme_duckdb", "acme_smsp"]
    assert acme.jobs.refresh.name == "acme__smsp_refresh"
    assert (acme.settings.export_dir, acme.settings.inbox_dir) == ("exports/acme", "inbox/acme")
    assert (default.settings.export_dir, default.jobs.refresh.name) == ("exports", "smsp_refresh")


def test_names_given_explicitly_win_over_the_key_prefix():
    settings = Settings(key_prefix="acme", group_name="stops", export_dir="out", account="A")

    assert (settings.group_name, settings.export_dir, settings.account_label) == (
        "stops",
        "out",
        "A",
    )
    assert settings.inbox_dir == "inbox/acme"


def test_an_accounts_folders_are_the_projects_unless_absolute_or_in_object_storage(tmp_path):
    """``smsp --account NAME`` writes where the jobs write: relative folders are the dg
    project's; absolute paths and ``s3://`` folders stay as they are."""
    from smsp_connector.dagster.accounts import account_settings

    from .dg_project import write_project

    root = write_project(tmp_path / "acme_project")
    folder = root / "acme" / "defs" / "accounts"
    for name, extra in (
        ("main", ""),
        ("cloud", "  export_dir: s3://bucket/exports\n  inbox_dir: /srv/inbox\n"),
    ):
        (folder / name).mkdir(parents=True)
        (folder / name / "defs.yaml").write_text(
            "type: smsp_connector.SmspComponent\nattributes:\n"
            f'  api_key: "{{{{ env.SMSP_API_KEY }}}}"\n  key_prefix: {name}\n{extra}'
        )

    main, cloud = account_settings("main", root), account_settings("cloud", root)

    assert (main.database, main.export_dir, main.inbox_dir) == (
        str(root / "data/warehouse.duckdb"),
        str(root / "exports/main"),
        str(root / "inbox/main"),
    )
    assert (cloud.export_dir, cloud.inbox_dir) == ("s3://bucket/exports", "/srv/inbox")


def test_a_lake_password_reaches_dagster_as_its_variable_only_when_it_came_from_it(monkeypatch):
    """The conninfo of ``SMSP_DUCKDB_PATH`` holding a password is given to the resource as
    that variable's name (the Component templates it too), never as its value; settings whose
    database is another one are never bound to that variable."""
    from dataclasses import replace

    import dagster as dg

    from smsp_connector.dagster.ducklake_resource import duckdb_resource

    secret = "ducklake:postgres:dbname=main host=db password=pw-main-1234"
    other = "ducklake:postgres:dbname=acme host=db password=pw-acme-1234"
    monkeypatch.setenv("SMSP_DUCKDB_PATH", secret)
    lake = {"data_path": "/srv/lake/"}

    from_component = SmspComponent(
        api_key="SMSP_API_KEY", database=secret, data_path="/srv/lake/"
    ).settings()
    assert isinstance(duckdb_resource(from_component).database, dg.EnvVar)
    assert "pw-main" not in repr(duckdb_resource(from_component))

    moved = replace(Settings.from_env(**lake), key_prefix="acme", database=other)
    assert duckdb_resource(moved).database == other, "acme's lake, not main's variable"
    monkeypatch.delenv("SMSP_DUCKDB_PATH")
    mapping = Settings.from_env({"SMSP_DUCKDB_PATH": secret, "SMSP_DUCKLAKE_DATA_PATH": "/x/"})
    assert not isinstance(duckdb_resource(mapping).database, dg.EnvVar), "not in the process"


def test_the_account_label_follows_a_replaced_key_prefix():
    """The label names an account's audit rows, plans and rate-limit bucket: it is derived
    when read, so a ``dataclasses.replace`` of the key prefix moves it too."""
    from dataclasses import replace

    assert replace(Settings(), key_prefix="acme").account_label == "acme"
    assert Settings(key_prefix="eu/acme").account_label == "eu_acme"
    assert Settings(key_prefix="acme", account="A").account_label == "A"


@pytest.mark.parametrize("key_prefix", ["crm-fr", "eu/crm-fr"])
def test_a_key_prefix_with_other_characters_still_builds(key_prefix, tmp_path):
    built = build_definitions(Settings(key_prefix=key_prefix, database=str(tmp_path / "w.db")))

    dg.Definitions.validate_loadable(built.definitions)
    assert built.settings.group_name.isidentifier()


@pytest.mark.parametrize("key_prefix", ["acme.eu", "", "eu//acme", "/acme", "acme eu", "é"])
def test_a_key_prefix_dagster_cannot_name_is_one_settings_error(key_prefix):
    """Dagster 1.13.0 refuses an op named after a key with a dot; later versions let it through:
    the settings refuse it on every version, in one line."""
    with pytest.raises(SettingsError, match="key_prefix"):
        Settings(key_prefix=key_prefix)
