"""A faithful local SMS Partner API server, for tests, demos and benchmarks.

`EmulatorServer(api_key="k", faults=FaultSettings(...))` serves the provider's `/v1` API on a
loopback port (use it as a context manager); `server.state` is the account it serves, which
Python code may read and change directly.
"""

from .clock import PARIS, EmulatorClock
from .errors import EmulatorApiError
from .faults import FaultSettings
from .messages import Message, Recipient
from .server import EmulatorServer
from .state import EmulatorState
from .stoplist import StoredStop

__all__ = [
    "PARIS",
    "EmulatorApiError",
    "EmulatorClock",
    "EmulatorServer",
    "EmulatorState",
    "FaultSettings",
    "Message",
    "Recipient",
    "StoredStop",
]
