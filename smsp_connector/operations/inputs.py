"""What a push, delete or cancel reads: a CSV file, or values given on the command line or in
run config. Each input reads into an intake frame (one row per input row, with a reason for
every unusable one) and names the file, if any, that reports are written beside."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from smsp_connector.intake import DEFAULT_REGION, Intake, phone_intake_frame, read_phone_csv
from smsp_connector.intake.message_ids import message_id_values, read_message_id_csv
from smsp_connector.intake.reader import MAX_INPUT_BYTES
from smsp_connector.warehouse.phone_forms import french_plan_numbers


class Input(Protocol):
    @property
    def path(self) -> Path | None:
        """The file read, beside which reports go; ``None`` for values given inline."""

    def read(self, extra_columns: tuple[str, ...] = ()) -> Intake:
        """The rows read and what identifies them; raises
        :class:`~smsp_connector.intake.IntakeError` for a file that cannot be used, before
        anything is recorded or sent."""


@dataclass(frozen=True, slots=True)
class PhoneFile:
    """A CSV file of phone numbers (with consent columns, for deletions)."""

    path: Path
    phone_column: str | None = None
    default_region: str = DEFAULT_REGION
    max_bytes: int = MAX_INPUT_BYTES

    def read(self, extra_columns: tuple[str, ...] = ()) -> Intake:
        return read_phone_csv(
            self.path,
            phone_column=self.phone_column,
            extra_columns=extra_columns,
            default_region=self.default_region,
            max_bytes=self.max_bytes,
            quick_path=french_plan_numbers,
        )


@dataclass(frozen=True, slots=True)
class PhoneValues:
    """Numbers given inline; ``extra`` gives every row the same extra value (consent evidence
    given as command-line options)."""

    values: Sequence[str]
    extra: Mapping[str, str] = field(default_factory=dict)
    default_region: str = DEFAULT_REGION
    label: str = "command line"
    path: None = None

    def read(self, extra_columns: tuple[str, ...] = ()) -> Intake:
        count = len(self.values)
        frame = phone_intake_frame(
            self.label,
            list(self.values),
            list(range(1, count + 1)),
            extra={name: [self.extra.get(name, "")] * count for name in extra_columns},
            default_region=self.default_region,
            quick_path=french_plan_numbers,
        )
        return Intake(frame, options={"default_region": self.default_region.upper()})


@dataclass(frozen=True, slots=True)
class StoredPlan:
    """A stored plan to apply (``smsp.plans``): nothing is read, the plan holds the targets."""

    plan_id: str
    path: None = None

    def read(self, extra_columns: tuple[str, ...] = ()) -> Intake:
        return Intake(
            phone_intake_frame(
                f"plan {self.plan_id}", [], [], extra={name: [] for name in extra_columns}
            )
        )


@dataclass(frozen=True, slots=True)
class MessageIdFile:
    """A CSV file of message ids."""

    path: Path
    id_column: str | None = None
    max_bytes: int = MAX_INPUT_BYTES

    def read(self, extra_columns: tuple[str, ...] = ()) -> Intake:
        return read_message_id_csv(self.path, id_column=self.id_column, max_bytes=self.max_bytes)


@dataclass(frozen=True, slots=True)
class MessageIdValues:
    """Message ids given inline."""

    ids: Sequence[str | int]
    label: str = "command line"
    path: None = None

    def read(self, extra_columns: tuple[str, ...] = ()) -> Intake:
        return Intake(message_id_values(self.ids, self.label))
