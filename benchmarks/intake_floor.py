"""CSV intake floor: the cheapest way to the same usable numbers and rejections, in DuckDB alone.

    .venv/bin/python benchmarks/intake_floor.py FILE DATABASE

DuckDB's `read_csv` reads the export (`;`, quoted fields, every column as text, Latin-1), SQL
strips a spreadsheet's `="…"`, spaces, dots and dashes, reads the French forms (`0…`, `+33…`,
`0033…`, `33…`) and the Réunion `0692…` form, keeps a number when libphonenumber's own
metadata patterns for FR (or RE) call it valid (its general pattern and one of its types',
RE2's full matches, as `intake/phone_numbers.py`'s quick path does in Python), marks repeats
of a number after its first row, writes one row per input row to a table and the rejected rows
to a CSV beside the database. What it leaves out that the project does: physical line numbers
(DuckDB numbers the records; blank lines and multi-line cells shift them), encoding and
delimiter detection, any other country's forms and libphonenumber's full path, the reasons
of each rejection, formula-safe report cells, the audit log and the list's diff. Prints one
JSON line of counts; `intake_bench.py --floor` runs it beside `smsp push --dry-run`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb

from smsp_connector.intake.phone_numbers import validity_patterns

PHONE_COLUMN = "Téléphone portable"


def validity(region: str) -> tuple[str, str]:
    """(general pattern, one alternative per number type) of ``region``'s 9-digit national
    numbers, as the project's quick path reads them from libphonenumber's metadata."""
    patterns = validity_patterns(region, 9)
    assert patterns is not None, region
    general, types = patterns
    return general, "|".join(types)


def main(source: str, database: str) -> None:
    (fr_general, fr_types), (re_general, re_types) = validity("FR"), validity("RE")
    with duckdb.connect(database) as conn:
        conn.execute(
            f"""
            CREATE TABLE intake AS
            WITH src AS (
                SELECT row_number() OVER () AS record, "{PHONE_COLUMN}" AS raw
                FROM read_csv(?, delim = ';', quote = '"', header = true, all_varchar = true,
                              encoding = 'latin-1')
            ), cleaned AS (
                SELECT record, raw, regexp_replace(
                    regexp_replace(trim(coalesce(raw, '')), '^="(.*)"$', '\\1'), '[ .-]', '', 'g'
                ) AS text
                FROM src
            ), national AS (
                SELECT record, raw,
                       CASE WHEN regexp_full_match(text, '(?:\\+33|0033|33|0)[1-9][0-9]{{8}}')
                            THEN right(text, 9) END AS digits
                FROM cleaned
            ), numbers AS (
                SELECT record, raw,
                       CASE WHEN regexp_full_match(digits, ?) AND regexp_full_match(digits, ?)
                                THEN '+33' || digits
                            WHEN regexp_full_match(digits, ?) AND regexp_full_match(digits, ?)
                                THEN '+262' || digits END AS e164
                FROM national
            )
            SELECT record, raw, e164,
                   CASE WHEN e164 IS NULL THEN 'invalid'
                        WHEN row_number() OVER (PARTITION BY e164 ORDER BY record) > 1
                            THEN 'duplicate'
                        ELSE 'usable' END AS outcome
            FROM numbers
            """,
            [source, fr_general, fr_types, re_general, re_types],
        )
        report = Path(database).with_suffix(".rejected.csv")
        conn.execute(
            f"COPY (SELECT record, raw FROM intake WHERE outcome = 'invalid' ORDER BY record) "
            f"TO '{report}' (HEADER)"
        )
        counts = dict(conn.execute("SELECT outcome, count(*) FROM intake GROUP BY 1").fetchall())
    print("FLOOR-RESULT " + json.dumps(counts))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
