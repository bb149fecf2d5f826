"""A DuckDB file written by a newer DuckDB than the one installed, told in one line.

DuckDB reads a range of storage versions only; given a newer file it raises an error about a
"version number" that names neither the file nor the release that wrote it. Each file's header
holds both: the storage version at byte 12, the writing library's version string at byte 52
(DuckDB's ``MainHeader``, its first 4 KiB, checksummed). Reading them before connecting also
spares the retries dagster-duckdb would spend on an error that no retry cures.

Which versions the installed DuckDB reads is not exposed, so it is asked once per process: it
writes a file (whose version it reads, e.g. 999 for DuckDB 2.0's own format), then that file's
header raised to an impossible version is refused with the range it reads ("between 64 and
68"). When that answer cannot be read, nothing is refused here and DuckDB speaks for itself.
"""

from __future__ import annotations

import functools
import re
import struct
import tempfile
from pathlib import Path

import duckdb

_HEADER_BYTES = 4096
_MAGIC = b"DUCK"
_READABLE = re.compile(r"between \d+ and (\d+)")
_LIBRARY_VERSION = re.compile(rb"v(\d+\.\d+\.\d+[0-9A-Za-z.\-]*)")


class WarehouseVersionError(RuntimeError):
    """The warehouse file was written by a DuckDB newer than the one installed."""


def refuse_newer_file(target: str) -> None:
    """Raise :class:`WarehouseVersionError` when the local DuckDB file ``target`` is in a
    storage format newer than the installed DuckDB writes; nothing for a file it can read, a
    missing file, or anything that is not a DuckDB file (DuckDB then says what it is)."""
    header = _header(Path(target))
    if header is None:
        return
    storage, library = header
    newest = _newest_storage_read_here()
    if newest is None or storage <= newest:
        return
    by = f"DuckDB {library}" if library else f"a DuckDB newer than {duckdb.__version__}"
    raise WarehouseVersionError(
        f"{target} was written by {by} (storage version {storage}); the DuckDB installed here, "
        f"{duckdb.__version__}, cannot read it: install DuckDB {library or 'of that release'} "
        f"or newer beside smsp-connector (pip install 'duckdb>={library or duckdb.__version__}'"
        "; the ducklake extra pins duckdb 1.5.5), or point SMSP_DUCKDB_PATH at another file"
    )


def _header(path: Path) -> tuple[int, str | None] | None:
    """The storage version and the writing library's version of a DuckDB file's header."""
    try:
        with path.open("rb") as file:
            header = file.read(_HEADER_BYTES)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None
    if len(header) < _HEADER_BYTES or header[8:12] != _MAGIC:
        return None
    (storage,) = struct.unpack_from("<Q", header, 12)
    library = _LIBRARY_VERSION.match(header[52:84])
    return storage, library.group(1).decode() if library else None


@functools.cache
def _newest_storage_read_here() -> int | None:
    """The newest storage version the installed DuckDB reads: the one it writes, or the top
    of the range its own refusal states, whichever is higher."""
    with tempfile.TemporaryDirectory(prefix="smsp-duckdb-") as folder:
        path = Path(folder, "probe.duckdb")
        duckdb.connect(str(path)).close()
        with path.open("r+b") as file:
            header = bytearray(file.read(_HEADER_BYTES))
            (written,) = struct.unpack_from("<Q", header, 12)
            struct.pack_into("<Q", header, 12, 2**62)
            struct.pack_into("<Q", header, 0, block_checksum(bytes(header[8:])))
            file.seek(0)
            file.write(header)
        try:
            duckdb.connect(str(path)).close()
        except duckdb.Error as error:
            readable = _READABLE.search(str(error))
            return max(written, int(readable.group(1))) if readable else None
    return None


def block_checksum(block: bytes) -> int:
    """DuckDB's checksum of a header block (``common/checksum.cpp``): 5381, xor-ed with each
    little-endian 64-bit word times a constant."""
    result = 5381
    for (word,) in struct.iter_unpack("<Q", block):
        result ^= (word * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return result
