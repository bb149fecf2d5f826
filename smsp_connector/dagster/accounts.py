"""One Component account's settings outside Dagster: what ``smsp --account NAME`` acts for.

A dg project holds its accounts as ``defs.yaml`` files of ``smsp_connector.SmspComponent``
anywhere under its folder. The account named ``NAME`` (its label: the key prefix, ``/`` as
``_``) is found there, its attributes resolved as ``dg`` resolves them (``{{ env(...) }}``
templates included), and the settings the jobs use are built from them; what the Component
does not set comes from the ``SMSP_*`` variables as for any ``smsp`` command. Relative paths
(database, exports, inbox) are the project root's, where ``dg`` runs the code location, so the
command writes the same audit log as the jobs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from smsp_connector.dagster.component import SmspComponent
from smsp_connector.settings import Settings, SettingsError
from smsp_connector.warehouse import is_local_database
from smsp_connector.warehouse.object_store import is_object_store

COMPONENT_TYPE = "smsp_connector.SmspComponent"
_SKIPPED_FOLDERS = {"node_modules", "__pycache__", "site-packages"}


@dataclass(frozen=True, slots=True)
class Account:
    """One account of a dg project: its ``defs.yaml`` and resolved Component."""

    path: Path
    component: SmspComponent

    @property
    def label(self) -> str:
        return self.component.settings().account_label


def project_root(start: Path) -> Path:
    """The dg project holding ``start``: the nearest folder upwards whose ``pyproject.toml``
    has a ``[tool.dg]`` table (or that holds a ``dg.toml``)."""
    import tomllib

    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / "dg.toml").is_file():
            return folder
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            try:
                tool = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
            except (tomllib.TOMLDecodeError, UnicodeDecodeError):
                continue
            if "dg" in tool:
                return folder
    raise SettingsError(
        f"no dg project in {start.resolve()} or its parents (a pyproject.toml with [tool.dg]); "
        "run the command inside the project, or give --project"
    )


def project_accounts(root: Path) -> Iterator[Account]:
    """Every SmspComponent account under ``root``, in path order."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(
            name for name in subfolders if not name.startswith(".") and name not in _SKIPPED_FOLDERS
        )
        if "defs.yaml" in files:
            yield from _accounts_in(Path(folder) / "defs.yaml")


def _accounts_in(path: Path) -> Iterator[Account]:
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise SettingsError(f"{path}: not readable YAML ({error})") from None
    for document in documents:
        if isinstance(document, dict) and document.get("type") == COMPONENT_TYPE:
            attributes = yaml.safe_dump(document.get("attributes") or {})
            try:
                component = SmspComponent.resolve_from_yaml(attributes)
            except Exception as error:  # pydantic's or a resolver's, as dg check defs shows it
                raise SettingsError(f"{path}: {error}".splitlines()[0]) from None
            yield Account(path, component)


def account_settings(name: str, project: Path | None = None) -> Settings:
    """The settings of the account labelled ``name`` in the dg project at ``project`` (or the
    one holding the working directory)."""
    root = project_root(project or Path.cwd())
    accounts = list(project_accounts(root))
    chosen = [account for account in accounts if account.label == name]
    if not chosen:
        found = ", ".join(sorted(account.label for account in accounts)) or "none"
        raise SettingsError(f"no SmspComponent account {name!r} in {root} (accounts: {found})")
    if len(chosen) > 1:
        paths = ", ".join(str(account.path) for account in chosen)
        raise SettingsError(f"account {name!r} is defined more than once: {paths}")
    settings = Settings.from_env(**chosen[0].component.configured())
    local = {
        "database": is_local_database(settings.database),
        "export_dir": not is_object_store(settings.export_dir),
        "inbox_dir": not is_object_store(settings.inbox_dir),
    }
    return replace(
        settings,
        # relative to the project (an absolute path stays as it is)
        **{field: str(root / getattr(settings, field)) for field, yes in local.items() if yes},
    )
