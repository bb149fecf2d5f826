"""Input files, their reports and their archive on object storage (``s3://bucket/prefix``).

The inbox sensor lists a folder's objects with their size and ETag; a run stages its input
object in a local temporary file (the run core reads local files), puts its reports beside the
object, and archives the object only if it still holds what was read: a replacement uploaded
meanwhile keeps its place and gets its own run, as on a local disk.

Through obstore (the Rust ``object_store`` crate's Python binding): one small wheel with no
dependency, ETags and sizes in every listing, S3 today and GCS or Azure by the same calls.
Chosen over s3fs (aiobotocore pins botocore to a narrow range, a conflict with the boto3 a data
team already has) and boto3 (a large SDK for four calls, S3 only). Credentials come from the
environment or an instance or pod role, as obstore reads them (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, web identity, ECS, EC2); the endpoint is
:func:`smsp_connector.warehouse.object_store.endpoint`'s, ``http://`` only on loopback.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from smsp_connector.intake import IntakeError, file_sha256
from smsp_connector.warehouse.object_store import (
    ObjectStoreConfigurationError,
    endpoint,
    is_object_store,
    split_location,
)

__all__ = ["ObjectFile", "ObjectStoreError", "is_object_store"]


class ObjectStoreError(OSError):
    """A call to the object store failed; one line naming the call and the object (obstore's own
    message is several lines of debug output)."""


@dataclass(frozen=True, slots=True)
class ObjectFile:
    """One object: its URL, size, ETag and last change (what the settle rule, the run key and
    the archive compare)."""

    url: str
    size: int
    etag: str
    modified: str = ""

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[1]


def _found(url: str, meta: Any) -> ObjectFile:
    modified = meta.get("last_modified")
    return ObjectFile(
        url, int(meta["size"]), meta.get("e_tag") or "", modified.isoformat() if modified else ""
    )


def bucket_of(url: str) -> str:
    return split_location(url)[1]


def _split(url: str) -> tuple[Any, str]:
    """The bucket's store and the object's key, taken apart as text (a key may hold ``#`` or
    ``?``, which a URL parser would cut off)."""
    scheme, bucket, key = split_location(url)
    return _store(f"{scheme}://{bucket}"), key


def _obstore() -> Any:
    """The obstore module, or one line saying which extra brings it."""
    try:
        import obstore
        import obstore.store
    except ModuleNotFoundError:
        raise ObjectStoreConfigurationError(
            "an s3:// inbox or input needs obstore: pip install 'smsp-connector[s3]'"
        ) from None
    return obstore


@cache
def _store(bucket_url: str) -> Any:
    options: dict[str, Any] = {}
    found = endpoint()
    if found is not None:
        options["endpoint"] = f"{found.scheme}://{found.netloc}"
    client = {"allow_http": True} if found is not None and found.scheme == "http" else {}
    return _obstore().store.from_url(bucket_url, client_options=client, **options)


def _call(what: str, url: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call(*args)``, its failure one line; a missing object stays ``FileNotFoundError``."""
    obstore = _obstore()
    try:
        return call(*args, **kwargs)
    except FileNotFoundError:
        raise
    except obstore.exceptions.BaseError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        failure = f"{what} {url}: {type(error).__name__}: {first[:300]}"
    raise ObjectStoreError(failure)


def join(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}"


def report_url(url: str, suffix: str) -> str:
    """The report beside an object, named as :func:`~.reports.report_path` names a file's."""
    folder, name = url.rsplit("/", 1)
    return f"{folder}/{PurePosixPath(name).stem}{suffix}"


def list_files(folder: str) -> list[ObjectFile]:
    """The objects directly in ``folder`` (not in its subfolders), by name."""
    obstore = _obstore()
    folder = folder.rstrip("/") + "/"
    store, prefix = _split(folder)
    listed = _call("list", folder, obstore.list_with_delimiter, store, prefix=prefix)
    base = folder[: len(folder) - len(prefix)]  # scheme://bucket/
    return sorted(
        (_found(base + meta["path"], meta) for meta in listed["objects"]),
        key=lambda found: found.url,
    )


def head(url: str) -> ObjectFile | None:
    obstore = _obstore()
    store, key = _split(url)
    try:
        return _found(url, _call("head", url, obstore.head, store, key))
    except FileNotFoundError:
        return None


def put_file(local: Path, url: str) -> str:
    obstore = _obstore()
    store, key = _split(url)
    _call("put", url, obstore.put, store, key, local)
    return url


def delete(url: str) -> None:
    obstore = _obstore()
    store, key = _split(url)
    _call("delete", url, obstore.delete, store, key)


@contextmanager
def staged(url: str, max_bytes: int) -> Iterator[tuple[Path, ObjectFile]]:
    """The object downloaded to a temporary folder, as ``(local file, what was read)``; the
    folder is deleted afterwards. The local file has a short name of its own (an object's name
    may be longer than a file's may). A missing object, one above ``max_bytes`` (refused
    before its body is read) or one that cannot be staged is an :class:`IntakeError` naming
    its URL."""
    obstore = _obstore()
    store, key = _split(url)
    suffix = PurePosixPath(key).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="smsp-object-") as folder:
        local = Path(folder) / ("input" + (suffix if suffix in (".csv", ".tsv") else ".csv"))
        try:
            got = _call("get", url, obstore.get, store, key)
        except FileNotFoundError:
            raise IntakeError(url, "no such object") from None
        meta = got.meta
        if meta["size"] > max_bytes:
            raise IntakeError(url, f"{meta['size']:,} bytes, above the {max_bytes:,}-byte limit")
        try:
            with local.open("wb") as handle:
                for chunk in got:
                    handle.write(chunk)
        except OSError as error:
            raise IntakeError(url, f"cannot stage it: {error.strerror or error}") from None
        yield local, _found(url, meta)


def location_sha256(location: str, max_bytes: int) -> str:
    """SHA-256 of a local file's or an object's bytes; ``FileNotFoundError`` when missing."""
    if not is_object_store(location):
        return file_sha256(Path(location))
    if head(location) is None:
        raise FileNotFoundError(location)
    with staged(location, max_bytes) as (local, _):
        return file_sha256(local)
