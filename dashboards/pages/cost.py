"""The FinOps cost page: attributed cost and tokens by team, deployment, model and deployment type per UTC day, unit
cost, idle and unallocated cost, top movers, budget burn, unpriced usage and the provenance of every price; layout
and callbacks (reads in collector.store.reads, drawing in dashboards.cost_figures).

It reads the daily cost table, so it works at day resolution: a range is widened to the whole UTC days it touches.
Each callback reads the table once, so each stays fast on a quarter of hundreds of deployments: `summary` (the
range's totals per deployment, team, method and price) draws most of the page and hands what it read to `series`
(one read per day and label) and `movers` (one read of the previous period) through a dcc.Store; `budgets` reads the
budgets' month. What the breakdown is by (team, deployment, model, deployment type) lives in the URL's hash
(`#by=model`), so a link reproduces it too; so does the month the reconciliation section shows (`#month=2026-03`,
dashboards/reconciliation.py). A change of month redraws only that section: the breakdown reaches the other
callbacks through a dcc.Store that changes only when the breakdown does.

Every figure says its basis (`cost_daily`'s `basis`: the imported bill allocated to teams, or the estimate): a line
under the cards splits the range's cost into billed and estimated, the daily chart fades estimated days, and every
table has a basis column.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

from dash import Dash, Input, Output, State, dcc, html, no_update
from dash.development.base_component import Component

from collector.cost.attribution import MICRO_USD, DeploymentInfo
from collector.cost.budgets import DEPLOYMENT, TEAM, Budget, Budgets, evaluate_all, load_budgets
from collector.cost.job import collected_until, month_spend
from collector.cost.model import CostModel, load_cost_model, price_facts
from collector.cost.pricing import DEFAULT_BOOK
from collector.errors import InputError
from collector.rollups.months import Period, month_of
from collector.rollups.windows import EPOCH
from collector.store import reads
from collector.store.database import Store
from dashboards import cost_figures as cf
from dashboards import reconciliation as rc
from dashboards.colours import EXTRA_PALETTE, IDLE, team_colour, team_colours
from dashboards.context import Context
from dashboards.figures import Figure, empty
from dashboards.filters import Filters, hash_with, parse_query, resolve_range, to_query
from dashboards.page import Page
from dashboards.tables import csv_table, render

SUMMARY_GRAPHS = ("cost-breakdown", "cost-unit-team", "cost-unit-model")
SERIES_GRAPHS = ("cost-daily", "cost-daily-tokens")
MOVER_GRAPHS = ("cost-movers-team", "cost-movers-deployment")
BURN = "cost-budget-burn"
TEAMS, DEPLOYMENTS, PRICES = "cost-teams", "cost-deployments", "cost-prices"
MOVERS, BUDGETS = "cost-movers", "cost-budgets"
PATH = "/cost"
DIMENSION, CURRENT = "cost-by", "cost-current"
#: The breakdown the URL's hash asks for (`by=...`), changed only when it changes (not with the month).
VIEW_BY = "cost-view-by"
DEFAULT_DIMENSION = "team"
#: Rows a table draws (the costliest); its CSV has them all. Drawing hundreds of rows costs more than reading them.
DRAWN_ROWS = 50
NO_BUDGETS = "No budgets configured: set budgets.file to a budgets YAML (see examples/budgets.yaml)."
_FAR = datetime(9999, 1, 1, tzinfo=EPOCH.tzinfo)
T = TypeVar("T")


# -- what the page derives from files and the whole table ---------------------------------------------------------


class Reads:
    """The cost reads of one version of the daily cost table, memoised: a view seen before is drawn without reading
    the table again. The table changes once per collector pass, and `Sources` then starts a new `Reads`. Callers
    must not change what they get."""

    SIZE = 128

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._found: OrderedDict[Hashable, Any] = OrderedDict()

    def cost_rows(self, start: datetime, end: datetime, scope: reads.CostScope = reads.ALL_COSTS, *,
                  by: tuple[str, ...] = (), step: timedelta | None = None,
                  labels: reads.CostLabels | None = None) -> list[dict[str, Any]]:
        named = None if labels is None else (labels.column, tuple(sorted(labels.values.items())), labels.default,
                                             labels.own)
        return self._memo(("rows", start, end, scope, by, step, named), lambda: reads.cost_rows(
            self._store, start, end, scope, by=by, step=step, labels=labels))

    def month_spend(self, period: Period, as_of: datetime) -> dict[Any, Decimal]:
        return self._memo(("spend", period, as_of), lambda: month_spend(self._store, period, as_of))

    def _memo(self, key: Hashable, read: Callable[[], T]) -> T:
        with self._lock:
            if key in self._found:
                self._found.move_to_end(key)
                found: T = self._found[key]
                return found
        value = read()
        with self._lock:
            self._found[key] = value
            while len(self._found) > self.SIZE:
                self._found.popitem(last=False)
        return value


@dataclass(frozen=True)
class Loaded:
    """The price provenance per price id, the budgets, the team colours, what went wrong loading them, and the
    reads of this version of the daily cost table."""

    reads: Reads
    provenance: dict[str, str] = field(default_factory=dict)
    budgets: Budgets | None = None  # None: no budgets file configured
    colours: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    model: CostModel | None = None  # None: the price book or rules could not be read


def provenance(model: CostModel) -> dict[str, str]:
    """Price id -> where its figures came from (the override applied, if any), for every price a deployment of the
    inventory could get at any effective date (`collector.cost.model.price_facts`), plus every row of the book; with
    the day it was retrieved and whether it is approximate."""
    _, sources = price_facts(model, EPOCH, _FAR)
    rows = {r.id: r for r in model.book.rows}
    found = {r.id: r.source for r in rows.values()} | sources
    for price_id in list(found):
        row = rows.get(price_id.split("+", 1)[0])
        if row is not None:
            found[price_id] += f" (retrieved {row.retrieved:%Y-%m-%d}{', approximate' if row.approximate else ''})"
    return found


def _files(settings: Any) -> tuple[tuple[str, int, int], ...]:
    """What the page's files look like now (path, modification time, size): the price book (and the shipped one
    it may extend), the attribution rules and the budgets. A book that another extends by path is not watched:
    after editing it, touch the extending book (or restart) for the hover text to follow; the cost itself is
    re-priced by the collector either way."""
    found = []
    for path in (settings.prices.book, DEFAULT_BOOK, settings.teams.rules, settings.budgets.file):
        if path:
            try:
                stat = Path(path).stat()
                found.append((str(path), stat.st_mtime_ns, stat.st_size))
            except OSError:
                found.append((str(path), -1, -1))
    return tuple(found)


class Sources:
    """Loads `Loaded` on first use and again whenever the daily cost table changes (a pass re-priced it, perhaps
    with a new price book); the files are parsed again only when they change (modification time or size) or the
    inventory does, never at import."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self._lock = threading.Lock()
        self._key: object = None
        self._loaded: Loaded | None = None

    def get(self) -> Loaded:
        key = ("v", reads.cost_version(self._context.store))
        with self._lock:
            if self._loaded is not None and key == self._key:
                return self._loaded
        loaded = self._load()
        with self._lock:
            self._key, self._loaded = key, loaded
        return loaded

    def _load(self) -> Loaded:
        settings = self._context.settings
        deployments = self._context.inventory.deployments()
        found, budgets, problems, model = _parsed(settings, deployments)
        store = self._context.store
        return Loaded(Reads(store), found, budgets, team_colours(reads.cost_teams(store)), problems, model)


#: The parsed files, per what the files and the inventory looked like (a price book of hundreds of rows takes
#: longer to parse than the page takes to read a quarter of cost).
_PARSED: dict[Hashable, tuple[dict[str, str], Budgets | None, tuple[str, ...], CostModel | None]] = {}
_PARSED_LOCK = threading.Lock()


def _parsed(settings: Any, deployments: Sequence[DeploymentInfo]
            ) -> tuple[dict[str, str], Budgets | None, tuple[str, ...], CostModel | None]:
    """Price provenance, budgets, what went wrong reading them, and the cost model (for the reconciliation),
    parsed once per version of the files."""
    key = (_files(settings), repr(deployments))
    with _PARSED_LOCK:
        if key in _PARSED:
            return _PARSED[key]
    problems = []
    found: dict[str, str] = {}
    model: CostModel | None = None
    try:
        model = load_cost_model(settings, deployments)
        found = provenance(model)
    except InputError as e:
        problems.append(f"the price book or team rules could not be read, so prices show no provenance: {e}")
    budgets: Budgets | None = None
    if settings.budgets.file:
        try:
            budgets = load_budgets(settings.budgets.file)
        except InputError as e:
            problems.append(f"the budgets file could not be read: {e}")
            budgets = Budgets()
    parsed = (found, budgets, tuple(problems), model)
    with _PARSED_LOCK:
        _PARSED.clear()  # only the newest version is worth keeping
        _PARSED[key] = parsed
    return parsed


# -- the range and the filters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The whole UTC days a view covers, the previous period of as many days, and what the filters select."""

    start: datetime
    end: datetime
    scope: reads.CostScope
    dimension: str
    filters: Filters
    problems: tuple[str, ...]

    @property
    def days(self) -> int:
        return (self.end - self.start) // reads.DAY

    @property
    def previous(self) -> tuple[datetime, datetime]:
        return self.start - (self.end - self.start), self.start

    def day_starts(self) -> list[datetime]:
        return [self.start + reads.DAY * i for i in range(self.days)]


def dimension_of(hash_text: str | None) -> tuple[str, list[str]]:
    chosen = parse_qs((hash_text or "").lstrip("#")).get("by", [DEFAULT_DIMENSION])[-1]
    if chosen not in cf.DIMENSIONS:
        return DEFAULT_DIMENSION, [f"#by={chosen} is not one of {', '.join(cf.DIMENSIONS)}; showing by team"]
    return chosen, []


def window(context: Context, search: str | None, hash_text: str | None = None) -> Window:
    """The view the URL asks for: its days, scope and breakdown, and any problem with it."""
    filters = parse_query(search)
    start, end, problems = resolve_range(filters, context.now(), context.zone)
    first, last = reads.cost_days(start, end)
    dimension, wrong = dimension_of(hash_text)
    pairs: tuple[tuple[str, str], ...] | None = None
    if filters.models:
        pairs = tuple((d.account, d.name) for d in context.inventory.deployments() if d.model in filters.models)
        if not pairs:
            problems.append(f"no deployment of {', '.join(filters.models)} in the deployment inventory: the cost "
                            "page knows a deployment's model from the inventory")
    scope = reads.CostScope(filters.accounts, filters.deployments, filters.teams, pairs)
    return Window(first, last, scope, dimension, filters, (*filters.problems, *problems, *wrong))


def _inventory(context: Context, items: list[cf.Line]) -> dict[tuple[str, str], DeploymentInfo | None]:
    return {(x.account, x.deployment): context.inventory.get(x.account, x.deployment) for x in items}


# -- the callbacks' work, callable without a browser -------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    note: list[str]
    basis: str  # what the range's cost rests on: billed and estimated
    unpriced: list[tuple[str, str]]
    kpis: list[tuple[str, str, str]]
    figures: dict[str, Figure]
    teams: list[dict[str, Any]]
    deployments: list[dict[str, Any]]
    prices: list[dict[str, Any]]
    current: dict[str, Any]  # for `series` and `movers`


def summary(context: Context, loaded: Loaded, search: str | None, hash_text: str | None) -> Summary:
    view = window(context, search, hash_text)
    items = cf.lines(loaded.reads.cost_rows(view.start, view.end, view.scope, by=reads.COST_KEYS))
    per_day = loaded.reads.cost_rows(view.start, view.end, view.scope, by=("basis",), step=reads.DAY)
    inventory = _inventory(context, items)
    colour = cf.colour_by(loaded.colours)
    key = cf.key_of(view.dimension, inventory)
    groups = cf.sum_by(items, key)
    top = cf.ranked(groups, cf.TOP_SERIES)
    note = [f"{view.start:%Y-%m-%d} – {view.end - reads.DAY:%Y-%m-%d}, {view.days} whole UTC day(s): the daily "
            f"cost table is kept per UTC day, so the range is widened to the days it touches.", *view.problems,
            *loaded.problems]
    used = [x for x in items if x.method != IDLE]
    models = cf.sum_by(used, cf.key_of("model", inventory, own_series=False))
    teams = cf.sum_by(items, lambda x: x.team)
    labels = {f"{x.account}\x1f{x.deployment}": key(x) for x in items if key(x) in top}
    return Summary(
        note=note, basis=cf.basis_line(per_day), unpriced=cf.unpriced_deployments(items),
        kpis=cf.kpis(items, view.days),
        figures={
            "cost-breakdown": cf.breakdown(groups, view.dimension, colour, loaded.provenance),
            "cost-unit-team": cf.unit_costs({t: g for t, g in teams.items() if t != IDLE},
                                            "Unit cost per team: USD per 1K tokens | per request", colour),
            "cost-unit-model": cf.unit_costs(models, "Unit cost per model (idle capacity apart): USD per 1K "
                                                     "tokens | per request", colour),
        },
        teams=cf.team_rows(teams), deployments=cf.deployment_rows(items, inventory),
        prices=cf.price_rows(items, loaded.provenance),
        current={"search": search or "", "hash": hash_text or "", "top": top, "labels": labels,
                 "others": len([k for k in groups if k not in top and k not in cf.OWN_SERIES]),
                 "lines": [[x.account, x.deployment, x.team, x.method, x.cost, x.basis] for x in items]},
    )


def series(context: Context, loaded: Loaded, current: dict[str, Any]) -> dict[str, Figure]:
    """Cost and tokens per day, by the labels `summary` ranked (the rest folded into one "other")."""
    view = window(context, current["search"], current["hash"])
    plural = {"team": "teams", "deployment": "deployments", "model": "models",
              "deployment_type": "types"}[view.dimension]
    other = f"other {plural} ({current['others']})"
    if view.dimension == "team":
        labels = reads.CostLabels("team", {t: t for t in current["top"]}, other)
    else:
        labels = reads.CostLabels("deployment", {tuple(k.split("\x1f", 1)): v
                                                 for k, v in current["labels"].items()}, other)
    points = loaded.reads.cost_rows(view.start, view.end, view.scope, by=("method",), step=reads.DAY,
                                    labels=labels) if current["lines"] else []
    colour = cf.colour_by(loaded.colours)
    days = view.day_starts()
    bases: dict[datetime, dict[str, int]] = {}
    for row in loaded.reads.cost_rows(view.start, view.end, view.scope, by=("basis",), step=reads.DAY):
        bases.setdefault(row["step"], {})[row["basis"]] = row["cost_micro_usd"]
    return {"cost-daily": cf.daily(points, days, "cost", view.dimension, colour, bases),
            "cost-daily-tokens": cf.daily(points, days, "tokens", view.dimension, colour)}


def _by_method(rows: Iterable[Sequence[Any]], key: Callable[[Sequence[Any]], str], column: int = 3
               ) -> dict[str, dict[str, int]]:
    """Cost per method (or per the value of another `column`: 5, the basis) under `key`, from (account,
    deployment, team, method, cost, basis) rows."""
    found: dict[str, dict[str, int]] = {}
    for row in rows:
        methods = found.setdefault(key(row), {})
        methods[row[column]] = methods.get(row[column], 0) + row[4]
    return found


def movers(context: Context, loaded: Loaded, current: dict[str, Any]
           ) -> tuple[dict[str, Figure], list[dict[str, Any]]]:
    """The largest changes per team and per deployment against the previous period of as many days."""
    view = window(context, current["search"], current["hash"])
    before, after = view.previous
    previous = [(r["account"], r["deployment"], r["team"], r["method"], r["cost_micro_usd"], r["basis"]) for r in
                loaded.reads.cost_rows(before, after, view.scope, by=("account", "deployment", "team", "method",
                                                                      "basis"))]
    now = current["lines"]
    colour = cf.colour_by(loaded.colours)

    def moved(key: Callable[[Sequence[Any]], str]) -> list[cf.Mover]:
        return cf.movers(_by_method(now, key), _by_method(previous, key),
                         bases=(_by_method(now, key, 5), _by_method(previous, key, 5)))
    teams = moved(lambda r: r[2])
    deployments = moved(lambda r: cf.deployment_label(r[0], r[1]))
    period = f"the previous {view.days} day(s) ({before:%Y-%m-%d} – {after - reads.DAY:%Y-%m-%d})"
    return ({"cost-movers-team": cf.movers_figure(teams, f"Top movers by team, against {period}", colour),
             "cost-movers-deployment": cf.movers_figure(deployments, "Top movers by deployment, against the "
                                                                     "previous period", colour)},
            cf.mover_rows("team", teams) + cf.mover_rows("deployment", deployments))


@dataclass(frozen=True)
class BudgetView:
    note: str
    figure: Figure
    rows: list[dict[str, Any]]


def shown_budgets(budgets: Budgets, filters: Filters, context: Context) -> list[Budget]:
    """The budgets the filters name: team budgets unless an account, deployment or model is chosen (and then only
    the chosen teams'); deployment budgets unless a team is chosen (and then only the chosen deployments, accounts
    or models')."""
    accounts = {a.lower() for a in filters.accounts}
    models = {(d.account, d.name): d.model for d in context.inventory.deployments()}

    def wanted(b: Budget) -> bool:
        if b.scope == TEAM:
            return not (filters.accounts or filters.deployments or filters.models) and \
                (not filters.teams or b.name in filters.teams)
        return not filters.teams and (not filters.deployments or b.name in filters.deployments) and \
            (not accounts or not b.account or b.account in accounts) and \
            (not filters.models or any(m in filters.models for (a, d), m in models.items()
                                       if d == b.name and (not b.account or a == b.account)))
    return [b for b in budgets.budgets if wanted(b)]


def _burn_points(rows: list[dict[str, Any]], as_of: datetime, spent: Decimal
                 ) -> tuple[tuple[datetime, int, dict[str, int]], ...]:
    """Cumulative spend (micro-USD) and its methods at each day's end up to `as_of`; the last point is the
    budget's own month-to-date figure, at `as_of`."""
    per_day: dict[datetime, dict[str, int]] = {}
    for row in rows:
        methods = per_day.setdefault(row["step"], {})
        methods[row["method"]] = methods.get(row["method"], 0) + row["cost_micro_usd"]
    points, total, methods = [], 0, {}
    for day in sorted(d for d in per_day if d < as_of):
        for method, cost in per_day[day].items():
            methods[method] = methods.get(method, 0) + cost
            total += cost
        points.append((min(day + reads.DAY, as_of), total, dict(methods)))
    exact = int(spent / MICRO_USD)
    if points and points[-1][0] == as_of:
        points[-1] = (as_of, exact, points[-1][2])
    else:
        points.append((as_of, exact, dict(methods)))
    return tuple(points)


def budgets(context: Context, loaded: Loaded, search: str | None) -> BudgetView:
    """The month the range ends in (up to the collected data): each budget the filters name, evaluated as the
    collector's budget check does (`month_spend`, `evaluate_all`), with its spend per day."""
    if loaded.budgets is None:
        return BudgetView(NO_BUDGETS, empty(cf.BUDGET_TITLE, NO_BUDGETS), [])
    filters = parse_query(search)
    _, end, _ = resolve_range(filters, context.now(), context.zone)
    as_of = min(collected_until(context.store) or context.now(), end)
    period = month_of(as_of - timedelta(microseconds=1))
    as_of = min(as_of, period.end)
    chosen = shown_budgets(loaded.budgets, filters, context)
    statuses = evaluate_all(chosen, period, loaded.reads.month_spend(period, as_of), as_of)
    until = min(period.end, as_of + reads.DAY)
    by_team = loaded.reads.cost_rows(period.start, until, reads.CostScope(
        teams=tuple(b.name for b in chosen if b.scope == TEAM)), by=("team", "method", "basis"), step=reads.DAY) \
        if any(b.scope == TEAM for b in chosen) else []
    by_deployment = loaded.reads.cost_rows(period.start, until, reads.CostScope(
        deployments=tuple(b.name for b in chosen if b.scope == DEPLOYMENT)),
        by=("account", "deployment", "method", "basis"), step=reads.DAY) \
        if any(b.scope == DEPLOYMENT for b in chosen) else []
    burns, rows = [], []
    # Team budgets take their team's colour; deployment budgets the extra palette's, in turn (never a team's
    # palette slot).
    ids = sorted(b.id for b in chosen if b.scope == DEPLOYMENT)
    deployment_colours = {budget_id: EXTRA_PALETTE[i % len(EXTRA_PALETTE)] for i, budget_id in enumerate(ids)}
    for status in statuses:
        b = status.budget
        mine = [r for r in by_team if r["team"] == b.name] if b.scope == TEAM else \
            [r for r in by_deployment if r["deployment"] == b.name and (not b.account or r["account"] == b.account)]
        points = _burn_points(mine, status.as_of, status.spent)
        colour = team_colour(loaded.colours, b.name) if b.scope == TEAM else deployment_colours[b.id]
        burns.append(cf.Burn(b.id, b.id, colour, int(b.monthly_usd / MICRO_USD), points,
                             None if status.forecast is None else int(status.forecast / MICRO_USD), b.thresholds))
        bases: dict[str, int] = {}
        for r in mine:
            if r["step"] < status.as_of:
                bases[r["basis"]] = bases.get(r["basis"], 0) + r["cost_micro_usd"]
        rows.append(cf.budget_row(status, points[-1][2], bases))
    local = as_of.astimezone(context.zone)
    note = (f"{period.label}, as of {local:%Y-%m-%d %H:%M} ({context.zone}): the collected data's end. Each budget "
            "counts its whole scope's spend; the filters only choose which budgets show. The forecast extrapolates "
            "the month's run-rate.")
    empty_text = "No budget for these filters (team budgets show without an account, deployment or model filter; " \
                 "deployment budgets without a team filter)."
    return BudgetView(note, cf.budget_burn(burns, period.label, period.start, period.end, empty_text), rows)


# -- layout and callbacks ----------------------------------------------------------------------------------------


def _graph(graph: str, wide: bool = False) -> html.Div:
    return html.Div(dcc.Graph(id=graph, config={"displayModeBar": False}, figure=empty("", "Loading…")),
                    className="card", style={"gridColumn": "1 / -1"} if wide else None)


def _kpi_cards(kpis: list[tuple[str, str, str]]) -> list[Component]:
    return [html.Div([html.Div(label, className="kpi-label"), html.Div(value, className="kpi-value"),
                      html.Div(detail, className="kpi-detail")], className="kpi") for label, value, detail in kpis]


_WARNING = {"background": "#fff3c4", "color": "#7c5e10", "border": "1px solid #f0d98c", "borderRadius": "8px",
            "padding": "8px 12px", "margin": "8px 0"}


def unpriced_warning(deployments: list[tuple[str, str]]) -> Component | None:
    if not deployments:
        return None
    names = ", ".join(f"{d} ({a})" for a, d in deployments)
    return html.Div([html.Strong("Unpriced usage: "), f"{names} matched no price in the price book, so their usage "
                     "is counted at $0 and these totals are too low. Fix: add a row (model, version, deployment "
                     "type, region, rates) or an override for them to the price book (prices.book); the next "
                     "collector pass re-prices these days."], style=_WARNING, id="cost-unpriced-warning")


_PILL = {"padding": "3px 12px", "borderRadius": "14px", "border": "1px solid #cbd2d9", "textDecoration": "none",
         "color": "#1f2933", "background": "#ffffff", "fontSize": "13px"}
_PILL_ON = {**_PILL, "background": "#2f6fb3", "borderColor": "#2f6fb3", "color": "#ffffff"}


def dimension_links(search: str | None, hash_text: str | None) -> tuple[list[str], list[dict[str, str]]]:
    """The hrefs and styles of the breakdown's links: each keeps the filters and sets `#by=` (links, not a radio
    button, so the URL alone decides the view, back and forward included)."""
    chosen = dimension_of(hash_text)[0]
    return ([f"{PATH}{search or ''}{hash_with(hash_text, by=None if d == DEFAULT_DIMENSION else d)}"
             for d in cf.DIMENSIONS],
            [_PILL_ON if d == chosen else _PILL for d in cf.DIMENSIONS])


def layout(context: Context, filters: Filters) -> Component:
    hrefs, styles = dimension_links(to_query(filters), "")
    links = [dcc.Link(label, id=f"{DIMENSION}-{d}", href=href, style=style)
             for (d, label), href, style in zip(cf.DIMENSIONS.items(), hrefs, styles, strict=True)]
    return html.Div([
        html.H1("Cost"),
        html.P("Attributed cost and tokens per team, deployment, model and deployment type, per UTC day, from the "
               "daily cost table: the imported bill allocated to teams where one covers an account's day, elsewhere "
               "estimates from telemetry and the price book; every figure with its basis, its attribution method "
               "(the bars' pattern) and its price's provenance (hover). The reconciliation compares the estimate "
               "with the bill.", className="subtitle"),
        html.Div(id="cost-note", className="note", children="Loading…"),
        html.Div(id="cost-unpriced"),
        dcc.Loading(html.Div(id="cost-kpis", className="kpis"), type="dot"),
        html.Div(id="cost-basis", className="note"),
        html.Div([html.Span("Break down by", style={"color": "#616e7c"}), *links],
                 style={"display": "flex", "alignItems": "center", "gap": "8px", "margin": "4px 2px 10px"}),
        dcc.Store(id=CURRENT), dcc.Store(id=VIEW_BY),
        dcc.Loading(html.Div([_graph("cost-daily", wide=True), _graph("cost-daily-tokens"), _graph("cost-breakdown"),
                              _graph("cost-unit-team"), _graph("cost-unit-model"), _graph("cost-movers-team"),
                              _graph("cost-movers-deployment")], className="grid"), type="default", delay_show=300),
        *rc.layout(),
        html.H2("Budgets"),
        html.Div(id="cost-budget-note", className="note"),
        html.Div(_graph(BURN), className="grid"),
        csv_table(TEAMS, "Per team", cf.TEAM_COLUMNS,
                  "Idle and unallocated are their own lines. Unit cost is the team's cost over its tokens and "
                  "requests."),
        csv_table(DEPLOYMENTS, "Per deployment", cf.DEPLOYMENT_COLUMNS,
                  f"The {DRAWN_ROWS} costliest are drawn; Download CSV has every one. Model and type from the "
                  "deployment inventory; the prices table says where each price came from."),
        csv_table(PRICES, "Prices used", cf.PRICE_COLUMNS,
                  "Each price id behind these costs and its provenance in the price book (prices.book), with any "
                  "negotiated override applied."),
        csv_table(MOVERS, "Top movers", cf.MOVER_COLUMNS, "Against the previous period of as many days."),
        csv_table(BUDGETS, "Budgets", cf.BUDGET_COLUMNS, "The month the range ends in, as of the collected data."),
    ], className="cost")


def wrap_last_column(table: Component) -> Component:
    """Let the last column's cells wrap (the tables' cells do not, and provenance runs to a paragraph)."""
    if isinstance(table, html.Table):
        body = table.children[1]  # render() builds [Thead, Tbody]
        for row in body.children:
            row.children[-1].style = {"whiteSpace": "normal", "minWidth": "420px"}
    return table


def _note(lines: list[str]) -> list[Component]:
    return [html.Div(line, className="note-line" if i == 0 else "note-problem") for i, line in enumerate(lines)]


def view_by(hash_text: str | None, known: str | None) -> Any:
    """The breakdown's hash (`by=...`) when it differs from the one `known`, else no update: a change of the
    reconciliation's month leaves the other figures alone."""
    wanted = f"by={dimension_of(hash_text)[0]}"
    return no_update if wanted == known else wanted


def reconciliation(context: Context, reconciler: rc.Reconciler, loaded: Loaded, search: str | None,
                   hash_text: str | None) -> rc.Section:
    problem = next((p for p in loaded.problems if "price book" in p), "the price book or team rules could not be "
                                                                        "read")
    return rc.section(context, reconciler, loaded.model, problem, search, hash_text)


def register_callbacks(app: Dash, context: Context) -> None:
    sources = Sources(context)
    reconciler = rc.Reconciler(context.store)

    @app.callback(Output(VIEW_BY, "data"), Input("url", "hash"), State(VIEW_BY, "data"))
    def keep_view_by(hash_text: str | None, known: str | None) -> Any:
        return view_by(hash_text, known)

    @app.callback(Output(rc.MONTHS, "children"), Output(rc.NOTE, "children"), Output(rc.CARDS, "children"),
                  Output(rc.TABLE, "children"), Output({"type": "csv-rows", "table": rc.TABLE}, "data"),
                  Output(rc.OVERRIDES, "children"), Input("url", "search"), Input("url", "hash"))
    def draw_reconciliation(search: str | None, hash_text: str | None) -> tuple[Any, ...]:
        return rc.draw(reconciliation(context, reconciler, sources.get(), search, hash_text))

    @app.callback(*(Output(f"{DIMENSION}-{d}", "href") for d in cf.DIMENSIONS),
                  *(Output(f"{DIMENSION}-{d}", "style") for d in cf.DIMENSIONS),
                  Input("url", "search"), Input("url", "hash"))
    def keep_dimension_links(search: str | None, hash_text: str | None) -> tuple[Any, ...]:
        hrefs, styles = dimension_links(search, hash_text)
        return (*hrefs, *styles)

    @app.callback(Output("cost-note", "children"), Output("cost-unpriced", "children"),
                  Output("cost-kpis", "children"), Output("cost-basis", "children"),
                  *(Output(g, "figure") for g in SUMMARY_GRAPHS),
                  Output(TEAMS, "children"), Output({"type": "csv-rows", "table": TEAMS}, "data"),
                  Output(DEPLOYMENTS, "children"), Output({"type": "csv-rows", "table": DEPLOYMENTS}, "data"),
                  Output(PRICES, "children"), Output({"type": "csv-rows", "table": PRICES}, "data"),
                  Output(CURRENT, "data"), Input("url", "search"), Input(VIEW_BY, "data"))
    def draw_summary(search: str | None, hash_text: str | None) -> tuple[Any, ...]:
        if hash_text is None:  # before keep_view_by has read the URL
            return (no_update,) * 13
        shown = summary(context, sources.get(), search, hash_text)
        return (_note(shown.note), unpriced_warning(shown.unpriced), _kpi_cards(shown.kpis), shown.basis,
                *(shown.figures[g] for g in SUMMARY_GRAPHS),
                render(cf.TEAM_COLUMNS, shown.teams[:DRAWN_ROWS], "No attributed cost in these days for these "
                                                                  "filters."),
                shown.teams,
                render(cf.DEPLOYMENT_COLUMNS, shown.deployments[:DRAWN_ROWS], "No attributed cost in these days "
                                                                               "for these filters."),
                shown.deployments, wrap_last_column(render(cf.PRICE_COLUMNS, shown.prices[:DRAWN_ROWS],
                                                           "No price was used in these days.")),
                shown.prices, shown.current)

    @app.callback(*(Output(g, "figure") for g in SERIES_GRAPHS), Input(CURRENT, "data"))
    def draw_series(current: dict[str, Any] | None) -> tuple[Any, ...]:
        if not current:
            return (no_update,) * len(SERIES_GRAPHS)
        drawn = series(context, sources.get(), current)
        return tuple(drawn[g] for g in SERIES_GRAPHS)

    @app.callback(*(Output(g, "figure") for g in MOVER_GRAPHS), Output(MOVERS, "children"),
                  Output({"type": "csv-rows", "table": MOVERS}, "data"), Input(CURRENT, "data"))
    def draw_movers(current: dict[str, Any] | None) -> tuple[Any, ...]:
        if not current:
            return (no_update,) * (len(MOVER_GRAPHS) + 2)
        drawn, rows = movers(context, sources.get(), current)
        return (*(drawn[g] for g in MOVER_GRAPHS),
                render(cf.MOVER_COLUMNS, rows, "No change from the previous period for these filters."), rows)

    @app.callback(Output("cost-budget-note", "children"), Output(BURN, "figure"), Output(BUDGETS, "children"),
                  Output({"type": "csv-rows", "table": BUDGETS}, "data"), Input("url", "search"))
    def draw_budgets(search: str | None) -> tuple[Any, ...]:
        shown = budgets(context, sources.get(), search)
        return (shown.note, shown.figure, render(cf.BUDGET_COLUMNS, shown.rows, shown.note if not shown.rows
                                                 else ""), shown.rows)


PAGE = Page(path=PATH, title="Cost", audience="FinOps", layout=layout, register_callbacks=register_callbacks,
            tables={TEAMS: cf.TEAM_COLUMNS, DEPLOYMENTS: cf.DEPLOYMENT_COLUMNS, PRICES: cf.PRICE_COLUMNS,
                    MOVERS: cf.MOVER_COLUMNS, BUDGETS: cf.BUDGET_COLUMNS, rc.TABLE: rc.COLUMNS}, team_filter=True)
