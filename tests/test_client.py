"""The client against the emulator over real loopback HTTP: every endpoint and error path."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from smsp_connector.client import (
    AuthenticationError,
    CancelTooLateError,
    InvalidPhoneNumberError,
    MessageAlreadySentError,
    MutationKind,
    MutationStatus,
    NotFoundError,
    SendValidationError,
    SmspClient,
    SmspConfigurationError,
)
from smsp_connector.client.models import PROVIDER_TZ
from smsp_connector.emulator import FaultSettings

from .conftest import API_KEY, FAST_RETRY


def _next_slot(now: datetime, ahead: timedelta) -> datetime:
    """A schedulable time (minutes a multiple of 5) at least ``ahead`` after ``now``."""
    moment = (now + ahead).replace(second=0, microsecond=0)
    return moment + timedelta(minutes=(5 - moment.minute % 5) % 5)


def test_list_is_empty_then_shows_added_numbers(client, emulator):
    assert client.list_stops() == []

    added = client.add_stop("+33612345678")

    assert added.kind is MutationKind.ADD
    assert added.status is MutationStatus.APPLIED
    assert added.code == 200
    assert isinstance(added.stop_id, int)
    [entry] = client.list_stops()
    assert entry.id == added.stop_id
    assert entry.phone_number == "+33612345678"
    assert entry.created_at.tzinfo is PROVIDER_TZ
    assert abs(entry.created_at - emulator.state.clock.now()) < timedelta(minutes=1)


def test_add_twice_is_already_done_not_an_error(client):
    first = client.add_stop("0612345678")
    second = client.add_stop("+33612345678")

    assert first.status is MutationStatus.APPLIED
    assert second.status is MutationStatus.ALREADY_DONE
    assert second.code == 3
    assert second.succeeded
    assert [e.phone_number for e in client.list_stops()] == ["+33612345678"]


def test_invalid_number_raises_typed_error_with_provider_code(client):
    with pytest.raises(InvalidPhoneNumberError) as caught:
        client.add_stop("not a number")

    assert caught.value.code == 9
    assert caught.value.endpoint == "stop-sms/add"
    assert caught.value.attempts == 1


def test_delete_then_delete_again_is_already_gone(client):
    stop_id = client.add_stop("+33698765432").stop_id

    deleted = client.delete_stop(stop_id)
    again = client.delete_stop(stop_id)

    assert deleted.status is MutationStatus.APPLIED
    assert again.status is MutationStatus.ALREADY_DONE
    assert again.code == 4
    assert client.list_stops() == []


def test_stop_ids_are_never_reused(client):
    first = client.add_stop("+33611111111").stop_id
    client.delete_stop(first)
    second = client.add_stop("+33611111111").stop_id

    assert second != first


@pytest.mark.parametrize("error_status", [200, 400])
def test_wrong_key_is_an_authentication_error_and_not_retried(emulator, error_status):
    emulator.faults = FaultSettings(error_status=error_status)
    with (
        SmspClient("wrong-key", base_url=emulator.base_url, retry=FAST_RETRY) as smsp,
        pytest.raises(AuthenticationError) as caught,
    ):
        smsp.list_stops()

    assert caught.value.code == 10
    assert caught.value.http_status == error_status
    assert caught.value.attempts == 1
    assert sum(emulator.stats()["endpoints"]["stop-sms/list"].values()) == 1


@pytest.mark.parametrize("error_status", [200, 400])
def test_coded_errors_are_typed_whatever_the_http_status(client, emulator, error_status):
    emulator.faults = FaultSettings(error_status=error_status)

    with pytest.raises(InvalidPhoneNumberError) as caught:
        client.add_stop("+33 12")

    assert caught.value.http_status == error_status
    assert client.add_stop("+33612345678").status is MutationStatus.APPLIED
    assert client.add_stop("+33612345678").status is MutationStatus.ALREADY_DONE


def test_scheduled_send_can_be_cancelled_once(client, emulator):
    when = _next_slot(emulator.state.clock.now(), timedelta(hours=2))

    sent = client.send_sms(["+33612345678"], "Soldes -50%", scheduled_at=when, sender="Shop")
    status = client.message_status(sent.message_id, "+33612345678")
    cancelled = client.cancel_message(sent.message_id)
    again = client.cancel_message(sent.message_id)

    assert sent.scheduled_at == when
    assert status.status == "Waiting"
    assert cancelled.kind is MutationKind.CANCEL
    assert cancelled.status is MutationStatus.APPLIED
    assert cancelled.target == str(sent.message_id)
    assert again.status is MutationStatus.ALREADY_DONE
    assert again.code == 5
    assert client.message_status(sent.message_id, "+33612345678").status == "Cancelled"


def test_cancel_inside_five_minutes_is_too_late(client, emulator):
    when = _next_slot(emulator.state.clock.now(), timedelta(minutes=30))
    sent = client.send_sms(["+33612345678"], "Rappel", scheduled_at=when)
    emulator.state.clock.set(when - timedelta(minutes=4))

    with pytest.raises(CancelTooLateError) as caught:
        client.cancel_message(sent.message_id)

    assert caught.value.code == 6


def test_cancel_after_the_send_time_is_already_sent(client, emulator):
    when = _next_slot(emulator.state.clock.now(), timedelta(minutes=30))
    sent = client.send_sms(["+33612345678"], "Rappel", scheduled_at=when)
    emulator.state.clock.advance(timedelta(hours=1))

    with pytest.raises(MessageAlreadySentError) as caught:
        client.cancel_message(sent.message_id)

    assert caught.value.code == 7


def test_cancel_unknown_message_is_not_found(client):
    with pytest.raises(NotFoundError) as caught:
        client.cancel_message(987654)

    assert caught.value.code == 4


def test_send_validation_errors_carry_the_providers_list(client):
    with pytest.raises(SendValidationError) as caught:
        client.send_sms(["+33612345678"], "")

    assert caught.value.code == 9
    assert caught.value.details, "the provider's validation errors are kept"
    assert "message" in " ".join(caught.value.details).lower()


def test_send_rejects_unschedulable_minutes_before_calling(client, emulator):
    when = datetime(2030, 1, 1, 10, 7, tzinfo=PROVIDER_TZ)

    with pytest.raises(ValueError, match="multiples of 5"):
        client.send_sms(["+33612345678"], "x", scheduled_at=when)
    assert "send" not in emulator.stats()["endpoints"]


def test_account_reports_credits(client):
    account = client.account()

    assert account.credits.currency == "EUR"
    assert account.credits.credit_sms >= 0


@pytest.mark.heavy
def test_a_large_list_comes_back_whole(client, emulator):
    paris = datetime(2024, 3, 1, 12, 0, tzinfo=PROVIDER_TZ)
    emulator.state.seed_entries((f"+336{n:08d}", paris) for n in range(50_000))

    entries = client.list_stops()

    assert len(entries) == 50_000
    assert len({e.id for e in entries}) == 50_000
    assert entries[0].phone_number == "+33600000000"
    assert entries[0].created_at == paris


@pytest.mark.parametrize(
    "base_url",
    ["http://api.smspartner.fr/v1", "http://10.0.0.5:8787/v1", "ftp://127.0.0.1/v1", "nonsense"],
)
def test_plain_http_is_refused_except_to_loopback(base_url):
    with pytest.raises(SmspConfigurationError):
        SmspClient(API_KEY, base_url=base_url)


@pytest.mark.parametrize(
    "base_url",
    ["https://api.smspartner.fr/v1", "http://127.0.0.1:8787/v1", "http://localhost:1/v1"],
)
def test_https_and_loopback_are_accepted(base_url):
    with SmspClient(API_KEY, base_url=base_url) as smsp:
        assert smsp.base_url == base_url


@pytest.mark.parametrize("rate_limit", [0, -5])
def test_a_rate_limit_that_is_not_positive_is_refused(rate_limit):
    with pytest.raises(SmspConfigurationError, match="positive"):
        SmspClient(API_KEY, base_url="http://127.0.0.1:1/v1", rate_limit=rate_limit)
