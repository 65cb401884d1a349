"""Reports (managers): the monthly report previewed in the page and downloadable as HTML or CSV.

The month lives in the URL hash (`#month=YYYY-MM`) and the team in the shared Team filter, so a link reproduces the
preview. The report is the collector's own (`collector.report.data` / `collector.report.render`), read-only here: days a
changed price book has not re-priced yet are shown as the last collector pass priced them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from dash import Dash, Input, Output, State, dcc, html
from dash.development.base_component import Component

from collector.errors import InputError
from collector.report.data import MonthlyReport, load_report
from collector.report.render import render_csv, render_html
from collector.rollups.months import Period, month_of
from collector.store import reads
from dashboards.context import Context
from dashboards.filters import Filters, parse_query, to_query
from dashboards.page import Page

PATH = "/reports"


@dataclass(frozen=True)
class Preview:
    months: list[tuple[str, str]]  # (label, href) of every month with cost, newest first
    month: str  # YYYY-MM shown, "" when none
    team: str | None
    html: str  # the report document; "" when there is none
    note: str


def month_in(hash_text: str | None) -> str | None:
    value = parse_qs((hash_text or "").lstrip("#")).get("month", [""])[0]
    try:
        datetime.strptime(value, "%Y-%m")
    except ValueError:
        return None
    return value


def _period(label: str) -> Period:
    return month_of(datetime.strptime(label, "%Y-%m").replace(tzinfo=UTC))


@dataclass(frozen=True)
class Choice:
    labels: list[str]  # every month with cost, newest first
    query: str  # the filters' part of the URL
    month: str  # YYYY-MM chosen, "" when there is none
    team: str | None
    current: str  # the month now


def choose(context: Context, search: str | None, hash_text: str | None) -> Choice:
    """The month (from the URL hash; the newest complete month by default) and the team (the first of the Team
    filter) a link asks for."""
    filters = parse_query(search)
    labels = [f"{m:%Y-%m}" for m in reads.cost_months(context.store)]
    current = month_of(context.now()).label
    chosen = (month_in(hash_text) or next((m for m in labels if m < current), labels[0])) if labels else ""
    return Choice(labels, to_query(filters), chosen, filters.teams[0] if filters.teams else None, current)


def preview(context: Context, search: str | None, hash_text: str | None) -> Preview:
    """The months to choose from, and the report of the chosen one."""
    choice = choose(context, search, hash_text)
    months = [(label, f"{PATH}{choice.query}#month={label}") for label in choice.labels]
    if not choice.month:
        return Preview([], "", None, "", "No attributed cost yet: the report appears once the collector has "
                                          "collected and priced a day.")
    note = f"{'Team ' + choice.team if choice.team else 'All teams'} · {choice.month}" + (
        " (the month is not over: figures so far)" if choice.month >= choice.current else "")
    if len(parse_query(search).teams) > 1:
        note += f" · one team at a time: showing {choice.team}"
    try:
        report = _report(context, choice)
    except InputError as e:
        return Preview(months, choice.month, choice.team, "", str(e))
    return Preview(months, choice.month, choice.team, render_html(report), note)


def _report(context: Context, choice: Choice) -> MonthlyReport:
    return load_report(context.settings, context.store, _period(choice.month), choice.team, context.now(),
                       reprice=False)


def layout(context: Context, filters: Filters) -> Component:
    return html.Div([
        html.H1("Monthly report"),
        html.P("What managers receive each month: totals, cost and tokens by team and model, month over month, top "
               "movers, budgets, unallocated and idle, 429 storms and content-filter spikes. Pick a month; the "
               "Team filter makes it one team's report.", className="subtitle"),
        html.Div(id="report-months", className="note"),
        html.Div([
            html.Span(id="report-note", className="note-line"),
            html.Button("Download HTML", id="report-get-html", className="download"),
            html.Button("Download CSV", id="report-get-csv", className="download"),
            dcc.Download(id="report-download"),
        ], style={"display": "flex", "alignItems": "center", "gap": "10px", "margin": "8px 0"}),
        # sandbox="": the report runs no script, submits nothing and navigates nothing; it has a unique origin.
        dcc.Loading(html.Iframe(id="report-frame", title="monthly report preview", sandbox="",
                                style={"width": "100%", "height": "1600px", "border": "1px solid #d9e2ec",
                                       "background": "white"}), type="default"),
    ], className="reports")


def register_callbacks(app: Dash, context: Context) -> None:
    @app.callback(Output("report-months", "children"), Output("report-note", "children"),
                  Output("report-frame", "srcDoc"), Input("url", "search"), Input("url", "hash"))
    def draw(search: str | None, hash_text: str | None) -> tuple[Any, ...]:
        shown = preview(context, search, hash_text)
        links: list[Any] = ["Month: "]
        for label, href in shown.months:
            style = {"fontWeight": "600", "textDecoration": "none"} if label == shown.month else {}
            links += [dcc.Link(label, href=href, id=f"report-month-{label}", style=style), " "]
        return links, shown.note, shown.html

    @app.callback(Output("report-download", "data"), Input("report-get-html", "n_clicks"),
                  Input("report-get-csv", "n_clicks"), State("url", "search"), State("url", "hash"),
                  prevent_initial_call=True)
    def download(html_clicks: int | None, csv_clicks: int | None, search: str | None,
                 hash_text: str | None) -> dict[str, Any] | None:
        from dash import ctx

        choice = choose(context, search, hash_text)
        if not choice.month:
            return None
        name = f"aoai-report-{choice.month}{'-' + choice.team if choice.team else ''}"
        try:
            report = _report(context, choice)
        except InputError:  # the preview shows what is wrong; there is nothing to download
            return None
        if ctx.triggered_id == "report-get-csv":
            return {"content": render_csv(report), "filename": f"{name}.csv", "type": "text/csv"}
        return {"content": render_html(report), "filename": f"{name}.html", "type": "text/html"}


PAGE = Page(path=PATH, title="Reports", audience="Managers", layout=layout, register_callbacks=register_callbacks,
            team_filter=True)
