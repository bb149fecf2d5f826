"""Warehouse files for tests that open many of them (property tests over random histories).

A warehouse opens a connection per transaction, as in a run. When nothing else holds its file,
each of those connections makes DuckDB build a new database (25-50 ms on these machines,
whatever the file holds) and the last one's close checkpoints the file (another 20 ms): most
of an example's time. While one idle connection holds the file open, DuckDB hands every new
connection the database already open in the process (under a millisecond). Each transaction
still has its own connection, temporary tables, per-connection settings and commit.

What the block gives up: between transactions the file is not closed, checkpointed and read
back (commits stay in the write-ahead log unless the code checkpoints), and the database's
own state is shared by the block's connections (global settings such as ``memory_limit``,
Python functions registered on it). So not for tests of what the file holds after a run, nor
around code that registers functions (the exports); the tests that use a plain
``Warehouse.at`` keep the close-and-reopen path covered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from smsp_connector.warehouse import Warehouse, make_database_folder


@contextmanager
def kept_open(path: Path) -> Iterator[Warehouse]:
    """The warehouse in the DuckDB file ``path``, the file held open for the block."""
    make_database_folder(str(path))
    with duckdb.connect(str(path)):
        yield Warehouse.at(path)
