"""The Dagster code location of this deployment (loaded by ``workspace.yaml``)."""

from assets.definitions import defs

__all__ = ["defs"]
