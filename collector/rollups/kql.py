"""The production KQL files: loading them with their headers, and binding a collection window into their text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from collector.errors import InputError, Problem

_HEADER = re.compile(r"^//\s*(name|grain|source|feeds):\s*(.*)$")
REQUIRED_HEADERS = ("name", "grain", "source", "feeds")


@dataclass(frozen=True)
class KqlQuery:
    """One production query: its header fields and its text (which refers to WindowStart, WindowEnd, Grain)."""

    name: str
    grain: str
    source: str
    feeds: str
    text: str
    path: Path


def parse_query(text: str, path: Path) -> KqlQuery:
    """Read a query's header; every missing field is reported with the file."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _HEADER.match(line.strip())
        if match and match.group(1) not in fields:
            fields[match.group(1)] = match.group(2).strip()
    missing = [f for f in REQUIRED_HEADERS if not fields.get(f)]
    if missing:
        raise InputError(
            [Problem(path, 1, f"query header lacks `// {m}: ...`", "every .kql file opens with name, grain, "
                     "source and feeds lines") for m in missing]
        )
    if fields["name"] != path.stem:
        raise InputError([Problem(path, 1, f"query name {fields['name']!r} differs from the file name",
                                  f"rename it to {path.stem!r}")])
    return KqlQuery(fields["name"], fields["grain"], fields["source"], fields["feeds"], text, path)


def packaged_query_dir() -> Path:
    """Where the shipped `queries/*.kql` files are."""
    return Path(str(resources.files("queries")))


def load_queries(directory: Path | None = None) -> list[KqlQuery]:
    """Every `.kql` file of `directory` (the shipped queries by default), sorted by name."""
    folder = directory or packaged_query_dir()
    return [parse_query(p.read_text(encoding="utf-8"), p) for p in sorted(folder.glob("*.kql"))]


def kql_datetime(moment: datetime) -> str:
    """A KQL datetime literal for an aware datetime, in UTC."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; every time in aoai-observatory is timezone-aware UTC")
    return "datetime(" + moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + ")"


def kql_timespan(span: timedelta) -> str:
    """A KQL timespan literal such as `5m` or `1h` (whole seconds)."""
    seconds = int(span.total_seconds())
    if seconds <= 0 or seconds != span.total_seconds():
        raise ValueError(f"timespan must be a positive whole number of seconds, not {span}")
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def window_prelude(start: datetime, end: datetime, grain: timedelta) -> str:
    """The `let` statements that give a query its window and grain; the same prelude the KQL check uses."""
    return (
        f"let WindowStart = {kql_datetime(start)};\n"
        f"let WindowEnd = {kql_datetime(end)};\n"
        f"let Grain = {kql_timespan(grain)};\n"
    )


def bind_window(query: KqlQuery, start: datetime, end: datetime, grain: timedelta) -> str:
    """The text to send: the prelude then the query, unchanged (so reported line numbers shift by three)."""
    return window_prelude(start, end, grain) + query.text
