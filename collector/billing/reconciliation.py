"""Pure: the estimate (telemetry priced by the book) beside the bill, per day, account and meter, and why they differ.

Grain: (day, account, meter); a meter names model, version, deployment type and kind, so this is per account,
model, type, token kind and day. Each cell gets the gap (billed - estimate) in money and in percent of the
estimate, split into a quantity part ((billed qty - estimated qty) x the estimate's unit price) and a price part
(billed qty x (billed unit price - the estimate's)), which add up to the gap exactly. Then a cause:

- `export`: the estimate has a day inside the bill's period on which the bill has no line at all, for any account
  or meter, while other days have lines: a missing export day (or, after the newest billed day, one not exported
  yet). Checked first: on such a day every other cause would be a guess.
- `quantity`: only one side has the cell (billed usage on an account with no telemetry at all, i.e. no diagnostic
  setting; on a day the account sent none; of a meter the telemetry did not see; or telemetry with no billed line
  on a day the bill covers), or both have it and the quantities differ by more than the tolerance.
- `price`: the quantities agree and the unit prices do not. The billed-to-book unit price ratio is judged per
  (account, meter) over the month: the cost-weighted median of the daily ratios; when at least half the weight
  lies within the tolerance of it, the gap is a consistent discount (or surcharge) and an override is suggested,
  its figure taken over those consistent days together (billed cost over the book's cost of the billed quantity),
  which sheds the export's rounding of each line.
  Unit prices are cost / quantity on both sides, so a price gap shows on a day whatever its quantities are, and a
  day whose quantities differ as well is `price+quantity`, each part named with its size.
- `none`: within the tolerance (relative to the estimate, with an absolute floor for tiny cells).

Override suggestions follow `collector/cost/pricing.py`'s `Override`: when every compared meter of an account's model
and deployment type shows the same ratio below one, a discount (`discount_percent`) for that account, lifted to
the whole book when at least two accounts use that model and type and all show it; otherwise rates (per 1M tokens,
or per PTU-hour) for the kinds that differ. The threshold applies to the month's gross gap: the absolute gaps of
each (account, meter) over the month, added up, as a share of the estimate. Day-to-day shifts (a request logged
just before midnight and billed the next day) cancel inside a month; gaps of opposite signs on different meters
do not.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from collector.billing.meters import (
    CACHED_INPUT,
    INPUT,
    MeterKey,
    describe,
    is_provisioned,
    meter_order,
    pair_versions,
)
from collector.billing.price_gaps import (
    OverrideSuggestion,
    PriceGroup,
    Side,
    book_rate,
    discount_percent,
    price_groups,
    price_ratio,
    rate_text,
    suggest_overrides,
)

_DAY = timedelta(days=1)


class Cause(StrEnum):
    NONE = "none"
    EXPORT = "export"
    QUANTITY = "quantity"
    PRICE_AND_QUANTITY = "price+quantity"
    PRICE = "price"


class Reason(StrEnum):
    MATCH = "within tolerance"
    MISSING_EXPORT_DAY = "day missing from the export"
    NOT_YET_EXPORTED = "day not exported yet"
    NO_TELEMETRY_ACCOUNT = "account sends no telemetry"
    NO_TELEMETRY_DAY = "no telemetry from the account that day"
    NO_TELEMETRY_METER = "telemetry saw none of this meter"
    CACHED_AS_INPUT = "telemetry counted cached tokens as input"
    NOT_BILLED = "telemetry with no billed line"
    QUANTITY_DIFFERS = "quantities differ"
    DISCOUNT = "billed below the book"
    SURCHARGE = "billed above the book"
    UNPRICED = "no price in the book"
    PRICE_VARIES = "unit price off the book on this day only"


# -- inputs ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EstimatedLine:
    """Telemetry's usage of a meter on a day, priced by the book. Quantity in tokens (or PTU-hours); unit price
    per token (or PTU-hour), None when the book has no price for it."""

    day: date
    account: str
    meter: MeterKey
    quantity: Decimal
    cost: Decimal
    unit_price: Decimal | None


@dataclass(frozen=True)
class BilledLine:
    """What the bill charged for a meter on a day, in the same units; lines of one cell are added together."""

    day: date
    account: str
    meter: MeterKey
    quantity: Decimal
    cost: Decimal
    unit_price: Decimal | None = None


@dataclass(frozen=True)
class BillPeriod:
    """Days an export run covers (the manifest's runInfo start and end dates), both inclusive."""

    first_day: date
    last_day: date

    def days(self) -> list[date]:
        return [self.first_day + i * _DAY for i in range((self.last_day - self.first_day).days + 1)]


@dataclass(frozen=True)
class Tolerance:
    """How far apart two figures may be and still agree: `relative` of the estimate, or `absolute` money."""

    relative: Decimal = Decimal("0.005")
    absolute: Decimal = Decimal("0.01")


# -- outputs -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    day: date
    account: str
    meter: MeterKey
    estimated_quantity: Decimal
    billed_quantity: Decimal
    estimated_cost: Decimal
    billed_cost: Decimal
    book_unit_price: Decimal | None
    billed_unit_price: Decimal | None
    gap: Decimal  # billed - estimated
    gap_percent: Decimal | None  # of the estimate; None when there is none
    quantity_part: Decimal
    price_part: Decimal
    cause: Cause
    reasons: tuple[Reason, ...]
    explanation: str
    override: OverrideSuggestion | None = None


@dataclass(frozen=True)
class Summary:
    first_day: date | None
    last_day: date | None
    estimated_cost: Decimal
    billed_cost: Decimal
    net_gap: Decimal
    net_percent: Decimal | None
    gross_gap: Decimal  # sum over (account, meter) of |month billed - month estimate|
    gross_percent: Decimal | None
    by_cause: Mapping[Cause, tuple[int, Decimal]]  # cells and their summed gap
    estimate_outside_bill: Decimal  # estimated cost on days no export period covers (not reconciled)
    threshold: Decimal
    exceeded: bool


@dataclass(frozen=True)
class Reconciliation:
    gaps: tuple[Gap, ...]
    summary: Summary
    overrides: tuple[OverrideSuggestion, ...] = field(default=())


# -- the cells ---------------------------------------------------------------------------------------------------

_Cell = tuple[date, str, MeterKey]


def _pair_versions(estimated: Sequence[EstimatedLine], billed: Sequence[BilledLine]) -> list[EstimatedLine]:
    """The estimate's meters renamed to the bill's where only the version's spelling differs (`pair_versions`)."""
    renamed = pair_versions(((e.account, e.meter) for e in estimated), ((b.account, b.meter) for b in billed))
    return [replace(e, meter=renamed.get((e.account.lower(), e.meter), e.meter)) for e in estimated]


# -- classification ----------------------------------------------------------------------------------------------


def _percent(part: Decimal, whole: Decimal) -> Decimal | None:
    return (part / whole * 100).quantize(Decimal("0.01")) if whole else None


def _money(value: Decimal) -> str:
    return f"{'-' if value < 0 else '+'}${abs(value):,.2f}"


def _quantity(value: Decimal) -> str:
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.4f}"


def _price_text(cell: _Cell, est: Side, bill: Side, group: PriceGroup | None, ratio: Decimal | None,
                tol: Tolerance) -> tuple[Reason, str]:
    meter = cell[2]
    unit = "per PTU-hour" if is_provisioned(meter) else "per 1M tokens"
    billed_rate = book_rate(meter, bill.cost / bill.quantity) if bill.quantity else Decimal(0)
    if est.unpriced or not est.cost:
        return Reason.UNPRICED, f"the book has no price for {describe(meter)}, billed {rate_text(billed_rate)} {unit}"
    book = book_rate(meter, est.cost / est.quantity)
    text = f"billed {rate_text(billed_rate.quantize(Decimal('0.0001')))} {unit} vs the book's " \
           f"{rate_text(book.quantize(Decimal('0.0001')))}"
    # In money, with the absolute floor: a small line rounded to the cent strays further in ratio than in dollars.
    expected = bill.quantity * est.cost / est.quantity * group.overall if group and group.overall else None
    if group is None or group.ratio is None or ratio is None or expected is None \
            or abs(bill.cost - expected) > max(tol.absolute, tol.relative * abs(expected)):
        return Reason.PRICE_VARIES, f"{text}, on this day only: not a consistent rate (a correction or credit?)"
    below = group.ratio < 1
    return (Reason.DISCOUNT if below else Reason.SURCHARGE,
            f"{text}, {abs(discount_percent(group.ratio))}% {'below' if below else 'above'} the book on "
            f"{group.days} of {group.of_days} days")


@dataclass(frozen=True)
class _Context:
    accounts_with_telemetry: frozenset[str]
    account_days: frozenset[tuple[date, str]]
    bill_days: frozenset[date]
    periods: tuple[BillPeriod, ...]
    groups: Mapping[tuple[str, MeterKey], PriceGroup]
    suggestions: Mapping[tuple[str, MeterKey], OverrideSuggestion]
    cells: Mapping[_Cell, tuple[Side | None, Side | None]]
    tol: Tolerance


def _one_sided(cell: _Cell, est: Side | None, bill: Side | None, ctx: _Context) -> tuple[Cause, Reason, str]:
    day, account, meter = cell
    if bill is None:
        if day not in ctx.bill_days:
            period = next(p for p in ctx.periods if p.first_day <= day <= p.last_day)
            later = [d for d in ctx.bill_days if day < d <= period.last_day]
            where = f"its period {period.first_day.isoformat()}..{period.last_day.isoformat()}"
            if later:
                return Cause.EXPORT, Reason.MISSING_EXPORT_DAY, \
                    f"the export has no line at all on {day.isoformat()}, inside {where}, while later days have " \
                    f"lines: a missing export day (re-run the export for that day)"
            return Cause.EXPORT, Reason.NOT_YET_EXPORTED, \
                f"the export has no line yet on {day.isoformat()} ({where}): wait for the next export run"
        return Cause.QUANTITY, Reason.NOT_BILLED, \
            f"telemetry shows {describe(meter)} usage on {account}, but the bill has no line for it on a day it " \
            f"covers (the usage is billed to another account or meter, or the meter was not recognised)"
    if account not in ctx.accounts_with_telemetry:
        return Cause.QUANTITY, Reason.NO_TELEMETRY_ACCOUNT, \
            f"billed usage on account {account}, which sends no telemetry: add a diagnostic setting " \
            f"(AzureOpenAIRequestUsage, RequestResponse) to the collector's workspace"
    if (day, account) not in ctx.account_days:
        return Cause.QUANTITY, Reason.NO_TELEMETRY_DAY, \
            f"billed usage on {account}, which sent no telemetry on {day.isoformat()}: a collection gap " \
            f"(see the collector's watermark) or the diagnostic setting was off that day"
    if meter.kind == CACHED_INPUT:
        twin = ctx.cells.get((day, account, replace(meter, kind=INPUT)))
        if twin is not None and twin[0] is not None and twin[1] is not None:
            surplus = twin[0].quantity - twin[1].quantity
            # Judged against the input meter's tokens: that is where telemetry's own error lies.
            if surplus > 0 and abs(surplus - bill.quantity) <= ctx.tol.relative * twin[0].quantity:
                return Cause.QUANTITY, Reason.CACHED_AS_INPUT, \
                    "telemetry priced these cached tokens as input (platform metrics have no cached count): " \
                    "the input meter shows the same tokens in excess"
    return Cause.QUANTITY, Reason.NO_TELEMETRY_METER, \
        f"telemetry on {account} that day has no {describe(meter)} usage"


def _classify(cell: _Cell, est: Side | None, bill: Side | None, ctx: _Context) -> Gap:
    day, account, meter = cell
    e, b = est or Side(), bill or Side()
    gap = b.cost - e.cost
    e_price = e.cost / e.quantity if e.quantity else Decimal(0)
    quantity_part = (b.quantity - e.quantity) * e_price
    price_part = gap - quantity_part
    suggestion = ctx.suggestions.get((account, meter))
    reasons: tuple[Reason, ...]
    if est is None or bill is None:
        cause, reason, text = _one_sided(cell, est, bill, ctx)
        reasons = (reason,)
        suggestion = None
    elif abs(gap) <= max(ctx.tol.absolute, ctx.tol.relative * abs(e.cost)):
        cause, reasons, text, suggestion = Cause.NONE, (Reason.MATCH,), "within tolerance", None
    else:
        floor = ctx.tol.absolute
        ratio = price_ratio(e, b)
        quantity_off = (not e.quantity or abs(b.quantity / e.quantity - 1) > ctx.tol.relative) \
            and abs(quantity_part) > floor
        price_off = (ratio is None or abs(ratio - 1) > ctx.tol.relative) and abs(price_part) > floor
        if not (quantity_off or price_off):  # each part under the tolerance, both together over it
            quantity_off, price_off = abs(quantity_part) >= abs(price_part), abs(quantity_part) < abs(price_part)
        texts, found = [], []
        if quantity_off:
            change = _percent(b.quantity - e.quantity, e.quantity)
            found.append(Reason.QUANTITY_DIFFERS)
            texts.append(f"billed {_quantity(b.quantity)} vs telemetry's {_quantity(e.quantity)}"
                         f"{f' ({change:+}%)' if change is not None else ''}: quantity part {_money(quantity_part)}")
        if price_off:
            reason, text = _price_text(cell, e, b, ctx.groups.get((account, meter)), ratio, ctx.tol)
            found.append(reason)
            texts.append(f"{text}: price part {_money(price_part)}")
            if reason is Reason.PRICE_VARIES:
                suggestion = None
        else:
            suggestion = None
        if suggestion is not None:
            texts.append(f"fix: {suggestion.describe()}")
        cause = Cause.PRICE_AND_QUANTITY if quantity_off and price_off else \
            Cause.QUANTITY if quantity_off else Cause.PRICE
        reasons, text = tuple(found), "; ".join(texts)
    return Gap(day, account, meter, e.quantity, b.quantity, e.cost, b.cost,
               e.unit_price if est is not None else None, b.unit_price if bill is not None else None,
               gap, _percent(gap, e.cost), quantity_part, price_part, cause, reasons, text, suggestion)


# -- the month ---------------------------------------------------------------------------------------------------


def reconcile(estimated: Iterable[EstimatedLine], billed: Iterable[BilledLine], periods: Iterable[BillPeriod],
              accounts_with_telemetry: Iterable[str], *, threshold: Decimal = Decimal("0.01"),
              tolerance: Tolerance | None = None) -> Reconciliation:
    """Every (day, account, meter) of the estimate and the bill, side by side, with its cause. `periods` are the
    export runs' periods (none: from the first to the last billed day); estimates on days outside them are not
    reconciled (the bill does not cover them yet) and are summed in the summary. `threshold` is a fraction
    (0.01 for 1%) of the estimate the month's gross gap may reach."""
    tol = tolerance or Tolerance()
    bill_lines = list(billed)
    est_lines = _pair_versions(list(estimated), bill_lines)
    spans = tuple(sorted(periods, key=lambda p: p.first_day))
    bill_days = frozenset(b.day for b in bill_lines)
    if not spans and bill_days:
        spans = (BillPeriod(min(bill_days), max(bill_days)),)
    covered = {d for p in spans for d in p.days()}
    est_sides: dict[_Cell, Side] = defaultdict(Side)
    bill_sides: dict[_Cell, Side] = defaultdict(Side)
    outside = Decimal(0)
    for e in est_lines:
        if e.day not in covered:
            outside += e.cost
        elif e.quantity or e.cost:
            est_sides[(e.day, e.account.lower(), e.meter)].add(e.quantity, e.cost, e.unit_price)
    for b in bill_lines:
        bill_sides[(b.day, b.account.lower(), b.meter)].add(b.quantity, b.cost, b.unit_price)
    cells = {k: (est_sides.get(k), bill_sides.get(k)) for k in set(est_sides) | set(bill_sides)}
    groups = price_groups(((a, m, e, b) for (_, a, m), (e, b) in cells.items()), tol.relative)
    compared = {(a, m) for (_, a, m), (e, b) in cells.items() if e is not None and b is not None}
    ctx = _Context(frozenset(a.lower() for a in accounts_with_telemetry),
                   frozenset((d, a) for (d, a, _), (e, _) in cells.items() if e is not None), bill_days, spans,
                   groups, suggest_overrides(groups, compared, tol.relative), cells, tol)
    gaps = tuple(_classify(cell, est, bill, ctx) for cell, (est, bill) in
                 sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], meter_order(kv[0][2]))))
    overrides = tuple(sorted({g.override for g in gaps if g.override is not None}, key=lambda s: s.describe()))
    return Reconciliation(gaps, summarise(gaps, spans, outside, threshold, tol), overrides)


def summarise(gaps: Sequence[Gap], periods: Sequence[BillPeriod], outside: Decimal, threshold: Decimal,
              tol: Tolerance) -> Summary:
    estimated = sum((g.estimated_cost for g in gaps), Decimal(0))
    billed = sum((g.billed_cost for g in gaps), Decimal(0))
    per_meter: dict[tuple[str, MeterKey], Decimal] = defaultdict(Decimal)
    by_cause: dict[Cause, tuple[int, Decimal]] = {}
    for g in gaps:
        per_meter[(g.account, g.meter)] += g.gap
        count, total = by_cause.get(g.cause, (0, Decimal(0)))
        by_cause[g.cause] = (count + 1, total + g.gap)
    gross = sum((abs(v) for v in per_meter.values()), Decimal(0))
    gross_percent = _percent(gross, estimated)
    exceeded = gross > tol.absolute if gross_percent is None else gross_percent > threshold * 100
    return Summary(min((p.first_day for p in periods), default=None), max((p.last_day for p in periods), default=None),
                   estimated, billed, billed - estimated, _percent(billed - estimated, estimated), gross,
                   gross_percent, by_cause, outside, threshold, exceeded)
