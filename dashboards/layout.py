"""The page shell (navigation, freshness banner, router), the filter bar, and the callbacks that keep the filter
controls and the URL's query string in step, both ways.

The filter bar lives in the shell, above every page. Data flow: a control changes -> `sync_url` writes the
canonical query string to the URL (a history entry, no reload) -> each page's figures callback, whose only input is
the URL, redraws. Opening a link, going back, or the first draw sets the controls from the URL in the same callback
(Dash allows a callback to be its own input), so a page is always a function of its URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.development.base_component import Component

from collector.store import reads
from dashboards.context import Context
from dashboards.filters import CUSTOM, RANGE_LABELS, Filters, from_controls, parse_query, resolve_range, to_query
from dashboards.freshness import banner, summarise
from dashboards.page import Page

RANGE, START, END = "filter-range", "filter-from", "filter-to"
ACCOUNT, DEPLOYMENT, MODEL, TEAM = "filter-account", "filter-deployment", "filter-model", "filter-team"
#: Refresh of the freshness banner.
FRESHNESS_EVERY_MS = 60_000


def shell(pages: Sequence[Page]) -> html.Div:
    """What every page shares; `page` receives the routed page's layout."""
    links = [dcc.Link([html.Span(p.title, className="nav-title"), html.Span(p.audience, className="nav-audience")],
                      href=p.path, id=f"nav-{p.path.strip('/') or 'home'}", className="nav-link") for p in pages]
    return html.Div([
        dcc.Location(id="url", refresh=False),
        dcc.Interval(id="freshness-tick", interval=FRESHNESS_EVERY_MS),
        html.Header([html.Div("aoai-observatory", className="brand"), html.Nav(links, className="nav")],
                    className="header"),
        html.Div(id="freshness", className="freshness", children="Checking the collector's freshness…"),
        html.Div(filter_bar(Filters()), className="filter-slot"),
        html.Main(id="page", className="page"),
    ], className="app")


def _options(values: Sequence[str], known: Sequence[str] = ()) -> list[dict[str, str]]:
    return [{"label": v, "value": v} for v in sorted({*known, *values})]


def filter_bar(filters: Filters) -> html.Div:
    """Time range, account, deployment, model and team, shared by every page (so callbacks that read them never
    meet a page without them). `sync_url` sets them from the URL; the lists fill in from the store for the range.
    Team is disabled on pages that do not apply it (`Page.team_filter`), its value kept."""
    custom = filters.range == CUSTOM
    return html.Div([
        html.Label(["Time range", dcc.Dropdown(
            id=RANGE, options=[{"label": label, "value": value} for value, label in RANGE_LABELS.items()],
            value=filters.range, clearable=False, searchable=False)], className="filter filter-range"),
        html.Label(["From", dcc.Input(id=START, value=filters.start, debounce=True, disabled=not custom,
                                      placeholder="YYYY-MM-DDTHH:MM")], className="filter filter-time"),
        html.Label(["To", dcc.Input(id=END, value=filters.end, debounce=True, disabled=not custom,
                                    placeholder="now")], className="filter filter-time"),
        html.Label(["Account", dcc.Dropdown(id=ACCOUNT, options=_options(filters.accounts), multi=True,
                                            value=list(filters.accounts), placeholder="All accounts")],
                   className="filter"),
        html.Label(["Deployment", dcc.Dropdown(id=DEPLOYMENT, options=_options(filters.deployments), multi=True,
                                               value=list(filters.deployments), placeholder="All deployments")],
                   className="filter"),
        html.Label(["Model", dcc.Dropdown(id=MODEL, options=_options(filters.models), multi=True,
                                          value=list(filters.models), placeholder="All models")],
                   className="filter"),
        # Narrower than the others so the bar keeps one line at 1440 px; the dropdown's hidden focus input is wider
        # than that, hence the clipping.
        html.Label(["Team", dcc.Dropdown(id=TEAM, options=_options(filters.teams), multi=True,
                                         value=list(filters.teams), placeholder="All teams")],
                   className="filter", id="filter-team-label",
                   style={"flex": "1 1 150px", "minWidth": "150px", "overflow": "hidden"}),
    ], className="filters", id="filters")


def _route(pages: Sequence[Page], pathname: str | None) -> Page | None:
    path = (pathname or "/").rstrip("/") or "/"
    if path == "/":
        return pages[0]
    return next((p for p in pages if p.path.rstrip("/") == path), None)


def register_shell_callbacks(app: Dash, context: Context, pages: Sequence[Page]) -> None:
    @app.callback(Output("page", "children"), Input("url", "pathname"), State("url", "search"))
    def route(pathname: str | None, search: str | None) -> Component:
        page = _route(pages, pathname)
        if page is None:
            return html.Div([html.H2("No such page"), html.P(f"{pathname} is not a page of these dashboards."),
                             dcc.Link("Go to the first page", href=pages[0].path)], className="empty-state")
        return page.layout(context, parse_query(search))

    @app.callback([Output(f"nav-{p.path.strip('/') or 'home'}", "href") for p in pages]
                  + [Output(f"nav-{p.path.strip('/') or 'home'}", "className") for p in pages]
                  + [Output(TEAM, "disabled"), Output("filter-team-label", "title")],
                  Input("url", "search"), Input("url", "pathname"))
    def keep_filters_in_links(search: str | None, pathname: str | None) -> list[Any]:
        current = _route(pages, pathname)
        teams = current is not None and current.team_filter
        return ([f"{p.path}{search or ''}" for p in pages]
                + ["nav-link active" if p is current else "nav-link" for p in pages]
                + [not teams, "" if teams else "Team applies to the pages of attributed cost; requests and metrics "
                                              "carry no team."])

    @app.callback(Output("freshness", "children"), Output("freshness", "className"),
                  Input("freshness-tick", "n_intervals"), Input("url", "pathname"))
    def freshness(_tick: int | None, _pathname: str | None) -> tuple[Component, str]:
        now = context.now()
        summary = summarise(context.store.job_statuses(), now, context.stale_after)
        return banner(summary, now, context.zone), f"freshness-slot freshness-{summary.level}"

    def options(filters: Filters) -> tuple[list[dict[str, str]], ...]:
        """What the account, deployment and model lists offer for the filters' range, the chosen values always
        among them (a Dash dropdown drops a value its options lack)."""
        start, end, _ = resolve_range(filters, context.now(), context.zone)
        pairs = reads.deployments(context.store, start, end)
        models = reads.deployment_models(context.store, start, end)
        return (_options(filters.accounts, [a for a, _ in pairs]),
                _options(filters.deployments, [d for _, d in pairs]),
                _options(filters.models, [m for ms in models.values() for m in ms]),
                _options(filters.teams, reads.cost_teams(context.store, start, end)))

    @app.callback(Output("url", "search"), Output(RANGE, "value"), Output(START, "value"), Output(END, "value"),
                  Output(ACCOUNT, "value"), Output(DEPLOYMENT, "value"), Output(MODEL, "value"), Output(TEAM, "value"),
                  Output(ACCOUNT, "options"), Output(DEPLOYMENT, "options"), Output(MODEL, "options"),
                  Output(TEAM, "options"), Output(START, "disabled"), Output(END, "disabled"),
                  Input("url", "search"), Input(RANGE, "value"), Input(START, "value"), Input(END, "value"),
                  Input(ACCOUNT, "value"), Input(DEPLOYMENT, "value"), Input(MODEL, "value"), Input(TEAM, "value"))
    def sync_url(
        search: str | None, range_value: str | None, start: str | None, end: str | None,
        accounts: list[str] | None, deployments: list[str] | None, models: list[str] | None,
        teams: list[str] | None,
    ) -> tuple[Any, ...]:
        current = parse_query(search)
        if ctx.triggered_id in ("url", None):  # a link opened, back/forward, or the first draw
            custom = current.range != CUSTOM
            return (no_update, current.range, current.start, current.end, list(current.accounts),
                    list(current.deployments), list(current.models), list(current.teams), *options(current),
                    custom, custom)
        wanted = replace(from_controls(range_value, start, end, accounts, deployments, models, keep=current),
                         teams=tuple(teams or ()))
        query = to_query(wanted)
        range_changed = ctx.triggered_id in (RANGE, START, END)
        custom = wanted.range != CUSTOM
        return (query if query != (search or "") else no_update, *(no_update,) * 7,
                *(options(wanted) if range_changed else (no_update,) * 4), custom, custom)
