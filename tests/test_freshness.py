"""The stop list's freshness policy: built from the refresh schedule, accepted by Dagster's
assets, and evaluated by Dagster's own evaluator against materializations in an instance."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.definitions.freshness import (
    CronFreshnessPolicy,
    FreshnessState,
    TimeWindowFreshnessPolicy,
)
from dagster._core.definitions.freshness_evaluator import FRESHNESS_EVALUATORS_BY_POLICY_TYPE
from dagster._core.loader import LoadingContextForTest
from dagster._core.test_utils import freeze_time
from dagster._utils.schedules import get_smallest_cron_interval

from smsp_connector.dagster.freshness import shift_cron, stop_list_freshness
from smsp_connector.settings import Settings

from .instances import instance_for_test

PARIS = ZoneInfo("Europe/Paris")


def test_the_default_schedule_gives_a_7am_deadline_in_paris_with_a_day_of_lower_bound():
    policy = stop_list_freshness(Settings())

    assert isinstance(policy, CronFreshnessPolicy)
    assert policy.deadline_cron == "0 7 * * *"
    assert policy.timezone == "Europe/Paris"
    assert policy.lower_bound_delta == timedelta(hours=24)


def test_the_deadline_follows_the_settings_schedule_and_timezone():
    policy = stop_list_freshness(
        Settings(schedule="30 4 * * 1-5", timezone="America/Montreal"),
        grace=timedelta(minutes=45),
    )

    assert (policy.deadline_cron, policy.timezone) == ("15 5 * * 1-5", "America/Montreal")
    assert policy.lower_bound_delta == timedelta(hours=24)


def test_an_explicit_deadline_wins_and_a_shorter_cron_shortens_the_lower_bound():
    explicit = stop_list_freshness(Settings(), deadline_cron="45 7 * * *")
    assert (explicit.deadline_cron, explicit.lower_bound_delta) == ("45 7 * * *", timedelta(1))

    twice_a_day = stop_list_freshness(Settings(schedule="0 6,18 * * *"))
    assert twice_a_day.deadline_cron == "0 7,19 * * *"
    assert twice_a_day.lower_bound_delta == timedelta(hours=12)

    # Too intricate to shift: the schedule itself is the deadline.
    every_half_hour = stop_list_freshness(Settings(schedule="*/30 * * * *"))
    assert every_half_hour.deadline_cron == "*/30 * * * *"
    assert every_half_hour.lower_bound_delta == timedelta(minutes=30)


def test_one_deadline_walks_its_cron_once_per_process(monkeypatch):
    """Finding a cron's smallest interval walks its ticks (~20 ms here), ours and Dagster's
    own check of the bound each: four times per code location load, two assets."""
    from dagster._core.definitions import freshness as dagster_freshness

    from smsp_connector.dagster import freshness

    settings = Settings(schedule="17 3 * * 2", timezone="Asia/Kolkata")  # no other test's
    expected = dg.FreshnessPolicy.cron(
        deadline_cron="17 4 * * 2", lower_bound_delta=timedelta(days=1), timezone="Asia/Kolkata"
    )
    walked: list[str] = []

    def counted(cron: str) -> timedelta:
        walked.append(cron)
        return get_smallest_cron_interval(cron)

    monkeypatch.setattr(freshness, "get_smallest_cron_interval", counted)
    monkeypatch.setattr(dagster_freshness, "get_smallest_cron_interval", counted)

    policies = [stop_list_freshness(settings) for _ in range(3)]

    assert policies == [expected] * 3
    assert walked == ["17 4 * * 2"] * 2, "ours and Dagster's check, for the first policy only"


def test_without_a_schedule_it_is_a_26_hour_window():
    policy = stop_list_freshness(Settings(schedule=None))

    assert isinstance(policy, TimeWindowFreshnessPolicy)
    assert policy.fail_window.to_timedelta() == timedelta(hours=26)
    assert policy.warn_window is None


@pytest.mark.parametrize(
    ("cron", "delay", "shifted"),
    [
        ("0 6 * * *", timedelta(hours=1), "0 7 * * *"),
        ("50 6 * * *", timedelta(minutes=20), "10 7 * * *"),
        ("30 23 * * *", timedelta(hours=1), "30 0 * * *"),
        ("0 22,23 * * *", timedelta(hours=1), "0 0,23 * * *"),
        ("0 6 * * 1-5", timedelta(hours=1), "0 7 * * 1-5"),
        ("0 6 * * *", timedelta(0), "0 6 * * *"),
        ("30 23 * * 1-5", timedelta(hours=1), None),  # would move the weekdays
        ("*/15 * * * *", timedelta(hours=1), None),
        ("0 6-8 * * *", timedelta(hours=1), None),
        ("0 6 * * *", timedelta(seconds=30), None),
        ("0 6 * * *", timedelta(days=1), None),
        ("@daily", timedelta(hours=1), None),
    ],
)
def test_shift_cron(cron, delay, shifted):
    assert shift_cron(cron, delay) == shifted


def test_assets_and_specs_accept_it():
    policy = stop_list_freshness(Settings())

    @dg.asset(freshness_policy=policy)
    def stop_list() -> None: ...

    spec = dg.AssetSpec("suppression_export", freshness_policy=policy)
    definitions = dg.Definitions(assets=[stop_list, spec])
    dg.Definitions.validate_loadable(definitions)
    graph = definitions.resolve_asset_graph()
    assert graph.get(stop_list.key).freshness_policy == policy
    assert graph.get(spec.key).freshness_policy == policy


def _paris(day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


@pytest.mark.heavy
def test_dagster_flags_a_missed_refresh_at_the_deadline_of_that_day():
    """Materialized Tuesday at 06:05: fresh through Wednesday 07:00 (the deadline), stale from
    then on when Wednesday's refresh did not happen, fresh again once it did."""
    policy = stop_list_freshness(Settings())

    @dg.asset(freshness_policy=policy)
    def stop_list() -> None: ...

    node = dg.Definitions(assets=[stop_list]).resolve_asset_graph().get(stop_list.key)
    evaluator = FRESHNESS_EVALUATORS_BY_POLICY_TYPE[type(policy)]()

    with instance_for_test() as instance:

        def state(now: datetime) -> FreshnessState:
            with freeze_time(now):
                context = LoadingContextForTest(instance)
                return asyncio.run(evaluator.evaluate_freshness(context, node))

        assert state(_paris(10, 5, 0)) == FreshnessState.UNKNOWN
        with freeze_time(_paris(10, 6, 5)):
            assert dg.materialize([stop_list], instance=instance).success

        assert state(_paris(10, 7, 1)) == FreshnessState.PASS
        assert state(_paris(11, 6, 59)) == FreshnessState.PASS
        assert state(_paris(11, 7, 1)) == FreshnessState.FAIL, "no refresh on the 11th"

        with freeze_time(_paris(11, 9, 0)):
            assert dg.materialize([stop_list], instance=instance).success
        assert state(_paris(11, 9, 1)) == FreshnessState.PASS
