"""SQL text for the values DuckDB takes only as literals (``LOAD``, ``ATTACH``, ``COPY … TO``,
``CREATE SECRET`` options): no parameters there; and SQL expressions shared by several tables'
readers."""

from smsp_connector.intake.phone_numbers import HIDDEN_NUMBER, PHONE_LIKE


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def hidden_numbers(expression: str) -> str:
    """SQL: the text ``expression`` with whatever may be a phone number in it replaced by
    ``[number]`` (:func:`smsp_connector.intake.phone_numbers.hide_numbers`, in DuckDB)."""
    return f"regexp_replace({expression}, '{PHONE_LIKE}', '{HIDDEN_NUMBER}', 'g')"
