#!/usr/bin/env bash
# Mutation testing (make mutation) with mutmut on ONE worker process, in two groups:
#   guard       operations/delete.py and warehouse/plans.py, against the deletion tests
#   normaliser  intake/phone_numbers.py, against its own tests
# Each group runs in a copy of smsp_connector/, tests/ and pyproject.toml outside the
# repository (MUTATION_DIR, default $TMPDIR/smsp-mutation), whose [tool.mutmut] names the
# group's file(s) and tests: without the split, every normaliser mutant would also run the
# deletion suite (the intake calls the normaliser), a minute per surviving mutant.
# Prints killed/total per file and the mutants not killed; docs/mutation.md keeps the scores
# and why each survivor is left.
#
#   bash scripts/mutation.sh                      # both groups, from scratch
#   bash scripts/mutation.sh normaliser           # one group
#   MUTANTS='smsp_connector.operations.delete.x__opt_out_stands*' bash scripts/mutation.sh guard
#   MUTATION_KEEP=1 bash scripts/mutation.sh      # reuse the copies and their cached results
#   BIN=/path/to/venv/bin bash scripts/mutation.sh   # another virtualenv (default .venv/bin)
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
BIN="${BIN:-$repo/.venv/bin}"
[[ "$BIN" = /* ]] || BIN="$repo/$BIN"
base="${MUTATION_DIR:-${TMPDIR:-/tmp}/smsp-mutation}"
groups=("$@")
[[ ${#groups[@]} -gt 0 ]] || groups=(guard normaliser)

files_of() {
    case "$1" in
        guard) echo "smsp_connector/operations/delete.py smsp_connector/warehouse/plans.py" ;;
        normaliser) echo "smsp_connector/intake/phone_numbers.py" ;;
        *) echo "unknown group $1 (guard, normaliser)" >&2; exit 2 ;;
    esac
}

tests_of() {
    case "$1" in
        guard) echo "tests/test_delete_plans.py tests/test_delete_cancel.py
            tests/test_delete_clock_changes.py tests/test_date_ranges.py
            tests/test_guard_mutants.py tests/test_plans_on_a_lake.py" ;;
        normaliser) echo "tests/test_phone_numbers.py tests/test_phone_number_mutants.py" ;;
    esac
}

# One PostgreSQL server for every mutant's test session (the plan tests on a lake need one):
# started per session, it would cost seconds for each of a thousand mutants. It stops when
# this script closes its stdin (file descriptor 9), on any exit.
mkdir -p "$base"
if [[ -z "${SMSP_TEST_POSTGRES_DSN:-}" ]]; then
    fifo="$base/postgres.stdin"
    rm -f "$fifo" "$base/postgres.dsn"
    mkfifo "$fifo"
    "$BIN/python" -m tests.postgres_server <"$fifo" >"$base/postgres.dsn" 2>"$base/postgres.log" &
    server=$!
    exec 9>"$fifo"
    trap 'exec 9>&-; wait' EXIT
    while kill -0 "$server" 2>/dev/null && [[ ! -s "$base/postgres.dsn" ]]; do sleep 0.2; done
    if [[ -s "$base/postgres.dsn" ]]; then
        SMSP_TEST_POSTGRES_DSN=$(head -1 "$base/postgres.dsn")
        export SMSP_TEST_POSTGRES_DSN
    else
        echo "no PostgreSQL for the lake tests ($base/postgres.log): they are skipped" >&2
    fi
fi

for group in "${groups[@]}"; do
    work="$base/$group"
    files=$(files_of "$group")
    if [[ "${MUTATION_KEEP:-}" != 1 ]]; then
        rm -rf "$work"
    fi
    mkdir -p "$work"
    # The code and tests as they are in this checkout (committed or not); mutants/ and the
    # cached results stay in $work.
    tar -C "$repo" --exclude=__pycache__ -cf - smsp_connector tests pyproject.toml \
        | tar -C "$work" -xf -
    "$BIN/python" - "$work/pyproject.toml" "$files" "$(tests_of "$group")" <<'EOF'
"""Point the copy's [tool.mutmut] at this group's files and tests."""
import re
import sys
from pathlib import Path

path, files, tests = Path(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split()
tests = [test for test in tests if (path.parent / test).exists()]  # new ones may be missing
text = path.read_text()
for key, values in (("only_mutate", files), ("pytest_add_cli_args_test_selection", tests)):
    listed = "[" + ", ".join(f'"{value}"' for value in values) + "]"
    text, count = re.subn(rf"(?ms)^{key} = \[.*?^\]", f"{key} = {listed}", text)
    assert count == 1, key
path.write_text(text)
EOF
    echo "== $group: $files"
    start=$(date +%s)
    # mutmut run exits non-zero when mutants survive; the report below says which.
    # shellcheck disable=SC2086
    (cd "$work" && "$BIN/mutmut" run --max-children 1 ${MUTANTS:-}) || true
    end=$(date +%s)
    (cd "$work" && "$BIN/python" - $files <<'EOF'
"""killed/total per mutated file, from mutmut's results in mutants/*.meta."""
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

print()
print(f"{'file':45} {'killed':>6} {'tested':>6} {'total':>6} {'score':>7}")
left = []
for name in sys.argv[1:]:
    meta = Path("mutants") / f"{name}.meta"
    codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
    status = Counter(status_by_exit_code[code] for code in codes.values())
    # a timeout is a mutant the tests noticed (they did not finish as they do on the code).
    killed = status["killed"] + status["timeout"]
    tested = sum(status.values()) - status["not checked"]
    score = f"{100 * killed / tested:.1f}%" if tested else "-"
    print(f"{name:45} {killed:>6} {tested:>6} {len(codes):>6} {score:>7}")
    left += [
        f"  {status_by_exit_code[code]:12} {key}"
        for key, code in sorted(codes.items())
        if status_by_exit_code[code] not in ("killed", "timeout", "not checked")
    ]
if left:
    print("\nnot killed (mutmut show <name> in the group's directory shows the change):")
    print("\n".join(left))
EOF
    )
    echo "$group: $((end - start)) s in $work"
done
