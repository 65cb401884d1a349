"""`aoai-obs bill import | runs`: the actual bill (Cost Management exports) into the store."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from collector.azure_clients import Connection
from collector.billing.blobs import BlobContainerSource
from collector.billing.exports import ExportFile
from collector.billing.folders import FolderSource
from collector.billing.meters import describe
from collector.billing.reconciliation import Reconciliation
from collector.billing.reconciliation_text import render_text
from collector.cli.context import Context, utcnow
from collector.config import BillSettings
from collector.cost.bill_import import import_bill
from collector.cost.inventories import build_inventory
from collector.cost.model import load_cost_model
from collector.cost.reconcile import reconcile_range
from collector.cost.table import apply_bill
from collector.csvcells import SafeWriter
from collector.errors import InputError
from collector.rollups.months import parse_month
from collector.store import bills

#: `reconcile`'s exit code when the month's gap passes the threshold (1 and 2 are errors).
GAP_EXIT = 3


def export_files(source: str, settings: BillSettings) -> Iterable[ExportFile]:
    """The files under SOURCE: a blob container when it is a URL, else a local folder."""
    if source.startswith(("https://", "http://")):
        endpoint = source.split("/", 3)[:3]
        connection = Connection("/".join(endpoint), ca_bundle=settings.ca_bundle, tenant_id=settings.tenant_id,
                                client_id=settings.client_id)
        secret = settings.connection_string
        return BlobContainerSource(source, connection,
                                   connection_string=secret.get_secret_value() if secret is not None else None).files()
    folder = Path(source)
    if not folder.is_dir():
        raise InputError([], f"SOURCE {source!r} is neither a folder nor a blob container URL "
                             "(https://<account>.blob.core.windows.net/<container>[/<prefix>])")
    return FolderSource(folder).files()


@click.group("bill")
def bill() -> None:
    """The actual bill: Cost Management exports (FOCUS or actual/amortized cost; CSV, gzip or Parquet) into the
    store, for reconciliation and for allocating the bill to teams."""


@bill.command("import")
@click.argument("source", required=False)
@click.pass_obj
def bill_import(obj: Context, source: str | None) -> None:
    """Import the export runs under SOURCE (a folder or a blob container URL; default: bill.source). Only Azure
    OpenAI lines are kept; the newest run of each export and period replaces what an earlier run left."""
    settings = obj.settings.bill
    source = source or settings.source
    if not source:
        raise InputError([], "give SOURCE (a folder or a blob container URL) or set bill.source in the settings")
    model = load_cost_model(obj.settings, build_inventory(obj.settings).deployments())
    store = obj.open_store()
    try:
        summary = import_bill(store, export_files(source, settings), source, utcnow())
        for run in summary.runs_imported:
            apply_bill(store, model, run.first_day, run.last_day + timedelta(days=1), utcnow())
    finally:
        store.close()
    for run in summary.runs_imported:
        click.echo(f"{_period(run)}\trun {run.run_id}")
    if summary.unmapped:
        click.echo(f"warning: {len(summary.unmapped)} meter(s) could not be read as model, type and kind; their lines "
                   "are stored and shown as unmapped in reconciliation:", err=True)
        for name, reason in sorted(summary.unmapped.items()):
            click.echo(f"  {name}: {reason}", err=True)
    if summary.unlisted:
        click.echo(f"note: {len(summary.unlisted)} file(s) no manifest lists were ignored (e.g. "
                   f"{summary.unlisted[0]})", err=True)
    click.echo(summary.line(), err=True)


@bill.command("runs")
@click.pass_obj
def bill_runs(obj: Context) -> None:
    """The export runs in the store: export, dataset, days covered, run id, lines, when imported and from where."""
    store = obj.open_store()
    try:
        runs = bills.bill_runs(store)
    finally:
        store.close()
    if not runs:
        click.echo("no bill imported yet: run `aoai-obs bill import SOURCE`")
        return
    for run in runs:
        click.echo(f"{_period(run)}\t{run.lines} line(s)\trun {run.run_id}\t"
                   f"imported {run.imported_at:%Y-%m-%d %H:%M} UTC"
                   f"\tfrom {run.source}")


def _period(run: bills.BillRun) -> str:
    return f"{run.export_name}\t{run.dataset} {run.data_version}\t{run.first_day:%Y-%m-%d}..{run.last_day:%Y-%m-%d}"


def parse_threshold(text: str) -> Decimal:
    """`1%`, `0.5%` or a bare number of percent, as a fraction (0.01 for 1%)."""
    try:
        percent = Decimal(text.strip().removesuffix("%").strip())
    except InvalidOperation:
        percent = Decimal("NaN")
    if not percent.is_finite() or not 0 <= percent <= 100:
        raise InputError([], f"--threshold: {text!r} is not a percentage from 0% to 100% (e.g. 1% or 0.5%)")
    return percent / 100


@click.command("reconcile")
@click.option("--month", required=True, help="The calendar month (YYYY-MM, UTC) to reconcile.")
@click.option("--threshold", "threshold_text", default="1%", show_default=True,
              help="How far the month's gross gap (the absolute gaps of each account and meter, summed) may reach, "
                   "as a share of the estimate, before the command exits non-zero (3).")
@click.option("--format", "fmt", type=click.Choice(["text", "csv"]), default="text", show_default=True)
@click.pass_obj
def reconcile(obj: Context, month: str, threshold_text: str, fmt: str) -> None:
    """The estimate (telemetry x price book) beside the imported bill, per account, meter (model, version,
    deployment type, kind) and day: quantities and cost on both sides, the gap in dollars and percent, and its likely
    cause (export, quantity, price: with the override that would close a price gap)."""
    threshold = parse_threshold(threshold_text)
    start, end = parse_month(month)
    settings = obj.settings
    model = load_cost_model(settings, build_inventory(settings).deployments())
    store = obj.open_store()
    try:
        result = reconcile_range(store, model, start, end, utcnow(), threshold=threshold)
    finally:
        store.close()
    if fmt == "csv":
        click.echo(gaps_csv(result), nl=False)
    else:
        click.echo(render_text(result), nl=False)
    summary = result.summary
    click.echo(f"reconcile {month}: estimate ${summary.estimated_cost:,.2f}, billed ${summary.billed_cost:,.2f}, "
               f"gross gap {summary.gross_percent or 0:.2f}% (threshold {threshold * 100:g}%)", err=True)
    if summary.exceeded:
        sys.exit(GAP_EXIT)


def gaps_csv(result: Reconciliation) -> str:
    """Every gap as a CSV row, numbers as numbers, for a spreadsheet."""
    out = io.StringIO()
    writer = SafeWriter(out, lineterminator="\n")
    writer.writerow(["day", "account", "meter", "model", "version", "deployment_type", "kind", "estimated_quantity",
                     "billed_quantity", "estimated_cost", "billed_cost", "gap", "gap_percent", "cause", "reasons",
                     "explanation", "suggested_override"])
    for g in result.gaps:
        writer.writerow([g.day.isoformat(), g.account, describe(g.meter), g.meter.model, g.meter.version or "",
                         g.meter.deployment_type, g.meter.kind, g.estimated_quantity, g.billed_quantity,
                         g.estimated_cost, g.billed_cost, g.gap, "" if g.gap_percent is None else g.gap_percent,
                         g.cause.value, " ".join(r.value for r in g.reasons), g.explanation,
                         g.override.describe() if g.override is not None else ""])
    return out.getvalue()
