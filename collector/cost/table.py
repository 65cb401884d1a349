"""The daily cost tables, kept current: the estimate (`cost_estimate_daily`: the hourly attribution summed per day)
and what every cost surface reads (`cost_daily`: the estimate, or the bill allocated to teams where a bill covers an
account's day; `collector.cost.ledger`), re-priced whenever the price book, rules or inventory change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from collector.cost.attribution import Attribution, CostLine, to_micro
from collector.cost.ledger import ledger_rows, rebuild_ledger
from collector.cost.meter_lines import bill_side
from collector.cost.model import CostModel, attribute_range
from collector.cost.pricing import MILLION
from collector.rollups.windows import align_down, align_up
from collector.store import bills
from collector.store.database import Store

DAY = timedelta(days=1)
#: Days attributed per read of the hourly rollups when refreshing: bounds memory on long ranges.
REFRESH_CHUNK_DAYS = 7


def fingerprint(model: CostModel) -> str:
    """A digest of everything that prices and attributes: a day priced under another fingerprint is stale."""
    return hashlib.sha256(repr((model.book, model.rules, sorted(model.deployments, key=repr))).encode()).hexdigest()


def daily_rows(attribution: Attribution) -> list[dict[str, Any]]:
    """The attribution's hourly lines summed per UTC day, account, deployment, team, method and price."""
    sums: dict[tuple[datetime, str, str, str, str, str], list[int]] = {}
    for line in attribution.lines:
        day = align_down(line.bucket, DAY)
        key = (day, line.account, line.deployment, line.team, line.method, line.price_id or "")
        row = sums.setdefault(key, [0, 0, 0, 0, 0, 0])
        row[0] += line.requests
        row[1] += line.prompt_tokens
        row[2] += line.cached_tokens
        row[3] += line.completion_tokens
        row[4] += to_micro(line.cost)
        row[5] = max(row[5], int(line.unpriced))
    return [{"day": k[0], "account": k[1], "deployment": k[2], "team": k[3], "method": k[4], "price_id": k[5],
             "requests": v[0], "prompt_tokens": v[1], "cached_tokens": v[2], "completion_tokens": v[3],
             "cost_micro_usd": v[4], "unpriced": v[5]} for k, v in sorted(sums.items())]


def refresh_costs(store: Store, model: CostModel, start: datetime, end: datetime, now: datetime) -> int:
    """Re-attribute the days of [start, end) from the hourly rollups into the estimate, and `cost_daily` from it and
    the bill; returns the days done."""
    start, end = align_down(start, DAY), align_up(end, DAY)
    stamp, done, at = fingerprint(model), 0, start
    runs = bills.bill_runs(store)
    while at < end:
        stop = min(at + REFRESH_CHUNK_DAYS * DAY, end)
        estimate = daily_rows(attribute_range(store, model, at, stop))
        bill = bill_side(bills.read_lines(store, at, stop), runs, at, stop)
        store.replace_cost_days(at, stop, estimate, stamp, now, ledger=ledger_rows(estimate, bill, model))
        done += int((stop - at) / DAY)
        at = stop
    return done


def stale_days(store: Store, model: CostModel, start: datetime, end: datetime) -> list[datetime]:
    """Days of [start, end) with collected usage that are not priced by this cost model: never priced, or priced
    by another book, rules or inventory."""
    first = store.first_usage_bucket()
    marks = [s.watermark for s in store.job_statuses() if s.watermark is not None]
    if first is None or not marks:
        return []
    start = max(align_down(start, DAY), align_down(first, DAY))
    end = min(align_up(end, DAY), align_up(max(marks), DAY))
    stamp, priced = fingerprint(model), store.cost_day_fingerprints(start, end)
    days, at = [], start
    while at < end:
        if priced.get(at) != stamp:
            days.append(at)
        at += DAY
    return days


def bring_costs_up_to_date(store: Store, model: CostModel, now: datetime, *, recent: timedelta,
                           history: timedelta) -> int:
    """What a collector pass does for cost: re-attribute the `recent` days (the pass may have replaced their
    rollups) and every stale day of the last `history` (a changed price book re-prices them). Returns the days
    re-attributed."""
    days = {d for d in stale_days(store, model, now - history, now)}
    at = align_down(now - recent, DAY)
    while at < now:
        days.add(at)
        at += DAY
    done = 0
    for run_start, run_end in _runs(sorted(days)):
        done += refresh_costs(store, model, run_start, run_end, now)
    return done


def _runs(days: Sequence[datetime]) -> list[tuple[datetime, datetime]]:
    """Consecutive days as [start, end) ranges."""
    runs: list[tuple[datetime, datetime]] = []
    for day in days:
        if runs and runs[-1][1] == day:
            runs[-1] = (runs[-1][0], day + DAY)
        else:
            runs.append((day, day + DAY))
    return runs


def apply_bill(store: Store, model: CostModel, start: datetime, end: datetime, now: datetime) -> int:
    """After a bill import: the days of [start, end) the estimate has not priced with this model are priced (their
    ledger with them), and every day's ledger is built again from the estimate and the bill. Returns the days."""
    start, end = align_down(start, DAY), align_up(end, DAY)
    stale = stale_days(store, model, start, end)
    if stale:
        refresh_costs(store, model, stale[0], stale[-1] + DAY, now)
    rebuild_ledger(store, model, start, end, now)
    return int((end - start) / DAY)


def is_whole_days(start: datetime, end: datetime) -> bool:
    """Whether [start, end) is made of whole UTC days: what the daily tables can answer exactly."""
    return align_down(start, DAY) == start and align_down(end, DAY) == end


def cost_lines(store: Store, model: CostModel, start: datetime, end: datetime, now: datetime) -> Attribution:
    """The cost of the whole UTC days [start, end) as every surface reads it (`cost_daily`: billed where a bill
    covers an account's day, estimated elsewhere), one line per day, account, deployment, team, method, price and
    basis; days the current price book, rules or inventory have not priced are priced first."""
    if not is_whole_days(start, end):
        raise ValueError(f"cost lines cover whole UTC days, not {start.isoformat()} .. {end.isoformat()}")
    stale = stale_days(store, model, start, end)
    if stale:
        refresh_costs(store, model, stale[0], stale[-1] + DAY, now)
    keys = ("day", "account", "deployment", "team", "method", "price_id", "basis")
    lines = tuple(
        CostLine(r["day"], r["account"], r["deployment"], r["team"], r["method"], r["requests"], r["prompt_tokens"],
                 r["cached_tokens"], r["completion_tokens"], Decimal(r["cost_micro_usd"]) / MILLION,
                 r["price_id"] or None, bool(r["unpriced"]), r["basis"])
        for r in store.read_cost_daily(start, end, by=keys))
    return Attribution(lines, ())
