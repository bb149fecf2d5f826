"""Rejected input rows: the table in DuckDB and the CSV report written next to the input."""

from pathlib import Path

import pandas as pd

REPORT_SUFFIX = ".rejected.csv"


def rejected_rows(intake: pd.DataFrame) -> pd.DataFrame:
    """The rows of an intake frame that could not be used, in the input_rejections layout."""
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


def report_path(source: Path) -> Path:
    return source.with_name(source.stem + REPORT_SUFFIX)


def write_rejection_report(source: Path, rejected: pd.DataFrame) -> Path | None:
    """Write ``<input>.rejected.csv`` beside the input (nothing when no row was rejected)."""
    if rejected.empty:
        return None
    path = report_path(source)
    rejected.drop(columns=["source_file"]).to_csv(path, index=False)
    return path
