"""``smsp demo``: the whole pipeline against an embedded emulator, printed step by step.

Nothing leaves the machine: the emulator listens on a free loopback port with a throwaway key.
The DuckDB file, the sample CSV files and the exports stay in ``demo_output/``.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from smsp_connector.client import SmspClient
from smsp_connector.dagster.definitions import build_definitions
from smsp_connector.emulator import EmulatorServer
from smsp_connector.settings import Settings

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

_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class _Pipeline:
    """The account's definitions, built by :func:`build_definitions` as any deployment's are,
    run in-process job by job."""

    def __init__(self, emulator: EmulatorServer, api_key: str, output: Path) -> None:
        self.warehouse = output / "warehouse.duckdb"
        self.smsp = build_definitions(
            Settings(
                api_key=api_key,
                base_url=emulator.base_url,
                rate_limit=50,
                database=str(self.warehouse),
                export_dir=str(output / "exports"),
                inbox_dir=str(output / "inbox"),
            )
        )
        self.instance = dg.DagsterInstance.ephemeral()

    def refresh(self) -> dg.ExecuteInProcessResult:
        return self._execute(self.smsp.jobs.refresh.name, {})

    def mutate(self, operation: str, *, refresh: bool, **config: Any) -> dg.ExecuteInProcessResult:
        keys, jobs = self.smsp.keys, self.smsp.jobs
        job = jobs.by_operation()[operation]
        run_config = keys.op_config(keys.mutation(operation), **config)
        if refresh:
            return self._execute(job.name, run_config)
        selection = [keys.mutation(operation)]
        return self.smsp.job(job.name).execute_in_process(
            run_config={**_QUIET, **run_config},
            instance=self.instance,
            asset_selection=selection,
            raise_on_error=False,
        )

    def _execute(self, job: str, run_config: dict[str, Any]) -> dg.ExecuteInProcessResult:
        return self.smsp.job(job).execute_in_process(
            run_config={**_QUIET, **run_config}, instance=self.instance, raise_on_error=False
        )

    def query(self, sql: str) -> pd.DataFrame:
        with duckdb.connect(str(self.warehouse), read_only=True) as conn:
            return conn.execute(sql).fetchdf()


def run_demo(echo: Echo = print, demo_size: int = 25, output: Path = Path("demo_output")) -> None:
    api_key = secrets.token_urlsafe(24)
    shutil.rmtree(output, ignore_errors=True)
    (output / "inbox").mkdir(parents=True)
    with EmulatorServer(api_key=api_key, demo_size=demo_size, random_seed=7) as emulator:
        echo(f"SMS Partner emulator on {emulator.base_url} with {demo_size} demo opt-outs")
        pipeline = _Pipeline(emulator, api_key, output)

        _report(pipeline.refresh(), echo, "1. Extract the stop list into DuckDB")
        listed = pipeline.query(
            "SELECT phone_number, created_at FROM smsp.stop_list ORDER BY stop_id"
        )

        crm = output / "inbox" / "export_crm.csv"
        crm.write_bytes(CRM_EXPORT.format(listed=listed.phone_number[0]).encode("cp1252"))
        echo(f"\n2. Push {crm} (Windows-1252, ';', French headers) to the stop list:")
        _report(pipeline.mutate("add", refresh=True, csv_path=str(crm)), echo)
        _print_rejections(crm, echo)

        consents = output / "inbox" / "consents.csv"
        consents.write_text(_consents(listed), encoding="utf-8")
        echo(f"\n3. Deletions from {consents}, dry run first (the default):")
        _report(pipeline.mutate("delete", refresh=False, csv_path=str(consents)), echo)
        _print_audit(pipeline, "delete", echo)
        echo("   ... then confirmed (confirm: true):")
        _report(
            pipeline.mutate("delete", refresh=True, csv_path=str(consents), confirm=True),
            echo,
        )

        message_id = _schedule_by_mistake(emulator, api_key, echo)
        cancel = output / "inbox" / "cancel.csv"
        cancel.write_text(f"message_id\n{message_id}\n", encoding="utf-8")
        echo(f"\n5. Roll it back: cancel message {message_id} from {cancel}, twice:")
        _report(pipeline.mutate("cancel", refresh=False, csv_path=str(cancel)), echo)
        _report(pipeline.mutate("cancel", refresh=False, csv_path=str(cancel)), echo)

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


def _report(result: dg.ExecuteInProcessResult, echo: Echo, title: str | None = None) -> None:
    """Print a run's materializations and failed checks; a failed run stops the demo with the
    failed steps' own errors (a later step would only fail again, less clearly)."""
    if title:
        echo(f"\n{title}:")
    if not result.success:
        errors = [
            f"{event.step_key}: {_root_cause(event.step_failure_data.error)}"
            for event in result.all_events
            if event.is_step_failure and event.step_failure_data.error is not None
        ]
        raise DemoFailed(f"run {result.run_id[:8]} failed; " + "; ".join(errors or ["no step"]))
    echo(f"   run {result.run_id[:8]} succeeded")
    for event in result.get_asset_materialization_events():
        metadata = {k: v.value for k, v in event.materialization.metadata.items()}
        shown = {
            key.removeprefix("dagster/"): value
            for key, value in metadata.items()
            if (isinstance(value, bool | int) and value is not False) or key == "dry_run"
        }
        facts = ", ".join(f"{key} {value}" for key, value in shown.items())
        echo(f"   {event.asset_key.to_user_string():<30} {facts}")
    failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
    if failed:
        echo(f"   checks that did not pass: {', '.join(failed)}")


def _root_cause(error: Any) -> str:
    """The innermost message of a step failure's ``SerializableErrorInfo`` (Dagster wraps the
    step's own error in its own)."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def _print_rejections(source: Path, echo: Echo) -> None:
    report = source.with_name(source.stem + ".rejected.csv")
    echo(f"   rejected rows, also in {report.name} and smsp.input_rejections:")
    _table(pd.read_csv(report, dtype=str), echo)


def _print_audit(pipeline: _Pipeline, operation: str, echo: Echo) -> None:
    rows = pipeline.query(
        "SELECT source_row AS row, target, outcome, detail FROM smsp.audit_latest "
        f"WHERE operation = '{operation}' AND run_id = (SELECT max_by(run_id, recorded_at) "
        f"FROM smsp.audit_log WHERE operation = '{operation}') ORDER BY source_row"
    )
    _table(rows, echo)


def _print_history_and_exports(pipeline: _Pipeline, output: Path, echo: Echo) -> None:
    changes = pipeline.query(
        "SELECT change, phone_number, stop_id, observed_at::TIMESTAMP(0) AS observed_utc "
        "FROM smsp.stop_list_history WHERE observed_at > (SELECT min(observed_at) "
        "FROM smsp.stop_list_history) ORDER BY observed_at, change, phone_number"
    )
    echo("\n6. smsp.stop_list_history since the first extraction:")
    _table(changes, echo)
    echo("\n7. Suppression exports for the CRM:")
    for name in ("suppression_list.csv", "suppression_list_sha256.csv"):
        lines = (output / "exports" / name).read_text(encoding="utf-8").splitlines()
        echo(f"   exports/{name} ({len(lines) - 1} rows), first lines:")
        for line in lines[:3]:
            echo(f"     {line}")


def _print_audit_summary(pipeline: _Pipeline, echo: Echo) -> None:
    summary = pipeline.query(
        "SELECT operation, dry_run, outcome, count(*) AS rows FROM smsp.audit_latest "
        "GROUP BY ALL ORDER BY operation, dry_run, outcome"
    )
    echo("\n8. smsp.audit_log (final state of each row, by operation and outcome):")
    _table(summary, echo)


def _print_request_counts(emulator: EmulatorServer, echo: Echo) -> None:
    echo("\nRequests the emulator answered, by endpoint and outcome:")
    for endpoint, outcomes in sorted(emulator.stats()["endpoints"].items()):
        summary = ", ".join(f"{key} x{count}" for key, count in sorted(outcomes.items()))
        echo(f"   {endpoint:<16} {summary}")


def _table(frame: pd.DataFrame, echo: Echo) -> None:
    for line in frame.to_string(index=False).splitlines():
        echo(f"     {line}")
