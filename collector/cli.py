"""The `aoai-obs` command: parses arguments, loads settings once, and turns our errors into messages."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import click

from collector.errors import InputError, ObservatoryError, TerminalError
from collector.kql import window_prelude
from collector.result_format import as_csv, as_json, as_table
from collector.rollup import ROLLUPS
from collector.workspace.engine import Workspace

log = logging.getLogger("aoai_obs")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Context:
    """What every command shares: where the settings come from, loaded on first use."""

    def __init__(self, config: Path | None, debug: bool) -> None:
        self.config = config
        self.debug = debug
        self.config_path: Path | None = None  # the file the settings were read from, once read
        self._settings: Any = None

    @property
    def settings(self) -> Any:
        if self._settings is None:
            from collector.config import find_config, load_settings

            path = find_config(self.config, os.environ, Path.cwd())
            self.config_path = path
            self._settings = load_settings(path, os.environ)
        return self._settings


class Group(click.Group):
    """Prints our errors as messages (with a traceback only under --debug) and picks the exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *(e.name for e in _plugged_in())})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None:
            # Loaded only when asked for: the alerts group imports the Azure SDK, which other commands don't need.
            found = next((e for e in _plugged_in() if e.name == name), None)
            command = found.load() if found is not None else None
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ObservatoryError as e:
            obj = ctx.obj if isinstance(ctx.obj, Context) else None
            if obj is not None and obj.debug:
                raise
            click.echo(f"error: {e}", err=True)
            ctx.exit(2 if isinstance(e, InputError) else 1)


def _plugged_in() -> list[EntryPoint]:
    """Command groups other packages add (the `aoai_obs.commands` entry points)."""
    return list(entry_points(group="aoai_obs.commands"))


def parse_time(value: str, option: str) -> datetime:
    """ISO-8601 date or date-time; UTC when no offset is given; `now` for the present."""
    if value == "now":
        return utcnow()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise InputError([], f"{option}: {value!r} is not an ISO-8601 time (e.g. 2025-01-31 or "
                             "2025-01-31T12:00:00Z)") from e
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@click.group(cls=Group)
@click.option("--config", type=click.Path(path_type=Path), help="Settings file (else $AOAI_OBS_CONFIG, "
              "else ./aoai-obs.yaml, else built-in defaults).")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def main(ctx: click.Context, config: Path | None, debug: bool) -> None:
    """aoai-observatory: collect Azure OpenAI telemetry into rollups, for cost, operations and alerts."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not debug:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    ctx.obj = Context(config, debug)


# -- workspace ---------------------------------------------------------------------------------------------------

@main.group(cls=Group)
def workspace() -> None:
    """The embedded, Log-Analytics-shaped workspace."""


def _workspace(ctx: Context, path: Path | None) -> Workspace:
    if path is not None:
        return Workspace(path)
    from collector.sources import first_workspace

    return Workspace(first_workspace(ctx.settings).path)


@workspace.command("generate")
@click.option("--days", type=click.IntRange(min=1), help="Days of traffic, ending at the current hour "
              "[default: demo.days].")
@click.option("--seed", type=int, help="Random seed: the same seed gives the same traffic [default: demo.seed].")
@click.option("--end", "end_text", help="End of the generated range (ISO-8601, rounded up to the hour) [default: now].")
@click.option("--workspace", "path", type=click.Path(path_type=Path), help="Workspace file [default: the first "
              "workspace source].")
@click.pass_obj
def workspace_generate(ctx: Context, days: int | None, seed: int | None, end_text: str | None,
                       path: Path | None) -> None:
    """Generate the demo organisation's traffic into the workspace."""
    from collector.windows import align_up
    from collector.workspace.generate import generate

    target = _workspace(ctx, path)
    days = days if days is not None else ctx.settings.demo.days
    seed = seed if seed is not None else ctx.settings.demo.seed
    end = align_up(parse_time(end_text, "--end") if end_text else utcnow(), timedelta(hours=1))
    start = end - timedelta(days=days)
    if not target.exists():
        target.create()
    summary = generate(target, start=start, end=end, seed=seed)
    click.echo(f"generated {summary.requests:,} requests from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC "
               f"into {target.path}")
    for table, count in sorted(summary.rows.items()):
        click.echo(f"  {table}: {count:,} rows")


@workspace.command("import")
@click.argument("root", type=click.Path(exists=True, path_type=Path))
@click.option("--workspace", "path", type=click.Path(path_type=Path), help="Workspace file [default: the first "
              "workspace source].")
@click.option("--skip-bad-lines", is_flag=True, help="Import the good lines and report the bad ones, instead of "
              "importing nothing when any line is bad.")
@click.pass_obj
def workspace_import(ctx: Context, root: Path, path: Path | None, skip_bad_lines: bool) -> None:
    """Import Azure diagnostic logs archived to a storage account (insights-logs-*/.../PT1H.json)."""
    from collector.workspace.archive import import_archive

    target = _workspace(ctx, path)
    if not target.exists():
        target.create()
    report = import_archive(target, root, skip_bad_lines=skip_bad_lines)
    imported = sum(report.rows_imported.values())
    click.echo(f"imported {imported:,} rows from {report.files_read} file(s) "
               f"({report.files_skipped} already imported) into {target.path}")
    for category, count in sorted(report.rows_imported.items()):
        click.echo(f"  {category}: {count:,} rows")
    for problem in report.bad_lines:
        click.echo(f"skipped {problem}", err=True)


# -- query -------------------------------------------------------------------------------------------------------

@main.command("query")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--from", "start_text", help="Window start (ISO-8601); binds WindowStart and limits the timespan.")
@click.option("--to", "end_text", help="Window end (ISO-8601) [default: now].")
@click.option("--grain", default="5m", show_default=True, help="Binds Grain for the production queries.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--workspace", "path", type=click.Path(path_type=Path), help="Workspace file [default: the first "
              "workspace source].")
@click.pass_obj
def query(ctx: Context, file: Any, start_text: str | None, end_text: str | None, grain: str, fmt: str,
          path: Path | None) -> None:
    """Run KQL (a file, or - for standard input) against the embedded workspace and print the result.

    The production queries in queries/ use WindowStart, WindowEnd and Grain: give --from (and --to) to bind them.
    """
    from collector.config import parse_duration

    text = file.read()
    timespan = None
    if start_text or end_text:
        end = parse_time(end_text, "--to") if end_text else utcnow()
        start = parse_time(start_text, "--from") if start_text else end - timedelta(days=1)
        if start >= end:
            raise InputError([], f"--from ({start.isoformat()}) must be before --to ({end.isoformat()})")
        text = window_prelude(start, end, parse_duration(grain)) + text
        timespan = (start, end)
    elif "WindowStart" in text or "WindowEnd" in text:
        raise InputError([], "this query uses WindowStart/WindowEnd: give --from (and --to) to bind them")
    result = _workspace(ctx, path).query(text, timespan)
    if fmt == "csv":
        click.echo(as_csv(result), nl=False)
    elif fmt == "json":
        click.echo(as_json(result))
    else:
        click.echo(as_table(result))


# -- collect -----------------------------------------------------------------------------------------------------

@main.group(cls=Group)
def collect() -> None:
    """Collect rollups from the configured sources into the store."""


def _job_specs(jobs: Sequence[str]) -> list[Any]:
    names = [s.name for s in ROLLUPS]
    unknown = [j for j in jobs if j not in names]
    if unknown:
        raise InputError([], f"unknown job(s) {', '.join(unknown)}; jobs: {', '.join(names)}")
    return [s for s in ROLLUPS if not jobs or s.name in jobs]


def _open_store(ctx: Context) -> Any:
    from collector.store import Store

    return Store.open(ctx.settings.store.url)


def _cost_job(ctx: Context) -> Any:
    """The cost and budget work that follows each pass; bad price book, rules, inventory or budget files stop the
    command before anything is collected."""
    from collector.cost_job import CostJob
    from collector.inventories import build_inventory

    return CostJob.from_settings(ctx.settings, build_inventory(ctx.settings).deployments())


def _finish(summary: Any) -> None:
    log.info("%s", summary.line())
    if not summary.ok:
        for outcome in summary.failures():
            click.echo(f"missing: {outcome.source}/{outcome.job} from {outcome.failed.start.isoformat()} "
                       f"({'will retry' if outcome.transient else 'needs a fix'}): {outcome.error}", err=True)
        sys.exit(1)


@collect.command("once")
@click.option("--source", "sources", multiple=True, help="Only this source (repeatable).")
@click.option("--job", "jobs", multiple=True, help="Only this job (repeatable): a query name or platform_metrics.")
@click.pass_obj
def collect_once_cmd(ctx: Context, sources: tuple[str, ...], jobs: tuple[str, ...]) -> None:
    """One pass: every job from its watermark (less the lookback) up to now - lag."""
    from collector.demo_job import timing_of
    from collector.run import collect_once
    from collector.sources import build_sources

    specs = _job_specs(jobs or tuple(ctx.settings.collector.queries))
    cost_job = _cost_job(ctx)
    store = _open_store(ctx)
    summary = collect_once(store, build_sources(ctx.settings, sources), specs, timing_of(ctx.settings), utcnow())
    log.info("%s", cost_job.after_pass(store, utcnow()))
    _finish(summary)


@collect.command("run")
@click.pass_obj
def collect_run(ctx: Context) -> None:
    """Collect every collector.interval until interrupted, applying retention after each pass."""
    from collector.demo_job import timing_of
    from collector.health import HealthMetrics
    from collector.report_schedule import reports_after_pass
    from collector.run import collect_once
    from collector.schedule import run_every
    from collector.sources import build_sources

    settings = ctx.settings
    specs = _job_specs(tuple(settings.collector.queries))
    cost_job = _cost_job(ctx)
    store = _open_store(ctx)
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
    from collector.demo_job import timing_of
    from collector.run import backfill
    from collector.sources import build_sources
    from collector.windows import split_range

    since, until = parse_time(since_text, "--since"), parse_time(until_text, "--until")
    if since >= until:
        raise InputError([], f"--since ({since.isoformat()}) must be before --until ({until.isoformat()})")
    timing = timing_of(ctx.settings)
    specs = _job_specs(jobs or tuple(ctx.settings.collector.queries))
    cost_job = _cost_job(ctx)
    store = _open_store(ctx)
    windows = len(list(split_range(since, until, timing.grain, timing.max_window)))
    with click.progressbar(length=windows, label="backfill", file=sys.stderr) as bar:
        summary = backfill(store, build_sources(ctx.settings, sources), specs, timing, since, until, utcnow(),
                           on_window=lambda _w: bar.update(1))
    from collector.costs import refresh_costs

    days = refresh_costs(store, cost_job.model, since, min(until, utcnow()), utcnow())
    log.info("cost: %d day(s) re-attributed", days)
    _finish(summary)


# -- status and demo ---------------------------------------------------------------------------------------------

@main.command("status")
@click.pass_obj
def status(ctx: Context) -> None:
    """Per source and job: watermark, lag behind now, last error and the missing range."""
    from collector.demo_job import timing_of
    from collector.windows import collectable_end

    store = _open_store(ctx)
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


@main.command("demo")
@click.option("--once", is_flag=True, help="Generate, collect and summarise, then exit (no follow-up collection).")
@click.option("--serve/--no-serve", default=True, show_default=True,
              help="Serve the dashboards (`aoai-obs serve`) while collection continues.")
@click.pass_obj
def demo(ctx: Context, once: bool, serve: bool) -> None:
    """Generate the demo organisation, backfill it into the store and keep collecting as traffic arrives."""
    from collector.demo_job import describe, follow, prepare
    from collector.sources import first_workspace

    settings = ctx.settings
    workspace_path = first_workspace(settings).path  # a clear error when no workspace source is configured
    cost_job = _cost_job(ctx)
    store = _open_store(ctx)
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
    import subprocess

    if not any(e.name == "serve" for e in _plugged_in()):
        click.echo("dashboards not installed (no `serve` command): the summary above is all the demo shows", err=True)
        return None
    command = [sys.executable, "-m", "collector.cli"]
    if ctx.config_path is not None:
        command += ["--config", str(ctx.config_path)]
    settings = ctx.settings.dashboards
    click.echo(f"dashboards: http://{settings.host}:{settings.port}/ (operations, cost, reports)", err=True)
    return subprocess.Popen([*command, "serve"])


# Cost commands live in their own module (collector/cost_cli.py); they import the cost model only when run.
from collector.cost_cli import budgets, cost, export  # noqa: E402
from collector.report_cli import report  # noqa: E402

main.add_command(export)
main.add_command(cost)
main.add_command(budgets)
main.add_command(report)

if __name__ == "__main__":
    main()
