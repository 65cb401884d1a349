"""Pure: monthly budgets per team or deployment: the budgets file, month-to-date evaluation, the run-rate forecast,
and which thresholds are newly due.

The file (every problem is reported at once, each with file, line and a fix)::

    thresholds: [50, 80, 100]      # percent of the monthly amount; the default for every budget
    budgets:
      - team: marketing
        monthly_usd: 1200
      - deployment: gpt-4o-ptu     # `account:` limits it to one account; without it, every account's
        account: contoso-aoai-eus  #   deployment of that name counts
        monthly_usd: 5000
        thresholds: [90, 100]

Amounts are `Decimal` USD, more than 0. Thresholds are whole percents from 1 to 1000 (above 100 warns of an
overrun), unique, kept sorted.

Scopes. A team budget matches the team name on cost lines exactly (case and all): the cost nobody is charged for
(`unallocated`, `idle`) belongs to no team's budget. A deployment budget covers every cost line of that deployment,
idle capacity included; `account` is compared case-insensitively. A budget's id is its scope, not its position in the
file: `team:marketing`, `deployment:gpt-4o-ptu` (every account) or `deployment:contoso-aoai-eus/gpt-4o-ptu`; so
reordering the file keeps what was notified, and renaming a team starts its budget afresh.

Spend is a mapping from scope key to month-to-date USD: `("team", name)` or `("deployment", account, name)` with
the account lowercased, or "" for the deployment summed over every account. `spend_by_scope` builds it from cost
lines.

Period and forecast. A budget's period is a calendar month in UTC: [first day 00:00, first day of the next month).
`as_of` is where the spend figures end (the data's end, not the wall clock: the collector lags behind now). The
month-end forecast extrapolates the run-rate::

    forecast = spent / elapsed × length of the month,   elapsed = as_of − period start

- once `as_of` reaches the end of the month, the forecast is the actual spend;
- in the month's first `FORECAST_AFTER` (one day) the forecast is None: a few hours of traffic, multiplied by
  ~700, says more about the hour of day than about the month;
- the forecast is informational: thresholds are crossed by actual spend only.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Protocol

from collector.rollups.months import Period
from collector.yamlfile import Loc, Located, read_located_yaml

TEAM, DEPLOYMENT = "team", "deployment"
DEFAULT_THRESHOLDS: tuple[int, ...] = (50, 80, 100)
MAX_THRESHOLD = 1000
FORECAST_AFTER = timedelta(days=1)
CENT = Decimal("0.01")

ScopeKey = tuple[str, ...]  # ("team", name) or ("deployment", account_lower_or_"", name)

# -- budgets -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    scope: str  # TEAM or DEPLOYMENT
    name: str  # the team or the deployment
    monthly_usd: Decimal
    thresholds: tuple[int, ...]  # sorted, unique
    account: str = ""  # deployment budgets only, lowercased; "" = every account

    @property
    def id(self) -> str:
        """Stable identity: what notifications are remembered by."""
        if self.scope == DEPLOYMENT and self.account:
            return f"{DEPLOYMENT}:{self.account}/{self.name}"
        return f"{self.scope}:{self.name}"

    @property
    def key(self) -> ScopeKey:
        """Where this budget's spend is found in a spend mapping."""
        return (TEAM, self.name) if self.scope == TEAM else (DEPLOYMENT, self.account, self.name)


@dataclass(frozen=True)
class Budgets:
    budgets: tuple[Budget, ...] = ()
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS  # the file's default


def _thresholds(at: Located, value: Any, loc: Loc) -> tuple[int, ...] | None:
    if not isinstance(value, list) or not value:
        at.add(loc, "must be a non-empty list of percents", "e.g. [50, 80, 100]")
        return None
    before = len(at.problems)
    seen: set[int] = set()
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int):
            hint = f"write {item.rstrip('%').strip()}" if isinstance(item, str) and item.endswith("%") else ""
            at.add((*loc, i), f"{item!r} is not a whole percent", hint)
        elif not 1 <= item <= MAX_THRESHOLD:
            at.add((*loc, i), f"{item} is not a percent from 1 to {MAX_THRESHOLD}")
        elif item in seen:
            at.add((*loc, i), f"{item} is given twice", "keep one of them")
        else:
            seen.add(item)
    return tuple(sorted(seen)) if len(at.problems) == before else None


def _budget(at: Located, raw: Any, loc: Loc, default: tuple[int, ...]) -> Budget | None:
    entry = at.mapping(raw, loc, (TEAM, DEPLOYMENT, "account", "monthly_usd", "thresholds"), ("monthly_usd",))
    if not entry:
        return None
    before = len(at.problems)
    scopes = [s for s in (TEAM, DEPLOYMENT) if s in entry]
    name = None
    if len(scopes) != 1:
        at.add(loc, f"a budget is for exactly one team or one deployment; found {' and '.join(scopes) or 'neither'}",
               "write `team: <name>` or `deployment: <name>`")
    else:
        name = at.text(entry[scopes[0]], (*loc, scopes[0]))
    account = ""
    if "account" in entry:
        if scopes != [DEPLOYMENT]:
            at.add((*loc, "account"), "only a deployment budget takes an account")
        else:
            account = (at.text(entry["account"], (*loc, "account")) or "").lower()
    amount = None
    if "monthly_usd" in entry:
        amount = at.decimal(entry["monthly_usd"], (*loc, "monthly_usd"))
        if amount is not None and amount <= 0:
            at.add((*loc, "monthly_usd"), f"{entry['monthly_usd']!r} must be more than 0")
    thresholds = _thresholds(at, entry["thresholds"], (*loc, "thresholds")) if "thresholds" in entry else default
    if len(at.problems) > before or name is None or amount is None or thresholds is None:
        return None
    return Budget(scopes[0], name, amount, thresholds, account)


def load_budgets(path: Path) -> Budgets:
    """Read and check a budgets file; every problem in it is reported at once, with its line."""
    data, lines, problems = read_located_yaml(path, "budgets file")
    at = Located(path, lines, problems)
    top = at.mapping(data, (), ("thresholds", "budgets"), ("budgets",))
    default = DEFAULT_THRESHOLDS
    if "thresholds" in top:
        default = _thresholds(at, top["thresholds"], ("thresholds",)) or DEFAULT_THRESHOLDS
    entries = top.get("budgets") or []
    if not isinstance(entries, list):
        at.add(("budgets",), "must be a list of budgets")
        entries = []
    budgets: list[Budget] = []
    first: dict[str, int] = {}
    for i, raw in enumerate(entries):
        budget = _budget(at, raw, ("budgets", i), default)
        if budget is None:
            continue
        if budget.id in first:
            line = lines.get(("budgets", first[budget.id]))
            at.add(("budgets", i), f"the budget {budget.id} is given twice (first at line {line})", "keep one of them")
            continue
        first[budget.id] = i
        budgets.append(budget)
    at.raise_if_any("budgets file")
    return Budgets(tuple(budgets), default)


# -- spend -------------------------------------------------------------------------------------------------------


class CostLike(Protocol):
    """What a cost line must say for budgets (collector.cost.attribution.CostLine does)."""

    @property
    def team(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def deployment(self) -> str: ...
    @property
    def cost(self) -> Decimal: ...


def spend_by_scope(lines: Iterable[CostLike]) -> dict[ScopeKey, Decimal]:
    """Sum cost lines (of one period) by every scope a budget can name: team, deployment on its account, and
    deployment over every account."""
    spend: dict[ScopeKey, Decimal] = {}
    for line in lines:
        for key in ((TEAM, line.team), (DEPLOYMENT, line.account.lower(), line.deployment),
                    (DEPLOYMENT, "", line.deployment)):
            spend[key] = spend.get(key, Decimal(0)) + line.cost
    return spend


# -- evaluation --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    period: Period
    as_of: datetime  # clamped to the period's end
    spent: Decimal  # USD, month to date
    percent_used: Decimal  # of the monthly amount, to 0.01
    crossed: tuple[int, ...]  # thresholds the spend has reached (spent >= threshold % of the amount)
    forecast: Decimal | None  # USD at month end, to the cent; None in the month's first FORECAST_AFTER
    forecast_percent: Decimal | None


def _percent(amount: Decimal, budget: Budget) -> Decimal:
    return (amount * 100 / budget.monthly_usd).quantize(CENT, rounding=ROUND_HALF_EVEN)


def forecast_month_end(period: Period, spent: Decimal, as_of: datetime,
                       forecast_after: timedelta = FORECAST_AFTER) -> Decimal | None:
    """spent / elapsed × month length (see the module's docstring for the edge cases), to the cent."""
    if as_of >= period.end:
        return spent
    elapsed = as_of - period.start
    if elapsed < max(forecast_after, timedelta(microseconds=1)):
        return None
    micro = timedelta(microseconds=1)
    rate = spent * Decimal((period.end - period.start) // micro) / Decimal(elapsed // micro)
    return rate.quantize(CENT, rounding=ROUND_HALF_EVEN)


def evaluate(budget: Budget, period: Period, spent: Decimal, as_of: datetime,
             forecast_after: timedelta = FORECAST_AFTER) -> BudgetStatus:
    """Where a budget stands at `as_of`, given the spend of the period up to then."""
    if as_of.tzinfo is None:
        raise ValueError("naive datetime: every time is timezone-aware UTC")
    if as_of < period.start:
        raise ValueError(f"as_of {as_of.isoformat()} is before the period {period.label}")
    as_of = min(as_of, period.end)
    crossed = tuple(t for t in budget.thresholds if spent * 100 >= t * budget.monthly_usd)
    forecast = forecast_month_end(period, spent, as_of, forecast_after)
    return BudgetStatus(budget, period, as_of, spent, _percent(spent, budget), crossed, forecast,
                        None if forecast is None else _percent(forecast, budget))


def evaluate_all(budgets: Budgets | Sequence[Budget], period: Period, spend: Mapping[ScopeKey, Decimal],
                 as_of: datetime) -> list[BudgetStatus]:
    """Every budget's status; a scope with no spend has spent 0."""
    items = budgets.budgets if isinstance(budgets, Budgets) else budgets
    return [evaluate(b, period, spend.get(b.key, Decimal(0)), as_of) for b in items]


def newly_due(status: BudgetStatus, notified: Collection[int]) -> tuple[int, ...]:
    """Thresholds crossed and not yet notified in this period, in ascending order."""
    return tuple(t for t in status.crossed if t not in notified)


# -- the message -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """One notification: a budget's thresholds newly crossed in a period. Format-neutral; webhook.py renders it."""

    budget_id: str
    period_start: datetime
    thresholds: tuple[int, ...]
    title: str
    text: str
    facts: tuple[tuple[str, str], ...]


def _usd(amount: Decimal) -> str:
    return f"${amount:,.2f}"


def render_alert(status: BudgetStatus, thresholds: Sequence[int]) -> Alert:
    """The message for thresholds newly crossed (one message per budget and pass, listing them all)."""
    budget = status.budget
    passed = ", ".join(f"{t} %" for t in thresholds)
    scope = f"team {budget.name}" if budget.scope == TEAM else (
        f"deployment {budget.name}" + (f" on {budget.account}" if budget.account else " (every account)"))
    title = f"Budget {budget.id}: {status.percent_used} % used in {status.period.label}"
    text = (f"The monthly budget of {scope} passed {passed}: {_usd(status.spent)} of "
            f"{_usd(budget.monthly_usd)} spent by {status.as_of:%Y-%m-%d %H:%M} UTC.")
    if status.forecast is None:
        forecast = "too early in the month to tell"
    else:
        forecast = f"{_usd(status.forecast)} ({status.forecast_percent} %)"
    facts = (("Budget", budget.id), ("Month", status.period.label), ("Spent", _usd(status.spent)),
             ("Monthly budget", _usd(budget.monthly_usd)), ("Used", f"{status.percent_used} %"),
             ("Thresholds passed", passed), ("Month-end forecast", forecast),
             ("As of", f"{status.as_of:%Y-%m-%d %H:%M} UTC"))
    return Alert(budget.id, status.period.start, tuple(thresholds), title, text, facts)
