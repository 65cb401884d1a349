"""Every surface prices a month alike: `attribute_range` over a month (what `aoai-obs cost` prints) equals the daily
cost table's sum for that month (what the Cost page and the monthly report read), to the micro-dollar, for months
before any telemetry, partly covered, covered by PTU utilisation alone, and after the last data.

The telemetry is drawn by Hypothesis as episodes of hours: PTU utilisation reported by Azure, and token usage on the
PTU and on a standard deployment, each episode anywhere in (or out of) the spring of 2026.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from collector.cost.attribution import MICRO_USD, load_attribution_rules, to_micro
from collector.cost.model import CostModel, attribute_range
from collector.cost.pricing import load_price_book
from collector.cost.table import bring_costs_up_to_date
from collector.cost.usage import UTILISATION
from collector.rollups.months import parse_month
from collector.rollups.specs import PLATFORM_METRICS, USAGE_TOKENS
from collector.rollups.windows import Window
from collector.store.database import Store
from tests.cost.test_demo_costs import DEPLOYMENTS, EXAMPLES

HOUR = timedelta(hours=1)
SPAN_START = datetime(2026, 3, 20, tzinfo=UTC)
SPAN_HOURS = 24 * 75  # to 2026-06-03: March and June partly, April and May wholly
PTU = next(d for d in DEPLOYMENTS if d.deployment_type == "ProvisionedManaged")
STANDARD = next(d for d in DEPLOYMENTS if d.deployment_type == "GlobalStandard")
PTU_RATE = Decimal("1.00")  # examples/demo-prices.yaml
MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06", "2026-07"]
CALLER = "3f1c6a52-8d2e-4b7a-9c0d-5e6f7a8b9c0d"

#: (first hour from SPAN_START, hours); drawn short and sparse so each example writes few rows.
episodes = st.lists(st.tuples(st.integers(0, SPAN_HOURS - 1), st.integers(1, 30)), max_size=4)


def _hours(drawn: list[tuple[int, int]]) -> list[datetime]:
    return sorted({SPAN_START + (first + i) * HOUR for first, length in drawn for i in range(length)
                   if first + i < SPAN_HOURS})


def _rows(utilised: list[datetime], ptu_used: list[datetime], standard_used: list[datetime], percent: int
          ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    metrics = [("m", h, PTU.account.upper(), PTU.name, UTILISATION, "", float(percent * 60), 60.0, float(percent),
                float(percent)) for h in utilised]
    usage = [("m", h, dep.account.upper(), dep.name, dep.model, CALLER, 3, 3000 + i, 1024, 400 + i)
             for dep, hours in ((PTU, ptu_used), (STANDARD, standard_used)) for i, h in enumerate(hours)]
    return metrics, usage


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(utilisation=episodes, ptu_usage=episodes, standard_usage=episodes, percent=st.integers(0, 100))
# No telemetry at all; then PTU utilisation alone, idle (April); then March partly covered, usage on both
# deployments with utilisation reported for some of the PTU's used hours only, across the month's end.
@example(utilisation=[], ptu_usage=[], standard_usage=[], percent=0)
@example(utilisation=[(24 * 20, 30)], ptu_usage=[], standard_usage=[], percent=0)
@example(utilisation=[(24 * 11 + 20, 10)], ptu_usage=[(24 * 11 + 15, 20)], standard_usage=[(24 * 11, 30)],
         percent=37)
def test_a_month_costs_the_same_in_the_cli_and_in_the_daily_table(
    utilisation: list[tuple[int, int]], ptu_usage: list[tuple[int, int]], standard_usage: list[tuple[int, int]],
    percent: int,
) -> None:
    model = CostModel(load_price_book(EXAMPLES / "demo-prices.yaml"),
                      load_attribution_rules(EXAMPLES / "demo-teams.yaml"), DEPLOYMENTS)
    utilised = _hours(utilisation)
    metrics, usage = _rows(utilised, _hours(ptu_usage), _hours(standard_usage), percent)
    end = SPAN_START + SPAN_HOURS * HOUR
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(f"sqlite:///{Path(folder) / 'store.sqlite'}")
        try:
            window = Window(SPAN_START, end)
            store.replace_window(PLATFORM_METRICS, "m", window, metrics, now=end)
            store.replace_window(USAGE_TOKENS, "m", window, usage, now=end)
            # What a collector pass does: every unpriced day since the first collected hour into `cost_daily`.
            bring_costs_up_to_date(store, model, end, recent=timedelta(days=1), history=timedelta(days=400))

            for month in MONTHS:
                start, stop = parse_month(month)
                attribution = attribute_range(store, model, start, stop)
                cli = sum((to_micro(t.cost) for t in attribution.totals), 0)
                daily = sum(int(r["cost_micro_usd"]) for r in store.read_cost_daily(start, stop, by=("team",)))
                assert cli == daily, month
                # And both are right about the PTU: its capacity x rate for each hour Azure reported utilisation.
                ptu = sum((t.cost for t in attribution.totals if t.deployment == PTU.name), Decimal(0))
                hours = sum(1 for h in utilised if start <= h < stop)
                assert ptu == hours * PTU.capacity * PTU_RATE, month
                assert cli * MICRO_USD >= ptu
        finally:
            store.close()
