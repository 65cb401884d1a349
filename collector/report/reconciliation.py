"""Pure: the report's account of the bill: how much of the month's cost is the imported bill allocated to teams and
how much the estimate (the header's words, two tiles, a chart and a table), and the reconciliation of the estimate
with the bill (summary, gaps by cause, suggested price-book overrides, what it cannot explain), in HTML and as CSV
values.

The reconciliation is per day, account and meter (`collector.billing.reconciliation`), so only an organisation's
report has it; a team's report shows its own billed and estimated split and says where the reconciliation is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

from collector.billing.meters import describe
from collector.billing.reconciliation import Cause, Gap, Reconciliation, Tolerance
from collector.cost.attribution import BILLED, ESTIMATE
from collector.report.charts import BILLED_COLOUR, ESTIMATE_COLOUR, stacked_days
from collector.report.data import Basis, MonthlyReport
from collector.report.formatting import day_ranges, exact, micro, share, signed_usd, table, usd

ESTIMATE_SENTENCE = "Estimate from telemetry and the price book, not the invoice."
IMPORT_HINT = "aoai-obs bill import SOURCE"
#: Gaps shown per cause in the HTML, the largest first; the CSV has every one.
GAP_ROWS = 8
CAUSE_MEANING = {
    Cause.EXPORT: "the export has no line at all on a day its period covers",
    Cause.QUANTITY: "only one side has the usage, or the quantities differ",
    Cause.PRICE_AND_QUANTITY: "the quantities and the unit prices both differ",
    Cause.PRICE: "the same quantity at another unit price than the book's",
    Cause.NONE: "within tolerance",
}
GAP_HEADER = ("Day", "Account", "Meter", "Estimated qty", "Billed qty", "Estimate", "Billed", "Gap", "Gap %")


# -- words -------------------------------------------------------------------------------------------------------


def _days(days: Sequence[int]) -> str:
    return f"{len(days)} day{'' if len(days) == 1 else 's'}"


def basis_text(r: MonthlyReport) -> str:
    """What the figures are, true to the data: all estimate, all billed, or how much of each and on which days."""
    b = r.basis
    if b.kind == ESTIMATE:
        return (f"{ESTIMATE_SENTENCE} Cost comes from the tokens Azure reports and the prices in the price book; "
                "the invoice is the authority.")
    billed_days = day_ranges(b.billed_days, r.month.start)
    if b.kind == BILLED:
        return (f"The Azure bill, allocated to teams: all {usd(micro(b.billed_micro_usd))} is the imported bill "
                f"(Cost Management exports) of {_days(b.billed_days)} ({billed_days}), each account's billed meters "
                "split across its deployments and teams by their tokens (provisioned capacity by its used and idle "
                "share). Tokens and requests are telemetry's counts.")
    whole = b.billed_micro_usd + b.estimate_micro_usd
    both = set(b.billed_days) & set(b.estimate_days)
    return (f"Partly billed: {usd(micro(b.billed_micro_usd))} ({share(b.billed_micro_usd, whole)}) is the imported "
            f"Azure bill allocated to teams, on {_days(b.billed_days)} ({billed_days}); "
            f"{usd(micro(b.estimate_micro_usd))} ({share(b.estimate_micro_usd, whole)}) is an estimate from telemetry "
            f"and the price book, on {_days(b.estimate_days)} ({day_ranges(b.estimate_days, r.month.start)}), "
            "where no imported bill covers an account's day."
            + (f" On {day_ranges(sorted(both), r.month.start)} the bill covers some accounts and not others: those "
               "days have both." if both else ""))


def basis_phrase(basis: Basis) -> str:
    """A few words for a summary line: what the total is."""
    if basis.kind == ESTIMATE:
        return "estimate from telemetry and the price book, not the invoice"
    if basis.kind == BILLED:
        return "the imported Azure bill, allocated to teams"
    return (f"{usd(micro(basis.billed_micro_usd))} from the imported Azure bill, "
            f"{usd(micro(basis.estimate_micro_usd))} estimated from telemetry and the price book")


def footer_sentence(basis: Basis) -> str:
    if basis.kind == ESTIMATE:
        return ESTIMATE_SENTENCE
    if basis.kind == BILLED:
        return "Cost is the imported Azure bill, allocated to teams."
    return ("Cost is the imported Azure bill, allocated to teams, where a bill covers an account's day, and an "
            "estimate from telemetry and the price book elsewhere.")


# -- tiles -------------------------------------------------------------------------------------------------------


def basis_tile(r: MonthlyReport) -> tuple[str, str, str]:
    """(key, value, sub) of the header's basis tile."""
    b = r.basis
    whole = b.billed_micro_usd + b.estimate_micro_usd
    detail = (f"{usd(micro(b.billed_micro_usd))} billed ({_days(b.billed_days)}), "
              f"{usd(micro(b.estimate_micro_usd))} estimated ({_days(b.estimate_days)})")
    if b.kind == ESTIMATE:
        return "Basis", "Estimate", "telemetry and the price book: no imported bill behind these figures"
    if b.kind == BILLED:
        return "Basis", "Billed", detail
    return "Basis", f"{share(b.billed_micro_usd, whole)} billed", detail


def bill_tile(r: MonthlyReport) -> tuple[str, str, str]:
    """(key, value, sub) of the organisation's bill-against-estimate tile."""
    if r.bill is None:
        return "Bill vs estimate", "No bill", f"none imported for the month: {IMPORT_HINT}"
    if r.bill.result is None:
        return "Bill vs estimate", "Not reconciled", "see Bill and estimate"
    s = r.bill.result.summary
    net = "" if s.net_percent is None else f" ({s.net_percent:+} %)"
    gross = "" if s.gross_percent is None else f" ({s.gross_percent} %)"
    verdict = "over" if s.exceeded else "within"
    return ("Bill vs estimate", signed_usd(s.net_gap),
            f"billed − estimate{net}; gross gap {usd(s.gross_gap)}{gross}, {verdict} the "
            f"{_threshold(r.bill.threshold)} threshold")


def _threshold(fraction: Decimal) -> str:
    return f"{(fraction * 100).normalize():f} %"


# -- the section -------------------------------------------------------------------------------------------------


def _basis_part(r: MonthlyReport) -> str:
    b = r.basis
    title = f"Cost per day by basis, {r.title}"
    chart = stacked_days("basis-days", title, "One column per day of the month: the imported bill allocated to "
                         "teams (dark) and the estimate (light) stacked; the legend gives each total.",
                         [("billed", BILLED_COLOUR, [float(micro(v or 0)) for v in b.billed]),
                          ("estimate", ESTIMATE_COLOUR, [float(micro(v or 0)) for v in b.estimate])],
                         "day of the month; cost per day (USD)")
    whole = b.billed_micro_usd + b.estimate_micro_usd
    rows = [("", ["Billed (the bill allocated to teams)", usd(micro(b.billed_micro_usd)),
                  share(b.billed_micro_usd, whole), str(len(b.billed_days)),
                  escape(day_ranges(b.billed_days, r.month.start))]),
            ("", ["Estimate (telemetry and the price book)", usd(micro(b.estimate_micro_usd)),
                  share(b.estimate_micro_usd, whole), str(len(b.estimate_days)),
                  escape(day_ranges(b.estimate_days, r.month.start))]),
            ("total", ["Total", usd(micro(whole)), share(whole, whole), "", ""])]
    basis = table("basis", f"The month's cost by basis{'' if r.team is None else f', team {r.team}'}",
                  ["Basis", "Cost", "Share", "Days", "Which days"], rows, (1, 2, 3))
    return f'<div class="pair"><figure>{chart}</figure><div>{basis}</div></div>'


@dataclass(frozen=True)
class _CauseTotal:
    cause: Cause
    gaps: tuple[Gap, ...]

    @property
    def net(self) -> Decimal:
        return sum((g.gap for g in self.gaps), Decimal(0))

    @property
    def gross(self) -> Decimal:
        return sum((abs(g.gap) for g in self.gaps), Decimal(0))


def by_cause(result: Reconciliation) -> list[_CauseTotal]:
    """Each cause with its gaps, the largest first, the causes by their absolute gaps (the largest first), the
    cells within tolerance last."""
    found = []
    for cause in Cause:
        gaps = sorted((g for g in result.gaps if g.cause is cause),
                      key=lambda g: (-abs(g.gap), g.day, g.account, describe(g.meter)))
        if gaps:
            found.append(_CauseTotal(cause, tuple(gaps)))
    return sorted(found, key=lambda c: (c.cause is Cause.NONE, -c.gross, c.cause.value))


def _percent(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value:+} %"


def _quantity(value: Decimal) -> str:
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.4f}"


def _summary(r: MonthlyReport, result: Reconciliation) -> str:
    s = result.summary
    threshold = r.bill.threshold if r.bill is not None else s.threshold
    rows = [("", ["Estimate (telemetry and the price book)", usd(s.estimated_cost), ""]),
            ("", ["Billed", usd(s.billed_cost), ""]),
            ("", ["Net gap (billed − estimate)", signed_usd(s.net_gap), _percent(s.net_percent)]),
            ("", ["Gross gap (each account and meter's gap over the month, absolute, added up)", usd(s.gross_gap),
                  "n/a" if s.gross_percent is None else f"{s.gross_percent} %"]),
            ("total" if s.exceeded else "", [f"Threshold: {_threshold(threshold)} of the estimate (gross gap)", "",
                                             "exceeded" if s.exceeded else "within"])]
    if s.estimate_outside_bill:
        rows.append(("", ["Not reconciled: estimate on days no export covers", usd(s.estimate_outside_bill), ""]))
    return table("reconciliation", "The estimate and the bill over the days the bill covers",
                 ["", "Amount", "Of the estimate"], rows, (1, 2))


def _causes(causes: Sequence[_CauseTotal]) -> str:
    rows = [("nobody" if c.cause is Cause.NONE else "",
             [escape(c.cause.value), escape(CAUSE_MEANING[c.cause]), f"{len(c.gaps):,}", signed_usd(c.net),
              usd(c.gross)]) for c in causes]
    every = [g for c in causes for g in c.gaps]
    rows.append(("total", ["Total", "", f"{len(every):,}", signed_usd(sum((g.gap for g in every), Decimal(0))),
                           usd(sum((abs(g.gap) for g in every), Decimal(0)))]))
    return table("reconciliation-causes", "Cells (day, account, meter) by cause, the largest gaps first",
                 ["Cause", "What it means", "Cells", "Net gap", "Absolute gaps"], rows, (2, 3, 4))


def _gap_cells(g: Gap) -> list[str]:
    return [g.day.isoformat(), escape(g.account), escape(describe(g.meter)), _quantity(g.estimated_quantity),
            _quantity(g.billed_quantity), usd(g.estimated_cost), usd(g.billed_cost), signed_usd(g.gap),
            _percent(g.gap_percent)]


def _gaps(c: _CauseTotal) -> str:
    right = {3, 4, 5, 6, 7, 8}
    head = "".join(f'<th scope="col"{" class=n" if i in right else ""}>{escape(h)}</th>'
                   for i, h in enumerate(GAP_HEADER))
    body = []
    for g in c.gaps[:GAP_ROWS]:
        cells = "".join(f'<td{" class=n" if i in right else ""}>{v}</td>' for i, v in enumerate(_gap_cells(g)))
        why = f"{', '.join(r.value for r in g.reasons)}: {g.explanation}"
        body.append(f'<tr class="gap">{cells}</tr><tr class="why"><td colspan="{len(GAP_HEADER)}">'
                    f"{escape(why)}</td></tr>")
    rest = c.gaps[GAP_ROWS:]
    if rest:
        body.append(f'<tr class="rest"><td colspan="{len(GAP_HEADER)}">and {len(rest):,} more {escape(c.cause.value)} '
                    f"gap{'' if len(rest) == 1 else 's'}, {signed_usd(sum((g.gap for g in rest), Decimal(0)))} "
                    "together: the CSV has every one (section reconciliation_gap)</td></tr>")
    caption = (f"{c.cause.value} gaps: {len(c.gaps):,} cell{'' if len(c.gaps) == 1 else 's'}, "
               f"{signed_usd(c.net)} net, the largest first")
    return (f'<table id="gaps-{c.cause.value.replace("+", "-")}" class="gaps"><caption>{escape(caption)}</caption>'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


def _overrides(result: Reconciliation, period: str) -> str:
    if not result.overrides:
        return ('<h3>Suggested price-book overrides</h3><p class="note">None: no price gap is consistent enough '
                "over the month for an override to close it.</p>")
    items = "".join(f"<li>{escape(o.describe())}<br><code>{escape(o.yaml(f'reconciliation with the bill, {period}'))}"
                    "</code></li>" for o in result.overrides)
    return ('<h3>Suggested price-book overrides</h3><p class="note">Each would close a price gap seen on most days '
            "of the month (a negotiated discount, say): add it under <code>overrides:</code> in the price book, "
            f'then re-run the report.</p><ul id="overrides">{items}</ul>')


def _limits(result: Reconciliation) -> str:
    tol = Tolerance()
    notes = [
        "Azure bills an account, never a deployment or a team: a gap is known per account and meter, not per team. "
        "The teams' billed figures are the account's bill split by their tokens.",
        "A quantity gap says which side lacks the usage, not which requests: tokens the logs missed and usage "
        "billed to another account or meter look alike.",
        "A price gap on a single day (a correction or a credit?) is flagged, not explained. Only the export's Azure "
        "OpenAI lines are imported: the invoice's other charges are not compared.",
        "Usage near midnight can be billed on the next day: such shifts cancel in the gross gap, which is taken "
        "per account and meter over the month, though the days still show them.",
        f"Cells within {_threshold(tol.relative)} (or {usd(tol.absolute)}) of the estimate count as agreeing. "
        "A daily export re-runs the previous month during the first five days of the "
        "next: a bill imported before then can still change.",
    ]
    if result.summary.estimate_outside_bill:
        notes.append(f"{usd(result.summary.estimate_outside_bill)} of the estimate falls on days no export covers "
                     "yet: it is not reconciled.")
    items = "".join(f"<li>{escape(n)}</li>" for n in notes)
    return f'<h3>What the reconciliation cannot explain</h3><ul class="note" id="limits">{items}</ul>'


def section_html(r: MonthlyReport) -> str:
    """The bill-and-estimate section of the report."""
    head = '<section id="bill"><h2>Bill and estimate</h2>'
    parts = [head]
    if r.basis.kind != ESTIMATE:
        parts.append(_basis_part(r))
    if r.team is not None:
        if r.basis.kind == ESTIMATE:
            parts.append(f'<p class="note">No imported bill covers the accounts and days team {escape(r.team)} used: '
                         f"its figures are estimates from telemetry and the price book.</p>")
        parts.append('<p class="note" id="team-reconciliation">The reconciliation with the bill is per account and '
                     "meter (Azure bills accounts, not teams): it is in the organisation's report.</p>")
        return "".join(parts) + "</section>"
    if r.bill is None:
        parts.append(f'<p class="note" id="no-bill">No imported bill covers {escape(r.title)}: the figures are '
                     "estimates from telemetry and the price book. To compare them with the invoice, import the Cost "
                     f"Management export (<code>{IMPORT_HINT}</code>) and run the report again.</p>")
        return "".join(parts) + "</section>"
    if r.bill.result is None:
        parts.append(f'<p class="warn" id="not-reconciled">An imported bill covers part of {escape(r.title)}, but '
                     f"the estimate could not be reconciled with it: {escape(r.bill.problem)}</p>")
        return "".join(parts) + "</section>"
    result = r.bill.result
    s = result.summary
    period = f"{s.first_day:%Y-%m-%d}..{s.last_day:%Y-%m-%d}" if s.first_day and s.last_day else r.month.label
    causes = by_cause(result)
    parts.append(f"<h3>Reconciliation with the bill, {escape(period)}</h3>"
                 '<p class="note">The estimate (telemetry priced by the book) beside the imported bill, per day, '
                 "account and meter (model, version, deployment type, token kind or PTU-hours), each gap with its "
                 "likely cause.</p>")
    parts.append(_summary(r, result))
    parts.append(_causes(causes))
    gapped = [c for c in causes if c.cause is not Cause.NONE]
    if gapped:
        parts.append(f'<h3>Gaps by cause</h3><p class="note">Up to {GAP_ROWS} per cause, the largest first, each with '
                     "its explanation.</p>")
        parts.extend(_gaps(c) for c in gapped)
    else:
        parts.append('<p class="note">Every cell agrees within tolerance.</p>')
    parts.append(_overrides(result, period))
    parts.append(_limits(result))
    return "".join(parts) + "</section>"


# -- CSV ---------------------------------------------------------------------------------------------------------

#: (section, period, key columns, [(metric, value)])
CsvValues = tuple[str, str, dict[str, str], list[tuple[str, str]]]


def _dates(r: MonthlyReport, days: Sequence[int]) -> str:
    return ";".join(f"{r.month.start.replace(day=d):%Y-%m-%d}" for d in days)


def _plain(value: Decimal) -> str:
    return f"{value.normalize():f}" if value else "0"


def csv_values(r: MonthlyReport) -> list[CsvValues]:
    """The basis split (the scope's and each team's) and the reconciliation (see `render`'s module docstring)."""
    this, b = r.month.label, r.basis
    out: list[CsvValues] = [("basis", this, {}, [
        ("billed_cost_usd", exact(micro(b.billed_micro_usd))),
        ("estimate_cost_usd", exact(micro(b.estimate_micro_usd))),
        ("billed_days", str(len(b.billed_days))), ("estimate_days", str(len(b.estimate_days))),
        ("billed_dates", _dates(r, b.billed_days)), ("estimate_dates", _dates(r, b.estimate_days))])]
    for line in r.teams:
        if line.bases:
            bases = dict(line.bases)
            out.append(("team_basis", this, {"team": line.name}, [
                ("billed_cost_usd", exact(micro(bases.get(BILLED, 0)))),
                ("estimate_cost_usd", exact(micro(bases.get(ESTIMATE, 0))))]))
    if r.team is not None:
        return [*out, ("reconciliation", this, {}, [("status", "organisation_report")])]
    if r.bill is None:
        return [*out, ("reconciliation", this, {}, [("status", "no_bill")])]
    if r.bill.result is None:
        return [*out, ("reconciliation", this, {}, [("status", "not_reconciled"), ("problem", r.bill.problem)])]
    result = r.bill.result
    s = result.summary
    out.append(("reconciliation", this, {}, [
        ("status", "reconciled"), ("first_day", s.first_day.isoformat() if s.first_day else ""),
        ("last_day", s.last_day.isoformat() if s.last_day else ""),
        ("estimated_cost_usd", exact(s.estimated_cost)), ("billed_cost_usd", exact(s.billed_cost)),
        ("net_gap_usd", exact(s.net_gap)), ("net_gap_percent", "" if s.net_percent is None else str(s.net_percent)),
        ("gross_gap_usd", exact(s.gross_gap)),
        ("gross_gap_percent", "" if s.gross_percent is None else str(s.gross_percent)),
        ("threshold_percent", _plain(r.bill.threshold * 100)), ("exceeded", str(int(s.exceeded))),
        ("estimate_outside_bill_usd", exact(s.estimate_outside_bill))]))
    for c in by_cause(result):
        out.append(("reconciliation_cause", this, {"cause": c.cause.value}, [
            ("cells", str(len(c.gaps))), ("net_gap_usd", exact(c.net)), ("gross_gap_usd", exact(c.gross))]))
    for g in result.gaps:
        keys = {"account": g.account, "model": g.meter.model, "deployment_type": g.meter.deployment_type,
                "meter": describe(g.meter), "cause": g.cause.value}
        out.append(("reconciliation_gap", g.day.isoformat(), keys, [
            ("estimated_quantity", _plain(g.estimated_quantity)), ("billed_quantity", _plain(g.billed_quantity)),
            ("estimated_cost_usd", exact(g.estimated_cost)), ("billed_cost_usd", exact(g.billed_cost)),
            ("gap_usd", exact(g.gap)), ("gap_percent", "" if g.gap_percent is None else str(g.gap_percent)),
            ("reasons", ";".join(reason.value for reason in g.reasons)), ("explanation", g.explanation),
            ("suggested_override", g.override.describe() if g.override is not None else "")]))
    period = f"{s.first_day}..{s.last_day}"
    for o in result.overrides:
        keys = {"account": o.name, "model": o.model or "", "deployment_type": o.deployment_type}
        out.append(("reconciliation_override", this, keys, [
            ("scope", o.scope), ("override", o.describe()),
            ("price_book_entry", o.yaml(f"reconciliation with the bill, {period}"))]))
    return out
