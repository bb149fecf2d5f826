"""Object storage (``s3://bucket/prefix``) for DuckDB: the lake's data path and the glob of it.

Credentials come only from the standard AWS chain (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``~/.aws``, an instance or pod role), through
DuckDB's ``aws`` extension (``PROVIDER credential_chain``): no key ever passes through this
package's SQL, settings or URLs, and a URL holding one (``s3://KEY:SECRET@bucket``) is refused.
A non-AWS endpoint (MinIO, a test server) is the standard ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL``; plain ``http://`` only to loopback, as for the provider's API. The
``httpfs`` and ``aws`` extensions are loaded from the ``duckdb-extension-*`` packages of the
``ducklake`` extra: nothing is downloaded.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from urllib.parse import SplitResult, urlsplit

import duckdb

from smsp_connector.warehouse.sql import literal

SCHEMES = ("s3://", "s3a://", "s3n://")
EXTENSIONS = ("httpfs", "aws")
"""What DuckDB needs to read and write ``s3://`` paths with the AWS credential chain."""
SECRET = "smsp_s3"


class ObjectStoreConfigurationError(ValueError, duckdb.InvalidInputException):
    """An object-store location or endpoint that cannot be used; the message holds no key."""


def is_object_store(location: str | os.PathLike[str] | None) -> bool:
    return str(location or "").lower().startswith(SCHEMES)


def check_location(location: str) -> None:
    """Refuse an ``s3://`` location with credentials or no bucket (the message shows neither
    the key nor the secret)."""
    parts = urlsplit(location)
    if "@" in parts.netloc:
        raise ObjectStoreConfigurationError(
            f"{parts.scheme}://…@{parts.netloc.rsplit('@', 1)[1]}{parts.path}: credentials "
            "in an object-store URL are refused; give them as AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY, a profile or a role"
        )
    if not parts.netloc:
        raise ObjectStoreConfigurationError(f"{location!r} names no bucket (s3://bucket/prefix)")


def endpoint(environ: Mapping[str, str] | None = None) -> SplitResult | None:
    """The S3 endpoint of ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, checked: ``None`` for
    AWS itself; ``http://`` only on loopback."""
    env = os.environ if environ is None else environ
    text = (env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or "").strip()
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise ObjectStoreConfigurationError(
            f"AWS_ENDPOINT_URL must be http(s)://host[:port], not {text!r}"
        )
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ObjectStoreConfigurationError(
            f"an http:// object-store endpoint is accepted only on loopback, not "
            f"{parts.hostname!r}: use https://"
        )
    return parts


def secret_sql(environ: Mapping[str, str] | None = None) -> str:
    """``CREATE SECRET`` for ``s3://`` paths from the AWS credential chain, with the endpoint of
    :func:`endpoint` when one is set (path-style URLs, as MinIO and test servers need)."""
    options = ["TYPE s3", "PROVIDER credential_chain"]
    parts = endpoint(environ)
    if parts is not None:
        options += [
            f"ENDPOINT {literal(parts.netloc)}",
            "URL_STYLE 'path'",
            f"USE_SSL {str(parts.scheme == 'https').lower()}",
        ]
    return f"CREATE OR REPLACE SECRET {SECRET} ({', '.join(options)})"


def configure(conn: duckdb.DuckDBPyConnection, load: Callable[[str], None]) -> None:
    """Load the extensions (``load(name)``) and create the credential-chain secret on ``conn``;
    a chain with no credentials is one line naming the variables to set."""
    for name in EXTENSIONS:
        load(name)
    try:
        conn.execute(secret_sql())
        return
    except duckdb.Error:
        pass  # raised below, outside the handler: DuckDB's message (a profile…) is not chained
    raise ObjectStoreConfigurationError(
        "no AWS credentials for s3:// paths: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
        "AWS_PROFILE, or run with an instance or pod role"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
