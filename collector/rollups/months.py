"""Pure: calendar months in UTC, the period of budgets, reports and bills."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.errors import InputError


@dataclass(frozen=True)
class Period:
    """A calendar month in UTC: [start, end)."""

    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m}"


def month_of(instant: datetime) -> Period:
    """The calendar month (UTC) an instant falls in."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime: every time is timezone-aware UTC")
    at = instant.astimezone(UTC)
    start = datetime(at.year, at.month, 1, tzinfo=UTC)
    end = datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)
    return Period(start, end)


def previous_month(period: Period) -> Period:
    return month_of(period.start - timedelta(microseconds=1))


def parse_month(text: str) -> tuple[datetime, datetime]:
    """`YYYY-MM` as [first instant, first instant of the next month) in UTC."""
    try:
        start = datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)
    except ValueError as e:
        raise InputError([], f"--month: {text!r} is not a month; write YYYY-MM, e.g. 2026-10") from e
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end
