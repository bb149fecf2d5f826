"""What a use case reports: its counts, and which of them mean rows did not end as asked."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar


class Summary:
    """Base of the push, delete and cancel summaries (frozen dataclasses of counts)."""

    __slots__ = ()
    PROBLEMS: ClassVar[tuple[str, ...]] = ()
    """The counts that, when not zero, mean some rows did not end as asked."""

    def counts(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @property
    def problems(self) -> dict[str, int]:
        """The problem counts that are not zero, by name."""
        return {name: count for name in self.PROBLEMS if (count := getattr(self, name))}

    @property
    def complete(self) -> bool:
        """Every row ended as asked (or needed nothing)."""
        return not self.problems
