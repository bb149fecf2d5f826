"""SmspComponent loaded by Dagster's own component test helper (``create_defs_folder_sandbox``):
the definitions one ``defs.yaml`` builds, without a dg subprocess."""

from __future__ import annotations

import dagster as dg
import pytest

from .component_sandbox import sandbox_defs


def test_a_lake_account_gets_its_housekeeping_jobs_and_schedules_whatever_jobs_it_picks():
    defs = sandbox_defs(
        {
            "key_prefix": "lake",
            "database": "ducklake:postgres:dbname=smsp host=127.0.0.1",
            "data_path": "/srv/lake/",
            "jobs": ["refresh"],
            "lake_upkeep": {"schedule": "0 3 * * *", "expire_after_days": 2},
        }
    )

    assert sorted(job.name for job in defs.jobs or []) == [
        "lake__smsp_compliance_report",
        "lake__smsp_lake_upkeep",
        "lake__smsp_refresh",
        "lake__smsp_retention",
    ]
    assert sorted((s.name, s.cron_schedule) for s in defs.schedules or []) == [
        ("lake__smsp_compliance_report_schedule", "0 7 1 * *"),
        ("lake__smsp_daily_refresh", "0 6 * * *"),
        ("lake__smsp_lake_upkeep_schedule", "0 3 * * *"),
        ("lake__smsp_retention_schedule", "30 6 * * *"),
    ]
    upkeep = defs.resolve_assets_def(["lake", "lake_upkeep"])
    assert "older than 2 days" in (upkeep.descriptions_by_key[upkeep.key] or "")


def test_a_duckdb_file_account_has_no_upkeep_and_null_turns_the_schedules_off():
    defs = sandbox_defs(
        {
            "key_prefix": "main",
            "lake_upkeep": {"schedule": None},
            "schedule": None,
            "retention_schedule": None,
            "report_schedule": None,
            "retain_ended_days": 400,
        }
    )

    assert "main__smsp_lake_upkeep" not in {job.name for job in defs.jobs or []}
    assert "main__smsp_retention" in {job.name for job in defs.jobs or []}
    assert not list(defs.schedules or [])
    purge = defs.resolve_assets_def(["main", "retention_purge"])
    assert "no trace for 400 days" in (purge.descriptions_by_key[purge.key] or "")


def test_a_translation_sets_each_assets_attributes_from_its_name():
    """As dagster-fivetran's Component: a templated translation applied to every asset's spec,
    with ``name`` (the key's last part) and ``spec`` in scope."""
    defs = sandbox_defs(
        {
            "key_prefix": "main",
            "translation": {
                "group_name": "stops_{{ name }}",
                "tags": {"tier": "gold"},
                "owners": ["team:crm"],
            },
        }
    )

    stop_list = defs.resolve_assets_def(["main", "stop_list"]).specs_by_key
    (spec,) = stop_list.values()
    assert spec.group_name == "stops_stop_list"
    assert spec.tags["tier"] == "gold" and "team:crm" in spec.owners
    history = defs.resolve_assets_def(["main", "stop_list_history"])
    assert history.specs_by_key[history.key].group_name == "stops_stop_list_history"
    assert {job.name for job in defs.jobs or []} >= {"main__smsp_refresh"}
    dg.Definitions.validate_loadable(defs)


def test_a_translation_may_not_move_an_asset():
    with pytest.raises(Exception) as raised:
        sandbox_defs({"key_prefix": "main", "translation": {"key": "elsewhere/{{ name }}"}})

    causes, error = [], raised.value
    while error is not None:
        causes.append(str(error))
        error = error.__cause__ or error.__context__
    assert any("an asset's key comes from key_prefix" in cause for cause in causes), causes
