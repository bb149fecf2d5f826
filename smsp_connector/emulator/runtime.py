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

    def stats_payload(self) -> dict[str, Any]:
        return {
            "endpoints": self.stats.snapshot(),
            "stop_list_size": self.state.stop_count(),
            "messages": self.state.message_count(),
        }

    def reset(self) -> None:
        """Empty state, zero counters, default faults (ids keep counting)."""
        self.state.reset()
        self.stats.reset()
        self.faults.reset()
