"""The shared CSV reader: bytes to text, dialect, header, and every record as text.

Nothing here types a value: a cell is the string the file holds ("0612345678" keeps its zero).
Each record keeps the physical line it starts on (header = line 1, blank lines counted), the
number a spreadsheet user sees, so a rejection can be traced back to its line.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import re
import stat
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

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

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem

    def __reduce__(self) -> tuple[type[IntakeError], tuple[Path, str]]:
        # Rebuilt from both fields: an exception crossing a process boundary is pickled.
        return type(self), (self.path, self.problem)


@dataclass(frozen=True, slots=True)
class CsvTable:
    """A file's header and its non-blank records, every cell as read."""

    path: Path
    headers: tuple[str, ...]
    records: list[list[str]]
    row_numbers: list[int]
    sha256: str = ""
    """SHA-256 of exactly the bytes read: what the rows came from."""

    def column(self, index: int) -> list[str]:
        """One column's cells, ``""`` for a record too short to have it."""
        return [cells[index] if index < len(cells) else "" for cells in self.records]

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


def read_table(path: str | Path, *, max_bytes: int = MAX_INPUT_BYTES) -> CsvTable:
    """Read a whole CSV file as text records, or raise :class:`IntakeError`.

    Only regular files are read (a FIFO would block forever, ``/dev/zero`` fill the memory),
    up to ``max_bytes``."""
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
        data = path.read_bytes()
    except OSError as error:
        raise IntakeError(path, f"cannot read the file: {error.strerror or error}") from error
    if not data:
        raise IntakeError(path, "empty file (0 bytes)")
    text = _decode(path, data)
    if not text.strip():
        raise IntakeError(path, "empty file (only whitespace)")
    table = _parse(path, text, _detect_delimiter(text))
    return replace(table, sha256=hashlib.sha256(data).hexdigest())


def _decode(path: Path, data: bytes) -> str:
    """Text, or :class:`IntakeError` for binary content (NUL or mostly control characters)."""
    text = _decode_text(path, data)
    if "\0" in text or _mostly_control(text[:_SNIFF_CHARS]):
        raise IntakeError(path, "not a text file: binary content (NUL or control characters)")
    return text


def _decode_text(path: Path, data: bytes) -> str:
    """UTF-16 or UTF-8 by their BOM, else UTF-8 if the bytes are UTF-8, else Windows-1252.

    Bytes that are valid UTF-8 are UTF-8: Windows-1252 text with accents practically never
    is. Statistical detectors do worse on these files: charset-normalizer reads a short
    Windows-1252 "Téléphone" as Big5, and upper-case UTF-8 "TÉLÉPHONE" as Windows-1252
    even when limited to these encodings. Latin-1 reads the five bytes Windows-1252 leaves
    undefined; binary data decodes as Latin-1 too, and ``_decode`` tells it apart.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as error:
                where = f"byte {error.start + len(bom)}"
                raise IntakeError(path, f"not valid {encoding} text at {where}") from error
    for encoding in ("utf_8", "cp1252"):
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode(encoding)
    return data.decode("latin_1")


def _mostly_control(sample: str) -> bool:
    return len(_CONTROL_CHARACTERS.findall(sample)) > _MAX_CONTROL_RATIO * len(sample)


def _detect_delimiter(text: str) -> str:
    """CleverCSV's choice among ``;`` ``,`` and tab, read from the start of the file.

    When it finds no delimiter the file has one column. When it cannot decide (a tie), the
    candidate found most often in the first line wins, ``;`` first.
    """
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]  # whole lines only
    dialect = Detector().detect(sample, delimiters=_DELIMITERS)
    if dialect is not None:
        return dialect.delimiter or _SINGLE_COLUMN
    first_line = sample.lstrip().split("\n", 1)[0]
    counts = {delimiter: first_line.count(delimiter) for delimiter in _DELIMITERS}
    best = max(counts, key=counts.__getitem__)  # the first of equals: ";" on a tie
    return best if counts[best] else _SINGLE_COLUMN


def _parse(path: Path, text: str, delimiter: str) -> CsvTable:
    """Every record with the physical line it starts on; blank records skipped, still counted.

    Quotes are always ``"`` doubled, as spreadsheets write them, whatever the sample showed.
    A record whose cells are all blank (a blank line, or ``;;;`` from an empty spreadsheet row)
    is not data.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"')
    records: list[list[str]] = []
    row_numbers: list[int] = []
    start = last_end = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                records.append(cells)
                row_numbers.append(start)
                last_end = reader.line_num
            start = reader.line_num + 1
    except csv.Error as error:
        raise IntakeError(path, f"unreadable CSV at line {reader.line_num}: {error}") from error
    if not records:
        raise IntakeError(path, "no header: every line is blank")
    if _runs_to_end_in_quotes(text, row_numbers[-1], last_end, reader.line_num):
        raise IntakeError(
            path, f"unterminated quote: the field opened on line {row_numbers[-1]} never closes"
        )
    if len(records) == 1:
        # A push of 0 rows that succeeds would hide a truncated or wrong export.
        raise IntakeError(path, "no data rows: the file has a header only")
    headers = tuple(cell.strip() for cell in records[0])
    return CsvTable(path, headers, records[1:], row_numbers[1:])


def _runs_to_end_in_quotes(text: str, last_start: int, last_end: int, line_count: int) -> bool:
    """Whether the last record is a quote left open, which silently swallows the lines after it.

    It then spans several lines, nothing follows it, and its text has an odd number of quotes
    (a closed quoted field has an even number: its two quotes and any doubled ones).
    """
    if not last_start < last_end == line_count:
        return False
    lines = io.StringIO(text, newline="").readlines()  # split as the csv reader counts lines
    return "".join(lines[last_start - 1 :]).count('"') % 2 == 1
