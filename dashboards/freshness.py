"""The collector-freshness banner every page shows: how old the newest data is, which jobs lag, which windows failed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from dash import html

from collector.store.database import JobStatus


@dataclass(frozen=True)
class JobAge:
    source: str
    job: str
    watermark: datetime | None
    age: timedelta | None
    stale: bool
    failed: str  # "" or "from .. to ..: error"


@dataclass(frozen=True)
class Freshness:
    """`level`: "empty" (nothing collected), "failed" (a window is missing), "stale" (a job lags) or "ok"."""

    level: str
    newest: datetime | None
    jobs: tuple[JobAge, ...]


def summarise(statuses: Sequence[JobStatus], now: datetime, stale_after: timedelta) -> Freshness:
    jobs = []
    for s in statuses:
        age = now - s.watermark if s.watermark is not None else None
        failed = ""
        if s.failed_window is not None:
            failed = f"{s.failed_window.start:%Y-%m-%d %H:%M}–{s.failed_window.end:%H:%M} UTC: {s.last_error}"
        jobs.append(JobAge(s.source, s.job, s.watermark, age, age is None or age > stale_after, failed))
    marks = [j.watermark for j in jobs if j.watermark is not None]
    if not marks:
        level = "empty"
    elif any(j.failed for j in jobs):
        level = "failed"
    elif any(j.stale for j in jobs):
        level = "stale"
    else:
        level = "ok"
    return Freshness(level, max(marks) if marks else None, tuple(jobs))


def format_age(age: timedelta | None) -> str:
    if age is None:
        return "never"
    minutes = int(age.total_seconds() // 60)
    if minutes < 0:
        return "in the future (check the clocks)"
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h {minutes % 60} min" if hours < 48 else f"{hours // 24} d {hours % 24} h"


def banner(freshness: Freshness, now: datetime, zone: tzinfo) -> html.Div:
    """The banner: one line always visible, every job's age and failure in a details list below it."""
    if freshness.level == "empty" or freshness.newest is None:
        return html.Div("No data collected yet: run `aoai-obs collect once` (or `make demo`), then reload.",
                        className="freshness freshness-empty", id="freshness-line")
    newest = freshness.newest.astimezone(zone)
    parts = [f"Data up to {newest:%Y-%m-%d %H:%M} ({zone}), {format_age(now - freshness.newest)} ago."]
    stale = [j for j in freshness.jobs if j.stale]
    failed = [j for j in freshness.jobs if j.failed]
    if stale:
        parts.append(f"{len(stale)} job(s) behind: " + ", ".join(
            f"{j.source}/{j.job} {format_age(j.age)}" for j in stale[:3]) + ("…" if len(stale) > 3 else "") + ".")
    if failed:
        parts.append(f"{len(failed)} failed window(s), retried on the next run.")
    rows = [html.Tr([html.Td(f"{j.source}/{j.job}"),
                     html.Td(f"{j.watermark.astimezone(zone):%Y-%m-%d %H:%M}" if j.watermark else "—"),
                     html.Td(format_age(j.age)), html.Td(j.failed or ("behind" if j.stale else "ok"))])
            for j in freshness.jobs]
    details = html.Details([
        html.Summary(" ".join(parts), id="freshness-line"),
        html.Table([html.Thead(html.Tr([html.Th("source/job"), html.Th(f"data up to ({zone})"), html.Th("age"),
                                        html.Th("status")])), html.Tbody(rows)], className="freshness-jobs"),
    ])
    return html.Div(details, className=f"freshness freshness-{freshness.level}")
