"""Pure: a query result rendered for a terminal (aligned table), as CSV, or as Log Analytics' JSON shape."""

from __future__ import annotations

import io
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from collector.csvcells import SafeWriter
from collector.workspace.engine import ResultTable


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".") + "Z"
    return str(value)


def as_table(result: ResultTable, max_rows: int | None = None) -> str:
    names = result.column_names()
    rows = result.rows if max_rows is None else result.rows[:max_rows]
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)
    if max_rows is not None and len(result.rows) > max_rows:
        lines.append(f"... {len(result.rows) - max_rows} more row(s)")
    lines.append(f"({len(result.rows)} row(s))")
    return "\n".join(lines)


def as_csv(result: ResultTable) -> str:
    buffer = io.StringIO()
    writer = SafeWriter(buffer, lineterminator="\n")
    writer.writerow(result.column_names())
    writer.writerows([_cell(v) for v in row] for row in result.rows)
    return buffer.getvalue()


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _cell(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def as_json(result: ResultTable) -> str:
    """The shape the Log Analytics query API answers with (dynamic values stay JSON text, as Azure sends them)."""
    table = {
        "name": "PrimaryResult",
        "columns": [{"name": c.name, "type": c.type} for c in result.columns],
        "rows": [[_json_value(v) for v in row] for row in result.rows],
    }
    return json.dumps({"tables": [table]}, indent=1)
