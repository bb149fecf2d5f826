"""Figures on the package's shape, for issue 16's before/after: lines per layer, the longest
functions, where each setting's default is written, and which layer imports which.

    .venv/bin/python scripts/architecture_figures.py [--top 15]

Lines are physical lines of ``smsp_connector/<layer>/``; a default is "written" where a
literal equal to a :class:`Settings` field's default is a parameter default, a ``default=``
argument, a class attribute's value, an upper-case constant or the fallback of
``.get(key, fallback)`` (a literal of equal value and another meaning counts too).

    .venv/bin/python scripts/architecture_figures.py --package /tmp/old/smsp_connector
measures another tree (an older commit's ``git worktree``) with the same rules.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
from collections import Counter, defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "smsp_connector"


def layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text())) for path in sorted(PACKAGE.rglob("*.py"))]


def lines_per_layer(trees) -> Counter:
    counts: Counter = Counter()
    for path, _ in trees:
        counts[layer_of(path)] += len(path.read_text().splitlines())
    return counts


def longest_functions(trees, top: int) -> list[tuple[int, str]]:
    found = []
    for path, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{path.relative_to(PACKAGE.parent)}:{node.name}"
                found.append((node.end_lineno - node.lineno + 1, name))
    return sorted(found, reverse=True)[:top]


def _default_literals(trees):
    """(value, place) for every literal written where a default is."""
    for path, tree in trees:
        where = str(path.relative_to(PACKAGE.parent))
        for node in ast.walk(tree):
            values = []
            if isinstance(node, ast.arguments):
                values = [*node.defaults, *(d for d in node.kw_defaults if d is not None)]
            elif isinstance(node, ast.Call):
                values = [kw.value for kw in node.keywords if kw.arg == "default"]
                func = node.func
                if isinstance(func, ast.Attribute) and func.attr == "get" and len(node.args) == 2:
                    values.append(node.args[1])
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                values = [node.value]
            elif isinstance(node, ast.Assign) and all(
                isinstance(target, ast.Name) and target.id.isupper() for target in node.targets
            ):
                values = [node.value]  # a constant: DEFAULT_REGION = "FR"
            for value in values:
                if isinstance(value, ast.Constant) and value.value not in (None, True, False):
                    yield value.value, f"{where}:{value.lineno}"


def default_places(trees) -> dict[str, list[str]]:
    from smsp_connector.settings import PushSource, Settings

    wanted = {}
    for field in (*dataclasses.fields(Settings), *dataclasses.fields(PushSource)):
        if (
            field.default is not dataclasses.MISSING
            and isinstance(field.default, str | int | float)
            and not isinstance(field.default, bool)
            and field.default not in ("", 0)
        ):
            names = wanted.setdefault(field.default, [])
            if field.name not in names:
                names.append(field.name)
    places = defaultdict(list)
    for value, place in _default_literals(trees):
        for default, names in wanted.items():
            if type(value) in (int, float) and type(default) in (int, float):
                same = float(value) == float(default) and not isinstance(value, bool)
            else:
                same = value == default
            if same:
                places[f"{'/'.join(names)} = {default!r}"].append(place)
    return places


def imports_between_layers(trees) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path, tree in trees:
        source = layer_of(path)
        package = path.relative_to(PACKAGE.parent).parts[:-1]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = list(package[: len(package) - node.level + 1]) if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                names = [module]
                if module == "smsp_connector":  # from smsp_connector import dagster, SmspComponent
                    names = [f"{module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "smsp_connector" and len(parts) > 1 and parts[1] != source:
                    layer = parts[1]
                    if not (PACKAGE / layer).is_dir() and not (PACKAGE / f"{layer}.py").exists():
                        layer = "__init__"  # a name the package's __init__ re-exports
                    edges[source].add(layer)
                elif parts[0].startswith("dagster"):
                    edges[source].add("<dagster>")
    return edges


def main() -> None:
    global PACKAGE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--package", type=Path, default=PACKAGE)
    arguments = parser.parse_args()
    top = arguments.top
    PACKAGE = arguments.package.resolve()
    trees = modules()
    counts = lines_per_layer(trees)
    print("lines per layer:")
    for name, count in sorted(counts.items(), key=lambda item: -item[1]):
        print(f"  {name:<12} {count:>6}")
    print(f"  {'total':<12} {sum(counts.values()):>6}")
    print(f"\nlongest {top} functions (lines):")
    for length, name in longest_functions(trees, top):
        print(f"  {length:>4}  {name}")
    print("\nplaces each setting's default is written (settings.py included):")
    for default, places in sorted(default_places(trees).items(), key=lambda item: -len(item[1])):
        print(f"  {len(places):>3}  {default}")
    region = sum(
        isinstance(node, ast.Constant) and node.value == "FR"
        for _, tree in trees
        for node in ast.walk(tree)
    )
    print(f"  the literal 'FR' anywhere: {region}")
    print("\nimports between layers:")
    for source, targets in sorted(imports_between_layers(trees).items()):
        print(f"  {source:<12} -> {', '.join(sorted(targets))}")


if __name__ == "__main__":
    main()
