"""The defaults that several layers share, in a module that imports no other: the intake's
region, the warehouse's schema and lock wait, a stored plan's age. ``settings.py`` reads them
from here, so that ``smsp --help`` shows them without importing pandas or DuckDB."""

from datetime import timedelta

DEFAULT_REGION = "FR"
"""The region of numbers written in national form (``06 12 34 56 78``) unless one is given:
the default of every entry point (settings, Component, run config, command line)."""

DEFAULT_SCHEMA = "smsp"
"""The DuckDB schema of the account's tables."""

DEFAULT_LOCK_WAIT_SECONDS = 120.0
"""How long ``Warehouse.held`` waits, with backoff, for a file another process holds."""

DEFAULT_PLAN_MAX_AGE = timedelta(days=7)
"""How long a stored plan may still be applied, unless the settings or a run say otherwise."""
