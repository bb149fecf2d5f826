"""The `smsp` command line. Each feature is one sub-command of the `main` group.

Only click is imported here: the emulator's web stack and Dagster are imported by the commands
that need them, so ``smsp --help`` and ``smsp stops list`` do not pay for them.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import NoReturn

import click

from smsp_connector.cli.audience import audience
from smsp_connector.cli.commands import cancel, push, stops
from smsp_connector.cli.lake import lake
from smsp_connector.cli.ledger import ledger
from smsp_connector.cli.plans import plans
from smsp_connector.cli.retention import retention


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("smsp-connector")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class _Main(click.Group):
    """The group whose help ends with every ``SMSP_*`` variable (imported when help is shown:
    the settings import the HTTP client)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from smsp_connector.settings import variables_help

        with formatter.section("Environment"):
            formatter.write_dl(variables_help())
        super().format_epilog(ctx, formatter)


@click.group(cls=_Main)
@click.version_option(_version(), "--version", prog_name="smsp")
@click.option(
    "--account",
    envvar="SMSP_ACCOUNT",
    show_envvar=True,
    help="Act for this SmspComponent account of the dg project (its key prefix, e.g. main): "
    "its defs.yaml gives the key variable, base URL, database, schema and label the jobs use.",
)
@click.option(
    "--project",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The dg project of --account (default: the one holding the working directory).",
)
def main(account: str | None, project: Path | None) -> None:
    """smsp: keep the SMS Partner opt-out (STOP) list in sync with your warehouse.

    Configuration comes from the environment (the variables below; SMSP_API_KEY is required,
    SMSP_DUCKDB_PATH holds the audit log the Dagster jobs share), or, with --account, from that
    account's defs.yaml in a dg project (the variables then fill in what it leaves).

    \b
    Examples:
      smsp demo                                   # the whole story on a local emulator
      smsp emulator --port 8787 --api-key dev     # a local SMS Partner for your tests
      smsp stops list --format csv
      smsp push inbox/add/export_crm.csv --dry-run
      smsp --account main push export_crm.csv --dry-run   # a Component account
      smsp stops delete --file consents.csv --confirm
      smsp cancel 5000

    Exit status: 0 done, 1 error (key, network, file), 2 usage, 3 some rows refused or failed.
    """


_EMULATOR_EXTRA = {"starlette", "uvicorn", "lxml"}


def _missing_extra(error: ImportError, what: str) -> NoReturn:
    """One line naming the extra when one of its packages is missing; any other import error
    is a bug in this package, and stays a traceback."""
    if (error.name or "").split(".")[0] not in _EMULATOR_EXTRA:
        raise error
    raise click.ClickException(
        f"{what} ({error.name} is missing): pip install 'smsp-connector[emulator]'"
    ) from None


def _configure_logging(secret: str) -> None:
    from smsp_connector.client.redaction import RedactingFilter, register_secret

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    register_secret(secret)
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])


def _termination_event() -> threading.Event:
    """An event set on SIGINT or SIGTERM. Installed before the server announces itself, so a
    signal sent as soon as the URL line appears still stops it cleanly."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stop


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--api-key",
    envvar="SMSP_API_KEY",
    show_envvar=True,
    required=True,
    help="The API key clients must send (never printed).",
)
@click.option(
    "--seed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Stop list to start with: the provider's list JSON, a bare JSON list, or a CSV with "
    "phoneNumber,createdAt columns (an id column is ignored: ids are assigned in file order).",
)
@click.option("--demo-size", default=0, type=click.IntRange(min=0), help="Add N demo numbers.")
@click.option("--latency-ms", default=0.0, type=click.FloatRange(min=0), help="Added latency.")
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    help="Requests per second across /v1; above it HTTP 429 with Retry-After.",
)
@click.option("--fail-rate", default=0.0, type=click.FloatRange(0, 1), help="P(HTTP 500/503).")
@click.option(
    "--reset-rate", default=0.0, type=click.FloatRange(0, 1), help="P(connection dropped)."
)
@click.option(
    "--error-status",
    default="200",
    show_default=True,
    type=click.Choice(["200", "400"]),
    help="HTTP status of coded errors (success=false).",
)
@click.option("--random-seed", type=int, help="Seed of the fault dice (reproducible runs).")
@click.option(
    "--lang",
    type=click.Choice(["fr", "en"]),
    help="Language of the answers' messages. Default: each endpoint's own documentation page "
    "(message-cancel in French, stop-sms/delete as its page writes it, the others in English).",
)
def emulator(
    host: str,
    port: int,
    api_key: str,
    seed: Path | None,
    demo_size: int,
    latency_ms: float,
    rate_limit: float | None,
    fail_rate: float,
    reset_rate: float,
    error_status: str,
    random_seed: int | None,
    lang: str | None,
) -> None:
    """Run a local SMS Partner API server until SIGINT or SIGTERM."""
    try:
        from smsp_connector.emulator import EmulatorServer, FaultSettings
        from smsp_connector.emulator.seed import SeedError
    except ImportError as error:
        _missing_extra(error, "the emulator needs its extra")
    _configure_logging(api_key)
    try:
        faults = FaultSettings(
            latency_ms=latency_ms,
            rate_limit=rate_limit,
            fail_rate=fail_rate,
            reset_rate=reset_rate,
            error_status=int(error_status),
        )
    except ValueError as exc:  # a value click's ranges let through, e.g. --latency-ms inf
        raise click.UsageError(str(exc)) from exc
    stop = _termination_event()
    try:
        server = EmulatorServer(
            api_key=api_key,
            host=host,
            port=port,
            faults=faults,
            seed=seed,
            demo_size=demo_size,
            random_seed=random_seed,
            lang=lang,
        )
        server.start()
    except SeedError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
    try:
        click.echo(f"stop list: {server.state.stop_count()} entries", err=True)
        click.echo(f"SMS Partner emulator listening on {server.base_url} (api key: set)")
        stop.wait()
    finally:
        server.stop()
    click.echo("SMS Partner emulator stopped", err=True)


@main.command()
@click.option(
    "--demo-size", default=25, show_default=True, help="Opt-outs the emulator starts with."
)
def demo(demo_size: int) -> None:
    """Run the end-to-end story against an embedded emulator on loopback and print it.

    Nothing leaves the machine and no API key is needed: the emulator gets a throwaway one.
    """
    try:
        from smsp_connector.cli.demo import DemoFailed, run_demo
    except ImportError as error:
        _missing_extra(error, "the demo needs the emulator extra")
    try:
        run_demo(click.echo, demo_size=demo_size)
    except DemoFailed as error:
        raise click.ClickException(str(error)) from None


main.add_command(stops)
main.add_command(push)
main.add_command(cancel)
main.add_command(plans)
main.add_command(ledger)
main.add_command(audience)
main.add_command(lake)
main.add_command(retention)


if __name__ == "__main__":
    main()
