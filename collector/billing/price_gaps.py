"""Pure: consistent unit-price gaps between the bill and the book, and the price-book override that would close them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from collector.billing.meters import ANY_MODEL, MeterKey, is_provisioned, meter_order

MILLION = Decimal(1_000_000)
#: Suggested rates are given to 1/10,000 of a dollar per 1M tokens (or per PTU-hour): the book's own precision
#: (gpt-4.1-nano cached input is 0.025), with the export's rounding of each line left behind.
RATE_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class OverrideSuggestion:
    """A price-book override (collector/cost/pricing.py `Override`) that would make the estimate match the bill."""

    scope: str  # account | book
    name: str  # the account; "" for the book
    model: str | None  # None: any model (provisioned meters are not per model)
    deployment_type: str
    discount_percent: Decimal | None
    rates: tuple[tuple[str, Decimal], ...] = ()  # kind -> USD per 1M tokens, or per PTU-hour

    def describe(self) -> str:
        what = f"{self.model + ' ' if self.model else ''}{self.deployment_type}"
        where = f"for account {self.name}" if self.scope == "account" else "for every account (book-wide)"
        if self.discount_percent is not None:
            return f"a {self.discount_percent}% discount on {what} {where}"
        units = ", ".join(f"{kind} {rate_text(rate)}{' per PTU-hour' if kind == 'ptu_hour' else ' per 1M'}"
                          for kind, rate in self.rates)
        return f"rates on {what} {where}: {units}"

    def yaml(self, source: str) -> str:
        """One `overrides:` entry of a price book, in flow style."""
        parts = [f"scope: {self.scope}"] + ([f"name: {self.name}"] if self.name else [])
        parts += ([f"model: {self.model}"] if self.model else []) + [f"deployment_type: {self.deployment_type}"]
        if self.discount_percent is not None:
            parts.append(f"discount_percent: {self.discount_percent}")
        parts += [f"{kind}: {rate_text(rate)}" for kind, rate in self.rates]
        parts.append(f'source: "{source}"')
        return "- {" + ", ".join(parts) + "}"


@dataclass
class Side:
    """One side (the estimate or the bill) of a (day, account, meter) cell: its lines added together."""

    quantity: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    unit_prices: set[Decimal | None] = field(default_factory=set)

    def add(self, quantity: Decimal, cost: Decimal, unit_price: Decimal | None) -> None:
        self.quantity += quantity
        self.cost += cost
        self.unit_prices.add(unit_price)

    @property
    def unit_price(self) -> Decimal | None:
        """Cost over quantity: the unit price actually applied, whatever the stated unit (1K, 1M) was."""
        if self.quantity:
            return self.cost / self.quantity
        prices = [p for p in self.unit_prices if p is not None]
        return prices[0] if len(prices) == 1 else None

    @property
    def unpriced(self) -> bool:
        return None in self.unit_prices and not self.cost


def price_ratio(est: Side, bill: Side) -> Decimal | None:
    """Billed unit price over the estimate's, where both are known and the estimate is priced."""
    if not (est.quantity > 0 and bill.quantity > 0 and est.cost > 0):
        return None
    return (bill.cost / bill.quantity) / (est.cost / est.quantity)


def weighted_median(pairs: Sequence[tuple[Decimal, Decimal]]) -> Decimal:
    """The (lower) median of (value, weight) pairs: robust to a day or two of odd prices."""
    ordered = sorted(pairs)
    half, running = sum(w for _, w in ordered) / 2, Decimal(0)
    for value, weight in ordered:
        running += weight
        if running >= half:
            return value
    return ordered[-1][0]


@dataclass(frozen=True)
class PriceGroup:
    """A consistent unit-price gap of one (account, meter) over the month."""

    ratio: Decimal | None  # the median billed/book ratio (how cells are judged); None: unpriced
    overall: Decimal | None  # billed cost over the book's cost of the billed quantity, on the consistent days
    billed_rate: Decimal  # per token or PTU-hour, on the consistent days
    days: int
    of_days: int


def price_groups(cells: Iterable[tuple[str, MeterKey, Side | None, Side | None]], relative: Decimal
                 ) -> dict[tuple[str, MeterKey], PriceGroup]:
    """Per (account, meter) over the month: the cost-weighted median of the daily billed/book unit price ratios,
    kept when it is off one by more than `relative` and at least half the weight lies within `relative` of it (a
    consistent discount or surcharge); and the billed rate of meters the book does not price."""
    ratios: dict[tuple[str, MeterKey], list[tuple[Decimal, Side, Side]]] = defaultdict(list)
    unpriced: dict[tuple[str, MeterKey], list[Side]] = defaultdict(list)
    for account, meter, est, bill in cells:
        if est is None or bill is None:
            continue
        ratio = price_ratio(est, bill)
        if ratio is not None:
            ratios[(account, meter)].append((ratio, est, bill))
        elif est.unpriced and bill.quantity > 0 and bill.cost:
            unpriced[(account, meter)].append(bill)
    groups: dict[tuple[str, MeterKey], PriceGroup] = {}
    for key, found in ratios.items():
        median = weighted_median([(r, e.cost) for r, e, _ in found])
        near = [(e, b) for r, e, b in found if abs(r - median) <= relative * median]
        weight = sum((e.cost for e, _ in near), Decimal(0))
        if abs(median - 1) > relative and 2 * weight >= sum((e.cost for _, e, _ in found), Decimal(0)):
            billed = sum((b.cost for _, b in near), Decimal(0))
            # Added up over the consistent days, the ratio and rate shed the daily rounding of the export.
            book = sum((b.quantity * e.cost / e.quantity for e, b in near), Decimal(0))
            rate = billed / sum((b.quantity for _, b in near), Decimal(0))
            groups[key] = PriceGroup(median, billed / book, rate, len(near), len(found))
    for key, bills in unpriced.items():
        rate = sum((b.cost for b in bills), Decimal(0)) / sum((b.quantity for b in bills), Decimal(0))
        groups[key] = PriceGroup(None, None, rate, len(bills), len(bills))
    return groups


# -- overrides ---------------------------------------------------------------------------------------------------


def discount_percent(ratio: Decimal) -> Decimal:
    return plain(((1 - ratio) * 100).quantize(Decimal("0.01")))


def plain(value: Decimal) -> Decimal:
    """Without trailing zeros or an exponent: 10, not 10.00 or 1E+1."""
    return Decimal(format(value.normalize(), "f"))


def book_rate(meter: MeterKey, per_unit: Decimal) -> Decimal:
    """A unit price in the book's terms: per 1M tokens, or per PTU-hour."""
    return per_unit if is_provisioned(meter) else per_unit * MILLION


def suggest_overrides(groups: Mapping[tuple[str, MeterKey], PriceGroup], compared: set[tuple[str, MeterKey]],
                      relative: Decimal) -> dict[tuple[str, MeterKey], OverrideSuggestion]:
    """The override that would fix each price group: one per account, model and type (a discount when every
    compared meter of theirs shows the same ratio below one, else the billed rates of the kinds that differ), lifted
    to the book when at least two accounts use that model and type and all show the same discount."""
    families: dict[tuple[str, str, str], list[MeterKey]] = defaultdict(list)
    for account, meter in compared:
        families[(account, meter.model, meter.deployment_type)].append(meter)
    per_family: dict[tuple[str, str, str], OverrideSuggestion] = {}
    for (account, model, dtype), meters in sorted(families.items()):
        found = [(m, groups[(account, m)]) for m in sorted(meters, key=meter_order) if (account, m) in groups]
        if not found:
            continue
        ratios = [g.overall for _, g in found if g.overall is not None]
        any_model = None if model in ("", ANY_MODEL) else model
        if (len(ratios) == len(meters) and max(ratios) < 1
                and max(ratios) - min(ratios) <= relative * min(ratios)):
            discount = discount_percent(weighted_median([(r, Decimal(1)) for r in ratios]))
            per_family[(account, model, dtype)] = OverrideSuggestion("account", account, any_model, dtype, discount)
        else:
            rates = {m.kind: plain(book_rate(m, g.billed_rate).quantize(RATE_PLACES)) for m, g in found}
            per_family[(account, model, dtype)] = OverrideSuggestion(
                "account", account, any_model, dtype, None, tuple(sorted(rates.items())))
    lifted: dict[tuple[str, str], OverrideSuggestion] = {}
    users: dict[tuple[str, str], set[str]] = defaultdict(set)
    for account, model, dtype in families:
        users[(model, dtype)].add(account)
    for (model, dtype), accounts in users.items():
        found_s = [per_family.get((a, model, dtype)) for a in accounts]
        discounts = {s.discount_percent for s in found_s if s is not None}
        if len(accounts) >= 2 and None not in found_s and len(discounts) == 1 and None not in discounts:
            first = found_s[0]
            assert first is not None
            lifted[(model, dtype)] = replace(first, scope="book", name="")
    chosen: dict[tuple[str, MeterKey], OverrideSuggestion] = {}
    for account, meter in groups:
        own = per_family.get((account, meter.model, meter.deployment_type))
        if own is not None:
            chosen[(account, meter)] = lifted.get((meter.model, meter.deployment_type), own)
    return chosen


def rate_text(value: Decimal) -> str:
    return format(value.normalize(), "f")
