"""The monthly compliance report of an account: the month's opt-outs by source, honoured within
the deadline or late (with ages), deletions and their consent evidence, rejected input by
reason, purges done, and the last twelve months as a chart. Laid out as Markdown (Dagster's
metadata) and as one self-contained HTML file a DPO opens in a browser (the chart inline SVG,
no script, nothing fetched). No number appears whole (see :class:`MonthDetail`)."""

from __future__ import annotations

import html
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from smsp_connector.operations.object_files import is_object_store, put_file
from smsp_connector.warehouse.compliance import MonthDetail, month_detail
from smsp_connector.warehouse.tables import Warehouse

SERIES = (
    # column, label, colour (the chart's and the legend's)
    ("received", "opt-outs received", "#3b6fb6"),
    ("honoured_in_time", "honoured in time", "#2e8b57"),
    ("honoured_late", "honoured late", "#d9822b"),
    ("not_honoured", "not honoured yet", "#c23b22"),
    ("deletions", "deletions", "#7a7a7a"),
)


@dataclass(frozen=True)
class ComplianceReport:
    account: str
    within: timedelta
    """The account's honour deadline."""
    timezone: str
    generated_at: datetime
    detail: MonthDetail

    @property
    def month(self) -> date:
        return self.detail.month

    @property
    def figures(self) -> dict[str, int]:
        """The month's own figures (the last row of the monthly table)."""
        row = self.detail.figures.iloc[-1]
        return {name: int(row[name]) for name in self.detail.figures.columns if name != "month"}

    @property
    def title(self) -> str:
        return f"Opt-out compliance report, {self.account}, {self.month:%B %Y}"


def build_report(
    warehouse: Warehouse,
    month: date,
    *,
    account: str,
    within: timedelta,
    timezone: str,
    key: bytes | None = None,
) -> ComplianceReport:
    """``month``'s report; ``key`` (the HMAC key) names late numbers by their pseudonym."""
    return ComplianceReport(
        account=account,
        within=within,
        timezone=timezone,
        generated_at=datetime.now(UTC),
        detail=month_detail(warehouse, month, within=within, timezone=timezone, key=key),
    )


def _hours(span: timedelta) -> str:
    return f"{span / timedelta(hours=1):g} h"


def summary_lines(report: ComplianceReport) -> list[tuple[str, int]]:
    """The month's figures as (label, value), in the report's order."""
    f = report.figures
    return [
        ("Opt-outs received by the connector", f["received"]),
        ("Opt-outs the provider received itself (STOP replies)", f["provider_opt_outs"]),
        (f"Honoured within {_hours(report.within)}", f["honoured_in_time"]),
        (f"Honoured after {_hours(report.within)}", f["honoured_late"]),
        ("Not honoured yet (pending or refused)", f["not_honoured"]),
        ("Deletions applied", f["deletions"]),
        ("… with consent evidence", f["deletions_with_consent"]),
        ("Input rows rejected", f["rejected_rows"]),
        ("Numbers pseudonymised by retention purges", f["purged_numbers"]),
        ("Rejected raw values cleared by retention purges", f["purged_rejected_values"]),
    ]


def _table_md(frame: pd.DataFrame, empty: str) -> str:
    if frame.empty:
        return f"_{empty}_"
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = [
        "| " + " | ".join(_markdown_text(_cell(value)) for value in row) + " |"
        for row in frame.itertuples(index=False, name=None)
    ]
    return "\n".join([header, rule, *rows])


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+!|<>~-])")


def _markdown_text(text: str) -> str:
    """Text shown as itself in Markdown: one line, every character Markdown acts on escaped
    (a file name or consent evidence is data, never a heading, a link or an image)."""
    return _MARKDOWN.sub(r"\\\1", " ".join(text.split()))


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp | datetime):
        moment = pd.Timestamp(value)
        moment = moment.tz_convert(UTC) if moment.tzinfo else moment.tz_localize(UTC)
        return f"{moment:%Y-%m-%d %H:%M} UTC"
    return str(value)


def _bars_md(report: ComplianceReport) -> str:
    """The monthly opt-outs received as a text bar chart (Dagster's Markdown has no images)."""
    figures = report.detail.figures
    top = max(1, int(figures["received"].max()))
    lines = [
        f"{row.month:%Y-%m} {'█' * round(24 * row.received / top):<24} {row.received} "
        f"({row.honoured_in_time} in time, {row.honoured_late} late)"
        for row in figures.itertuples()
    ]
    return "```\n" + "\n".join(lines) + "\n```"


def _sections(report: ComplianceReport) -> list[tuple[str, pd.DataFrame, str]]:
    d = report.detail
    return [
        ("Opt-outs received, by source", d.by_source, "none this month"),
        (
            f"Honoured after {_hours(report.within)}, or not yet (numbers as pseudonyms, "
            "or masked)",
            d.late,
            "every opt-out honoured in time",
        ),
        ("Deletions, by consent evidence", d.consent, "no deletion this month"),
        ("Input rejected, by reason", d.rejected, "no rejected input this month"),
        ("Retention purges", d.purges, "no purge this month"),
    ]


def markdown(report: ComplianceReport) -> str:
    """The report as Markdown, for Dagster's metadata."""
    summary = "\n".join(f"| {label} | {value} |" for label, value in summary_lines(report))
    parts = [f"# {report.title}", "| figure | count |\n| --- | --- |\n" + summary]
    for heading, frame, empty in _sections(report):
        parts.append(f"## {heading}\n\n{_table_md(frame, empty)}")
    parts.append("## Opt-outs received, last 12 months\n\n" + _bars_md(report))
    return "\n\n".join(parts)


def _svg_chart(figures: pd.DataFrame) -> str:
    """Grouped bars, one group per month, one bar per :data:`SERIES`, with a legend."""
    width, height, left, bottom, top_pad = 900, 300, 40, 40, 20
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    top = max(1, int(figures[[s[0] for s in SERIES]].to_numpy().max()))
    group = plot_w / max(1, len(figures))
    bar = group * 0.8 / len(SERIES)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 30}" '
        f'role="img" aria-label="monthly opt-out figures">',
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - 10}" y2="{top_pad + plot_h}" '
        'stroke="#333"/>',
        f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end" font-size="11">{top}</text>',
        f'<text x="{left - 6}" y="{top_pad + plot_h}" text-anchor="end" font-size="11">0</text>',
    ]
    for i, row in enumerate(figures.itertuples()):
        x0 = left + i * group + group * 0.1
        for j, (column, label, colour) in enumerate(SERIES):
            value = int(getattr(row, column))
            h = plot_h * value / top
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{top_pad + plot_h - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{row.month:%Y-%m}: {value} {label}</title></rect>"
            )
        parts.append(
            f'<text x="{x0 + group * 0.4:.1f}" y="{top_pad + plot_h + 16}" '
            f'text-anchor="middle" font-size="11">{row.month:%Y-%m}</text>'
        )
    for j, (_, label, colour) in enumerate(SERIES):
        x = left + j * 170
        parts.append(
            f'<rect x="{x}" y="{height + 8}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{x + 18}" y="{height + 18}" font-size="12">{label}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table_html(frame: pd.DataFrame, empty: str) -> str:
    if frame.empty:
        return f"<p class=empty>{html.escape(empty)}</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False, name=None)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; font-size: .92em; }
th { background: #f2f2f2; } td.n { text-align: right; } .empty, .meta { color: #666; }
"""


def html_document(report: ComplianceReport) -> str:
    """The report as one self-contained HTML page (inline style and SVG; nothing fetched)."""
    summary = "".join(
        f"<tr><td>{html.escape(label)}</td><td class=n>{value}</td></tr>"
        for label, value in summary_lines(report)
    )
    sections = "".join(
        f"<h2>{html.escape(heading)}</h2>{_table_html(frame, empty)}"
        for heading, frame, empty in _sections(report)
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(report.title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(report.title)}</h1>"
        f"<p class=meta>Generated {report.generated_at:%Y-%m-%d %H:%M} UTC by smsp-connector; "
        f"months in {html.escape(report.timezone)}; honour deadline {_hours(report.within)}. "
        "No phone number appears whole: late ones as their HMAC pseudonym (or masked), and "
        "any found in a file name or consent evidence as [number].</p>"
        f"<table><tbody>{summary}</tbody></table>"
        f"<h2>The last 12 months</h2>{_svg_chart(report.detail.figures)}{sections}"
        "</body></html>"
    )


def write_html(report: ComplianceReport, directory: str) -> str:
    """Write the HTML report into ``directory`` (a folder or ``s3://…``) as
    ``compliance_<account>_<YYYY-MM>.html``; return its path or URL."""
    account = re.sub(r"[^A-Za-z0-9_.-]", "_", report.account).lstrip(".") or "account"
    name = f"compliance_{account}_{report.month:%Y-%m}.html"
    document = html_document(report)
    if is_object_store(directory):
        with tempfile.TemporaryDirectory(prefix="smsp-report-") as folder:
            local = Path(folder) / name
            local.write_text(document, encoding="utf-8")
            return put_file(local, f"{directory.rstrip('/')}/{name}")
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".html.tmp")
    staging.write_text(document, encoding="utf-8")
    staging.replace(path)
    return str(path)
