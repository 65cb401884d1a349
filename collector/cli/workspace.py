"""`aoai-obs workspace generate | import` and `aoai-obs query`: the embedded, Log-Analytics-shaped workspace."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TextIO

import click

from collector.cli.context import Context, Group, parse_time, utcnow
from collector.collection.sources import first_workspace
from collector.config import parse_duration
from collector.errors import InputError
from collector.rollups.kql import window_prelude
from collector.rollups.windows import align_up
from collector.workspace.archive import import_archive
from collector.workspace.engine import Workspace
from collector.workspace.generate import generate
from collector.workspace.result_format import as_csv, as_json, as_table


@click.group(cls=Group)
def workspace() -> None:
    """The embedded, Log-Analytics-shaped workspace."""


def _workspace(ctx: Context, path: Path | None) -> Workspace:
    if path is not None:
        return Workspace(path)

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


@click.command("query")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--from", "start_text", help="Window start (ISO-8601); binds WindowStart and limits the timespan.")
@click.option("--to", "end_text", help="Window end (ISO-8601) [default: now].")
@click.option("--grain", default="5m", show_default=True, help="Binds Grain for the production queries.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--workspace", "path", type=click.Path(path_type=Path), help="Workspace file [default: the first "
              "workspace source].")
@click.pass_obj
def query(ctx: Context, file: TextIO, start_text: str | None, end_text: str | None, grain: str, fmt: str,
          path: Path | None) -> None:
    """Run KQL (a file, or - for standard input) against the embedded workspace and print the result.

    The production queries in queries/ use WindowStart, WindowEnd and Grain: give --from (and --to) to bind them.
    """
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
