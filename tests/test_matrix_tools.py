"""The lowest matrix cell installs the test tools pinned to this environment's versions
(scripts/matrix.py ``test_tools``); a tool that requires a newer release of one of the
library's own dependencies than its declared lower bound lifts that bound in the cell, and the
cell fails ("lower bound not tested"). CI found it late, after the install (mutmut 3.8 requires
click>=8.4.2 and, through textual, rich>=14.2.0): this test finds it in make test, offline,
from the installed metadata."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

pytestmark = pytest.mark.repo

ROOT = Path(__file__).resolve().parents[1]


def _matrix():
    spec = importlib.util.spec_from_file_location("smsp_matrix", ROOT / "scripts" / "matrix.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _requirements_of(name: str) -> list[Requirement]:
    try:
        texts = importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    chosen = []
    for text in texts:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            chosen.append(requirement)
    return chosen


def _lifted_bounds(tools: list[str], declared: dict[str, Version]) -> list[str]:
    """Each requirement, anywhere below the pinned tools, whose lower bound on one of the
    library's dependencies is above the library's own."""
    found, seen = [], set()
    queue = [(Requirement(tool).name, Requirement(tool).name) for tool in tools]
    while queue:
        name, path = queue.pop()
        if canonicalize_name(name) in seen:
            continue
        seen.add(canonicalize_name(name))
        for requirement in _requirements_of(name):
            dependency = canonicalize_name(requirement.name)
            lows = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==")]
            if dependency in declared and lows and max(lows) > declared[dependency]:
                found.append(f"{path} requires {requirement} (declared >={declared[dependency]})")
            if dependency not in declared:
                queue.append((requirement.name, f"{path} -> {requirement.name}"))
    return sorted(found)


def test_no_pinned_test_tool_lifts_a_declared_lower_bound():
    matrix = _matrix()
    package = matrix.PACKAGE
    requirements = [Requirement(text) for text in importlib.metadata.requires(package)]
    base = [r for r in requirements if r.marker is None]
    declared = {
        canonicalize_name(r.name): Version(s.version)
        for r in base
        for s in r.specifier
        if s.operator == ">="
    }
    lowest = matrix.CELLS["lowest-3.11"]
    extras = {*matrix.readme_extras(), *lowest.extras}
    # Dagster's own libraries follow the cell's Dagster (not pinned here), so their metadata in
    # this environment says nothing about the cell: only the tools pinned with == are walked.
    pinned = [t for t in matrix.test_tools(requirements, package, extras) if "==" in t]
    assert pinned, "the matrix pins no test tool: this test would check nothing"
    assert _lifted_bounds(pinned, declared) == []
