"""smsp-connector: keep the SMS Partner stop list in sync with your warehouse.

``smsp_connector.SmspComponent`` is the Dagster Component (imported on first use, so that the
``smsp`` command and the Dagster-free layers do not pay for Dagster).
"""

from typing import Any

_LAZY = {"SmspComponent": "smsp_connector.dagster.component"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'smsp_connector' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
