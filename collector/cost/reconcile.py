"""The estimate beside the bill: telemetry priced by the book and the imported bill, both per day, account and meter,
handed to the pure reconciliation (`collector.billing.reconciliation`).

The estimate side comes from the daily cost table (brought up to date for the range first), per day, account,
deployment and price: a deployment's tokens are split into the meters Azure bills them on (uncached input, cached
input, output; PTU-hours for provisioned deployments) and priced at the rates of the row that priced them, overrides
included. The bill side is the stored export lines; where two exports bill the same account, meter and day (a FOCUS
and a legacy export of one scope), one is used: FOCUS first, then actual cost, then amortized cost.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from collector.billing.reconciliation import Reconciliation, reconcile
from collector.cost.meter_lines import bill_side, estimated_lines
from collector.cost.model import CostModel
from collector.cost.table import refresh_costs, stale_days
from collector.errors import TerminalError
from collector.store import bills
from collector.store.database import Store

DAY = timedelta(days=1)


def reconcile_range(store: Store, model: CostModel, start: datetime, end: datetime, now: datetime, *,
                    threshold: Decimal) -> Reconciliation:
    """The estimate and the bill of [start, end) side by side, each gap with its likely cause."""
    stale = stale_days(store, model, start, end)
    if stale:
        refresh_costs(store, model, stale[0], stale[-1] + DAY, now)
    return reconcile_stored(store, model, start, end, threshold=threshold)


def reconcile_stored(store: Store, model: CostModel, start: datetime, end: datetime, *,
                     threshold: Decimal) -> Reconciliation:
    """`reconcile_range` over the estimate as the store holds it, writing nothing (for readers such as the
    dashboards): days the model has not priced are compared as the collector last priced them."""
    bill = bill_side(bills.read_lines(store, start, end), bills.bill_runs(store), start, end)
    if not bill.periods:
        raise TerminalError(f"no bill covers {start:%Y-%m-%d} .. {end - DAY:%Y-%m-%d}: import the Cost Management "
                            "export first (aoai-obs bill import SOURCE; aoai-obs bill runs lists what is there)")
    foreign = bill.currencies - {model.book.currency.upper()}
    if foreign:
        raise TerminalError(f"the bill is in {', '.join(sorted(foreign))}, the price book in {model.book.currency}: "
                            "reconciliation compares like with like, and this release prices in USD only; export "
                            "the bill in USD (a Cost Management export of a USD billing account), or compare the "
                            "two outside the tool")
    rows = store.read_cost_daily(start, end, by=("day", "account", "deployment", "price_id"), estimate=True)
    estimate = estimated_lines(rows, model)
    accounts = {line.account for line in estimate}
    return reconcile(estimate, bill.lines, bill.periods, accounts, threshold=threshold)
