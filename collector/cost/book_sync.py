"""A price book file brought up to date with Azure's retail prices: the plan (figures added, changed and removed,
meters left out, rows a person wrote kept) and the write, whole and only when the text changes.

One file holds both kinds of rows. The sync owns the rows whose `source` starts with "Azure Retail Prices API" and
replaces exactly those; a person's rows, `overrides`, `extends` and comments stay as written
(`collector.billing.book_text`). A person's row with the id of a synced row wins: the synced row is left out and
reported. Before the new text replaces the file it is read back as a price book, and must hold the same rows and
overrides of the person's and the planned synced rows; anything else is our bug, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from collector.atomicfile import atomic_path
from collector.billing.book_text import LayoutError, is_owned, replace_synced_rows
from collector.billing.price_sync import (
    Change,
    SyncedBook,
    SyncedRow,
    Unmapped,
    build_book,
    diff,
    keep_retrieved,
    render_book,
    render_rows,
)
from collector.billing.retailprices import RetailPrice
from collector.cost.pricing import BookFile, Override, PriceRow, read_price_book
from collector.errors import InputError, Problem, TerminalError


@dataclass(frozen=True)
class CurrentBook:
    """The file at the sync's destination as it is now (absent: no text, no rows)."""

    path: Path
    text: str | None
    synced: tuple[PriceRow, ...]  # the rows a previous sync wrote
    kept: tuple[PriceRow, ...]  # the rows a person wrote
    overrides: tuple[Override, ...]


@dataclass(frozen=True)
class SyncPlan:
    current: CurrentBook
    rows: tuple[SyncedRow, ...]  # the synced rows the file will hold
    changes: tuple[Change, ...]
    unmapped: tuple[Unmapped, ...]
    shadowed: tuple[SyncedRow, ...]  # synced rows left out: a person's row has their id
    text: str

    @property
    def changed(self) -> bool:
        """Whether writing the plan changes the file."""
        return self.text != self.current.text


def read_current(path: Path) -> CurrentBook:
    """The destination book, checked as any price book is (a bad one stops the sync with its problems)."""
    if not path.exists():
        return CurrentBook(path, None, (), (), ())
    if not path.is_file():
        raise InputError([Problem(path, None, "is not a file", "give --out a file path")])
    book: BookFile = read_price_book(path)
    text = path.read_text(encoding="utf-8")
    return CurrentBook(path, text, tuple(r for r in book.rows if is_owned(r.source)),
                       tuple(r for r in book.rows if not is_owned(r.source)), book.overrides)


def plan_sync(current: CurrentBook, prices: Sequence[RetailPrice], today: date) -> SyncPlan:
    """What a sync of `prices`, read `today`, changes in the current book."""
    built: SyncedBook = keep_retrieved(build_book(prices, today), current.synced)
    if not built.rows:
        raise TerminalError(f"the Retail Prices API listed {len(prices)} Azure OpenAI price item(s), none of which "
                            f"maps to a price book row: nothing written to {current.path} (rerun later; if it "
                            "persists, the API or its meter names changed: report it)")
    theirs = {row.id for row in current.kept}
    rows = tuple(r for r in built.rows if r.id not in theirs)
    shadowed = tuple(r for r in built.rows if r.id in theirs)
    if current.text is None:
        text = render_book(rows)
    else:
        try:
            text = replace_synced_rows(current.text, render_rows(rows))
        except LayoutError as e:
            raise InputError([Problem(current.path, None, f"cannot replace the synced rows: {e}",
                                      "or give --out another file, and `extends` it from this one")]) from e
    return SyncPlan(current, rows, tuple(diff(current.synced, rows)), built.unmapped, shadowed, text)


def write_plan(plan: SyncPlan) -> bool:
    """Write the plan's text to its file, whole, if it differs from what the file holds; whether it wrote."""
    if not plan.changed:
        return False
    path = plan.current.path
    with atomic_path(path) as temp:
        temp.write_text(plan.text, encoding="utf-8")
        _check(plan, temp)
    return True


def _check(plan: SyncPlan, written: Path) -> None:
    try:
        book = read_price_book(written)
    except InputError as e:
        raise TerminalError(f"the synced price book would not load ({e}); {plan.current.path} is unchanged: report "
                            "this with the file") from e
    synced = {r.id: r for r in book.rows if is_owned(r.source)}
    kept = tuple(r for r in book.rows if not is_owned(r.source))
    wrong = []
    if kept != plan.current.kept:
        wrong.append("the rows written by hand")
    if book.overrides != plan.current.overrides:
        wrong.append("the overrides")
    if set(synced) != {r.id for r in plan.rows} or any(
            synced[r.id].source != r.source or synced[r.id].retrieved != r.retrieved
            or any(getattr(synced[r.id], k) != r.rate(k) for k in ("input", "cached_input", "output", "ptu_hour"))
            for r in plan.rows):
        wrong.append("the synced rows")
    if wrong:
        raise TerminalError(f"the synced price book would not hold the same {' and '.join(wrong)} as planned; "
                            f"{plan.current.path} is unchanged: report this with the file")
