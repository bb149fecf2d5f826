"""A plain, thread-safe client for the SMS Partner HTTP API (no Dagster inside).

Every method maps to one documented endpoint (see ``shared/spec/smspartner-api.md``). Methods
that change the provider's state return a :class:`MutationResult`; idempotent outcomes
(add → 3 "already stopped", delete → 4 "already gone", cancel → 5 "already cancelled") are
results with ``status=ALREADY_DONE``, not errors. Coded refusals raise typed
:class:`SmspApiError` subclasses; the ``bulk_*`` helpers turn them into results instead so a
long run can record every outcome and carry on.

The provider's pages leave answer shapes open. Ids and numbers given as text (``"300"``,
``"0,038"``), ``null`` counts, ``success`` as ``"true"`` or ``1``, ``messageId`` for
``message_id``, a list ``data`` given as a JSON object are read; an answer that still cannot be
read raises :class:`SmspResponseError`, never a bare ``KeyError``/``ValueError``/``TypeError``,
and keeps the raw (redacted) body in ``raw_body``: after an add or a send that may have been
applied, the outcome is still there (in a bulk run, a ``FAILED`` result whose message quotes it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from smsp_connector.client import errors
from smsp_connector.client.bulk import run_concurrently
from smsp_connector.client.list_body import isolate_data_array
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
)
from smsp_connector.client.shapes import (
    Unreadable,
    decimal,
    flag,
    opt_out_time,
    provider_time,
    send_time,
    whole_number,
)
from smsp_connector.client.transport import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_WORKERS,
    HttpTransport,
    ProviderAnswer,
    RetryPolicy,
)

ADD, DELETE, CANCEL = "stop-sms/add", "stop-sms/delete", "message-cancel"
LIST = "stop-sms/list"

_IDEMPOTENT_CODE = {ADD: 3, DELETE: 4, CANCEL: 5}
"""The code that means "the goal was already reached" on each mutating endpoint."""

_FATAL_FOR_BULK = (errors.AuthenticationError, errors.AccountUnavailableError)
"""Errors that would fail every item of a bulk run the same way: raised, not recorded."""


@dataclass(frozen=True, slots=True)
class StopListFile:
    """The stop list as :meth:`SmspClient.download_stop_list` left it: a JSON array file."""

    path: Path
    nb_data: int | None
    """How many entries the provider says it sent (``None`` when it did not say)."""
    answer: ProviderAnswer
    """The answer's envelope (every field but ``data``), for errors."""


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
        api_key: the account's API key. Never logged, never shown in reprs or errors. At least
            8 characters (a shorter key cannot be masked in messages without masking words),
            except for a loopback base URL, such as the local emulator's demo key ``dev``.
        base_url: ``https://api.smspartner.fr/v1`` by default; plain ``http://`` only to loopback.
            A key written in it (path, userinfo, ``apiKey=``) is masked wherever it is shown.
        timeout: (connect, read) seconds for every request.
        retry: attempts and backoff for connection errors, timeouts, 429 and 5xx.
        rate_limit: requests per second across all threads of this client (``None``: unlimited).
        rate_limit_dsn: a PostgreSQL DSN: the rate is then shared by every client (every process,
            every machine) given the same DSN and ``rate_limit_name``, through a table of permits
            in PostgreSQL. Its password is never shown. ``None``: in this client only.
        rate_limit_name: the shared limit's name, the account's label (never the key); it names
            the bucket's table.
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
        max_workers: int = DEFAULT_MAX_WORKERS,
        rate_limit_dsn: str | None = None,
        rate_limit_name: str | None = None,
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
            rate_limit_dsn=rate_limit_dsn,
            rate_limit_name=rate_limit_name,
        )

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    def __repr__(self) -> str:
        return f"SmspClient(base_url={self._transport.redact(self.base_url)!r}, api_key='***')"

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> SmspClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reads ------------------------------------------------------------------------------

    def list_stops(self) -> list[StopEntry]:
        """The whole stop list (the API has no pagination: one response).

        An entry whose ``createdAt`` is not the documented ``YYYY-MM-DD HH:MM:SS`` (``null``,
        ``0000-00-00 00:00:00``, ISO with an offset…) comes with ``created_at=None`` rather than
        failing the list: the deletion guard refuses to remove it. An entry without a readable
        ``id`` or ``phoneNumber`` raises :class:`SmspResponseError`, as in
        :meth:`list_stop_records`.
        """
        answer, records = self._list()
        return [self._stop_entry(answer, index, item) for index, item in enumerate(records)]

    def stop_entry(self, listed: StopListFile, position: int, item: Mapping[str, Any]) -> StopEntry:
        """Entry ``position`` of a :meth:`download_stop_list` file (its JSON object), read as
        :meth:`list_stops` reads each entry: :class:`SmspResponseError` when it cannot be."""
        return self._stop_entry(listed.answer, position, item)

    def _stop_entry(
        self, answer: ProviderAnswer, position: int, item: Mapping[str, Any]
    ) -> StopEntry:
        try:
            stop_id = whole_number(item.get("id"), "id")
            if stop_id is None:
                raise Unreadable("id is missing")
            phone = item.get("phoneNumber")
            if isinstance(phone, bool) or not isinstance(phone, str | int) or phone == "":
                raise Unreadable(f"phoneNumber {phone!r} is not a number")
        except Unreadable as problem:
            raise self._unreadable(
                answer, LIST, f"an entry (#{position}: {item!r}) that cannot be read: {problem}"
            ) from None
        return StopEntry(stop_id, str(phone), opt_out_time(item.get("createdAt")))

    def list_stop_records(self) -> list[dict[str, Any]]:
        """The stop list's entries exactly as the provider sent them (``id``, ``phoneNumber``,
        ``createdAt`` as provider-local text), for columnar consumers: building a DataFrame from
        these skips a million intermediate objects.

        ``data`` given as a JSON object (a PHP array with gaps) is read in its order. Raises
        :class:`SmspResponseError` when the list is not a list of objects or disagrees with
        ``nbData`` (never a silently short list), and when the answer has neither entries nor a
        count of 0.
        """
        return self._list()[1]

    def download_stop_list(self, destination: Path) -> StopListFile:
        """The whole stop list streamed into ``destination``, never held in memory: the file
        ends up holding the list's entries as one JSON array, exactly as the provider sent them
        (DuckDB's ``read_json(format='array')`` reads it in parallel).

        The answer's envelope is checked as for :meth:`list_stop_records`; the entries are not
        read here, so the reader must hand what it counts to :meth:`confirm_stop_list` (a list
        that disagrees with ``nbData``, or holds an entry that is not an object, is refused).
        An odd answer (``data`` as a JSON object, a coded error) is decoded whole instead.
        """
        download = self._transport.download(LIST, destination)
        fields = isolate_data_array(destination)
        if fields is not None:
            answer = self._transport.answer_of(
                json.dumps(fields).encode(),
                LIST,
                http_status=download.http_status,
                attempts=download.attempts,
                decoded=fields,
            )
            return StopListFile(destination, self._nb_data(answer, self._ok(answer, LIST)), answer)
        answer = self._transport.answer_of(
            destination.read_bytes(),
            LIST,
            http_status=download.http_status,
            attempts=download.attempts,
        )
        records = self._records(answer)
        with destination.open("w", encoding="utf-8") as handle:
            json.dump(records, handle, ensure_ascii=False)
        return StopListFile(destination, len(records), answer)

    def confirm_stop_list(
        self,
        listed: StopListFile,
        *,
        entries: int,
        first_not_an_object: int | None,
        repeated_key: tuple[int, str] | None = None,
        malformed: str | None = None,
    ) -> None:
        """Raise :class:`SmspResponseError` unless the reader of a :meth:`download_stop_list`
        file read it as JSON (``malformed``: what it found instead) and found ``nbData``
        entries, every one an object giving each key once (never a silently short list; never
        an entry whose number depends on which reader reads it)."""
        if malformed is not None:
            raise self._unreadable(listed.answer, LIST, f"a list that is not JSON: {malformed}")
        if first_not_an_object is not None:
            raise self._unreadable(
                listed.answer, LIST, f"entry #{first_not_an_object} that is not an object"
            )
        if repeated_key is not None:
            position, key = repeated_key
            raise self._unreadable(
                listed.answer, LIST, f"entry #{position} that repeats the key {key!r}"
            )
        if listed.nb_data is not None and listed.nb_data != entries:
            raise self._unreadable(
                listed.answer, LIST, f"{entries} entries but nbData {listed.nb_data}"
            )

    def _list(self) -> tuple[ProviderAnswer, list[dict[str, Any]]]:
        answer = self._transport.call("GET", LIST)
        return answer, self._records(answer)

    def _nb_data(self, answer: ProviderAnswer, body: Mapping[str, Any]) -> int | None:
        try:
            return whole_number(body.get("nbData"), "nbData")
        except Unreadable as problem:
            raise self._unreadable(answer, LIST, str(problem)) from None

    def _records(self, answer: ProviderAnswer) -> list[dict[str, Any]]:
        body = self._ok(answer, LIST)
        count = self._nb_data(answer, body)
        data = body.get("data")
        if data is None:
            if count == 0:
                return []
            said = "no nbData" if count is None else f"nbData {count}"
            raise self._unreadable(answer, LIST, f"no data with {said}")
        if isinstance(data, Mapping):
            data = list(data.values())
        if not isinstance(data, list):
            raise self._unreadable(answer, LIST, f"data of type {type(data).__name__}")
        odd = next((i for i, item in enumerate(data) if not isinstance(item, dict)), None)
        if odd is not None:
            raise self._unreadable(answer, LIST, f"entry #{odd} that is not an object")
        if count is not None and count != len(data):
            raise self._unreadable(answer, LIST, f"{len(data)} entries but nbData {count}")
        return data

    def message_status(self, message_id: int | str, phone_number: str) -> MessageStatus:
        answer = self._transport.call(
            "GET", "message-status", params={"messageId": message_id, "phoneNumber": phone_number}
        )
        body = self._ok(answer, "message-status")
        try:
            stop_sms = flag(body.get("stopSms") or False)
            if stop_sms is None:
                raise Unreadable(f"stopSms {body.get('stopSms')!r} is not true or false")
            return MessageStatus(
                message_id=_text(body.get("messageId"), str(message_id)),
                number=_text(body.get("number"), phone_number),
                status=_text(body.get("statut"), ""),
                stop_sms=stop_sms,
                date=provider_time(body.get("date"), "date"),
                cost=decimal(body.get("cost"), "cost"),
                country_code=_text(body.get("countryCode"), None),
                currency=_text(body.get("currency"), None),
            )
        except Unreadable as problem:
            raise self._unreadable(answer, "message-status", str(problem)) from None

    def account(self) -> Account:
        """The account's owner and credits (``/me``). Missing credit counts are 0;
        ``creditSmsLowCost`` (the Go SDK's name) is read where ``creditSmsECO`` is missing."""
        answer = self._transport.call("GET", "me")
        body = self._ok(answer, "me")
        try:
            user, credits = body.get("user") or {}, body.get("credits") or {}
            for name, value in (("user", user), ("credits", credits)):
                if not isinstance(value, Mapping):
                    raise Unreadable(f"{name} {value!r} is not an object")
            eco = credits.get("creditSmsECO", credits.get("creditSmsLowCost"))
            return Account(
                username=_text(user.get("username"), None),
                firstname=_text(user.get("firstname"), None),
                lastname=_text(user.get("lastname"), None),
                credits=Credits(
                    credit_sms=decimal(credits.get("creditSms"), "creditSms") or 0.0,
                    credit_sms_eco=decimal(eco, "creditSmsECO") or 0.0,
                    credit_hlr=decimal(credits.get("creditHlr"), "creditHlr") or 0.0,
                    to_send=decimal(credits.get("toSend"), "toSend") or 0.0,
                    balance=_text(credits.get("balance"), ""),
                    currency=_text(credits.get("currency"), ""),
                ),
            )
        except Unreadable as problem:
            raise self._unreadable(answer, "me", str(problem)) from None

    # -- mutations ------------------------------------------------------------------------------

    def add_stop(self, phone_number: str) -> MutationResult:
        """Add one number (E.164 preferred) to the stop list. Code 3 → ``ALREADY_DONE``.

        A success whose ``stopId`` is not a whole number (text digits are read) raises
        :class:`SmspResponseError`: the add may have been applied, and :meth:`bulk_add` records
        it as a ``FAILED`` result quoting the answer, so that the next run checks the list.
        """
        answer = self._transport.call(
            "POST", ADD, body={"phoneNumber": phone_number}, mutation=True
        )
        result = self._mutation(answer, ADD, MutationKind.ADD, phone_number)
        if result.status is not MutationStatus.APPLIED:
            return result
        try:
            stop_id = whole_number(answer.body.get("stopId"), "stopId")
        except Unreadable as problem:
            raise self._unreadable(
                answer, ADD, f"success, so the add may have been applied, but {problem}"
            ) from None
        return replace(result, stop_id=stop_id) if stop_id is not None else result

    def delete_stop(self, stop_id: int) -> MutationResult:
        """Remove the entry with this id (from :meth:`list_stops`). Code 4 → ``ALREADY_DONE``."""
        answer = self._transport.call("GET", DELETE, params={"id": int(stop_id)}, mutation=True)
        return self._mutation(answer, DELETE, MutationKind.DELETE, str(stop_id))

    def cancel_message(self, message_id: int | str) -> MutationResult:
        """Cancel a scheduled send. Code 5 → ``ALREADY_DONE``; 6, 7, 4 raise typed errors."""
        answer = self._transport.call(
            "GET", CANCEL, params={"messageId": message_id}, mutation=True
        )
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

        The answer's ``message_id`` (or ``messageId``), ``nb_sms`` and ``cost`` may be given as
        text, the cost with a decimal comma, the counts as ``null`` (then ``None``). An accepted
        send whose answer still cannot be read raises :class:`SmspResponseError`: the message may
        have been sent, and its ``raw_body`` holds the answer (and the id needed to cancel).
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
        answer = self._transport.call("POST", "send", body=body, idempotent=False, mutation=True)
        data = self._ok(answer, "send")
        try:
            message_id = data.get("message_id")
            if message_id is None:
                message_id = data.get("messageId")
            message_id = whole_number(message_id, "message_id")
            if message_id is None:
                raise Unreadable("there is no message_id")
            return SendResult(
                message_id=message_id,
                nb_sms=whole_number(data.get("nb_sms"), "nb_sms"),
                cost=decimal(data.get("cost"), "cost"),
                currency=_text(data.get("currency"), ""),
                scheduled_at=send_time(data.get("scheduledDeliveryDate"), "scheduledDeliveryDate"),
            )
        except Unreadable as problem:
            raise self._unreadable(
                answer, "send", f"success, so the message may have been sent, but {problem}"
            ) from None

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

    def _unreadable(
        self, answer: ProviderAnswer, endpoint: str, problem: str
    ) -> errors.SmspResponseError:
        return self._transport.unreadable(
            endpoint,
            problem,
            content=answer.content,
            http_status=answer.http_status,
            attempts=answer.attempts,
        )

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
            uncertain_attempts=answer.uncertain_attempts,
        )

    def _api_error(self, answer: ProviderAnswer, endpoint: str) -> errors.SmspError:
        code = answer.code
        if code is None:
            return self._unreadable(answer, endpoint, "success false with no numeric code")
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


def _text(value: object, default: str | None) -> str | None:
    """Text as sent (numbers as their text); ``null``/missing → ``default``."""
    if value is None:
        return default
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise Unreadable(f"{value!r} is not text")


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
