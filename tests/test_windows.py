"""Window planning: aligned, lagged, re-collecting the lookback, split at max_window."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.rollups.windows import Window, align_down, align_up, plan_windows, split_range

M5, H1 = timedelta(minutes=5), timedelta(hours=1)


def t(hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(2025, 3, 3, hh, mm, ss, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "down", "up"),
    [(t(10, 7, 30), t(10, 5), t(10, 10)), (t(10, 5), t(10, 5), t(10, 5)), (t(0, 0, 1), t(0), t(0, 5))],
)
def test_alignment(moment: datetime, down: datetime, up: datetime) -> None:
    assert align_down(moment, M5) == down
    assert align_up(moment, M5) == up


def test_first_pass_collects_the_lookback_up_to_now_minus_lag() -> None:
    windows = plan_windows(None, t(12, 3), grain=M5, lag=timedelta(minutes=10), lookback=H1, max_window=H1)
    assert windows == [Window(t(10, 50), t(11, 0)), Window(t(11, 0), t(11, 50))]


def test_later_pass_starts_a_lookback_before_the_watermark() -> None:
    windows = plan_windows(t(11, 50), t(12, 20), grain=M5, lag=timedelta(minutes=10), lookback=timedelta(minutes=30),
                           max_window=H1)
    assert windows == [Window(t(11, 20), t(12, 0)), Window(t(12, 0), t(12, 10))]


def test_a_watermark_ahead_of_the_clock_is_capped_at_now_minus_lag() -> None:
    windows = plan_windows(t(15), t(12), grain=M5, lag=M5, lookback=timedelta(minutes=10), max_window=H1)
    assert windows == [Window(t(11, 45), t(11, 55))]


@given(
    start_min=st.integers(min_value=0, max_value=60 * 24 * 10),
    length_min=st.integers(min_value=1, max_value=60 * 24 * 10),
    max_hours=st.sampled_from([1, 2, 6, 24]),
)
def test_split_range_covers_the_range_exactly_without_overlap(start_min: int, length_min: int, max_hours: int) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=start_min)
    end = start + timedelta(minutes=length_min)
    windows = list(split_range(start, end, M5, timedelta(hours=max_hours)))
    assert windows[0].start == align_down(start, M5)
    assert windows[-1].end == align_up(end, M5)
    for a, b in itertools.pairwise(windows):
        assert a.end == b.start
    for w in windows:
        assert w.end - w.start <= timedelta(hours=max_hours)
        assert align_down(w.start, M5) == w.start and align_down(w.end, M5) == w.end


def test_halves_split_on_the_grain() -> None:
    assert Window(t(10), t(10, 15)).halves(M5) == (Window(t(10), t(10, 5)), Window(t(10, 5), t(10, 15)))
    assert Window(t(10), t(10, 5)).halves(M5) is None


def test_windows_refuse_naive_or_empty_ranges() -> None:
    with pytest.raises(ValueError):
        Window(datetime(2025, 1, 1), datetime(2025, 1, 2))
    with pytest.raises(ValueError):
        Window(t(10), t(10))
