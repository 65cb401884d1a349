"""Aggregate reads of the rollup store for dashboards and reports: GROUP BY in the database, exact totals.

Which tier answers a range (`plan`):

- the fine tier (`_5m`, the collector's grain) when the range spans at most two days and starts inside the fine
  tier's retention; the hourly tier (`_1h`) up to 14 days; the daily tier (`_1d`, UTC days) beyond. A range is
  widened to whole tier buckets, and `Plan.start`/`Plan.end` say what was actually read;
- totals per deployment over a daily range (the Operations table, the models a deployment served) read its whole
  ISO weeks from the weekly tier (`_1w`) and only the days either side from the daily tier: a quarter is 13 rows
  per deployment rather than 90 (`tiles`);
- figures are cut into steps from `STEPS`, the smallest multiple of the tier's bucket giving at most `MAX_POINTS`
  points: 5 minutes up to a day, 10 minutes for two days, 1 hour for a week, 1 day for 30 or 90 days.

Every measure read here is additive (counts, sums, histogram buckets; min/max of min/max), so a total over steps,
deployments or tiers equals the total over the range. Rows of every source are added together. Reads name the
sources that hold data (from the watermarks table, which every write updates) so the databases can use the
tables' primary keys, which start with (source, bucket_start).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from collector.rollups.months import month_of
from collector.rollups.specs import APIM_TOKENS, LATENCY, PLATFORM_METRICS, REQUESTS, USAGE_TOKENS, RollupSpec
from collector.rollups.windows import EPOCH, align_down, align_up
from collector.store.database import ACCOUNT_LATENCY, WEEK, Store, week_start

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
#: Longest range the fine tier answers; longer ranges read the hourly tier.
FINE_MAX_SPAN = timedelta(days=2)
#: Longest range the hourly tier answers; longer ranges read the daily tier (UTC days), so a view of months reads
#: one row per deployment and day rather than 24.
HOURLY_MAX_SPAN = timedelta(days=14)
#: Most points a time series gets.
MAX_POINTS = 300
STEPS = tuple(timedelta(minutes=m) for m in (5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080))

# Platform metric names (Azure OpenAI, §3 of the telemetry reference) the dashboards read.
REQUESTS_METRIC = "AzureOpenAIRequests"
BLOCKED_METRIC = "RAIRejectedRequests"  # content-filter blocks
FIRST_TOKEN_METRIC = "AzureOpenAITimeToResponse"  # time to first token (first byte), ms
LAST_TOKEN_METRIC = "AzureOpenAITTLTInMS"  # time to last token (last byte), ms
PTU_UTILISATION_METRIC = "AzureOpenAIProvisionedManagedUtilizationV2"  # percent
TOKENS_METRIC = "TokenTransaction"  # prompt + completion tokens
PROMPT_TOKENS_METRIC = "ProcessedPromptTokens"
COMPLETION_TOKENS_METRIC = "GeneratedTokens"


class bucket_index(sa.sql.functions.FunctionElement[int]):
    """Which step a stored bucket start falls in: (epoch seconds - origin) integer-divided by the step seconds."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(bucket_index, "sqlite")
def _bucket_index_sqlite(element: bucket_index, compiler: SQLCompiler, **kw: Any) -> str:
    column, origin, step = (compiler.process(c, **kw) for c in element.clauses)
    return f"((CAST(strftime('%s', {column}) AS INTEGER) - {origin}) / {step})"


@compiles(bucket_index, "postgresql")
def _bucket_index_postgresql(element: bucket_index, compiler: SQLCompiler, **kw: Any) -> str:
    column, origin, step = (compiler.process(c, **kw) for c in element.clauses)
    return f"((CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT) - {origin}) / {step})"


@dataclass(frozen=True)
class Plan:
    """How a range is read: the tier, the range actually covered (whole tier buckets), and the figures' step."""

    tier: str
    start: datetime
    end: datetime
    step: timedelta
    size: timedelta = HOUR  # the tier's bucket

    def index(self, value: int | datetime) -> int:
        """The step a grouped row belongs to: SQL computed it (an int) or the step is the bucket itself."""
        if isinstance(value, datetime):
            return int((value - self.origin) // self.step)
        return int(value)

    @functools.cached_property
    def origin(self) -> datetime:
        """The first step's start: steps are aligned to the Unix epoch in UTC (worked out once per plan: every
        grouped row asks)."""
        return align_down(self.start, self.step)

    def step_start(self, index: int) -> datetime:
        return self.origin + self.step * index

    def step_starts(self) -> list[datetime]:
        """Every step's start, so a series can show empty steps as zero rather than leave them out."""
        count = -(-(self.end - self.origin) // self.step)
        return [self.step_start(i) for i in range(count)]


def plan(
    start: datetime,
    end: datetime,
    *,
    grain: timedelta = timedelta(minutes=5),
    fine_since: datetime | None = None,
    max_points: int = MAX_POINTS,
) -> Plan:
    """The tier and step for [start, end); `fine_since` is the oldest time the fine tier still holds (retention)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("naive datetime given; times are timezone-aware UTC")
    if end <= start:
        raise ValueError(f"empty range {start.isoformat()} .. {end.isoformat()}")
    fine = end - start <= FINE_MAX_SPAN and (fine_since is None or start >= fine_since)
    tier = "5m" if fine else "1h" if end - start <= HOURLY_MAX_SPAN else "1d"
    size = {"5m": grain, "1h": HOUR, "1d": DAY}[tier]
    start, end = align_down(start, size), align_up(end, size)
    candidates = [s for s in STEPS if s >= size and s % size == timedelta(0)] or [size]
    step = next((s for s in candidates if (end - align_down(start, s)) / s <= max_points), candidates[-1])
    return Plan(tier, start.astimezone(UTC), end.astimezone(UTC), step, size)


@dataclass(frozen=True)
class Scope:
    """Which rows a read covers besides the time range: accounts, deployment names, models and teams (empty: all).

    A deployment name matches on every account. The requests and metrics rollups carry neither model nor team, so
    a model matches the deployments that logged usage for it in the range, and a team the deployments its
    attributed usage ran on in the range (the daily cost table: every method, idle and unallocated included):
    `resolve` looks them up once into `pairs`, and every read resolves a scope it is given unresolved.
    """

    accounts: tuple[str, ...] = ()
    deployments: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    #: (lower-cased account, deployment) serving `models` and `teams`; None: not looked up yet.
    pairs: tuple[tuple[str, str], ...] | None = None


ALL = Scope()


# -- results -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestCounts:
    """Requests by status class; `requests_4xx` includes the 400s and 429s."""

    requests: int = 0
    requests_2xx: int = 0
    requests_4xx: int = 0
    requests_400: int = 0
    requests_429: int = 0
    requests_5xx: int = 0
    duration_ms_sum: int = 0


@dataclass(frozen=True)
class MetricAggregate:
    """One platform metric over a step or a range: sum and count of the samples, their min and max."""

    total: float = 0.0
    count: float = 0.0
    minimum: float | None = None
    maximum: float | None = None

    @property
    def average(self) -> float | None:
        return self.total / self.count if self.count else None


@dataclass(frozen=True)
class TimePoint:
    start: datetime
    requests: RequestCounts = field(default_factory=RequestCounts)


@dataclass(frozen=True)
class DeploymentRow:
    """One deployment over the range: request counts, latency histogram, metrics and busiest-bucket tokens."""

    account: str
    deployment: str
    requests: RequestCounts = field(default_factory=RequestCounts)
    histogram: dict[int, int] = field(default_factory=dict)
    metrics: dict[str, MetricAggregate] = field(default_factory=dict)
    peak_tokens_per_bucket: float = 0.0


# -- queries -----------------------------------------------------------------------------------------------------

_REQUEST_MEASURES = ("requests", "requests_2xx", "requests_4xx", "requests_400", "requests_429", "requests_5xx",
                     "duration_ms_sum")


def sources(store: Store) -> list[str]:
    """Every source that has written rollups."""
    table = store.tables["watermarks"]
    with store.engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(table.c.source).distinct().order_by(table.c.source))]


def tiles(tier: str, start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """[start, end) as (tier, start, end) parts that add up to it: on the daily tier, the whole ISO weeks inside
    the range from the weekly tier and the days either side from the daily tier; any other tier as it is."""
    first = week_start(start)
    first = first if first == start else first + WEEK
    last = week_start(end)
    if tier != "1d" or first >= last:
        return [(tier, start, end)]
    parts = [("1w", first, last)]
    if start < first:
        parts.append(("1d", start, first))
    if last < end:
        parts.append(("1d", last, end))
    return parts


def _where(store: Store, table: sa.Table, p: Plan, scope: Scope, names: Sequence[str], *,
           start: datetime | None = None, end: datetime | None = None) -> list[sa.ColumnElement[bool]]:
    """The conditions of a read of `table` over the plan's range (or [start, end), a part of it) and scope."""
    start, end = start or p.start, end or p.end
    conditions = [table.c.source.in_(names), table.c.bucket_start >= start, table.c.bucket_start < end]
    if scope.accounts and "account" in table.c:
        conditions.append(table.c.account.in_(scope.accounts))
    if scope.deployments:
        conditions.append(table.c.deployment.in_(scope.deployments))
    if scope.models or scope.teams:
        pairs = scope.pairs
        if pairs is None:
            raise ValueError("a scope with models or teams is read after `resolve` looks up their deployments")
        if not pairs:
            conditions.append(sa.false())
            return conditions
        # Accounts are compared lower-cased, as sources spell them differently (ARM ids, log columns, the cost table).
        deployment_names = sorted({d for _, d in pairs})
        if "account" not in table.c:
            conditions.append(table.c.deployment.in_(deployment_names))
            return conditions
        pair = sa.tuple_(sa.func.lower(table.c.account), table.c.deployment)
        if store.engine.dialect.name == "postgresql":
            # A subquery PostgreSQL hashes once (a semi-join), and nothing else: an IN list of the deployment names
            # beside it makes the planner trade the covering indexes for a parallel sequential scan (3x slower).
            wanted = sa.values(sa.column("account", sa.String()), sa.column("deployment", sa.String()),
                               name="wanted").data(list(pairs))
            conditions.append(pair.in_(sa.select(wanted.c.account, wanted.c.deployment)))
        else:
            # SQLite: the deployment names first (an IN list it hashes), so most rows stop before the pair.
            conditions += [table.c.deployment.in_(deployment_names), pair.in_(pairs)]
    return conditions


def resolve(store: Store, p: Plan, scope: Scope) -> Scope:
    """`scope` with the deployments serving its models (from the usage logs: the daily tier for daily plans, else
    hourly) and its teams (from the daily cost table, the plan's whole UTC days) over the plan's range looked up;
    unchanged without models or teams, or when already looked up."""
    if not (scope.models or scope.teams) or scope.pairs is not None:
        return scope
    found: set[tuple[str, str]] | None = None
    with store.engine.connect() as conn:
        if scope.models:
            tier, size = ("1d", DAY) if p.tier == "1d" else ("1h", HOUR)
            usage = store.table(USAGE_TOKENS, tier)
            query = (sa.select(usage.c.account, usage.c.deployment).distinct()
                     .where(usage.c.source.in_(sources(store)), usage.c.bucket_start >= align_down(p.start, size),
                            usage.c.bucket_start < align_up(p.end, size), usage.c.model.in_(scope.models)))
            found = {(a.lower(), d) for a, d in conn.execute(query).all()}
        if scope.teams:
            cost = store.tables["cost_daily"]
            first, last = cost_days(p.start, p.end)
            query = (sa.select(cost.c.account, cost.c.deployment).distinct()
                     .where(cost.c.day >= first, cost.c.day < last, cost.c.team.in_(scope.teams)))
            used = {(a.lower(), d) for a, d in conn.execute(query).all()}
            found = used if found is None else found & used
    return replace(scope, pairs=tuple(sorted(found or ())))


def _tiled(store: Store, spec: RollupSpec, p: Plan, scope: Scope, names: Sequence[str], columns: Sequence[str],
           *, where: Callable[[sa.Table], list[sa.ColumnElement[bool]]] = lambda table: []) -> sa.Subquery:
    """The rows of `spec` over the plan's range and scope (`columns` of them, those `where` also keeps), read from
    the parts `tiles` cuts the range into, as one subquery to group."""
    parts = []
    for tier, start, end in tiles(p.tier, p.start, p.end):
        table = store.table(spec, tier)
        conditions = [*_where(store, table, p, scope, names, start=start, end=end), *where(table)]
        parts.append(sa.select(*(table.c[c] for c in columns)).where(*conditions))
    return (sa.union_all(*parts) if len(parts) > 1 else parts[0]).subquery("tiled")


def _step(table: sa.Table, p: Plan) -> sa.ColumnElement[Any]:
    """The step of each row: the bucket itself when a step is one bucket (no per-row arithmetic), else its index."""
    if p.step == p.size:
        return table.c.bucket_start.label("step")
    origin = int((p.origin - EPOCH).total_seconds())
    return bucket_index(table.c.bucket_start, sa.literal(origin, sa.BigInteger()),
                        sa.literal(int(p.step.total_seconds()), sa.BigInteger())).label("step")


def _counts(row: Any) -> RequestCounts:
    return RequestCounts(*(int(row[m] or 0) for m in _REQUEST_MEASURES))


def request_series(store: Store, p: Plan, scope: Scope = ALL) -> list[TimePoint]:
    """Request counts per step, every step of the plan present (zero when nothing was logged)."""
    scope = resolve(store, p, scope)
    table = store.table(REQUESTS, p.tier)
    step = _step(table, p)
    query = (sa.select(step, *(sa.func.sum(table.c[m]).label(m) for m in _REQUEST_MEASURES))
             .where(*_where(store, table, p, scope, sources(store))).group_by(step))
    with store.engine.connect() as conn:
        found = {p.index(r.step): _counts(r._mapping) for r in conn.execute(query).all()}
    return [TimePoint(start, found.get(i, RequestCounts())) for i, start in enumerate(p.step_starts())]


def latency_series(store: Store, p: Plan, scope: Scope = ALL) -> list[tuple[datetime, dict[int, int]]]:
    """The merged latency histogram (bucket -> successful requests) of every step."""
    scope = resolve(store, p, scope)
    # Every deployment, or whole accounts, on the daily tier: the accounts' own daily histograms hold the same sums.
    whole_accounts = p.tier == "1d" and not (scope.deployments or scope.models or scope.teams)
    table = store.tables[ACCOUNT_LATENCY] if whole_accounts else store.table(LATENCY, p.tier)
    step = _step(table, p)
    query = (sa.select(step, table.c.le_bucket, sa.func.sum(table.c.requests))
             .where(*_where(store, table, p, scope, sources(store))).group_by(step, table.c.le_bucket))
    found: dict[int, dict[int, int]] = {}
    with store.engine.connect() as conn:
        for index, bucket, count in conn.execute(query).all():
            found.setdefault(p.index(index), {})[int(bucket)] = int(count)
    return [(start, found.get(i, {})) for i, start in enumerate(p.step_starts())]


def _metric_columns(table: sa.FromClause) -> list[sa.ColumnElement[Any]]:
    return [sa.func.sum(table.c.total).label("total"), sa.func.sum(table.c.count).label("count"),
            sa.func.min(table.c.minimum).label("minimum"), sa.func.max(table.c.maximum).label("maximum")]


def _aggregate(total: Any, count: Any, minimum: Any, maximum: Any) -> MetricAggregate:
    """The four `_metric_columns` of a row (taken by position: a long view has thousands)."""
    return MetricAggregate(float(total or 0.0), float(count or 0.0), None if minimum is None else float(minimum),
                           None if maximum is None else float(maximum))


def metric_series(
    store: Store, p: Plan, metrics: Iterable[str], scope: Scope = ALL, *, by_deployment: bool = False
) -> dict[tuple[str, str, str], list[tuple[datetime, MetricAggregate]]]:
    """Platform metrics per step, keyed (metric, account, deployment); account and deployment are "" unless
    `by_deployment`. Steps without samples are left out (a gauge has no zero)."""
    scope = resolve(store, p, scope)
    table = store.table(PLATFORM_METRICS, p.tier)
    step = _step(table, p)
    names = sorted(set(metrics))
    keys: list[sa.ColumnElement[Any]] = [table.c.metric]
    if by_deployment:
        keys += [table.c.account, table.c.deployment]
    query = (sa.select(step, *keys, *_metric_columns(table))
             .where(table.c.metric.in_(names), *_where(store, table, p, scope, sources(store)))
             .group_by(step, *keys).order_by(*keys, step))
    series: dict[tuple[str, str, str], list[tuple[datetime, MetricAggregate]]] = {}
    starts: dict[Any, datetime] = {}  # step (as grouped) -> its start, once per step rather than per row
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    width = len(keys)
    for row in rows:
        key = (row[1], row[2], row[3]) if by_deployment else (row[1], "", "")
        start = starts.get(row[0])
        if start is None:
            start = starts[row[0]] = p.step_start(p.index(row[0]))
        series.setdefault(key, []).append((start, _aggregate(*row[1 + width:])))
    return series


def deployment_rows(store: Store, p: Plan, scope: Scope = ALL, *, metrics: Iterable[str] = ()) -> list[DeploymentRow]:
    """Per account and deployment over the plan's range: requests, latency histogram, metrics, and the largest
    TokenTransaction total of any one tier bucket (divide by the bucket's minutes for tokens per minute)."""
    return merge_deployment_parts([read() for read in deployment_parts(store, p, scope, metrics=metrics)])


#: One part of the deployment rows: (account, deployment) -> the DeploymentRow fields it fills.
Part = dict[tuple[str, str], dict[str, Any]]


def deployment_parts(store: Store, p: Plan, scope: Scope = ALL, *, metrics: Iterable[str] = ()
                     ) -> list[Callable[[], Part]]:
    """The reads `deployment_rows` is made of (requests, histograms, metrics, peaks), each one query on its own
    connection, so a caller can run them side by side and `merge_deployment_parts` their results."""
    scope = resolve(store, p, scope)
    names = sources(store)
    platform = store.table(PLATFORM_METRICS, p.tier)
    metric_names = sorted(set(metrics) | {TOKENS_METRIC})
    pair = ("account", "deployment")

    def requests() -> Part:
        counted = _tiled(store, REQUESTS, p, scope, names, (*pair, *_REQUEST_MEASURES))
        query = (sa.select(counted.c.account, counted.c.deployment,
                           *(sa.func.sum(counted.c[m]).label(m) for m in _REQUEST_MEASURES))
                 .group_by(counted.c.account, counted.c.deployment))
        with store.engine.connect() as conn:
            return {(r.account, r.deployment): {"requests": _counts(r._mapping)} for r in conn.execute(query).all()}

    def histograms() -> Part:
        timed = _tiled(store, LATENCY, p, scope, names, (*pair, "le_bucket", "requests"))
        query = (sa.select(timed.c.account, timed.c.deployment, timed.c.le_bucket, sa.func.sum(timed.c.requests))
                 .group_by(timed.c.account, timed.c.deployment, timed.c.le_bucket))
        found: Part = {}
        with store.engine.connect() as conn:
            rows = conn.execute(query).all()
        last, histogram = None, {}
        for account, deployment, bucket, count in rows:
            if (account, deployment) != last:  # rows mostly come grouped by deployment: one lookup per run of them
                last = (account, deployment)
                histogram = found.setdefault(last, {"histogram": {}})["histogram"]
            histogram[int(bucket)] = int(count)
        return found

    def aggregates() -> Part:
        sampled = _tiled(store, PLATFORM_METRICS, p, scope, names,
                         (*pair, "metric", "total", "count", "minimum", "maximum"),
                         where=lambda table: [table.c.metric.in_(metric_names)])
        query = (sa.select(sampled.c.account, sampled.c.deployment, sampled.c.metric, *_metric_columns(sampled))
                 .group_by(sampled.c.account, sampled.c.deployment, sampled.c.metric))
        found: Part = {}
        with store.engine.connect() as conn:
            rows = conn.execute(query).all()
        for account, deployment, metric, *values in rows:
            found.setdefault((account, deployment), {"metrics": {}})["metrics"][metric] = _aggregate(*values)
        return found

    def peaks() -> Part:
        per_bucket = (sa.select(platform.c.account, platform.c.deployment, sa.func.sum(platform.c.total).label("t"))
                      .where(platform.c.metric == TOKENS_METRIC, *_where(store, platform, p, scope, names))
                      .group_by(platform.c.bucket_start, platform.c.account, platform.c.deployment).subquery())
        query = (sa.select(per_bucket.c.account, per_bucket.c.deployment, sa.func.max(per_bucket.c.t))
                 .group_by(per_bucket.c.account, per_bucket.c.deployment))
        with store.engine.connect() as conn:
            return {(a, d): {"peak_tokens_per_bucket": float(peak or 0.0)} for a, d, peak in conn.execute(query).all()}

    return [requests, histograms, aggregates, peaks]


def merge_deployment_parts(parts: Iterable[Part]) -> list[DeploymentRow]:
    """The deployment rows from the results of `deployment_parts`, sorted by account and deployment."""
    fields: dict[tuple[str, str], dict[str, Any]] = {}
    for part in parts:
        for key, values in part.items():
            fields.setdefault(key, {}).update(values)
    return [DeploymentRow(account, deployment, **values) for (account, deployment), values in sorted(fields.items())]


def deployment_models(store: Store, start: datetime, end: datetime) -> dict[tuple[str, str], tuple[str, ...]]:
    """(account, deployment) -> the models it served in [start, end), from the usage logs (hourly tier; daily and
    weekly beyond `HOURLY_MAX_SPAN`).

    Deployments known only to the APIM logs (which carry no account) are keyed ("", deployment).
    """
    tier, size = ("1d", DAY) if end - start > HOURLY_MAX_SPAN else ("1h", HOUR)
    span = Plan(tier, align_down(start, size), align_up(end, size), size, size)
    names = sources(store)
    found: dict[tuple[str, str], set[str]] = {}

    def distinct(spec: RollupSpec, columns: Sequence[str]) -> sa.Select[Any]:
        rows = _tiled(store, spec, span, ALL, names, columns,
                      where=lambda table: [table.c.deployment != "", table.c.model != ""])
        return sa.select(*(rows.c[c] for c in columns)).distinct()

    with store.engine.connect() as conn:
        used = conn.execute(distinct(USAGE_TOKENS, ("account", "deployment", "model"))).all()
        for account, deployment, model in used:
            found.setdefault((account, deployment), set()).add(model)
        known = {deployment for _, deployment in found}
        for deployment, model in conn.execute(distinct(APIM_TOKENS, ("deployment", "model"))).all():
            if deployment not in known:
                found.setdefault(("", deployment), set()).add(model)
    return {key: tuple(sorted(models)) for key, models in sorted(found.items())}


def deployments(store: Store, start: datetime, end: datetime) -> list[tuple[str, str]]:
    """(account, deployment) pairs with requests or platform metrics in [start, end) (hourly tier)."""
    start, end = align_down(start, HOUR), align_up(end, HOUR)
    names = sources(store)
    pairs: set[tuple[str, str]] = set()
    with store.engine.connect() as conn:
        for spec in (REQUESTS, PLATFORM_METRICS):
            table = store.table(spec, "1h")
            query = (sa.select(table.c.account, table.c.deployment).distinct()
                     .where(table.c.source.in_(names), table.c.bucket_start >= start, table.c.bucket_start < end,
                            table.c.deployment != ""))
            pairs.update((a, d) for a, d in conn.execute(query).all())
    return sorted(pairs)


def rollup_total(store: Store, spec: RollupSpec, measure: str, p: Plan, scope: Scope = ALL,
                 **equal: str) -> float:
    """One measure summed over the plan's range and scope (and `column=value` conditions): the reference total
    that figures and reports are checked against."""
    scope = resolve(store, p, scope)
    table = store.table(spec, p.tier)
    conditions = _where(store, table, p, scope, sources(store))
    conditions += [table.c[name] == value for name, value in equal.items()]
    with store.engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.sum(table.c[measure])).where(*conditions)).scalar_one()
    return float(value or 0.0)


# -- attributed cost: the daily cost table -----------------------------------------------------------------------
# `cost_daily` holds one row per UTC day, account, deployment, team, method and price id (collector/cost/model.py keeps
# it current), so cost reads work at day resolution: a range is widened to whole UTC days (`cost_days`). Account
# names are lower-cased in that table (collector/cost/usage.py keys usage by ARM's lower-case name), so filters are
# lower-cased here rather than the column: the rows' day-first primary key stays usable and no function runs per row.

DAY = timedelta(days=1)
#: `basis` (billed or estimate) follows from the price id (billed rows have price id `bill`), so reading by every
#: key gives as many rows with it as without.
COST_KEYS = ("account", "deployment", "team", "method", "price_id", "basis")
COST_MEASURES = ("requests", "prompt_tokens", "cached_tokens", "completion_tokens", "cost_micro_usd")
#: Methods whose rows a labelled read labels by the method's name: idle capacity and unallocated usage are their
#: own series, never folded into a team, deployment or model.
OWN_SERIES = ("idle", "unallocated")


@dataclass(frozen=True)
class CostScope:
    """Which cost rows a read covers besides the days (empty: all). Accounts are compared case-insensitively; a
    deployment name matches on every account; `pairs` (account, deployment) restricts to those deployments, say
    the ones the inventory gives a model."""

    accounts: tuple[str, ...] = ()
    deployments: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] | None = None  # None: every deployment; (): none


ALL_COSTS = CostScope()


@dataclass(frozen=True)
class CostLabels:
    """A label per row, computed in the database: keyed by team (`column` "team") or by (account, deployment)
    (`column` "deployment"). Rows whose key is not listed get `default`; rows of an `own` method get the method's
    name."""

    column: str
    values: Mapping[Any, str]
    default: str
    own: tuple[str, ...] = OWN_SERIES


def cost_days(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The whole UTC days covering [start, end): what a cost read of that range sums."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("naive datetime given; times are timezone-aware UTC")
    first = align_down(start, DAY)
    return first, max(align_up(end, DAY), first + DAY)


def _cost_where(table: sa.Table, start: datetime, end: datetime, scope: CostScope) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = [table.c.day >= start, table.c.day < end]
    if scope.accounts:
        conditions.append(table.c.account.in_(sorted({a.lower() for a in scope.accounts})))
    if scope.deployments:
        conditions.append(table.c.deployment.in_(scope.deployments))
    if scope.teams:
        conditions.append(table.c.team.in_(scope.teams))
    if scope.pairs is not None:
        pairs = sorted({(a.lower(), d) for a, d in scope.pairs})
        conditions.append(sa.tuple_(table.c.account, table.c.deployment).in_(pairs) if pairs else sa.false())
    return conditions


def _label_table(conn: sa.Connection, labels: CostLabels) -> tuple[sa.FromClause, tuple[str, ...]]:
    """The labels as a table to join: a temporary table with a primary key on SQLite (which builds no index on a
    VALUES list, so joining one is a nested loop: seconds on a quarter of 300 deployments), VALUES elsewhere."""
    keys = ("team",) if labels.column == "team" else ("account", "deployment")
    if labels.column not in ("team", "deployment"):
        raise ValueError(f"labels by {labels.column!r}: choose team or deployment")
    rows = sorted({(k,) if labels.column == "team" else (k[0].lower(), k[1]): v
                   for k, v in labels.values.items()}.items())
    data = [(*key, label) for key, label in rows]
    columns = [sa.column(k, sa.String()) for k in (*keys, "label")]
    if conn.dialect.name != "sqlite":
        return sa.values(*columns, name="cost_labels").data(data).alias("cost_labels"), keys
    name = f"cost_labels_{labels.column}"
    conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({', '.join(f'{k} TEXT' for k in keys)}, "
                         f"label TEXT, PRIMARY KEY ({', '.join(keys)}))")
    conn.exec_driver_sql(f"DELETE FROM {name}")
    conn.exec_driver_sql(f"INSERT INTO {name} VALUES ({', '.join('?' for _ in columns)})", data)
    return sa.table(name, *columns), keys


def cost_rows(store: Store, start: datetime, end: datetime, scope: CostScope = ALL_COSTS, *,
              by: Sequence[str] = (), step: timedelta | None = None,
              labels: CostLabels | None = None) -> list[dict[str, Any]]:
    """`cost_daily` over the days of [start, end) (see `cost_days`) summed in the database per `by` (any of
    `COST_KEYS`), per step of whole days when `step` is given (key "step": the step's first day, counted from the
    range's first day) and per label when `labels` are given (key "label"). Each row also has the measures of
    `COST_MEASURES` (exact integers; cost in micro-USD) and `unpriced` (1 when any of its rows was unpriced).
    Without keys, one row of totals (zeros when nothing matched)."""
    unknown = [k for k in by if k not in COST_KEYS]
    if unknown:
        raise ValueError(f"cost rows by {', '.join(unknown)}: choose from {', '.join(COST_KEYS)}")
    if step is not None and (step < DAY or step % DAY):
        raise ValueError(f"a cost step is whole days, not {step}")
    start, end = cost_days(start, end)
    table = store.tables["cost_daily"]
    with store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # A quarter of 300 deployments is ~10^5 rows in ~10^3 groups: hashed in memory in a third of the time
            # PostgreSQL's default 4 MB takes to sort them on disk. For this read's transaction only.
            conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
        rows_of: sa.FromClause = table
        conditions = _cost_where(table, start, end, scope)
        if labels is not None and conn.dialect.name == "sqlite":
            # Summed per day, label key and method first (for team labels in the order of the (day, team, method)
            # index, with no sort), then labelled: one lookup per group rather than one per row. (PostgreSQL hashes
            # the rows with their labels faster as they are.)
            label_keys = ("team",) if labels.column == "team" else ("account", "deployment")
            grouped = [table.c[k] for k in dict.fromkeys(("day", *by, *label_keys, "method"))]
            rows_of = (sa.select(*grouped, *(sa.func.sum(table.c[m]).label(m) for m in COST_MEASURES),
                                 sa.func.max(table.c.unpriced).label("unpriced"))
                       .where(*conditions).group_by(*grouped).subquery("summed"))
            conditions = []
        keys: list[sa.ColumnElement[Any]] = [rows_of.c[k] for k in by]
        joined = rows_of
        if labels is not None:
            named: sa.ColumnElement[str] = sa.literal(labels.default, sa.String())
            if labels.values:
                lookup, on = _label_table(conn, labels)
                joined = rows_of.outerjoin(lookup, sa.and_(*(rows_of.c[k] == lookup.c[k] for k in on)))
                named = sa.func.coalesce(lookup.c.label, named)
            if labels.own:
                named = sa.case((rows_of.c.method.in_(labels.own), rows_of.c.method), else_=named)
            keys.insert(0, named.label("label"))
        if step == DAY:  # the stored day is the step: no date arithmetic per row
            keys.insert(0, rows_of.c.day.label("step"))
        elif step is not None:
            origin = int((start - EPOCH).total_seconds())
            keys.insert(0, bucket_index(rows_of.c.day, sa.literal(origin, sa.BigInteger()),
                                        sa.literal(int(step.total_seconds()), sa.BigInteger())).label("step"))
        # By position: an expression with bound parameters would not match itself in PostgreSQL's GROUP BY.
        positions: list[sa.ColumnElement[Any]] = [sa.literal_column(str(i + 1)) for i in range(len(keys))]
        query = (sa.select(*keys, *(sa.func.sum(rows_of.c[m]).label(m) for m in COST_MEASURES),
                           sa.func.max(rows_of.c.unpriced).label("unpriced"))
                 .select_from(joined).where(*conditions))
        if keys:
            query = query.group_by(*positions).order_by(*positions)
        rows = [dict(r._mapping) for r in conn.execute(query).all()]
    for row in rows:
        for m in (*COST_MEASURES, "unpriced"):
            row[m] = int(row[m] or 0)
        if step is not None and step != DAY:
            row["step"] = start + step * int(row["step"])
    return rows


def cost_teams(store: Store, start: datetime | None = None, end: datetime | None = None) -> list[str]:
    """Every team (`idle` and `unallocated` included) with cost rows in the days of [start, end), or ever.

    A loose index scan: the next team after the last one found, one probe of the (team, day) index each, and one
    more per team for the range, rather than a scan of a year of rows for a few dozen names."""
    table = store.tables["cost_daily"]
    later = table.alias("later")
    teams = sa.select(sa.func.min(table.c.team).label("team")).cte("teams", recursive=True)
    teams = teams.union_all(
        sa.select(sa.select(sa.func.min(later.c.team)).where(later.c.team > teams.c.team).scalar_subquery())
        .where(teams.c.team.is_not(None)))
    query = sa.select(teams.c.team).where(teams.c.team.is_not(None)).order_by(teams.c.team)
    if start is not None and end is not None:
        first, last = cost_days(start, end)
        query = query.where(sa.exists().where(table.c.team == teams.c.team, table.c.day >= first,
                                              table.c.day < last))
    with store.engine.connect() as conn:
        return [r[0] for r in conn.execute(query).all()]


def cost_version(store: Store) -> datetime | None:
    """When the daily cost table last changed (the newest refresh of any day): a cache key for what is derived
    from the whole table."""
    days = store.tables["cost_days"]
    with store.engine.connect() as conn:
        value: datetime | None = conn.execute(sa.select(sa.func.max(days.c.refreshed_at))).scalar_one_or_none()
    return value


def cost_months(store: Store) -> list[datetime]:
    """The first instants of the calendar months (UTC) the daily cost table has any priced day in, newest first."""
    days = store.tables["cost_days"]
    with store.engine.connect() as conn:
        first, last = conn.execute(sa.select(sa.func.min(days.c.day), sa.func.max(days.c.day))).one()
    if first is None or last is None:
        return []
    months, month = [], month_of(first)
    while month.start <= last:
        months.append(month.start)
        month = month_of(month.end)
    return months[::-1]
