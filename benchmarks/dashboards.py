"""Dashboard callbacks and the monthly report on a big store, against raw SQL for the same aggregation.

    python -m benchmarks.dashboards [--postgres URL] [--runs 20] [--deployments 300] [--teams 40]

Builds a store with one year of rollups for 300 deployments and 40 teams (six accounts, 20 of the deployments
provisioned): the daily tier and the daily cost table for the whole year, the hourly tier for the last 14 days and
the fine tier for the last 2 (what each tier holds when the views read it: views longer than 14 days read the daily
tier; its whole weeks from the weekly tier, derived from the daily one). Then, for a 90-day view, it times each
callback's server work (Operations' `view`; Cost's summary, series, movers and budgets) over filters that change run
to run (none, one account, one deployment, one team, one model), twice: "first view" with empty memos (every read
goes to the database) and "as used" with one memo for the run (as a server keeps it between two collector passes);
and the monthly report's assembly and rendering. The baseline, in the same run, is the raw SQL of each view's main
aggregation (one GROUP BY over the same table and range: every deployment's latency histogram for Operations, cost
per day and team for Cost and the report), so the ratio shows what the page adds over the database.
Targets (issue 5): p95 callback <= 200 ms on SQLite and on PostgreSQL; report <= 5 s.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from collector.config import Settings
from collector.cost.attribution import DeploymentInfo
from collector.cost.inventory import Inventory
from collector.rollups.histogram import BUCKETS_PER_DOUBLING
from collector.rollups.specs import (
    APIM_TOKENS,
    CALLER_REQUESTS,
    LATENCY,
    PLATFORM_METRICS,
    REQUESTS,
    USAGE_TOKENS,
    RollupSpec,
    row_columns,
)
from collector.store.database import Store, week_start

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
DAY, HOUR, FIVE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=5)
MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o4-mini", "text-embedding-3-small")
TYPES = ("GlobalStandard", "DataZoneStandard", "GlobalStandard", "Standard")
METRICS = ("ProcessedPromptTokens", "GeneratedTokens", "TokenTransaction", "RAIRejectedRequests",
           "AzureOpenAITimeToResponse", "AzureOpenAITTLTInMS")


def inventory(deployments: int, teams: int) -> list[DeploymentInfo]:
    found = []
    for i in range(deployments):
        provisioned = i % 15 == 0
        found.append(DeploymentInfo(
            f"acct-{i % 6}", f"dep-{i:03d}", MODELS[i % len(MODELS)], None,
            "ProvisionedManaged" if provisioned else TYPES[i % len(TYPES)], ["eastus", "swedencentral"][i % 2],
            50 if provisioned else 300, f"team-{i % teams:02d}"))
    return found


def _rows(spec: RollupSpec, deps: list[DeploymentInfo], start: datetime, end: datetime, step: timedelta,
          teams: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """Plausible rollup rows per deployment and bucket (the values matter little; their number does)."""
    scale = step / HOUR
    at = start
    while at < end:
        for i, d in enumerate(deps):
            n = max(1, int(rng.gauss(400, 80) * scale))
            if spec is REQUESTS:
                throttled = n // 10 if (at.weekday() == 1 and i % 7 == 0) else n // 200
                yield ("bench", at, d.account, d.name, n, n - throttled - 3, 3, 1, throttled, 1, n * 900)
            elif spec is LATENCY:
                for b in range(36, 36 + 10):
                    yield ("bench", at, d.account, d.name, b, n // 10, n // 10 * 2 ** (b / BUCKETS_PER_DOUBLING))
            elif spec is PLATFORM_METRICS:
                for status in ("200", "429"):
                    yield ("bench", at, d.account, d.name, "AzureOpenAIRequests", status, float(n), float(n), 1.0,
                           float(n))
                for metric in METRICS:
                    yield ("bench", at, d.account, d.name, metric, "", float(n * 900), float(n), 10.0, 4000.0)
                if d.deployment_type == "ProvisionedManaged":
                    yield ("bench", at, d.account, d.name, "AzureOpenAIProvisionedManagedUtilizationV2", "",
                           40.0 * 60 * scale, 60 * scale, 5.0, 95.0)
            elif spec is USAGE_TOKENS:
                for c in range(3):
                    yield ("bench", at, d.account.upper(), d.name, d.model, f"caller-{(i + c) % (teams * 2)}",
                           n // 3, n * 300, n * 60, n * 80)
            elif spec is CALLER_REQUESTS:
                for c in range(3):
                    yield ("bench", at, d.account.upper(), d.name, f"caller-{(i + c) % (teams * 2)}", n // 3,
                           n // 3, n * 1200, n * 400)
            elif spec is APIM_TOKENS and i % 3 == 0:
                yield ("bench", at, f"sub-{i % teams}", d.name, d.model, n, n * 300, n * 80, n * 380)
        at += step


def _insert(store: Store, table: sa.Table, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> int:
    count, batch = 0, []
    with store.engine.begin() as conn:
        for row in rows:
            batch.append(dict(zip(columns, row, strict=True)))
            if len(batch) == 20_000:
                conn.execute(sa.insert(table), batch)
                count, batch = count + len(batch), []
        if batch:
            conn.execute(sa.insert(table), batch)
            count += len(batch)
    return count


def build(store: Store, deployments: int, teams: int, seed: int = 1) -> dict[str, int]:
    rng = random.Random(seed)
    deps = inventory(deployments, teams)
    year, today = NOW.replace(hour=0) - 365 * DAY, NOW.replace(hour=0)
    counts: dict[str, int] = {}
    for spec in (REQUESTS, LATENCY, PLATFORM_METRICS, USAGE_TOKENS, CALLER_REQUESTS, APIM_TOKENS):
        for tier, start, step in (("1d", year, DAY), ("1h", today - 14 * DAY, HOUR), ("5m", NOW - 2 * DAY, FIVE)):
            if tier == "5m" and spec in (USAGE_TOKENS, CALLER_REQUESTS, APIM_TOKENS):
                continue
            table = store.table(spec, tier)
            counts[table.name] = _insert(store, table, row_columns(spec), _rows(spec, deps, start, NOW, step,
                                                                                teams, rng))
    for spec in (REQUESTS, LATENCY, PLATFORM_METRICS, USAGE_TOKENS, CALLER_REQUESTS, APIM_TOKENS):
        # The weekly tier, derived from the daily one as the collector derives it.
        store.rederive(spec, "bench", "1w", week_start(year), week_start(NOW) + 7 * DAY)
        table = store.table(spec, "1w")
        with store.engine.connect() as conn:
            counts[table.name] = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    store.rederive_account_latency("bench", year, NOW)  # the accounts' daily latency, as the collector derives it
    cost_rows = []
    at = year
    while at < today:
        for i, d in enumerate(deps):
            for k in range(3):
                team = f"team-{(i + k) % teams:02d}"
                cost_rows.append({"day": at, "account": d.account, "deployment": d.name, "team": team,
                                  "method": ("direct", "estimated", "owner")[k], "price_id": f"{d.model}/{k}",
                                  "requests": 1000, "prompt_tokens": 300_000, "cached_tokens": 30_000,
                                  "completion_tokens": 80_000, "cost_micro_usd": rng.randint(1_000_000, 90_000_000),
                                  "unpriced": 0})
            if d.deployment_type == "ProvisionedManaged":
                cost_rows.append({"day": at, "account": d.account, "deployment": d.name, "team": "idle",
                                  "method": "idle", "price_id": "ptu", "requests": 0, "prompt_tokens": 0,
                                  "cached_tokens": 0, "completion_tokens": 0, "cost_micro_usd": 700_000_000,
                                  "unpriced": 0})
        at += DAY
    store.replace_cost_days(year, today, cost_rows, "bench", NOW)
    counts["cost_daily"] = len(cost_rows)
    with store.engine.begin() as conn:
        for spec in (REQUESTS, LATENCY, PLATFORM_METRICS, USAGE_TOKENS, CALLER_REQUESTS, APIM_TOKENS):
            conn.execute(sa.insert(store.tables["watermarks"]).values(source="bench", job=spec.name,
                                                                      watermark=NOW - timedelta(minutes=10)))
    if store.engine.dialect.name == "postgresql":
        # What autovacuum does after a bulk load: planner statistics, and the visibility map index-only scans use.
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    return counts


def _time(fn: Callable[[], Any], runs: int) -> list[float]:
    fn()  # warm: caches, first connection
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return times


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def run(url: str, runs: int, deployments: int, teams: int) -> None:
    from dashboards.context import Context
    from dashboards.filters import Filters
    from dashboards.pages import operations

    store = Store.open(url)
    t = time.perf_counter()
    counts = build(store, deployments, teams)
    print(f"\n== {store.engine.dialect.name}: built {sum(counts.values()):,} rows in {time.perf_counter() - t:.0f} s "
          f"({', '.join(f'{k} {v:,}' for k, v in counts.items() if v)})")
    deps = inventory(deployments, teams)
    settings = Settings()
    context = Context(store, settings, Inventory.of(deps), now=lambda: NOW)
    rng = random.Random(2)

    def filters() -> Filters:
        choice = rng.randrange(5)
        d = rng.choice(deps)
        return Filters(range="90d", accounts=(d.account,) if choice == 1 else (),
                       deployments=(d.name,) if choice == 2 else (), teams=(d.owner_team,) if choice == 3 else (),
                       models=(d.model,) if choice == 4 else ())

    start, end = NOW - 90 * DAY, NOW
    latency_1d = store.table(LATENCY, "1d")

    def baseline_ops() -> Any:
        """The page's heaviest aggregation: every deployment's merged latency histogram over the range."""
        with store.engine.connect() as conn:
            return conn.execute(sa.select(latency_1d.c.account, latency_1d.c.deployment, latency_1d.c.le_bucket,
                                          sa.func.sum(latency_1d.c.requests))
                                .where(latency_1d.c.source == "bench", latency_1d.c.bucket_start >= start,
                                       latency_1d.c.bucket_start < end)
                                .group_by(latency_1d.c.account, latency_1d.c.deployment,
                                          latency_1d.c.le_bucket)).all()

    cost = store.tables["cost_daily"]

    def baseline_cost() -> Any:
        with store.engine.connect() as conn:
            return conn.execute(sa.select(cost.c.day, cost.c.team, sa.func.sum(cost.c.cost_micro_usd))
                                .where(cost.c.day >= start, cost.c.day < end)
                                .group_by(cost.c.day, cost.c.team)).all()

    from dashboards.filters import to_query
    from dashboards.memo import Memo
    from dashboards.pages import cost as cost_page

    def ops(first: bool) -> Callable[[], Any]:
        def callback() -> Any:
            if first:
                operations._MEMO = Memo()  # nothing seen before: every read goes to the database
            return operations.view(context, filters())
        return callback

    shared = cost_page.Sources(context)

    def cost_callback(part: str, first: bool) -> Callable[[], Any]:
        """One of the cost page's callbacks; the summary's output feeds the others, as in the browser."""
        def callback() -> Any:
            loaded = (cost_page.Sources(context) if first else shared).get()
            search = to_query(filters())
            if part == "summary":
                return cost_page.summary(context, loaded, search, "")
            current = cost_page.summary(context, shared.get(), search, "").current
            if part == "series":
                return cost_page.series(context, loaded, current)
            if part == "movers":
                return cost_page.movers(context, loaded, current)
            return cost_page.budgets(context, loaded, search)
        return callback

    # "first view": empty memos, every read goes to the database; "as used": one memo for the whole run, as a
    # server keeps it between two collector passes, with filters that change run to run.
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("operations, first view", ops(True), baseline_ops),
        ("operations, as used", ops(False), baseline_ops),
        *((f"cost {part}, first view", cost_callback(part, True), baseline_cost)
          for part in ("summary", "series", "movers", "budgets")),
        *((f"cost {part}, as used", cost_callback(part, False), baseline_cost)
          for part in ("summary", "series", "movers", "budgets")),
    ]
    print(f"{'callback (90-day view)':<30} {'p50 ms':>8} {'p95 ms':>8} {'raw SQL p50 ms':>15} {'p95 / raw p50':>14}")
    for name, work, baseline in cases:
        page, raw = _time(work, runs), _time(baseline, runs)
        print(f"{name:<30} {_p(page, 50):>8.1f} {_p(page, 95):>8.1f} {_p(raw, 50):>15.1f} "
              f"{_p(page, 95) / _p(raw, 50):>13.1f}x  {'ok' if _p(page, 95) <= 200 else 'OVER the 200 ms target'}")
    from collector.cost.budgets import Budgets
    from collector.report.data import assemble, read_inputs
    from collector.report.render import render_csv, render_html
    from collector.rollups.months import Period

    month = Period(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))

    def report() -> Any:
        built = assemble(read_inputs(store, month, NOW), deps, Budgets(), team=None, generated_at=NOW)
        return render_html(built), render_csv(built)

    def baseline_report() -> Any:
        with store.engine.connect() as conn:
            return conn.execute(sa.select(cost.c.team, sa.func.sum(cost.c.cost_micro_usd))
                                .where(cost.c.day >= month.start, cost.c.day < month.end)
                                .group_by(cost.c.team)).all()

    times, raw = _time(report, 3), _time(baseline_report, 3)
    print(f"{'monthly report (HTML+CSV)':<30} {_p(times, 50):>8.1f} {max(times):>8.1f} {_p(raw, 50):>15.1f} "
          f"{max(times) / _p(raw, 50):>13.1f}x  {'ok' if max(times) <= 5000 else 'OVER the 5 s target'}")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("AOAI_OBS_TEST_POSTGRES_URL", ""),
                        help="a PostgreSQL URL to run on too (a schema is created and dropped)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--deployments", type=int, default=300)
    parser.add_argument("--teams", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run(f"sqlite:///{Path(folder) / 'bench.sqlite'}", args.runs, args.deployments, args.teams)
    if args.postgres:
        schema = f"bench_{os.getpid()}"
        admin = sa.create_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            sep = "&" if "?" in args.postgres else "?"
            run(f"{args.postgres}{sep}options=-csearch_path%3D{schema}", args.runs, args.deployments, args.teams)
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
