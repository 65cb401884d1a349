"""Both sides of the bill as meter lines (per day, account and meter): the estimate's daily rows split into the
meters Azure bills them on (uncached input, cached input, output; PTU-hours for provisioned deployments) at the
rates that priced them, and the imported bill's lines (one export per account, meter and day: FOCUS first, then
actual cost, then amortized cost).
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
from collector.billing.reconciliation import BilledLine, BillPeriod, EstimatedLine
from collector.cost.attribution import DeploymentInfo
from collector.cost.model import CostModel
from collector.cost.pricing import MILLION, PriceRow, price_for
from collector.store import bills

DAY = timedelta(days=1)
#: Which export wins where two bill the same account, meter and day (dataset names as manifests spell them).
DATASET_RANK = {"focuscost": 0, "actualcost": 1, "amortizedcost": 2}
UNMAPPED = "unmapped meter: "


@dataclass(frozen=True)
class BillSide:
    """The bill's lines for a range, the days its runs cover, and its currencies."""

    lines: tuple[BilledLine, ...]
    periods: tuple[BillPeriod, ...]
    currencies: frozenset[str]

    @property
    def currency(self) -> str:
        """The one currency of the lines (USD when there are none); several is refused where it matters."""
        return next(iter(sorted(self.currencies)), "USD")


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


class MeterView:
    """Daily estimate rows (one day, account, deployment, team, method and price each) seen as meters: tokens per
    kind at the rates of the row that priced them, or PTU-hours for a provisioned deployment."""

    def __init__(self, model: CostModel) -> None:
        self.model = model
        self.deployments = {(d.account.lower(), d.name): d for d in model.deployments}

    def quantities(self, row: Mapping[str, Any]) -> list[tuple[MeterKey, Decimal, Decimal]]:
        """(meter, quantity, estimated cost) of a row; rows of usage no deployment of the inventory explains have no
        meter and give nothing."""
        deployment = self.deployments.get((row["account"].lower(), row["deployment"]))
        if deployment is None:
            return []
        price = price_for(self.model.book, deployment.model, deployment.version, deployment.deployment_type,
                          deployment.region, row["day"] + DAY / 2, account=deployment.account,
                          deployment=deployment.name)
        return _split(deployment, price, row)


def _split(d: DeploymentInfo, price: PriceRow | None,
           row: Mapping[str, Any]) -> list[tuple[MeterKey, Decimal, Decimal]]:
    if d.deployment_type in PROVISIONED_TYPES:
        cost = Decimal(row["cost_micro_usd"]) / MILLION
        rate = price.ptu_hour if price is not None else None
        return [(MeterKey(ANY_MODEL, None, d.deployment_type, PTU_HOUR), cost / rate if rate else Decimal(0), cost)]
    prompt, cached, completion = row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"]
    rates: dict[str, Decimal | None] = {INPUT: None, CACHED_INPUT: None, OUTPUT: None}
    if price is not None and not price.provisioned:
        rates = {INPUT: price.input, OUTPUT: price.output,
                 CACHED_INPUT: price.cached_input if price.cached_input is not None else price.input}
    found = []
    for kind, tokens in ((INPUT, prompt - cached), (CACHED_INPUT, cached), (OUTPUT, completion)):
        if tokens:
            rate = rates[kind]
            cost = Decimal(tokens) * rate / MILLION if rate is not None else Decimal(0)
            found.append((MeterKey(d.model, d.version, d.deployment_type, kind), Decimal(tokens), cost))
    return found


def estimated_lines(rows: Iterable[Mapping[str, Any]], model: CostModel) -> list[EstimatedLine]:
    """Daily estimate rows as meter lines priced by the book (unit price per token or PTU-hour)."""
    view, lines = MeterView(model), []
    for row in rows:
        for meter, quantity, cost in view.quantities(row):
            unit = cost / quantity if quantity else None
            lines.append(EstimatedLine(_day(row["day"]), row["account"].lower(), meter, quantity, cost, unit))
    return lines


def bill_side(stored: Sequence[Mapping[str, Any]], runs: Sequence[bills.BillRun], start: datetime,
              end: datetime) -> BillSide:
    """Stored bill lines as meter lines (one export per account, meter and day), with the days the runs cover
    within [start, end)."""
    def rank(row: Mapping[str, Any]) -> tuple[int, str]:
        return DATASET_RANK.get(row["dataset"].lower(), len(DATASET_RANK)), row["export_id"]

    def key(row: Mapping[str, Any]) -> tuple[datetime, str, str]:
        return row["day"], row["account"], row["meter_id"] or row["meter_name"]

    best: dict[tuple[datetime, str, str], tuple[int, str]] = {}
    for row in stored:
        if key(row) not in best or rank(row) < best[key(row)]:
            best[key(row)] = rank(row)
    lines, currencies = [], set()
    for row in stored:
        if rank(row) != best[key(row)]:
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
