"""The report's files (HTML, CSV, PDF; each written whole or not at all) and the monthly schedule that writes them.

The schedule, run after each collector pass when `reports.folder` is set: the report of a month is due once the
collected data has passed the month's end, that is once the lowest watermark of the cost jobs
(`collector.cost.job.collected_until`) lies in a later month, and is written once: a month whose HTML is in the
folder is done. Only the month just before the data's month is considered, so a collector restarted after months
away writes the last complete month, not every month it missed (`aoai-obs report --month` writes any month). A month the
store has no usage for at all (a store started after it) gets no report.

With `reports.post_to_webhook`, a short summary naming the file goes to the budget webhook; a hidden marker
(`.aoai-report-YYYY-MM.posted`) beside the report records the delivery, so a failed post is retried on the next
pass and a delivered one never repeated.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from collector.atomicfile import atomic_path, atomic_text
from collector.config import Settings
from collector.cost.job import collected_until
from collector.cost.webhook import WebhookSender
from collector.errors import ObservatoryError, TerminalError
from collector.report.data import MonthlyReport, load_report
from collector.report.formatting import usd
from collector.report.pdf import MISSING, find_chromium, print_pdf
from collector.report.reconciliation import basis_phrase
from collector.report.render import render_csv, render_html
from collector.rollups.months import Period, month_of, previous_month
from collector.store.database import Store

log = logging.getLogger(__name__)
FORMATS = ("html", "csv", "pdf")


def report_name(month: Period, team: str | None = None) -> str:
    """`aoai-report-2026-10` (the organisation) or `aoai-report-2026-10-marketing` (a team); no suffix."""
    return f"aoai-report-{month.label}" + (f"-{team}" if team else "")


def write_files(report: MonthlyReport, targets: Mapping[str, Path], chromium: str | None) -> list[Path]:
    """Write the report in each format of `targets` (html, csv, pdf) to its path, CSV first and HTML after it;
    each file appears only when complete. TerminalError when a PDF is asked for and `chromium` is None, or
    chromium fails."""
    if "pdf" in targets and chromium is None:
        raise TerminalError(MISSING)
    written: list[Path] = []
    html = render_html(report)
    if "csv" in targets:
        with atomic_text(targets["csv"]) as stream:
            stream.write(render_csv(report))
        written.append(targets["csv"])
    if "html" in targets:
        with atomic_text(targets["html"]) as stream:
            stream.write(html)
        written.append(targets["html"])
    if "pdf" in targets:
        assert chromium is not None
        with tempfile.TemporaryDirectory(prefix="aoai-obs-report-") as folder:
            source = Path(folder) / "report.html"
            source.write_text(html, encoding="utf-8")
            with atomic_path(targets["pdf"]) as temp:
                print_pdf(source, temp, chromium)
        written.append(targets["pdf"])
    return written


# -- the schedule ----------------------------------------------------------------------------------------------


def monthly_report_due(store: Store, folder: Path) -> Period | None:
    """The month whose report the schedule should write now, or None: the month before the one the collected data
    (the lowest watermark of the cost jobs) has reached, when the store has usage from before its end and `folder`
    has no report of it yet."""
    until = collected_until(store)
    if until is None:
        return None
    month = previous_month(month_of(until))
    first = store.first_usage_bucket()
    if first is None or first >= month.end:
        return None
    return None if (folder / f"{report_name(month)}.html").exists() else month


def write_scheduled_report(settings: Settings, store: Store, month: Period, now: datetime) -> list[Path]:
    """The organisation's report of `month` into `reports.folder`: the PDF when chromium is there (a PDF that fails
    is logged and left out), then the CSV and last the HTML, whose presence says the month is done."""
    folder = settings.reports.folder
    if folder is None:
        raise TerminalError("reports.folder is not set: there is nowhere to write the monthly report")
    report = load_report(settings, store, month, None, now)
    name = report_name(month)
    chromium = find_chromium()
    written: list[Path] = []
    if chromium is None:
        log.info("report %s: %s", month.label, MISSING)
    else:
        try:
            written += write_files(report, {"pdf": folder / f"{name}.pdf"}, chromium)
        except TerminalError as e:
            log.warning("report %s: no PDF: %s", month.label, e)
    return write_files(report, {"csv": folder / f"{name}.csv", "html": folder / f"{name}.html"}, None) + written


@dataclass(frozen=True)
class ReportNotice:
    """The webhook message for a written report (collector.cost.webhook.Notice)."""

    title: str
    text: str
    facts: tuple[tuple[str, str], ...]


def notice_of(report: MonthlyReport, files: Sequence[Path]) -> ReportNotice:
    """A short summary: totals, the largest mover, budgets, incidents and the file names."""
    total = report.total.cost
    before = report.previous_total.cost
    mover = report.team_movers[0] if report.team_movers else None
    over = sum(1 for b in report.budgets if b.spent >= b.budget.monthly_usd)
    names = ", ".join(p.name for p in files)
    facts = [("Cost", usd(total)), (f"{report.previous_month.start:%B %Y}", usd(before)),
             ("Budgets at or over 100 %", f"{over} of {len(report.budgets)}"),
             ("429 storms", str(len(report.throttling))), ("Content-filter spikes", str(len(report.content_filter))),
             ("Files", names)]
    if mover is not None:
        change = "new" if mover.percent is None else f"{mover.percent:+} %"
        facts.insert(2, ("Top mover", f"{mover.name} {usd(mover.change)} ({change})"))
    return ReportNotice(
        f"Azure OpenAI monthly report, {report.title}",
        f"The report for {report.title} is written: {usd(total)} in all ({basis_phrase(report.basis)}). "
        f"Files: {names}.",
        tuple(facts))


def reports_after_pass(settings: Settings, store: Store, now: datetime) -> str:
    """What the collector's pass calls: write the month's report when it is due, post its summary when asked;
    one line for the pass's log ("" when there was nothing to do). Never raises for a report or a post that
    failed: the collection goes on, and the next pass tries again."""
    folder: Path | None = settings.reports.folder
    if folder is None:
        return ""
    said = []
    try:
        month = monthly_report_due(store, folder)
        if month is not None:
            files = write_scheduled_report(settings, store, month, now)
            said.append(f"report {month.label}: wrote {', '.join(p.name for p in files)} to {folder}")
    except (ObservatoryError, OSError) as e:
        log.warning("monthly report not written: %s", e)
        said.append(f"report: not written ({e}); the next pass tries again")
    if settings.reports.post_to_webhook:
        try:
            said.append(_post_pending(settings, store, folder, now))
        except (ObservatoryError, OSError) as e:
            log.warning("monthly report summary not posted: %s", e)
            said.append(f"report: summary not posted ({e}); the next pass tries again")
    return "; ".join(x for x in said if x)


def _post_pending(settings: Any, store: Any, folder: Path, now: datetime) -> str:
    """Post the summary of the latest scheduled report if it has not been delivered yet."""
    url = settings.budgets.webhook_url
    until = collected_until(store)
    if until is None:
        return ""
    month = previous_month(month_of(until))
    name = report_name(month)
    marker = folder / f".{name}.posted"
    if not (folder / f"{name}.html").exists() or marker.exists():
        return ""
    if url is None:
        return "report: not posted (reports.post_to_webhook is on, budgets.webhook_url is not set)"
    files = sorted(p for p in folder.glob(f"{name}.*") if p.suffix.lstrip(".") in FORMATS)
    report = load_report(settings, store, month, None, now, reprice=False, threshold=None)
    WebhookSender(url.get_secret_value(), settings.budgets.webhook_format,
                  allow_http=settings.budgets.webhook_allow_http)(notice_of(report, files))
    marker.write_text(f"{now.isoformat()}\n", encoding="utf-8")
    return f"report {month.label}: summary posted"
