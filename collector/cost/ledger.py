"""The cost every surface reads (`cost_daily`): the bill allocated to teams where a bill covers an account's day, the
estimate elsewhere, every row saying which (`basis`).

Where the imported bill has lines for an account on a day, each billed line (an account's meter on that day) is
split across the (deployment, team, method) that used the meter, by their tokens of the meter's kind; a provisioned
meter is split as its estimate was, used share by tokens and the rest idle (the estimate's cost per team and `idle`
is the weight). The split is exact to the cent (`billing.allocation`): the rows of a billed line add up to the line.
Billed cost nothing in telemetry explains goes to team `unallocated`, deployment "". Requests and tokens stay the
telemetry's: the bill changes what usage cost, not what was used. Days and accounts with no bill line keep the
estimate as it is.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from collector.billing.allocation import BilledAmount, Driver, allocate
from collector.billing.meters import pair_versions
from collector.cost.attribution import BILLED, ESTIMATE, IDLE, UNALLOCATED
from collector.cost.meter_lines import BillSide, MeterView, bill_side
from collector.cost.model import CostModel
from collector.cost.pricing import MILLION
from collector.store import bills
from collector.store.database import Store

log = logging.getLogger(__name__)
#: The price id of billed rows: their price is the bill's, per meter and day.
BILL_PRICE = "bill"
_TOKENS = ("requests", "prompt_tokens", "cached_tokens", "completion_tokens")


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def ledger_rows(estimate: Sequence[Mapping[str, Any]], bill: BillSide, model: CostModel) -> list[dict[str, Any]]:
    """`cost_daily` rows for the estimate's days: billed where the bill has lines for the account that day."""
    if bill.lines and bill.currencies != {model.book.currency.upper()}:
        log.warning("the bill is in %s, the price book in %s: cost stays an estimate until they agree",
                    ", ".join(sorted(bill.currencies)), model.book.currency)
        bill = BillSide((), bill.periods, frozenset())
    billed_pairs = {(line.day, line.account.lower()) for line in bill.lines}
    rows: list[dict[str, Any]] = []
    drivers: list[Driver] = []
    view = MeterView(model)
    usage: dict[tuple[date, str, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in estimate:
        day, account = _day(row["day"]), row["account"].lower()
        if (day, account) not in billed_pairs:
            rows.append({**row, "basis": ESTIMATE})
            continue
        total = usage[(day, account, row["deployment"], row["team"], row["method"])]
        for i, measure in enumerate(_TOKENS):
            total[i] += row[measure]
        drivers.extend(_drivers(row, view))
    renamed = pair_versions(((d.account, d.meter) for d in drivers), ((b.account, b.meter) for b in bill.lines))
    drivers = [Driver(d.day, d.account, renamed.get((d.account, d.meter), d.meter), d.team, d.deployment, d.method,
                      d.quantity, d.estimated_cost) for d in drivers]
    amounts = [BilledAmount(b.day, b.account.lower(), b.meter, b.quantity, b.cost, bill.currency) for b in bill.lines]
    allocation = allocate(amounts, drivers)
    cost: dict[tuple[date, str, str, str, str], Decimal] = defaultdict(Decimal)
    for share in allocation.rows:
        cost[(share.day, share.account, share.deployment, share.team, share.method)] += share.cost
    for key in sorted(set(cost) | set(usage)):
        day, account, deployment, team, method = key
        measures = usage.get(key, [0, 0, 0, 0])
        rows.append({"day": _midnight(day), "account": account, "deployment": deployment, "team": team,
                     "method": method, "price_id": BILL_PRICE, **dict(zip(_TOKENS, measures, strict=True)),
                     "cost_micro_usd": int(cost.get(key, Decimal(0)) * MILLION), "unpriced": 0, "basis": BILLED})
    return rows


def _drivers(row: Mapping[str, Any], view: MeterView) -> list[Driver]:
    """What one estimate row used of each meter: tokens per kind, or for a provisioned deployment its estimated
    cost (used share per team and idle, as the estimate split it) as the weight."""
    drivers = []
    for meter, quantity, cost in view.quantities(row):
        weight = Decimal(row["cost_micro_usd"]) if meter.kind == "ptu_hour" else quantity
        if weight > 0 or row["team"] in (IDLE, UNALLOCATED):
            drivers.append(Driver(_day(row["day"]), row["account"].lower(), meter, row["team"], row["deployment"],
                                  row["method"], weight, cost))
    return drivers


def estimate_rows(store: Store, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The stored estimate of [start, end), row by row."""
    keys = ("day", "account", "deployment", "team", "method", "price_id")
    return store.read_cost_daily(start, end, by=keys, estimate=True)


def rebuild_ledger(store: Store, model: CostModel, start: datetime, end: datetime, now: datetime) -> None:
    """`cost_daily` of [start, end) again from the stored estimate and bill (after a bill import)."""
    bill = bill_side(bills.read_lines(store, start, end), bills.bill_runs(store), start, end)
    store.replace_ledger_days(start, end, ledger_rows(estimate_rows(store, start, end), bill, model), now)
