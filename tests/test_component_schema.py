"""The Component's YAML schema is derived from ``Settings`` (issue 16, item 1): the same
defaults, descriptions and forms, every setting reachable from YAML, and the README's attribute
table naming exactly the attributes ``dg`` shows."""

from __future__ import annotations

import dataclasses
import re
import traceback
from pathlib import Path

import pytest
import yaml

from smsp_connector import SmspComponent
from smsp_connector.settings import Settings

from .component_sandbox import sandbox_defs

ROOT = Path(__file__).resolve().parents[1]
KEY = '"{{ env.SMSP_API_KEY }}"'


def _schema() -> dict:
    return SmspComponent.model().model_json_schema()


def test_an_account_configured_with_nothing_has_the_settings_defaults():
    assert SmspComponent.resolve_from_yaml(f"api_key: {KEY}\n").settings() == Settings()


def test_every_setting_is_set_from_yaml_but_the_in_process_secrets():
    """A field added to ``Settings`` is a Component attribute, or the Component says how it is
    set; only the key and the DSN themselves (in-process values) are not."""
    configured = SmspComponent.resolve_from_yaml(f"api_key: {KEY}\n").configured()

    assert set(configured) == {item.name for item in dataclasses.fields(Settings)} - {
        "api_key",
        "rate_limit_dsn",
    }


def test_the_schema_dg_shows_has_each_settings_description_and_default():
    properties = _schema()["properties"]
    docs = {item.name: item.metadata["doc"] for item in dataclasses.fields(Settings)}

    assert properties["schema"]["description"] == docs["schema"]
    assert properties["schema"]["default"] == Settings().schema
    assert properties["max_workers"]["default"] == Settings().max_workers
    assert properties["plan_max_age_hours"]["default"] == 168
    assert properties["plan_max_age_hours"]["description"] == docs["plan_max_age"]
    assert properties["key_prefix"]["description"] == docs["key_prefix"]
    assert "hmac_key" in properties and "api_key_var" not in properties


@pytest.mark.repo  # the README
def test_the_readme_table_names_every_attribute_and_no_other():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Using it as a Dagster Component")[1].split("\n## ")[0]
    rows = re.findall(r"^\| (`[^|]+`) \|", section, re.M)
    named = {name for row in rows for name in re.findall(r"`(\w+)`", row)}

    assert named == set(_schema()["properties"])


def test_a_key_prefix_settings_accept_is_accepted_by_the_component_too():
    defs = sandbox_defs({"key_prefix": "eu/crm-fr"})

    assert "eu_crm_fr__smsp_refresh" in {job.name for job in defs.jobs or []}


@pytest.mark.parametrize(
    ("attributes", "named"),
    [
        ({"key_prefix": "a.b"}, "key_prefix"),
        ({"plan_max_age_hours": 1e12}, "plan_max_age_hours"),
        ({"plan_max_age_hours": -1}, "plan_max_age_hours"),
        ({"hmac_key": "a-key-written-in-the-file"}, "hmac_key"),
        # YAML reads 1e12 as text: a range on Dagster's "float | str" raised a bare TypeError
        ({"lake_upkeep": {"expire_after_days": "1e12"}}, "expire_after_days"),
        ({"plan_max_age_hours": "1e12"}, "plan_max_age_hours"),
    ],
)
def test_a_bad_attribute_is_refused_with_its_name(attributes, named):
    """As ``smsp --account`` and ``dg check defs`` resolve a ``defs.yaml``."""
    text = yaml.safe_dump({"api_key": "{{ env.SMSP_API_KEY }}", **attributes})

    with pytest.raises(Exception) as refused:
        SmspComponent.resolve_from_yaml(text).settings()

    assert not isinstance(refused.value, TypeError | OverflowError), refused.value
    shown = "".join(traceback.format_exception(refused.value))
    assert named in shown


def test_the_hmac_export_is_configured_in_yaml_by_its_variable(monkeypatch):
    """Before, a Component account had no way to the HMAC export (the Settings field had no
    attribute), while ``smsp --account`` turned it on from the environment."""
    defs = sandbox_defs({"key_prefix": "main", "hmac_key": "{{ env.SMSP_EXPORT_HMAC_KEY }}"})
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}

    assert "main/suppression_export_hmac_sha256" in keys
    assert (
        SmspComponent.resolve_from_yaml(f'api_key: {KEY}\nhmac_key: "{{{{ env.MY_HMAC }}}}"\n')
        .settings()
        .hmac_key_var
        == "MY_HMAC"
    )


def test_a_duration_is_written_in_its_unit():
    settings = SmspComponent.resolve_from_yaml(
        f"api_key: {KEY}\nplan_max_age_hours: 12\n"
    ).settings()

    assert settings.plan_max_age.total_seconds() == 12 * 3600


# -- found by an adversarial session (issue 16's review): each failed before its fix ----------

LAKE = '"ducklake:postgres:host=db password=hunter2SECRET"'


def test_a_database_password_never_shows_in_the_components_repr():
    component = SmspComponent.resolve_from_yaml(
        f"api_key: {KEY}\ndatabase: {LAKE}\ndata_path: /srv/lake/\n"
    )

    assert "hunter2SECRET" not in repr(component)
    assert "hunter2SECRET" not in repr(component.settings())


@pytest.mark.parametrize(
    "attributes",
    [
        {"api_key": ["sk_live_SECRET123"]},
        {"api_key": 424242424242},
        {"hmac_key": 424242424242},
        {"rate_limit_dsn": ["postgresql://u:hunter2SECRET@db/x"]},
        {"database": ["ducklake:postgres:password=hunter2SECRET"]},
    ],
)
def test_a_secret_given_in_the_wrong_shape_is_refused_without_being_shown(attributes):
    text = yaml.safe_dump({"api_key": "{{ env.SMSP_API_KEY }}", **attributes})

    with pytest.raises(Exception) as refused:
        SmspComponent.resolve_from_yaml(text).settings()

    shown = "".join(traceback.format_exception(refused.value))
    assert "SECRET" not in shown and "424242424242" not in shown
    assert next(iter(attributes)) in shown


@pytest.mark.parametrize(
    ("attributes", "named"),
    [
        ({"max_workers": 10**12}, "max_workers"),
        ({"max_attempts": 10**6}, "max_attempts"),
        ({"timeout_seconds": "1e12"}, "timeout_seconds"),
        ({"lock_wait_seconds": 1e12}, "lock_wait_seconds"),
        ({"max_input_bytes": 0}, "max_input_bytes"),
        ({"pool": ""}, "pool"),
        ({"schedule": "99 99 * * *"}, "schedule"),
        ({"duckdb_resource_key": "smsp"}, "duckdb_resource_key"),
        (
            {
                "push_sources": [
                    {"name": "crm", "table": "a", "phone_column": "p"},
                    {"name": "crm", "table": "b", "phone_column": "p"},
                ]
            },
            "crm",
        ),
        ({"push_sources": [{"name": "crm", "table": "", "phone_column": "p"}]}, "table"),
        ({"push_sources": [{"name": "crm", "table": "a", "phone_column": ""}]}, "phone_column"),
    ],
)
def test_a_value_no_run_could_use_is_refused_with_its_name(attributes, named):
    text = yaml.safe_dump({"api_key": "{{ env.SMSP_API_KEY }}", **attributes})

    with pytest.raises(Exception) as refused:
        SmspComponent.resolve_from_yaml(text).settings()

    assert not isinstance(refused.value, TypeError | OverflowError), refused.value
    assert named in "".join(traceback.format_exception(refused.value))


def test_a_template_naming_an_unset_variable_does_not_turn_the_refresh_off(monkeypatch):
    monkeypatch.delenv("SMSP_UNSET_SCHEDULE", raising=False)
    text = f'api_key: {KEY}\nschedule: "{{{{ env.SMSP_UNSET_SCHEDULE }}}}"\n'

    with pytest.raises(Exception, match="SMSP_UNSET_SCHEDULE"):
        SmspComponent.resolve_from_yaml(text).settings()
    monkeypatch.setenv("SMSP_UNSET_SCHEDULE", "0 5 * * *")
    assert SmspComponent.resolve_from_yaml(text).settings().schedule == "0 5 * * *"


def test_a_key_prefix_from_a_variable_is_checked_once_resolved(monkeypatch):
    monkeypatch.setenv("SMSP_TEST_PREFIX", "eu/crm")
    text = f'api_key: {KEY}\nkey_prefix: "{{{{ env.SMSP_TEST_PREFIX }}}}"\n'

    assert SmspComponent.resolve_from_yaml(text).settings().key_prefix == "eu/crm"
    monkeypatch.setenv("SMSP_TEST_PREFIX", "a.b")
    with pytest.raises(Exception, match="key_prefix"):
        SmspComponent.resolve_from_yaml(text).settings()


def test_a_push_sources_table_may_come_from_a_variable(monkeypatch):
    monkeypatch.setenv("SMSP_TEST_TABLE", "crm.unsubscribes")
    text = (
        f"api_key: {KEY}\npush_sources:\n"
        '  - {name: crm, table: "{{ env.SMSP_TEST_TABLE }}", phone_column: mobile}\n'
    )

    [source] = SmspComponent.resolve_from_yaml(text).settings().push_sources
    assert source.table == "crm.unsubscribes"
