"""collector.store.reads on real SQLite and PostgreSQL: aggregates equal sums counted by hand from store_rows.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.rollups.specs import LATENCY, PLATFORM_METRICS, REQUESTS
from collector.rollups.windows import Window
from collector.store import reads
from collector.store.database import Store
from collector.store.reads import MetricAggregate, RequestCounts, Scope
from tests.dashboards.store_rows import EUS, NOW, SWC, T0, TABLES, WINDOW, at, fill, fill_costs

END = T0 + timedelta(hours=2)
MIN = timedelta(minutes=1)


@pytest.mark.parametrize(("span", "tier", "step", "points"), [
    (timedelta(hours=1), "5m", timedelta(minutes=5), 12),
    (timedelta(hours=24), "5m", timedelta(minutes=5), 288),
    (timedelta(days=2), "5m", timedelta(minutes=10), 288),
    (timedelta(days=2, hours=1), "1h", timedelta(hours=1), 49),
    (timedelta(days=7), "1h", timedelta(hours=1), 168),
    (timedelta(days=14), "1h", timedelta(hours=2), 168),
    (timedelta(days=14, hours=1), "1d", timedelta(days=1), 15),  # widened to whole UTC days
    (timedelta(days=30), "1d", timedelta(days=1), 30),
    (timedelta(days=90), "1d", timedelta(days=1), 90),
    (timedelta(days=400), "1d", timedelta(days=2), 201),  # epoch-aligned steps: one more at the start
])
def test_plan_picks_the_tier_and_a_step_under_max_points(span: timedelta, tier: str, step: timedelta,
                                                          points: int) -> None:
    end = datetime(2025, 3, 4, tzinfo=UTC)
    plan = reads.plan(end - span, end)
    assert (plan.tier, plan.step, len(plan.step_starts())) == (tier, step, points)
    assert len(plan.step_starts()) <= reads.MAX_POINTS


def test_plan_widens_to_whole_buckets_and_respects_the_fine_retention() -> None:
    plan = reads.plan(T0 + 2 * MIN, T0 + 58 * MIN)
    assert (plan.start, plan.end, plan.tier) == (T0, T0 + timedelta(hours=1), "5m")
    hourly = reads.plan(T0 + 2 * MIN, T0 + 58 * MIN, fine_since=T0 + timedelta(hours=1))
    assert (hourly.tier, hourly.start, hourly.end) == ("1h", T0, T0 + timedelta(hours=1))
    assert reads.plan(T0, END, grain=timedelta(minutes=15)).step == timedelta(minutes=15)


@pytest.mark.parametrize(("start", "end"), [(T0.replace(tzinfo=None), END), (END, T0), (T0, T0)])
def test_plan_refuses_naive_or_empty_ranges(start: datetime, end: datetime) -> None:
    with pytest.raises(ValueError):
        reads.plan(start, end)


def test_request_series_adds_sources_and_fills_empty_steps(store: Store) -> None:
    fill(store)
    series = reads.request_series(store, reads.plan(T0, END))
    assert len(series) == 24 and [p.start for p in series[:2]] == [T0, at(5)]
    assert {i: p.requests.requests for i, p in enumerate(series) if p.requests.requests} == {0: 17, 1: 4, 13: 8}
    assert series[0].requests == RequestCounts(17, 13, 3, 1, 2, 1, 8100)
    total = [sum(getattr(p.requests, f) for p in series) for f in RequestCounts.__dataclass_fields__]
    assert total == [29, 25, 3, 1, 2, 1, 10900]


@pytest.mark.parametrize(("scope", "requests"), [
    (Scope(), 29),
    (Scope(accounts=(EUS,)), 21),
    (Scope(deployments=("gpt-4o",)), 15),
    (Scope(deployments=("gpt-4o", "embed")), 23),
    (Scope(models=("gpt-4o",)), 21),
    (Scope(models=("text-embedding-3-small",)), 8),
    (Scope(models=("gpt-4o",), deployments=("gpt-4o-ptu",)), 6),
    (Scope(accounts=(SWC,), models=("gpt-4o",)), 0),
    (Scope(deployments=("no-such",)), 0),
    # Teams select the deployments their attributed usage ran on that day (store_rows.COST_ROWS, day D2).
    (Scope(teams=("ads",)), 15),  # gpt-4o; its other deployment logged no requests
    (Scope(teams=("search",)), 21),  # gpt-4o and gpt-4o-ptu
    (Scope(teams=("unallocated",)), 8),  # embed, on the other account (cost rows lower-case accounts)
    (Scope(teams=("ads", "unallocated")), 23),
    (Scope(teams=("ads",), models=("text-embedding-3-small",)), 0),  # both must hold
    (Scope(teams=("nobody",)), 0),
], ids=["all", "account", "deployment", "two-deployments", "model", "other-model", "model-and-deployment",
        "account-without-model", "unknown", "team", "team-two-deployments", "team-other-account", "two-teams",
        "team-and-model", "unknown-team"])
def test_scopes_filter_in_the_database(store: Store, scope: Scope, requests: int) -> None:
    fill(store)
    fill_costs(store)
    plan = reads.plan(T0, END)
    assert sum(p.requests.requests for p in reads.request_series(store, plan, scope)) == requests
    assert sum(r.requests.requests for r in reads.deployment_rows(store, plan, scope)) == requests
    assert reads.rollup_total(store, REQUESTS, "requests", plan, scope) == requests


def test_latency_series_merges_histograms_per_step(store: Store) -> None:
    fill(store)
    series = dict(reads.latency_series(store, reads.plan(T0, END)))
    assert series[T0] == {40: 5, 44: 2, 36: 5}
    assert series[at(5)] == {40: 4}
    assert series[at(65)] == {24: 8}
    assert sum(1 for h in series.values() if h) == 3


def test_metric_series_sums_counts_and_keeps_extremes(store: Store) -> None:
    fill(store)
    series = reads.metric_series(store, reads.plan(T0, END), [reads.FIRST_TOKEN_METRIC])
    assert series == {(reads.FIRST_TOKEN_METRIC, "", ""): [
        (T0, MetricAggregate(3000.0, 7.0, 100.0, 900.0)), (at(5), MetricAggregate(1000.0, 4.0, 50.0, 400.0))]}
    hourly = reads.metric_series(store, reads.plan(T0 - timedelta(days=3), END), [reads.FIRST_TOKEN_METRIC])
    [(hour, aggregate)] = hourly[(reads.FIRST_TOKEN_METRIC, "", "")]
    assert (hour, aggregate) == (T0, MetricAggregate(4000.0, 11.0, 50.0, 900.0))
    assert aggregate.average == pytest.approx(4000 / 11)
    ptu = reads.metric_series(store, reads.plan(T0, END), [reads.PTU_UTILISATION_METRIC], by_deployment=True)
    assert list(ptu) == [(reads.PTU_UTILISATION_METRIC, EUS, "gpt-4o-ptu")]


def test_deployment_rows(store: Store) -> None:
    fill(store)
    rows = reads.deployment_rows(store, reads.plan(T0, END), metrics=[reads.BLOCKED_METRIC,
                                                                      reads.PTU_UTILISATION_METRIC])
    assert [(r.account, r.deployment) for r in rows] == [(EUS, "gpt-4o"), (EUS, "gpt-4o-ptu"), (SWC, "embed")]
    gpt, ptu, embed = rows
    assert gpt.requests == RequestCounts(15, 12, 3, 1, 2, 0, 7100)
    assert gpt.histogram == {40: 9, 44: 2}
    assert gpt.metrics == {reads.BLOCKED_METRIC: MetricAggregate(3.0, 3.0, 1.0, 1.0),
                           reads.TOKENS_METRIC: MetricAggregate(2270.0, 11.0, 50.0, 600.0)}
    assert gpt.peak_tokens_per_bucket == 1500.0
    assert ptu.metrics[reads.PTU_UTILISATION_METRIC] == MetricAggregate(160.0, 10.0, 5.0, 45.0)
    assert (ptu.peak_tokens_per_bucket, embed.peak_tokens_per_bucket) == (550.0, 80.0)
    hourly = reads.deployment_rows(store, reads.plan(T0 - timedelta(days=3), END))
    assert [r.requests for r in hourly] == [r.requests for r in rows]
    assert hourly[0].peak_tokens_per_bucket == 2270.0  # one hour bucket holds both 5-minute ones


def test_models_and_deployments_in_a_range(store: Store) -> None:
    fill(store)
    assert reads.deployment_models(store, T0, END) == {
        ("", "gateway-only"): ("gpt-35-turbo",),
        (EUS, "gpt-4o"): ("gpt-4o",),
        (EUS, "gpt-4o-ptu"): ("gpt-4o",),
        (SWC, "embed"): ("text-embedding-3-small",),
    }
    assert reads.deployments(store, T0, END) == [(EUS, "gpt-4o"), (EUS, "gpt-4o-ptu"), (SWC, "embed")]
    assert reads.deployments(store, END, END + timedelta(hours=1)) == []


def test_an_empty_store_reads_as_zeros(store: Store) -> None:
    plan = reads.plan(T0, END)
    assert sum(p.requests.requests for p in reads.request_series(store, plan)) == 0
    assert reads.deployment_rows(store, plan) == []
    assert reads.metric_series(store, plan, [reads.FIRST_TOKEN_METRIC]) == {}
    assert reads.sources(store) == []


def test_a_month_reads_the_daily_tier_with_the_same_totals(store: Store) -> None:
    fill(store)
    month = reads.plan(END - timedelta(days=30), END)
    assert month.tier == "1d"
    hour = reads.plan(T0, END)
    assert [r.requests for r in reads.deployment_rows(store, month)] == [
        r.requests for r in reads.deployment_rows(store, hour)]
    assert reads.rollup_total(store, REQUESTS, "requests", month, Scope(models=("gpt-4o",))) == 21
    latency = dict(reads.latency_series(store, month))
    assert latency[T0.replace(hour=0, minute=0)] == {40: 9, 44: 2, 36: 5, 24: 8}


def _spread(store: Store, days: int) -> None:
    """The fixture's rows once a day for `days` days before T0 (and T0's own), counts varying by day."""
    for day in range(days + 1):
        shift = timedelta(days=day - days)
        for spec, rows in TABLES:
            moved = [(r[0], r[1] + shift, *r[2:]) for r in rows]
            if spec in (REQUESTS, LATENCY):  # vary a count so a day left out or counted twice shows
                moved = [(*r[:-3], r[-3] + day, *r[-2:]) for r in moved]
            for source in sorted({r[0] for r in rows}):
                store.replace_window(spec, source, Window(WINDOW.start + shift, WINDOW.end + shift),
                                     [r for r in moved if r[0] == source], now=NOW + shift)


@pytest.mark.parametrize("days", [30, 35, 41])  # ranges starting on several weekdays: weeks and days either side
def test_long_ranges_read_whole_weeks_weekly_with_the_same_totals(store: Store, days: int) -> None:
    _spread(store, 45)
    start, end = END - timedelta(days=days), END
    plan = reads.plan(start, end)
    parts = reads.tiles(plan.tier, plan.start, plan.end)
    assert [tier for tier, _, _ in parts].count("1w") == 1 and len(parts) >= 2
    assert sum((b - a for _, a, b in parts), timedelta(0)) == plan.end - plan.start
    # The reference: the daily tier's rows of the plan's days, summed here.
    inside = [r for r in store.read(REQUESTS, "1d") if plan.start <= r["bucket_start"] < plan.end]
    latency = [r for r in store.read(LATENCY, "1d") if plan.start <= r["bucket_start"] < plan.end]
    metrics = [r for r in store.read(PLATFORM_METRICS, "1d") if plan.start <= r["bucket_start"] < plan.end]
    for scope in (Scope(), Scope(accounts=(EUS,)), Scope(models=("gpt-4o",))):
        rows = reads.deployment_rows(store, plan, scope, metrics=[reads.BLOCKED_METRIC, reads.FIRST_TOKEN_METRIC])
        pairs = {(r.account, r.deployment) for r in rows}
        assert pairs == ({(EUS, "gpt-4o"), (EUS, "gpt-4o-ptu"), (SWC, "embed")} if scope == Scope() else
                         {(EUS, "gpt-4o"), (EUS, "gpt-4o-ptu")})
        for row in rows:
            mine = [r for r in inside if (r["account"], r["deployment"]) == (row.account, row.deployment)]
            assert row.requests.requests == sum(r["requests"] for r in mine)
            assert row.requests.requests_429 == sum(r["requests_429"] for r in mine)
            buckets = [r for r in latency if (r["account"], r["deployment"]) == (row.account, row.deployment)]
            assert row.histogram == {b: sum(r["requests"] for r in buckets if r["le_bucket"] == b)
                                     for b in {r["le_bucket"] for r in buckets}}
            first_token = [r for r in metrics if (r["account"], r["deployment"], r["metric"]) ==
                           (row.account, row.deployment, reads.FIRST_TOKEN_METRIC)]
            if first_token:
                assert row.metrics[reads.FIRST_TOKEN_METRIC] == MetricAggregate(
                    sum(r["total"] for r in first_token), sum(r["count"] for r in first_token),
                    min(r["minimum"] for r in first_token), max(r["maximum"] for r in first_token))
    assert reads.deployment_models(store, start, end) == reads.deployment_models(store, T0, END)
