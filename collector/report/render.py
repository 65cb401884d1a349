"""Pure: the monthly report rendered as one self-contained HTML document (inline CSS and SVG) and as CSV.

The HTML needs nothing else to open: no script, no external style sheet, font or image, so it can be mailed,
archived and printed offline. Each chart has the table of its values beside it. Amounts are rounded to the cent
one by one (half to even), so a column of rounded amounts can differ from its rounded total by a cent; the CSV
has every amount exact to the micro-dollar, and its sums give the report's totals to the cent.

The CSV is long: one value per row, under the columns of `CSV_COLUMNS`:

- `month` the report's month (YYYY-MM), `scope` `organisation` or `team:<name>`;
- `section` what the row belongs to: `total`, `team`, `team_method`, `model`, `deployment`, `mover_team`,
  `mover_model`, `daily`, `budget`, `throttling`, `content_filter`, `unpriced`, and the bill's (below);
- `period` the month a figure covers (YYYY-MM: the report's month or, for month-over-month, the one before), the
  day (YYYY-MM-DD) for `daily`, `content_filter` and `reconciliation_gap`, the first hour (ISO-8601 UTC) for
  `throttling`;
- the keys the section has: `team`, `method` (attribution method), `model`, `deployment_type`, `account`,
  `deployment`, `meter` (a billed meter: model, version, deployment type, kind), `cause` (of a reconciliation
  gap); the others are empty;
- `metric` and `value`: counts are integers, `*_usd` amounts are exact decimals (micro-dollars), percents are
  to 0.01 (budgets, reconciliation) or 0.1 (changes) and `change_percent` is `new` when there was nothing the
  month before.

`team` rows of an organisation's report include `unallocated` and `idle`; the `team` rows of a period add up to
its `total` row.

The bill's sections: `basis` (the scope's cost that is the imported bill allocated to teams, `billed_cost_usd`, and
the estimate, `estimate_cost_usd`, adding up to the `total`; the days with lines on each basis, counted and listed)
and `team_basis` (the same per team); `reconciliation`, one row `status`: `reconciled`, `no_bill` (no imported bill
covers the month), `not_reconciled` (with `problem`) or `organisation_report` (a team's report: the reconciliation
is per account and meter); when reconciled, the summary (the bill's days in the month, estimate, billed, net and
gross gap in $ and %, the threshold, whether it is `exceeded`, the estimate on days no export covers), then
`reconciliation_cause` (cells, net and absolute gaps per cause), every cell of the reconciliation as
`reconciliation_gap` (quantities, costs, gap, gap %, reasons, explanation, the override that would close it;
amounts to the micro-dollar) and `reconciliation_override` (each suggested price-book override and its entry).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from html import escape

from collector.cost.attribution import IDLE, UNALLOCATED
from collector.csvcells import SafeDictWriter
from collector.report.charts import OTHERS, Bar, Gauge, bar_chart, budget_chart, colour_of, small_multiples
from collector.report.data import DeploymentLine, Line, MonthlyReport, Usage
from collector.report.formatting import micro as _micro
from collector.report.formatting import signed_usd, usd
from collector.report.formatting import table as _table
from collector.report.reconciliation import basis_text, basis_tile, bill_tile, csv_values, footer_sentence, section_html

CSV_COLUMNS = ("month", "scope", "section", "period", "team", "method", "model", "deployment_type", "account",
               "deployment", "metric", "value", "meter", "cause")
USAGE_METRICS = ("requests", "prompt_tokens", "cached_tokens", "completion_tokens", "cost_usd")
#: Past these, a chart shows the largest and one bar (or nothing) for the rest, and a detail table the largest
#: rows and one row for the rest, so that 40 teams and 300 deployments still print on a few pages. The tables
#: of teams, models and budgets stay whole; the CSV always has every row.
CHART_BARS = 15
PANELS = 12
DETAIL_ROWS = 25


def change_text(line: Line) -> str:
    """+12.5 %, -100.0 %, `new`, or an en dash when there was nothing either month."""
    if line.percent is None:
        return "new" if line.current.cost_micro_usd else "–"
    return f"{'+' if line.percent > 0 else ''}{line.percent} %"


# -- HTML ----------------------------------------------------------------------------------------------------------

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;color:#222;margin:0;background:#fff;
  font-size:14px;line-height:1.45}
main{max-width:980px;margin:0 auto;padding:28px 28px 40px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:30px 0 8px;padding-top:10px;border-top:2px solid #222}
h3{font-size:15px;margin:18px 0 6px}
p{margin:6px 0}
.meta{color:#555}
.estimate{font-weight:600;border-left:4px solid #4e79a7;padding:6px 10px;background:#f1f5fa}
.warn{border-left:4px solid #d4a017;padding:6px 10px;background:#fdf7e3}
.note{color:#555;font-size:13px}
.cards{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:10px;margin:14px 0}
.cards.four{grid-template-columns:repeat(4,minmax(0,1fr))}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 12px}
.card .k{color:#555;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:650;font-variant-numeric:tabular-nums}
.card .s{color:#555;font-size:12px}
figure{margin:8px 0 6px}
svg.chart{width:100%;max-width:640px;height:auto;display:block}
table{border-collapse:collapse;width:100%;margin:6px 0 4px;font-size:12.5px;font-variant-numeric:tabular-nums}
caption{text-align:left;color:#555;font-size:12px;padding-bottom:3px}
th,td{padding:3px 6px;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top}
th{border-bottom:1.5px solid #999;font-weight:600;background:#fafafa}
td.n,th.n{text-align:right;white-space:nowrap}
tr.total td{font-weight:650;border-top:1.5px solid #999}
tr.nobody td{font-style:italic;color:#444}
table.gaps tr.gap td{border-bottom:none}
table.gaps tr.gap td:nth-child(2){white-space:nowrap}
table.gaps tr.why td{color:#444;font-size:11.5px;padding:0 6px 5px 18px;white-space:normal}
table.gaps tr.rest td{color:#555;font-style:italic;white-space:normal}
code{font-family:ui-monospace,Consolas,monospace;font-size:11.5px;overflow-wrap:anywhere}
a{color:inherit}
.sw{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px;vertical-align:baseline}
.small{font-size:11px;color:#555}
td:first-child{white-space:nowrap}
.pair{display:grid;grid-template-columns:minmax(0,1fr);gap:4px}
section{break-inside:auto}
figure,.cards,tr{break-inside:avoid}
footer{margin-top:30px;color:#555;font-size:12px;border-top:1px solid #ddd;padding-top:8px}
@media (min-width:1400px){main{max-width:1360px}.pair{grid-template-columns:640px minmax(0,1fr);gap:24px}}
@page{size:A4;margin:14mm 12mm}
@media print{main{padding:0;max-width:none}h2,h3{break-after:avoid}body{font-size:12px}table{font-size:11px}}
"""


def _deployment_cell(d: DeploymentLine) -> str:
    return f'{escape(d.deployment)}<br><span class="small">{escape(d.account)}</span>'


def _colour(r: MonthlyReport, kind: str, name: str) -> str:
    """A team's colour as the dashboards give it, a model's by its name."""
    return (r.colours.get(name) or colour_of(name)) if kind == "team" else colour_of(name)


def _swatch(colour: str, name: str) -> str:
    return f'<span class="sw" style="background:{colour}"></span>{escape(name)}'


def _methods(line: Line) -> str:
    total = sum(micro for _, micro in line.methods)
    if not line.charged or total <= 0:
        return "–"
    return ", ".join(f"{m}\u00a0{Decimal(micro * 100) / total:.0f}\u00a0%" for m, micro in line.methods if micro)


def _header(r: MonthlyReport) -> str:
    collected = f"{r.collected_until:%Y-%m-%d %H:%M} UTC" if r.collected_until else "nothing collected yet"
    parts = [f"<h1>Azure OpenAI usage and cost: {escape(r.title)}</h1>",
             f'<p class="meta">{escape(r.scope.capitalize())} · {r.month.start:%Y-%m-%d} to '
             f"{r.month.end:%Y-%m-%d} (UTC, end exclusive) · generated {r.generated_at:%Y-%m-%d %H:%M} UTC · data "
             f"collected until {escape(collected)}</p>",
             f'<p class="estimate" id="basis-note">{escape(basis_text(r))} The last section, Bill and '
             "estimate, says more.</p>"]
    if not r.complete:
        parts.append(f'<p class="warn">The month is not complete: the data ends at {escape(collected)}. Figures '
                     "cover the month up to then, and budget forecasts extrapolate from it.</p>")
    if r.unpriced:
        names = ", ".join(f"{a}/{d}" for a, d in r.unpriced)
        parts.append(f'<p class="warn">No price in the price book matched the usage of {escape(names)}: it is '
                     "counted at $0 and flagged unpriced. Add a price (or an override) to the price book.</p>")
    if r.team is not None:
        parts.append('<p class="note">Idle provisioned capacity and unallocated usage are organisation-level: they '
                     "are in the organisation's report, not in a team's.</p>")
    return "".join(parts)


def _card(key: str, value: str, sub: str) -> str:
    return f'<div class="card"><div class="k">{escape(key)}</div><div class="v">{escape(value)}</div>' \
           f'<div class="s">{escape(sub)}</div></div>'


def _summary(r: MonthlyReport) -> str:
    before = Line("total", r.total, r.previous_total)
    t = r.total
    cards = [
        _card("Cost", usd(t.cost), f"{usd(r.previous_total.cost)} in {r.previous_month.start:%B %Y} "
                                   f"({change_text(before)})"),
        _card("Tokens", f"{t.tokens:,}", f"prompt {t.prompt_tokens:,} (cached {t.cached_tokens:,}), completion "
                                         f"{t.completion_tokens:,}"),
        _card("Requests", f"{t.requests:,}", f"{r.previous_total.requests:,} the month before"),
    ]
    if r.team is None:
        nobody = sum((x.current for x in r.teams if not x.charged), Usage())
        share = "" if not t.cost_micro_usd else \
            f"{Decimal(nobody.cost_micro_usd * 100) / t.cost_micro_usd:.1f} % of the cost; "
        unallocated, idle = r.line(UNALLOCATED), r.line(IDLE)
        cards.append(_card("Unallocated and idle", usd(nobody.cost),
                           f"{share}unallocated {usd(unallocated.current.cost if unallocated else Decimal(0))}, "
                           f"idle {usd(idle.current.cost if idle else Decimal(0))}"))
    cards.append(_card(*basis_tile(r)))
    if r.team is None:
        cards.append(_card(*bill_tile(r)))
    over = sum(1 for b in r.budgets if b.spent * 100 >= 100 * b.budget.monthly_usd)
    cards.append(_card("Budgets", f"{over} of {len(r.budgets)}", "at or over 100 % of the monthly amount"))
    cards.append(_card("Incidents", f"{len(r.throttling)} + {len(r.content_filter)}",
                       "429 storms + content-filter spikes"))
    columns = " four" if len(cards) % 4 == 0 else ""
    return f'<section id="summary"><h2>Summary</h2><div class="cards{columns}">{"".join(cards)}</div></section>'


def _usage_rows(r: MonthlyReport, kind: str, lines: Sequence[Line], total: Line) -> list[tuple[str, list[str]]]:
    rows = []
    methods = kind == "team"
    for x in [*lines, total]:
        cells = [_swatch(_colour(r, kind, x.name), x.name) if x is not total else "Total", f"{x.current.requests:,}",
                 f"{x.current.prompt_tokens:,}", f"{x.current.completion_tokens:,}", usd(x.current.cost),
                 usd(x.previous.cost), signed_usd(x.change), change_text(x)]
        if methods:
            cells.append(f'<span class="small">{_methods(x)}</span>' if x is not total else "")
        rows.append(("total" if x is total else ("" if x.charged else "nobody"), cells))
    return rows


def _by(r: MonthlyReport, kind: str, lines: Sequence[Line]) -> str:
    total = Line("Total", r.total, r.previous_total)
    charged, nobody = [x for x in lines if x.charged], [x for x in lines if not x.charged]
    shown = charged if len(charged) <= CHART_BARS else charged[:CHART_BARS - 1]
    rest = charged[len(shown):]
    bars = [Bar(x.name, float(x.current.cost), _colour(r, kind, x.name), float(x.previous.cost),
                usd(x.current.cost)) for x in shown]
    if rest:
        now, before = sum((x.current for x in rest), Usage()), sum((x.previous for x in rest), Usage())
        bars.append(Bar(f"{len(rest)} other {kind}s", float(now.cost), OTHERS, float(before.cost), usd(now.cost)))
    bars += [Bar(x.name, float(x.current.cost), _colour(r, kind, x.name), float(x.previous.cost),
                 usd(x.current.cost)) for x in nobody]
    prev = f"{r.previous_month.start:%B %Y}"
    chart = bar_chart(f"by-{kind}", f"Cost by {kind}, {r.title}",
                      f"Horizontal bars: cost per {kind} in {r.title}, with {prev} as a thin grey bar under each"
                      + (f"; the {len(rest)} smallest together." if rest else "."),
                      bars, f"cost (USD), {r.title}; grey: {prev}", legend=(r.title, prev))
    header = [kind.capitalize(), "Requests", "Prompt tokens", "Completion tokens", f"Cost {r.month.start:%b %Y}",
              f"Cost {r.previous_month.start:%b %Y}",
              "Change", "Change %"]
    if kind == "team":
        header.append("Attribution (share of cost)")
    note = ("Cost per model is every cost on that model's deployments, idle capacity and unallocated usage included."
            if kind == "model" else
            "Unallocated: usage the attribution rules could not place. Idle: the unused share of provisioned "
            "(PTU) capacity. Both are their own lines, never spread over the teams." if r.team is None else "")
    table = _table(f"{kind}s", f"Cost and tokens by {kind}, {r.title}, and the month before", header,
                   _usage_rows(r, kind, lines, total), range(1, 8))
    return (f'<section id="by-{kind}"><h2>Cost and tokens by {kind}</h2><div class="pair"><figure>{chart}</figure>'
            f'<div>{table}<p class="note">{escape(note)}</p></div></div></section>')


def _movers(r: MonthlyReport) -> str:
    parts = ['<section id="movers"><h2>Top movers</h2><p class="note">The largest changes in cost from '
             f"{r.previous_month.start:%B %Y} to {escape(r.title)}, with the change in percent (new: nothing the "
             "month before).</p>"]
    for kind, lines in (("team", r.team_movers), ("model", r.model_movers)):
        if r.team is not None and kind == "team":
            continue
        parts.append(f"<h3>{kind.capitalize()}s</h3>")
        if not lines:
            parts.append(f'<p class="note">No {kind} changed cost.</p>')
            continue
        bars = [Bar(x.name, float(x.change), _colour(r, kind, x.name),
                    shown=f"{signed_usd(x.change)} ({change_text(x)})") for x in lines]
        chart = bar_chart(f"movers-{kind}", f"Top {kind} movers, {r.title}",
                          f"Change in cost per {kind} from the month before; left of the zero line a decrease.",
                          bars, "change in cost (USD)")
        rows = [("", [_swatch(_colour(r, kind, x.name), x.name), usd(x.previous.cost), usd(x.current.cost),
                      signed_usd(x.change), change_text(x)]) for x in lines]
        table = _table(f"movers-{kind}s", f"Top {kind} movers", [kind.capitalize(), "Month before", "This month",
                                                                 "Change", "Change %"], rows, range(1, 5))
        parts.append(f'<div class="pair"><figure>{chart}</figure><div>{table}</div></div>')
    return "".join(parts) + "</section>"


def _daily(r: MonthlyReport) -> str:
    if not r.daily:
        return ""
    largest = sorted(r.daily, key=lambda d: -sum(d[1]))[:PANELS]
    series = [(name, _colour(r, "team", name), [float(_micro(v)) for v in values]) for name, values in r.daily
              if (name, values) in largest]
    more = f"; the {PANELS} largest of {len(r.daily)}" if len(r.daily) > PANELS else ""
    chart = small_multiples("daily", f"Cost per day and team, {r.title}",
                            f"One small column chart per team: cost per day of {r.title}, each on its own "
                            f"scale{more}.", series,
                            f"day of the month; cost per day (USD), each panel on its own scale{more}")
    rows = []
    for name, values in r.daily:
        peak = max(range(len(values)), key=lambda i: (values[i], -i))
        rows.append(("" if name not in (UNALLOCATED, IDLE) else "nobody",
                     [_swatch(_colour(r, "team", name), name), usd(_micro(sum(values))),
                      usd(_micro(sum(values)) / len(values)),
                      f"{r.month.start.replace(day=peak + 1):%Y-%m-%d}", usd(_micro(values[peak]))]))
    table = _table("daily", "Cost per day: the month, the mean day and the most expensive day (every day is in "
                   "the CSV, section daily)", ["Team", "Month", "Mean day", "Top day", "Top day cost"], rows,
                   (1, 2, 4))
    return (f'<section id="daily-cost"><h2>Cost per day</h2><div class="pair"><figure>{chart}</figure>'
            f"<div>{table}</div></div></section>")


def _budgets(r: MonthlyReport) -> str:
    head = '<section id="budget-status"><h2>Budget status</h2>'
    if not r.budgets:
        scope = "" if r.team is None else f" for team {escape(r.team)}"
        return head + f'<p class="note">No budget is set{scope} (budgets.file).</p></section>'
    charted = sorted(r.budgets, key=lambda b: -b.percent_used)[:DETAIL_ROWS]
    gauges = [Gauge(b.budget.id, float(b.percent_used), None if b.forecast_percent is None
                    else float(b.forecast_percent), b.budget.thresholds) for b in r.budgets if b in charted]
    more = f" The {len(charted)} most used of {len(r.budgets)} are drawn." if len(charted) < len(r.budgets) else ""
    chart = budget_chart("budgets", f"Budgets, {r.title}", "Share of each monthly budget used; ticks mark its "
                         "thresholds, a circle the month-end forecast (while the month runs), the thick line "
                         f"100 %.{more}", gauges)
    rows = [("", [escape(b.budget.id), usd(b.budget.monthly_usd), usd(b.spent), f"{b.percent_used} %",
                  "–" if b.forecast is None else f"{usd(b.forecast)} ({b.forecast_percent} %)",
                  ", ".join(f"{t} %" for t in b.budget.thresholds),
                  ", ".join(f"{t} %" for t in b.crossed) or "none"]) for b in r.budgets]
    as_of = r.budgets[0].as_of
    table = _table("budgets", f"Budgets as of {as_of:%Y-%m-%d %H:%M} UTC (for a past month the forecast is the "
                   "actual spend)", ["Budget", "Monthly", "Spent", "Used", "Month-end forecast", "Thresholds",
                                     "Passed"], rows, (1, 2, 3, 4))
    return head + f'<div class="pair"><figure>{chart}</figure><div>{table}</div></div></section>'


def _rest(kept: int, total: int, what: str, section: str) -> str:
    if kept >= total:
        return ""
    return (f'<p class="note">The {kept} largest of {total} {what} are shown; the CSV has every one '
            f"(section {section}).</p>")


def _nobody(r: MonthlyReport) -> str:
    if r.team is not None:
        return ""
    lines = sorted((d for d in r.deployments if not (d.unallocated.empty and d.idle.empty)),
                   key=lambda d: -(d.unallocated.cost_micro_usd + d.idle.cost_micro_usd))
    head = ('<section id="unallocated-idle"><h2>Unallocated and idle</h2><p class="note">Cost nobody is charged '
            "for, per deployment: unallocated usage (no rule names its team; fix it in the attribution rules) and "
            "idle provisioned capacity (PTU hours paid for and not used).</p>")
    if not lines:
        return head + '<p class="note">None this month: every cost line has a team.</p></section>'
    shown, rest = lines[:DETAIL_ROWS], lines[DETAIL_ROWS:]
    rows = [("", [_deployment_cell(d), escape(d.model), escape(d.deployment_type), f"{d.unallocated.tokens:,}",
                  usd(d.unallocated.cost), usd(d.idle.cost), usd(d.unallocated.cost + d.idle.cost)]) for d in shown]
    if rest:
        una, idle = sum((d.unallocated for d in rest), Usage()), sum((d.idle for d in rest), Usage())
        rows.append(("", [f"{len(rest)} other deployments", "", "", f"{una.tokens:,}", usd(una.cost), usd(idle.cost),
                          usd(una.cost + idle.cost)]))
    una, idle = sum((d.unallocated for d in lines), Usage()), sum((d.idle for d in lines), Usage())
    rows.append(("total", ["Total", "", "", f"{una.tokens:,}", usd(una.cost), usd(idle.cost),
                           usd(una.cost + idle.cost)]))
    return head + _table("unallocated", f"Unallocated and idle per deployment, {r.title}",
                         ["Deployment", "Model", "Type", "Unallocated tokens", "Unallocated", "Idle", "Together"],
                         rows, (3, 4, 5, 6)) + _rest(len(shown), len(lines), "deployments", "deployment") + "</section>"


def _incidents(r: MonthlyReport) -> str:
    storm_rule, filter_rule = r.rules.describe()
    scope = "" if r.team is None else " (on the deployments the team used)"
    parts = [f'<section id="incidents"><h2>Notable incidents{escape(scope)}</h2><h3>429 storms</h3>'
             f'<p class="note">{escape(storm_rule)}</p>']
    if r.throttling:
        worst = set(sorted(r.throttling, key=lambda e: (-e.throttled, e.start))[:DETAIL_ROWS])
        rows = [("", [escape(f"{e.account}/{e.deployment}"), f"{e.start:%Y-%m-%d %H:%M}", f"{e.end:%Y-%m-%d %H:%M}",
                      str(e.hours), f"{e.requests:,}", f"{e.throttled:,}", f"{e.peak_percent} %"])
                for e in r.throttling if e in worst]
        parts.append(_table("throttling", "429 storms (UTC; the end is the end of the last hour)",
                            ["Deployment", "Start", "End", "Hours", "Requests", "429s", "Worst hour"], rows,
                            (3, 4, 5, 6)))
        parts.append(_rest(len(worst), len(r.throttling), "storms (by 429s)", "throttling"))
    else:
        parts.append('<p class="note">None this month.</p>')
    parts.append(f'<h3>Content-filter spikes</h3><p class="note">{escape(filter_rule)}</p>')
    if r.content_filter:
        most = set(sorted(r.content_filter, key=lambda x: (-x.blocks, x.day))[:DETAIL_ROWS])
        rows = [("", [escape(f"{x.account}/{x.deployment}"), f"{x.day:%Y-%m-%d}", f"{x.blocks:,}", f"{x.median:,}"])
                for x in r.content_filter if x in most]
        parts.append(_table("content-filter", "Days of content-filter blocks (RAIRejectedRequests) that stand out",
                            ["Deployment", "Day", "Blocks", "Median day"], rows, (2, 3)))
        parts.append(_rest(len(most), len(r.content_filter), "spikes (by blocks)", "content_filter"))
    else:
        parts.append('<p class="note">None this month.</p>')
    return "".join(parts) + "</section>"


def _deployment_row(d: DeploymentLine) -> tuple[str, list[str]]:
    prices = escape(", ".join(d.price_ids)).replace("/", "/<wbr>") or "none"
    return ("", [_deployment_cell(d), escape(d.model), escape(d.deployment_type or "?"), f"{d.current.requests:,}",
                 f"{d.current.tokens:,}", usd(d.current.cost), usd(d.previous.cost),
                 f'<span class="small">{prices}</span>' + (" <strong>unpriced</strong>" if d.unpriced else "")])


def _deployments(r: MonthlyReport) -> str:
    # Deployments come sorted by cost; unpriced ones (counted at $0) are always shown.
    shown = [d for i, d in enumerate(r.deployments) if i < DETAIL_ROWS or d.unpriced]
    rest = [d for d in r.deployments if d not in shown]
    rows = [_deployment_row(d) for d in shown]
    if rest:
        now, before = sum((d.current for d in rest), Usage()), sum((d.previous for d in rest), Usage())
        rows.append(("", [f"{len(rest)} other deployments", "", "", f"{now.requests:,}", f"{now.tokens:,}",
                          usd(now.cost), usd(before.cost), ""]))
    rows.append(("total", ["Total", "", "", f"{r.total.requests:,}", f"{r.total.tokens:,}", usd(r.total.cost),
                           usd(r.previous_total.cost), ""]))
    return ('<section id="by-deployment"><h2>Per deployment, with the prices used</h2>'
            + _table("deployments", f"Deployments by cost, {r.title}, and the price book rows that priced them",
                     ["Deployment", "Model", "Type", "Requests", "Tokens", f"Cost {r.month.start:%b %Y}",
                      f"Cost {r.previous_month.start:%b %Y}", "Prices"], rows, (3, 4, 5, 6))
            + _rest(len(shown), len(r.deployments), "deployments", "deployment") + "</section>")


def render_html(report: MonthlyReport) -> str:
    """The report as one HTML document with everything inline."""
    r = report
    teams = r.teams
    body = "".join([
        _header(r), _summary(r), _by(r, "team", teams), _by(r, "model", r.models), _movers(r), _daily(r),
        _budgets(r), _nobody(r), _incidents(r), _deployments(r), section_html(r),
        f"<footer><p>{escape(footer_sentence(r.basis))} Tokens and requests are Azure's own counts (logs and "
        "platform metrics); each team's share follows the attribution rules (direct: its identity or APIM "
        "subscription; owner: the deployment's owner; estimated: a shared deployment split by requests or bytes). "
        "Amounts are rounded to the cent one by one; the CSV has them exact. Each team keeps one colour, the one "
        "the dashboards give it.</p>"
        "<p>aoai-observatory monthly report.</p></footer>",
    ])
    title = escape(f"Azure OpenAI usage and cost, {r.title}, {r.scope}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{title}</title><style>{CSS}</style></head>'
            f"<body><main>{body}</main></body></html>\n")


# -- CSV -----------------------------------------------------------------------------------------------------------


def _usage_values(usage: Usage) -> list[tuple[str, str]]:
    return [("requests", str(usage.requests)), ("prompt_tokens", str(usage.prompt_tokens)),
            ("cached_tokens", str(usage.cached_tokens)), ("completion_tokens", str(usage.completion_tokens)),
            ("cost_usd", f"{usage.cost:.6f}")]


def csv_rows(report: MonthlyReport) -> list[dict[str, str]]:
    """The report's numbers as long rows (see the module docstring)."""
    r = report
    this, before = r.month.label, r.previous_month.label
    base = {c: "" for c in CSV_COLUMNS} | {"month": this, "scope": "organisation" if r.team is None
                                           else f"team:{r.team}"}
    rows: list[dict[str, str]] = []

    def add(section: str, period: str, values: Iterable[tuple[str, str]], **keys: str) -> None:
        for metric, value in values:
            rows.append(base | keys | {"section": section, "period": period, "metric": metric, "value": value})

    for period, usage in ((this, r.total), (before, r.previous_total)):
        add("total", period, _usage_values(usage))
    for line in r.teams:
        add("team", this, _usage_values(line.current), team=line.name)
        add("team", before, _usage_values(line.previous), team=line.name)
        for method, micro in line.methods:
            add("team_method", this, [("cost_usd", f"{_micro(micro):.6f}")], team=line.name, method=method)
    for line in r.models:
        add("model", this, _usage_values(line.current), model=line.name)
        add("model", before, _usage_values(line.previous), model=line.name)
    for d in r.deployments:
        keys = {"model": d.model, "deployment_type": d.deployment_type, "account": d.account,
                "deployment": d.deployment}
        add("deployment", this, [*_usage_values(d.current), ("unallocated_cost_usd", f"{d.unallocated.cost:.6f}"),
                                 ("idle_cost_usd", f"{d.idle.cost:.6f}"), ("price_ids", ";".join(d.price_ids)),
                                 ("unpriced", str(int(d.unpriced)))], **keys)
        add("deployment", before, _usage_values(d.previous), **keys)
    for kind, movers in (("team", r.team_movers), ("model", r.model_movers)):
        for line in movers:
            change = "new" if line.percent is None else str(line.percent)
            add(f"mover_{kind}", this, [("previous_cost_usd", f"{line.previous.cost:.6f}"),
                                        ("cost_usd", f"{line.current.cost:.6f}"), ("change_usd", f"{line.change:.6f}"),
                                        ("change_percent", change)], **{kind: line.name})
    for name, values in r.daily:
        for day, micro in enumerate(values):
            add("daily", f"{r.month.start.replace(day=day + 1):%Y-%m-%d}", [("cost_usd", f"{_micro(micro):.6f}")],
                team=name)
    for b in r.budgets:
        keys = {"team": b.budget.name} if b.budget.scope == "team" else {"account": b.budget.account,
                                                                          "deployment": b.budget.name}
        add("budget", this, [("budget_id", b.budget.id), ("monthly_usd", f"{b.budget.monthly_usd}"),
                             ("spent_usd", f"{b.spent:.6f}"), ("percent_used", str(b.percent_used)),
                             ("forecast_usd", "" if b.forecast is None else str(b.forecast)),
                             ("thresholds_passed", ";".join(str(t) for t in b.crossed))], **keys)
    for e in r.throttling:
        add("throttling", e.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            [("end", e.end.strftime("%Y-%m-%dT%H:%M:%SZ")), ("hours", str(e.hours)), ("requests", str(e.requests)),
             ("requests_429", str(e.throttled)), ("peak_429_percent", str(e.peak_percent))],
            account=e.account, deployment=e.deployment)
    for s in r.content_filter:
        add("content_filter", f"{s.day:%Y-%m-%d}", [("blocks", str(s.blocks)), ("month_median", str(s.median))],
            account=s.account, deployment=s.deployment)
    for account, deployment in r.unpriced:
        add("unpriced", this, [("unpriced", "1")], account=account, deployment=deployment)
    for section, period, keys, bill_values in csv_values(r):
        add(section, period, bill_values, **keys)
    return rows


def render_csv(report: MonthlyReport) -> str:
    """The report's numbers as CSV (long format: see the module docstring)."""
    out = io.StringIO(newline="")
    writer = SafeDictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(report))
    return out.getvalue()
