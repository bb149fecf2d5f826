"""The refresh by declarative automation instead of a schedule (issue 16): the stop list on the
account's cron, its history and exports after it only once its blocking checks passed."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from smsp_connector import SmspComponent
from smsp_connector.dagster import build_definitions
from smsp_connector.settings import Settings, SettingsError

from .conftest import API_KEY
from .instances import instance_for_test

PARIS = ZoneInfo("Europe/Paris")


def _settings(emulator, tmp_path, **options) -> Settings:
    return Settings(
        api_key=API_KEY,
        base_url=emulator.base_url,
        rate_limit=None,
        database=str(tmp_path / "warehouse.duckdb"),
        export_dir=str(tmp_path / "exports"),
        refresh_by="automation",
        **options,
    )


def test_automation_replaces_the_schedule_and_sets_the_conditions(emulator, tmp_path):
    built = build_definitions(_settings(emulator, tmp_path, schedule="15 5 * * *"))

    assert built.schedule is None
    assert not [s for s in built.definitions.schedules or [] if "refresh" in s.name]
    stop_list = built.extract.stop_list.specs_by_key[built.keys.stop_list]
    assert "15 5 * * *" in str(stop_list.automation_condition)
    for asset in (built.extract.history, built.extract.export, built.extract.export_sha256):
        (spec,) = asset.specs
        assert "blocking" in str(spec.automation_condition).lower()
    with pytest.raises(SettingsError, match="needs its cron"):
        _settings(emulator, tmp_path, schedule=None)
    with pytest.raises(SettingsError, match="refresh_by"):
        Settings(refresh_by="daily")


@pytest.mark.heavy
def test_the_cron_tick_requests_the_refresh_and_a_new_stop_list_its_followers(emulator, tmp_path):
    built = build_definitions(_settings(emulator, tmp_path))
    defs, keys = built.definitions, built.keys
    day = datetime(2026, 12, 7, tzinfo=PARIS)
    followers = {keys.history, keys.export, keys.export_sha256}

    def requested(result) -> set[dg.AssetKey]:
        return {key for key in {keys.stop_list, *followers} if result.get_requested_partitions(key)}

    with instance_for_test() as instance:
        before = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=day + timedelta(hours=5)
        )
        tick = dg.evaluate_automation_conditions(
            defs=defs,
            instance=instance,
            cursor=before.cursor,
            evaluation_time=day + timedelta(hours=6, minutes=1),
        )
    with instance_for_test() as instance:
        quiet = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=day + timedelta(hours=5)
        )
        # A stop list refreshed outside the tick, its blocking checks passed.
        refreshed = built.job(built.jobs.refresh.name).execute_in_process(
            instance=instance, asset_selection=[keys.stop_list]
        )
        after = dg.evaluate_automation_conditions(
            defs=defs,
            instance=instance,
            cursor=quiet.cursor,
            evaluation_time=day + timedelta(hours=5, minutes=30),
        )

    assert requested(before) == requested(quiet) == set(), "nothing before the cron's time"
    # One run at the tick: the stop list, then what follows it (a failed blocking check in that
    # run stops them).
    assert requested(tick) == {keys.stop_list, *followers}
    assert refreshed.success
    assert requested(after) == followers


def test_the_component_offers_the_automation():
    component = SmspComponent(api_key="SMSP_API_KEY", refresh_by="automation")

    assert component.settings().refresh_by == "automation"


def test_an_account_without_the_refresh_job_gets_no_refresh_automation_either():
    component = SmspComponent(
        api_key="SMSP_API_KEY", refresh_by="automation", jobs=["push", "delete", "cancel"]
    )

    assert component.settings().refresh_by == "schedule"
