"""Pure: each billed line split across teams by the telemetry's drivers, exact to the currency's minor unit.

The bill charges an ACCOUNT per meter and day; a meter is shared by every deployment of that account with the
same model, version and type. So a billed line is split by the drivers of all those deployments together, keyed by
(deployment, team, method), and the result can be read per team or per deployment.

- Token meters: by the tokens of that kind each (deployment, team, method) used that day.
- Provisioned meters (PTU-hours): as `collector.cost.attribution._lines_for` splits an estimated provisioned cost. Each
  deployment's weight is its PTU-hours that day (capacity x hours it existed); of that, the used share (mean
  utilisation, 0..1) goes to the teams by their tokens and the rest to team and method "idle". Utilisation unknown
  means no idle when the deployment served tokens and all idle when it served none, and a deployment with nobody
  to charge is all idle, exactly as there. (Attribution also offers `even` and `fixed` splits; pass the weights
  they give as the drivers' quantities.) With no PTU-hours at all for a line, its tokens split it and nothing is
  idle: nothing says how much capacity went unused.
- No driver with a positive quantity: the whole line goes to team and method "unallocated", with the reason.

Exactness ("to the cent"): a billed line is rounded once, half even, to the currency's minor unit (cents for USD,
`currency_quantum`), and that many cents are apportioned by the largest-remainder method, ties to the first key in
(deployment, team, method) order. So the allocated rows of a line add up exactly to the line rounded to the cent,
and the order of the inputs does not matter. We round rather than keep the export's full precision because an
allocation is read, charged back and summed in cents; the price is at most half a cent per billed line against
the export's unrounded total, and `Allocation.rounding` says how much it was. Pass `quantum` (e.g. 1E-10) to keep
more digits: the same method then sums exactly at that precision. Quantities are apportioned the same way at the
billed quantity's own precision, so they add up exactly too.

Basis: rows split from a billed line are `billed`. Rows for days the bill does not cover yet are `estimate`: the
drivers' own estimated cost (the price book's), rounded per (day, account, meter) the same way. Drivers on a day
the bill covers whose meter has no billed line get no cost here; they are returned in `Allocation.unbilled`
(reconciliation reports them as telemetry with no billed line).

Accounts are compared lower-case, as ARM does (and `collector/usage.py`). The team names "idle" and
"unallocated" and the method names are those of `collector/cost/attribution.py`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import TypeVar

from collector.apportion import largest_remainder
from collector.billing.meters import MeterKey, describe, is_provisioned, meter_order

BILLED, ESTIMATE = "billed", "estimate"
BASES = (BILLED, ESTIMATE)
IDLE, UNALLOCATED = "idle", "unallocated"  # as collector/cost/attribution.py names them
#: ISO 4217 currencies whose minor unit is not two digits (the standard's list of minor units).
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3}

_LineKey = tuple[date, str, MeterKey]
_ShareKey = tuple[str, str, str]  # deployment, team, method
K = TypeVar("K", bound=Hashable)


def currency_quantum(currency: str) -> Decimal:
    """The currency's minor unit: 0.01 for USD and EUR, 1 for JPY."""
    return Decimal(1).scaleb(-_MINOR_UNITS.get(currency.upper(), 2))


# -- inputs ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BilledAmount:
    """What the bill charged an account for one meter on one day. Quantity in tokens, or PTU-hours."""

    day: date
    account: str
    meter: MeterKey
    quantity: Decimal
    cost: Decimal
    currency: str = "USD"


@dataclass(frozen=True)
class Driver:
    """What telemetry says one (deployment, team, method) used of a meter on a day: the tokens of the meter's kind
    (the weight the line is split by), and what the price book made of them."""

    day: date
    account: str
    meter: MeterKey
    team: str
    deployment: str
    method: str
    quantity: Decimal
    estimated_cost: Decimal = Decimal(0)


@dataclass(frozen=True)
class ProvisionedUse:
    """A provisioned deployment on a day: the PTU-hours it held (capacity x hours it existed) and its mean
    utilisation (0..1; None when unknown), with the price book's cost of those hours."""

    day: date
    account: str
    meter: MeterKey
    deployment: str
    ptu_hours: Decimal
    used_share: Decimal | None
    estimated_cost: Decimal = Decimal(0)


# -- outputs -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllocatedCost:
    """One (deployment, team, method)'s share of an account's meter on a day. `deployment` is "" for cost that
    no telemetry explains (team "unallocated"); `note` says why, or how an idle share came about."""

    day: date
    account: str
    meter: MeterKey
    deployment: str
    team: str
    method: str
    quantity: Decimal
    cost: Decimal  # a multiple of the quantum (cents by default)
    basis: str  # billed | estimate
    currency: str
    note: str = ""


@dataclass(frozen=True)
class Allocation:
    rows: tuple[AllocatedCost, ...]
    #: Drivers on days the bill covers, whose meter has no billed line or whose deployment got no share of it.
    unbilled: tuple[Driver, ...]
    #: Sum of the billed lines as rounded, minus their exact sum: what rounding each line to the quantum moved.
    rounding: Decimal


# -- exact apportioning ------------------------------------------------------------------------------------------


def apportion(amount: Decimal, quantum: Decimal, weights: Sequence[Fraction]) -> list[Decimal]:
    """`amount` (a multiple of `quantum`, either sign) in multiples of `quantum` proportional to `weights`,
    adding up to it exactly."""
    units = amount / quantum
    if units != units.to_integral_value():
        raise ValueError(f"{amount} is not a multiple of {quantum}")
    sign = -1 if units < 0 else 1
    return [sign * part * quantum for part in largest_remainder(abs(int(units)), weights)]


def _precision(values: Iterable[Decimal]) -> Decimal:
    """The finest decimal place among `values` (1 for integers): quantities split there add up exactly."""
    exponent = 0
    for value in values:
        found = value.as_tuple().exponent
        if not isinstance(found, int):
            raise ValueError(f"{value} is not a finite quantity")
        exponent = min(exponent, found)
    return Decimal(1).scaleb(exponent)


# -- shares ------------------------------------------------------------------------------------------------------


def _token_shares(drivers: Sequence[Driver], weight: Callable[[Driver], Decimal]) -> dict[_ShareKey, Fraction]:
    shares: dict[_ShareKey, Fraction] = defaultdict(Fraction)
    for d in drivers:
        shares[(d.deployment, d.team, d.method)] += Fraction(weight(d))
    return dict(shares)


def _ptu_shares(drivers: Sequence[Driver], uses: Sequence[ProvisionedUse],
                weight: Callable[[ProvisionedUse], Decimal]) -> dict[_ShareKey, Fraction]:
    """collector/cost/attribution.py `_lines_for`: used share of each deployment's hours by tokens, the rest idle."""
    tokens: dict[str, dict[tuple[str, str], Fraction]] = defaultdict(lambda: defaultdict(Fraction))
    for d in drivers:
        tokens[d.deployment][(d.team, d.method)] += Fraction(d.quantity)
    shares: dict[_ShareKey, Fraction] = defaultdict(Fraction)
    for use in uses:
        held = Fraction(weight(use))
        teams = tokens.get(use.deployment, {})
        served = sum(teams.values(), Fraction(0))
        if served <= 0:
            used = Fraction(0)  # nobody to charge: all of it is idle
        elif use.used_share is None:
            used = Fraction(1)  # unknown utilisation: no idle unless unused
        else:
            used = min(max(Fraction(use.used_share), Fraction(0)), Fraction(1))
        for (team, method), count in teams.items() if served > 0 else ():
            shares[(use.deployment, team, method)] += held * used * count / served
        shares[(use.deployment, IDLE, IDLE)] += held * (1 - used)
    return dict(shares)


@dataclass(frozen=True)
class _Split:
    cost: dict[_ShareKey, Fraction]
    quantity: dict[_ShareKey, Fraction]
    note: str


def _split_for(meter: MeterKey, drivers: Sequence[Driver], uses: Sequence[ProvisionedUse], basis: str) -> _Split:
    billed = basis == BILLED
    if is_provisioned(meter) and any(u.ptu_hours > 0 for u in uses):
        hours = _ptu_shares(drivers, uses, lambda u: u.ptu_hours)
        cost = hours if billed else _ptu_shares(drivers, uses, lambda u: u.estimated_cost)
        return _Split(cost, hours, "")
    tokens = _token_shares(drivers, lambda d: d.quantity)
    cost = tokens if billed else _token_shares(drivers, lambda d: d.estimated_cost)
    note = "utilisation unknown: split by tokens, nothing idle" if is_provisioned(meter) else ""
    return _Split(cost, tokens, note)


def _idle_note(uses: Sequence[ProvisionedUse], deployment: str) -> str:
    known = [u.used_share for u in uses if u.deployment == deployment and u.used_share is not None]
    if not known:
        return "provisioned capacity that served no tokens"
    return f"unused provisioned capacity (mean utilisation {sum(known) / len(known):.1%})"


def _no_driver_reason(key: _LineKey, accounts_seen: set[str], account_days: set[tuple[date, str]]) -> str:
    day, account, meter = key
    if account not in accounts_seen:
        return "no telemetry from this account at all (no diagnostic setting?)"
    if (day, account) not in account_days:
        return f"no telemetry from this account on {day.isoformat()}"
    return f"telemetry shows no {describe(meter)} usage on this account that day"


# -- allocation --------------------------------------------------------------------------------------------------


def _rows_for(key: _LineKey, split: _Split, quantity: Decimal, cost: Decimal, quantum: Decimal, basis: str,
              currency: str, uses: Sequence[ProvisionedUse]) -> list[AllocatedCost] | None:
    """The rows of one line, or None when the split has nothing to go by."""
    keys = sorted(k for k in set(split.cost) | set(split.quantity)
                  if split.cost.get(k, 0) > 0 or split.quantity.get(k, 0) > 0)
    cost_weights = [split.cost.get(k, Fraction(0)) for k in keys]
    quantity_weights = [split.quantity.get(k, Fraction(0)) for k in keys]
    if not keys:
        return None
    # An estimate can price zero tokens (or leave tokens unpriced): each side then follows the other.
    cost_weights = cost_weights if any(cost_weights) else quantity_weights
    quantity_weights = quantity_weights if any(quantity_weights) else cost_weights
    costs = apportion(cost, quantum, cost_weights) if cost else [Decimal(0) * quantum] * len(keys)
    unit = _precision([quantity])
    quantities = apportion(quantity, unit, quantity_weights) if quantity else [Decimal(0)] * len(keys)
    day, account, meter = key
    return [AllocatedCost(day, account, meter, deployment, team, method, q, c, basis, currency,
                          _idle_note(uses, deployment) if team == IDLE else split.note)
            for (deployment, team, method), c, q in zip(keys, costs, quantities, strict=True)]


def allocate(billed: Iterable[BilledAmount], drivers: Iterable[Driver], provisioned: Iterable[ProvisionedUse] = (),
             *, billed_days: Iterable[date] | None = None, quantum: Decimal | None = None,
             estimate_currency: str = "USD") -> Allocation:
    """Split each billed line across the (deployment, team, method) drivers of its account, meter and day, and
    estimate the days the bill does not cover.

    Billed lines of the same (day, account, meter) are added together first (an export may split a day by
    resource group or tag). `billed_days` are the days the bill covers (from the export's periods); by default,
    the days with a billed line. `quantum` is the precision of the allocated cost; by default the billed
    currency's minor unit (`currency_quantum`)."""
    lines: dict[_LineKey, list[BilledAmount]] = defaultdict(list)
    for line in billed:
        lines[(line.day, line.account.lower(), line.meter)].append(line)
    by_key: dict[_LineKey, list[Driver]] = defaultdict(list)
    for d in drivers:
        if d.quantity < 0 or d.estimated_cost < 0:
            raise ValueError(f"a driver's quantity and estimated cost must not be negative: {d}")
        by_key[(d.day, d.account.lower(), d.meter)].append(d)
    uses: dict[_LineKey, list[ProvisionedUse]] = defaultdict(list)
    for u in provisioned:
        if u.ptu_hours < 0 or u.estimated_cost < 0:
            raise ValueError(f"PTU-hours and estimated cost must not be negative: {u}")
        uses[(u.day, u.account.lower(), u.meter)].append(u)
    covered = set(billed_days) if billed_days is not None else {day for day, _, _ in lines}
    accounts_seen = {account for _, account, _ in by_key}
    account_days = {(day, account) for day, account, _ in by_key}

    rows: list[AllocatedCost] = []
    unbilled: list[Driver] = []
    rounding = Decimal(0)
    for key in sorted(set(lines) | set(by_key) | set(uses), key=lambda k: (k[0], k[1], meter_order(k[2]))):
        found, here, held = lines.get(key, []), by_key.get(key, []), uses.get(key, [])
        if found:
            currencies = {line.currency.upper() for line in found}
            if len(currencies) > 1:
                raise ValueError(f"billed lines of {key} come in several currencies: {sorted(currencies)}")
            currency = currencies.pop()
            step = quantum if quantum is not None else currency_quantum(currency)
            exact = sum((line.cost for line in found), Decimal(0))
            cost = exact.quantize(step, rounding=ROUND_HALF_EVEN)
            quantity = sum((line.quantity for line in found), Decimal(0))
            rounding += cost - exact
            split = _rows_for(key, _split_for(key[2], here, held, BILLED), quantity, cost, step, BILLED,
                              currency, held)
            if split is None:
                reason = _no_driver_reason(key, accounts_seen, account_days)
                split = [AllocatedCost(key[0], key[1], key[2], "", UNALLOCATED, UNALLOCATED, quantity, cost, BILLED,
                                       currency, f"no telemetry driver: {reason}")]
            rows.extend(split)
            charged = {(r.deployment, r.team, r.method) for r in split}
            unbilled.extend(d for d in here if (d.deployment, d.team, d.method) not in charged)
        elif key[0] in covered:
            unbilled.extend(here)
        else:
            rows.extend(_estimate_rows(key, here, held, quantum, estimate_currency))
    unbilled.sort(key=lambda d: (d.day, d.account.lower(), meter_order(d.meter), d.deployment, d.team, d.method,
                                 d.account, d.quantity, d.estimated_cost))
    return Allocation(tuple(rows), tuple(unbilled), rounding)


def _estimate_rows(key: _LineKey, drivers: Sequence[Driver], uses: Sequence[ProvisionedUse],
                   quantum: Decimal | None, currency: str) -> list[AllocatedCost]:
    step = quantum if quantum is not None else currency_quantum(currency)
    split = _split_for(key[2], drivers, uses, ESTIMATE)
    if is_provisioned(key[2]) and any(u.ptu_hours > 0 for u in uses):
        exact = sum((u.estimated_cost for u in uses), Decimal(0))
        quantity = sum((u.ptu_hours for u in uses), Decimal(0))
    else:
        exact = sum((d.estimated_cost for d in drivers), Decimal(0))
        quantity = sum((d.quantity for d in drivers), Decimal(0))
    cost = exact.quantize(step, rounding=ROUND_HALF_EVEN)
    return _rows_for(key, split, quantity, cost, step, ESTIMATE, currency, uses) or []


def totals(rows: Iterable[AllocatedCost], key: Callable[[AllocatedCost], K]) -> dict[K, Decimal]:
    """Cost added up by any key of the rows, e.g. `lambda r: (r.team, r.basis)` or, per deployment,
    `lambda r: (r.account, r.deployment)`."""
    sums: dict[K, Decimal] = defaultdict(Decimal)
    for row in rows:
        sums[key(row)] += row.cost
    return dict(sums)


def quantities(rows: Iterable[AllocatedCost], key: Callable[[AllocatedCost], K]) -> Mapping[K, Decimal]:
    """Quantity added up by any key of the rows (mind the meter: tokens and PTU-hours do not add)."""
    sums: dict[K, Decimal] = defaultdict(Decimal)
    for row in rows:
        sums[key(row)] += row.quantity
    return dict(sums)
