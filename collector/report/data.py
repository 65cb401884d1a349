"""The monthly report's figures: read from the store at the edge (`read_inputs`), assembled by pure functions.

Everything the report shows comes from four aggregate reads, grouped in the database, and the reconciliation:

- cost and tokens: the daily cost table (`cost_daily`) of the month and of the month before, per team, account,
  deployment, attribution method, price and basis (`billed`: the imported bill allocated to teams, where a bill
  covers an account's day; `estimate`: telemetry priced by the book, elsewhere), and per day, team and basis for the
  daily charts and the basis split;
- throttling: the hours of the `requests` rollup that pass the 429 rule (below);
- content-filter blocks: the platform metric `RAIRejectedRequests` per day and deployment.

- the bill: when an imported bill covers (part of) the month, `load_report` reconciles the estimate with it
  (`collector.cost.reconcile.reconcile_range`: per day, account and meter, each gap with its cause) for an
  organisation's report; a team's report has no reconciliation, which is per account and meter, not per team.

Models and deployment types come from the inventory; budgets are evaluated for the report month with that month's
spend, as of the end of the collected data (for a past month the forecast is the actual spend).

Incident rules (`IncidentRules`, the defaults):

- a **429 storm** is a run of consecutive hours in which one deployment answered at least 20 requests with 429 and
  at least 10 % of its requests were 429s; each storm shows its first hour, the end of its last, the 429s, the
  requests and the worst hour's 429 share;
- a **content-filter spike** is a day on which one deployment's blocks (`RAIRejectedRequests`) were at least
  3 × its median day of the month and at least 20, or any day of 500 or more. The median is over the days the
  deployment served requests (a day without blocks counts as 0), so a deployment created mid-month, or a month
  collected only in part, is compared with its own days only.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, TypeVar

from collector.billing.reconciliation import Reconciliation
from collector.config import Settings
from collector.cost.attribution import BILLED, ESTIMATE, IDLE, MICRO_USD, UNALLOCATED, DeploymentInfo
from collector.cost.budgets import TEAM, Budgets, BudgetStatus, evaluate_all, load_budgets, spend_by_scope
from collector.cost.inventories import build_inventory
from collector.cost.job import collected_until
from collector.cost.model import CostModel, load_cost_model
from collector.cost.reconcile import reconcile_range
from collector.cost.table import refresh_costs, stale_days
from collector.errors import InputError, TerminalError
from collector.report.charts import team_colours
from collector.rollups.months import Period, previous_month
from collector.store import bills
from collector.store.database import Store

log = logging.getLogger(__name__)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
RAI_METRIC = "RAIRejectedRequests"
NOT_TEAMS = (UNALLOCATED, IDLE)
UNKNOWN_MODEL = "unknown"
TOP_MOVERS = 5
COST_KEYS = ("team", "account", "deployment", "method", "price_id", "basis")
#: How far the month's gross gap between the estimate and the bill may reach (a fraction of the estimate) before the
#: report says the threshold is exceeded: the default of `aoai-obs reconcile`.
RECONCILE_THRESHOLD = Decimal("0.01")
TENTH = Decimal("0.1")
EVER = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
K = TypeVar("K")


@dataclass(frozen=True)
class IncidentRules:
    """When an hour of 429s or a day of content-filter blocks counts as an incident (see the module docstring)."""

    throttle_min_429: int = 20
    throttle_min_percent: int = 10
    filter_multiple: int = 3
    filter_min_blocks: int = 20
    filter_floor: int = 500

    def describe(self) -> tuple[str, str]:
        """The two rules in words, as the report prints them."""
        return (f"429 storm: consecutive hours in which a deployment answered at least {self.throttle_min_429} "
                f"requests with 429, and at least {self.throttle_min_percent} % of its requests.",
                f"Content-filter spike: a day on which a deployment's blocks were at least {self.filter_multiple} × "
                f"its median day (over the days it served requests) and at least {self.filter_min_blocks}, or "
                f"{self.filter_floor:,} or more.")


# -- figures -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Requests, tokens and cost (exact micro-dollars) of some cost lines."""

    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost_micro_usd: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.requests + other.requests, self.prompt_tokens + other.prompt_tokens,
                     self.cached_tokens + other.cached_tokens, self.completion_tokens + other.completion_tokens,
                     self.cost_micro_usd + other.cost_micro_usd)

    @property
    def tokens(self) -> int:
        """Prompt and completion tokens (cached tokens are part of the prompt)."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost(self) -> Decimal:
        return Decimal(self.cost_micro_usd) * MICRO_USD

    @property
    def empty(self) -> bool:
        return self == Usage()

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Usage:
        return cls(int(row["requests"]), int(row["prompt_tokens"]), int(row["cached_tokens"]),
                   int(row["completion_tokens"]), int(row["cost_micro_usd"]))


def percent_change(previous: int, current: int) -> Decimal | None:
    """(current − previous) / previous in percent, to 0.1; None when there was nothing before (new)."""
    if previous == 0:
        return None
    return (Decimal(current - previous) * 100 / Decimal(previous)).quantize(TENTH, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Line:
    """One team (or `unallocated`, `idle`) or one model: this month and the month before."""

    name: str
    current: Usage
    previous: Usage
    methods: tuple[tuple[str, int], ...] = ()  # attribution method -> micro-dollars this month (teams only)
    bases: tuple[tuple[str, int], ...] = ()  # basis (billed, estimate) -> micro-dollars this month (teams only)

    @property
    def change_micro_usd(self) -> int:
        return self.current.cost_micro_usd - self.previous.cost_micro_usd

    @property
    def change(self) -> Decimal:
        return Decimal(self.change_micro_usd) * MICRO_USD

    @property
    def percent(self) -> Decimal | None:
        return percent_change(self.previous.cost_micro_usd, self.current.cost_micro_usd)

    @property
    def charged(self) -> bool:
        """A team or a model: not `unallocated` or `idle`."""
        return self.name not in NOT_TEAMS


@dataclass(frozen=True)
class DeploymentLine:
    account: str
    deployment: str
    model: str
    deployment_type: str
    current: Usage
    previous: Usage
    unallocated: Usage  # this month's usage nobody could be charged for
    idle: Usage  # this month's unused provisioned capacity
    price_ids: tuple[str, ...]
    unpriced: bool


@dataclass(frozen=True)
class ThrottleEpisode:
    account: str
    deployment: str
    start: datetime  # the first hour
    end: datetime  # the end of the last hour
    requests: int
    throttled: int
    peak_percent: Decimal  # the worst hour's 429 share, to 0.1 %

    @property
    def hours(self) -> int:
        return int((self.end - self.start) / HOUR)


@dataclass(frozen=True)
class FilterSpike:
    account: str
    deployment: str
    day: datetime
    blocks: int
    median: Decimal  # the deployment's median day of the month


@dataclass(frozen=True)
class Basis:
    """The month's cost on each basis, per day (index 0 is the 1st): micro-dollars of the bill allocated to teams
    (`billed`) and of the estimate, None on a day with no cost line on that basis. A day can have both: the bill
    covers some accounts that day and not others."""

    billed: tuple[int | None, ...]
    estimate: tuple[int | None, ...]

    @property
    def billed_micro_usd(self) -> int:
        return sum(v for v in self.billed if v is not None)

    @property
    def estimate_micro_usd(self) -> int:
        return sum(v for v in self.estimate if v is not None)

    @property
    def billed_days(self) -> tuple[int, ...]:
        """Days of the month (1-based) with billed cost lines."""
        return tuple(i + 1 for i, v in enumerate(self.billed) if v is not None)

    @property
    def estimate_days(self) -> tuple[int, ...]:
        return tuple(i + 1 for i, v in enumerate(self.estimate) if v is not None)

    @property
    def kind(self) -> str:
        """`billed` (every cost line), `estimate` (every one, or no line at all) or `mixed`."""
        if not self.billed_days:
            return ESTIMATE
        return BILLED if not self.estimate_days else "mixed"


@dataclass(frozen=True)
class BillCheck:
    """The reconciliation of the month's estimate with an imported bill that covers (part of) it, or why it could
    not be made (`problem`)."""

    threshold: Decimal  # a fraction of the estimate
    result: Reconciliation | None = None
    problem: str = ""


@dataclass(frozen=True)
class MonthlyReport:
    month: Period
    previous_month: Period
    team: str | None  # None: the whole organisation
    generated_at: datetime
    collected_until: datetime | None  # the lowest watermark of the cost jobs
    total: Usage
    previous_total: Usage
    teams: tuple[Line, ...]  # by cost, then `unallocated` and `idle` (organisation reports only)
    models: tuple[Line, ...]
    deployments: tuple[DeploymentLine, ...]
    daily: tuple[tuple[str, tuple[int, ...]], ...]  # team -> micro-dollars per day of the month
    team_movers: tuple[Line, ...]
    model_movers: tuple[Line, ...]
    budgets: tuple[BudgetStatus, ...]
    throttling: tuple[ThrottleEpisode, ...]
    content_filter: tuple[FilterSpike, ...]
    unpriced: tuple[tuple[str, str], ...]  # (account, deployment) with usage no price matched
    colours: Mapping[str, str] = field(default_factory=dict)  # team -> colour (report_charts.team_colours)
    rules: IncidentRules = field(default_factory=IncidentRules)
    basis: Basis = Basis((), ())
    bill: BillCheck | None = None  # None: no bill covers the month, or a team's report (no reconciliation)

    @property
    def complete(self) -> bool:
        """Whether the collected data covers the whole month."""
        return self.collected_until is not None and self.collected_until >= self.month.end

    @property
    def title(self) -> str:
        return f"{self.month.start:%B %Y}"

    @property
    def scope(self) -> str:
        return "all teams" if self.team is None else f"team {self.team}"

    def line(self, name: str) -> Line | None:
        return next((t for t in self.teams if t.name == name), None)

    @property
    def days(self) -> int:
        return (self.month.end - self.month.start).days


# -- inputs --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportInputs:
    """Plain rows from the store, as its aggregate reads return them."""

    month: Period
    current: Sequence[Mapping[str, Any]]  # cost_daily of the month per COST_KEYS (no `basis`: the estimate)
    previous: Sequence[Mapping[str, Any]]  # the same for the month before
    daily: Sequence[Mapping[str, Any]]  # cost_daily of the month per day, team and basis
    throttled_hours: Sequence[Mapping[str, Any]]  # read_throttled_hours
    filter_days: Sequence[Mapping[str, Any]]  # read_metric_daily(RAI_METRIC)
    active_days: Sequence[Mapping[str, Any]]  # cost_daily of the month per day, account and deployment
    collected_until: datetime | None
    all_teams: Sequence[str] = ()  # every team of the daily cost table: what fixes their colours


def read_inputs(store: Store, month: Period, collected_until: datetime | None,
                rules: IncidentRules = IncidentRules()) -> ReportInputs:
    """The report's rows for `month` (a `collector.store.database.Store`; every read is grouped in the database)."""
    before = previous_month(month)
    return ReportInputs(
        month=month,
        current=store.read_cost_daily(month.start, month.end, by=COST_KEYS),
        previous=store.read_cost_daily(before.start, before.end, by=COST_KEYS),
        daily=store.read_cost_daily(month.start, month.end, by=("day", "team", "basis")),
        throttled_hours=store.read_throttled_hours(month.start, month.end, min_throttled=rules.throttle_min_429,
                                                   min_percent=rules.throttle_min_percent),
        filter_days=store.read_metric_daily(RAI_METRIC, month.start, month.end),
        active_days=store.read_cost_daily(month.start, month.end, by=("day", "account", "deployment")),
        collected_until=collected_until,
        all_teams=[str(r["team"]) for r in store.read_cost_daily(EVER[0], EVER[1], by=("team",))],
    )


def teams_of(inputs: ReportInputs) -> list[str]:
    """The teams with cost lines in the month or the month before (not `unallocated` or `idle`)."""
    return sorted({str(r["team"]) for r in (*inputs.current, *inputs.previous)} - set(NOT_TEAMS))


# -- assembly ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spend:
    team: str
    account: str
    deployment: str
    cost: Decimal


def _sums(rows: Iterable[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], K]) -> dict[K, Usage]:
    sums: dict[K, Usage] = {}
    for row in rows:
        name = key(row)
        sums[name] = sums.get(name, Usage()) + Usage.of(row)
    return sums


def _compare(current: Mapping[str, Usage], previous: Mapping[str, Usage],
             methods: Mapping[str, dict[str, int]] | None = None,
             bases: Mapping[str, dict[str, int]] | None = None) -> list[Line]:
    names = [n for n in set(current) | set(previous)
             if not (current.get(n, Usage()).empty and previous.get(n, Usage()).empty)]
    lines = [Line(n, current.get(n, Usage()), previous.get(n, Usage()),
                  tuple(sorted((methods or {}).get(n, {}).items())),
                  tuple(sorted((bases or {}).get(n, {}).items()))) for n in names]
    return sorted(lines, key=lambda x: (not x.charged, NOT_TEAMS.index(x.name) if not x.charged else 0,
                                        -x.current.cost_micro_usd, -x.previous.cost_micro_usd, x.name))


def movers(lines: Iterable[Line], n: int = TOP_MOVERS) -> tuple[Line, ...]:
    """The `n` lines with the largest absolute change in cost (ties by name); unchanged ones never move."""
    moved = [x for x in lines if x.charged and x.change_micro_usd != 0]
    return tuple(sorted(moved, key=lambda x: (-abs(x.change_micro_usd), x.name))[:n])


def throttle_episodes(hours: Iterable[Mapping[str, Any]], rules: IncidentRules) -> tuple[ThrottleEpisode, ...]:
    """Qualifying hours (per the rules) of each deployment merged into runs of consecutive hours."""
    per: dict[tuple[str, str], list[tuple[datetime, int, int]]] = {}
    for row in hours:
        requests, throttled = int(row["requests"]), int(row["requests_429"])
        if throttled >= rules.throttle_min_429 and throttled * 100 >= requests * rules.throttle_min_percent:
            key = (str(row["account"]).lower(), str(row["deployment"]))
            per.setdefault(key, []).append((row["bucket_start"], requests, throttled))
    episodes: list[ThrottleEpisode] = []
    for (account, deployment), found in per.items():
        run: list[tuple[datetime, int, int]] = []
        for hour in [*sorted(found), None]:
            if run and (hour is None or hour[0] != run[-1][0] + HOUR):
                peak = max(Decimal(t) * 100 / Decimal(r) for _, r, t in run)
                episodes.append(ThrottleEpisode(account, deployment, run[0][0], run[-1][0] + HOUR,
                                                sum(r for _, r, _ in run), sum(t for _, _, t in run),
                                                peak.quantize(TENTH, rounding=ROUND_HALF_EVEN)))
                run = []
            if hour is not None:
                run.append(hour)
    return tuple(sorted(episodes, key=lambda e: (e.start, e.account, e.deployment)))


def _median(values: Sequence[int]) -> Decimal:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return Decimal(ordered[middle])
    return Decimal(ordered[middle - 1] + ordered[middle]) / 2


def filter_spikes(days: Iterable[Mapping[str, Any]], active: Iterable[Mapping[str, Any]],
                  rules: IncidentRules) -> tuple[FilterSpike, ...]:
    """Days of content-filter blocks (`days`: day, account, deployment, total) that stand out, per the rules, against
    the deployment's median day. The median is over the days the deployment served requests (`active`: day,
    account, deployment, requests) or had blocks, a day without blocks being 0: a deployment created mid-month, or
    a month only partly collected, is not compared with days it did not exist."""
    per: dict[tuple[str, str], dict[datetime, int]] = {}
    for row in days:
        blocks = per.setdefault((str(row["account"]).lower(), str(row["deployment"])), {})
        blocks[row["day"]] = blocks.get(row["day"], 0) + round(row["total"])
    served: dict[tuple[str, str], set[datetime]] = {}
    for row in active:
        if int(row["requests"]) > 0:
            served.setdefault((str(row["account"]).lower(), str(row["deployment"])), set()).add(row["day"])
    spikes = []
    for key, blocks in per.items():
        median = _median([blocks.get(day, 0) for day in served.get(key, set()) | set(blocks)])
        for day, n in sorted(blocks.items()):
            if n >= rules.filter_floor or (n >= rules.filter_min_blocks and n >= rules.filter_multiple * median):
                spikes.append(FilterSpike(key[0], key[1], day, n, median))
    return tuple(sorted(spikes, key=lambda s: (s.day, s.account, s.deployment)))


def _key(row: Mapping[str, Any]) -> tuple[str, str]:
    """(account in lower case, deployment): how the inventory and the report name a deployment."""
    return str(row["account"]).lower(), str(row["deployment"])


def _deployment_lines(current: Sequence[Mapping[str, Any]], previous: Sequence[Mapping[str, Any]],
                      inventory: Mapping[tuple[str, str], DeploymentInfo]) -> list[DeploymentLine]:
    mine: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in current:
        mine.setdefault(_key(row), []).append(row)
    before = _sums(previous, _key)
    lines = []
    for key in sorted(set(mine) | set(before)):
        rows, info = mine.get(key, []), inventory.get(key)
        lines.append(DeploymentLine(
            key[0], key[1], info.model if info is not None and info.model else UNKNOWN_MODEL,
            info.deployment_type if info is not None else "",
            sum((Usage.of(r) for r in rows), Usage()), before.get(key, Usage()),
            sum((Usage.of(r) for r in rows if r["team"] == UNALLOCATED), Usage()),
            sum((Usage.of(r) for r in rows if r["team"] == IDLE), Usage()),
            tuple(sorted({str(r["price_id"]) for r in rows if r["price_id"]})),
            any(int(r["unpriced"]) for r in rows)))
    return sorted((d for d in lines if not (d.current.empty and d.previous.empty)),
                  key=lambda d: (-d.current.cost_micro_usd, d.account, d.deployment))


def basis_of(row: Mapping[str, Any]) -> str:
    """A cost row's basis; a row without one is the estimate."""
    return str(row.get("basis") or ESTIMATE)


def _basis(rows: Iterable[Mapping[str, Any]], month: Period, team: str | None) -> Basis:
    days = (month.end - month.start).days
    sums: dict[str, list[int | None]] = {BILLED: [None] * days, ESTIMATE: [None] * days}
    for row in rows:
        if team is None or row["team"] == team:
            series, at = sums[BILLED if basis_of(row) == BILLED else ESTIMATE], (row["day"] - month.start).days
            series[at] = (series[at] or 0) + int(row["cost_micro_usd"])
    return Basis(tuple(sums[BILLED]), tuple(sums[ESTIMATE]))


def _daily(rows: Iterable[Mapping[str, Any]], month: Period, team: str | None) -> dict[str, list[int]]:
    """Team -> micro-dollars per day of the month."""
    daily: dict[str, list[int]] = {}
    for row in rows:
        if team is None or row["team"] == team:
            series = daily.setdefault(str(row["team"]), [0] * (month.end - month.start).days)
            series[(row["day"] - month.start).days] += int(row["cost_micro_usd"])
    return daily


def assemble(inputs: ReportInputs, deployments: Iterable[DeploymentInfo], budgets: Budgets, *,
             team: str | None, generated_at: datetime, rules: IncidentRules = IncidentRules(),
             bill: BillCheck | None = None) -> MonthlyReport:
    """The report from plain rows: an organisation's (team None) or one team's lines; `bill` is the month's
    reconciliation with the bill, when one covers it (an organisation's report only)."""
    month = inputs.month
    inventory = {(d.account.lower(), d.name): d for d in deployments}
    current, previous = list(inputs.current), list(inputs.previous)
    if team is not None:
        current = [r for r in current if r["team"] == team]
        previous = [r for r in previous if r["team"] == team]

    def model_of(row: Mapping[str, Any]) -> str:
        info = inventory.get(_key(row))
        return info.model if info is not None and info.model else UNKNOWN_MODEL

    methods: dict[str, dict[str, int]] = {}
    bases: dict[str, dict[str, int]] = {}
    for row in current:
        for found, value in ((methods, str(row["method"])), (bases, basis_of(row))):
            by = found.setdefault(str(row["team"]), {})
            by[value] = by.get(value, 0) + int(row["cost_micro_usd"])
    teams = _compare(_sums(current, lambda r: str(r["team"])), _sums(previous, lambda r: str(r["team"])), methods,
                     bases)
    models = _compare(_sums(current, model_of), _sums(previous, model_of))
    daily = _daily(inputs.daily, month, team)

    as_of = month.end if inputs.collected_until is None else max(month.start, min(month.end, inputs.collected_until))
    chosen = [b for b in budgets.budgets if team is None or (b.scope == TEAM and b.name == team)]
    spend = spend_by_scope(_Spend(str(r["team"]), str(r["account"]), str(r["deployment"]),
                                  Decimal(int(r["cost_micro_usd"])) * MICRO_USD) for r in current)
    statuses = evaluate_all(chosen, month, spend, as_of)

    used = {_key(r) for r in current if int(r["requests"]) or int(r["cost_micro_usd"])}
    throttling = throttle_episodes(inputs.throttled_hours, rules)
    spikes = filter_spikes(inputs.filter_days, inputs.active_days, rules)
    if team is not None:
        throttling = tuple(e for e in throttling if (e.account, e.deployment) in used)
        spikes = tuple(s for s in spikes if (s.account, s.deployment) in used)

    return MonthlyReport(
        month=month,
        previous_month=previous_month(month),
        team=team,
        generated_at=generated_at,
        collected_until=inputs.collected_until,
        total=sum((Usage.of(r) for r in current), Usage()),
        previous_total=sum((Usage.of(r) for r in previous), Usage()),
        teams=tuple(teams),
        models=tuple(models),
        deployments=tuple(_deployment_lines(current, previous, inventory)),
        daily=tuple((t.name, tuple(daily[t.name])) for t in teams if t.name in daily),
        team_movers=movers(teams) if team is None else (),
        model_movers=movers(models),
        budgets=tuple(statuses),
        throttling=throttling,
        content_filter=spikes,
        unpriced=tuple(sorted({_key(r) for r in current if int(r["unpriced"])})),
        colours=team_colours([*inputs.all_teams, *(str(r["team"]) for r in (*inputs.current, *inputs.previous))]),
        rules=rules,
        basis=_basis(inputs.daily, month, team),
        bill=bill if team is None else None,
    )


# -- the edge: settings and store ------------------------------------------------------------------------------


def reconcile_month(store: Store, model: CostModel, month: Period, now: datetime, threshold: Decimal, *,
                    may_write: bool = True) -> BillCheck | None:
    """The month's estimate reconciled with the imported bill (`reconcile_range`), or None when no bill run covers
    any day of the month. Without `may_write`, days the cost model has not priced are not re-priced (reconciling
    would write them): the check then says why it was not made, as it does when the bill cannot be compared (a
    currency other than the book's)."""
    if not any(run.first_day < month.end and run.last_day >= month.start for run in bills.bill_runs(store)):
        return None
    if not may_write:
        stale = stale_days(store, model, month.start, month.end)
        if stale:
            return BillCheck(threshold, problem=f"{len(stale)} day(s) of {month.label} are not priced by the current "
                                                "price book, rules and inventory yet: the next collector pass (or "
                                                "`aoai-obs report`) re-prices them")
    try:
        return BillCheck(threshold, reconcile_range(store, model, month.start, month.end, now, threshold=threshold))
    except TerminalError as e:
        log.warning("report: no reconciliation with the bill: %s", e)
        return BillCheck(threshold, problem=str(e))


def load_report(settings: Settings, store: Store, month: Period, team: str | None, now: datetime, *,
                reprice: bool = True, rules: IncidentRules = IncidentRules(),
                threshold: Decimal | None = RECONCILE_THRESHOLD) -> MonthlyReport:
    """The report of `month` from the settings' inventory and budgets and the store.

    With `reprice`, days of the month and the month before that the current price book, rules and inventory did
    not price (a changed price book, say) are re-attributed first, so the report never shows stale prices.
    An organisation's report is reconciled with the imported bill when one covers (part of) the month, the month's
    gross gap judged against `threshold` (a fraction of the estimate; None: no reconciliation).
    InputError for a team with no cost in either month, or a month the collected data has not reached."""
    deployments = build_inventory(settings).deployments()
    budgets = load_budgets(settings.budgets.file) if settings.budgets.file else Budgets()
    until = collected_until(store)
    if until is None:
        raise InputError([], "nothing is collected yet: run `aoai-obs collect once` (or `collect backfill`) first")
    if until <= month.start:
        raise InputError([], f"nothing is collected for {month.label} yet: the collected data ends at "
                             f"{until:%Y-%m-%d %H:%M} UTC")
    model = load_cost_model(settings, deployments) if reprice or (team is None and threshold is not None) else None
    if reprice and model is not None:
        stale = stale_days(store, model, previous_month(month).start, month.end)
        if stale:
            log.info("report: re-attributing %d day(s) the current price book and rules have not priced", len(stale))
            refresh_costs(store, model, stale[0], stale[-1] + DAY, now)
    inputs = read_inputs(store, month, until, rules)
    if team is not None:
        if team in NOT_TEAMS:
            raise InputError([], f"--team: {team!r} is not a team: unallocated and idle cost are in the "
                                 "organisation's report (leave out --team)")
        known = teams_of(inputs)
        if team not in known:
            close = difflib.get_close_matches(team, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"teams: {', '.join(known) or 'none'}"
            raise InputError([], f"--team: no cost for team {team!r} in {month.label} or the month before; {hint}")
    bill = None
    if team is None and threshold is not None and model is not None:
        bill = reconcile_month(store, model, month, now, threshold, may_write=reprice)
    return assemble(inputs, deployments, budgets, team=team, generated_at=now, rules=rules, bill=bill)
