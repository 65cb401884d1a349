"""`aoai-obs demo`, the `make demo` job: demo traffic into the embedded workspace, backfilled and then collected as it
arrives, with the dashboards served beside it."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import click

from collector.cli.context import Context, plugged_in, utcnow
from collector.collection.run import RunSummary, backfill, collect_once
from collector.collection.sources import build_sources, first_workspace, timing_of
from collector.collection.summary import render, summarise
from collector.config import Settings
from collector.cost.job import CostJob
from collector.errors import TerminalError
from collector.rollups.specs import ROLLUPS
from collector.rollups.windows import Window, align_down, align_up, split_range
from collector.store.database import Store
from collector.workspace.engine import Workspace
from collector.workspace.generate import generate

log = logging.getLogger(__name__)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class DemoStep:
    generated_hours: int
    summary: RunSummary
    cost: str = ""  # the cost job's line, when there is one


def top_up(workspace: Workspace, settings: Settings, now: datetime) -> tuple[datetime, datetime] | None:
    """Generate demo traffic up to the end of the current hour; returns the range added, if any.

    Rows time-stamped after `now` are invisible to the collector (it stops at now - lag), so to it the traffic
    arrives as the clock moves on, the way Azure's does.
    """
    end = align_up(now, HOUR)
    if not workspace.exists():
        workspace.create()
        start = align_down(now, HOUR) - timedelta(days=settings.demo.days)
    else:
        info = workspace.info()
        if "end" not in info:
            start = align_down(now, HOUR) - timedelta(days=settings.demo.days)
        else:
            start = datetime.fromisoformat(info["end"])
    if start >= end:
        return None
    generate(workspace, start=start, end=end, seed=settings.demo.seed)
    return start, end


def prepare(
    settings: Settings, store: Store, now: datetime, progress: Callable[[int, int], None] | None = None,
    cost_job: CostJob | None = None,
) -> DemoStep:
    """Generate what is missing and collect it: a full backfill the first time, a normal pass afterwards."""
    entry = first_workspace(settings)
    workspace = Workspace(entry.path)
    added = top_up(workspace, settings, now)
    sources = build_sources(settings, [entry.name])
    timing = timing_of(settings)
    never_collected = any(store.watermark(entry.name, spec.name) is None for spec in ROLLUPS)
    try:
        if never_collected:
            since = datetime.fromisoformat(workspace.info()["start"])
            total = len(list(split_range(since, now, timing.grain, timing.max_window)))
            done = [0]

            def advance(_window: Window) -> None:
                done[0] += 1
                if progress is not None:
                    progress(done[0], total)

            summary = backfill(store, sources, ROLLUPS, timing, since, now, now, on_window=advance)
        else:
            summary = collect_once(store, sources, ROLLUPS, timing, now)
    finally:
        for source in sources:
            source.close()
    hours = 0 if added is None else int((added[1] - added[0]) / HOUR)
    cost = cost_job.after_pass(store, now) if cost_job is not None else ""
    return DemoStep(hours, summary, cost)


def describe(settings: Settings, store: Store, now: datetime) -> str:
    source = first_workspace(settings).name
    day = render(summarise(store, now - timedelta(days=1), now, source), "Last 24 hours, per deployment")
    month = render(summarise(store, now - timedelta(days=30), now, source), "Last 30 days, per deployment")
    return f"{month}\n\n{day}\n\n{describe_cost(store, now)}"


def describe_cost(store: Store, now: datetime) -> str:
    """Attributed cost of the last 30 days per team, method and basis, from the daily cost table."""
    start = align_down(now, DAY) - timedelta(days=30)
    rows = store.read_cost_daily(start, now, by=("team", "method", "basis"))
    if not rows:
        return "Cost: nothing attributed yet"
    lines = ["Last 30 days, cost per team (billed: the imported bill allocated to teams; estimate: telemetry and "
             "the price book)", f"  {'team':<14} {'method':<12} {'basis':<9} {'tokens':>14} {'USD':>12}"]
    for r in rows:
        tokens = r["prompt_tokens"] + r["completion_tokens"]
        lines.append(f"  {r['team']:<14} {r['method']:<12} {r['basis']:<9} {tokens:>14,} "
                     f"{r['cost_micro_usd'] / 1e6:>12,.2f}")
    total = sum(r["cost_micro_usd"] for r in rows)
    lines.append(f"  {'total':<37} {'':>14} {total / 1e6:>12,.2f}")
    return "\n".join(lines)


def follow(settings: Settings, store: Store, clock: Callable[[], datetime], echo: Callable[[str], None],
           cost_job: CostJob | None = None) -> None:
    """Keep generating and collecting every collector interval until interrupted."""
    interval = settings.collector.interval.total_seconds()
    try:
        while True:
            time.sleep(interval)
            step = prepare(settings, store, clock(), cost_job=cost_job)
            echo(f"{clock():%H:%M:%S} {step.summary.line()}" + (f"; {step.cost}" if step.cost else ""))
    except KeyboardInterrupt:
        echo("demo stopped")


@click.command("demo")
@click.option("--once", is_flag=True, help="Generate, collect and summarise, then exit (no follow-up collection).")
@click.option("--serve/--no-serve", default=True, show_default=True,
              help="Serve the dashboards (`aoai-obs serve`) while collection continues.")
@click.pass_obj
def demo(ctx: Context, once: bool, serve: bool) -> None:
    """Generate the demo organisation, backfill it into the store and keep collecting as traffic arrives."""
    settings = ctx.settings
    workspace_path = first_workspace(settings).path  # a clear error when no workspace source is configured
    cost_job = ctx.cost_job()
    store = ctx.open_store()
    now = utcnow()
    click.echo(f"demo: {settings.demo.days} days of demo traffic into {workspace_path}, "
               f"rollups into {settings.store.url}", err=True)
    with click.progressbar(length=1, label="collecting", file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        step = prepare(settings, store, now, progress=progress, cost_job=cost_job)
    click.echo(step.summary.line(), err=True)
    click.echo(step.cost, err=True)
    click.echo(describe(settings, store, now))
    if not step.summary.ok:
        raise TerminalError("the demo collection had failures: " + step.summary.line())
    if not once:
        server = _start_dashboards(ctx) if serve else None
        click.echo(f"\ncollecting every {settings.collector.interval} as new demo traffic arrives; Ctrl-C stops",
                   err=True)
        try:
            follow(settings, store, utcnow, lambda text: click.echo(text, err=True), cost_job)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=10)


def _start_dashboards(ctx: Context) -> Any:
    """`aoai-obs serve` in a child process (the collector never imports the dashboards); None when the dashboards
    are not installed."""
    if not any(e.name == "serve" for e in plugged_in()):
        click.echo("dashboards not installed (no `serve` command): the summary above is all the demo shows", err=True)
        return None
    command = [sys.executable, "-m", "collector.cli.main"]
    if ctx.config_path is not None:
        command += ["--config", str(ctx.config_path)]
    settings = ctx.settings.dashboards
    click.echo(f"dashboards: http://{settings.host}:{settings.port}/ (operations, cost, reports)", err=True)
    return subprocess.Popen([*command, "serve"])
