"""Pure window planning: watermark + lag + lookback + now -> the grain-aligned windows to collect."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, order=True)
class Window:
    """A half-open time range [start, end), aligned to the grain."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"empty window {self.start} .. {self.end}")

    def __str__(self) -> str:
        return f"{_iso(self.start)}/{_iso(self.end)}"

    def halves(self, grain: timedelta) -> tuple[Window, Window] | None:
        """Split in two on a grain boundary; None when it is a single bucket."""
        buckets = (self.end - self.start) // grain
        if buckets < 2:
            return None
        middle = self.start + grain * (buckets // 2)
        return Window(self.start, middle), Window(middle, self.end)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def align_down(moment: datetime, grain: timedelta) -> datetime:
    """The grain boundary at or before `moment` (boundaries counted from the Unix epoch, in UTC)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; times are timezone-aware UTC")
    return EPOCH + ((moment.astimezone(UTC) - EPOCH) // grain) * grain


def align_up(moment: datetime, grain: timedelta) -> datetime:
    """The grain boundary at or after `moment`."""
    down = align_down(moment, grain)
    return down if down == moment else down + grain


def split_range(start: datetime, end: datetime, grain: timedelta, max_window: timedelta) -> Iterator[Window]:
    """Cut [start, end) into windows of at most `max_window`, cut on multiples of `max_window` where possible."""
    start, end = align_down(start, grain), align_up(end, grain)
    cursor = start
    while cursor < end:
        boundary = align_down(cursor, max_window) + max_window
        stop = min(boundary, end)
        yield Window(cursor, stop)
        cursor = stop


def collectable_end(now: datetime, grain: timedelta, lag: timedelta) -> datetime:
    """Windows end at most here: `now - lag`, down to the grain, so ingestion delay is allowed for."""
    return align_down(now - lag, grain)


def plan_windows(
    watermark: datetime | None,
    now: datetime,
    *,
    grain: timedelta,
    lag: timedelta,
    lookback: timedelta,
    max_window: timedelta,
) -> list[Window]:
    """The windows one collection pass covers for one job.

    It starts `lookback` before the watermark (late data is re-collected; the windows replace what the store had)
    and ends at `now - lag`. With no watermark yet, it collects just the lookback range: history is `backfill`'s job.
    """
    end = collectable_end(now, grain, lag)
    anchor = end if watermark is None else min(watermark, end)
    start = align_down(anchor - lookback, grain)
    if start >= end:
        return []
    return list(split_range(start, end, grain, max_window))
