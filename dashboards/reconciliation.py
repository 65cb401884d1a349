"""The Cost page's reconciliation section: for one month, the estimate beside the imported bill
(`collector.cost.reconcile.reconcile_stored`, which writes nothing), its summary, the gaps grouped by cause (biggest
first) with their explanation and suggested override, and every gap as CSV.

Computed on demand for the month shown, memoised per version of the daily cost table and of the imported bill (a
collector pass or a bill import starts a new one). The month lives in the URL's hash (`#month=2026-03`, beside
`#by=`); by default it is the month the range ends in. The account filter applies (the gaps and totals of the chosen
accounts); the team, deployment and model filters do not: the bill is per account and meter, and the section says
so. Every name and explanation is drawn as text.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from dash import dcc, html
from dash.development.base_component import Component

from collector.billing.meters import describe
from collector.billing.reconciliation import BillPeriod, Cause, Gap, Reconciliation, Tolerance, summarise
from collector.billing.reconciliation_text import CAUSE_ORDER
from collector.cost.job import collected_until
from collector.cost.model import CostModel
from collector.cost.reconcile import reconcile_stored
from collector.cost.table import fingerprint, stale_days
from collector.errors import TerminalError
from collector.rollups.months import Period, month_of
from collector.store import bills, reads
from collector.store.database import Store
from dashboards.context import Context
from dashboards.filters import hash_params, hash_with, parse_query, resolve_range
from dashboards.memo import Memo
from dashboards.tables import Column, csv_table, render

#: As `aoai-obs reconcile` by default: the month's gross gap may reach 1% of the estimate.
THRESHOLD = Decimal("0.01")
TABLE = "cost-reconciliation"
MONTHS, NOTE, CARDS, OVERRIDES = "cost-reconcile-months", "cost-reconcile-note", "cost-reconcile-cards", \
    "cost-reconcile-overrides"
#: Gaps drawn per cause (the largest); the CSV has every gap.
DRAWN_ROWS = 10
#: Months offered, newest first.
MONTHS_SHOWN = 12
HOW_TO_IMPORT = ("Import the Cost Management export with `aoai-obs bill import SOURCE` (a folder, or a blob "
                 "container URL; default: bill.source in the settings); this section then compares it with the "
                 "estimate.")
COLUMNS: tuple[Column, ...] = (
    ("cause", "Cause", "text"), ("day", "Day", "text"), ("account", "Account", "text"), ("meter", "Meter", "text"),
    ("estimated_quantity", "Estimated quantity", "numeric"), ("billed_quantity", "Billed quantity", "numeric"),
    ("estimated_usd", "Estimate USD", "numeric"), ("billed_usd", "Billed USD", "numeric"),
    ("gap_usd", "Gap USD", "numeric"), ("gap_pct", "Gap % of the estimate", "numeric"),
    ("reasons", "Reasons", "text"), ("explanation", "Explanation", "text"),
    ("override", "Suggested override", "text"),
)
#: What each cause means, under its heading.
CAUSE_TEXT = {
    Cause.EXPORT: "the export lacks a day its period covers: every other figure of that day would be a guess",
    Cause.QUANTITY: "only one side has the usage, or the quantities differ",
    Cause.PRICE_AND_QUANTITY: "both the quantity and the unit price differ",
    Cause.PRICE: "the quantities agree, the unit price does not",
}


# -- reading, memoised -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """A month's reconciliation, or why there is none (no bill covers it, or it cannot be compared)."""

    result: Reconciliation | None
    problem: str = ""  # with no result: why
    billed: bool = True  # False: no bill covers the month
    stale_days: int = 0  # days of the month the settings' cost model has not priced


def _runs_key(runs: Sequence[bills.BillRun]) -> Hashable:
    return tuple((r.export_id, r.period_start, r.run_id, r.imported_at) for r in runs)


class Reconciler:
    """Reconciliations by month and cost model, memoised per version of the daily cost table and the bill."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._memo = Memo(size=8)
        self._model: CostModel | None = None
        self._fingerprint = ""

    def runs(self) -> list[bills.BillRun]:
        return bills.bill_runs(self._store)

    def get(self, model: CostModel, period: Period, runs: Sequence[bills.BillRun]) -> Outcome:
        if model is not self._model:  # the page parses the files again only when they change
            self._model, self._fingerprint = model, fingerprint(model)
        version = (reads.cost_version(self._store), _runs_key(runs), self._fingerprint)
        return self._memo.get(version, period, lambda: self._reconcile(model, period, runs))

    def _reconcile(self, model: CostModel, period: Period, runs: Sequence[bills.BillRun]) -> Outcome:
        if not any(r.first_day < period.end and r.last_day >= period.start for r in runs):
            return Outcome(None, f"No imported bill covers {period.label}. {HOW_TO_IMPORT}", billed=False)
        stale = len(stale_days(self._store, model, period.start, period.end))
        try:
            result = reconcile_stored(self._store, model, period.start, period.end, threshold=THRESHOLD)
        except TerminalError as e:
            return Outcome(None, str(e), stale_days=stale)
        return Outcome(result, stale_days=stale)


# -- the section's content, callable without a browser -----------------------------------------------------------


@dataclass(frozen=True)
class Group:
    cause: Cause
    cells: int
    gap: Decimal
    rows: list[dict[str, Any]]  # the largest first


@dataclass(frozen=True)
class Section:
    month: str  # YYYY-MM
    months: list[tuple[str, str, bool]]  # (label, href, a bill covers it), newest first
    note: list[str]
    cards: list[tuple[str, str, str]] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # every gap, for the CSV
    overrides: list[tuple[str, str]] = field(default_factory=list)  # (what, its price-book line)
    empty: str = ""  # what the gaps table says when there are none


def _month_in(hash_text: str | None) -> str | None:
    value = hash_params(hash_text).get("month", "")
    try:
        datetime.strptime(value, "%Y-%m")
    except ValueError:
        return None
    return value


def default_month(context: Context, search: str | None) -> Period:
    """The month the range ends in, up to the collected data (as the budgets section chooses)."""
    _, end, _ = resolve_range(parse_query(search), context.now(), context.zone)
    as_of = min(collected_until(context.store) or context.now(), end)
    return month_of(as_of - timedelta(microseconds=1))


def _months(store: Store, runs: Sequence[bills.BillRun], chosen: str) -> list[tuple[str, bool]]:
    billed: set[str] = set()
    for run in runs:
        month = month_of(run.first_day)
        while month.start <= run.last_day:
            billed.add(month.label)
            month = month_of(month.end)
    labels = {f"{m:%Y-%m}" for m in reads.cost_months(store)} | billed | {chosen}
    return [(label, label in billed) for label in sorted(labels, reverse=True)[:MONTHS_SHOWN]]


def _number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def gap_row(g: Gap) -> dict[str, Any]:
    return {"cause": g.cause.value, "day": g.day.isoformat(), "account": g.account, "meter": describe(g.meter),
            "estimated_quantity": _number(g.estimated_quantity), "billed_quantity": _number(g.billed_quantity),
            "estimated_usd": float(g.estimated_cost), "billed_usd": float(g.billed_cost), "gap_usd": float(g.gap),
            "gap_pct": None if g.gap_percent is None else float(g.gap_percent),
            "reasons": ", ".join(r.value for r in g.reasons), "explanation": g.explanation,
            "override": g.override.describe() if g.override is not None else ""}


def _plain_percent(fraction: Decimal) -> str:
    """0.01 as "1%", 0.005 as "0.5%"."""
    return f"{(fraction * 100).normalize():f}%"


def _signed(value: Decimal) -> str:
    return f"{'-' if value < 0 else '+'}${abs(value):,.2f}"


def _percent(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}%"


def section(context: Context, reconciler: Reconciler, model: CostModel | None, model_problem: str,
            search: str | None, hash_text: str | None) -> Section:
    """The month the URL asks for, reconciled: summary cards, gaps by cause, every gap for the CSV, overrides."""
    filters = parse_query(search)
    runs = reconciler.runs()
    chosen = _month_in(hash_text) or default_month(context, search).label
    period = month_of(datetime.strptime(chosen, "%Y-%m").replace(tzinfo=UTC))
    months = [(label, f"/cost{search or ''}{hash_with(hash_text, month=label)}", billed)
              for label, billed in _months(context.store, runs, chosen)]
    scope = [f"{period.label} (UTC), per day, account and meter, gaps past the tolerance grouped by cause, the "
             f"largest first; threshold {_plain_percent(THRESHOLD)} of the estimate (gross gap), as aoai-obs "
             "reconcile."]
    ignored = [name for name, values in (("team", filters.teams), ("deployment", filters.deployments),
                                         ("model", filters.models)) if values]
    if ignored:
        scope.append(f"The {', '.join(ignored)} filter does not apply here: the bill is per account and meter "
                     "(the account filter does).")
    if model is None:
        return Section(chosen, months, [*scope, f"Cannot reconcile: {model_problem}"], empty="Nothing to compare.")
    outcome = reconciler.get(model, period, runs)
    if outcome.result is None:
        return Section(chosen, months, [*scope, outcome.problem], empty=outcome.problem)
    if outcome.stale_days:
        scope.append(f"{outcome.stale_days} day(s) of {period.label} were priced with another price book, rules or "
                     "inventory than the settings' now: compared as the collector last priced them (its next pass "
                     "re-prices them).")
    result = outcome.result
    gaps = list(result.gaps)
    s = result.summary
    outside = s.estimate_outside_bill
    if filters.accounts:
        chosen_accounts = {a.lower() for a in filters.accounts}
        gaps = [g for g in gaps if g.account.lower() in chosen_accounts]
        periods = [BillPeriod(s.first_day, s.last_day)] if s.first_day and s.last_day else []
        s = summarise(gaps, periods, Decimal(0), s.threshold, Tolerance())
        scope.append(f"Accounts {', '.join(filters.accounts)} only.")
    ordered = sorted(gaps, key=lambda g: (CAUSE_ORDER.index(g.cause) if g.cause in CAUSE_ORDER else len(CAUSE_ORDER),
                                          -abs(g.gap), g.day, g.account, describe(g.meter)))
    groups = [Group(cause, len(mine), sum((g.gap for g in mine), Decimal(0)), [gap_row(g) for g in mine])
              for cause in CAUSE_ORDER if (mine := [g for g in ordered if g.cause is cause])]
    period_text = f"{s.first_day:%Y-%m-%d}..{s.last_day:%Y-%m-%d}" if s.first_day and s.last_day else "no period"
    gross = "n/a" if s.gross_percent is None else f"{s.gross_percent:.2f}%"
    matched = s.by_cause.get(Cause.NONE, (0, Decimal(0)))
    cards = [
        ("Estimate", f"${s.estimated_cost:,.2f}", "telemetry × the settings' price book"),
        ("Billed", f"${s.billed_cost:,.2f}", f"Cost Management export, {period_text}"),
        ("Net gap", _signed(s.net_gap), f"{_percent(s.net_percent)} of the estimate (billed − estimate)"),
        ("Gross gap", f"${s.gross_gap:,.2f}", f"{gross} of the estimate: threshold {_plain_percent(s.threshold)}, "
                                              f"{'EXCEEDED' if s.exceeded else 'within'}"),
        ("Within tolerance", f"{matched[0]:,} cell(s)", f"{_signed(matched[1])} in all"),
    ]
    if outside and not filters.accounts:
        cards.append(("Not reconciled", f"${outside:,.2f}", "estimate on days no export covers yet"))
    return Section(chosen, months, scope, cards, groups, [gap_row(g) for g in ordered],
                   [(o.describe(), o.yaml(f"reconciliation with the bill, {period_text}")) for o in result.overrides
                    if not filters.accounts or o.name.lower() in {a.lower() for a in filters.accounts}
                    or o.scope != "account"],
                   empty="Every cell of the month is within the tolerance: estimate and bill agree.")


# -- layout and drawing ------------------------------------------------------------------------------------------


def layout() -> list[Component]:
    return [
        html.H2("Reconciliation with the bill", id="cost-reconcile"),
        html.Div(id=MONTHS, className="note"),
        html.Div(id=NOTE, className="note"),
        html.Div(id=CARDS, className="kpis"),
        csv_table(TABLE, "Gaps by cause", COLUMNS,
                  f"Per cause, the {DRAWN_ROWS} largest gaps (billed − estimate); Download CSV has every cell of the "
                  "month, those within the tolerance too."),
        html.Div(id=OVERRIDES),
    ]


_PILL = {"padding": "2px 10px", "borderRadius": "12px", "border": "1px solid #cbd2d9", "textDecoration": "none",
         "color": "#1f2933", "background": "#ffffff", "fontSize": "13px", "marginRight": "6px"}
_WRAP = {"whiteSpace": "pre-wrap", "overflowWrap": "anywhere"}
_PILL_ON = {**_PILL, "background": "#2f6fb3", "borderColor": "#2f6fb3", "color": "#ffffff"}


def draw(shown: Section) -> tuple[Any, ...]:
    """The section's outputs: month links, note, cards, the gaps by cause, their CSV rows, the overrides."""
    links: list[Any] = [html.Span("Month: ", style={"color": "#616e7c"})]
    for label, href, billed in shown.months:
        links.append(dcc.Link(label + ("" if billed else " (no bill)"), href=href, id=f"cost-reconcile-{label}",
                              style=_PILL_ON if label == shown.month else _PILL))
    note = [html.Div(line, className="note-line" if i == 0 else "note-problem") for i, line in enumerate(shown.note)]
    cards = [html.Div([html.Div(label, className="kpi-label"), html.Div(value, className="kpi-value"),
                       html.Div(detail, className="kpi-detail")], className="kpi") for label, value, detail in
             shown.cards]
    if shown.groups:
        tables: Any = []
        for group in shown.groups:
            more = len(group.rows) - DRAWN_ROWS
            tables.append(html.H3(f"{group.cause.value.upper()} gaps: {group.cells} cell(s), {_signed(group.gap)}",
                                  id=f"cost-reconcile-cause-{group.cause.name.lower()}"))
            tables.append(html.P(CAUSE_TEXT[group.cause], className="hint"))
            tables.append(_wrapped(render(COLUMNS[1:], group.rows[:DRAWN_ROWS], "")))
            if more > 0:
                tables.append(html.P(f"… and {more} more (Download CSV has every one).", className="hint"))
    else:
        tables = html.Div(shown.empty, className="empty-state")
    overrides: Any = None
    if shown.overrides:
        overrides = html.Div([
            html.H3("Price-book overrides that would close the price gaps"),
            html.P("Add under `overrides:` in the price book (prices.book); the collector re-prices the days.",
                   className="hint"),
            *(html.Div([html.Div(what), html.Pre(line, className="override-yaml", style=_WRAP)])
              for what, line in shown.overrides)], id="cost-reconcile-override-list")
    return links, note, cards, tables, shown.rows, overrides


def _wrapped(table: Component) -> Component:
    """Let the explanation and override cells wrap (the tables' cells do not)."""
    if isinstance(table, html.Table):
        for row in table.children[1].children:  # render() builds [Thead, Tbody]
            for cell in row.children[-2:]:
                cell.style = {"whiteSpace": "normal", "minWidth": "260px"}
    return table
