"""A data team's own dg project, written under a temporary folder as a user would: a
pyproject with [tool.dg], a package ``acme`` whose definitions load its ``defs/`` folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

PYPROJECT = """\
[project]
name = "acme"
version = "0.1.0"

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "acme"
"""

DEFINITIONS = """
from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
"""


def write_project(root: Path) -> Path:
    """The project's skeleton at ``root`` (no component yet); returns ``root``."""
    (root / "acme" / "defs").mkdir(parents=True)
    (root / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (root / "acme" / "__init__.py").write_text("")
    (root / "acme" / "defs" / "__init__.py").write_text("")
    (root / "acme" / "definitions.py").write_text(DEFINITIONS)
    return root
