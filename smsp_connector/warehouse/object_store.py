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

import os
import re
from collections.abc import Callable, Mapping
from urllib.parse import SplitResult, urlsplit

import duckdb

from smsp_connector.client.transport import is_loopback_url
from smsp_connector.warehouse.sql import literal

SCHEMES = ("s3://", "s3a://", "s3n://")
EXTENSIONS = ("httpfs", "aws")
"""What DuckDB needs to read and write ``s3://`` paths with the AWS credential chain."""
SECRET = "smsp_s3"


class ObjectStoreConfigurationError(ValueError, duckdb.InvalidInputException):
    """An object-store location or endpoint that cannot be used; the message holds no key."""


def is_object_store(location: str | os.PathLike[str] | None) -> bool:
    return str(location or "").lower().startswith(SCHEMES)


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
"""S3's bucket names: 3 to 63 lowercase letters, digits, dots and hyphens."""
LOCATION_FORM = "s3://bucket/prefix (no credentials, query or fragment)"
_HOST_PORT = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?"
)
"""An endpoint's ``host[:port]``: a name, an IPv4 address or a bracketed IPv6 one."""


def split_location(location: str) -> tuple[str, str, str]:
    """``(scheme, bucket, key)`` of an object's URL, taken apart as text: a key may hold any
    character (``#``, ``?``, ``%``), which a URL parser would cut or decode. The bucket must
    be a bucket's name (no ``user:secret@``); the message never repeats the location."""
    scheme, found, rest = location.partition("://")
    bucket, _, key = rest.partition("/")
    if not found or scheme + "://" not in SCHEMES or not _BUCKET.fullmatch(bucket):
        raise ObjectStoreConfigurationError(
            f"an object-store location must be {LOCATION_FORM}; credentials come from the AWS "
            "chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile or a role)"
        )
    return scheme.lower(), bucket, key


def check_location(location: str) -> None:
    """Refuse a configured folder (data path, exports, inbox) that is not ``s3://bucket/prefix``:
    credentials anywhere (``s3://KEY:SECRET@…``, a secret holding ``/``), a query (DuckDB reads
    ``s3_access_key_id``, ``s3_endpoint``, ``s3_use_ssl``… from it) or a fragment. The message
    shows none of it."""
    _, _, key = split_location(location)
    if any(mark in key for mark in "@?#%"):
        raise ObjectStoreConfigurationError(
            f"an object-store folder must be {LOCATION_FORM}: '@', '?', '#' and '%' are refused"
        )


def check_folder(folder: str) -> None:
    """A configured folder is a local path or :func:`check_location`'s ``s3://bucket/prefix``:
    any other URL-like spelling (``gs://``, ``https://``, ``s3:/``, a leading space) is
    refused, without being shown, rather than taken for a local folder."""
    if folder.lower().startswith(SCHEMES):
        check_location(folder)
    elif ":/" in folder or folder != folder.strip():
        raise ObjectStoreConfigurationError(
            f"a folder must be a local path (for file:///srv/x give /srv/x) or {LOCATION_FORM}, "
            "s3 in lower case (GCS and Azure are not supported), with no surrounding spaces"
        )


def endpoint(environ: Mapping[str, str] | None = None) -> SplitResult | None:
    """The S3 endpoint of ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, checked: ``None`` for
    AWS itself; ``http(s)://host[:port]`` only (no credentials, no path), ``http://`` only on
    loopback. A refusal names the variable, never its value (it may hold a secret)."""
    env = os.environ if environ is None else environ
    for variable in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if variable in env:
            text = env[variable].strip()
            if not text:
                # obstore reads the variable itself and fails on an empty one.
                raise ObjectStoreConfigurationError(
                    f"{variable} is set but empty: unset it, or give http(s)://host[:port]"
                )
            break
    else:
        return None
    refused = ObjectStoreConfigurationError(
        f"{variable} must be http(s)://host[:port], with no credentials, path or query"
    )
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        parts = None  # urlsplit's message repeats the value: not chained
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not _HOST_PORT.fullmatch(parts.netloc)
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise refused
    if parts.scheme == "http" and not is_loopback_url(text):
        raise ObjectStoreConfigurationError(
            f"{variable}: an http:// object-store endpoint is accepted only on loopback, not "
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
