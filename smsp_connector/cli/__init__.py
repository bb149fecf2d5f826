"""The ``smsp`` command line (``smsp --help``)."""

from smsp_connector.cli.main import main

__all__ = ["main"]
