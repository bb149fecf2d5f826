"""The shared CSV reader: bytes to text, dialect, header, and every record as text.

Nothing here types a value: a cell is the string the file holds ("0612345678" keeps its zero).
Each record keeps the physical line it starts on (header = line 1, blank lines counted), the
number a spreadsheet user sees, so a rejection can be traced back to its line.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import stat
import unicodedata
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from clevercsv import Detector

__all__ = ["CsvTable", "IntakeError", "normalize_header", "read_table"]

_DELIMITERS = (";", ",", "\t")
"""The delimiters spreadsheets write; ";" first: it wins a tie (French exports use it)."""
_SINGLE_COLUMN = "\0"
"""The delimiter used when a file has a single column: NUL, which a text file cannot contain."""
_SNIFF_CHARS = 16_384
"""Dialect detection reads this much (it costs ~2 ms per KiB; the start of a file is enough)."""
_BOMS = (
    (codecs.BOM_UTF8, "utf_8"),
    (codecs.BOM_UTF16_LE, "utf_16_le"),
    (codecs.BOM_UTF16_BE, "utf_16_be"),
)
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_MAX_CONTROL_RATIO = 0.05


class IntakeError(ValueError):
    """A file that cannot be used at all; the message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem

    def __reduce__(self) -> tuple[type[IntakeError], tuple[Path | str, str]]:
        # Rebuilt from both fields: an exception crossing a process boundary is pickled.
        return type(self), (self.path, self.problem)


@dataclass(frozen=True, slots=True)
class CsvTable:
    """A file's header, the row numbers of its non-blank records, and the cells of the columns
    asked for (each ``""`` for a record too short to have it)."""

    path: Path
    headers: tuple[str, ...]
    columns: dict[int, list[str]]
    """Column index → its cell in every non-blank record, as read."""
    row_numbers: Sequence[int]
    """The physical line each record starts on (an ``array('q')``: no int object per row)."""
    sha256: str = ""
    """SHA-256 of exactly the bytes read: what the rows came from."""

    def column(self, index: int) -> list[str]:
        """One column's cells (one that was asked for when reading)."""
        return self.columns[index]

    def find_column(
        self, *, name: str | None, aliases: Sequence[str], what: str, override: str
    ) -> int:
        """The index of the column called ``name``, or else of the one header among ``aliases``.

        Names compare by :func:`normalize_header`; ``name`` matching a header exactly wins over
        a header that only normalises like it. Several columns matching is an error, not a
        guess: numbers from the wrong column would opt out strangers.
        """
        if name is not None:
            exact = [i for i, header in enumerate(self.headers) if header == name.strip()]
            matches = exact or self._matching({normalize_header(name)})
            if not matches:
                raise IntakeError(self.path, f"no column {name!r} among {self._found()}")
        else:
            matches = self._matching({normalize_header(alias) for alias in aliases})
            if not matches:
                accepted = ", ".join(aliases)
                raise IntakeError(
                    self.path,
                    f"no {what} among {self._found()} (accepted: {accepted}; or set {override})",
                )
        if len(matches) > 1:
            several = [self.headers[i] for i in matches]
            raise IntakeError(
                self.path, f"several {what}s {several}: set {override} to one of them"
            )
        return matches[0]

    def _matching(self, normalized: set[str]) -> list[int]:
        return [
            i for i, header in enumerate(self.headers) if normalize_header(header) in normalized
        ]

    def _found(self) -> list[str]:
        return [header for header in self.headers if header]


def normalize_header(name: str) -> str:
    """Case, accents, spaces, punctuation dropped: "Téléphone portable" -> "telephoneportable"."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(char for char in decomposed if char.isalnum()).casefold()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


MAX_INPUT_BYTES = 1 << 30
"""The largest file read by default (1 GiB): a larger one is refused, not read into memory."""

_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


Select = Callable[[CsvTable], Sequence[int]]
"""Given the file's header (a table without rows), the indexes of the columns to keep."""

_CHUNK_BYTES = 1 << 20
"""Files are read, hashed and decoded in pieces of this size: never whole in memory."""


def read_table(
    path: str | Path, *, max_bytes: int = MAX_INPUT_BYTES, select: Select | None = None
) -> CsvTable:
    """Read a CSV file as text records, or raise :class:`IntakeError`.

    Only regular files are read (a FIFO would block forever, ``/dev/zero`` fill the memory),
    up to ``max_bytes``. The file is streamed: only the columns ``select`` names (by default
    every header's) are kept, the rest of each record is dropped as it is read. An
    :class:`IntakeError` that ``select`` raises (no such column) is raised after the whole
    file was read, so that a file that cannot be read at all says so first.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise IntakeError(path, f"cannot read the file: {error.strerror or error}") from error
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a file")
        raise IntakeError(path, f"not a regular file ({kind})")
    size = path.stat().st_size
    if size > max_bytes:
        raise IntakeError(path, f"{size:,} bytes, above the {max_bytes:,}-byte limit")
    try:
        with path.open("rb") as handle:
            return _read(path, handle, max_bytes, select)
    except OSError as error:
        raise IntakeError(path, f"cannot read the file: {error.strerror or error}") from error


def _read(path: Path, handle: BinaryIO, max_bytes: int, select: Select | None) -> CsvTable:
    """Decode and parse ``handle``: UTF-16 or UTF-8 by their BOM, else UTF-8 if the bytes are
    UTF-8, else Windows-1252, else Latin-1 (see :func:`_decode_text`).

    Bytes that are valid UTF-8 are UTF-8: Windows-1252 text with accents practically never
    is. Statistical detectors do worse on these files: charset-normalizer reads a short
    Windows-1252 "Téléphone" as Big5, and upper-case UTF-8 "TÉLÉPHONE" as Windows-1252
    even when limited to these encodings. Latin-1 reads the five bytes Windows-1252 leaves
    undefined; binary data decodes as Latin-1 too, and the NUL and control character checks
    tell it apart.

    The encoding is chosen on the first piece and confirmed by the rest: bytes that are not
    UTF-8 after a start that was (an accent on row 500,000 of an ASCII file) restart the read
    in Windows-1252, so the result is the one a decode of the whole file would give.
    """
    head = handle.read(4)  # enough for any BOM
    if not head:
        raise IntakeError(path, "empty file (0 bytes)")
    bom = next(((mark, name) for mark, name in _BOMS if head.startswith(mark)), None)
    candidates = [bom[1]] if bom else ["utf_8", "cp1252", "latin_1"]
    skip = len(bom[0]) if bom else 0
    for encoding in candidates:
        handle.seek(0)
        try:
            stream = _TextStream(path, handle, encoding, skip, max_bytes)
            return _parse(path, stream, select)
        except _WrongEncoding:
            continue
    raise AssertionError("latin_1 decodes any bytes")  # pragma: no cover


class _WrongEncoding(Exception):
    """The bytes are not in the encoding tried (no BOM): try the next one."""


class _TextStream:
    """The file's lines, as ``csv`` splits them, decoded piece by piece; hashes the bytes.

    Raises :class:`IntakeError` for binary content (NUL anywhere, or mostly control characters
    at the start) or invalid text after a BOM, :class:`_WrongEncoding` for bytes the encoding
    (guessed, no BOM) cannot decode.
    """

    def __init__(
        self, path: Path, handle: BinaryIO, encoding: str, skip: int, max_bytes: int
    ) -> None:
        self.path = path
        self.encoding = encoding
        self.sample = ""
        """The first :data:`_SNIFF_CHARS` characters."""
        self.longer_than_sample = False
        self.has_text = False
        """Whether any character that is not whitespace was read."""
        self.digest = hashlib.sha256()
        self.skip = skip
        self._handle = handle
        self._guessed = skip == 0
        self._max_bytes = max_bytes
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")
        self._read = 0
        self._pieces = self._decoded()
        self._first = next(self._pieces, "")
        while len(self._first) <= _SNIFF_CHARS and (piece := next(self._pieces, None)) is not None:
            self._first += piece  # pieces smaller than the sample (only in tests)
        self.sample = self._first[:_SNIFF_CHARS]
        self.longer_than_sample = len(self._first) > _SNIFF_CHARS
        if _mostly_control(self.sample):
            raise IntakeError(path, _BINARY)

    def _decoded(self) -> Iterator[str]:
        while chunk := self._handle.read(_CHUNK_BYTES):
            self.digest.update(chunk)
            self._read += len(chunk)
            if self._read > self._max_bytes:
                raise IntakeError(
                    self.path, f"above the {self._max_bytes:,}-byte limit (it grew while read)"
                )
            start = self._read - len(chunk)
            if start < self.skip:
                chunk = chunk[self.skip - start :]
            yield self._decode(chunk, final=False)
        yield self._decode(b"", final=True)

    def _decode(self, chunk: bytes, *, final: bool) -> str:
        pending = len(self._decoder.getstate()[0])
        try:
            text = self._decoder.decode(chunk, final)
        except UnicodeDecodeError as error:
            if self._guessed:
                raise _WrongEncoding from error
            where = self._read - len(chunk) - pending + error.start
            raise IntakeError(
                self.path, f"not valid {self.encoding} text at byte {where}"
            ) from error
        if "\0" in text:
            raise IntakeError(self.path, _BINARY)
        if not self.has_text and text.strip():
            self.has_text = True
        return text

    def lines(self) -> Iterator[str]:
        """Every line with its ending (``\\n``, ``\\r\\n`` or ``\\r``), the last maybe without."""
        pending = ""
        piece: str | None = self._first
        while piece is not None:
            text = pending + piece if pending else piece
            split = io.StringIO(text, newline="").readlines()
            # A last line without its end may go on in the next piece ("\\r" then "\\n" too).
            pending = split.pop() if split and not split[-1].endswith("\n") else ""
            yield from split
            piece = next(self._pieces, None)
        if pending:
            yield pending

    def drain(self) -> None:
        """Read (and check) what is left of the file."""
        for _ in self._pieces:
            pass


_BINARY = "not a text file: binary content (NUL or control characters)"


def _mostly_control(sample: str) -> bool:
    return len(_CONTROL_CHARACTERS.findall(sample)) > _MAX_CONTROL_RATIO * len(sample)


def _detect_delimiter(sample: str, longer: bool) -> str:
    """CleverCSV's choice among ``;`` ``,`` and tab, read from the start of the file (its first
    :data:`_SNIFF_CHARS` characters, whole lines only).

    When it finds no delimiter the file has one column. When it cannot decide (a tie), the
    candidate found most often in the first line wins, ``;`` first.
    """
    if longer and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]  # whole lines only
    dialect = Detector().detect(sample, delimiters=_DELIMITERS)
    if dialect is not None:
        return dialect.delimiter or _SINGLE_COLUMN
    first_line = sample.lstrip().split("\n", 1)[0]
    counts = {delimiter: first_line.count(delimiter) for delimiter in _DELIMITERS}
    best = max(counts, key=counts.__getitem__)  # the first of equals: ";" on a tie
    return best if counts[best] else _SINGLE_COLUMN


def _parse(path: Path, stream: _TextStream, select: Select | None) -> CsvTable:
    """Every record with the physical line it starts on; blank records skipped, still counted.

    Quotes are always ``"`` doubled, as spreadsheets write them, whatever the sample showed.
    A record whose cells are all blank (a blank line, or ``;;;`` from an empty spreadsheet row)
    is not data.
    """
    delimiter = _detect_delimiter(stream.sample, stream.longer_than_sample)
    reader = csv.reader(stream.lines(), delimiter=delimiter, quotechar='"')
    headers: tuple[str, ...] | None = None
    keep: list[int] = []
    deferred: IntakeError | None = None
    columns: dict[int, list[str]] = {}
    row_numbers = array("q")
    last_start = start = last_end = 1
    try:
        for cells in reader:
            if "".join(cells).strip():  # some cell is not blank
                last_start, last_end = start, reader.line_num
                if headers is None:
                    headers = tuple(cell.strip() for cell in cells)
                    keep, deferred = _selected(path, headers, select)
                    columns = {index: [] for index in keep}
                else:
                    row_numbers.append(start)
                    width = len(cells)
                    for index in keep:
                        columns[index].append(cells[index] if index < width else "")
            start = reader.line_num + 1
    except csv.Error as error:
        stream.drain()  # binary content further on says so first
        raise IntakeError(path, f"unreadable CSV at line {reader.line_num}: {error}") from error
    if not stream.has_text:
        raise IntakeError(path, "empty file (only whitespace)")
    if headers is None:
        raise IntakeError(path, "no header: every line is blank")
    if last_start < last_end == reader.line_num and _ends_in_open_quote(stream, last_start, path):
        raise IntakeError(
            path, f"unterminated quote: the field opened on line {last_start} never closes"
        )
    if not row_numbers:
        # A push of 0 rows that succeeds would hide a truncated or wrong export.
        raise IntakeError(path, "no data rows: the file has a header only")
    if deferred is not None:
        raise deferred
    return CsvTable(path, headers, columns, row_numbers, stream.digest.hexdigest())


def _selected(
    path: Path, headers: tuple[str, ...], select: Select | None
) -> tuple[list[int], IntakeError | None]:
    if select is None:
        return list(range(len(headers))), None
    try:
        return list(dict.fromkeys(select(CsvTable(path, headers, {}, [])))), None
    except IntakeError as error:
        return [], error


def _ends_in_open_quote(stream: _TextStream, last_start: int, path: Path) -> bool:
    """Whether the last record, which spans several lines and runs to the end of the file, is
    a quote left open, which silently swallows the lines after it: its text then has an odd
    number of quotes (a closed quoted field has an even number: its two quotes and any
    doubled ones). Its lines are read again (this is rare, and the record may be long)."""
    with path.open("rb") as handle:
        again = _TextStream(path, handle, stream.encoding, stream.skip, 1 << 62)
        quotes = 0
        for number, line in enumerate(again.lines(), start=1):
            if number >= last_start:
                quotes += line.count('"')
    return quotes % 2 == 1
