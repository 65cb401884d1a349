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
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TextIO

#: The first characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def is_number_text(text: str) -> bool:
    """Whether `text` is nothing but a decimal number, as a spreadsheet would read it."""
    return _NUMBER.fullmatch(text) is not None


def safe_cell(value: Any) -> Any:
    """`value` as it may go into a CSV cell: numbers as they are; text (or anything else, as its `str`) that a
    spreadsheet would run as a formula with a leading `'`."""
    if value is None or isinstance(value, bool | int | float | Decimal):
        return value
    text = value if isinstance(value, str) else str(value)
    if text.startswith(FORMULA_STARTS) and not is_number_text(text):
        return "'" + text
    return text


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in row]


class SafeWriter:
    """`csv.writer` whose every cell goes through `safe_cell`."""

    def __init__(self, stream: TextIO, **options: Any) -> None:
        self._writer = csv.writer(stream, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter(csv.DictWriter):  # type: ignore[type-arg]  # generic in typeshed only, not at runtime
    """`csv.DictWriter` whose every cell (the header's too: `writeheader` calls `writerow`) goes through
    `safe_cell`."""

    def __init__(self, stream: TextIO, fieldnames: Sequence[str], **options: Any) -> None:
        super().__init__(stream, fieldnames, **options)

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({k: safe_cell(v) for k, v in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for row in rowdicts:
            self.writerow(row)
