"""`aoai-obs export usage | focus` and `aoai-obs cost`: attributed cost out of the store, as files or a table.

Files are written next to their destination and renamed into place when complete: a failed export leaves nothing
half-written.
"""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from collector.atomicfile import atomic_path, atomic_text
from collector.cli.context import Context, parse_time, utcnow
from collector.cost.attribution import Attribution
from collector.cost.export import DIMENSIONS, parse_by, usage_rows, write_csv, write_parquet
from collector.cost.focus import check_rows, focus_rows, write_focus_csv
from collector.cost.inventories import build_inventory, resource_ids
from collector.cost.model import CostModel, attribute_range, load_cost_model, price_facts, uncharged_provisioned
from collector.cost.table import cost_lines, is_whole_days
from collector.errors import InputError, TerminalError
from collector.rollups.months import parse_month


def _attribution(obj: Context, start: datetime, end: datetime,
                 hourly: bool = False) -> tuple[Attribution, CostModel]:
    """(cost of [start, end), cost model) from the settings' store, price book, rules and inventory: the daily cost
    every surface reads (billed where a bill covers an account's day, estimated elsewhere), unless the range or the
    grouping needs hours, which only the estimate has."""
    settings = obj.settings
    inventory = build_inventory(settings)
    model = load_cost_model(settings, inventory.deployments())
    store = obj.open_store()
    try:
        if hourly or not is_whole_days(start, end):
            click.echo("note: hourly figures are estimates (telemetry x price book): the bill is daily", err=True)
            return attribute_range(store, model, start, end), model
        return cost_lines(store, model, start, end, utcnow()), model
    finally:
        store.close()


def _range(obj: Context, start_text: str | None, end_text: str | None, month: str | None) -> tuple[datetime, datetime]:
    if month is not None:
        if start_text or end_text:
            raise InputError([], "give either --month or --from/--to, not both")
        return parse_month(month)
    if not start_text or not end_text:
        raise InputError([], "give --from and --to (ISO-8601, UTC unless an offset is given), or --month")
    start, end = parse_time(start_text, "--from"), parse_time(end_text, "--to")
    if not start < end:
        raise InputError([], f"--from {start.isoformat()} is not before --to {end.isoformat()}")
    return start, end


@click.group("export")
def export() -> None:
    """Attributed usage and cost as files: CSV, Parquet or FOCUS 1.2."""


@export.command("usage")
@click.option("--from", "start_text", help="Start (ISO-8601 date or time, UTC unless an offset is given).")
@click.option("--to", "end_text", help="End, exclusive.")
@click.option("--month", help="A calendar month (YYYY-MM, UTC) instead of --from/--to.")
@click.option("--by", "by_text", default="team,deployment,model,day", show_default=True,
              help="Group by any of team, account, deployment (with its account, model and type), model, "
                   "deployment_type and one period of hour, day, month. Attribution method and price id are always "
                   "kept apart.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "table"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: standard output; Parquet needs a file).")
@click.pass_obj
def export_usage(obj: Context, start_text: str | None, end_text: str | None, month: str | None, by_text: str,
                 fmt: str, out: Path | None) -> None:
    """Usage and cost per period, team, deployment and model, each figure with its attribution method and price."""
    by = parse_by(by_text)
    if fmt == "parquet" and (out is None or str(out) == "-"):
        raise InputError([], "--format parquet needs --out FILE")
    start, end = _range(obj, start_text, end_text, month)
    attribution, model = _attribution(obj, start, end, hourly="hour" in by)
    inventory = {(d.account, d.name): d for d in model.deployments}
    rows = usage_rows(attribution, inventory, by, start)
    if fmt == "parquet":
        assert out is not None
        with atomic_path(out) as temp:
            count = write_parquet(rows, temp)
    elif fmt == "table":
        count = len(rows)
        click.echo(usage_table(rows, by), nl=False)
    else:
        with atomic_text(out) as stream:
            count = write_csv(rows, stream)
    _done(count, out, fmt, attribution, model)


def _done(count: int | None, out: Path | None, fmt: str, attribution: Attribution, model: CostModel) -> None:
    unpriced = sorted({(x.account, x.deployment) for x in attribution.lines if x.unpriced})
    where = f" to {out}" if out is not None and str(out) != "-" else ""
    if count is not None:
        click.echo(f"export: {count} row(s){where} ({fmt})", err=True)
    if unpriced:
        names = ", ".join(f"{a}/{d}" for a, d in unpriced)
        click.echo(f"warning: no price matched for {names}: their usage is priced at 0 and flagged `unpriced`; "
                   "add rows or an override to the price book (prices.book)", err=True)
    idle = uncharged_provisioned(model.deployments, attribution)
    if idle:
        click.echo(f"warning: no PTU utilisation was collected for {', '.join(idle)} in this range, so none of its "
                   "hours are charged (an hour counts only where Azure reports utilisation): add a `metrics` source "
                   "for its account, unless it did not exist then", err=True)


def usage_table(rows: list[dict[str, Any]], by: tuple[str, ...]) -> str:
    """A terminal table of export rows: the grouped columns, tokens and cost."""
    keys = ["period_start", *(d for d in DIMENSIONS if d in by), "attribution_method"]
    header = [*keys, "requests", "tokens", "cost_usd"]
    shown: dict[tuple[Any, ...], list[Any]] = {}  # price ids summed: the table shows no price column
    for row in rows:
        sums = shown.setdefault(tuple(row[k] for k in keys), [0, 0, Decimal(0)])
        sums[0] += row["requests"]
        sums[1] += row["prompt_tokens"] + row["completion_tokens"]
        sums[2] += row["cost_usd"]
    body = [[key[0].strftime("%Y-%m-%d %H:%M"), *(str(k) for k in key[1:]), f"{n:,}", f"{t:,}", f"{c:,.2f}"]
            for key, (n, t, c) in shown.items()]
    total = sum((r["cost_usd"] for r in rows), Decimal(0))
    body.append(["total", *([""] * (len(keys) - 1)), f"{sum(r['requests'] for r in rows):,}",
                 f"{sum(r['prompt_tokens'] + r['completion_tokens'] for r in rows):,}", f"{total:,.2f}"])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
    text = io.StringIO()
    for line in [header, *body]:
        text.write("  ".join(str(v).ljust(w) if i < len(keys) else str(v).rjust(w)
                             for i, (v, w) in enumerate(zip(line, widths, strict=True))).rstrip() + "\n")
    return text.getvalue()


@export.command("focus")
@click.option("--month", required=True, help="The billing period, a calendar month (YYYY-MM, UTC).")
@click.option("--billing-account-id", default="aoai-observatory-estimate", show_default=True,
              help="FOCUS BillingAccountId: your Azure billing account (or enrollment) id, so the rows join the "
                   "real bill in a FinOps hub.")
@click.option("--billing-account-name", default="", help="FOCUS BillingAccountName (default: the id).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="CSV file (default: standard output).")
@click.pass_obj
def export_focus(obj: Context, month: str, billing_account_id: str, billing_account_name: str,
                 out: Path | None) -> None:
    """The month's attributed cost as FOCUS 1.2 rows (CSV), allocation details in x_ columns."""
    start, end = parse_month(month)
    attribution, model = _attribution(obj, start, end)
    rates, sources = price_facts(model, start, end)
    rows = focus_rows(attribution, model.deployments, billing_period_start=start, billing_period_end=end,
                      billing_account_id=billing_account_id, billing_account_name=billing_account_name,
                      ptu_hour_rates=rates, sources=sources, resource_ids=resource_ids(obj.settings, model.deployments))
    problems = check_rows(rows)
    if problems:  # our bug, not the user's: refuse to hand a FinOps hub rows it would reject
        raise TerminalError("the FOCUS rows fail the FOCUS 1.2 checks; nothing written:\n  "
                            + "\n  ".join(problems[:20]))
    with atomic_text(out) as stream:
        count = write_focus_csv(rows, stream)
    _done(count, out, "FOCUS 1.2 CSV", attribution, model)


@click.command("cost")
@click.option("--from", "start_text", help="Start (ISO-8601 date or time, UTC unless an offset is given).")
@click.option("--to", "end_text", help="End, exclusive.")
@click.option("--month", help="A calendar month (YYYY-MM, UTC); default: the current month so far.")
@click.option("--by", "by_text", default="team", show_default=True, help="As for `export usage --by`.")
@click.pass_obj
def cost(obj: Context, start_text: str | None, end_text: str | None, month: str | None, by_text: str) -> None:
    """Attributed cost as a table: per team (or --by) with the attribution method, and the total."""
    by = parse_by(by_text)
    if month is None and not start_text and not end_text:
        now = utcnow()
        month = f"{now.year:04d}-{now.month:02d}"
    start, end = _range(obj, start_text, end_text, month)
    attribution, model = _attribution(obj, start, end, hourly="hour" in by)
    rows = usage_rows(attribution, {(d.account, d.name): d for d in model.deployments}, by, start)
    click.echo(f"cost {start:%Y-%m-%d} .. {end:%Y-%m-%d} (UTC), from the store's hourly rollups", err=True)
    click.echo(usage_table(rows, by), nl=False)
    _done(None, None, "table", attribution, model)



@click.command("budgets")
@click.pass_obj
def budgets(obj: Context) -> None:
    """This month's budgets: spent, percent, month-end forecast and the thresholds passed (from the daily cost
    table, as of the collected data)."""
    job = obj.cost_job()
    if not job.budgets.budgets:
        raise InputError([], "no budgets: set budgets.file to a budgets YAML (see examples/budgets.yaml)")
    store = obj.open_store()
    try:
        statuses = job.statuses(store, utcnow())
    finally:
        store.close()
    header = ["budget", "monthly USD", "spent USD", "used", "forecast USD", "forecast", "passed"]
    body = [[s.budget.id, f"{s.budget.monthly_usd:,.2f}", f"{s.spent:,.2f}", f"{s.percent_used} %",
             "-" if s.forecast is None else f"{s.forecast:,.2f}",
             "-" if s.forecast_percent is None else f"{s.forecast_percent} %",
             ", ".join(f"{t} %" for t in s.crossed) or "-"] for s in statuses]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    if statuses:
        click.echo(f"budgets {statuses[0].period.label}, as of {statuses[0].as_of:%Y-%m-%d %H:%M} UTC", err=True)
    for row in [header, *body]:
        click.echo("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths,
                                                                                                 strict=True))))
