"""Dagster instances for tests, each in a copy of one migrated instance folder.

``dg.instance_for_test()`` creates the instance's SQLite storages (runs, event log index,
schedules) and runs their migrations each time: over a second a test on these machines, for
storage that is identical every time. Each process makes it once; every test still gets its
own instance, in a copy of those files (a few hundred KiB), so nothing is shared between tests.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

_STORAGES = ("history", "schedules")
"""The folders where an instance with the default (SQLite) storage keeps its databases."""
_TEMPLATES: dict[int, Path] = {}
"""This process's migrated instance folder, by process id (pytest-xdist workers each make one)."""


def _template() -> Path:
    folder = _TEMPLATES.get(os.getpid())
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="dagster-instance-"))
        atexit.register(_remove, folder, os.getpid())
        with dg.instance_for_test(temp_dir=str(folder)):
            pass
        _TEMPLATES[os.getpid()] = folder
    return folder


def _remove(folder: Path, owner: int) -> None:
    """Remove the template at exit, in the process that made it only (not a forked child)."""
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)


def copy_storages(home: Path) -> None:
    """Put migrated, empty default storages in the instance folder ``home``."""
    template = _template()
    for name in _STORAGES:
        shutil.copytree(template / name, home / name)


@contextmanager
def instance_for_test() -> Iterator[dg.DagsterInstance]:
    """``dg.instance_for_test()``, in a fresh folder that already holds migrated storages."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home:
        copy_storages(Path(home))
        with dg.instance_for_test(temp_dir=home) as instance:
            yield instance
