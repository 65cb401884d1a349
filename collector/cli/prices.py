"""`aoai-obs prices sync`: the price book brought up to date with the Azure Retail Prices API, the differences and
the meters left out shown first."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import click

import collector
from collector.azure_clients import Connection
from collector.billing.price_sync import Change, SyncedRow, Unmapped
from collector.billing.retailprices import RetailPricesClient
from collector.cli.context import Context, utcnow
from collector.cost.book_sync import SyncPlan, plan_sync, read_current, write_plan
from collector.errors import InputError

#: The API is public and answers within seconds a page; three retries with backoff, then the next run tries again.
RETRIES = 3
READ_TIMEOUT = 60.0
#: Regions shown per unmapped meter before the rest are counted.
SHOWN_REGIONS = 4


@click.group("prices")
def prices() -> None:
    """Azure OpenAI prices: the price book kept up to date with Azure's list prices."""


@prices.command("sync")
@click.option("--currency", default="USD", show_default=True,
              help="Currency asked of the API. The price book is in USD (Azure's prices in other currencies are "
                   "for reference only), so only USD is accepted.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="The price book to write (default: the settings' prices.book). Rows a person wrote in it, its "
                   "overrides and comments are kept; only the rows a sync wrote are replaced.")
@click.option("--endpoint", help="The Retail Prices API (default: the settings' prices.retail_endpoint).")
@click.option("--dry-run", is_flag=True, help="Show the differences and the meters left out; write nothing.")
@click.pass_obj
def sync(obj: Context, currency: str, out: Path | None, endpoint: str | None, dry_run: bool) -> None:
    """Read Azure OpenAI's list prices, show what changes in the price book, and write it when something does."""
    settings = obj.settings.prices
    path = out if out is not None else settings.book
    if path is None:
        raise InputError([], "give --out FILE (the price book to write), or set prices.book in the settings; the "
                             "shipped default book is never written")
    _refuse_the_package(path)
    if currency.upper() != "USD":
        raise InputError([], f"--currency {currency}: the price book is in USD (Azure's prices in other currencies "
                             "are for reference only); leave --currency out")
    current = read_current(path)  # a broken book stops here, before the network
    connection = Connection(endpoint or settings.retail_endpoint, ca_bundle=settings.ca_bundle, retries=RETRIES,
                            read_timeout=READ_TIMEOUT)
    http_log = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    level = http_log.level
    if not obj.debug:  # azure-core logs every request and response at INFO: only under --debug
        http_log.setLevel(logging.WARNING)
    try:
        with RetailPricesClient(connection) as client:
            items = client.openai_prices("USD")
    finally:
        http_log.setLevel(level)
    plan = plan_sync(current, items, utcnow().date())
    click.echo(render_changes(plan.changes), nl=False)
    click.echo(render_unmapped_table(plan.unmapped), nl=False)
    click.echo(render_shadowed(plan.shadowed), nl=False)
    written = False if dry_run else write_plan(plan)
    click.echo(_summary(plan, len(items), written, dry_run), err=True)


def _refuse_the_package(path: Path) -> None:
    package = Path(collector.__file__).resolve().parent
    if path.resolve().is_relative_to(package):
        raise InputError([], f"{path} is inside the installed package ({package}): the shipped book is replaced on "
                             "upgrade; give --out a file of your own (and set prices.book to it)")


def _summary(plan: SyncPlan, read: int, written: bool, dry_run: bool) -> str:
    kinds: dict[str, int] = defaultdict(int)
    for change in plan.changes:
        kinds[change.kind] += 1
    counted = ", ".join(f"{kinds[k]} {k}" for k in ("added", "changed", "removed")) if plan.changes else "no change"
    if dry_run:
        outcome = "dry run: nothing written"
    elif written:
        outcome = f"written to {plan.current.path}"
    else:
        outcome = f"{plan.current.path} already up to date: nothing written"
    return (f"prices sync: {read} price item(s) read, {len(plan.rows)} row(s) in the book, figures: {counted}, "
            f"{len(plan.unmapped)} item(s) not mapped, {len(plan.current.kept)} row(s) written by hand kept; "
            f"{outcome}")


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    return "".join("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n"
                   for row in [header, *body])


def _number(change: Change, old: bool) -> str:
    value = change.old if old else change.new
    return "-" if value is None else format(value.normalize(), "f")


def render_changes(changes: Sequence[Change]) -> str:
    """Per figure: added, changed or removed, with the old and new rate (USD per 1M tokens, or per PTU-hour)."""
    if not changes:
        return "Price book: no figure changes.\n"
    body = [[c.kind, c.row_id, c.figure, _number(c, True), _number(c, False)] for c in changes]
    return (f"Price book: {len(changes)} figure change(s) (USD per 1M tokens, or per PTU-hour):\n"
            + _table(["change", "row", "figure", "old", "new"], body))


def render_unmapped_table(unmapped: Sequence[Unmapped]) -> str:
    """The price items not in the book, one line per meter name, type and reason, with the regions they cover."""
    if not unmapped:
        return "\nEvery price item maps to the book.\n"
    groups: dict[tuple[str, str, str], list[Unmapped]] = defaultdict(list)
    for u in unmapped:
        groups[(u.meter_name, u.type, u.reason)].append(u)
    body = []
    for (name, kind, reason), found in sorted(groups.items()):
        regions = sorted({u.region or "no region" for u in found})
        shown = ", ".join(regions[:SHOWN_REGIONS]) + (f" +{len(regions) - SHOWN_REGIONS}"
                                                      if len(regions) > SHOWN_REGIONS else "")
        meter_ids = sorted({u.meter_id for u in found})
        ids = meter_ids[0] + (f" +{len(meter_ids) - 1}" if len(meter_ids) > 1 else "")
        body.append([name, kind, f"{len(regions)}: {shown}", ids, reason])
    return (f"\nNot in the book: {len(unmapped)} price item(s) of {len(groups)} meter(s), listed for you to price "
            "by hand if you use them:\n" + _table(["meter", "type", "regions", "meter id", "reason"], body))


def render_shadowed(shadowed: Sequence[SyncedRow]) -> str:
    """Synced rows left out because a row written by hand has their id."""
    if not shadowed:
        return ""
    return (f"\nKept your rows over Azure's list prices for {len(shadowed)} id(s):\n"
            + "".join(f"  {r.id}\n" for r in shadowed))
