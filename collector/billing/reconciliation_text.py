"""Pure: a reconciliation as plain text for the terminal: gaps grouped by cause, biggest first, with totals."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from collector.billing.meters import describe
from collector.billing.reconciliation import Cause, Gap, Reconciliation

#: Causes in the order they are shown: the ones that make other figures meaningless first.
CAUSE_ORDER = (Cause.EXPORT, Cause.QUANTITY, Cause.PRICE_AND_QUANTITY, Cause.PRICE)
_HEADER = ("day", "account", "meter", "est. qty", "billed qty", "estimate", "billed", "gap", "gap %")
_RIGHT = {3, 4, 5, 6, 7, 8}


def _money(value: Decimal) -> str:
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"


def _signed(value: Decimal) -> str:
    return f"{'-' if value < 0 else '+'}${abs(value):,.2f}"


def _quantity(value: Decimal) -> str:
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.4f}"


def _percent(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}%"


def _row(g: Gap) -> tuple[str, ...]:
    return (g.day.isoformat(), g.account, describe(g.meter), _quantity(g.estimated_quantity),
            _quantity(g.billed_quantity), _money(g.estimated_cost), _money(g.billed_cost), _signed(g.gap),
            _percent(g.gap_percent))


def _table(rows: Sequence[tuple[str, ...]], notes: Sequence[str]) -> list[str]:
    widths = [max(len(r[i]) for r in (_HEADER, *rows)) for i in range(len(_HEADER))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in _RIGHT else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    out = ["  " + line(_HEADER)]
    for cells, note in zip(rows, notes, strict=True):
        out.append("  " + line(cells))
        out.append(f"      {note}")
    return out


def render_text(result: Reconciliation, *, max_rows: int | None = None) -> str:
    """The gaps that have a cause, one table per cause (export, quantity, price+quantity, price), largest absolute
    gap first, each with its explanation and the group's total; then the month's totals, the threshold verdict
    and the price-book overrides that would close the price gaps. `max_rows` cuts each table, saying how many
    rows were left out."""
    s = result.summary
    period = f"{s.first_day.isoformat()}..{s.last_day.isoformat()}" if s.first_day and s.last_day else "no period"
    out = [f"Reconciliation of the estimate with the bill, {period}", ""]
    for cause in CAUSE_ORDER:
        gaps = sorted((g for g in result.gaps if g.cause is cause),
                      key=lambda g: (-abs(g.gap), g.day, g.account, describe(g.meter)))
        if not gaps:
            continue
        total = sum((g.gap for g in gaps), Decimal(0))
        out.append(f"{cause.value.upper()} gaps: {len(gaps)} cell(s), {_signed(total)}")
        shown = gaps if max_rows is None else gaps[:max_rows]
        out.extend(_table([_row(g) for g in shown],
                          [f"{', '.join(r.value for r in g.reasons)}: {g.explanation}" for g in shown]))
        if len(shown) < len(gaps):
            out.append(f"  ... and {len(gaps) - len(shown)} more")
        out.append("")
    matched = s.by_cause.get(Cause.NONE, (0, Decimal(0)))
    out.append(f"Within tolerance: {matched[0]} cell(s), {_signed(matched[1])}")
    out.append(f"Estimate {_money(s.estimated_cost)}, billed {_money(s.billed_cost)}: net gap "
               f"{_signed(s.net_gap)} ({_percent(s.net_percent)}); gross gap {_money(s.gross_gap)} "
               f"({'n/a' if s.gross_percent is None else f'{s.gross_percent:.2f}%'} of the estimate)")
    if s.estimate_outside_bill:
        out.append(f"Not reconciled: {_money(s.estimate_outside_bill)} of estimate on days no export covers yet")
    verdict = "EXCEEDED" if s.exceeded else "within"
    out.append(f"Threshold {s.threshold * 100:.2f}% of the estimate (gross gap): {verdict}")
    if result.overrides:
        out.append("")
        out.append("Price-book overrides that would close the price gaps:")
        for o in result.overrides:
            out.append(f"  {o.describe()}")
            out.append(f"    {o.yaml(f'reconciliation with the bill, {period}')}")
    return "\n".join(out) + "\n"
