"""The CSV intake: messy marketing and CRM exports read as text, every row accounted for."""

from __future__ import annotations

import codecs
import os
import pickle
import random
from pathlib import Path
from unittest import mock

import pandas as pd
import pandera.errors
import pytest

from smsp_connector.intake import (
    PHONE_COLUMN_ALIASES,
    IntakeError,
    PhoneIntakeSchema,
    frames,
    normalize_header,
    read_phone_csv,
    read_text_column_csv,
)
from smsp_connector.intake.frames import phone_intake_frame
from smsp_connector.intake.schemas import phone_intake_schema

DATA = Path(__file__).parent / "data" / "csv"
MESSAGE_ID_ALIASES = ("message_id", "messageId", "id_message", "id du message", "id")
PHONE_COLUMNS = [
    "source_file",
    "row_number",
    "raw_value",
    "e164",
    "is_valid",
    "region",
    "rejection_reason",
    "rejection_message",
    "duplicate_of_row",
]
PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06"

# Files made in the test, where the bytes matter more than what an editor would show.
GENERATED: dict[str, bytes] = {
    "zero.csv": b"",
    "whitespace.csv": b"  \n\t\n   \r\n",
    "image.csv": PNG_HEADER + random.Random(1).randbytes(512),
    "random_no_nul.csv": random.Random(2).randbytes(2048).replace(b"\0", b"\x01"),
    "bom.csv": codecs.BOM_UTF8 + "téléphone;nom\n06 12 34 56 78;Hélène\n".encode(),
    "cp1252.csv": "Téléphone;Nom\n06 12 34 56 78;Hélène Cœur\n0612345679;Zoé Lefèvre\n".encode(
        "cp1252"
    ),
    "utf16.csv": "Téléphone\tNom\r\n0612345678\tHélène\r\n".encode("utf-16"),
    "utf16_odd_length.csv": "Téléphone\n06".encode("utf-16") + b"\x00",
    "upper_case_utf8.csv": "NOM;TÉLÉPHONE\nCŒUR;06 12 34 56 78\nLEFÈVRE;«0612345679»\n".encode(),
    "cp1252_undefined_byte.csv": b"t\xe9l;nom\n0612345678;a\x81b\n",
    "bom_then_cp1252.csv": codecs.BOM_UTF8 + b"phone;nom\n0612345678;Z\xe9\n",
    "control_characters.csv": b"phone\n" + bytes(range(1, 9)) * 40,
    "utf8_truncated.csv": "téléphone\n0612345678\n".encode()[:2],
}


def frame(path: Path, phone_column: str | None = None) -> list[tuple[object, ...]]:
    """The rows of a phone read, without source_file and the message, as plain tuples."""
    df = read_phone_csv(path, phone_column=phone_column).frame
    columns = ["row_number", "raw_value", "e164", "rejection_reason", "duplicate_of_row"]
    return [
        tuple(None if pd.isna(value) else value for value in row)
        for row in df[columns].itertuples(index=False)
    ]


@pytest.fixture
def generated(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name, data in GENERATED.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    return paths


# --- delimiters, headers, encodings ----------------------------------------------------------


def test_comma_file_with_english_header() -> None:
    path = DATA / "comma_english.csv"
    df = read_phone_csv(path).frame
    assert list(df.columns) == PHONE_COLUMNS
    assert df["source_file"].unique().tolist() == [str(path)]
    assert frame(path) == [
        (2, "+33 6 12 34 56 78", "+33612345678", None, None),
        (3, "0612345679", "+33612345679", None, None),
        (4, "+44 7911 123456", "+447911123456", None, None),
        (5, "not a number", None, "not_a_number", None),
    ]
    assert df["is_valid"].tolist() == [True, True, True, pd.NA]
    assert df["region"].tolist() == ["FR", "FR", "GG", None]
    assert df.loc[3, "rejection_message"] == "'not a number' does not contain a phone number"


def test_semicolon_file_with_french_header() -> None:
    assert frame(DATA / "semicolon_french.csv") == [
        (2, "06 12 34 56 78", "+33612345678", None, None),
        (3, "06.12.34.56.79", "+33612345679", None, None),
        (4, "0692 12 34 56", "+262692123456", None, None),
    ]


def test_tab_separated_file() -> None:
    df = read_phone_csv(DATA / "tab_separated.csv", extra_columns=["note"]).frame
    assert df["e164"].tolist() == ["+33612345678", "+33612345679"]
    assert df["note"].tolist() == ["call back, later", ""]


def test_single_column_file() -> None:
    assert frame(DATA / "single_column.csv") == [
        (2, "33612345678", "+33612345678", None, None),
        (3, "+33 6 12 34 56 79", "+33612345679", None, None),
    ]


def test_delimiter_tie_goes_to_the_header_count_then_semicolon(tmp_path: Path) -> None:
    path = tmp_path / "tie.csv"
    path.write_text("tel;nom,prénom\n0612345678;Dupont,Jean\n0612345679;Martin,Léa\n")
    df = read_phone_csv(path, extra_columns=["NOM, Prénom"]).frame
    assert df["e164"].tolist() == ["+33612345678", "+33612345679"]
    assert df["NOM, Prénom"].tolist() == ["Dupont,Jean", "Martin,Léa"]


@pytest.mark.parametrize(
    "header",
    [
        "phone",
        "phone_number",
        "phoneNumber",
        "Phone Number",
        "telephone",
        "téléphone",
        "Téléphone portable",
        "tel",
        "tél",
        "Tél.",
        "mobile",
        "portable",
        "numero",
        "numéro",
        "num_tel",
        "N° de téléphone",
        "gsm",
        "MSISDN",
        "cell",
        "cellphone",
        " Mobile Phone ",
    ],
)
def test_phone_header_aliases(tmp_path: Path, header: str) -> None:
    path = tmp_path / "aliases.csv"
    path.write_text(f"nom;{header};email\nDupont;0612345678;a@example.fr\n")
    assert frame(path) == [(2, "0612345678", "+33612345678", None, None)]


def test_header_normalisation() -> None:
    assert normalize_header(" Téléphone-Portable ") == "telephoneportable"
    assert normalize_header("phoneNumber") == normalize_header("PHONE_NUMBER") == "phonenumber"
    assert normalize_header("N° tél.") == "ntel"
    assert all(alias == normalize_header(alias) for alias in PHONE_COLUMN_ALIASES)


def test_utf8_bom_is_not_part_of_the_header(generated: dict[str, Path]) -> None:
    path = generated["bom.csv"]
    assert path.read_bytes().startswith(codecs.BOM_UTF8)
    df = read_phone_csv(path, extra_columns=["nom"]).frame
    assert df["e164"].tolist() == ["+33612345678"]
    assert df["nom"].tolist() == ["Hélène"]


def test_windows_1252_accents_in_header_and_values(generated: dict[str, Path]) -> None:
    df = read_phone_csv(generated["cp1252.csv"], extra_columns=["nom"]).frame
    assert df["e164"].tolist() == ["+33612345678", "+33612345679"]
    # "œ" is 0x9C: Windows-1252, not Latin-1 (where 0x9C is a control character).
    assert df["nom"].tolist() == ["Hélène Cœur", "Zoé Lefèvre"]


def test_utf16_with_bom_as_excel_unicode_text(generated: dict[str, Path]) -> None:
    df = read_phone_csv(generated["utf16.csv"], extra_columns=["Nom"]).frame
    assert df["e164"].tolist() == ["+33612345678"]
    assert df["Nom"].tolist() == ["Hélène"]


def test_upper_case_utf8_is_not_mistaken_for_windows_1252(generated: dict[str, Path]) -> None:
    df = read_phone_csv(generated["upper_case_utf8.csv"], extra_columns=["nom"]).frame
    assert df["nom"].tolist() == ["CŒUR", "LEFÈVRE"]
    assert df["raw_value"].tolist() == ["06 12 34 56 78", "«0612345679»"]
    assert df["e164"].tolist() == ["+33612345678", "+33612345679"]


def test_bytes_undefined_in_windows_1252_are_read_as_latin_1(generated: dict[str, Path]) -> None:
    df = read_phone_csv(generated["cp1252_undefined_byte.csv"], extra_columns=["NOM"]).frame
    assert df["e164"].tolist() == ["+33612345678"]
    assert df["NOM"].tolist() == ["a\x81b"]


# --- quoting, blank lines, trailing delimiters, ragged rows ----------------------------------


def test_quoted_delimiters_and_newlines_keep_physical_row_numbers() -> None:
    path = DATA / "quoted_fields.csv"
    df = read_phone_csv(path, extra_columns=["name", "comment"]).frame
    assert df["row_number"].tolist() == [2, 3, 6]  # row 3 spans lines 3-5
    assert df["raw_value"].tolist() == ["06 12 34 56 78", "0612345679", "0612345680"]
    assert df["name"].tolist() == ["Dupont, Jean", "Martin", "Durand; Paul"]
    assert df["comment"].tolist() == ['likes "quotes"', "first line\nsecond line\nthird line", "ok"]


def test_a_stray_quote_is_not_an_unterminated_field(tmp_path: Path) -> None:
    path = tmp_path / "inches.csv"
    path.write_text('phone,note\n0612345678,12" screen\n0612345679,"multi\nline"\n')
    df = read_phone_csv(path, extra_columns=["note"]).frame
    assert df["row_number"].tolist() == [2, 3]
    assert df["note"].tolist() == ['12" screen', "multi\nline"]


def test_blank_lines_are_skipped_and_still_counted() -> None:
    # Line 1 is blank, the header is line 2; ";" and "   " lines are blank too.
    assert frame(DATA / "blank_lines.csv") == [
        (4, "0612345678", "+33612345678", None, None),
        (7, "0612345679", "+33612345679", None, None),
        (10, "0612345680", "+33612345680", None, None),
    ]


def test_trailing_delimiters_and_crlf() -> None:
    df = read_phone_csv(DATA / "trailing_delimiters.csv", extra_columns=["nom"]).frame
    assert df["row_number"].tolist() == [2, 3]
    assert df["e164"].tolist() == ["+33612345678", "+33612345679"]
    assert df["nom"].tolist() == ["Dupont", "Martin"]


def test_ragged_rows_are_padded_and_cut() -> None:
    df = read_phone_csv(DATA / "ragged_rows.csv", extra_columns=["ville"]).frame
    assert df["e164"].tolist() == ["+33612345678", "+33612345679", "+33612345680"]
    assert df["ville"].tolist() == ["", "Lyon", ""]


def test_missing_phone_cell_is_an_empty_rejection(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("nom;téléphone\nDupont\nMartin;0612345678\n")
    assert frame(path) == [
        (2, "", None, "empty", None),
        (3, "0612345678", "+33612345678", None, None),
    ]


# --- values -----------------------------------------------------------------------------------


def test_duplicates_are_flagged_and_the_first_kept() -> None:
    df = read_phone_csv(DATA / "duplicates.csv", extra_columns=["name"]).frame
    assert frame(DATA / "duplicates.csv") == [
        (2, "06 12 34 56 78", "+33612345678", None, None),
        (3, "0612345679", "+33612345679", None, None),
        (4, "+33612345678", "+33612345678", None, 2),
        (5, "06 12 34 56 78", "+33612345678", None, 2),
        (6, "0033 6 12 34 56 78", "+33612345678", None, 2),
        (7, "nope", None, "not_a_number", None),
        (8, "nope", None, "not_a_number", None),
    ]
    first_rows = df[df["duplicate_of_row"].isna() & df["e164"].notna()]
    assert first_rows["e164"].tolist() == ["+33612345678", "+33612345679"]


def test_integer_looking_values_keep_their_text() -> None:
    df = read_phone_csv(DATA / "integer_like.csv").frame
    assert df["raw_value"].tolist() == ["0612345678", "612345678", "3.36123E+10", "33612345678"]
    assert df["e164"].tolist() == ["+33612345678", "+33612345678", None, "+33612345678"]
    assert df["rejection_reason"].tolist() == [None, None, "scientific_notation", None]
    assert df.loc[2, "rejection_message"].startswith("'3.36123E+10' is in scientific notation")
    assert df["duplicate_of_row"].tolist() == [pd.NA, 2, pd.NA, 2]


def test_default_region_applies_to_national_numbers(tmp_path: Path) -> None:
    path = tmp_path / "uk.csv"
    path.write_text("mobile\n07400 123456\n")
    df = read_phone_csv(path, default_region="GB").frame
    assert df["e164"].tolist() == ["+447400123456"]
    assert df["region"].tolist() == ["GB"]


def test_a_header_only_file_is_a_file_level_error() -> None:
    # A push of 0 rows that "succeeds" hides a truncated export: refuse the file instead.
    with pytest.raises(IntakeError, match=r"header_only\.csv: no data rows"):
        read_phone_csv(DATA / "header_only.csv", extra_columns=["Nom"])


def test_a_header_followed_by_blank_lines_only_is_a_file_level_error(tmp_path: Path) -> None:
    path = tmp_path / "blank_rows.csv"
    path.write_text("phone;Nom\n\n;;\n  \n", encoding="utf-8")
    with pytest.raises(IntakeError, match="no data rows"):
        read_phone_csv(path)


def test_phone_column_override_is_case_and_accent_insensitive() -> None:
    path = DATA / "two_phone_columns.csv"
    assert frame(path, phone_column="Mobile") == [(2, "0612345678", "+33612345678", None, None)]
    assert frame(path, phone_column="telephone") == [(2, "0145678901", "+33145678901", None, None)]


def test_two_phone_columns_without_override_is_refused() -> None:
    with pytest.raises(IntakeError) as caught:
        read_phone_csv(DATA / "two_phone_columns.csv")
    assert caught.value.problem == (
        "several phone columns ['Téléphone', 'Mobile']: set phone_column to one of them"
    )


def test_phone_column_override_not_found() -> None:
    path = DATA / "two_phone_columns.csv"
    with pytest.raises(IntakeError) as caught:
        read_phone_csv(path, phone_column="fax")
    assert str(caught.value) == f"{path}: no column 'fax' among ['Téléphone', 'Mobile', 'Nom']"


def test_extra_columns_present() -> None:
    df = read_phone_csv(
        DATA / "consent_export.csv", extra_columns=["date du consentement", "SOURCE"]
    ).frame
    assert list(df.columns) == [*PHONE_COLUMNS, "date du consentement", "SOURCE"]
    assert df["date du consentement"].tolist() == ["2024-01-15", "", "2024-02-01"]
    assert df["SOURCE"].tolist() == ["formulaire web", "", "appel entrant"]
    assert df["e164"].tolist() == ["+33612345678", "+33612345679", "+33612345680"]


def test_extra_column_missing() -> None:
    path = DATA / "consent_export.csv"
    with pytest.raises(IntakeError) as caught:
        read_phone_csv(path, extra_columns=["Source", "preuve"])
    assert caught.value.path == path
    assert str(caught.value) == (
        f"{path}: no column 'preuve' among ['Numéro', 'Date du consentement', 'Source']"
    )


def test_bad_arguments_are_value_errors_not_intake_errors() -> None:
    path = DATA / "comma_english.csv"
    with pytest.raises(ValueError, match="unknown default region 'XX'"):
        read_phone_csv(path, default_region="XX")
    with pytest.raises(ValueError, match="extra_columns must be distinct"):
        read_phone_csv(path, extra_columns=["e164"])
    with pytest.raises(ValueError, match="extra_columns must be distinct"):
        read_phone_csv(path, extra_columns=["name", "name"])


# --- unusable files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("zero.csv", "empty file (0 bytes)"),
        ("whitespace.csv", "empty file (only whitespace)"),
        ("image.csv", "not a text file: binary content (NUL or control characters)"),
        ("random_no_nul.csv", "not a text file: binary content (NUL or control characters)"),
        ("bom_then_cp1252.csv", "not valid utf_8 text at byte 25"),
        ("utf16_odd_length.csv", "not valid utf_16_le text at byte 26"),
        ("control_characters.csv", "not a text file: binary content (NUL or control characters)"),
    ],
)
def test_unusable_generated_files(generated: dict[str, Path], name: str, problem: str) -> None:
    path = generated[name]
    with pytest.raises(IntakeError) as caught:
        read_phone_csv(path)
    assert caught.value.path == path
    assert str(caught.value).startswith(f"{path}: {problem}")
    assert "\n" not in str(caught.value)


def test_no_phone_column_lists_headers_and_accepted_names() -> None:
    path = DATA / "no_phone_column.csv"
    with pytest.raises(IntakeError) as caught:
        read_phone_csv(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: no phone column among ['nom', 'email'] (accepted: phone, ")
    assert ", telephone, " in message
    assert message.endswith(", nportable; or set phone_column)")


def test_unterminated_quote_would_swallow_rows() -> None:
    path = DATA / "unterminated_quote.csv"
    with pytest.raises(IntakeError) as caught:
        read_phone_csv(path)
    assert caught.value.problem == "unterminated quote: the field opened on line 2 never closes"


def test_intake_error_survives_pickling() -> None:
    error = IntakeError(Path("inbox/add/export.csv"), "empty file (0 bytes)")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.problem) == (Path("inbox/add/export.csv"), "empty file (0 bytes)")
    assert str(copy) == "inbox/add/export.csv: empty file (0 bytes)"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(IntakeError, match=r"nowhere\.csv: cannot read the file: No such file"):
        read_phone_csv(tmp_path / "nowhere.csv")
    with pytest.raises(IntakeError, match=f"^{tmp_path}: not a regular file \\(a directory\\)$"):
        read_phone_csv(tmp_path)


def test_field_over_the_csv_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge_field.csv"
    path.write_text('phone,note\n0612345678,"' + "x" * 200_000 + '"\n')
    with pytest.raises(IntakeError) as caught:
        read_phone_csv(path)
    assert caught.value.problem.startswith(
        "unreadable CSV at line 2: field larger than field limit"
    )


# --- the generic text column ------------------------------------------------------------------


def test_message_ids_are_stripped_kept_when_empty_and_flagged_when_repeated() -> None:
    path = DATA / "message_ids.csv"
    df = read_text_column_csv(
        path, column_aliases=MESSAGE_ID_ALIASES, what="message id column"
    ).frame
    assert list(df.columns) == ["source_file", "row_number", "raw_value", "duplicate_of_row"]
    assert df["source_file"].unique().tolist() == [str(path)]
    assert df["row_number"].tolist() == [2, 3, 4, 5]
    assert df["raw_value"].tolist() == ["1001", "1002", "", "1001"]
    assert df["duplicate_of_row"].tolist() == [pd.NA, pd.NA, pd.NA, 2]


def test_text_column_override_and_missing_column() -> None:
    path = DATA / "message_ids.csv"
    df = read_text_column_csv(path, column_aliases=(), column="statut", what="status column").frame
    assert df["raw_value"].tolist() == ["scheduled", "scheduled", "missing id", "again"]
    assert df["duplicate_of_row"].tolist() == [pd.NA, 2, pd.NA, pd.NA]
    with pytest.raises(IntakeError) as caught:
        read_text_column_csv(
            DATA / "no_phone_column.csv",
            column_aliases=MESSAGE_ID_ALIASES,
            what="message id column",
        )
    assert caught.value.problem == (
        "no message id column among ['nom', 'email'] "
        "(accepted: message_id, messageId, id_message, id du message, id; or set column)"
    )


def test_text_column_header_only_and_numbers_as_text(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("messageId\n")
    with pytest.raises(IntakeError, match="no data rows"):
        read_text_column_csv(path, column_aliases=MESSAGE_ID_ALIASES, what="message id column")
    path.write_text("messageId\n007\n1.5E+3\n")
    ids = read_text_column_csv(
        path, column_aliases=MESSAGE_ID_ALIASES, what="message id column"
    ).frame
    assert ids["raw_value"].tolist() == ["007", "1.5E+3"]


# --- schema -----------------------------------------------------------------------------------


def test_schema_refuses_a_row_with_both_a_number_and_a_rejection() -> None:
    df = read_phone_csv(DATA / "comma_english.csv").frame
    df.loc[0, "rejection_reason"] = "too_short"
    df.loc[0, "rejection_message"] = "made up"
    with pytest.raises(pandera.errors.SchemaError, match="one_outcome_per_row"):
        PhoneIntakeSchema.validate(df)


def test_schema_refuses_a_duplicate_pointing_forward() -> None:
    df = read_phone_csv(DATA / "duplicates.csv").frame
    df["duplicate_of_row"] = df["duplicate_of_row"].astype("Int64")
    df.loc[0, "duplicate_of_row"] = 4
    with pytest.raises(pandera.errors.SchemaError, match="duplicates_point_back"):
        PhoneIntakeSchema.validate(df)


# --- the whole corpus: IntakeError or a frame, nothing else -----------------------------------


def _corpus() -> list[str]:
    return sorted(path.name for path in DATA.glob("*.csv"))


def _read_both(path: Path) -> None:
    """Both readers either return a frame or raise IntakeError naming the file."""
    for read in (
        lambda: read_phone_csv(path, extra_columns=()),
        lambda: read_text_column_csv(path, column_aliases=("id", "nom", "phone"), what="id"),
    ):
        try:
            assert isinstance(read().frame, pd.DataFrame)
        except IntakeError as error:
            assert str(error).startswith(f"{path}: ")
            assert error.problem and "\n" not in str(error)


@pytest.mark.parametrize("name", _corpus())
def test_corpus_file_never_raises_anything_but_intake_error(name: str) -> None:
    _read_both(DATA / name)


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_file_never_raises_anything_but_intake_error(
    generated: dict[str, Path], name: str
) -> None:
    _read_both(generated[name])


@pytest.mark.parametrize("seed", range(40))
def test_mangled_corpus_never_raises_anything_but_intake_error(tmp_path: Path, seed: int) -> None:
    """Corpus files with random cuts, quotes, delimiters, newlines and bytes spliced in."""
    rng = random.Random(seed)
    data = bytearray((DATA / rng.choice(_corpus())).read_bytes())
    for _ in range(rng.randint(1, 12)):
        at = rng.randint(0, len(data))
        splice = rng.choice([b'"', b";", b",", b"\t", b"\n", b"\r", b"\xe9", rng.randbytes(3)])
        if rng.random() < 0.3:
            del data[at : at + rng.randint(1, 8)]
        else:
            data[at:at] = splice
    path = tmp_path / f"mangled_{seed}.csv"
    path.write_bytes(bytes(data))
    _read_both(path)


# --- size -------------------------------------------------------------------------------------


def test_a_100k_row_file_is_read_whole(tmp_path: Path) -> None:
    """Every row of a large file is accounted for, each repeat pointing back to its first row.

    How fast it reads is measured by the push benchmark (benchmarks/push_ours.py), not here.
    """
    path = tmp_path / "big.csv"
    rows = "".join(f'Nom {i};06 12 34 {i % 1000:04d};"a; b"\n' for i in range(100_000))
    path.write_text("nom;téléphone;note\n" + rows, encoding="cp1252")
    df = read_phone_csv(path, extra_columns=["note"]).frame
    assert len(df) == 100_000
    assert df["row_number"].iloc[-1] == 100_001
    assert df["e164"].nunique() == 1000
    assert df["duplicate_of_row"].notna().sum() == 99_000
    assert df.loc[1000, "duplicate_of_row"] == 2
    assert (df["e164"].iloc[-1], df["duplicate_of_row"].iloc[-1]) == ("+33612340999", 1001)
    assert df["note"].eq("a; b").all(), "the quoted delimiter stays in the note of every row"


def test_a_fifo_is_refused_at_once_instead_of_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "export.csv"
    os.mkfifo(fifo)
    with pytest.raises(IntakeError, match=r"export\.csv: not a regular file \(a FIFO\)"):
        read_phone_csv(fifo)


def test_a_device_is_refused_instead_of_filling_memory() -> None:
    with pytest.raises(IntakeError, match=r"/dev/zero: not a regular file \(a character device\)"):
        read_phone_csv("/dev/zero")


def test_a_file_above_the_size_limit_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("phone\n" + "0612345678\n" * 1000)
    with pytest.raises(IntakeError, match=r"big\.csv: 11,006 bytes, above the 10,000-byte limit"):
        read_phone_csv(path, max_bytes=10_000)
    assert len(read_phone_csv(path, max_bytes=20_000).frame) == 1000


def test_schema_refuses_a_value_that_is_not_text_and_names_it() -> None:
    """The text columns are checked in one pass; a value of another type still fails, named."""
    df = read_phone_csv(DATA / "comma_english.csv").frame
    df["raw_value"] = df["raw_value"].astype(object)
    df.loc[1, "raw_value"] = 612345678
    with pytest.raises(pandera.errors.SchemaError) as caught:
        PhoneIntakeSchema.validate(df)
    assert "612345678" in str(caught.value)
    df.loc[1, "raw_value"] = "0612345678"
    PhoneIntakeSchema.validate(df)


def _decision(validate, frame: pd.DataFrame) -> str | None:
    """What a validation says of ``frame``: ``None`` (valid) or its error's text."""
    try:
        validate(frame.copy())
    except pandera.errors.SchemaError as error:
        return str(error)
    return None


@pytest.mark.parametrize("slice_rows", [2, 131_072])
@pytest.mark.parametrize(
    "e164", ["+0612345679", "0612345679", "+33612", "+33612345679\n", "+3361234567٣", 3.5]
)
def test_where_the_quick_check_cannot_decide_the_whole_schema_does(
    slice_rows: int, e164: object
) -> None:
    """A slice with a number the quick check does not pass gets pandera's own pattern check:
    the same refusal as the schema over the whole frame (a float fails the text type)."""
    df = read_phone_csv(DATA / "duplicates.csv").frame
    last = df["e164"].last_valid_index()
    df["e164"] = df["e164"].where(df.index != last, e164)
    schema = phone_intake_schema(())
    expected = _decision(schema.validate, df)
    assert expected is not None
    with mock.patch.object(frames, "_VALIDATION_ROWS", slice_rows):
        found = _decision(lambda frame: frames._validated(frame, schema), df)
    assert (found is None) == (expected is None)
    assert found is None or "e164" in found


def test_the_quick_check_stands_in_only_for_the_e164_pattern() -> None:
    """A schema whose e164 check is another pattern keeps it: the quick check proves
    E164_PATTERN, nothing else."""
    schema = phone_intake_schema(()).update_column(
        "e164", checks=[pandera.Check.str_matches(r"^\+33\d{9}$")]
    )
    frame = phone_intake_frame("t", ["+447911123456"], [2])
    assert _decision(schema.validate, frame) is not None
    assert _decision(lambda f: frames._validated(f, schema), frame) is not None
