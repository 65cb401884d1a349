"""The estimate beside the bill: telemetry priced by the book and the imported bill, both per day, account and meter,
handed to the pure reconciliation (`collector.billing.reconciliation`).

The estimate side comes from the daily cost table (brought up to date for the range first), per day, account,
deployment and price: a deployment's tokens are split into the meters Azure bills them on (uncached input, cached
input, output; PTU-hours for provisioned deployments) and priced at the rates of the row that priced them, overrides
included. The bill side is the stored export lines; where two exports bill the same account, meter and day (a FOCUS
and a legacy export of one scope), one is used: FOCUS first, then actual cost, then amortized cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from collector.billing.meters import (
    ANY_MODEL,
    CACHED_INPUT,
    INPUT,
    OUTPUT,
    PROVISIONED_TYPES,
    PTU_HOUR,
    MeterKey,
)
from collector.billing.reconciliation import BilledLine, BillPeriod, EstimatedLine, Reconciliation, reconcile
from collector.cost.attribution import DeploymentInfo
from collector.cost.model import CostModel, refresh_costs, stale_days
from collector.cost.pricing import MILLION, PriceRow, price_for
from collector.errors import TerminalError
from collector.store import bills
from collector.store.database import Store

DAY = timedelta(days=1)
#: Which export wins where two bill the same account, meter and day (dataset names as manifests spell them).
DATASET_RANK = {"focuscost": 0, "actualcost": 1, "amortizedcost": 2}
UNMAPPED = "unmapped meter: "


@dataclass(frozen=True)
class BillSide:
    """The bill's lines for a range, the days its runs cover, and its currency."""

    lines: tuple[BilledLine, ...]
    periods: tuple[BillPeriod, ...]
    currencies: frozenset[str]


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def estimated_lines(rows: Iterable[Mapping[str, Any]], model: CostModel) -> list[EstimatedLine]:
    """Daily cost rows (summed per day, account, deployment and price id) as meter lines priced by the book."""
    deployments = {(d.account.lower(), d.name): d for d in model.deployments}
    lines: list[EstimatedLine] = []
    for row in rows:
        deployment = deployments.get((row["account"].lower(), row["deployment"]))
        if deployment is None or not row["deployment"]:
            continue  # usage no deployment of the inventory explains has no meter to sit on
        day = row["day"]
        price = price_for(model.book, deployment.model, deployment.version, deployment.deployment_type,
                          deployment.region, day + DAY / 2, account=deployment.account, deployment=deployment.name)
        lines.extend(_meter_lines(_day(day), deployment, price, row))
    return lines


def _meter_lines(day: date, d: DeploymentInfo, price: PriceRow | None, row: Mapping[str, Any]) -> list[EstimatedLine]:
    account = d.account.lower()
    if d.deployment_type in PROVISIONED_TYPES:
        cost = Decimal(row["cost_micro_usd"]) / MILLION
        rate = price.ptu_hour if price is not None else None
        hours = cost / rate if rate else Decimal(0)
        return [EstimatedLine(day, account, MeterKey(ANY_MODEL, None, d.deployment_type, PTU_HOUR), hours, cost,
                              rate)]
    prompt, cached, completion = row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"]
    rates: dict[str, Decimal | None] = {INPUT: None, CACHED_INPUT: None, OUTPUT: None}
    if price is not None and not price.provisioned:
        rates = {INPUT: price.input, OUTPUT: price.output,
                 CACHED_INPUT: price.cached_input if price.cached_input is not None else price.input}
    lines = []
    for kind, tokens in ((INPUT, prompt - cached), (CACHED_INPUT, cached), (OUTPUT, completion)):
        if not tokens:
            continue
        rate = rates[kind]
        unit = rate / MILLION if rate is not None else None
        cost = Decimal(tokens) * unit if unit is not None else Decimal(0)
        lines.append(EstimatedLine(day, account, MeterKey(d.model, d.version, d.deployment_type, kind),
                                   Decimal(tokens), cost, unit))
    return lines


def bill_side(stored: Sequence[Mapping[str, Any]], runs: Sequence[bills.BillRun], start: datetime,
              end: datetime) -> BillSide:
    """Stored bill lines as reconciliation lines (one export per account, meter and day), with the days the runs
    cover within [start, end)."""
    best: dict[tuple[datetime, str, str], tuple[int, str]] = {}
    for row in stored:
        key = (row["day"], row["account"], row["meter_id"] or row["meter_name"])
        rank = (DATASET_RANK.get(row["dataset"].lower(), len(DATASET_RANK)), row["export_id"])
        if key not in best or rank < best[key]:
            best[key] = rank
    lines, currencies = [], set()
    for row in stored:
        key = (row["day"], row["account"], row["meter_id"] or row["meter_name"])
        if (DATASET_RANK.get(row["dataset"].lower(), len(DATASET_RANK)), row["export_id"]) != best[key]:
            continue
        meter = (MeterKey(row["model"], row["version"] or None, row["deployment_type"], row["kind"]) if row["model"]
                 else MeterKey(UNMAPPED + row["meter_name"], None, "", ""))
        lines.append(BilledLine(_day(row["day"]), row["account"], meter, Decimal(row["quantity"]),
                                Decimal(row["billed_cost"])))
        currencies.add(row["currency"].upper())
    first, last = _day(start), _day(end) - DAY
    periods = tuple(BillPeriod(max(first, _day(r.first_day)), min(last, _day(r.last_day))) for r in runs
                    if _day(r.first_day) <= last and _day(r.last_day) >= first)
    return BillSide(tuple(lines), periods, frozenset(currencies))


def reconcile_range(store: Store, model: CostModel, start: datetime, end: datetime, now: datetime, *,
                    threshold: Decimal) -> Reconciliation:
    """The estimate and the bill of [start, end) side by side, each gap with its likely cause."""
    stale = stale_days(store, model, start, end)
    if stale:
        refresh_costs(store, model, stale[0], stale[-1] + DAY, now)
    bill = bill_side(bills.read_lines(store, start, end), bills.bill_runs(store), start, end)
    if not bill.periods:
        raise TerminalError(f"no bill covers {start:%Y-%m-%d} .. {end - DAY:%Y-%m-%d}: import the Cost Management "
                            "export first (aoai-obs bill import SOURCE; aoai-obs bill runs lists what is there)")
    foreign = bill.currencies - {model.book.currency.upper()}
    if foreign:
        raise TerminalError(f"the bill is in {', '.join(sorted(foreign))}, the price book in {model.book.currency}: "
                            "compare like with like (aoai-obs prices sync --currency "
                            f"{sorted(foreign)[0]} writes a book in the bill's currency)")
    rows = store.read_cost_daily(start, end, by=("day", "account", "deployment", "price_id"))
    estimate = estimated_lines(rows, model)
    accounts = {line.account for line in estimate}
    return reconcile(estimate, bill.lines, bill.periods, accounts, threshold=threshold)
