"""After each collector pass: bring the daily cost table up to date, then check budgets and notify.

Side effects at the edge: the store and the webhook. The decisions live in `costs`, `budgets` and `budget_alerts`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from collector.config import Settings
from collector.cost.attribution import MICRO_USD, DeploymentInfo
from collector.cost.budget_alerts import Send, notify_budgets
from collector.cost.budgets import Budgets, BudgetStatus, evaluate_all, load_budgets, spend_by_scope
from collector.cost.model import CostModel, load_cost_model
from collector.cost.table import bring_costs_up_to_date
from collector.cost.webhook import WebhookSender
from collector.rollups.months import Period, month_of, previous_month
from collector.store.database import Store

log = logging.getLogger(__name__)
COST_JOBS = ("usage_tokens", "caller_requests", "platform_metrics")


@dataclass(frozen=True)
class Spend:
    """A budget's view of a daily cost row."""

    team: str
    account: str
    deployment: str
    cost: Decimal


@dataclass(frozen=True)
class CostJob:
    model: CostModel
    budgets: Budgets
    send: Send | None  # None: budgets are evaluated, nothing is sent
    recent: timedelta  # re-attributed every pass (the pass may have replaced these days' rollups)
    history: timedelta  # how far back a changed price book re-prices

    @classmethod
    def from_settings(cls, settings: Settings, deployments: Sequence[DeploymentInfo]) -> CostJob:
        budgets = load_budgets(settings.budgets.file) if settings.budgets.file else Budgets()
        url = settings.budgets.webhook_url
        send = WebhookSender(url.get_secret_value(), settings.budgets.webhook_format,
                             allow_http=settings.budgets.webhook_allow_http) if url else None
        return cls(load_cost_model(settings, deployments), budgets, send,
                   recent=settings.collector.lookback + timedelta(days=1),
                   history=timedelta(days=settings.store.retention.hourly_days))

    def after_pass(self, store: Store, now: datetime) -> str:
        """Re-attribute what changed, then budgets; one line for the pass's log."""
        days = bring_costs_up_to_date(store, self.model, now, recent=self.recent, history=self.history)
        line = f"cost: {days} day(s) re-attributed"
        if self.budgets.budgets:
            line += "; " + self.check_budgets(store, now)
        return line

    def check_budgets(self, store: Store, now: datetime) -> str:
        as_of = collected_until(store) or now
        period = month_of(as_of)
        results = []
        # The month just closed is checked once more with its whole spend: a threshold crossed in its last
        # minutes is seen only after the data passed midnight.
        periods = [previous_month(period), period] if as_of - period.start < timedelta(days=1) else [period]
        for p in periods:
            spend = month_spend(store, p, as_of)
            if self.send is None:
                statuses = evaluate_all(self.budgets, p, spend, min(as_of, p.end))
                results.append(f"budgets {p.label}: {len(statuses)} checked, "
                               f"{sum(1 for s in statuses if s.crossed)} past a threshold (no webhook set)")
            else:
                outcome = notify_budgets(store, self.budgets, p, spend, min(as_of, p.end), self.send, now=now)
                results.append(f"{p.label} {outcome.summary()}")
        return "; ".join(results)

    def statuses(self, store: Store, now: datetime) -> list[BudgetStatus]:
        as_of = collected_until(store) or now
        period = month_of(as_of)
        return evaluate_all(self.budgets, period, month_spend(store, period, as_of), as_of)


def collected_until(store: Store) -> datetime | None:
    """How far the cost inputs are collected: the lowest watermark of the jobs cost reads."""
    marks = [s.watermark for s in store.job_statuses() if s.job in COST_JOBS and s.watermark is not None]
    return min(marks) if marks else None


def month_spend(store: Store, period: Period, as_of: datetime) -> dict[Any, Decimal]:
    """Spend per budget scope in the period up to the day `as_of` falls in (daily cost rows)."""
    rows = store.read_cost_daily(period.start, min(period.end, as_of + timedelta(days=1)),
                                 by=("team", "account", "deployment"))
    return spend_by_scope(Spend(r["team"], r["account"], r["deployment"], Decimal(r["cost_micro_usd"]) * MICRO_USD)
                          for r in rows)
