"""Pure: the operations figures and table rows from aggregate reads (no I/O, no Dash), and the arithmetic behind them.

Times on the x axis are wall-clock times in the dashboards' time zone. Latency percentiles come from merged
histograms (the upper edge of the bucket holding the quantile; never an average of percentiles). Time to first and
last token are the platform metrics' means (sum / count of their samples): Azure keeps no histogram of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from collector.cost.attribution import DeploymentInfo
from collector.cost.pricing import PROVISIONED_TYPES
from collector.rollups.histogram import merge, percentile
from collector.store.reads import (
    BLOCKED_METRIC,
    FIRST_TOKEN_METRIC,
    LAST_TOKEN_METRIC,
    PTU_UTILISATION_METRIC,
    TOKENS_METRIC,
    DeploymentRow,
    MetricAggregate,
    RequestCounts,
    TimePoint,
)
from dashboards.colours import STATUS_COLOURS, colour_of

QUANTILES = (0.5, 0.95, 0.99)
BLOCKED_COLOUR = "#7b4173"
#: Bars for at most this many deployments; the table has them all.
TOP = 15


def plain(text: str) -> str:
    """Text from data as plotly draws it literally: its HTML subset's `<`, `>` and `&`, and the `%` of hover
    templates, as character references (which plotly turns back into the characters)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("%", "&#37;")


# -- arithmetic --------------------------------------------------------------------------------------------------


def status_classes(c: RequestCounts) -> dict[str, int]:
    """Requests by class, adding up to `c.requests` ("other" holds what no class counts, e.g. 1xx/3xx)."""
    classes = {"2xx": c.requests_2xx, "4xx (not 429)": c.requests_4xx - c.requests_429, "429": c.requests_429,
               "5xx": c.requests_5xx}
    classes["other"] = c.requests - sum(classes.values())
    return classes


def rate(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def error_rates(c: RequestCounts) -> dict[str, float | None]:
    """Share of all requests per error class, and of all errors (4xx, 429 included, and 5xx) together."""
    classes = status_classes(c)
    rates = {name: rate(classes[name], c.requests) for name in ("4xx (not 429)", "429", "5xx")}
    rates["all errors"] = rate(c.requests_4xx + c.requests_5xx, c.requests)
    return rates


def percentiles(histogram: Mapping[int, int]) -> tuple[float | None, ...]:
    """p50, p95, p99 in ms from a merged latency histogram (None when it is empty)."""
    return tuple(percentile(histogram, q) for q in QUANTILES)


@dataclass(frozen=True)
class Headroom:
    """Tokens per minute at the busiest bucket against a standard deployment's TPM quota."""

    capacity_tpm: float
    peak_tpm: float

    @property
    def used(self) -> float:
        return self.peak_tpm / self.capacity_tpm if self.capacity_tpm else 0.0

    @property
    def headroom_tpm(self) -> float:
        return self.capacity_tpm - self.peak_tpm


def peak_tpm(row: DeploymentRow, bucket_minutes: float) -> float:
    """Tokens per minute in the deployment's busiest tier bucket (a mean over that bucket, so one-minute peaks
    are higher)."""
    return row.peak_tokens_per_bucket / bucket_minutes


def headroom(info: DeploymentInfo | None, tpm: float) -> Headroom | None:
    """Headroom of a standard deployment (capacity in thousands of TPM); None for provisioned ones (their
    utilisation metric says it) and when the capacity is unknown."""
    if info is None or info.deployment_type in PROVISIONED_TYPES or info.capacity <= 0:
        return None
    return Headroom(info.capacity * 1000.0, tpm)


def is_provisioned(info: DeploymentInfo | None, row: DeploymentRow) -> bool:
    if info is not None:
        return info.deployment_type in PROVISIONED_TYPES
    return PTU_UTILISATION_METRIC in row.metrics


# -- figures -----------------------------------------------------------------------------------------------------
# Figures are plotly's JSON (what `go.Figure.to_plotly_json()` gives) built as plain dicts: plotly's Python objects
# validate every property on every draw, which costs more than the database reads. The tests validate each builder's
# output with `go.Figure(...)` instead.

Figure = dict[str, Any]
_GRID = "#e9edf2"
_LEGEND = {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1, "xanchor": "right"}


def _local(moments: Iterable[datetime], zone: tzinfo) -> list[str]:
    return [m.astimezone(zone).strftime("%Y-%m-%d %H:%M") for m in moments]


def _figure(title: str, data: list[dict[str, Any]], *, y_title: str = "", x_title: str = "",
            **layout: Any) -> Figure:
    axis = {"gridcolor": _GRID, "zerolinecolor": "#cfd6de", "linecolor": "#cfd6de", "automargin": True}
    base: dict[str, Any] = {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        "height": 320, "margin": {"l": 60, "r": 20, "t": 56, "b": 44}, "font": {"size": 12, "color": "#1f2933"},
        "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff",
        "legend": _LEGEND,
        "hovermode": "x unified" if x_title.startswith("time") else "closest",
        "xaxis": {**axis, "title": {"text": x_title}},
        "yaxis": {**axis, "title": {"text": y_title}, "rangemode": "tozero"},
    }
    base.update(layout)
    return {"data": data, "layout": base}


def empty(title: str, message: str) -> Figure:
    """A figure that says why it has nothing to show."""
    return _figure(title, [], annotations=[{
        "text": message, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper",
        "font": {"size": 14, "color": "#616e7c"}}],
        xaxis={"visible": False}, yaxis={"visible": False})


def requests_by_class(points: Sequence[TimePoint], zone: tzinfo) -> Figure:
    """Stacked bars of requests per step by status class; the bars add up to every request logged."""
    title = "Requests by status class"
    if not any(p.requests.requests for p in points):
        return empty(title, "No requests logged in this range for these filters.")
    x = _local((p.start for p in points), zone)
    per_class = [status_classes(p.requests) for p in points]
    data = []
    for name in ("2xx", "4xx (not 429)", "429", "5xx", "other"):
        y = [c[name] for c in per_class]
        if name == "other" and not any(y):
            continue
        data.append({"type": "bar", "x": x, "y": y, "name": name,
                     "marker": {"color": STATUS_COLOURS.get(name, "#bbbbbb")}})
    return _figure(title, data, y_title="requests", x_title=f"time ({zone})", barmode="stack", bargap=0.05,
                   legend={**_LEGEND, "traceorder": "normal"})


def error_rate_by_class(points: Sequence[TimePoint], zone: tzinfo) -> Figure:
    title = "Error rate by class (% of requests)"
    if not any(p.requests.requests for p in points):
        return empty(title, "No requests logged in this range for these filters.")
    x = _local((p.start for p in points), zone)
    rates = [error_rates(p.requests) for p in points]
    data = []
    for name in ("4xx (not 429)", "429", "5xx"):
        y = [None if (r := step[name]) is None else 100.0 * r for step in rates]
        data.append({"type": "scatter", "mode": "lines", "x": x, "y": y, "name": name,
                     "line": {"color": STATUS_COLOURS[name], "width": 2}})
    return _figure(title, data, y_title="% of requests", x_title=f"time ({zone})")


def latency_percentiles(series: Sequence[tuple[datetime, Mapping[int, int]]], zone: tzinfo) -> Figure:
    title = "Latency of successful requests, p50 / p95 / p99 (ms)"
    if not any(h for _, h in series):
        return empty(title, "No successful requests in this range for these filters.")
    x = _local((start for start, _ in series), zone)
    values = [percentiles(h) for _, h in series]
    data = [{"type": "scatter", "mode": "lines", "x": x, "y": [v[i] for v in values], "name": name,
             "line": {"color": colour, "width": 2}}
            for i, (name, colour) in enumerate((("p50", "#3182bd"), ("p95", "#e6550d"), ("p99", "#a50f15")))]
    return _figure(title, data, y_title="ms", x_title=f"time ({zone})")


def time_to_token(series: Mapping[tuple[str, str, str], Sequence[tuple[datetime, MetricAggregate]]],
                  zone: tzinfo) -> Figure:
    title = "Time to first token and to last byte (ms, mean)"
    data = []
    for metric, name, colour in ((FIRST_TOKEN_METRIC, "first token", "#31a354"),
                                 (LAST_TOKEN_METRIC, "last byte", "#756bb1")):
        points = series.get((metric, "", ""), [])
        if points:
            data.append({"type": "scatter", "mode": "lines", "x": _local((t for t, _ in points), zone),
                         "y": [a.average for _, a in points], "name": name, "line": {"color": colour, "width": 2}})
    if not data:
        return empty(title, "No time-to-token metrics in this range for these filters.")
    return _figure(title, data, y_title="ms", x_title=f"time ({zone})")


def _top(rows: Sequence[DeploymentRow], value: Callable[[DeploymentRow], float]) -> list[DeploymentRow]:
    ranked = sorted((r for r in rows if value(r)), key=lambda r: (-value(r), r.account, r.deployment))
    return list(reversed(ranked[:TOP]))  # horizontal bars draw bottom-up: the largest on top


def _label(row: DeploymentRow) -> str:
    return plain(f"{row.deployment} · {row.account.lower()}")


def _bars(title: str, labels: list[str], values: list[float], colours: str | list[str], hover: str, x_title: str,
          customdata: list[Any] | None = None, **layout: Any) -> Figure:
    """Horizontal bars, one per deployment (named on the axis, so the colour says what is measured, not who);
    taller when there are many."""
    bar = {"type": "bar", "orientation": "h", "y": labels, "x": values, "customdata": customdata,
           "marker": {"color": colours}, "hovertemplate": hover}
    return _figure(title, [bar], x_title=x_title, height=max(320, 120 + 24 * len(labels)), showlegend=False,
                   **layout)


def throttling_by_deployment(rows: Sequence[DeploymentRow]) -> Figure:
    title = "429 (throttled) requests per deployment"
    top = _top(rows, lambda r: r.requests.requests_429)
    if not top:
        return empty(title, "No 429s in this range for these filters.")
    return _bars(title, [_label(r) for r in top], [r.requests.requests_429 for r in top], STATUS_COLOURS["429"],
                 "%{y}<br>%{x:,} throttled (%{customdata:.1f}% of requests)<extra></extra>", "429 responses",
                 customdata=[100.0 * (rate(r.requests.requests_429, r.requests.requests) or 0.0) for r in top])


def _blocks(row: DeploymentRow) -> float:
    return row.metrics.get(BLOCKED_METRIC, MetricAggregate()).total


def blocks_by_deployment(rows: Sequence[DeploymentRow]) -> Figure:
    title = "Content-filter blocks per deployment"
    top = _top(rows, _blocks)
    if not top:
        return empty(title, "No content-filter blocks in this range for these filters.")
    return _bars(title, [_label(r) for r in top], [_blocks(r) for r in top], BLOCKED_COLOUR,
                 "%{y}<br>%{x:,.0f} blocked (RAIRejectedRequests)<extra></extra>", "blocked requests")


def ptu_utilisation(series: Mapping[tuple[str, str, str], Sequence[tuple[datetime, MetricAggregate]]],
                    zone: tzinfo) -> Figure:
    title = "PTU utilisation (%, highest minute of each step)"
    data = [{"type": "scatter", "mode": "lines", "x": _local((t for t, _ in points), zone),
             "y": [a.maximum for _, a in points], "name": plain(f"{deployment} · {account.lower()}"),
             "line": {"color": colour_of(deployment), "width": 2}}
            for (metric, account, deployment), points in sorted(series.items())
            if metric == PTU_UTILISATION_METRIC and points]
    if not data:
        return empty(title, "No provisioned (PTU) deployment in this range for these filters.")
    figure = _figure(title, data, y_title="% of provisioned throughput", x_title=f"time ({zone})",
                     shapes=[_line("y", 100)], showlegend=True)
    figure["layout"]["yaxis"]["range"] = [0, 105]
    return figure


def _load_colour(percent: float) -> str:
    """Green under 70 % of capacity, amber to 90 %, red above."""
    return "#59a14f" if percent < 70 else "#f2b134" if percent < 90 else "#a50f15"


def _line(axis: str, at: float) -> dict[str, Any]:
    """A dotted red line across the plot at 100 %."""
    other = "x" if axis == "y" else "y"
    return {"type": "line", f"{axis}ref": axis, f"{other}ref": "paper", f"{axis}0": at, f"{axis}1": at,
            f"{other}0": 0, f"{other}1": 1, "line": {"dash": "dot", "color": "#a50f15", "width": 1}}


def capacity_used(rows: Sequence[DeploymentRow], inventory: Mapping[tuple[str, str], DeploymentInfo | None],
                  bucket_minutes: float) -> Figure:
    """Share of capacity used at the peak: TPM against the quota for standard deployments, the utilisation
    metric's maximum for provisioned ones."""
    title = "Capacity used at the peak (standard: tokens/min vs TPM quota; PTU: utilisation)"
    bars: list[tuple[float, str, str]] = []  # (percent, label, hover)
    unknown = 0
    for row in rows:
        info = inventory.get((row.account, row.deployment))
        if is_provisioned(info, row):
            peak = row.metrics.get(PTU_UTILISATION_METRIC, MetricAggregate()).maximum
            if peak is not None:
                bars.append((peak, _label(row), f"PTU utilisation, highest minute: {peak:.0f}%"))
        elif (room := headroom(info, peak_tpm(row, bucket_minutes))) is not None:
            bars.append((100.0 * room.used, _label(row),
                         f"{room.peak_tpm:,.0f} of {room.capacity_tpm:,.0f} TPM; headroom {room.headroom_tpm:,.0f}"))
        else:
            unknown += 1
    if not bars:
        return empty(title, "Capacity unknown for these deployments (it comes from the deployment inventory).")
    bars = sorted(bars)[-TOP:]
    notes = [{"text": f"{unknown} deployment(s) not shown: TPM quota unknown (the deployment inventory gives it)",
              "showarrow": False, "x": 1, "y": -0.22, "xref": "paper", "yref": "paper", "xanchor": "right",
              "font": {"size": 11, "color": "#616e7c"}}] if unknown else []
    figure = _bars(title, [b[1] for b in bars], [b[0] for b in bars], [_load_colour(b[0]) for b in bars],
                   "%{y}<br>%{customdata}<extra></extra>", "% of capacity at the busiest bucket",
                   customdata=[b[2] for b in bars], shapes=[_line("x", 100)], annotations=notes)
    figure["layout"]["margin"]["b"] = 64
    return figure


# -- the table ---------------------------------------------------------------------------------------------------

TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (id, header, type)
    ("account", "Account", "text"), ("deployment", "Deployment", "text"), ("model", "Model", "text"),
    ("requests", "Requests", "numeric"), ("errors_4xx", "4xx (not 429)", "numeric"), ("throttled", "429", "numeric"),
    ("throttled_pct", "429 %", "numeric"), ("errors_5xx", "5xx", "numeric"), ("error_pct", "Error %", "numeric"),
    ("blocked", "Content-filter blocks", "numeric"), ("p50_ms", "p50 ms", "numeric"), ("p95_ms", "p95 ms", "numeric"),
    ("p99_ms", "p99 ms", "numeric"), ("first_token_ms", "First token ms (mean)", "numeric"),
    ("last_byte_ms", "Last byte ms (mean)", "numeric"), ("peak_tpm", "Peak tokens/min", "numeric"),
    ("capacity", "Capacity", "text"), ("capacity_used_pct", "Capacity used at peak %", "numeric"),
)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def table_rows(
    rows: Sequence[DeploymentRow], models: Mapping[tuple[str, str], Sequence[str]],
    inventory: Mapping[tuple[str, str], DeploymentInfo | None], bucket_minutes: float,
) -> list[dict[str, Any]]:
    """One record per deployment, keyed by `TABLE_COLUMNS` ids, the busiest first."""
    records = []
    for row in sorted(rows, key=lambda r: (-r.requests.requests, r.account, r.deployment)):
        c, key = row.requests, (row.account, row.deployment)
        info = inventory.get(key)
        p50, p95, p99 = percentiles(row.histogram)
        tpm = peak_tpm(row, bucket_minutes)
        used: float | None = None
        capacity = "unknown"
        if is_provisioned(info, row):
            used = row.metrics.get(PTU_UTILISATION_METRIC, MetricAggregate()).maximum
            capacity = f"{info.capacity} PTU" if info is not None and info.capacity else "PTU"
        elif (room := headroom(info, tpm)) is not None:
            used, capacity = 100.0 * room.used, f"{room.capacity_tpm:,.0f} TPM"
        rates = error_rates(c)
        records.append({
            "account": row.account, "deployment": row.deployment,
            "model": info.model if info is not None else ", ".join(models.get(key, ())),
            "requests": c.requests, "errors_4xx": c.requests_4xx - c.requests_429, "throttled": c.requests_429,
            "throttled_pct": _round(100.0 * rates["429"] if rates["429"] is not None else None, 2),
            "errors_5xx": c.requests_5xx,
            "error_pct": _round(100.0 * rates["all errors"] if rates["all errors"] is not None else None, 2),
            "blocked": round(row.metrics.get(BLOCKED_METRIC, MetricAggregate()).total),
            "p50_ms": _round(p50, 0), "p95_ms": _round(p95, 0), "p99_ms": _round(p99, 0),
            "first_token_ms": _round(row.metrics.get(FIRST_TOKEN_METRIC, MetricAggregate()).average, 0),
            "last_byte_ms": _round(row.metrics.get(LAST_TOKEN_METRIC, MetricAggregate()).average, 0),
            "peak_tpm": round(tpm) if TOKENS_METRIC in row.metrics else None,
            "capacity": capacity, "capacity_used_pct": _round(used),
        })
    return records


def totals(rows: Sequence[DeploymentRow]) -> tuple[RequestCounts, dict[int, int], dict[str, MetricAggregate]]:
    """Request counts, merged histogram and metric sums over every deployment (the KPI cards)."""
    counts = [r.requests for r in rows]
    summed = RequestCounts(*(sum(getattr(c, f) for c in counts) for f in RequestCounts.__dataclass_fields__))
    metrics: dict[str, MetricAggregate] = {}
    for row in rows:
        for name, a in row.metrics.items():
            b = metrics.get(name, MetricAggregate())
            metrics[name] = MetricAggregate(a.total + b.total, a.count + b.count, _extreme(min, a.minimum, b.minimum),
                                            _extreme(max, a.maximum, b.maximum))
    return summed, merge(*(r.histogram for r in rows)), metrics


def _extreme(pick: Callable[[float, float], float], a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else pick(a, b)
