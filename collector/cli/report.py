"""`aoai-obs report`: the monthly report of the organisation or one team, as HTML, CSV and PDF files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from collector.cli.context import Context, utcnow
from collector.errors import InputError
from collector.report.data import load_report
from collector.report.formatting import usd
from collector.report.pdf import MISSING, find_chromium
from collector.report.reconciliation import basis_phrase
from collector.report.schedule import report_name, write_files
from collector.rollups.months import month_of, parse_month, previous_month
from collector.store.database import Store

SUFFIXES = {".html": "html", ".htm": "html", ".csv": "csv", ".pdf": "pdf"}


def default_month(now: datetime) -> str:
    """The last complete calendar month (UTC) before `now`, as YYYY-MM."""
    return previous_month(month_of(now)).label


def targets_for(out: Path, name: str, chromium: str | None) -> tuple[dict[str, Path], str]:
    """Where each format goes for `--out`: one file when its suffix names a format, else a folder that gets every
    format possible (`name`.html, .csv and, with chromium, .pdf). Also says what was left out, and why."""
    if out.suffix.lower() in SUFFIXES and not out.is_dir():
        return {SUFFIXES[out.suffix.lower()]: out}, ""
    if out.suffix and not out.is_dir():
        raise InputError([], f"--out: {out.suffix!r} is not a report format; end the file name in .html, .csv or "
                             ".pdf, or give a folder for all of them")
    targets = {fmt: out / f"{name}.{fmt}" for fmt in ("html", "csv", "pdf")}
    if chromium is None:
        del targets["pdf"]
        return targets, MISSING
    return targets, ""


@click.command("report")
@click.option("--month", help="The calendar month (YYYY-MM, UTC) [default: the last complete month].")
@click.option("--team", help="Only this team's lines (unallocated and idle cost stay in the organisation's report).")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="A file whose suffix picks the format (.html, .csv or .pdf), or a folder to get all three "
                   "(the PDF when chromium is installed), named aoai-report-YYYY-MM[-TEAM].*")
@click.pass_obj
def report(obj: Context, month: str | None, team: str | None, out: Path) -> None:
    """The monthly usage and cost report: totals, cost and tokens by team and model, month over month, top movers,
    budgets, unallocated and idle cost, and notable incidents (429 storms, content-filter spikes). Cost is the
    imported bill allocated to teams where a bill covers an account's day, and an estimate from telemetry and the
    price book elsewhere; the report says how much is which, and the organisation's report reconciles the estimate
    with the bill (`aoai-obs bill import` brings the bill in)."""
    now = utcnow()
    start, _ = parse_month(month or default_month(now))
    period = month_of(start)
    chromium = find_chromium()
    targets, left_out = targets_for(out, report_name(period, team), chromium)
    store = Store.open(obj.settings.store.url)
    try:
        built = load_report(obj.settings, store, period, team, now)
    finally:
        store.close()
    written = write_files(built, targets, chromium)
    for path in written:
        click.echo(str(path))
    if left_out:
        click.echo(f"note: {left_out}", err=True)
    if not built.complete and built.collected_until is not None:
        click.echo(f"note: {period.label} is not complete: the collected data ends at "
                   f"{built.collected_until:%Y-%m-%d %H:%M} UTC", err=True)
    click.echo(f"report {period.label} ({built.scope}): {usd(built.total.cost)}, {len(written)} file(s) "
               f"({basis_phrase(built.basis)})", err=True)
