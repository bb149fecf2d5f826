"""Running the code location through the dagster command, in subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def dagster_cli(
    env: dict[str, str], *args: str, timeout: float = 240
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
