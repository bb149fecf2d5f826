"""Everything one emulator instance's application works on, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .api import ProviderApi
from .connections import ConnectionRegistry
from .faults import FaultInjector
from .state import EmulatorState
from .stats import EndpointStats


@dataclass
class EmulatorRuntime:
    """State, provider endpoints, fault dice, counters and open connections of one server."""

    state: EmulatorState
    api: ProviderApi
    faults: FaultInjector
    stats: EndpointStats = field(default_factory=EndpointStats)
    connections: ConnectionRegistry = field(default_factory=ConnectionRegistry)

    def stats_payload(self, detail: bool = False) -> dict[str, Any]:
        """Outcome counters and sizes; with `detail`, also `peak_in_flight` (endpoint -> most
        requests in flight at once) and `requests` (the latest requests' log, see `stats.py`)."""
        payload: dict[str, Any] = {
            "endpoints": self.stats.snapshot(),
            "stop_list_size": self.state.stop_count(),
            "messages": self.state.message_count(),
        }
        if detail:
            payload["peak_in_flight"] = self.stats.peak_in_flight()
            payload["requests"] = [record.as_dict() for record in self.stats.requests()]
        return payload

    def reset(self) -> None:
        """Empty state, zero counters, default faults (ids keep counting)."""
        self.state.reset()
        self.stats.reset()
        self.faults.reset()
