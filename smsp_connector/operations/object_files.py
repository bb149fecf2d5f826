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
from urllib.parse import urlsplit

from smsp_connector.intake import IntakeError, file_sha256
from smsp_connector.warehouse.object_store import (
    ObjectStoreConfigurationError,
    check_location,
    endpoint,
    is_object_store,
)

__all__ = ["ObjectFile", "is_object_store"]


@dataclass(frozen=True, slots=True)
class ObjectFile:
    """One object: its URL, size and ETag (what the settle rule and the archive compare)."""

    url: str
    size: int
    etag: str

    @property
    def name(self) -> str:
        return PurePosixPath(urlsplit(self.url).path).name


def _split(url: str) -> tuple[Any, str]:
    """The bucket's store and the object's key."""
    check_location(url)
    parts = urlsplit(url)
    return _store(f"{parts.scheme}://{parts.netloc}"), parts.path.lstrip("/")


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
        options["endpoint"] = found.geturl().rstrip("/")
    client = {"allow_http": True} if found is not None and found.scheme == "http" else {}
    return _obstore().store.from_url(bucket_url, client_options=client, **options)


def join(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}"


def list_files(folder: str) -> list[ObjectFile]:
    """The objects directly in ``folder`` (not in its subfolders), by name."""
    obstore = _obstore()
    store, prefix = _split(folder.rstrip("/") + "/")
    listed = obstore.list_with_delimiter(store, prefix=prefix)
    scheme_bucket = folder[: folder.index("/", folder.index("://") + 3)]
    return sorted(
        (
            ObjectFile(f"{scheme_bucket}/{meta['path']}", meta["size"], meta["e_tag"] or "")
            for meta in listed["objects"]
        ),
        key=lambda found: found.url,
    )


def head(url: str) -> ObjectFile | None:
    obstore = _obstore()
    store, key = _split(url)
    try:
        meta = obstore.head(store, key)
    except FileNotFoundError:
        return None
    return ObjectFile(url, meta["size"], meta["e_tag"] or "")


def put_file(local: Path, url: str) -> str:
    obstore = _obstore()
    store, key = _split(url)
    obstore.put(store, key, local)
    return url


def delete(url: str) -> None:
    obstore = _obstore()
    store, key = _split(url)
    obstore.delete(store, key)


def move(source: str, target: str) -> str:
    """Copy then delete (object stores have no rename)."""
    obstore = _obstore()
    store, key = _split(source)
    target_store, target_key = _split(target)
    if target_store is not store:
        raise ValueError(f"{source} and {target} are in different buckets")
    obstore.copy(store, key, target_key)
    obstore.delete(store, key)
    return target


@contextmanager
def staged(url: str, max_bytes: int) -> Iterator[tuple[Path, ObjectFile]]:
    """The object downloaded to a temporary folder, as ``(local file, what was read)``; the
    folder is deleted afterwards. A missing object, or one above ``max_bytes`` (refused before
    its body is read), is an :class:`IntakeError` naming its URL."""
    obstore = _obstore()

    store, key = _split(url)
    with tempfile.TemporaryDirectory(prefix="smsp-object-") as folder:
        local = Path(folder) / PurePosixPath(key).name
        try:
            got = obstore.get(store, key)
        except FileNotFoundError:
            raise IntakeError(url, "no such object") from None
        meta = got.meta
        if meta["size"] > max_bytes:
            raise IntakeError(url, f"{meta['size']:,} bytes, above the {max_bytes:,}-byte limit")
        with local.open("wb") as handle:
            for chunk in got:
                handle.write(chunk)
        yield local, ObjectFile(url, meta["size"], meta["e_tag"] or "")


def location_sha256(location: str, max_bytes: int) -> str:
    """SHA-256 of a local file's or an object's bytes; ``FileNotFoundError`` when missing."""
    if not is_object_store(location):
        return file_sha256(Path(location))
    if head(location) is None:
        raise FileNotFoundError(location)
    with staged(location, max_bytes) as (local, _):
        return file_sha256(local)
