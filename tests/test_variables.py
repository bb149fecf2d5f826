"""Every ``SMSP_*`` variable is read by the settings, listed in ``smsp --help`` and described in
the README (issue 16): one registry, ``settings.VARIABLES``, and nothing read beside it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from smsp_connector.cli.main import main
from smsp_connector.settings import ENVIRONMENT, VARIABLES, AlertSettings, Settings

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "smsp_connector"
NAME = re.compile(r"\bSMSP_[A-Z0-9_]*[A-Z0-9]\b")

READERS_OF_THE_ENVIRONMENT = {
    "settings.py": "the SMSP_* variables",
    "warehouse/object_store.py": "AWS_ENDPOINT_URL(_S3), the AWS chain's endpoint",
    "dagster/alerts.py": "the API key variables' values, to mask them in a message",
    "cli/main.py": "click's envvar of --account",
}
"""The modules that read the process's environment, and what they read there."""


@pytest.mark.repo  # the source tree and README
def test_every_variable_named_in_the_package_is_a_registered_one():
    named = {
        name
        for path in PACKAGE.rglob("*.py")
        for name in NAME.findall(path.read_text(encoding="utf-8"))
    }
    assert named - set(VARIABLES) == set()
    assert set(ENVIRONMENT) <= set(VARIABLES)


@pytest.mark.repo  # the source tree and README
def test_only_the_settings_read_the_environment():
    reading = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if re.search(r"os\.environ|getenv\(|envvar=", path.read_text(encoding="utf-8"))
    }
    assert reading == set(READERS_OF_THE_ENVIRONMENT)


def test_smsp_help_lists_every_variable_with_the_settings_default():
    shown = CliRunner().invoke(main, ["--help"], terminal_width=200)

    assert shown.exit_code == 0, shown.output
    listed = dict(
        re.findall(r"^  (SMSP_[A-Z0-9_]+)\s+(.*)$", shown.output.split("Environment:")[1], re.M)
    )
    assert list(listed) == list(VARIABLES)
    assert listed["SMSP_MAX_WORKERS"].endswith(f"[default: {Settings().max_workers}]")
    assert listed["SMSP_EXPORT_DIR"].endswith("[default: exports]")
    assert listed["SMSP_PLAN_MAX_AGE_HOURS"].endswith("[default: 168]")
    assert "[default" not in listed["SMSP_API_KEY"]


@pytest.mark.repo  # the source tree and README
def test_the_readme_describes_every_variable():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    described = set(re.findall(r"^\| `(SMSP_[A-Z0-9_]+)`", readme, re.M)) | set(
        re.findall(r"`(SMSP_ALERT_SLACK_[A-Z]+)`", readme)
    )
    assert set(VARIABLES) - described - {"SMSP_ACCOUNT"} == set()
    assert "SMSP_ACCOUNT" in readme


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, AlertSettings()),
        (
            {
                "SMSP_ALERT_WEBHOOK_URL": " https://hooks.example/T0/B0/x ",
                "SMSP_ALERT_SLACK_TOKEN": "",
                "SMSP_ALERT_SLACK_CHANNEL": "#stops",
            },
            AlertSettings("https://hooks.example/T0/B0/x", None, "#stops"),
        ),
    ],
)
def test_alert_destinations_come_from_the_settings(environ, expected):
    alerts = AlertSettings.from_env(environ)

    assert alerts == expected
    assert "hooks.example" not in repr(alerts)


def test_smsp_help_does_not_import_pandas_nor_duckdb():
    """``smsp --help`` lists the variables and their defaults without loading the data stack
    (a second or more on a small machine)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from smsp_connector.cli.main import main\n"
        "assert CliRunner().invoke(main, ['--help']).exit_code == 0\n"
        "print(sorted(m for m in ('pandas', 'duckdb', 'pandera', 'dagster') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )

    assert done.stdout.strip() == "[]", done.stdout + done.stderr
