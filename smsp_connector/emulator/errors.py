"""Provider-coded errors raised by the emulator's state and handlers.

Each carries the SMS Partner `code`; the HTTP layer turns it into the provider's error body with
the message of the endpoint's catalogue (see `responses.py`). Python callers of `EmulatorState`
get the same exceptions, with a readable text.
"""

from __future__ import annotations


class EmulatorApiError(Exception):
    """An SMS Partner error answer (`success: false`) with its provider code."""

    code: int = 0

    def __init__(self, detail: str = "", *, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail or self.__class__.__name__)
        self.errors = errors


class ApiKeyRequired(EmulatorApiError):
    code = 1


class PhoneNumberRequired(EmulatorApiError):
    code = 2


class AlreadyInStopList(EmulatorApiError):
    code = 3


class IdRequired(EmulatorApiError):
    code = 3


class NotFound(EmulatorApiError):
    code = 4


class AlreadyCancelled(EmulatorApiError):
    code = 5


class TooLateToCancel(EmulatorApiError):
    code = 6


class AlreadySent(EmulatorApiError):
    code = 7


class ValidationFailed(EmulatorApiError):
    """Code 9: an invalid phone number, a malformed body, or `/send`'s `errors` list."""

    code = 9


class InvalidApiKey(EmulatorApiError):
    code = 10


class NotEnoughCredits(EmulatorApiError):
    code = 11


class AllNumbersStopped(EmulatorApiError):
    code = 14
