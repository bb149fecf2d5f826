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


def test_the_cron_tick_requests_the_stop_list_then_its_followers(emulator, tmp_path):
    built = build_definitions(_settings(emulator, tmp_path))
    defs, keys = built.definitions, built.keys
    day = datetime(2026, 12, 7, tzinfo=PARIS)
    followers = {keys.history, keys.export, keys.export_sha256}

    with dg.instance_for_test() as instance:
        before = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=day + timedelta(hours=5)
        )
        tick = dg.evaluate_automation_conditions(
            defs=defs,
            instance=instance,
            cursor=before.cursor,
            evaluation_time=day + timedelta(hours=6, minutes=1),
        )
        assert tick.get_requested_partitions(keys.stop_list) == {None}
        assert not any(tick.get_requested_partitions(key) for key in followers)

        refreshed = built.job(built.jobs.refresh.name).execute_in_process(
            instance=instance, asset_selection=[keys.stop_list]
        )
        assert refreshed.success
        after = dg.evaluate_automation_conditions(
            defs=defs,
            instance=instance,
            cursor=tick.cursor,
            evaluation_time=day + timedelta(hours=6, minutes=2),
        )

    assert {key for key in followers if after.get_requested_partitions(key) == {None}} == (
        followers
    )
    assert not after.get_requested_partitions(keys.stop_list)


def test_the_component_offers_the_automation():
    component = SmspComponent(api_key="SMSP_API_KEY", refresh_by="automation")

    assert component.settings().refresh_by == "automation"
