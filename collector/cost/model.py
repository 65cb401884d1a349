"""Cost at read time: the price book, attribution rules and inventory applied to the store's hourly rollups.

Nothing here is stored: a corrected price book or rule re-prices and re-attributes history the next time it is
read. The pure parts live in `pricing`, `attribution` and `usage`; this module reads the files and the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from collector.config import Settings
from collector.cost.attribution import (
    Attribution,
    AttributionRules,
    DeploymentInfo,
    attribute,
    load_attribution_rules,
    to_micro,
)
from collector.cost.pricing import DEFAULT_BOOK, PriceBook, load_price_book, price_for
from collector.cost.usage import COST_METRICS, cost_inputs
from collector.rollups.specs import APIM_TOKENS, CALLER_REQUESTS, PLATFORM_METRICS, USAGE_TOKENS
from collector.rollups.windows import align_down, align_up
from collector.store.database import Store

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class CostModel:
    """What turns usage into attributed cost: prices, rules and the deployments they apply to."""

    book: PriceBook
    rules: AttributionRules
    deployments: tuple[DeploymentInfo, ...]


def load_cost_model(settings: Settings, deployments: Sequence[DeploymentInfo]) -> CostModel:
    """The price book (`prices.book`, else the shipped one) and attribution rules (`teams.rules`, else none:
    everything is `unallocated`) named by the settings; problems in either file raise InputError with every line."""
    book = load_price_book(settings.prices.book or DEFAULT_BOOK)
    rules = load_attribution_rules(settings.teams.rules) if settings.teams.rules else AttributionRules()
    return CostModel(book, rules, tuple(deployments))


def attribute_range(store: Store, model: CostModel, start: datetime, end: datetime) -> Attribution:
    """Priced, attributed cost lines per hour, account, deployment and team for the hours of [start, end).

    Each hour is priced from its own rows only, so any range is the sum of its days in `cost_daily`."""
    start, end = align_down(start, HOUR), align_up(end, HOUR)
    metric_rows = [r for r in store.read(PLATFORM_METRICS, "1h", start=start, end=end) if r["metric"] in COST_METRICS]
    inputs = cost_inputs(
        model.rules,
        model.deployments,
        usage_rows=store.read(USAGE_TOKENS, "1h", start=start, end=end),
        apim_rows=store.read(APIM_TOKENS, "1h", start=start, end=end),
        caller_rows=store.read(CALLER_REQUESTS, "1h", start=start, end=end),
        metric_rows=metric_rows,
    )
    return attribute(model.book, model.rules, model.deployments, inputs.usage, inputs.platform_tokens,
                     inputs.caller_requests, inputs.provisioned_hours)


# -- the daily cost table ----------------------------------------------------------------------------------------

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
    """Re-attribute the days of [start, end) from the hourly rollups into `cost_daily`; returns the days done."""
    start, end = align_down(start, DAY), align_up(end, DAY)
    stamp, done, at = fingerprint(model), 0, start
    while at < end:
        stop = min(at + REFRESH_CHUNK_DAYS * DAY, end)
        store.replace_cost_days(at, stop, daily_rows(attribute_range(store, model, at, stop)), stamp, now)
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


def price_facts(model: CostModel, start: datetime, end: datetime) -> tuple[dict[str, Decimal], dict[str, str]]:
    """Price id -> PTU-hour rate and price id -> provenance (with the override applied) for every price a
    deployment of the model could get between start and end (each effective date in the range counts)."""
    instants = {start, *(r.effective for r in model.book.rows if start <= r.effective < end)}
    rates: dict[str, Decimal] = {}
    sources: dict[str, str] = {}
    for dep in model.deployments:
        for at in instants:
            row = price_for(model.book, dep.model, dep.version, dep.deployment_type, dep.region, at,
                            account=dep.account, deployment=dep.name)
            if row is None:
                continue
            sources[row.id] = f"{row.source}; {row.override}" if row.override else row.source
            if row.ptu_hour is not None:
                rates[row.id] = row.ptu_hour
    return rates, sources
