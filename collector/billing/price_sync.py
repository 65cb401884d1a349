"""Pure: retail prices -> the rows of an effective-dated price book, the diff from the current book, and its YAML.

One row per (model, version, deployment type, region, effective date), in USD per 1M tokens (input, cached input,
output) or per PTU-hour (a provisioned meter, any model: model "*"). Every figure names its meter id in `source`;
`retrieved` is the day the figures were read, and stays the day they were first read for as long as they do not
change, so that a second sync of the same prices renders the same text, byte for byte, and writes nothing.

Only `Consumption` rows are prices per use; a `Reservation` row is the price of a reservation term bought up front
(for Azure OpenAI, PTUs reserved for a month or a year), and `DevTestConsumption` a dev/test offer. Those, meters the
reader cannot map, prices not in USD, tiered prices and two meters giving the same figure are returned as
`Unmapped`, each with its reason: listed, never dropped.

The YAML uses exactly the keys `collector.cost.pricing` reads for a row (it is not imported here: the book's reader and
this writer meet in a test).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Protocol

from collector.billing.meters import PROVISIONED_TYPES, MeterKey, counts_hours, counts_units, read_meter, split_unit
from collector.billing.retailprices import RetailPrice

RATE_KEYS = ("input", "cached_input", "output", "ptu_hour")
SOURCE_PREFIX = "Azure Retail Prices API"
MILLION = Decimal(1_000_000)
HEADER = """\
# Azure OpenAI list prices from the Azure Retail Prices API (https://prices.azure.com/api/retail/prices), written by
# `aoai-obs prices sync`. USD per 1M tokens (input / cached_input / output), or USD per PTU-hour for provisioned
# deployments (model "*": the same for every model). `source` names the meter of each figure; `retrieved` is the day
# the figures were first read unchanged. The next sync replaces the rows whose source names the Retail Prices API
# and keeps everything else as written: your own rows (another `source`), `overrides`, `extends` and comments.
"""

Key = tuple[str, str | None, str, str | None]  # model, version, deployment type, region


@dataclass(frozen=True)
class Figure:
    """One rate of a row and where it came from."""

    value: Decimal
    meter_id: str
    meter_name: str


@dataclass(frozen=True)
class SyncedRow:
    """A price-book row built from retail prices: each rate is a Figure (or None when Azure lists no such meter)."""

    model: str
    version: str | None
    deployment_type: str
    region: str | None
    effective: datetime
    figures: dict[str, Figure] = field(default_factory=dict)  # keyed by RATE_KEYS
    retrieved: date = date(1970, 1, 1)

    @property
    def id(self) -> str:
        """The id `collector.cost.pricing` gives a row without one: model[@version]/type[/region]/YYYY-MM-DD."""
        return (f"{self.model}{'@' + self.version if self.version else ''}/{self.deployment_type}"
                f"{'/' + self.region if self.region else ''}/{self.effective.date().isoformat()}")

    def rate(self, key: str) -> Decimal | None:
        figure = self.figures.get(key)
        return figure.value if figure is not None else None

    @property
    def source(self) -> str:
        named = ", ".join(f"{k} meter {self.figures[k].meter_id}" for k in RATE_KEYS if k in self.figures)
        return f"{SOURCE_PREFIX}: {named}"

    @property
    def note(self) -> str:
        return "meters: " + "; ".join(f"{k} {self.figures[k].meter_name!r}" for k in RATE_KEYS if k in self.figures)


@dataclass(frozen=True)
class Unmapped:
    """A retail price row that is not in the book, and why."""

    meter_id: str
    meter_name: str
    product_name: str
    region: str
    type: str
    reason: str


@dataclass(frozen=True)
class SyncedBook:
    rows: tuple[SyncedRow, ...]
    unmapped: tuple[Unmapped, ...]


class BookRow(Protocol):
    """What the diff reads of a current book's row (`collector.cost.pricing.PriceRow` has these)."""

    @property
    def id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def input(self) -> Decimal | None: ...
    @property
    def cached_input(self) -> Decimal | None: ...
    @property
    def output(self) -> Decimal | None: ...
    @property
    def ptu_hour(self) -> Decimal | None: ...
    @property
    def retrieved(self) -> date: ...


# -- building ------------------------------------------------------------------------------------------------------


def _unmapped(price: RetailPrice, reason: str) -> Unmapped:
    return Unmapped(price.meter_id, price.meter_name, price.product_name, price.region, price.type, reason)


def _key_of(price: RetailPrice) -> tuple[MeterKey | None, str]:
    reading = read_meter(price.meter_name)
    if reading.key is None and price.sku_name:
        by_sku = read_meter(price.sku_name)
        if by_sku.key is not None:
            return by_sku.key, ""
    return reading.key, reading.reason


def _rate(price: RetailPrice, key: MeterKey) -> tuple[Decimal | None, str]:
    """The price in the book's unit (per 1M tokens, or per PTU-hour), or None and why not."""
    try:
        block, _ = split_unit(price.unit_of_measure)
        if key.kind == "ptu_hour":
            if not counts_hours(price.unit_of_measure):
                return None, f"a PTU meter priced per {price.unit_of_measure!r}, not per hour"
            return price.retail_price / block, ""
        if not counts_units(price.unit_of_measure):
            return None, f"a token meter priced per {price.unit_of_measure!r}, not per a number of tokens"
    except ValueError as e:
        return None, str(e)
    return price.retail_price * MILLION / block, ""


def build_book(prices: Iterable[RetailPrice], today: date) -> SyncedBook:
    """The book's rows from the retail prices read `today`, and the rows left out with their reasons."""
    unmapped: list[Unmapped] = []
    # key -> kind -> effective -> candidate figures
    found: dict[Key, dict[str, dict[datetime, list[Figure]]]] = defaultdict(lambda: defaultdict(dict))
    for price in prices:
        if price.type != "Consumption":
            term = f" ({price.reservation_term} term)" if price.reservation_term else ""
            unmapped.append(_unmapped(price, f"a {price.type} price{term}, not a price per use"))
            continue
        if price.currency != "USD":
            unmapped.append(_unmapped(price, f"priced in {price.currency}: the price book is in USD only"))
            continue
        if price.tier_minimum_units:
            unmapped.append(_unmapped(price, f"a tier from {price.tier_minimum_units} units: not a list price"))
            continue
        key, reason = _key_of(price)
        if key is None:
            unmapped.append(_unmapped(price, reason))
            continue
        value, reason = _rate(price, key)
        if value is None:
            unmapped.append(_unmapped(price, reason))
            continue
        row_key: Key = (key.model, key.version, key.deployment_type, price.region or None)
        at = found[row_key][key.kind].setdefault(price.effective_start, [])
        at.append(Figure(value.normalize(), price.meter_id, price.meter_name))
    rows: list[SyncedRow] = []
    for row_key, kinds in found.items():
        timelines: dict[str, list[tuple[datetime, Figure]]] = {}
        for kind, by_date in kinds.items():
            timeline = []
            for effective, figures in sorted(by_date.items()):
                if len({(f.meter_id, f.value) for f in figures}) > 1:
                    names = "; ".join(sorted(f"{f.meter_name!r} ({f.meter_id}) {f.value}" for f in figures))
                    for f in figures:
                        unmapped.append(Unmapped(f.meter_id, f.meter_name, "", row_key[3] or "", "Consumption",
                                                 f"two meters give the {kind} rate of {_label(row_key)} from "
                                                 f"{effective.date()}: {names}"))
                    continue
                timeline.append((effective, figures[0]))
            if timeline:
                timelines[kind] = timeline
        for effective in sorted({at for timeline in timelines.values() for at, _ in timeline}):
            current = {kind: next(f for at, f in reversed(timeline) if at <= effective)
                       for kind, timeline in timelines.items() if timeline[0][0] <= effective}
            model, version, dtype, region = row_key
            rows.append(SyncedRow(model, version, dtype, region, effective, current, today))
    rows.sort(key=_order)
    unmapped.sort(key=lambda u: (u.meter_name, u.region, u.meter_id, u.reason))
    return SyncedBook(tuple(rows), tuple(unmapped))


def _label(key: Key) -> str:
    model, version, dtype, region = key
    return f"{model}{'@' + version if version else ''} {dtype}{' in ' + region if region else ''}"


def _order(row: SyncedRow) -> tuple[str, str, str, str, datetime]:
    return row.model, row.version or "", row.deployment_type, row.region or "", row.effective


def keep_retrieved(synced: SyncedBook, current: Iterable[BookRow]) -> SyncedBook:
    """The synced rows with the current book's `retrieved` day where a row's figures and sources are unchanged."""
    before = {row.id: row for row in current}
    kept = []
    for row in synced.rows:
        old = before.get(row.id)
        same = old is not None and old.source == row.source and all(
            getattr(old, k) == row.rate(k) for k in RATE_KEYS)
        kept.append(replace(row, retrieved=old.retrieved) if same and old is not None else row)
    return SyncedBook(tuple(kept), synced.unmapped)


# -- the diff ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One figure added, changed or removed."""

    row_id: str
    figure: str
    old: Decimal | None
    new: Decimal | None

    @property
    def kind(self) -> str:
        return "added" if self.old is None else "removed" if self.new is None else "changed"

    def __str__(self) -> str:
        if self.kind == "added":
            return f"+ {self.row_id} {self.figure}: {_number(self.new)}"
        if self.kind == "removed":
            return f"- {self.row_id} {self.figure}: {_number(self.old)}"
        return f"~ {self.row_id} {self.figure}: {_number(self.old)} -> {_number(self.new)}"


def diff(current: Iterable[BookRow], synced: Sequence[SyncedRow]) -> list[Change]:
    """Per figure, what the synced rows add, change or remove against the current book. Only rows the sync wrote
    (their source names the Retail Prices API) can be removed: rows a person wrote are theirs."""
    before = {row.id: row for row in current}
    after = {row.id: row for row in synced}
    changes: list[Change] = []
    for row_id in sorted(before.keys() | after.keys()):
        old_row, new_row = before.get(row_id), after.get(row_id)
        if new_row is None and (old_row is None or not old_row.source.startswith(SOURCE_PREFIX)):
            continue
        for key in RATE_KEYS:
            old = getattr(old_row, key) if old_row is not None else None
            new = new_row.rate(key) if new_row is not None else None
            if old != new:
                changes.append(Change(row_id, key, old, new))
    return changes


# -- the YAML ------------------------------------------------------------------------------------------------------


def _number(value: Decimal | None) -> str:
    if value is None:
        return "null"
    return format(value.normalize(), "f")


def _text(value: str | None) -> str:
    return "null" if value is None else json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML scalar


def _instant(value: datetime) -> str:
    value = value.astimezone(UTC)
    if value.time() == time(0):
        return value.date().isoformat()
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def render_book(rows: Sequence[SyncedRow]) -> str:
    """The book as YAML: rows sorted, every key `collector.cost.pricing` reads, numbers as quoted decimals."""
    lines = [HEADER.rstrip("\n"), "currency: USD", "rows:" if rows else "rows: []"]
    return "\n".join(lines) + "\n" + render_rows(rows)


def render_rows(rows: Sequence[SyncedRow]) -> str:
    """The rows alone, sorted, as items of a block list whose dashes are in column 2 (what `render_book` puts
    under `rows:`)."""
    lines: list[str] = []
    for row in sorted(rows, key=_order):
        provisioned = row.deployment_type in PROVISIONED_TYPES
        lines.append(f"  - id: {_text(row.id)}")
        lines.append(f"    model: {_text(row.model)}")
        lines.append(f"    version: {_text(row.version)}")
        lines.append(f"    deployment_type: {row.deployment_type}")
        lines.append(f"    region: {_text(row.region)}")
        lines.append(f"    effective: {_instant(row.effective)}")
        for key in RATE_KEYS:
            if (key == "ptu_hour") != provisioned and row.rate(key) is None:
                continue  # a token row has no PTU rate and a PTU row no token rates: leave the key out
            value = row.rate(key)
            lines.append(f"    {key}: {_text(_number(value)) if value is not None else 'null'}")
        lines.append(f"    source: {_text(row.source)}")
        lines.append(f"    retrieved: {row.retrieved.isoformat()}")
        lines.append("    approximate: false")
        lines.append(f"    note: {_text(row.note)}")
    return "".join(line + "\n" for line in lines)


def render_unmapped(unmapped: Sequence[Unmapped]) -> str:
    """The rows left out, one a line, for the person running the sync."""
    return "".join(f"{u.meter_name!r} ({u.meter_id}, {u.region or 'no region'}, {u.type}): {u.reason}\n"
                   for u in unmapped)
