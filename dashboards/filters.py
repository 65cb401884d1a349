"""Pure: the dashboards' filters and their place in the URL's query string, both ways, so a link reproduces a view.

    ?range=7d&account=CONTOSO-AOAI-EUS&deployment=gpt-4o&deployment=gpt-4o-ptu&model=gpt-4o
    ?from=2026-11-24T14:00&to=2026-11-24T18:00            (custom range; times in the dashboards' time zone
                                                             unless they carry an offset or Z)

`range` is one of `RANGES` (relative to now); `from`/`to` make it a fixed range. `account`, `deployment`, `model`
and `team` repeat for several values. Unknown parameters and bad values are reported, never fatal: the view falls
back to the default for that filter and says why. `to_query` writes the canonical form (defaults left out).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from urllib.parse import parse_qs, urlencode

RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "2d": timedelta(days=2),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
RANGE_LABELS: dict[str, str] = {
    "1h": "Last hour", "6h": "Last 6 hours", "24h": "Last 24 hours", "2d": "Last 2 days", "7d": "Last 7 days",
    "30d": "Last 30 days", "90d": "Last 90 days", "custom": "Custom (from / to)",
}
DEFAULT_RANGE = "24h"
CUSTOM = "custom"
_LISTS = {"account": "accounts", "deployment": "deployments", "model": "models", "team": "teams"}


@dataclass(frozen=True)
class Filters:
    """What a page shows: a preset range or a custom one (`start`/`end` as typed), and value filters (empty: all)."""

    range: str = DEFAULT_RANGE
    start: str = ""
    end: str = ""
    accounts: tuple[str, ...] = ()
    deployments: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default=(), compare=False)


def parse_query(search: str | None) -> Filters:
    """Filters from a query string (with or without its leading `?`); problems are kept on the result."""
    params = parse_qs((search or "").lstrip("?"), keep_blank_values=False)
    problems: list[str] = []
    values: dict[str, tuple[str, ...]] = {}
    for key, items in params.items():
        if key in _LISTS:
            values[_LISTS[key]] = tuple(dict.fromkeys(v.strip() for v in items if v.strip()))
        elif key not in ("range", "from", "to"):
            problems.append(f"unknown URL parameter {key!r} ignored (filters: range, from, to, {', '.join(_LISTS)})")
    start, end = params.get("from", [""])[-1].strip(), params.get("to", [""])[-1].strip()
    chosen = params.get("range", [CUSTOM if start or end else DEFAULT_RANGE])[-1]
    if chosen not in RANGES and chosen != CUSTOM:
        problems.append(f"range {chosen!r} is not one of {', '.join(RANGES)}; showing {DEFAULT_RANGE}")
        chosen = DEFAULT_RANGE
    return Filters(chosen, start, end, **values, problems=tuple(problems))


def to_query(filters: Filters) -> str:
    """The canonical query string, `?` included ("" for the defaults)."""
    pairs: list[tuple[str, str]] = []
    if filters.range == CUSTOM:
        pairs += [(k, v) for k, v in (("from", filters.start), ("to", filters.end)) if v]
    elif filters.range != DEFAULT_RANGE:
        pairs.append(("range", filters.range))
    for key, attribute in _LISTS.items():
        pairs += [(key, v) for v in getattr(filters, attribute)]
    return f"?{urlencode(pairs)}" if pairs else ""


def from_controls(range_value: str | None, start: str | None, end: str | None, accounts: list[str] | None,
                  deployments: list[str] | None, models: list[str] | None, keep: Filters) -> Filters:
    """Filters from the controls' values; what the page has no control for (say `team`) is kept from `keep`."""
    return replace(keep, range=range_value or DEFAULT_RANGE, start=(start or "").strip(), end=(end or "").strip(),
                   accounts=tuple(accounts or ()), deployments=tuple(deployments or ()), models=tuple(models or ()),
                   problems=())


def hash_params(hash_text: str | None) -> dict[str, str]:
    """A page's own view parameters in the URL's hash (`#by=model&month=2026-03`), the last value of each."""
    return {k: v[-1] for k, v in parse_qs((hash_text or "").lstrip("#")).items()}


def hash_with(hash_text: str | None, **changes: str | None) -> str:
    """The hash (`#` included, "" when empty) with `changes` set, or removed where None."""
    params = hash_params(hash_text)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return f"#{urlencode(params)}" if params else ""


def parse_time(text: str, zone: tzinfo) -> datetime:
    """An ISO-8601 date or date-time; in `zone` unless it names its own offset (or Z). Raises ValueError."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T", 1))
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def resolve_range(filters: Filters, now: datetime, zone: tzinfo) -> tuple[datetime, datetime, list[str]]:
    """The [start, end) the filters mean at `now`, and any problems (a bad custom range falls back to the
    default preset, and says so)."""
    if filters.range != CUSTOM:
        return now - RANGES[filters.range], now, []
    try:
        start = parse_time(filters.start, zone) if filters.start else None
        end = parse_time(filters.end, zone) if filters.end else now
    except ValueError:
        return now - RANGES[DEFAULT_RANGE], now, [
            f"from/to must be ISO-8601 times such as 2026-11-24T14:00 (got {filters.start!r} / {filters.end!r}); "
            f"showing the last {DEFAULT_RANGE}"]
    if start is None:
        return now - RANGES[DEFAULT_RANGE], now, ["a custom range needs a `from` time; showing the last 24 hours"]
    if end <= start:
        return now - RANGES[DEFAULT_RANGE], now, [f"`to` ({filters.end}) must be after `from` ({filters.start}); "
                                                  f"showing the last {DEFAULT_RANGE}"]
    return start, end, []
