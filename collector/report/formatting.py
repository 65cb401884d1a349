"""Pure: how the report writes amounts, percents, day ranges and tables (HTML), shared by its sections."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from html import escape

from collector.cost.attribution import MICRO_USD

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")


def usd(amount: Decimal) -> str:
    """$1,234.56 (to the cent, half to even); -$1.20 below zero."""
    cents = amount.quantize(CENT, rounding=ROUND_HALF_EVEN)
    return f"-${-cents:,.2f}" if cents < 0 else f"${cents:,.2f}"


def signed_usd(amount: Decimal) -> str:
    """+$1.20, -$1.20, or $0.00 when it rounds to no change."""
    shown = usd(amount)
    return shown if shown.startswith("-") or shown == "$0.00" else f"+{shown}"


def micro(micro_usd: int) -> Decimal:
    return Decimal(micro_usd) * MICRO_USD


def exact(amount: Decimal) -> str:
    """An amount for the CSV: to the micro-dollar (half to even), as the report's other amounts."""
    return f"{amount.quantize(MICRO, rounding=ROUND_HALF_EVEN):f}"


def share(part: int, whole: int) -> str:
    """`part` as a percent of `whole`, to 0.1 (`–` when `whole` is 0)."""
    if not whole:
        return "–"
    return f"{(Decimal(part) * 100 / Decimal(whole)).quantize(Decimal('0.1'), rounding=ROUND_HALF_EVEN)} %"


def day_ranges(days: Sequence[int], month_start: datetime) -> str:
    """Days of a month as runs: `2–6 March`, `1, 3–5 and 9 March`; `no day` when there is none."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    if not runs:
        return "no day"
    words = [str(run[0]) if len(run) == 1 else f"{run[0]}\u2013{run[-1]}" for run in runs]
    listed = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
    return f"{listed} {month_start:%B}"


def table(table_id: str, caption: str, header: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]],
          numeric: Iterable[int]) -> str:
    """A table; `rows` are (row class, cell texts, already escaped)."""
    right = set(numeric)
    head = "".join(f'<th scope="col"{" class=n" if i in right else ""}>{escape(h)}</th>'
                   for i, h in enumerate(header))
    body = []
    for css, cells in rows:
        tds = "".join(f'<td{" class=n" if i in right else ""}>{c}</td>' for i, c in enumerate(cells))
        body.append(f'<tr class="{css}">{tds}</tr>' if css else f"<tr>{tds}</tr>")
    return (f'<table id="{table_id}"><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')
