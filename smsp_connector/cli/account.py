"""The settings a command acts with: the ``SMSP_*`` variables, or a Component account's."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from smsp_connector.settings import Settings


def current_settings() -> Settings:
    """The environment's settings; with ``smsp --account NAME``, that account's, read from its
    ``defs.yaml`` in the dg project (:mod:`smsp_connector.dagster.accounts`). Read once per
    command."""
    context = click.get_current_context(silent=True)
    root = context.find_root() if context is not None else None
    if root is not None and "settings" in root.meta:
        return root.meta["settings"]
    account = root.params.get("account") if root is not None else None
    if account:
        from smsp_connector.dagster.accounts import account_settings

        project = root.params.get("project")
        settings = account_settings(account, Path(project) if project else None)
    else:
        from smsp_connector.settings import Settings

        settings = Settings.from_env()
    if root is not None:
        root.meta["settings"] = settings
    return settings
