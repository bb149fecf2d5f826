"""The CSV intake at scale (issue 11 §2): a streamed read in pieces, the dialect and the
encoding from a bounded sample, each distinct value normalised once, a French quick path, and
audit rows written as columns. Each gives what the whole-file, row-by-row reading gave."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import random
from pathlib import Path

import pandas as pd
import phonenumbers
import pytest

import smsp_connector.intake.phone_numbers as phone_numbers
import smsp_connector.intake.reader as reader
from smsp_connector.intake import IntakeError, phone_intake_frame, read_phone_csv
from smsp_connector.intake.phone_numbers import normalize_phone_number
from smsp_connector.intake.reader import read_table
from smsp_connector.warehouse.audit import AuditEntries, AuditEntry, Outcome, audit_entries

pytestmark = pytest.mark.heavy

DATA = Path(__file__).parent / "data" / "csv"


def _slow(raw: str | None, region: str = "FR") -> object:
    """normalize_phone_number without the French quick path."""
    saved = phone_numbers._FRENCH_VALID
    phone_numbers._FRENCH_VALID = None
    try:
        return normalize_phone_number(raw, region)
    finally:
        phone_numbers._FRENCH_VALID = saved


def _forms(digits: str) -> list[str]:
    pairs = " ".join([digits[0], *(digits[i : i + 2] for i in range(1, 9, 2))])
    return [
        "0" + digits,
        "0" + pairs,
        "0" + pairs.replace(" ", "."),
        "0" + pairs.replace(" ", "-"),
        "+33" + digits,
        "+33 " + pairs,
        "0033" + digits,
        "33" + digits,
        f' ="0{digits}" ',
        "'0" + digits,
        "+33 0" + digits,
        "06 12 34 56 7",
        "0" + digits + "1",
    ]


def test_french_quick_path_gives_what_libphonenumber_gives() -> None:
    """Every 4-digit prefix of the French plan, in every form: the same outcome either way."""
    rng = random.Random(20261124)
    checked = quick = 0
    for prefix in range(1000, 10000):
        digits = f"{prefix}{rng.randrange(100_000):05d}"
        for raw in rng.sample(_forms(digits), 4):
            got = normalize_phone_number(raw)
            assert got == _slow(raw), raw
            _assert_libphonenumber_agrees(raw, got)
            checked += 1
            quick += phone_numbers._FRENCH_FORM.fullmatch(raw) is not None
    assert checked == 36_000
    assert quick > 15_000, "the quick path is taken"


def _assert_libphonenumber_agrees(raw: str, got: object) -> None:
    """Whatever is kept is a number libphonenumber holds valid; whatever the quick path
    answers is what libphonenumber reads in FR; a French form it declines is never kept
    unless libphonenumber holds it valid too."""
    if isinstance(got, phone_numbers.NormalizedNumber):
        assert got.is_valid, raw
        assert phonenumbers.is_valid_number(phonenumbers.parse(got.e164)), raw
    quick = phone_numbers.valid_french_e164(raw.strip())
    if quick is not None:
        parsed = phonenumbers.parse(raw.strip(), "FR")
        assert phonenumbers.is_valid_number(parsed), raw
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == quick
        assert isinstance(got, phone_numbers.NormalizedNumber) and got.e164 == quick, raw


def test_a_national_number_a_digit_short_is_rejected_on_either_path() -> None:
    for raw in ("06 12 34 56 7", "061234567", "06.12.34.56.7"):
        assert phone_numbers.valid_french_e164(raw) is None
        for got in (normalize_phone_number(raw), _slow(raw)):
            assert isinstance(got, phone_numbers.RejectedNumber), raw
            assert got.reason is phone_numbers.RejectionReason.NOT_VALID


def test_quick_path_only_in_france() -> None:
    assert normalize_phone_number("0612345678", "BE") == _slow("0612345678", "BE")
    assert normalize_phone_number("0612345678", "RE") == _slow("0612345678", "RE")
    assert normalize_phone_number("0692123456") == _slow("0692123456")  # Réunion, from France
    arabic_indic = "٠٦١٢٣٤٥٦٧٨"  # phonenumbers reads these digits: the full path, same result
    assert normalize_phone_number(arabic_indic) == _slow(arabic_indic)
    frame = phone_intake_frame("t", [arabic_indic, "06 12 34 56 78"], [2, 3])
    assert frame["e164"].tolist() == ["+33612345678", "+33612345678"]
    assert frame["duplicate_of_row"].tolist() == [pd.NA, 2]


def test_distinct_values_once_same_rows_as_row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    pool = [*_forms("612345678"), *_forms("692123456"), "", "n/a", "3.3E+10", "tel: abc"]
    raws = [rng.choice(pool) for _ in range(3_000)]
    regions = [rng.choice([None, "BE", "re", "XX", " fr "]) for _ in raws]
    calls: list[tuple[object, str]] = []
    original = normalize_phone_number

    def counting(raw: str | None, region: str = "FR") -> object:
        calls.append((raw, region))
        return original(raw, region)

    monkeypatch.setattr("smsp_connector.intake.frames.normalize_phone_number", counting)
    frame = phone_intake_frame("t", raws, list(range(2, len(raws) + 2)), regions=regions)
    assert len(calls) == len(set(calls)) < len(raws) / 10, "each distinct pair once"
    for row, (raw, region) in enumerate(zip(raws, regions, strict=True)):
        usable = region.strip().upper() if region else None
        usable = usable if usable in ("BE", "RE", "FR") else "FR"
        expected = original(raw, usable)
        got = frame.iloc[row]
        assert got["raw_value"] == raw
        if hasattr(expected, "e164"):
            assert (got["e164"], bool(got["is_valid"]), got["region"]) == (
                expected.e164,
                expected.is_valid,
                expected.region,
            )
            assert pd.isna(got["rejection_reason"])
        else:
            assert pd.isna(got["e164"]) and pd.isna(got["is_valid"])
            assert (got["rejection_reason"], got["rejection_message"]) == (
                expected.reason.value,
                expected.message,
            )


# --- the streamed reader against the whole-file reading it replaced ------------------------


def _reference(path: Path) -> tuple[tuple[str, ...], list[list[str]], list[int], str]:
    """The previous reader: the whole file decoded at once, then parsed (valid files only)."""
    data = path.read_bytes()
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf_8"),
        (codecs.BOM_UTF16_LE, "utf_16_le"),
        (codecs.BOM_UTF16_BE, "utf_16_be"),
    ):
        if data.startswith(bom):
            text = data[len(bom) :].decode(encoding)
            break
    else:
        try:
            text = data.decode("utf_8")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                text = data.decode("latin_1")
    sample = text[: reader._SNIFF_CHARS]
    delimiter = reader._detect_delimiter(sample, len(text) > reader._SNIFF_CHARS)
    records, rows, start = [], [], 1
    parsed = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"')
    for cells in parsed:
        if any(cell.strip() for cell in cells):
            records.append(cells)
            rows.append(start)
        start = parsed.line_num + 1
    headers = tuple(cell.strip() for cell in records[0])
    return headers, records[1:], rows[1:], hashlib.sha256(data).hexdigest()


def _usable_files() -> list[Path]:
    usable = []
    for path in sorted(DATA.glob("*.csv")):
        try:
            read_table(path)
        except IntakeError:
            continue
        usable.append(path)
    return usable


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
def test_streamed_pieces_read_what_the_whole_file_gave(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, chunk: int
) -> None:
    """Any piece size, even one byte (a CRLF, a UTF-8 or UTF-16 character cut in two)."""
    extra = {
        "crlf_quoted.csv": b'phone;note\r\n0612345678;"a\r\nb"\r\n\r\n0612345679;c\r\n',
        "cr_only.csv": b"phone;note\r0612345678;a\r\r0612345679;b",
        "utf16be.csv": codecs.BOM_UTF16_BE + "Tél;Nom\r\n0612345678;Zoé\r\n".encode("utf-16-be"),
        "late_accent.csv": b"phone;nom\n" + b"0612345678;a\n" * 30 + b"0612345679;Z\xe9\n",
    }
    for name, data in extra.items():
        (tmp_path / name).write_bytes(data)
    monkeypatch.setattr(reader, "_CHUNK_BYTES", chunk)
    files = [*_usable_files(), *sorted(tmp_path.glob("*.csv"))]
    assert len(files) >= 12
    for path in files:
        headers, records, rows, digest = _reference(path)
        table = read_table(path)
        assert table.headers == headers, path.name
        assert list(table.row_numbers) == rows, path.name
        assert table.sha256 == digest, path.name
        for index in range(len(headers)):
            expected = [cells[index] if index < len(cells) else "" for cells in records]
            assert table.column(index) == expected, (path.name, index)


def test_encoding_from_the_start_is_confirmed_by_the_rest(tmp_path: Path) -> None:
    """ASCII for more than a piece, then one Windows-1252 accent: read as Windows-1252."""
    path = tmp_path / "late.csv"
    lines = [b"Nom;Telephone"]
    lines += [f"Client {i};06 12 34 {i % 100:02d} {i % 89:02d}".encode() for i in range(80_000)]
    lines += ["Zoé Lefèvre;0612345678".encode("cp1252")]
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    assert path.stat().st_size > 2 * reader._CHUNK_BYTES
    read = read_phone_csv(path, extra_columns=["Nom"])
    frame = read.frame
    assert frame["Nom"].iloc[-1] == "Zoé Lefèvre"
    assert frame["row_number"].iloc[-1] == 80_002
    assert read.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_bad_bytes_after_a_bom_far_in_name_their_offset(tmp_path: Path) -> None:
    path = tmp_path / "bom_late.csv"
    body = b"phone;nom\n" + b"0612345678;abc\n" * 100_000
    path.write_bytes(codecs.BOM_UTF8 + body + b"0612345679;Z\xe9\n")
    with pytest.raises(IntakeError) as caught:
        read_phone_csv(path)
    assert caught.value.problem == f"not valid utf_8 text at byte {3 + len(body) + 12}"


def test_nul_far_in_is_binary(tmp_path: Path) -> None:
    path = tmp_path / "nul_late.csv"
    path.write_bytes(b"phone\n" + b"0612345678\n" * 200_000 + b"06\x0012\n")
    with pytest.raises(IntakeError, match="not a text file: binary content"):
        read_phone_csv(path)


def test_column_error_comes_after_the_file_errors(tmp_path: Path) -> None:
    """As when the whole file was read before its header was looked at."""
    path = tmp_path / "both.csv"
    path.write_bytes(b"nom\n" + b"a\n" * 200_000 + b"\x00\n")
    with pytest.raises(IntakeError, match="binary content"):
        read_phone_csv(path)
    path.write_bytes(b"nom\nfine\n")
    with pytest.raises(IntakeError, match="no phone column among"):
        read_phone_csv(path)


def test_dialect_from_the_sample_only(tmp_path: Path) -> None:
    """The delimiter comes from the start (`;`), even when rows further on are full of commas
    (unquoted free text that would look like a `,` file): those stay whole cells."""
    path = tmp_path / "later_commas.csv"
    head = "".join(f"Client {i};06 12 34 56 {i % 100:02d}\n" for i in range(2_000))
    tail = "".join(f"a, b, c, d, e {i};07 81 34 56 {i % 100:02d}\n" for i in range(20_000))
    path.write_text("Nom;Téléphone\n" + head + tail, encoding="utf-8")
    assert len(head) > reader._SNIFF_CHARS
    frame = read_phone_csv(path, extra_columns=["Nom"]).frame
    assert frame["Nom"].iloc[-1] == "a, b, c, d, e 19999"
    assert frame["e164"].iloc[-1] == "+33781345699"
    assert frame["rejection_reason"].isna().all()


def test_unterminated_quote_far_in(tmp_path: Path) -> None:
    path = tmp_path / "open_quote.csv"
    path.write_bytes(b"phone;nom\n" + b'0612345678;"a""b"\n' * 100_000 + b'0612;"open\nx\ny\n')
    with pytest.raises(IntakeError) as caught:
        read_phone_csv(path)
    assert caught.value.problem == (
        "unterminated quote: the field opened on line 100002 never closes"
    )


def test_row_numbers_at_scale_with_blank_lines_and_multiline_cells(tmp_path: Path) -> None:
    """300,000 rows: each rejected row is reported at the line a spreadsheet user sees."""
    path = tmp_path / "big.csv"
    rng = random.Random(3)
    expected: dict[int, str] = {}
    line = 2
    with path.open("w", encoding="cp1252", newline="") as stream:
        stream.write("Téléphone;Note\r\n")
        for i in range(300_000):
            if rng.random() < 0.01:
                stream.write("\r\n")
                line += 1
            phone = rng.choice(["inconnu", "0612"]) if i % 997 == 0 else f"06{i:08d}"[:10]
            if i % 997 == 0:
                expected[line] = phone
            if rng.random() < 0.01:
                stream.write(f'{phone};"deux\r\nlignes"\r\n')
                line += 2
            else:
                stream.write(f"{phone};é\r\n")
                line += 1
    frame = read_phone_csv(path).frame
    assert len(frame) == 300_000
    rejected = frame[frame["rejection_reason"].notna()]
    assert dict(zip(rejected["row_number"], rejected["raw_value"], strict=True)) == expected


# --- audit rows as columns ------------------------------------------------------------------


def test_audit_entries_iterate_as_the_entries_they_replace() -> None:
    intake = pd.DataFrame(
        {
            "source_file": ["f.csv", "f.csv", "f.csv"],
            "row_number": [2, 5, 9],
            "e164": ["+33612345678", None, "+33612345679"],
            "rejection_message": [None, "bad", None],
        }
    )
    entries = audit_entries(intake, Outcome.INVALID_INPUT, "rejection_message")
    assert isinstance(entries, AuditEntries)
    assert len(entries) == 3
    assert list(entries) == [
        AuditEntry("f.csv", 2, "+33612345678", Outcome.INVALID_INPUT, None),
        AuditEntry("f.csv", 5, "None", Outcome.INVALID_INPUT, "bad"),
        AuditEntry("f.csv", 9, "+33612345679", Outcome.INVALID_INPUT, None),
    ]
    assert entries[-1] == list(entries)[-1]
    assert entries[1:] == list(entries)[1:]
    assert isinstance(next(iter(entries)).source_row, int)
    assert list(audit_entries(intake.iloc[:0], Outcome.DRY_RUN)) == []
