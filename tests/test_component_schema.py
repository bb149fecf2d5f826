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
from dagster.components.testing import create_defs_folder_sandbox

from smsp_connector import SmspComponent
from smsp_connector.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
KEY = '"{{ env.SMSP_API_KEY }}"'


def _schema() -> dict:
    return SmspComponent.model().model_json_schema()


def _defs(attributes: dict):
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            component_cls=SmspComponent,
            defs_path="account",
            defs_yaml_contents={
                "type": "smsp_connector.SmspComponent",
                "attributes": {"api_key": "{{ env.SMSP_API_KEY }}", **attributes},
            },
        )
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            return defs


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
    defs = _defs({"key_prefix": "eu/crm-fr"})

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
    defs = _defs({"key_prefix": "main", "hmac_key": "{{ env.SMSP_EXPORT_HMAC_KEY }}"})
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
