"""The package's layers import only downward (issue 16): each subpackage of ``smsp_connector``
imports only the layers below it, and only the Dagster layer imports Dagster. Read from the
source's import statements (those inside functions too) by scripts/architecture_figures.py,
so a new upward import fails here instead of silently bending the architecture.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.repo

ROOT = Path(__file__).resolve().parents[1]

LAYERS = (
    "defaults", "client", "emulator", "intake", "warehouse", "settings", "operations", "dagster",
    "cli",
)  # fmt: skip
"""Bottom to top: a layer may import any layer before it in this tuple, none after."""

NOT_A_LAYER = {"__init__"}
"""The package's ``__init__`` re-exports the public names of every layer."""


def _figures():
    path = ROOT / "scripts" / "architecture_figures.py"
    spec = importlib.util.spec_from_file_location("smsp_architecture_figures", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    """Which layer imports which, read once for the tests of the package as it is."""
    figures = _figures()
    return figures.imports_between_layers(figures.modules())


def test_every_layer_imports_only_the_layers_below_it(edges):
    assert set(edges) - NOT_A_LAYER <= set(LAYERS), "a folder that is no layer: name its place"
    assert not [source for source, targets in edges.items() if "__init__" in targets], (
        "a layer imports a name the package re-exports: import it from its own layer"
    )
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in edges.items()
        if source not in NOT_A_LAYER
        for target in targets
        if target != "<dagster>" and LAYERS.index(target) > LAYERS.index(source)
    )
    assert upward == []


def test_only_the_dagster_layer_imports_dagster(edges):
    importing = sorted(source for source, targets in edges.items() if "<dagster>" in targets)
    assert importing == ["dagster"]


def test_the_scan_sees_an_upward_import(tmp_path, monkeypatch):
    """The scan itself: imports inside a function and relative imports are edges too."""
    figures = _figures()
    package = tmp_path / "smsp_connector"
    (package / "client").mkdir(parents=True)
    (package / "client" / "bad.py").write_text(
        "def f():\n    from smsp_connector.warehouse import Warehouse\n    import dagster\n"
    )
    (package / "intake").mkdir()
    (package / "intake" / "worse.py").write_text("from ..operations import run\nfrom . import x\n")
    (package / "warehouse").mkdir()
    (package / "warehouse" / "root.py").write_text(
        "from smsp_connector import dagster, SmspComponent\nfrom .. import operations\n"
    )
    (package / "dagster").mkdir()
    (package / "operations").mkdir()
    monkeypatch.setattr(figures, "PACKAGE", package)

    edges = figures.imports_between_layers(figures.modules())

    assert edges == {
        "client": {"warehouse", "<dagster>"},
        "intake": {"operations"},
        "warehouse": {"dagster", "operations", "__init__"},
    }


def test_only_the_command_line_imports_the_emulator(edges):
    """The emulator is a local peer for the demo, the tests and ``smsp emulator``: no layer of
    the library depends on it (the demo lives in ``cli/``)."""
    assert sorted(source for source, targets in edges.items() if "emulator" in targets) == ["cli"]
