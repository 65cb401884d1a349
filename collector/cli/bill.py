"""`aoai-obs bill import | runs`: the actual bill (Cost Management exports) into the store."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click

from collector.azure_clients import Connection
from collector.billing.blobs import BlobContainerSource
from collector.billing.exports import ExportFile
from collector.billing.folders import FolderSource
from collector.cli.context import Context, utcnow
from collector.config import BillSettings
from collector.cost.bill_import import import_bill
from collector.errors import InputError
from collector.store import bills


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
    store = obj.open_store()
    try:
        summary = import_bill(store, export_files(source, settings), source, utcnow())
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
