"""``smsp demo``: the whole pipeline against an embedded emulator, printed step by step.

Nothing leaves the machine: the emulator listens on a free loopback port with a throwaway key.
The DuckDB file, the sample CSV files and the exports stay in ``demo_output/``. The demo is a
consumer of the library as a data team's code would be: ``build_definitions`` runs the jobs in
process, and the warehouse's public functions read back what they did (no SQL of its own).
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from smsp_connector.client import MutationKind, SmspClient
from smsp_connector.dagster import build_definitions
from smsp_connector.dagster.in_process import JobRun
from smsp_connector.emulator import EmulatorServer
from smsp_connector.settings import Settings
from smsp_connector.warehouse import (
    Outcome,
    Warehouse,
    outcome_counts,
    published_stop_list,
    recent_changes,
    unsent_rows,
)

Echo = Callable[[str], None]

CRM_EXPORT = (
    # What a French CRM export looks like: Windows-1252, semicolons, French headers, a BOM-less
    # file with blank lines, spaces and dots in numbers, and the usual mistakes.
    "Nom;Prénom;Téléphone portable;Date de désinscription\n"
    "Martin;Léa;06 12 34 56 78;02/11/2026\n"
    "Bernard;Hugo;+33 6 98 76 54 32;03/11/2026\n"
    "\n"
    "Petit;Chloé;3.36123E+10;03/11/2026\n"
    "Durand;Louis;06.12.34.56.78;04/11/2026\n"
    "Leroy;Emma;0692123456;05/11/2026\n"
    "Moreau;Jules;abc;05/11/2026\n"
    "Simon;Manon;{listed};06/11/2026\n"
)
CAMPAIGN_RECIPIENTS = ("+33645454545", "+33678787878")
"""Customers who never opted out: a campaign may target them."""


class _Pipeline:
    """The account's definitions, built by :func:`build_definitions` as any deployment's are,
    run in-process job by job."""

    def __init__(self, emulator: EmulatorServer, api_key: str, output: Path) -> None:
        settings = Settings(
            api_key=api_key,
            base_url=emulator.base_url,
            rate_limit=50,
            database=str(output / "warehouse.duckdb"),
            export_dir=str(output / "exports"),
            inbox_dir=str(output / "inbox"),
        )
        self.smsp = build_definitions(settings)
        self.warehouse = Warehouse.at(settings.database, schema=settings.schema)
        self.runs: list[tuple[str, str]] = []
        """(operation, run id) of each push, delete and cancel run, in order."""

    def refresh(self) -> JobRun:
        return self.smsp.execute(self.smsp.jobs.refresh.name)

    def mutate(self, operation: str, *, refresh: bool, **config: Any) -> JobRun:
        """A push, delete or cancel job; without ``refresh``, its change alone."""
        keys = self.smsp.keys
        job = self.smsp.jobs.by_operation()[operation]
        run_config = keys.op_config(keys.mutation(operation), **config)
        assets = None if refresh else [keys.mutation(operation)]
        result = self.smsp.execute(job.name, run_config, assets=assets)
        self.runs.append((operation, result.run_id))
        return result


def run_demo(echo: Echo = print, demo_size: int = 25, output: Path = Path("demo_output")) -> None:
    api_key = secrets.token_urlsafe(24)
    shutil.rmtree(output, ignore_errors=True)
    (output / "inbox").mkdir(parents=True)
    with EmulatorServer(api_key=api_key, demo_size=demo_size, random_seed=7) as emulator:
        echo(f"SMS Partner emulator on {emulator.base_url} with {demo_size} demo opt-outs")
        pipeline = _Pipeline(emulator, api_key, output)

        _report(pipeline.refresh(), echo, "1. Extract the stop list into DuckDB")
        listed = published_stop_list(pipeline.warehouse)

        crm = output / "inbox" / "export_crm.csv"
        crm.write_bytes(CRM_EXPORT.format(listed=listed.phone_number[0]).encode("cp1252"))
        echo(f"\n2. Push {crm} (Windows-1252, ';', French headers) to the stop list:")
        _report(pipeline.mutate(MutationKind.ADD.value, refresh=True, csv_path=str(crm)), echo)
        _print_rejections(crm, echo)

        consents = output / "inbox" / "consents.csv"
        consents.write_text(_consents(listed), encoding="utf-8")
        echo(f"\n3. Deletions from {consents}, dry run first (the default):")
        _report(
            pipeline.mutate(MutationKind.DELETE.value, refresh=False, csv_path=str(consents)), echo
        )
        _print_audit(pipeline, echo)
        echo("   ... then confirmed (confirm: true):")
        _report(
            pipeline.mutate(
                MutationKind.DELETE.value, refresh=True, csv_path=str(consents), confirm=True
            ),
            echo,
        )

        message_id = _schedule_by_mistake(emulator, api_key, echo)
        cancel = output / "inbox" / "cancel.csv"
        cancel.write_text(f"message_id\n{message_id}\n", encoding="utf-8")
        echo(f"\n5. Roll it back: cancel message {message_id} from {cancel}, twice:")
        _report(
            pipeline.mutate(MutationKind.CANCEL.value, refresh=False, csv_path=str(cancel)), echo
        )
        _report(
            pipeline.mutate(MutationKind.CANCEL.value, refresh=False, csv_path=str(cancel)), echo
        )

        _print_history_and_exports(pipeline, output, echo)
        _print_audit_summary(pipeline, echo)
        _print_request_counts(emulator, echo)
    echo(f"\nDuckDB file, sample CSV files and exports kept in {output}/ (schema smsp).")


def _consents(listed: pd.DataFrame) -> str:
    """One deletion with fresh consent, one without evidence, one whose opt-out came later."""
    first, second, third = listed.phone_number[1:4]
    consent = (listed.created_at[1] + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S%z")
    before = (listed.created_at[3] - timedelta(days=30)).strftime("%Y-%m-%d")
    return (
        "phone,consent_at,consent_source\n"
        f"{first},{consent},web form re-subscription #8812\n"
        f"{second},,\n"
        f"{third},{before},shop loyalty card\n"
    )


def _schedule_by_mistake(emulator: EmulatorServer, api_key: str, echo: Echo) -> int:
    when = emulator.state.clock.now() + timedelta(hours=2)
    when = when.replace(minute=when.minute - when.minute % 5, second=0, microsecond=0)
    with SmspClient(api_key, base_url=emulator.base_url) as client:
        sent = client.send_sms(CAMPAIGN_RECIPIENTS, "Soldes -50% ce week-end", scheduled_at=when)
    echo(
        f"\n4. A campaign is scheduled by mistake for {when:%Y-%m-%d %H:%M %Z} through /send: "
        f"message_id {sent.message_id}, {sent.nb_sms} SMS, {sent.cost} {sent.currency}"
    )
    return sent.message_id


class DemoFailed(RuntimeError):
    """A run of the demo failed: the message names the step and its error."""


def _report(result: JobRun, echo: Echo, title: str | None = None) -> None:
    """Print a run's materializations and failed checks; a failed run stops the demo with the
    failed steps' own errors (a later step would only fail again, less clearly)."""
    if title:
        echo(f"\n{title}:")
    if not result.success:
        errors = "; ".join(result.errors or ("no step",))
        raise DemoFailed(f"run {result.run_id[:8]} failed; {errors}")
    echo(f"   run {result.run_id[:8]} succeeded")
    for key, metadata in result.materialized:
        shown = {
            name.removeprefix("dagster/"): value
            for name, value in metadata.items()
            if (isinstance(value, bool | int) and value is not False) or name == "dry_run"
        }
        facts = ", ".join(f"{name} {value}" for name, value in shown.items())
        echo(f"   {key:<30} {facts}")
    if result.failed_checks:
        echo(f"   checks that did not pass: {', '.join(result.failed_checks)}")


def _print_rejections(source: Path, echo: Echo) -> None:
    report = source.with_name(source.stem + ".rejected.csv")
    echo(f"   rejected rows, also in {report.name} and smsp.input_rejections:")
    _table(pd.read_csv(report, dtype=str), echo)


def _print_audit(pipeline: _Pipeline, echo: Echo) -> None:
    """The final audit row of each input row of the latest run."""
    _, run_id = pipeline.runs[-1]
    rows = unsent_rows(pipeline.warehouse, run_id, tuple(Outcome))
    _table(rows.rename(columns={"source_row": "row"}), echo)


def _print_history_and_exports(pipeline: _Pipeline, output: Path, echo: Echo) -> None:
    changes, total = recent_changes(pipeline.warehouse, limit=12)
    echo(f"\n6. smsp.stop_list_history, its latest changes ({total} rows in all):")
    observed = changes["observed_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    shown = changes.assign(observed_at=observed)
    _table(shown[["observed_at", "change", "phone_number", "stop_id"]], echo)
    echo("\n7. Suppression exports for the CRM:")
    for name in ("suppression_list.csv", "suppression_list_sha256.csv"):
        lines = (output / "exports" / name).read_text(encoding="utf-8").splitlines()
        echo(f"   exports/{name} ({len(lines) - 1} rows), first lines:")
        for line in lines[:3]:
            echo(f"     {line}")


def _print_audit_summary(pipeline: _Pipeline, echo: Echo) -> None:
    echo("\n8. smsp.audit_log (final state of each row, by run and outcome):")
    rows = [
        {"operation": operation, "run": run_id[:8], "outcome": outcome.value, "rows": count}
        for operation, run_id in pipeline.runs
        for outcome, count in sorted(outcome_counts(pipeline.warehouse, run_id, operation).items())
    ]
    _table(pd.DataFrame(rows), echo)


def _print_request_counts(emulator: EmulatorServer, echo: Echo) -> None:
    echo("\nRequests the emulator answered, by endpoint and outcome:")
    for endpoint, outcomes in sorted(emulator.stats()["endpoints"].items()):
        summary = ", ".join(f"{key} x{count}" for key, count in sorted(outcomes.items()))
        echo(f"   {endpoint:<16} {summary}")


def _table(frame: pd.DataFrame, echo: Echo) -> None:
    for line in frame.to_string(index=False).splitlines():
        echo(f"     {line}")
