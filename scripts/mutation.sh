#!/usr/bin/env bash
# Mutation testing (make mutation) of the deletion guard and plans (operations/delete.py,
# warehouse/plans.py) and of the phone-number normaliser (intake/phone_numbers.py), with mutmut
# on ONE worker process; what is mutated and the tests run: [tool.mutmut] in pyproject.toml.
# Prints killed/total per file and the surviving mutants; docs/mutation.md keeps the scores and
# why each survivor is left.
#
#   bash scripts/mutation.sh                 # a fresh run: mutants/ is made again
#   MUTATION_KEEP=1 bash scripts/mutation.sh # reuse mutants/ and the results cached there
#   BIN=/path/to/venv/bin bash scripts/mutation.sh   # another virtualenv (default .venv/bin)
#
# mutmut works in mutants/ at the repository's root (ignored by git); nothing else is written.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN="${BIN:-.venv/bin}"

if [[ "${MUTATION_KEEP:-}" != 1 ]]; then
    rm -rf mutants
fi

start=$(date +%s)
# mutmut run exits non-zero when mutants survive; the report below says which.
"$BIN/mutmut" run --max-children 1 || true
end=$(date +%s)

"$BIN/python" - <<'EOF'
"""killed/total per mutated file, from mutmut's results in mutants/*.meta."""
import json
import tomllib
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

files = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"]
print()
print(f"{'file':45} {'killed':>6} {'total':>6} {'score':>7}")
left = []
for name in files:
    meta = Path("mutants") / f"{name}.meta"
    codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
    status = Counter(status_by_exit_code[code] for code in codes.values())
    # a timeout is a mutant the tests noticed (they did not finish as they do on the code).
    killed = status["killed"] + status["timeout"]
    total = sum(status.values())
    score = f"{100 * killed / total:.1f}%" if total else "-"
    print(f"{name:45} {killed:>6} {total:>6} {score:>7}")
    left += [
        f"  {status_by_exit_code[code]:12} {key}"
        for key, code in sorted(codes.items())
        if status_by_exit_code[code] not in ("killed", "timeout")
    ]
if left:
    print("\nnot killed (mutmut show <name> shows the change):")
    print("\n".join(left))
EOF
echo
echo "mutation run: $((end - start)) s"
