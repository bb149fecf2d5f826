"""SQL text for the values DuckDB takes only as literals (``LOAD``, ``ATTACH``, ``COPY … TO``,
``CREATE SECRET`` options): no parameters there."""


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
