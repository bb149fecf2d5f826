"""`smsp demo` (what `make demo` runs) tells the whole story and ends cleanly."""

from __future__ import annotations

import subprocess
import sys

from smsp_connector.demo import run_demo


def test_demo_walks_through_every_step():
    lines: list[str] = []

    run_demo(lines.append, demo_size=10)

    text = "\n".join(lines)
    assert "1. List: 10 numbers on the stop list" in text
    assert "'3.36123E+10'            -> rejected" in text
    assert "+262692123456    applied" in text
    assert "already_done (code 4: already gone)" in text
    assert "cancel again: already_done (code 5: already cancelled)" in text
    assert "status after:  Cancelled" in text
    assert "stop-sms/add     code:200 x3, code:3 x1, code:9 x1" in text


def test_demo_command_exits_zero():
    done = subprocess.run(
        [sys.executable, "-m", "smsp_connector.cli", "demo", "--demo-size", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "status after:  Cancelled" in done.stdout
