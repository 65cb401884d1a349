"""Pure: the price book (effective-dated Azure OpenAI prices with provenance and overrides) and what tokens cost.

Money is `Decimal` throughout. Prices are USD per 1M tokens, or USD per PTU-hour for provisioned deployments.
Cost is never stored: it is computed at read time from usage rows, so correcting a price re-prices history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from collector.billing import meters
from collector.errors import InputError
from collector.yamlfile import Loc, Located, read_located_yaml

#: Our deployment types (`collector.cost.inventory.AZURE_SKUS` maps ARM's SKU names to them), shared with the meter
#: reader so that every type Azure meters can be priced.
DEPLOYMENT_TYPES: tuple[str, ...] = meters.DEPLOYMENT_TYPES
#: Billed per PTU-hour whatever the traffic (azure-telemetry.md §7), not per token.
PROVISIONED_TYPES: frozenset[str] = frozenset(meters.PROVISIONED_TYPES)
ANY_MODEL = meters.ANY_MODEL
MILLION = Decimal(1_000_000)

# -- the book ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceRow:
    """One price, effective from a date, with where the figure came from. `None` rates are unknown (unpriced)."""

    id: str
    model: str  # "*" matches any model (provisioned prices are per PTU, not per model)
    version: str | None  # None: any version
    deployment_type: str
    region: str | None  # None: any region
    effective: datetime
    input: Decimal | None  # USD per 1M input tokens
    cached_input: Decimal | None
    output: Decimal | None
    ptu_hour: Decimal | None  # USD per PTU per hour (provisioned types)
    source: str
    retrieved: date
    approximate: bool = False
    override: str = ""  # the override applied, if any (set by price_for)

    @property
    def provisioned(self) -> bool:
        return self.deployment_type in PROVISIONED_TYPES

    @property
    def one_rate(self) -> bool:
        """Whether the model's meters have one rate, on input tokens (embeddings): no output rate is missing."""
        return self.model in meters.ONE_RATE_MODELS

    @property
    def unpriced(self) -> bool:
        """Whether this row lacks a rate its deployment type and model are billed by."""
        if self.provisioned:
            return self.ptu_hour is None
        return self.input is None or (self.output is None and not self.one_rate)


@dataclass(frozen=True)
class Override:
    """A negotiated price: a discount percentage or full rates, for the book, an account or a deployment."""

    scope: str  # book | account | deployment
    name: str  # account or deployment name; "" for the book
    account: str  # for a deployment: its account ("" = any)
    model: str | None
    deployment_type: str | None
    discount_percent: Decimal | None
    rates: Mapping[str, Decimal]  # any of input, cached_input, output, ptu_hour
    source: str


@dataclass(frozen=True)
class PriceBook:
    rows: tuple[PriceRow, ...]
    overrides: tuple[Override, ...] = ()
    currency: str = "USD"


RATE_KEYS = ("input", "cached_input", "output", "ptu_hour")
_ROW_KEYS = ("id", "model", "version", "deployment_type", "region", "effective", *RATE_KEYS, "source", "retrieved",
             "approximate", "note")
_OVERRIDE_KEYS = ("scope", "name", "account", "model", "deployment_type", "discount_percent", *RATE_KEYS, "source")
_SCOPES = ("book", "account", "deployment")


def _optional_text(at: Located, entry: dict[str, Any], key: str, loc: Loc) -> str | None:
    if entry.get(key) is None:
        return None
    return at.text(entry[key], (*loc, key))


def _row(at: Located, raw: Any, loc: Loc) -> PriceRow | None:
    entry = at.mapping(raw, loc, _ROW_KEYS, ("model", "deployment_type", "effective", "source", "retrieved"))
    if not entry:
        return None
    before = len(at.problems)
    model = at.text(entry.get("model"), (*loc, "model")) if "model" in entry else None
    dtype = at.choice(entry.get("deployment_type"), (*loc, "deployment_type"), DEPLOYMENT_TYPES) \
        if "deployment_type" in entry else None
    rates = {k: at.decimal(entry[k], (*loc, k)) if entry.get(k) is not None else None for k in RATE_KEYS}
    if dtype in PROVISIONED_TYPES:
        for k in ("input", "cached_input", "output"):
            if entry.get(k) is not None:
                at.add((*loc, k), f"a {dtype} deployment is billed per PTU-hour, not per token", "use ptu_hour")
        if "ptu_hour" not in entry:
            at.add(loc, "a provisioned row needs ptu_hour", "write `ptu_hour: null` if the rate is not known yet")
    elif dtype is not None:
        if entry.get("ptu_hour") is not None:
            at.add((*loc, "ptu_hour"), f"a {dtype} deployment is billed per token, not per PTU-hour")
        if entry.get("input") is None and "input" not in entry:
            at.add(loc, "a token-priced row needs input (and output)", "write `input: null` if not known yet")
    effective = at.instant(entry["effective"], (*loc, "effective")) if "effective" in entry else None
    retrieved = at.instant(entry["retrieved"], (*loc, "retrieved")) if "retrieved" in entry else None
    source = at.text(entry["source"], (*loc, "source")) if "source" in entry else None
    version = _optional_text(at, entry, "version", loc)
    region = _optional_text(at, entry, "region", loc)
    approximate = entry.get("approximate", False)
    if not isinstance(approximate, bool):
        at.add((*loc, "approximate"), "must be true or false")
    if len(at.problems) > before or model is None or dtype is None or effective is None or retrieved is None \
            or source is None:
        return None
    row_id = entry.get("id") or f"{model}{'@' + version if version else ''}/{dtype}" \
                                f"{'/' + region if region else ''}/{effective.date().isoformat()}"
    return PriceRow(str(row_id), model, version, dtype, region, effective, rates["input"], rates["cached_input"],
                    rates["output"], rates["ptu_hour"], source, retrieved.date(), bool(approximate))


def _override(at: Located, raw: Any, loc: Loc) -> Override | None:
    entry = at.mapping(raw, loc, _OVERRIDE_KEYS, ("scope", "source"))
    if not entry:
        return None
    before = len(at.problems)
    scope = at.choice(entry.get("scope"), (*loc, "scope"), _SCOPES) if "scope" in entry else None
    name = ""
    if scope in ("account", "deployment"):
        name = at.text(entry.get("name"), (*loc, "name")) or ""
    elif scope == "book" and "name" in entry:
        at.add((*loc, "name"), "a book-wide override names no account or deployment")
    dtype = entry.get("deployment_type")
    if dtype is not None:
        at.choice(dtype, (*loc, "deployment_type"), DEPLOYMENT_TYPES)
    discount = at.decimal(entry["discount_percent"], (*loc, "discount_percent")) \
        if entry.get("discount_percent") is not None else None
    if discount is not None and discount > 100:
        at.add((*loc, "discount_percent"), f"{discount} is more than 100")
    rates = {k: v for k in RATE_KEYS if entry.get(k) is not None
             and (v := at.decimal(entry[k], (*loc, k))) is not None}
    if (discount is None) == (not rates) and len(at.problems) == before:
        at.add(loc, "give either discount_percent or full rates (input, cached_input, output, ptu_hour)")
    source = at.text(entry.get("source"), (*loc, "source")) if "source" in entry else None
    if len(at.problems) > before or scope is None or source is None:
        return None
    return Override(scope, name, str(entry.get("account") or ""), entry.get("model"), dtype, discount, rates,
                    source)


DEFAULT_BOOK = Path(__file__).with_name("pricebook") / "default.yaml"


@dataclass(frozen=True)
class BookFile:
    """One price book file as read: its own rows and overrides, and the book it extends (resolved), if any."""

    path: Path
    rows: tuple[PriceRow, ...]
    overrides: tuple[Override, ...]
    base: PriceBook | None

    @property
    def book(self) -> PriceBook:
        """The book the file means: the base's rows less those this file replaces (same id), then its own."""
        if self.base is None:
            return PriceBook(self.rows, self.overrides)
        mine = {row.id for row in self.rows}
        rows = [row for row in self.base.rows if row.id not in mine] + list(self.rows)
        return PriceBook(tuple(rows), (*self.base.overrides, *self.overrides))


def load_price_book(path: Path, *, _seen: tuple[Path, ...] = ()) -> PriceBook:
    """Read and check a price book; every problem in the file is reported at once, with its line.

    `extends: default` (the shipped book) or `extends: PATH` (relative to this file) starts from another book:
    this file's rows replace the base's rows of the same id and add the others, and its overrides come after the
    base's. A book with `extends` needs no rows of its own (say, only a negotiated PTU rate as an override)."""
    return read_price_book(path, _seen=_seen).book


def read_price_book(path: Path, *, _seen: tuple[Path, ...] = ()) -> BookFile:
    """Read and check a price book, keeping its own rows apart from those of the book it extends (what a writer of
    the file, such as `aoai-obs prices sync`, needs)."""
    data, lines, problems = read_located_yaml(path, "price book")
    at = Located(path, lines, problems)
    top = at.mapping(data, (), ("currency", "extends", "rows", "overrides"),
                     () if isinstance(data, dict) and "extends" in data else ("rows",))
    base = _base_book(at, top.get("extends"), path, _seen)
    if top.get("currency", "USD") != "USD":
        at.add(("currency",), "only USD is supported (Azure's list prices are in USD)")
    raw_rows = top.get("rows") or []
    raw_overrides = top.get("overrides") or []
    for key, value in (("rows", raw_rows), ("overrides", raw_overrides)):
        if not isinstance(value, list):
            at.add((key,), "must be a list")
    rows = [r for i, raw in enumerate(raw_rows if isinstance(raw_rows, list) else [])
            if (r := _row(at, raw, ("rows", i))) is not None]
    overrides = [o for i, raw in enumerate(raw_overrides if isinstance(raw_overrides, list) else [])
                 if (o := _override(at, raw, ("overrides", i))) is not None]
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        if row.id in seen:
            at.add(("rows", i), f"price id {row.id!r} is already used by rows[{seen[row.id]}]",
                   "give one of them another id, or remove the duplicate")
        seen.setdefault(row.id, i)
    at.raise_if_any("price book")
    return BookFile(path, tuple(rows), tuple(overrides), base)


def _base_book(at: Located, raw: Any, path: Path, seen: tuple[Path, ...]) -> PriceBook | None:
    if raw is None:
        return None
    text = at.text(raw, ("extends",))
    if text is None:
        return None
    base = DEFAULT_BOOK if text == "default" else (path.parent / text)
    if base.resolve() in seen or base.resolve() == path.resolve():
        at.add(("extends",), f"{text!r} extends itself (through {' -> '.join(p.name for p in seen)})")
        return None
    if not base.is_file():
        at.add(("extends",), f"no price book at {base}", "write `default` for the shipped book, or a path "
               "relative to this file")
        return None
    try:
        return load_price_book(base, _seen=(*seen, path.resolve()))
    except InputError as e:
        at.problems.extend(e.problems)  # each at its own file and line
        return None


# -- choosing and applying prices --------------------------------------------------------------------------------


def _applies(o: Override, model: str, deployment_type: str, account: str | None, deployment: str | None) -> bool:
    if o.model is not None and o.model != model:
        return False
    if o.deployment_type is not None and o.deployment_type != deployment_type:
        return False
    # Account names are compared as ARM does, case-insensitively (Log Analytics upper-cases them).
    if o.scope == "account":
        return o.name.lower() == (account or "").lower()
    if o.scope == "deployment":
        return o.name == deployment and (not o.account or o.account.lower() == (account or "").lower())
    return True


def _apply(row: PriceRow, o: Override) -> PriceRow:
    label = f"{o.scope}{':' + o.name if o.name else ''}"
    if o.discount_percent is not None:
        factor = (Decimal(100) - o.discount_percent) / Decimal(100)
        rates: dict[str, Decimal | None] = {
            k: (v * factor if (v := getattr(row, k)) is not None else None) for k in RATE_KEYS}
        text = f"{label} -{o.discount_percent}% ({o.source})"
    else:
        rates = {k: o.rates.get(k, getattr(row, k)) for k in RATE_KEYS}
        text = f"{label} rates ({o.source})"
    # The id names the override too: one base row under two negotiated rates is two prices.
    return replace(row, id=f"{row.id}+{label}", override=text, input=rates["input"], cached_input=rates["cached_input"],
                   output=rates["output"], ptu_hour=rates["ptu_hour"])


def price_for(book: PriceBook, model: str, version: str | None, deployment_type: str, region: str | None,
              at: datetime, *, account: str | None = None, deployment: str | None = None) -> PriceRow | None:
    """The price of a deployment at an instant: the most specific row (model, then version, then region) among
    those effective at or before `at`, the latest of them; then the most specific override (deployment, account,
    book). None when no row matches: the caller prices the usage at zero and flags it."""
    candidates = [
        r for r in book.rows
        if r.deployment_type == deployment_type and r.effective <= at
        and r.model in (model, ANY_MODEL)
        and (r.version is None or r.version == version)
        and (r.region is None or (region is not None and r.region.lower() == region.lower()))
    ]
    if not candidates:
        return None
    best = max(candidates, key=lambda r: (r.model != ANY_MODEL, r.version is not None, r.region is not None,
                                          r.effective))
    rank = {"deployment": 0, "account": 1, "book": 2}
    overrides = sorted((o for o in book.overrides if _applies(o, model, deployment_type, account, deployment)),
                       key=lambda o: rank[o.scope])
    return _apply(best, overrides[0]) if overrides else best


def cost_of_tokens(row: PriceRow | None, prompt_tokens: int, cached_tokens: int, completion_tokens: int) -> Decimal:
    """Exact USD of token usage: uncached input (prompt - cached) at the input rate, cached at the cached rate
    (the input rate when the row has none), output at the output rate. Zero for no row or a provisioned row."""
    if row is None or row.provisioned or row.unpriced:
        return Decimal(0)
    if not 0 <= cached_tokens <= prompt_tokens:
        raise ValueError(f"cached tokens ({cached_tokens}) must lie between 0 and prompt tokens ({prompt_tokens})")
    assert row.input is not None  # not unpriced
    cached_rate = row.cached_input if row.cached_input is not None else row.input
    output_rate = row.output if row.output is not None else Decimal(0)  # a one-rate model's meters charge no output
    total = (Decimal(prompt_tokens - cached_tokens) * row.input + Decimal(cached_tokens) * cached_rate
             + Decimal(completion_tokens) * output_rate)
    return total / MILLION


def cost_of_ptus(row: PriceRow | None, ptus: int, minutes: int) -> Decimal:
    """Exact USD of a provisioned deployment over some minutes: billed per PTU-hour, prorated per minute."""
    if row is None or not row.provisioned or row.ptu_hour is None:
        return Decimal(0)
    return Decimal(ptus) * row.ptu_hour * Decimal(minutes) / Decimal(60)
