"""Pure: the cost page's arithmetic, figures and table rows from cost rows (`collector.store.reads.cost_rows`), no I/O.

Money arrives as exact micro-USD integers and becomes float USD only when drawn or put in a table. Every figure shows
the attribution method of what it draws: bars carry the method as their pattern (solid direct, dots owner, slashes
estimated, crosses unallocated, back-slashes idle) with a legend of methods under the plot, and lines name it in
their hover. Idle provisioned capacity and unallocated usage are their own series, in fixed hatched greys. Days are
UTC days: the daily cost table is kept per UTC day.

Every figure also says its basis: `billed` (the imported bill allocated to teams) or `estimate` (telemetry priced by
the book). The daily cost chart draws estimated days faded, with a marker over each day's bar; tables carry a basis
column. Names from data (teams, deployments, budgets) reach plotly through `plain`, so they show as text: plotly
reads a subset of HTML, and `%{...}` in hover templates, in the strings it draws.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collector.cost.attribution import DeploymentInfo
from collector.cost.budgets import BudgetStatus
from dashboards.colours import IDLE, METHOD_PATTERNS, OTHER_COLOUR, UNALLOCATED, colour_of
from dashboards.figures import Figure, _figure, empty, plain

MICRO = 1_000_000
METHODS = ("direct", "owner", "estimated", "unallocated", "idle")
BILLED, ESTIMATE = "billed", "estimate"
BASES = (BILLED, ESTIMATE)
#: How a day's cost bars are drawn by basis: billed solid, estimated faded, a day of both in between.
BASIS_OPACITY = {BILLED: 1.0, ESTIMATE: 0.45, "partly billed": 0.75}
_BASIS_SYMBOL = {BILLED: "circle", ESTIMATE: "circle-open", "partly billed": "circle-open-dot"}
OWN_SERIES = (IDLE, UNALLOCATED)
#: What the page breaks cost down by (URL hash `#by=...`), and how each is named on the page.
DIMENSIONS: dict[str, str] = {"team": "team", "deployment": "deployment", "model": "model",
                              "deployment_type": "deployment type"}
#: Entries a chart names before folding the rest into "other".
TOP_SERIES = 10
TOP_BARS = 15
TOP_MOVERS = 10
NO_COST = ("No attributed cost in these days for these filters. The collector fills the daily cost table after "
           "each pass; check the freshness banner.")
_PATTERN = {"fillmode": "overlay", "fgcolor": "rgba(31, 41, 51, 0.45)", "size": 7, "solidity": 0.35}
#: The legend of methods: at the figure's foot (container coordinates), under the x axis's title.
_METHOD_LEGEND = {"orientation": "h", "x": 0, "xanchor": "left", "xref": "container", "y": 0, "yanchor": "bottom",
                  "yref": "container", "title": {"text": "Attribution method:"}, "font": {"size": 11},
                  "traceorder": "normal"}


# -- cost lines and their sums -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One cost row over the range: account, deployment, team, method and price, with its sums."""

    account: str
    deployment: str
    team: str
    method: str
    price_id: str
    requests: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost: int  # micro-USD
    unpriced: bool
    basis: str = ESTIMATE

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def lines(rows: Iterable[Mapping[str, Any]]) -> list[Line]:
    """Lines from `cost_rows(..., by=COST_KEYS)` rows."""
    return [Line(r["account"], r["deployment"], r["team"], r["method"], r["price_id"], r["requests"],
                 r["prompt_tokens"], r["cached_tokens"], r["completion_tokens"], r["cost_micro_usd"],
                 bool(r["unpriced"]), r.get("basis") or ESTIMATE) for r in rows]


@dataclass
class Sums:
    """Lines added up: measures, cost per method and per price id, and the deployments they cover."""

    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost: int = 0
    unpriced: bool = False
    methods: dict[str, int] = field(default_factory=dict)
    prices: dict[str, int] = field(default_factory=dict)
    bases: dict[str, int] = field(default_factory=dict)
    deployments: set[tuple[str, str]] = field(default_factory=set)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, line: Line) -> None:
        self.requests += line.requests
        self.prompt_tokens += line.prompt_tokens
        self.cached_tokens += line.cached_tokens
        self.completion_tokens += line.completion_tokens
        self.cost += line.cost
        self.unpriced = self.unpriced or line.unpriced
        self.methods[line.method] = self.methods.get(line.method, 0) + line.cost
        self.prices[line.price_id] = self.prices.get(line.price_id, 0) + line.cost
        self.bases[line.basis] = self.bases.get(line.basis, 0) + line.cost
        self.deployments.add((line.account, line.deployment))


Inventory = Mapping[tuple[str, str], DeploymentInfo | None]


def deployment_label(account: str, deployment: str) -> str:
    return f"{deployment} · {account.lower()}"


def key_of(dimension: str, inventory: Inventory, *, own_series: bool = True) -> Callable[[Line], str]:
    """What a line counts under for `dimension`; with `own_series`, idle and unallocated lines count under their
    method whatever the dimension."""
    def key(line: Line) -> str:
        if own_series and line.method in OWN_SERIES:
            return line.method
        if dimension == "team":
            return line.team
        if dimension == "deployment":
            return deployment_label(line.account, line.deployment)
        info = inventory.get((line.account, line.deployment))
        if dimension == "model":
            return info.model if info is not None else "model not in the inventory"
        return info.deployment_type if info is not None else "type not in the inventory"
    return key


def sum_by(items: Iterable[Line], key: Callable[[Line], str]) -> dict[str, Sums]:
    sums: dict[str, Sums] = {}
    for line in items:
        sums.setdefault(key(line), Sums()).add(line)
    return sums


def total(items: Iterable[Line]) -> Sums:
    sums = Sums()
    for line in items:
        sums.add(line)
    return sums


def ranked(groups: Mapping[str, Sums], top: int) -> list[str]:
    """The `top` keys by cost (then tokens, then name), idle and unallocated never among them."""
    named = [k for k in groups if k not in OWN_SERIES]
    return sorted(named, key=lambda k: (-groups[k].cost, -groups[k].tokens, k))[:top]


def usd(micro: int) -> float:
    """Micro-USD as float USD (exact to the micro-dollar when printed: at most 16 significant digits)."""
    return micro / MICRO


def money(micro: float) -> str:
    value = micro / MICRO
    return f"${value:,.2f}" if abs(value) >= 1 or value == 0 else f"${value:,.4f}"


def per_1k(cost: int, tokens: int) -> float | None:
    """USD per 1,000 tokens."""
    return cost / MICRO * 1000 / tokens if tokens else None


def per_request(cost: int, requests: int) -> float | None:
    return cost / MICRO / requests if requests else None


def method_shares(methods: Mapping[str, int]) -> str:
    """"direct 90% · owner 10%": each method's share of the cost, in `METHODS` order."""
    whole = sum(methods.values())
    if not whole:
        return ", ".join(m for m in METHODS if m in methods) or "—"
    return " · ".join(f"{m} {100 * methods[m] / whole:.0f}%" for m in METHODS if methods.get(m))


def basis_shares(bases: Mapping[str, int]) -> str:
    """"billed", "estimate", or "billed 80% · estimate 20%": what the cost rests on, by share of the cost."""
    present = [b for b in BASES if b in bases]
    whole = sum(bases.values())
    if len(present) < 2 or not whole:
        return ", ".join(present) or "—"
    return " · ".join(f"{b} {100 * bases[b] / whole:.0f}%" for b in present)


def day_status(bases: Mapping[str, int]) -> str:
    """A day's basis from its cost rows' (basis -> cost): billed, estimate, or partly billed."""
    present = {b for b in BASES if b in bases}
    return present.pop() if len(present) == 1 else "partly billed" if present else ""


def day_runs(days: Sequence[datetime], limit: int = 4) -> str:
    """UTC days as runs of consecutive days: "2026-03-02..2026-03-03, 2026-03-05"; past `limit` runs, how many
    more."""
    runs: list[list[datetime]] = []
    for day in sorted(days):
        if runs and (day - runs[-1][1]).days == 1:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    text = [f"{a:%Y-%m-%d}" if a == b else f"{a:%Y-%m-%d}..{b:%Y-%m-%d}" for a, b in runs[:limit]]
    if len(runs) > limit:
        text.append(f"and {len(runs) - limit} more run(s) of days")
    return ", ".join(text)


def basis_line(per_day: Iterable[Mapping[str, Any]]) -> str:
    """What the range's cost rests on, from `cost_rows(..., by=("basis",), step=DAY)` rows: how much is billed
    (and on which days) and how much is estimated."""
    cost = {BILLED: 0, ESTIMATE: 0}
    days: dict[str, list[datetime]] = {BILLED: [], ESTIMATE: []}
    for row in per_day:
        basis = row["basis"] if row["basis"] in cost else ESTIMATE
        cost[basis] += row["cost_micro_usd"]
        days[basis].append(row["step"])
    if not days[BILLED]:
        return (f"Basis: all {money(cost[ESTIMATE])} estimated from telemetry and the price book: no imported bill "
                "covers these days (import the Cost Management export with aoai-obs bill import SOURCE).")
    billed = f"{money(cost[BILLED])} billed (from the Cost Management export, days {day_runs(days[BILLED])})"
    if not days[ESTIMATE]:
        return f"Basis: all {billed}."
    return (f"Basis: {billed}, {money(cost[ESTIMATE])} estimated from telemetry and the price book (days "
            f"{day_runs(days[ESTIMATE])}, where no bill covers an account's day yet).")


def unpriced_deployments(items: Iterable[Line]) -> list[tuple[str, str]]:
    """(account, deployment) of every line priced at 0 for want of a price."""
    return sorted({(x.account, x.deployment) for x in items if x.unpriced})


def provenance_text(prices: Mapping[str, int], provenance: Mapping[str, str], limit: int = 2) -> str:
    """The price ids behind a figure (the costliest first) with where each figure came from, for hover text."""
    ids = sorted(prices, key=lambda p: (-prices[p], p))
    parts = [f"{p or 'no price'}: {provenance.get(p, 'no price in the price book (priced at 0)' if not p else '?')}"
             for p in ids[:limit]]
    if len(ids) > limit:
        parts.append(f"and {len(ids) - limit} more price(s)")
    return "<br>".join("<br>  ".join(plain(line) for line in textwrap.wrap(part, 100)) for part in parts)


# -- KPI cards ---------------------------------------------------------------------------------------------------


def kpis(items: Sequence[Line], days: int) -> list[tuple[str, str, str]]:
    """(label, value, detail) of the page's cards."""
    sums = total(items)
    idle, unallocated = sums.methods.get(IDLE, 0), sums.methods.get(UNALLOCATED, 0)
    used = sums.cost - idle  # unit cost is of the capacity used: idle has no tokens, and is its own card
    unit, request = per_1k(used, sums.tokens), per_request(used, sums.requests)
    main = max(sums.methods, key=lambda m: sums.methods[m], default="")
    whole = sums.cost or 1
    shares = basis_shares(sums.bases)
    basis = shares if shares in BASES else "billed + estimate" if BILLED in sums.bases else ESTIMATE
    return [
        (f"Cost ({basis})", money(sums.cost), f"{days} UTC day(s) · {len(sums.deployments)} deployment(s)"),
        ("Tokens", f"{sums.tokens:,}", f"prompt {sums.prompt_tokens:,} (cached {sums.cached_tokens:,}) · "
                                       f"completion {sums.completion_tokens:,}"),
        ("Unit cost (idle excluded)", "—" if unit is None else f"{money(unit * MICRO)} / 1K tokens",
         "—" if request is None else f"{money(request * MICRO)} per request · {sums.requests:,} requests"),
        ("Idle PTU capacity", money(idle), f"{100 * idle / whole:.1f}% of cost: provisioned capacity no one used"),
        ("Unallocated", money(unallocated), f"{100 * unallocated / whole:.1f}% of cost: usage no rule gives a team"),
        ("Attribution", f"{100 * sums.methods[main] / whole:.0f}% {main}" if main else "—",
         method_shares(sums.methods)),
    ]


# -- figures -----------------------------------------------------------------------------------------------------


def _pattern(method: str) -> dict[str, Any]:
    return {**_PATTERN, "shape": METHOD_PATTERNS.get(method, "")}


def _method_legend(methods: Iterable[str], orientation: str = "v") -> list[dict[str, Any]]:
    """Legend-only entries (no data) showing each method's pattern, in the second legend under the plot."""
    present = [m for m in METHODS if m in set(methods)]
    return [{"type": "bar", "x": [None], "y": [None], "orientation": orientation, "name": m, "legend": "legend2",
             "showlegend": True, "hoverinfo": "skip",
             "marker": {"color": "#ffffff", "line": {"color": "#616e7c", "width": 1},
                        "pattern": {**_pattern(m), "fgcolor": "#3e4c59"}}} for m in present]


def _with_method_legend(figure: Figure, methods: Iterable[str], orientation: str = "v") -> Figure:
    figure["data"] += _method_legend(methods, orientation)
    layout = figure["layout"]
    layout["legend2"] = _METHOD_LEGEND
    layout["margin"] = {**layout["margin"], "b": 92}
    return figure


def daily(points: Sequence[Mapping[str, Any]], days: Sequence[datetime], measure: str, dimension: str,
          colour: Callable[[str], str], bases: Mapping[datetime, Mapping[str, int]] | None = None) -> Figure:
    """Stacked bars per UTC day of cost (USD) or tokens per label (`cost_rows(..., step=DAY, labels=...,
    by=("method",))` rows); a trace per label and method, the method as pattern; idle and unallocated at the
    bottom, the largest labels next, "other ..." on top. With `bases` (day -> basis -> cost), each day's bars say
    its basis: faded when estimated, a marker over the bar (filled: billed, open: estimate, dotted: partly
    billed), and the basis in the hover."""
    what = "Cost (USD)" if measure == "cost" else "Tokens (prompt + completion)"
    title = f"{what} per UTC day by {DIMENSIONS[dimension]}"
    scale = MICRO if measure == "cost" else 1
    cells: dict[tuple[str, str], dict[datetime, int]] = {}
    totals: dict[str, int] = {}
    for row in points:
        amount = int(row["cost_micro_usd"] if measure == "cost" else row["prompt_tokens"] + row["completion_tokens"])
        if amount:
            cell = cells.setdefault((row["label"], row["method"]), {})
            cell[row["step"]] = cell.get(row["step"], 0) + amount
            totals[row["label"]] = totals.get(row["label"], 0) + amount
    if not totals:
        return empty(title, NO_COST if measure == "cost" else "No tokens in these days for these filters.")
    x = [d.strftime("%Y-%m-%d") for d in days]
    order = [*(k for k in OWN_SERIES if k in totals),
             *sorted((k for k in totals if k not in OWN_SERIES and not k.startswith("other ")),
                     key=lambda k: (-totals[k], k)),
             *sorted(k for k in totals if k.startswith("other "))]
    money_hover = "$%{y:,.2f}" if measure == "cost" else "%{y:,.0f} tokens"
    status = [day_status(bases.get(d, {})) for d in days] if bases is not None else None
    data: list[dict[str, Any]] = []
    for label in order:
        first = True
        name = plain(label)
        for method in METHODS:
            found = cells.get((label, method))
            if not found:
                continue
            trace: dict[str, Any] = {
                "type": "bar", "x": x, "y": [found[d] / scale if d in found else None for d in days],
                "name": name, "legendgroup": name, "showlegend": first,
                "marker": {"color": colour(label), "pattern": _pattern(method)},
                "hovertemplate": f"{name} · {method}: {money_hover}<extra></extra>"}
            if status is not None:
                trace["marker"] = {**trace["marker"], "opacity": [BASIS_OPACITY.get(b, 1.0) for b in status]}
                trace["customdata"] = status
                trace["hovertemplate"] = f"{name} · {method}: {money_hover} (%{{customdata}})<extra></extra>"
            data.append(trace)
            first = False
    if status is not None and bases is not None:
        data.append(_basis_markers(days, x, status, bases, cells, scale))
    figure = _figure(title, data, y_title="USD" if measure == "cost" else "tokens", x_title="UTC day",
                     barmode="stack", bargap=0.15, hovermode="x unified", height=380,
                     legend={"orientation": "v", "x": 1.01, "xanchor": "left", "y": 1, "yanchor": "top",
                             "traceorder": "reversed", "font": {"size": 11}})
    figure["layout"]["xaxis"]["type"] = "category" if len(days) <= 2 else "date"
    if status is not None:
        figure["layout"]["annotations"] = [{
            "text": "● billed (Cost Management export)   ○ estimate, faded (telemetry × price book)",
            "x": 1, "xref": "paper", "xanchor": "right", "y": 1.02, "yref": "paper", "yanchor": "bottom",
            "showarrow": False, "font": {"size": 11, "color": "#616e7c"}}]
    return _with_method_legend(figure, {m for _, m in cells})


def _basis_markers(days: Sequence[datetime], x: list[str], status: list[str],
                   bases: Mapping[datetime, Mapping[str, int]], cells: Mapping[tuple[str, str], Mapping[datetime, int]],
                   scale: int) -> dict[str, Any]:
    """A marker over each day's stack saying its basis (and, partly billed, how much of each)."""
    tops = [sum(c.get(d, 0) for c in cells.values()) / scale for d in days]
    pad = 0.04 * max(tops, default=0)  # over the bar, not on its edge
    text = []
    for d, b in zip(days, status, strict=True):
        found = bases.get(d, {})
        text.append("billed (Cost Management export)" if b == BILLED else
                    "estimate (telemetry × price book)" if b == ESTIMATE else
                    f"partly billed: {money(found.get(BILLED, 0))} billed, {money(found.get(ESTIMATE, 0))} "
                    "estimate" if b else "no cost")
    return {"type": "scatter", "mode": "markers", "x": x, "y": [t + pad if b else None for t, b in zip(tops, status,
                                                                                                     strict=True)],
            "name": "basis", "showlegend": False, "customdata": text, "cliponaxis": False,
            "marker": {"symbol": [_BASIS_SYMBOL.get(b, "circle") for b in status], "size": 9, "color": "#1f2933",
                       "line": {"width": 1.5, "color": "#1f2933"}},
            "hovertemplate": "basis: %{customdata}<extra></extra>"}


def breakdown(groups: Mapping[str, Sums], dimension: str, colour: Callable[[str], str],
              provenance: Mapping[str, str]) -> Figure:
    """Horizontal bars of cost per label over the range (largest on top, the rest folded into "other"), stacked by
    method; hover gives each label's prices and where they came from."""
    title = f"Cost by {DIMENSIONS[dimension]} over the range (USD)"
    if not any(g.cost for g in groups.values()):
        return empty(title, NO_COST)
    keys = [*ranked(groups, TOP_BARS), *(k for k in OWN_SERIES if k in groups and groups[k].cost)]
    shown = {k: groups[k] for k in keys}
    rest = [k for k in groups if k not in shown]
    if rest:
        other = Sums()
        for k in rest:
            for method, cost in groups[k].methods.items():
                other.methods[method] = other.methods.get(method, 0) + cost
            for price, cost in groups[k].prices.items():
                other.prices[price] = other.prices.get(price, 0) + cost
            for basis, cost in groups[k].bases.items():
                other.bases[basis] = other.bases.get(basis, 0) + cost
            other.cost += groups[k].cost
        shown[f"other ({len(rest)})"] = other
    order = sorted(shown, key=lambda k: (shown[k].cost, k))  # bottom-up: the largest on top
    hover = [f"total {money(shown[k].cost)} · {method_shares(shown[k].methods)} · {basis_shares(shown[k].bases)}"
             f"<br>{provenance_text(shown[k].prices, provenance)}" for k in order]
    data = [{"type": "bar", "orientation": "h", "y": [plain(k) for k in order], "name": method, "showlegend": False,
             "x": [shown[k].methods.get(method, 0) / MICRO or None for k in order],
             "customdata": hover,
             "marker": {"color": [OTHER_COLOUR if k.startswith("other (") else colour(k) for k in order],
                        "pattern": _pattern(method)},
             "hovertemplate": f"<b>%{{y}}</b> · {method}: $%{{x:,.2f}}<br>%{{customdata}}<extra></extra>"}
            for method in METHODS if any(shown[k].methods.get(method) for k in order)]
    figure = _figure(title, data, x_title="USD", barmode="stack", height=max(340, 150 + 24 * len(order)))
    return _with_method_legend(figure, {m for g in shown.values() for m, c in g.methods.items() if c}, "h")


def unit_costs(groups: Mapping[str, Sums], title: str, colour: Callable[[str], str]) -> Figure:
    """USD per 1K tokens (left) and per request (right) per label, the largest spenders first; each bar is the sum
    of its methods' shares. Give groups without idle cost: it has no tokens, and `kpis` shows it apart."""
    keys = [k for k in sorted(groups, key=lambda k: (-groups[k].cost, k)) if groups[k].tokens][:TOP_BARS]
    if not keys:
        return empty(title, "No tokens in these days for these filters: nothing to divide the cost by.")
    order = list(reversed(keys))
    data = []
    methods = [m for m in METHODS if any(groups[k].methods.get(m) for k in order)]
    for method in methods:
        common = {"type": "bar", "orientation": "h", "y": [plain(k) for k in order], "name": method,
                  "showlegend": False,
                  "marker": {"color": [colour(k) for k in order], "pattern": _pattern(method)}}
        data.append({**common, "x": [per_1k(groups[k].methods.get(method, 0), groups[k].tokens) or None
                                     for k in order],
                     "hovertemplate": f"<b>%{{y}}</b> · {method}: $%{{x:,.4f}} per 1K tokens<extra></extra>"})
        data.append({**common, "xaxis": "x2", "x": [per_request(groups[k].methods.get(method, 0),
                                                                groups[k].requests) or None for k in order],
                     "hovertemplate": f"<b>%{{y}}</b> · {method}: $%{{x:,.4f}} per request<extra></extra>"})
    figure = _figure(title, data, barmode="stack", height=max(340, 150 + 24 * len(order)))
    layout = figure["layout"]
    layout["xaxis"].update(domain=[0, 0.47], title={"text": "USD per 1K tokens"})
    layout["xaxis2"] = {**layout["xaxis"], "domain": [0.53, 1], "title": {"text": "USD per request"},
                        "anchor": "y"}
    return _with_method_legend(figure, methods, "h")


# -- top movers --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mover:
    name: str
    current: int  # micro-USD
    previous: int
    change_by_method: dict[str, int]
    bases: tuple[Mapping[str, int], Mapping[str, int]] = ({}, {})  # cost per basis: this period, the previous

    @property
    def change(self) -> int:
        return self.current - self.previous

    @property
    def percent(self) -> float | None:
        """Change in % of the previous period; None when it was zero ("new")."""
        return 100 * self.change / self.previous if self.previous else None

    @property
    def label(self) -> str:
        sign = "+" if self.change >= 0 else "−"
        text = f"{sign}{money(abs(self.change))}"
        return f"{text} (new)" if self.percent is None else f"{text} ({sign}{abs(self.percent):.0f}%)"


def movers(current: Mapping[str, Mapping[str, int]], previous: Mapping[str, Mapping[str, int]],
           top: int = TOP_MOVERS, bases: tuple[Mapping[str, Mapping[str, int]], Mapping[str, Mapping[str, int]]]
           = ({}, {})) -> list[Mover]:
    """The `top` largest changes (either way) from the previous period, cost per method in (and per basis, of each
    period, from `bases`); unchanged left out."""
    found = []
    for name in set(current) | set(previous):
        now, before = current.get(name, {}), previous.get(name, {})
        change = {m: now.get(m, 0) - before.get(m, 0) for m in set(now) | set(before)}
        mover = Mover(name, sum(now.values()), sum(before.values()), {m: c for m, c in change.items() if c},
                      (bases[0].get(name, {}), bases[1].get(name, {})))
        if mover.change:
            found.append(mover)
    return sorted(found, key=lambda m: (-abs(m.change), m.name))[:top]


def movers_figure(found: Sequence[Mover], title: str, colour: Callable[[str], str]) -> Figure:
    """Horizontal bars of the change per name (largest on top), split by method; the label says by how much and
    by what percent, or "new"."""
    if not found:
        return empty(title, "No change from the previous period for these filters.")
    order = list(reversed(found))
    names = [plain(m.name) for m in order]
    methods = [x for x in METHODS if any(m.change_by_method.get(x) for m in order)]
    data: list[dict[str, Any]] = [
        {"type": "bar", "orientation": "h", "y": names, "name": method, "showlegend": False,
         "x": [m.change_by_method.get(method, 0) / MICRO or None for m in order],
         "marker": {"color": [colour(m.name) for m in order], "pattern": _pattern(method)},
         "hovertemplate": f"<b>%{{y}}</b> · {method}: %{{x:+$,.2f}}<extra></extra>"} for method in methods]
    data.append({"type": "scatter", "mode": "markers+text", "y": names, "x": [m.change / MICRO for m in order],
                 "text": [m.label for m in order], "showlegend": False, "name": "change",
                 "textposition": ["middle right" if m.change >= 0 else "middle left" for m in order],
                 "marker": {"symbol": "line-ns", "size": 14, "line": {"width": 2, "color": "#1f2933"}},
                 "customdata": [[money(m.previous), money(m.current)] for m in order],
                 "hovertemplate": "<b>%{y}</b>: %{text}<br>previous %{customdata[0]} → now %{customdata[1]}"
                                  "<extra></extra>"})
    widest = max(abs(m.change) for m in order) / MICRO
    lows = [m.change / MICRO for m in order if m.change < 0]
    figure = _figure(title, data, x_title="change in USD", barmode="relative",
                     height=max(300, 140 + 26 * len(order)))
    figure["layout"]["xaxis"]["range"] = [min([0.0, *lows]) - 0.45 * widest if lows else -0.05 * widest,
                                          max(0.0, *(m.change / MICRO for m in order)) + 0.45 * widest]
    return _with_method_legend(figure, methods, "h")


# -- budgets -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Burn:
    """One budget's month so far: cumulative spend at each day's end (the last point at `as_of`), per method."""

    budget_id: str
    name: str
    colour: str
    monthly_micro: int
    points: tuple[tuple[datetime, int, Mapping[str, int]], ...]
    forecast_micro: int | None
    thresholds: tuple[int, ...]


def budget_burn(burns: Sequence[Burn], month: str, start: datetime, end: datetime, empty_text: str) -> Figure:
    """Month-to-date spend as % of each budget (solid), the run-rate forecast to the month's end (dashed) and the
    thresholds (dotted); hover gives USD and the methods of the spend."""
    title = f"Budget burn, {month} (UTC months): spend as % of each monthly budget"
    if not burns:
        return empty(title, empty_text)
    data: list[dict[str, Any]] = []
    top = 100.0
    for burn in burns:
        x = [start.strftime("%Y-%m-%d %H:%M"), *(t.strftime("%Y-%m-%d %H:%M") for t, _, _ in burn.points)]
        y = [0.0, *(100 * spent / burn.monthly_micro for _, spent, _ in burn.points)]
        detail = ["", *(f"{money(spent)} of {money(burn.monthly_micro)}<br>{method_shares(methods)}"
                        for _, spent, methods in burn.points)]
        shares = method_shares(burn.points[-1][2]) if burn.points else "—"
        name = plain(burn.name)
        data.append({"type": "scatter", "mode": "lines+markers", "x": x, "y": y, "name": f"{name} ({shares})",
                     "legendgroup": burn.budget_id, "customdata": detail, "marker": {"size": 5},
                     "line": {"color": burn.colour, "width": 2},
                     "hovertemplate": f"<b>{name}</b> %{{x}}: %{{y:.1f}}%<br>%{{customdata}}<extra></extra>"})
        top = max(top, *y)
        if burn.forecast_micro is not None and burn.points:
            forecast = 100 * burn.forecast_micro / burn.monthly_micro
            data.append({"type": "scatter", "mode": "lines", "x": [x[-1], end.strftime("%Y-%m-%d %H:%M")],
                         "y": [y[-1], forecast], "name": f"{name} forecast", "legendgroup": burn.budget_id,
                         "showlegend": False, "line": {"color": burn.colour, "width": 2, "dash": "dash"},
                         "hovertemplate": f"<b>{name}</b> month-end forecast: {money(burn.forecast_micro)} "
                                          f"(%{{y:.0f}}%)<extra></extra>"})
            top = max(top, forecast)
    thresholds = sorted({t for b in burns for t in b.thresholds})
    shapes = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": t, "y1": t,
               "line": {"color": "#a50f15" if t >= 100 else "#b7791f", "width": 1, "dash": "dot"}}
              for t in thresholds]
    notes = [{"text": f"{t}%", "x": 1, "xref": "paper", "xanchor": "right", "y": t, "yref": "y",
              "yanchor": "bottom", "showarrow": False, "font": {"size": 10, "color": "#616e7c"}}
             for t in thresholds]
    figure = _figure(title, data, y_title="% of monthly budget", x_title="UTC", shapes=shapes,
                     annotations=notes, height=380, hovermode="closest",
                     legend={"orientation": "v", "x": 1.01, "xanchor": "left", "y": 1, "yanchor": "top"})
    figure["layout"]["xaxis"].update(type="date", range=[start.strftime("%Y-%m-%d"), end.strftime("%Y-%m-%d")])
    top = max(top, *(t for t in thresholds if t <= 200))  # every threshold up to twice the budget in view
    figure["layout"]["yaxis"]["range"] = [0, 1.08 * min(top, 10 * max([100, *thresholds]))]
    return figure


def colour_by(colours: Mapping[str, str], fallback: Callable[[str], str] = colour_of) -> Callable[[str], str]:
    """A label's colour: the mapping's (teams, idle, unallocated), else `fallback` by name."""
    return lambda label: colours.get(label) or fallback(label)


# -- tables ------------------------------------------------------------------------------------------------------
# Rows keyed by the columns' ids; USD as floats (exact to the micro-dollar in the CSV), unit costs as text with six
# decimals (the table would round a float to cents).

TEAM_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("team", "Team", "text"), ("cost_usd", "Cost USD", "numeric"), ("share_pct", "Share %", "numeric"),
    ("requests", "Requests", "numeric"), ("prompt_tokens", "Prompt tokens", "numeric"),
    ("cached_tokens", "Cached tokens", "numeric"), ("completion_tokens", "Completion tokens", "numeric"),
    ("usd_per_1k", "USD per 1K tokens", "numeric"), ("usd_per_request", "USD per request", "numeric"),
    ("methods", "Attribution (share of cost)", "text"), ("basis", "Basis (share of cost)", "text"),
)
DEPLOYMENT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("account", "Account", "text"), ("deployment", "Deployment", "text"), ("model", "Model", "text"),
    ("deployment_type", "Type", "text"), ("cost_usd", "Cost USD", "numeric"), ("requests", "Requests", "numeric"),
    ("tokens", "Tokens", "numeric"), ("usd_per_1k", "USD per 1K tokens", "numeric"),
    ("usd_per_request", "USD per request", "numeric"), ("methods", "Attribution (share of cost)", "text"),
    ("price_ids", "Price ids", "text"), ("unpriced", "Unpriced", "text"), ("basis", "Basis (share of cost)", "text"),
)
PRICE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("price_id", "Price id", "text"), ("cost_usd", "Cost USD", "numeric"), ("tokens", "Tokens", "numeric"),
    ("deployments", "Deployments", "numeric"), ("basis", "Basis", "text"),
    ("provenance", "Where the figures come from", "text"),
)
MOVER_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("kind", "By", "text"), ("name", "Name", "text"), ("previous_usd", "Previous period USD", "numeric"),
    ("current_usd", "This period USD", "numeric"), ("change_usd", "Change USD", "numeric"),
    ("change_pct", "Change %", "numeric"), ("methods", "Change by method (USD)", "text"),
    ("basis", "Basis (this period; previous)", "text"),
)
BUDGET_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("budget", "Budget", "text"), ("monthly_usd", "Monthly USD", "numeric"), ("spent_usd", "Spent USD", "numeric"),
    ("used_pct", "Used %", "numeric"), ("forecast_usd", "Forecast USD", "numeric"),
    ("forecast_pct", "Forecast %", "numeric"), ("thresholds", "Thresholds %", "text"),
    ("passed", "Passed", "text"), ("methods", "Attribution (share of spend)", "text"),
    ("basis", "Basis (share of spend)", "text"), ("as_of", "As of (UTC)", "text"),
)


def _six(value: float | None) -> str | None:
    return None if value is None else f"{value:.6f}"


def team_rows(groups: Mapping[str, Sums]) -> list[dict[str, Any]]:
    """One row per team (idle and unallocated included), the costliest first."""
    whole = sum(g.cost for g in groups.values()) or 1
    return [{"team": team, "cost_usd": usd(g.cost), "share_pct": round(100 * g.cost / whole, 2),
             "requests": g.requests, "prompt_tokens": g.prompt_tokens, "cached_tokens": g.cached_tokens,
             "completion_tokens": g.completion_tokens, "usd_per_1k": _six(per_1k(g.cost, g.tokens)),
             "usd_per_request": _six(per_request(g.cost, g.requests)), "methods": method_shares(g.methods),
             "basis": basis_shares(g.bases)} for team, g in sorted(groups.items(), key=lambda kv: (-kv[1].cost, kv[0]))]


def deployment_rows(items: Iterable[Line], inventory: Inventory) -> list[dict[str, Any]]:
    """One row per deployment, the costliest first, with its price ids (`price_rows` says where each came from)."""
    groups: dict[tuple[str, str], Sums] = {}
    for line in items:
        groups.setdefault((line.account, line.deployment), Sums()).add(line)
    rows = []
    for (account, deployment), g in sorted(groups.items(), key=lambda kv: (-kv[1].cost, kv[0])):
        info = inventory.get((account, deployment))
        ids = sorted(g.prices, key=lambda p: (-g.prices[p], p))
        rows.append({
            "account": account, "deployment": deployment, "model": info.model if info else "",
            "deployment_type": info.deployment_type if info else "", "cost_usd": usd(g.cost),
            "requests": g.requests, "tokens": g.tokens, "usd_per_1k": _six(per_1k(g.cost, g.tokens)),
            "usd_per_request": _six(per_request(g.cost, g.requests)), "methods": method_shares(g.methods),
            "price_ids": "; ".join(p or "(none)" for p in ids),
            "unpriced": "yes: priced at 0" if g.unpriced else "", "basis": basis_shares(g.bases),
        })
    return rows


def price_rows(items: Iterable[Line], provenance: Mapping[str, str]) -> list[dict[str, Any]]:
    """One row per price id behind the range's cost, the costliest first, with where its figures came from."""
    groups = sum_by(items, lambda x: x.price_id)
    return [{"price_id": price or "(none)", "cost_usd": usd(g.cost), "tokens": g.tokens,
             "deployments": len(g.deployments), "basis": basis_shares(g.bases),
             "provenance": provenance.get(price, "no price in the price book: priced at 0" if not price else "?")}
            for price, g in sorted(groups.items(), key=lambda kv: (-kv[1].cost, kv[0]))]


def mover_rows(kind: str, found: Iterable[Mover]) -> list[dict[str, Any]]:
    return [{"kind": kind, "name": m.name, "previous_usd": usd(m.previous), "current_usd": usd(m.current),
             "change_usd": usd(m.change), "change_pct": "new" if m.percent is None else f"{m.percent:+.1f}",
             "methods": ", ".join(f"{x} {usd(m.change_by_method[x]):+,.2f}" for x in METHODS
                                  if x in m.change_by_method),
             "basis": f"{basis_shares(m.bases[0])}; {basis_shares(m.bases[1])}"} for m in found]


BUDGET_TITLE = "Budget burn: spend as % of each monthly budget"


def budget_row(status: BudgetStatus, methods: Mapping[str, int], bases: Mapping[str, int] | None = None
               ) -> dict[str, Any]:
    """A budget's status as a table row, with the methods and bases of its month-to-date spend."""
    b = status.budget
    return {"budget": b.id, "monthly_usd": float(b.monthly_usd), "spent_usd": float(status.spent),
            "used_pct": float(status.percent_used),
            "forecast_usd": None if status.forecast is None else float(status.forecast),
            "forecast_pct": None if status.forecast_percent is None else float(status.forecast_percent),
            "thresholds": ", ".join(str(t) for t in b.thresholds),
            "passed": ", ".join(f"{t}%" for t in status.crossed) or "none",
            "methods": method_shares(methods), "basis": basis_shares(bases or {}),
            "as_of": f"{status.as_of:%Y-%m-%d %H:%M}"}
