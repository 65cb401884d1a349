"""Pure: the monthly report's charts as inline SVG (no script, no external file): bars, small multiples, budgets,
stacked days.

Every chart has a `<title>` and a `<desc>` (what it shows, for screen readers), labelled axes, and its values
written on it; the report puts a table of the same values beside each one.

Colours, as the dashboards give them (`dashboards/colours.py`), so a team looks the same in both:

- teams (`team_colours`): the teams the whole daily cost table knows, sorted, take the palette's 14 slots in that
  order (Tableau's ten without its grey, and five of its twenty), so no two of the first 14 share a colour; teams
  beyond them take a colour of `EXTRA_PALETTE` by the SHA-1 of their name; `idle` and `unallocated` keep fixed
  greys that no team gets;
- models and anything else (`colour_of`): the SHA-1 of the name modulo the palette (not `hash()`: Python salts it
  per process), so two models can share a colour.

Every bar and panel is labelled with its name, so colour is never the only cue.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from html import escape

PALETTE: tuple[str, ...] = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    "#1f4e79", "#8cd17d", "#b6992d", "#499894", "#d37295",
)
EXTRA_PALETTE: tuple[str, ...] = (
    "#a0cbe8", "#ffbe7d", "#ff9d9a", "#86bcb6", "#f1ce63", "#d4a6c8", "#fabfd2", "#d7b5a6", "#6b9ac4",
    "#c85200", "#7e9c3a", "#8f6bb3", "#d95f8a", "#3e9e9e",
)
FIXED: dict[str, str] = {"idle": "#c9ced6", "unallocated": "#6e7781"}
OTHERS = "#b8bfc8"  # what a chart folds together beyond its largest entries
BILLED_COLOUR, ESTIMATE_COLOUR = "#1f4e79", "#a0cbe8"  # the bill allocated to teams; the estimate
PREVIOUS = "#bcbcbc"
INK, MUTED, GRID = "#222222", "#666666", "#e6e6e6"
FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif\""
WIDTH = 640

Format = Callable[[float], str]


def _digest(name: str) -> int:
    return int.from_bytes(hashlib.sha1(name.encode("utf-8"), usedforsecurity=False).digest()[:4], "big")


def colour_of(name: str) -> str:
    """The palette colour of a model (or any name) by its SHA-1."""
    return PALETTE[_digest(name) % len(PALETTE)]


def team_colours(teams: Iterable[str]) -> dict[str, str]:
    """A colour per team of `teams` (every team the daily cost table knows, so that a month or a filter keeps
    them): the first 14 in sorted order without collisions, the rest by SHA-1 from `EXTRA_PALETTE`, and the
    fixed greys of `idle` and `unallocated`."""
    named = sorted({t for t in teams if t not in FIXED})
    return {**{team: PALETTE[i] if i < len(PALETTE) else EXTRA_PALETTE[_digest(team) % len(EXTRA_PALETTE)]
               for i, team in enumerate(named)}, **FIXED}


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering [low, high], 0 included."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low <= 0:
        return [0.0, 1.0]
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [i * step for i in range(first, last + 1)]


def compact_usd(value: float) -> str:
    """Axis labels: $0, $250, $1.5k, $2.4M."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{sign}${value / size:,.{0 if value % size == 0 else 1}f}{suffix}"
    return f"{sign}${value:,.{0 if value == int(value) else 2}f}"


def percent_label(value: float) -> str:
    return f"{value:,.0f} %"


def clip(label: str, chars: int) -> str:
    """A label cut to `chars` characters, with an ellipsis (the table beside the chart has it whole)."""
    return label if len(label) <= chars else label[: chars - 1] + "…"


def _text(x: float, y: float, body: str, *, anchor: str = "start", size: int = 12, colour: str = INK,
          weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{colour}" '
            f'font-weight="{weight}">{escape(body)}</text>')


def _open(chart_id: str, title: str, desc: str, height: float) -> str:
    return (f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height:.0f}" '
            f'width="{WIDTH}" height="{height:.0f}" aria-labelledby="{chart_id}-t {chart_id}-d" {FONT}>'
            f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(desc)}</desc>')


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    colour: str
    previous: float | None = None  # drawn as a thin grey bar under the main one
    shown: str = ""  # the value as written at the bar's end (default: the axis format)


def bar_chart(chart_id: str, title: str, desc: str, bars: Sequence[Bar], axis: str, fmt: Format = compact_usd,
              legend: tuple[str, str] | None = None) -> str:
    """Horizontal bars, one per row, negative values to the left of a zero line; `legend` names the main and the
    previous bars when there are previous values."""
    with_previous = any(b.previous is not None for b in bars)
    row = 30 if with_previous else 22
    label_width = 16 + 6.6 * min(28, max((len(b.label) for b in bars), default=4))
    left, right, top = label_width, WIDTH - 78, 26 if legend and with_previous else 8
    values = [b.value for b in bars] + [b.previous for b in bars if b.previous is not None]
    ticks = nice_ticks(min(values, default=0.0), max(values, default=0.0))
    low, high = ticks[0], ticks[-1]

    def x(v: float) -> float:
        return left + (v - low) / (high - low) * (right - left)

    height = top + row * max(len(bars), 1) + 44
    parts = [_open(chart_id, title, desc, height)]
    if legend and with_previous:
        parts.append(f'<rect x="{left}" y="6" width="12" height="10" fill="{MUTED}"/>')
        parts.append(_text(left + 16, 15, legend[0], size=11, colour=MUTED))
        at = left + 28 + 6.6 * len(legend[0])
        parts.append(f'<rect x="{at:.1f}" y="9" width="12" height="4" fill="{PREVIOUS}"/>')
        parts.append(_text(at + 16, 15, legend[1], size=11, colour=MUTED))
    bottom = top + row * max(len(bars), 1)
    for tick in ticks:
        parts.append(f'<line x1="{x(tick):.1f}" y1="{top}" x2="{x(tick):.1f}" y2="{bottom}" stroke="{GRID}"/>')
        parts.append(_text(x(tick), bottom + 14, fmt(tick), anchor="middle", size=10, colour=MUTED))
    parts.append(f'<line x1="{x(0):.1f}" y1="{top}" x2="{x(0):.1f}" y2="{bottom}" stroke="{MUTED}"/>')
    parts.append(_text((left + right) / 2, bottom + 34, axis, anchor="middle", size=11, colour=MUTED))
    for i, bar in enumerate(bars):
        y = top + i * row + 4
        main = 14
        parts.append(_text(left - 8, y + 11, clip(bar.label, 28), anchor="end"))
        start, stop = sorted((x(0), x(bar.value)))
        shown = bar.shown or fmt(bar.value)
        parts.append(f'<rect x="{start:.1f}" y="{y}" width="{max(stop - start, 0.5):.1f}" height="{main}" '
                     f'fill="{bar.colour}"><title>{escape(f"{bar.label}: {shown}")}</title></rect>')
        # A negative bar's value sits right of the zero line, where its row has no bar.
        parts.append(_text((stop if bar.value >= 0 else x(0)) + 4, y + 11, shown, size=11))
        if bar.previous is not None:
            p0, p1 = sorted((x(0), x(bar.previous)))
            parts.append(f'<rect x="{p0:.1f}" y="{y + main + 2}" width="{max(p1 - p0, 0.5):.1f}" height="5" '
                         f'fill="{PREVIOUS}"><title>{escape(f"{bar.label}, previous month: {fmt(bar.previous)}")}'
                         '</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def small_multiples(chart_id: str, title: str, desc: str, series: Sequence[tuple[str, str, Sequence[float]]],
                    axis: str, fmt: Format = compact_usd, columns: int = 3) -> str:
    """One small column chart per series (name, colour, a value per day), `columns` to a row. Each panel has its
    own scale, its top written at its top left: the shape of each series matters here, and one large series (idle
    capacity, say) would flatten every other on a shared scale."""
    gap, panel_h = 16, 92
    panel_w = (WIDTH - gap * (columns - 1)) / columns
    rows = max(1, math.ceil(len(series) / columns))
    height = rows * (panel_h + 36) + 22
    parts = [_open(chart_id, title, desc, height)]
    for i, (name, colour, values) in enumerate(series):
        px, py = (i % columns) * (panel_w + gap), (i // columns) * (panel_h + 36)
        top_tick = nice_ticks(0.0, max(values, default=0.0), 2)[-1]
        parts.append(f'<rect x="{px:.1f}" y="{py + 4}" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(px + 14, py + 13, name, weight="bold"))
        parts.append(_text(px + panel_w, py + 13, f"month {fmt(sum(values))}", anchor="end", size=10,
                           colour=MUTED))
        base, plot_top = py + 20 + panel_h - 18, py + 22
        parts.append(f'<line x1="{px:.1f}" y1="{plot_top:.1f}" x2="{px + panel_w:.1f}" y2="{plot_top:.1f}" '
                     f'stroke="{GRID}"/>')
        width = panel_w / max(len(values), 1)
        for day, value in enumerate(values):
            h = 0.0 if top_tick <= 0 else value / top_tick * (base - plot_top)
            tip = escape(f"{name}, day {day + 1}: {fmt(value)}")
            parts.append(f'<rect x="{px + day * width + 0.5:.1f}" y="{base - h:.1f}" '
                         f'width="{max(width - 1, 0.5):.1f}" height="{h:.1f}" fill="{colour}">'
                         f"<title>{tip}</title></rect>")
        parts.append(f'<line x1="{px:.1f}" y1="{base:.1f}" x2="{px + panel_w:.1f}" y2="{base:.1f}" stroke="{MUTED}"/>')
        parts.append(_text(px + 2, plot_top - 2 + 11, fmt(top_tick), size=9, colour=MUTED))
        for day in sorted({1, 15, len(values)}):
            if 1 <= day <= len(values):
                at, anchor = (px + panel_w, "end") if day == len(values) else (px + (day - 0.5) * width, "middle")
                parts.append(_text(at, base + 12, str(day), anchor=anchor, size=9, colour=MUTED))
    parts.append(_text(WIDTH / 2, height - 6, axis, anchor="middle", size=11, colour=MUTED))
    parts.append("</svg>")
    return "".join(parts)


def stacked_days(chart_id: str, title: str, desc: str, layers: Sequence[tuple[str, str, Sequence[float]]],
                 axis: str, fmt: Format = compact_usd) -> str:
    """One column per day of the month, the layers (name, colour, a value per day) stacked from the bottom in their
    order, with a legend naming each layer and its total, so colour is not the only cue."""
    left, right, top, plot_h = 56, WIDTH - 10, 26, 150
    days = max((len(values) for _, _, values in layers), default=0)
    totals = [sum(values[d] for _, _, values in layers if d < len(values)) for d in range(days)]
    high = nice_ticks(0.0, max(totals, default=0.0))[-1]
    base = top + plot_h
    width = (right - left) / max(days, 1)

    def y(v: float) -> float:
        return base - v / high * plot_h

    parts = [_open(chart_id, title, desc, base + 46)]
    at = float(left)
    for name, colour, values in layers:
        label = f"{name} {fmt(sum(values))}"
        parts.append(f'<rect x="{at:.1f}" y="6" width="12" height="10" fill="{colour}"/>')
        parts.append(_text(at + 16, 15, label, size=11, colour=MUTED))
        at += 34 + 6.2 * len(label)
    for tick in nice_ticks(0.0, high, 3):
        parts.append(f'<line x1="{left}" y1="{y(tick):.1f}" x2="{right}" y2="{y(tick):.1f}" stroke="{GRID}"/>')
        parts.append(_text(left - 6, y(tick) + 3, fmt(tick), anchor="end", size=10, colour=MUTED))
    for day in range(days):
        stacked = 0.0
        for name, colour, values in layers:
            value = values[day] if day < len(values) else 0.0
            if value <= 0:
                continue
            tip = escape(f"day {day + 1}, {name}: {fmt(value)}")
            parts.append(f'<rect x="{left + day * width + 0.5:.1f}" y="{y(stacked + value):.1f}" '
                         f'width="{max(width - 1, 0.5):.1f}" height="{y(stacked) - y(stacked + value):.1f}" '
                         f'fill="{colour}"><title>{tip}</title></rect>')
            stacked += value
    parts.append(f'<line x1="{left}" y1="{base}" x2="{right}" y2="{base}" stroke="{MUTED}"/>')
    for day in sorted({1, 8, 15, 22, days}):
        if 1 <= day <= days:
            parts.append(_text(left + (day - 0.5) * width, base + 12, str(day), anchor="middle", size=9,
                               colour=MUTED))
    parts.append(_text((left + right) / 2, base + 34, axis, anchor="middle", size=11, colour=MUTED))
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Gauge:
    label: str
    percent: float  # of the budget used
    forecast: float | None  # month-end forecast, percent of the budget
    thresholds: tuple[int, ...]


def budget_chart(chart_id: str, title: str, desc: str, gauges: Sequence[Gauge]) -> str:
    """Percent of each budget used, with its thresholds as ticks, the month-end forecast as a hollow circle (unless
    it is the spend: a closed month) and 100 % as a thick line.
    Under every threshold: green; past one: amber; at or over 100 %: red (the percent is written on every bar)."""
    row, top = 26, 8
    label_width = 16 + 6.6 * min(34, max((len(g.label) for g in gauges), default=4))
    left, right = label_width, WIDTH - 70
    high = nice_ticks(0.0, max([120.0, *(g.percent for g in gauges), *(g.forecast or 0.0 for g in gauges)]))[-1]

    def x(v: float) -> float:
        return left + min(v, high) / high * (right - left)

    bottom = top + row * max(len(gauges), 1)
    parts = [_open(chart_id, title, desc, bottom + 44)]
    for tick in nice_ticks(0.0, high):
        parts.append(f'<line x1="{x(tick):.1f}" y1="{top}" x2="{x(tick):.1f}" y2="{bottom}" stroke="{GRID}"/>')
        parts.append(_text(x(tick), bottom + 14, percent_label(tick), anchor="middle", size=10, colour=MUTED))
    parts.append(_text((left + right) / 2, bottom + 34, "share of the monthly budget used (%)", anchor="middle",
                       size=11, colour=MUTED))
    for i, g in enumerate(gauges):
        y = top + i * row + 5
        colour = "#c0392b" if g.percent >= 100 else ("#d4a017" if any(g.percent >= t for t in g.thresholds)
                                                     else "#4a9a5b")
        parts.append(_text(left - 8, y + 11, clip(g.label, 34), anchor="end"))
        parts.append(f'<rect x="{left}" y="{y}" width="{x(g.percent) - left:.1f}" height="14" fill="{colour}">'
                     f'<title>{escape(f"{g.label}: {g.percent:,.2f} % used")}</title></rect>')
        for t in g.thresholds:
            parts.append(f'<line x1="{x(t):.1f}" y1="{y - 3}" x2="{x(t):.1f}" y2="{y + 17}" stroke="{INK}" '
                         'stroke-width="1"/>')
        marker = g.forecast is not None and g.forecast != g.percent  # a closed month's forecast is its spend
        if g.forecast is not None and marker:
            parts.append(f'<circle cx="{x(g.forecast):.1f}" cy="{y + 7}" r="4.5" fill="white" stroke="{INK}">'
                         f'<title>{escape(f"{g.label}: {g.forecast:,.2f} % forecast")}</title></circle>')
        end = max(g.percent, g.forecast or 0.0) if marker else g.percent
        parts.append(_text(x(end) + (10 if marker else 5), y + 11, f"{g.percent:,.1f} %", size=11))
    parts.append(f'<line x1="{x(100):.1f}" y1="{top - 4}" x2="{x(100):.1f}" y2="{bottom}" stroke="{INK}" '
                 'stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)
