"""`aoai-obs collect once | run | backfill` and `aoai-obs status`: collection into the store, and where it stands."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from datetime import datetime

import click

from collector.cli.context import Context, Group, parse_time, utcnow
from collector.collection.health import HealthMetrics
from collector.collection.run import RunSummary, backfill, collect_once
from collector.collection.schedule import run_every
from collector.collection.sources import build_sources, timing_of
from collector.cost.table import refresh_costs
from collector.errors import InputError
from collector.report.schedule import reports_after_pass
from collector.rollups.specs import ROLLUPS, RollupSpec
from collector.rollups.windows import collectable_end, split_range

log = logging.getLogger("aoai_obs")


@click.group(cls=Group)
def collect() -> None:
    """Collect rollups from the configured sources into the store."""


def _job_specs(jobs: Sequence[str]) -> list[RollupSpec]:
    names = [s.name for s in ROLLUPS]
    unknown = [j for j in jobs if j not in names]
    if unknown:
        raise InputError([], f"unknown job(s) {', '.join(unknown)}; jobs: {', '.join(names)}")
    return [s for s in ROLLUPS if not jobs or s.name in jobs]


def _finish(summary: RunSummary) -> None:
    log.info("%s", summary.line())
    if not summary.ok:
        for outcome in summary.failures():
            since = outcome.failed.start.isoformat() if outcome.failed is not None else "its watermark"
            click.echo(f"missing: {outcome.source}/{outcome.job} from {since} "
                       f"({'will retry' if outcome.transient else 'needs a fix'}): {outcome.error}", err=True)
        sys.exit(1)


@collect.command("once")
@click.option("--source", "sources", multiple=True, help="Only this source (repeatable).")
@click.option("--job", "jobs", multiple=True, help="Only this job (repeatable): a query name or platform_metrics.")
@click.pass_obj
def collect_once_cmd(ctx: Context, sources: tuple[str, ...], jobs: tuple[str, ...]) -> None:
    """One pass: every job from its watermark (less the lookback) up to now - lag."""
    specs = _job_specs(jobs or tuple(ctx.settings.collector.queries))
    cost_job = ctx.cost_job()
    store = ctx.open_store()
    summary = collect_once(store, build_sources(ctx.settings, sources), specs, timing_of(ctx.settings), utcnow())
    log.info("%s", cost_job.after_pass(store, utcnow()))
    _finish(summary)


@collect.command("run")
@click.pass_obj
def collect_run(ctx: Context) -> None:
    """Collect every collector.interval until interrupted, applying retention after each pass."""
    settings = ctx.settings
    specs = _job_specs(tuple(settings.collector.queries))
    cost_job = ctx.cost_job()
    store = ctx.open_store()
    sources = build_sources(settings)
    health = HealthMetrics()
    if settings.collector.metrics_port:
        health.serve(settings.collector.metrics_port)
        log.info("Prometheus metrics on http://127.0.0.1:%d/metrics", settings.collector.metrics_port)

    def one_pass(now: datetime) -> None:
        summary = collect_once(store, sources, specs, timing_of(settings), now)
        for source in sources:
            source.close()
        retention = settings.store.retention
        store.apply_retention(now, five_minute_days=retention.five_minute_days, hourly_days=retention.hourly_days,
                              daily_days=retention.daily_days or None)
        health.observe(summary, store.job_statuses(), now)
        log.info("%s", summary.line())
        log.info("%s", cost_job.after_pass(store, now))
        line = reports_after_pass(settings, store, now)
        if line:
            log.info("%s", line)

    run_every(settings.collector.interval, one_pass, utcnow)


@collect.command("backfill")
@click.option("--since", "since_text", required=True, help="Start (ISO-8601).")
@click.option("--until", "until_text", default="now", show_default=True, help="End (ISO-8601).")
@click.option("--source", "sources", multiple=True, help="Only this source (repeatable).")
@click.option("--job", "jobs", multiple=True, help="Only this job (repeatable).")
@click.pass_obj
def collect_backfill(ctx: Context, since_text: str, until_text: str, sources: tuple[str, ...],
                     jobs: tuple[str, ...]) -> None:
    """Collect a past range window by window (collector.max_window at a time), with a progress bar."""
    since, until = parse_time(since_text, "--since"), parse_time(until_text, "--until")
    if since >= until:
        raise InputError([], f"--since ({since.isoformat()}) must be before --until ({until.isoformat()})")
    timing = timing_of(ctx.settings)
    specs = _job_specs(jobs or tuple(ctx.settings.collector.queries))
    cost_job = ctx.cost_job()
    store = ctx.open_store()
    windows = len(list(split_range(since, until, timing.grain, timing.max_window)))
    with click.progressbar(length=windows, label="backfill", file=sys.stderr) as bar:
        summary = backfill(store, build_sources(ctx.settings, sources), specs, timing, since, until, utcnow(),
                           on_window=lambda _w: bar.update(1))

    days = refresh_costs(store, cost_job.model, since, min(until, utcnow()), utcnow())
    log.info("cost: %d day(s) re-attributed", days)
    _finish(summary)


@click.command("status")
@click.pass_obj
def status(ctx: Context) -> None:
    """Per source and job: watermark, lag behind now, last error and the missing range."""
    store = ctx.open_store()
    now = utcnow()
    end = collectable_end(now, timing_of(ctx.settings).grain, timing_of(ctx.settings).lag)
    statuses = store.job_statuses()
    if not statuses:
        click.echo("nothing collected yet: run `aoai-obs collect once` or `aoai-obs collect backfill`")
        return
    for s in statuses:
        mark = s.watermark.isoformat() if s.watermark else "never"
        lag = f"{(now - s.watermark).total_seconds() / 60:,.0f} min behind" if s.watermark else "-"
        line = f"{s.source}/{s.job}: watermark {mark} ({lag})"
        if s.watermark is not None and s.watermark < end:
            line += f"; missing {s.watermark.isoformat()} .. {end.isoformat()}"
        if s.last_error:
            line += f"; last error: {s.last_error}"
        click.echo(line)
