"""A real S3 API on loopback for tests: moto's server (``moto.server``) in a subprocess on a free
127.0.0.1 port, one per xdist worker and session.

:func:`s3_endpoint` (session) starts it and yields its URL; :func:`s3_bucket` (per test) makes
a new bucket and sets the standard AWS variables (``AWS_ENDPOINT_URL``, the test credentials,
the region) for the test and the processes it starts, so that the code under test finds them as
it would in production: from the environment, through the AWS credential chain.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

ACCESS_KEY_ID = "AKIASMSPTESTKEY00001"
SECRET_ACCESS_KEY = f"smsp-test-secret-{uuid.uuid4().hex}"
"""Unlikely to appear anywhere by chance, so leak tests can search for it."""


@dataclass(frozen=True, slots=True)
class S3Bucket:
    endpoint: str
    name: str

    @property
    def url(self) -> str:
        return f"s3://{self.name}"

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name="us-east-1",
        )

    def keys(self, prefix: str = "") -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def body(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.name, Key=key)["Body"].read()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, for the session."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # Its log goes to a file: werkzeug logs every request, and a pipe nobody reads fills up
    # after a few hundred requests and blocks the server for good.
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    requests.get(f"{endpoint}/moto-api/", timeout=2)
                    break
                except requests.ConnectionError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise RuntimeError(
                            f"moto's S3 server did not start: {log.read().decode()[-2000:]}"
                        ) from None
                    time.sleep(0.1)
            yield endpoint
        finally:
            server.kill()
            server.wait(timeout=30)


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    """A new, empty bucket; the AWS variables set for this test and its subprocesses."""
    for variable, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(variable, value)
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(variable, raising=False)
    bucket = S3Bucket(s3_endpoint, f"smsp-{uuid.uuid4().hex[:12]}")
    bucket.client().create_bucket(Bucket=bucket.name)
    return bucket
