"""The SRE operations page: requests and errors by class, 429s, content-filter blocks, latency, time to token,
PTU utilisation and capacity headroom, per deployment; layout and callbacks only (reads in collector.store.reads,
drawing in dashboards.figures).

Requests and metrics carry no caller, so the Team filter selects the deployments the team's attributed usage ran
on in the range (the daily cost table), as the Model filter selects the deployments that served the model.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dash import Dash, Input, Output, dcc, html
from dash.development.base_component import Component

from collector.cost.attribution import DeploymentInfo
from collector.store import reads
from collector.store.database import Store
from dashboards import figures
from dashboards.context import Context
from dashboards.figures import Figure
from dashboards.filters import Filters, parse_query, resolve_range
from dashboards.memo import Memo, data_version
from dashboards.page import Page
from dashboards.tables import csv_table, render

GRAPHS = ("ops-requests", "ops-error-rate", "ops-latency", "ops-time-to-token", "ops-throttling", "ops-blocks",
          "ops-ptu", "ops-capacity")
SERIES_METRICS = (reads.FIRST_TOKEN_METRIC, reads.LAST_TOKEN_METRIC)
TABLE = "operations-deployments"
TABLE_METRICS = (reads.BLOCKED_METRIC, reads.FIRST_TOKEN_METRIC, reads.LAST_TOKEN_METRIC,
                 reads.PTU_UTILISATION_METRIC)


@dataclass(frozen=True)
class View:
    """Everything the page draws for one set of filters."""

    note: list[str]
    kpis: list[tuple[str, str, str]]  # (label, value, detail)
    figures: dict[str, Figure]
    table: list[dict[str, Any]]


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100.0 * value:.2f}%"


def _scope(filters: Filters) -> reads.Scope:
    return reads.Scope(accounts=filters.accounts, deployments=filters.deployments, models=filters.models,
                       teams=filters.teams)


def _period(start: datetime, end: datetime, context: Context) -> str:
    zone = context.zone
    return f"{start.astimezone(zone):%Y-%m-%d %H:%M} – {end.astimezone(zone):%Y-%m-%d %H:%M} ({zone})"


#: The page's reads, per version of the collected data (a view seen before is drawn without reading the store).
_MEMO = Memo()


def _read(store: Store, plan: reads.Plan, scope: reads.Scope) -> tuple[Any, ...]:
    """Every read of the page, run side by side (the databases work outside the GIL; each read is one query or a
    few, on its own pooled connection)."""
    scope = reads.resolve(store, plan, scope)  # the deployments of its models and teams, looked up once
    parts = reads.deployment_parts(store, plan, scope, metrics=TABLE_METRICS)
    calls: list[Callable[[], Any]] = [
        *parts,  # the table's reads first: the longest
        lambda: reads.latency_series(store, plan, scope),
        lambda: reads.metric_series(store, plan, SERIES_METRICS, scope),
        lambda: reads.request_series(store, plan, scope),
        lambda: reads.metric_series(store, plan, (reads.PTU_UTILISATION_METRIC,), scope, by_deployment=True),
        lambda: reads.deployment_models(store, plan.start, plan.end),
    ]
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="ops-read") as pool:
        found = [f.result() for f in [pool.submit(c) for c in calls]]
    latency, series, points, ptu, models = found[len(parts):]
    return points, latency, series, ptu, reads.merge_deployment_parts(found[:len(parts)]), models


def view(context: Context, filters: Filters) -> View:
    """Read and draw the page for `filters`: the figures callback's whole work, callable without a browser."""
    start, end, problems = resolve_range(filters, context.now(), context.zone)
    plan = reads.plan(start, end, grain=context.settings.collector.grain, fine_since=context.fine_since)
    scope, store, zone = _scope(filters), context.store, context.zone
    # Peak tokens per minute are read per tier bucket: the grain on the fine tier, an hour or a day on the others.
    bucket = {"5m": context.settings.collector.grain, "1h": reads.HOUR, "1d": reads.DAY}[plan.tier]
    bucket_minutes = bucket.total_seconds() / 60
    points, latency, series, ptu, rows, models = _MEMO.get(
        (str(store.engine.url), data_version(store)), (plan, scope), lambda: _read(store, plan, scope))
    inventory: dict[tuple[str, str], DeploymentInfo | None] = {
        (r.account, r.deployment): context.inventory.get(r.account, r.deployment) for r in rows}

    counts, histogram, metrics = figures.totals(rows)
    p50, p95, p99 = figures.percentiles(histogram)
    rates = figures.error_rates(counts)
    blocked = metrics.get(reads.BLOCKED_METRIC, reads.MetricAggregate()).total
    kpis = [
        ("Requests", f"{counts.requests:,}", f"{counts.requests_2xx:,} succeeded"),
        ("Error rate", _pct(rates["all errors"]),
         f"4xx {_pct(rates['4xx (not 429)'])} · 429 {_pct(rates['429'])} · 5xx {_pct(rates['5xx'])}"),
        ("429 throttled", f"{counts.requests_429:,}", f"{_pct(rates['429'])} of requests"),
        ("Content-filter blocks", f"{blocked:,.0f}", "RAIRejectedRequests"),
        ("Latency p50 / p95", f"{_ms(p50)} / {_ms(p95)}", f"p99 {_ms(p99)} (successful requests)"),
        ("Time to first token", _ms(metrics.get(reads.FIRST_TOKEN_METRIC, reads.MetricAggregate()).average),
         f"last byte {_ms(metrics.get(reads.LAST_TOKEN_METRIC, reads.MetricAggregate()).average)} (means)"),
    ]
    step = f"{int(plan.step.total_seconds() // 60)} min" if plan.step < reads.HOUR else \
        f"{int(plan.step.total_seconds() // 3600)} h" if plan.step < reads.DAY else f"{plan.step.days} d (UTC)"
    tier = {"5m": "5-minute", "1h": "hourly", "1d": "daily"}[plan.tier]
    note = [f"{_period(plan.start, plan.end, context)} · one point per {step} · {tier} rollups"
            + (" (peak tokens per minute are a day's mean: pick 14 days or less for hourly peaks)"
               if plan.tier == "1d" else ""), *filters.problems, *problems]
    if filters.teams:
        note.append(f"Team {', '.join(filters.teams)}: every request of the deployments the team's attributed usage "
                    "ran on in the range (requests and metrics carry no team)")
    return View(
        note=note, kpis=kpis,
        figures={
            "ops-requests": figures.requests_by_class(points, zone),
            "ops-error-rate": figures.error_rate_by_class(points, zone),
            "ops-latency": figures.latency_percentiles(latency, zone),
            "ops-time-to-token": figures.time_to_token(series, zone),
            "ops-throttling": figures.throttling_by_deployment(rows),
            "ops-blocks": figures.blocks_by_deployment(rows),
            "ops-ptu": figures.ptu_utilisation(ptu, zone),
            "ops-capacity": figures.capacity_used(rows, inventory, bucket_minutes),
        },
        table=figures.table_rows(rows, models, inventory, bucket_minutes),
    )


def _kpi_cards(kpis: list[tuple[str, str, str]]) -> list[Component]:
    return [html.Div([html.Div(label, className="kpi-label"), html.Div(value, className="kpi-value"),
                      html.Div(detail, className="kpi-detail")], className="kpi") for label, value, detail in kpis]


def layout(context: Context, filters: Filters) -> Component:
    graphs = [html.Div(dcc.Graph(id=g, config={"displayModeBar": False}, figure=figures.empty("", "Loading…")),
                       className="card") for g in GRAPHS]
    return html.Div([
        html.H1("Operations"),
        html.P("Requests, errors, throttling, content-filter blocks, latency and capacity per deployment, from the "
               "collector's rollups.", className="subtitle"),
        html.Div(id="ops-note", className="note", children="Loading…"),
        dcc.Loading(html.Div(id="ops-kpis", className="kpis"), type="dot"),
        dcc.Loading(html.Div(graphs, className="grid"), type="default", delay_show=300),
        csv_table(TABLE, "Per deployment", figures.TABLE_COLUMNS,
                  "Sorted by requests. Percentiles from merged histograms of successful requests; first token and "
                  "last byte are platform-metric means; peak tokens/min is the busiest rollup bucket's mean."),
    ], className="operations")


def register_callbacks(app: Dash, context: Context) -> None:
    @app.callback(Output("ops-note", "children"), Output("ops-kpis", "children"),
                  *(Output(g, "figure") for g in GRAPHS), Output(TABLE, "children"),
                  Output({"type": "csv-rows", "table": TABLE}, "data"), Input("url", "search"))
    def draw(search: str | None) -> tuple[Any, ...]:
        shown = view(context, parse_query(search))
        note = [html.Div(line, className="note-line" if i == 0 else "note-problem") for i, line in
                enumerate(shown.note)]
        table = render(figures.TABLE_COLUMNS, shown.table,
                       "No deployment logged requests or metrics in this range for these filters.")
        return (note, _kpi_cards(shown.kpis), *(shown.figures[g] for g in GRAPHS), table, shown.table)


PAGE = Page(path="/operations", title="Operations", audience="SRE", layout=layout,
            register_callbacks=register_callbacks, tables={TABLE: figures.TABLE_COLUMNS}, team_filter=True)
