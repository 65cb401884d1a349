"""Latency histograms: the KQL bucket formula and ours agree; merged-bucket percentiles are exact to a bucket."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.rollups.histogram import bucket_lower_ms, bucket_of, bucket_upper_ms, merge, percentile
from collector.rollups.kql import load_queries
from collector.workspace.engine import Workspace, insert_rows

DURATIONS = [0, 1, 2, 3, 5, 16, 17, 59, 60, 100, 799, 800, 1000, 1023, 1024, 4096, 12345, 600_000]


def test_kql_bucket_formula_matches_python(tmp_path: Path) -> None:
    """Runs the formula exactly as latency_histogram.kql writes it, over the embedded engine."""
    query = next(q for q in load_queries() if q.name == "latency_histogram")
    formula = next(line for line in query.text.splitlines() if "LatencyBucket =" in line)
    workspace = Workspace(tmp_path / "w.duckdb")
    workspace.create()
    when = datetime(2025, 1, 1, tzinfo=UTC)
    with workspace.writer() as con:
        insert_rows(con, "AzureDiagnostics", ["TimeGenerated", "DurationMs"], [(when, d) for d in DURATIONS])
    result = workspace.query(f"AzureDiagnostics {formula.strip()} | project DurationMs, LatencyBucket")
    assert sorted(result.rows) == sorted((d, bucket_of(d)) for d in DURATIONS)


@given(st.integers(min_value=1, max_value=10_000_000))
def test_a_duration_lies_in_its_bucket(duration: int) -> None:
    b = bucket_of(duration)
    assert bucket_lower_ms(b) <= duration * (1 + 1e-12)
    assert duration < bucket_upper_ms(b) * (1 + 1e-12)


@pytest.mark.parametrize(
    ("histogram", "q", "expected"),
    [
        ({}, 0.5, None),
        ({40: 1}, 0.99, bucket_upper_ms(40)),
        ({10: 50, 20: 49, 30: 1}, 0.5, bucket_upper_ms(10)),
        ({10: 50, 20: 49, 30: 1}, 0.51, bucket_upper_ms(20)),
        ({10: 50, 20: 49, 30: 1}, 0.99, bucket_upper_ms(20)),
        ({10: 50, 20: 49, 30: 1}, 1.0, bucket_upper_ms(30)),
    ],
)
def test_percentile_is_the_upper_edge_of_the_nearest_rank_bucket(
    histogram: dict[int, int], q: float, expected: float | None
) -> None:
    assert percentile(histogram, q) == expected


@given(st.lists(st.integers(min_value=1, max_value=100_000), min_size=1, max_size=300), st.floats(0.01, 1.0))
def test_merged_histograms_give_the_true_percentile_to_the_bucket(durations: list[int], q: float) -> None:
    """Merging per-part histograms equals the histogram of the whole, and the percentile brackets the true one."""
    half = len(durations) // 2
    parts = [durations[:half], durations[half:]]
    hists = [{} for _ in parts]
    for hist, part in zip(hists, parts, strict=True):
        for d in part:
            hist[bucket_of(d)] = hist.get(bucket_of(d), 0) + 1
    merged = merge(*hists)
    whole: dict[int, int] = {}
    for d in durations:
        whole[bucket_of(d)] = whole.get(bucket_of(d), 0) + 1
    assert merged == whole
    true_value = sorted(durations)[math.ceil(q * len(durations)) - 1]
    assert percentile(merged, q) == bucket_upper_ms(bucket_of(true_value))


def test_percentile_rejects_a_bad_quantile() -> None:
    with pytest.raises(ValueError):
        percentile({1: 1}, 0.0)
