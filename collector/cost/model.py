"""Cost at read time: the price book, attribution rules and inventory applied to the store's hourly rollups.

Nothing here is stored: a corrected price book or rule re-prices and re-attributes history the next time it is
read. The pure parts live in `pricing`, `attribution` and `usage`; this module reads the files and the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from collector.config import Settings
from collector.cost.attribution import (
    Attribution,
    AttributionRules,
    DeploymentInfo,
    attribute,
    load_attribution_rules,
)
from collector.cost.pricing import DEFAULT_BOOK, PROVISIONED_TYPES, PriceBook, load_price_book, price_for
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


def uncharged_provisioned(deployments: Sequence[DeploymentInfo], attribution: Attribution) -> list[str]:
    """Provisioned deployments of the inventory that an attribution with usage charges nothing: no PTU utilisation
    was collected for them in its range (an hour counts only where Azure reports it), so a missing metrics source
    would otherwise cost $0 without a word. `account/deployment` names, sorted; none when nothing was used at all."""
    if not attribution.lines:
        return []
    charged = {(line.account.lower(), line.deployment) for line in attribution.lines if line.cost}
    return sorted(f"{d.account}/{d.name}" for d in deployments
                  if d.deployment_type in PROVISIONED_TYPES and (d.account.lower(), d.name) not in charged)
