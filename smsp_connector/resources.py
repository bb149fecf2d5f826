"""Dagster resources: the SMS Partner client, configured from the environment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

from smsp_connector.client import DEFAULT_BASE_URL, RetryPolicy, SmspClient


class SmspResource(dg.ConfigurableResource):
    """The SMS Partner API. Wraps :class:`SmspClient` (the plain client) for Dagster.

    Give ``api_key`` as ``dg.EnvVar("SMSP_API_KEY")``: Dagster then stores and shows the variable's
    name, never its value, and ``repr=False`` keeps the key out of this resource's repr.
    """

    api_key: str = Field(repr=False, description="The account's API key (EnvVar SMSP_API_KEY).")
    base_url: str = Field(
        default=DEFAULT_BASE_URL,
        description="API root; plain http:// only to loopback (the local emulator).",
    )
    timeout_seconds: float = Field(default=60.0, description="Read timeout of each request.")
    rate_limit: float | None = Field(
        default=20.0, description="Requests per second across all workers (None: unlimited)."
    )
    max_workers: int = Field(default=8, description="Concurrent calls in bulk operations.")
    max_attempts: int = Field(default=6, description="Attempts per call before giving up.")

    @contextmanager
    def get_client(self) -> Iterator[SmspClient]:
        client = SmspClient(
            self.api_key,
            base_url=self.base_url,
            timeout=(min(10.0, self.timeout_seconds), self.timeout_seconds),
            retry=RetryPolicy(max_attempts=self.max_attempts),
            rate_limit=self.rate_limit,
            max_workers=self.max_workers,
        )
        try:
            yield client
        finally:
            client.close()
