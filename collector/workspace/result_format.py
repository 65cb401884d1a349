"""Pure: a query result rendered for a terminal (aligned table), as CSV, or as Log Analytics' JSON shape.

Values print as Kusto prints them (the `tostring()` of each type): timespans as `[-][d.]hh:mm:ss[.fffffff]`
(Kusto's timespan data type page), booleans as `true`/`false`, reals without a trailing `.0`, dynamic values as
compact JSON, datetimes in ISO 8601 UTC with a `Z`.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from collector.csvcells import SafeWriter, Typed
from collector.workspace.engine import ResultTable


def format_timespan(value: timedelta) -> str:
    """Kusto's `[-][d.]hh:mm:ss[.fffffff]`: days only when there are any, seven fraction digits only when any."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    seconds, micro = divmod(abs(micros), 1_000_000)
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3_600)
    minutes, seconds = divmod(seconds, 60)
    text = f"{sign}{f'{days}.' if days else ''}{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{text}.{micro * 10:07d}" if micro else text


def format_real(value: float) -> str:
    """A real as Kusto prints it: shortest round-trip digits, whole numbers without `.0`, NaN and infinities
    spelt as .NET spells them."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def format_datetime(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".") + "Z"


def format_dynamic(value: Any) -> str:
    """Compact JSON text; DuckDB hands JSON over as text, which may carry its own spacing."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _text(kql_type: str) -> Callable[[Any], str]:
    """How a non-null value of `kql_type` prints."""
    if kql_type == "timespan":
        return lambda v: format_timespan(v) if isinstance(v, timedelta) else str(v)
    if kql_type == "bool":
        return lambda v: "true" if v else "false"
    if kql_type == "real":
        return lambda v: format_real(float(v))
    if kql_type == "datetime":
        return lambda v: format_datetime(v) if isinstance(v, datetime) else str(v)
    if kql_type == "dynamic":
        return format_dynamic
    return str


def _cells(result: ResultTable) -> list[list[str]]:
    printers = [_text(c.type) for c in result.columns]
    return [["" if v is None else p(v) for p, v in zip(printers, row, strict=True)] for row in result.rows]


def as_table(result: ResultTable, max_rows: int | None = None) -> str:
    names = result.column_names()
    shown = result if max_rows is None else ResultTable(result.columns, result.rows[:max_rows])
    cells = _cells(shown)
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)
    if max_rows is not None and len(result.rows) > max_rows:
        lines.append(f"... {len(result.rows) - max_rows} more row(s)")
    lines.append(f"({len(result.rows)} row(s))")
    return "\n".join(lines)


#: Column types whose printed values are data of that type, never free text: written as they are in CSV (a
#: timespan or real may start with `-`); string, dynamic and guid values go through the formula check.
_TYPED = frozenset({"bool", "int", "long", "real", "decimal", "datetime", "timespan"})


def as_csv(result: ResultTable) -> str:
    buffer = io.StringIO()
    writer = SafeWriter(buffer, lineterminator="\n")
    writer.writerow(result.column_names())
    typed = [c.type in _TYPED for c in result.columns]
    writer.writerows([Typed(v) if is_typed and v else v for is_typed, v in zip(typed, row, strict=True)]
                     for row in _cells(result))
    return buffer.getvalue()


def _json_value(kql_type: str, value: Any) -> Any:
    """A value as the Log Analytics query API sends it: numbers and booleans as JSON, datetimes, timespans,
    decimals and guids as strings, dynamic values as JSON text (a string), non-finite reals by name."""
    if value is None:
        return None
    if kql_type == "bool":
        return bool(value)
    if kql_type in ("int", "long"):
        return int(value)
    if kql_type == "real":
        number = float(value)
        return number if math.isfinite(number) else format_real(number)
    if kql_type == "dynamic":
        return format_dynamic(value)
    return _text(kql_type)(value)


def as_json(result: ResultTable) -> str:
    """The shape the Log Analytics query API answers with."""
    table = {
        "name": "PrimaryResult",
        "columns": [{"name": c.name, "type": c.type} for c in result.columns],
        "rows": [[_json_value(c.type, v) for c, v in zip(result.columns, row, strict=True)] for row in result.rows],
    }
    return json.dumps({"tables": [table]}, indent=1, ensure_ascii=False)
