"""A plain, thread-safe client for the SMS Partner HTTP API (no Dagster inside).

Every method maps to one documented endpoint (see ``shared/spec/smspartner-api.md``). Methods
that change the provider's state return a :class:`MutationResult`; idempotent outcomes
(add → 3 "already stopped", delete → 4 "already gone", cancel → 5 "already cancelled") are
results with ``status=ALREADY_DONE``, not errors. Coded refusals raise typed
:class:`SmspApiError` subclasses; the ``bulk_*`` helpers turn them into results instead so a
long run can record every outcome and carry on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from smsp_connector.client import errors
from smsp_connector.client.bulk import run_concurrently
from smsp_connector.client.models import (
    PROVIDER_TZ,
    Account,
    Credits,
    MessageStatus,
    MutationKind,
    MutationResult,
    MutationStatus,
    SendResult,
    StopEntry,
    parse_provider_time,
)
from smsp_connector.client.transport import (
    DEFAULT_BASE_URL,
    HttpTransport,
    ProviderAnswer,
    RetryPolicy,
)

ADD, DELETE, CANCEL = "stop-sms/add", "stop-sms/delete", "message-cancel"

_IDEMPOTENT_CODE = {ADD: 3, DELETE: 4, CANCEL: 5}
"""The code that means "the goal was already reached" on each mutating endpoint."""

_FATAL_FOR_BULK = (errors.AuthenticationError, errors.AccountUnavailableError)
"""Errors that would fail every item of a bulk run the same way: raised, not recorded."""


def _error_class(endpoint: str, code: int) -> type[errors.SmspApiError]:
    if code in (1, 10):
        return errors.AuthenticationError
    if code == 9:
        return errors.InvalidPhoneNumberError if endpoint == ADD else errors.SendValidationError
    by_code: dict[int, type[errors.SmspApiError]] = {
        2: errors.MissingParameterError,
        3: errors.MissingParameterError,
        4: errors.NotFoundError,
        6: errors.CancelTooLateError,
        7: errors.MessageAlreadySentError,
        11: errors.InsufficientCreditsError,
        14: errors.NumberInStopListError,
        20: errors.AccountUnavailableError,
        22: errors.SendWindowError,
        23: errors.SendWindowError,
        30: errors.AccountUnavailableError,
    }
    return by_code.get(code, errors.SmspApiError)


def _validation_details(body: dict[str, Any]) -> tuple[str, ...]:
    # The docs name the list ``errors``; the Go SDK and the Ruby gem read ``error``.
    items = body.get("errors") or body.get("error") or []
    if not isinstance(items, list):
        return (str(items),)
    return tuple(
        f"{item.get('elementId', '?')}: {item.get('message', '?')}"
        if isinstance(item, dict)
        else str(item)
        for item in items
    )


class SmspClient:
    """Client for the SMS Partner API.

    Args:
        api_key: the account's API key. Never logged, never shown in reprs or errors.
        base_url: ``https://api.smspartner.fr/v1`` by default; plain ``http://`` only to loopback.
        timeout: (connect, read) seconds for every request.
        retry: attempts and backoff for connection errors, timeouts, 429 and 5xx.
        rate_limit: requests per second across all threads of this client (``None``: unlimited).
        max_workers: concurrency of the ``bulk_*`` helpers, and the connection pool's size.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: tuple[float, float] = (5.0, 60.0),
        retry: RetryPolicy | None = None,
        rate_limit: float | None = None,
        max_workers: int = 8,
    ) -> None:
        if max_workers < 1:
            raise errors.SmspConfigurationError("max_workers must be at least 1")
        self.max_workers = max_workers
        self._transport = HttpTransport(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            rate_limit=rate_limit,
            pool_size=max_workers,
        )

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    def __repr__(self) -> str:
        return f"SmspClient(base_url={self.base_url!r}, api_key='***')"

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> SmspClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reads ------------------------------------------------------------------------------

    def list_stops(self) -> list[StopEntry]:
        """The whole stop list (the API has no pagination: one response)."""
        try:
            return [
                StopEntry(
                    id=int(item["id"]),
                    phone_number=str(item["phoneNumber"]),
                    created_at=parse_provider_time(item["createdAt"]),
                )
                for item in self.list_stop_records()
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise errors.SmspResponseError(
                f"stop-sms/list returned an entry that is not {{id, phoneNumber, createdAt}}: "
                f"{exc!r}",
                endpoint="stop-sms/list",
                http_status=200,
            ) from None

    def list_stop_records(self) -> list[dict[str, Any]]:
        """The stop list's entries exactly as the provider sent them (``id``, ``phoneNumber``,
        ``createdAt`` as provider-local text), for columnar consumers: building a DataFrame from
        these skips a million intermediate objects."""
        body = self._ok(self._transport.call("GET", "stop-sms/list"), "stop-sms/list")
        data = body.get("data")
        if data is None:
            return []
        if not isinstance(data, list):
            raise errors.SmspResponseError(
                f"stop-sms/list returned data of type {type(data).__name__}, not a list",
                endpoint="stop-sms/list",
                http_status=200,
            )
        return data

    def message_status(self, message_id: int | str, phone_number: str) -> MessageStatus:
        body = self._ok(
            self._transport.call(
                "GET",
                "message-status",
                params={"messageId": message_id, "phoneNumber": phone_number},
            ),
            "message-status",
        )
        return MessageStatus(
            message_id=str(body.get("messageId", message_id)),
            number=str(body.get("number", phone_number)),
            status=str(body.get("statut", "")),
            stop_sms=bool(body.get("stopSms", False)),
            date=parse_provider_time(body["date"]) if body.get("date") else None,
            cost=body.get("cost"),
            country_code=body.get("countryCode"),
            currency=body.get("currency"),
        )

    def account(self) -> Account:
        """The account's owner and credits (``/me``)."""
        body = self._ok(self._transport.call("GET", "me"), "me")
        user = body.get("user") or {}
        credits = body.get("credits") or {}
        return Account(
            username=user.get("username"),
            firstname=user.get("firstname"),
            lastname=user.get("lastname"),
            credits=Credits(
                credit_sms=float(credits.get("creditSms", 0)),
                credit_sms_eco=float(credits.get("creditSmsECO", 0)),
                credit_hlr=float(credits.get("creditHlr", 0)),
                to_send=float(credits.get("toSend", 0)),
                balance=str(credits.get("balance", "")),
                currency=str(credits.get("currency", "")),
            ),
        )

    # -- mutations ------------------------------------------------------------------------------

    def add_stop(self, phone_number: str) -> MutationResult:
        """Add one number (E.164 preferred) to the stop list. Code 3 → ``ALREADY_DONE``."""
        answer = self._transport.call("POST", ADD, body={"phoneNumber": phone_number})
        result = self._mutation(answer, ADD, MutationKind.ADD, phone_number)
        stop_id = answer.body.get("stopId")
        if result.status is MutationStatus.APPLIED and stop_id is not None:
            return replace(result, stop_id=int(stop_id))
        return result

    def delete_stop(self, stop_id: int) -> MutationResult:
        """Remove the entry with this id (from :meth:`list_stops`). Code 4 → ``ALREADY_DONE``."""
        answer = self._transport.call("GET", DELETE, params={"id": int(stop_id)})
        return self._mutation(answer, DELETE, MutationKind.DELETE, str(stop_id))

    def cancel_message(self, message_id: int | str) -> MutationResult:
        """Cancel a scheduled send. Code 5 → ``ALREADY_DONE``; 6, 7, 4 raise typed errors."""
        answer = self._transport.call("GET", CANCEL, params={"messageId": message_id})
        return self._mutation(answer, CANCEL, MutationKind.CANCEL, str(message_id))

    def send_sms(
        self,
        phone_numbers: Sequence[str],
        message: str,
        *,
        sender: str | None = None,
        scheduled_at: datetime | None = None,
        sandbox: bool = False,
        tag: str | None = None,
        is_stop_sms: bool = False,
        is_unicode: bool = False,
        gamme: int | None = None,
    ) -> SendResult:
        """Send (or schedule) one message to up to 500 numbers.

        ``/send`` is not idempotent, so it is retried only when the request certainly did not
        reach the provider (connection refused, HTTP 429). A scheduled time is rounded by the
        provider's rules: Paris time, minutes a multiple of 5.
        """
        if not 1 <= len(phone_numbers) <= 500:
            raise ValueError("send_sms takes between 1 and 500 numbers per call")
        body: dict[str, Any] = {"phoneNumbers": ",".join(phone_numbers), "message": message}
        optional = {"sender": sender, "tag": tag, "gamme": gamme}
        body.update({key: value for key, value in optional.items() if value is not None})
        if sandbox:
            body["sandbox"] = 1
        if is_stop_sms:
            body["isStopSms"] = 1
        if is_unicode:
            body["isUnicode"] = 1
        if scheduled_at is not None:
            local = scheduled_at.astimezone(PROVIDER_TZ) if scheduled_at.tzinfo else scheduled_at
            if local.minute % 5:
                raise ValueError("the provider schedules sends on minutes that are multiples of 5")
            body["scheduledDeliveryDate"] = local.strftime("%d/%m/%Y")
            body["time"] = local.hour
            body["minute"] = local.minute
        answer = self._transport.call("POST", "send", body=body, idempotent=False)
        data = self._ok(answer, "send")
        scheduled = data.get("scheduledDeliveryDate")
        return SendResult(
            message_id=int(data["message_id"]),
            nb_sms=int(data.get("nb_sms", 0)),
            cost=float(data.get("cost", 0.0)),
            currency=str(data.get("currency", "")),
            scheduled_at=parse_provider_time(scheduled) if scheduled else None,
        )

    # -- bulk -------------------------------------------------------------------------------

    def bulk_add(
        self, phone_numbers: Iterable[str], *, max_workers: int | None = None
    ) -> Iterator[MutationResult]:
        """Add many numbers concurrently, yielding each outcome as it completes."""
        return self._bulk(self.add_stop, MutationKind.ADD, phone_numbers, max_workers)

    def bulk_delete(
        self, stop_ids: Iterable[int], *, max_workers: int | None = None
    ) -> Iterator[MutationResult]:
        """Delete many entries concurrently, yielding each outcome as it completes."""
        return self._bulk(self.delete_stop, MutationKind.DELETE, stop_ids, max_workers)

    def bulk_cancel(
        self, message_ids: Iterable[int | str], *, max_workers: int | None = None
    ) -> Iterator[MutationResult]:
        """Cancel many scheduled sends concurrently, yielding each outcome as it completes."""
        return self._bulk(self.cancel_message, MutationKind.CANCEL, message_ids, max_workers)

    def _bulk(
        self,
        call: Callable[[Any], MutationResult],
        kind: MutationKind,
        items: Iterable[Any],
        max_workers: int | None,
    ) -> Iterator[MutationResult]:
        workers = min(max_workers or self.max_workers, self.max_workers)
        for item, outcome in run_concurrently(call, items, max_workers=workers):
            if isinstance(outcome, MutationResult):
                yield outcome
            elif isinstance(outcome, _FATAL_FOR_BULK) or not isinstance(outcome, errors.SmspError):
                raise outcome
            else:
                yield _failure_result(kind, str(item), outcome)

    # -- answers ----------------------------------------------------------------------------

    def _ok(self, answer: ProviderAnswer, endpoint: str) -> dict[str, Any]:
        if not answer.success:
            raise self._api_error(answer, endpoint)
        return dict(answer.body)

    def _mutation(
        self, answer: ProviderAnswer, endpoint: str, kind: MutationKind, target: str
    ) -> MutationResult:
        if answer.success:
            status = MutationStatus.APPLIED
        elif answer.code == _IDEMPOTENT_CODE[endpoint]:
            status = MutationStatus.ALREADY_DONE
        else:
            raise self._api_error(answer, endpoint)
        message = answer.body.get("message")
        return MutationResult(
            kind=kind,
            target=target,
            status=status,
            code=answer.code,
            message=str(message) if message is not None else None,
            attempts=answer.attempts,
        )

    @staticmethod
    def _api_error(answer: ProviderAnswer, endpoint: str) -> errors.SmspApiError:
        code = answer.code
        if code is None:
            return errors.SmspApiError(
                -1,
                "success is false but the answer has no numeric code",
                endpoint=endpoint,
                attempts=answer.attempts,
                http_status=answer.http_status,
            )
        message = answer.body.get("message")
        details = _validation_details(dict(answer.body))
        return _error_class(endpoint, code)(
            code,
            str(message) if message else ("validation failed" if details else "(no message)"),
            endpoint=endpoint,
            attempts=answer.attempts,
            http_status=answer.http_status,
            details=details,
        )


def _failure_result(kind: MutationKind, target: str, error: errors.SmspError) -> MutationResult:
    if isinstance(error, errors.SmspApiError):
        return MutationResult(
            kind=kind,
            target=target,
            status=MutationStatus.REJECTED,
            code=error.code,
            message=error.provider_message,
            attempts=error.attempts,
        )
    return MutationResult(
        kind=kind,
        target=target,
        status=MutationStatus.FAILED,
        code=None,
        message=str(error),
        attempts=error.attempts,
    )
