"""Pure: DuckDB's error text for a translated query, said as Log Analytics would say it, in the query's terms."""

from __future__ import annotations

import difflib
import re

from collector.workspace.kql_rewrite import tokens
from collector.workspace.schema import LOG_TABLES

#: DuckDB's two ways of saying a name is no column: unknown anywhere, or only an alias of the same projection.
_MISSING_COLUMN = re.compile(r'(?:Referenced column "([^"]+)" not found|Column "([^"]+)" referenced that exists)')
_CONVERSION = re.compile(r"Could not convert string '([^']*)' to (\w+)")


def _tables_read(kql: str) -> list[str]:
    """The workspace tables the query names, in order of first mention."""
    names: list[str] = []
    for token in tokens(kql):
        if token.kind == "ident" and token.text in LOG_TABLES and token.text not in names:
            names.append(token.text)
    return names


def kql_message(engine_error: str, kql: str) -> str:
    """A KQL-style message for `engine_error`, naming the column or value at fault; never DuckDB's binder text."""
    missing = _MISSING_COLUMN.search(engine_error)
    if missing:
        name = missing.group(1) or missing.group(2)
        # Kusto's wording for an unknown name (the SEM0100 semantic error); then which table lacks it.
        message = f"Failed to resolve scalar expression named '{name}'"
        tables = _tables_read(kql)
        if tables:
            columns = [c for t in tables for c in LOG_TABLES[t]]
            close = difflib.get_close_matches(name, columns, n=1) or [
                c for c in columns if c.lower() == name.lower()]
            message += f": '{name}' is not a column of {' or '.join(tables)}"
            if close:
                message += f" (did you mean '{close[0]}'?)"
        return message
    conversion = _CONVERSION.search(engine_error)
    if conversion:
        return (f"the value '{conversion.group(1)}' cannot be converted to {conversion.group(2).lower()}: "
                "convert explicitly (toint(), tolong(), todouble()) and test the result with isnotnull()")
    first_line = engine_error.strip().splitlines()[0] if engine_error.strip() else engine_error
    return f"the KQL query failed in the engine: {first_line}"
