"""Shared fixtures: one emulator per test session, reset before each test that uses it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from smsp_connector.client import RetryPolicy, SmspClient
from smsp_connector.emulator import EmulatorServer

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
