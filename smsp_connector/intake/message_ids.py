"""Message ids (what ``/message-cancel`` takes), read from a CSV file or given as a list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from smsp_connector.intake.frames import Intake, read_text_column_csv, storable_text
from smsp_connector.intake.reader import MAX_INPUT_BYTES

MESSAGE_ID_ALIASES = ("message_id", "messageid", "id_message", "id du message", "id message", "id")


def read_message_id_csv(
    path: str | Path, *, id_column: str | None = None, max_bytes: int = MAX_INPUT_BYTES
) -> Intake:
    """The message ids of a CSV file, each row checked (:func:`check_message_ids`)."""
    read = read_text_column_csv(
        path,
        column_aliases=MESSAGE_ID_ALIASES,
        column=id_column,
        what="message id column",
        max_bytes=max_bytes,
    )
    return replace(read, frame=check_message_ids(read.frame))


def message_id_values(message_ids: Sequence[str | int], label: str) -> pd.DataFrame:
    """Message ids given in run config or on the command line, in the layout of a CSV intake
    (``source_file`` is ``label``, row = position), each checked."""
    values = np.array([str(value).strip() for value in message_ids], dtype=object)
    repaired = storable_text(values)
    frame = pd.DataFrame(
        {
            "source_file": pd.Series([label] * len(message_ids), dtype=object),
            "row_number": range(1, len(message_ids) + 1),
            "raw_value": pd.Series(values if repaired is None else repaired, dtype=object),
        }
    )
    first = frame.groupby("raw_value")["row_number"].transform("min")
    frame["duplicate_of_row"] = first.where(first != frame["row_number"]).astype("Int64")
    return check_message_ids(frame)


def check_message_ids(ids: pd.DataFrame) -> pd.DataFrame:
    """Add ``rejection_reason``/``rejection_message`` for values that are not message ids."""
    usable = ids["raw_value"].str.fullmatch(r"[0-9]+")
    return ids.assign(
        rejection_reason=pd.Series("not_a_message_id", index=ids.index).where(~usable),
        rejection_message=("'" + ids["raw_value"] + "' is not a message id (digits only)").where(
            ~usable
        ),
    )
