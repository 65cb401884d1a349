"""Budget notifications: each budget's thresholds newly crossed, one webhook message, and the record that makes it
once per threshold per period.

One message per budget and pass lists every threshold the budget newly crossed (spend that jumps from 40 % to
110 % in one pass gives one message naming 50, 80 and 100 %, not three). Each threshold is recorded in the
notification log only after the receiver answered 2xx, so:

- a receiver that fails (non-2xx, refused, timeout) leaves the thresholds unrecorded and the next pass sends them
  again; the pass stops at the first failure, since every budget goes to the same receiver, and says how many wait;
- a threshold once recorded is never sent again in that period, across restarts (the log is the store);
- delivery is at least once, not exactly once: a crash (or a store error) after the receiver answered and before
  the record is written sends that message again on the next pass. Two notifiers on one store may both send.

A budget's amount or thresholds changed mid-month keep what was already notified for that budget id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from collector.cost.budgets import Alert, Budget, Budgets, BudgetStatus, ScopeKey, evaluate_all, newly_due, render_alert
from collector.errors import TransientError
from collector.rollups.months import Period

log = logging.getLogger(__name__)

Send = Callable[[Alert], None]


class NotificationLog(Protocol):
    """Which thresholds were notified (collector.store.database.Store is one)."""

    def notified_thresholds(self, budget_id: str, period_start: datetime) -> set[int]: ...

    def record_notification(self, budget_id: str, period_start: datetime, threshold: int, now: datetime) -> None: ...


@dataclass(frozen=True)
class NotifyResult:
    statuses: tuple[BudgetStatus, ...]
    sent: tuple[Alert, ...]  # delivered and recorded
    pending: tuple[Alert, ...]  # due, not delivered: the next pass retries them
    error: str = ""  # why the first pending one failed

    def summary(self) -> str:
        """One line for the pass's log."""
        over = sum(1 for s in self.statuses if s.crossed and s.crossed[-1] >= 100)
        text = (f"budgets: {len(self.statuses)} checked, {over} at or over 100 %, {len(self.sent)} notification(s) "
                f"sent")
        return f"{text}, {len(self.pending)} waiting for the next pass ({self.error})" if self.pending else text


def notify_budgets(notifications: NotificationLog, budgets: Budgets | Sequence[Budget], period: Period,
                   spend: Mapping[ScopeKey, Decimal], as_of: datetime, send: Send, *, now: datetime) -> NotifyResult:
    """Evaluate every budget for `period` with its spend up to `as_of`, send what is newly due through `send`, and
    record each threshold once `send` returned (a 2xx). `send` raises TransientError for a failed delivery."""
    statuses = evaluate_all(budgets, period, spend, as_of)
    due: list[Alert] = []
    for status in statuses:
        thresholds = newly_due(status, notifications.notified_thresholds(status.budget.id, period.start))
        if thresholds:
            due.append(render_alert(status, thresholds))
    sent: list[Alert] = []
    for i, alert in enumerate(due):
        try:
            send(alert)
        except TransientError as e:
            log.warning("budget notification for %s (%s) not delivered: %s", alert.budget_id,
                        ", ".join(f"{t} %" for t in alert.thresholds), e)
            return NotifyResult(tuple(statuses), tuple(sent), tuple(due[i:]), str(e))
        for threshold in alert.thresholds:
            notifications.record_notification(alert.budget_id, alert.period_start, threshold, now)
        log.info("budget notification sent for %s: passed %s", alert.budget_id,
                 ", ".join(f"{t} %" for t in alert.thresholds))
        sent.append(alert)
    return NotifyResult(tuple(statuses), tuple(sent), ())
