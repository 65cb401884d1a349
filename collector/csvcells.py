"""Pure: CSV cells a spreadsheet opens as data, never as a formula (OWASP's CSV injection advice), and writers.

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a formula (`=HYPERLINK(...)`, `+cmd|' /C calc'!A0`,
`@SUM(...)`), and some skip a leading tab or carriage return before looking; OWASP's "CSV Injection" page lists these
six, and ASVS 1.2.10 adds the NUL character. Such a text cell gets a leading single quote, which the spreadsheet
shows as text. Numbers are left alone so they stay numbers: ints, Decimals and floats, and text that is only a
plain decimal number (how the exporters write Decimals: `-0.25`, `1E+3`), since a spreadsheet reads that as a
number and runs nothing. Quotes inside a cell are doubled by the csv module's writer (RFC 4180), as OWASP also asks.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Literal, TextIO

#: The first characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def is_number_text(text: str) -> bool:
    """Whether `text` is nothing but a decimal number, as a spreadsheet would read it."""
    return _NUMBER.fullmatch(text) is not None


class Typed(str):
    """The text of a value of a typed column (a number, time, timespan or boolean as printed): it cannot carry a
    formula, whatever its first character (`-01:00:00`, `-Infinity`), so it is written as it is."""

    __slots__ = ()


def safe_cell(value: Any) -> Any:
    """`value` as it may go into a CSV cell: numbers as they are; text (or anything else, as its `str`) that a
    spreadsheet would run as a formula with a leading `'`."""
    if value is None or isinstance(value, bool | int | float | Decimal | Typed):
        return value
    text = value if isinstance(value, str) else str(value)
    if text.startswith(FORMULA_STARTS) and not is_number_text(text):
        return "'" + text
    return text


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in row]


class SafeWriter:
    """`csv.writer` whose every cell goes through `safe_cell`, and whose cells holding a CR or LF are always quoted:
    the csv module quotes only the characters of its own line terminator, so with `lineterminator="\n"` a bare CR
    would end the row for a reader."""

    def __init__(self, stream: TextIO, *, lineterminator: str = "\r\n", **options: Any) -> None:
        self._stream = stream
        self._end = lineterminator
        self._line = io.StringIO()
        self._writer = csv.writer(self._line, lineterminator="\r\n", **options)

    def writerow(self, row: Iterable[Any]) -> int:
        self._line.seek(0)
        self._line.truncate()
        self._writer.writerow(safe_row(row))
        return self._stream.write(self._line.getvalue()[:-2] + self._end)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter(csv.DictWriter):  # type: ignore[type-arg]  # generic in typeshed only, not at runtime
    """`csv.DictWriter` writing its rows (the header too) through a `SafeWriter`."""

    def __init__(self, stream: TextIO, fieldnames: Sequence[str], *, restval: Any = "",
                 extrasaction: Literal["raise", "ignore"] = "raise", **options: Any) -> None:
        super().__init__(stream, fieldnames, restval=restval, extrasaction=extrasaction)
        self.writer = SafeWriter(stream, **options)  # type: ignore[assignment]  # has the writerow DictWriter uses
