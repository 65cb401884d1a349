"""Pure: the fixed log-spaced latency buckets and percentiles over merged bucket counts.

Bucket b holds durations d (ms) with 2^(b/4) <= max(d, 1) < 2^((b+1)/4): four buckets per doubling, so a
percentile read from merged counts is within one bucket (about 19 %) of the true value, over any range.
The KQL query `latency_histogram.kql` computes the same index; a test keeps them in step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

BUCKETS_PER_DOUBLING = 4


def bucket_of(duration_ms: int) -> int:
    """The bucket index of one duration (what the KQL computes)."""
    return math.floor(math.log2(float(max(duration_ms, 1))) * BUCKETS_PER_DOUBLING)


def bucket_lower_ms(bucket: int) -> float:
    return float(2.0 ** (bucket / BUCKETS_PER_DOUBLING))


def bucket_upper_ms(bucket: int) -> float:
    return float(2.0 ** ((bucket + 1) / BUCKETS_PER_DOUBLING))


def merge(*histograms: Mapping[int, int]) -> dict[int, int]:
    """Add bucket counts: histograms of disjoint ranges merge exactly."""
    merged: dict[int, int] = {}
    for histogram in histograms:
        for bucket, count in histogram.items():
            merged[bucket] = merged.get(bucket, 0) + count
    return merged


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """The upper edge of the bucket holding the q-quantile (nearest-rank), or None for an empty histogram.

    Reporting the upper edge never understates latency; the true value lies in [lower, upper) of that bucket.
    """
    if not 0.0 < q <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], not {q}")
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = math.ceil(q * total)
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return bucket_upper_ms(bucket)
    raise AssertionError("unreachable: rank <= total")
