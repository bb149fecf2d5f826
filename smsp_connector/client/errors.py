"""Typed errors raised by the SMS Partner client.

Every error carries the provider's ``code`` and ``message`` when the provider answered, the HTTP
status, the endpoint (a path, never a URL: URLs carry the API key) and how many attempts were made.
Idempotent outcomes (add → 3, delete → 4, cancel → 5) are *not* errors: the client turns them
into results with ``status=ALREADY_DONE``.
"""

from __future__ import annotations


class SmspError(Exception):
    """Base class of every error raised by :mod:`smsp_connector.client`."""

    def __init__(self, message: str, *, endpoint: str | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.attempts = attempts


class SmspConfigurationError(SmspError):
    """The client was configured in a way that cannot work (no key, plain HTTP to a remote host)."""


class SmspTransportError(SmspError):
    """No usable answer after every attempt: connection errors, timeouts, 429 or 5xx answers.

    The request may or may not have been applied by the provider; every mutation this client
    offers is safe to retry, so the caller can simply try again later.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        attempts: int = 1,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, attempts=attempts)
        self.http_status = http_status


class SmspResponseError(SmspError):
    """The provider answered something that cannot be read: not JSON, no code, a success that
    says it failed, an id, number or date that is not one, a list that disagrees with its count.

    When it comes from a call that changes the provider's state (an add, a ``/send``), the
    change may have been applied: the message says so, and ``raw_body`` keeps what the provider
    said (a send's message id can still be found in it).
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        attempts: int = 1,
        http_status: int,
        raw_body: str | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, attempts=attempts)
        self.http_status = http_status
        self.raw_body = raw_body
        """The answer's body as text (undecodable bytes replaced), the API key masked, cut
        after :data:`~smsp_connector.client.transport.RAW_BODY_LIMIT` characters."""


class SmspRedirectError(SmspResponseError):
    """The provider's address answered a redirect (HTTP 3xx). It is never followed: requests
    would turn a POST into a GET there, or post the body, API key included, to another origin.
    The call is not repeated there; ``location_origin`` is where the redirect pointed
    (``scheme://host:port`` only, never its path or query), or ``None`` without a Location."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        attempts: int = 1,
        http_status: int,
        location_origin: str | None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, attempts=attempts, http_status=http_status)
        self.location_origin = location_origin


class SmspApiError(SmspError):
    """The provider refused the request with a coded error (``success: false``)."""

    def __init__(
        self,
        code: int,
        provider_message: str,
        *,
        endpoint: str | None = None,
        attempts: int = 1,
        http_status: int = 200,
        details: tuple[str, ...] = (),
    ) -> None:
        text = f"SMS Partner error {code} on {endpoint}: {provider_message}"
        if details:
            text += " (" + "; ".join(details) + ")"
        super().__init__(text, endpoint=endpoint, attempts=attempts)
        self.code = code
        self.provider_message = provider_message
        self.http_status = http_status
        self.details = details


class AuthenticationError(SmspApiError):
    """Code 1 (API key is required) or 10 (invalid API key)."""


class MissingParameterError(SmspApiError):
    """Code 2 or 3 where it means a required parameter is missing."""


class InvalidPhoneNumberError(SmspApiError):
    """Code 9 on ``/stop-sms/add``: the provider does not accept the number."""


class SendValidationError(SmspApiError):
    """Code 9 on ``/send``: the provider's validation errors are in ``details``."""


class NotFoundError(SmspApiError):
    """Code 4 where it is not an idempotent outcome (unknown message id)."""


class CancelTooLateError(SmspApiError):
    """Code 6: a scheduled send cannot be cancelled less than 5 minutes before it goes out."""


class MessageAlreadySentError(SmspApiError):
    """Code 7: the message was already sent, nothing left to cancel."""


class InsufficientCreditsError(SmspApiError):
    """Code 11: not enough credits."""


class NumberInStopListError(SmspApiError):
    """Code 14: a send targeted a number on the stop list."""


class AccountUnavailableError(SmspApiError):
    """Code 20 (account deactivated) or 30 (account blocked)."""


class SendWindowError(SmspApiError):
    """Codes 22/23: marketing sends outside allowed hours or on Sunday."""
