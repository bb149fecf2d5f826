"""Shared fixtures: one emulator per test session, reset before each test that uses it."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from smsp_connector.client import RetryPolicy, SmspClient
from smsp_connector.emulator import EmulatorServer

from .instances import copy_storages
from .postgres_server import postgres_dsn  # noqa: F401 (the session's PostgreSQL, a fixture)

API_KEY = f"test-key-{secrets.token_hex(12)}"
"""A key unlikely to appear anywhere by chance, so leak tests can search for it."""

FAST_RETRY = RetryPolicy(max_attempts=8, backoff_initial=0.01, backoff_max=0.2, max_elapsed=60)


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    server = EmulatorServer(api_key=API_KEY, random_seed=20261123)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> EmulatorServer:
    """The session's emulator, emptied, with zeroed stats and no faults."""
    emulator_server.reset()
    return emulator_server


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[SmspClient]:
    with SmspClient(API_KEY, base_url=emulator.base_url, retry=FAST_RETRY) as smsp:
        yield smsp


@pytest.fixture
def env(emulator, tmp_path) -> dict[str, str]:
    """Environment for a dagster subprocess: the repository's instance settings in a fresh
    DAGSTER_HOME, the test emulator, and temporary DuckDB, export and inbox paths."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(
        Path(__file__).resolve().parents[1] / "dagster_home" / "dagster.yaml", home / "dagster.yaml"
    )
    # Create the instance's storage first, as `dagster dev` does: two processes creating a fresh
    # SQLite storage at once race in its migrations, and one run dies holding its pool slot.
    copy_storages(home)
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SMSP_API_KEY": API_KEY,
        "SMSP_BASE_URL": emulator.base_url,
        "SMSP_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "SMSP_EXPORT_DIR": str(tmp_path / "exports"),
        "SMSP_INBOX_DIR": str(tmp_path / "inbox"),
        "SMSP_RATE_LIMIT": "1000",
    }
