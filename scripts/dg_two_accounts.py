"""``dg list defs`` of a project with two accounts (``main`` and ``agency``, the second with a
table push source), scaffolded as tests/test_component.py does: issue 16's before/after figure.
Prints each section's names, one a line (``--json``: dg's own JSON).

    .venv/bin/python scripts/dg_two_accounts.py [--json]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.dg_project import write_project

DG = str(Path(sys.executable).with_name("dg"))


def dg(project: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(DG).parent}:{os.environ['PATH']}"}
    done = subprocess.run(
        [DG, *args], cwd=project, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = write_project(Path(folder) / "acme_project")
        for account in ("main", "agency"):
            dg(root, "scaffold", "defs", "smsp_connector.SmspComponent", f"accounts/{account}")
        agency = root / "acme" / "defs" / "accounts" / "agency" / "defs.yaml"
        source = """\
            push_sources:
              - name: crm
                table: crm.unsubscribes
                phone_column: mobile
                cursor_column: unsubscribed_at
            """
        agency.write_text(
            agency.read_text().replace("data/warehouse.duckdb", "data/agency.duckdb")
            + textwrap.indent(textwrap.dedent(source), "  ")
        )
        listed = dg(root, "list", "defs", "--json")
    if "--json" in sys.argv[1:]:
        print(listed, end="")
        return
    for section, entries in json.loads(listed).items():
        names = sorted(_name(entry) for entry in entries)
        print(f"{section} ({len(names)}):")
        for name in names:
            print(f"  {name}")


def _name(entry: dict) -> str:
    if "asset_key" in entry and "name" in entry:  # a check
        return f"{entry['asset_key']}:{entry['name']}"
    return entry.get("asset_key") or entry.get("name") or entry.get("key") or json.dumps(entry)


if __name__ == "__main__":
    main()
