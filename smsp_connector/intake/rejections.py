"""Rejected input rows in the layout of the warehouse's ``input_rejections`` table."""

import pandas as pd


def rejected_rows(intake: pd.DataFrame) -> pd.DataFrame:
    """The rows of an intake frame that could not be used: ``source_file``, ``row_number``,
    ``raw_value``, ``reason``, ``message``."""
    rejected = intake[intake["rejection_reason"].notna()]
    return pd.DataFrame(
        {
            "source_file": rejected["source_file"],
            "row_number": rejected["row_number"],
            "raw_value": rejected["raw_value"],
            "reason": rejected["rejection_reason"],
            "message": rejected["rejection_message"],
        }
    )
