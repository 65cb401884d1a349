"""Retention: each tier keeps its own number of days; the hourly tier outlives the fine one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.rollups.specs import REQUESTS, row_columns
from collector.rollups.windows import Window
from collector.store.database import Store

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def requests_row(bucket: datetime) -> tuple[object, ...]:
    values = {"source": "s", "bucket_start": bucket, "account": "A", "deployment": "d", "requests": 1,
              "requests_2xx": 1, "requests_4xx": 0, "requests_400": 0, "requests_429": 0, "requests_5xx": 0,
              "duration_ms_sum": 10}
    return tuple(values[c] for c in row_columns(REQUESTS))


def test_retention_trims_each_tier_to_its_days(store: Store) -> None:
    for days_ago in (1, 3, 5):
        bucket = NOW - timedelta(days=days_ago)
        store.replace_window(REQUESTS, "s", Window(bucket, bucket + timedelta(minutes=5)), [requests_row(bucket)],
                             now=NOW)

    deleted = store.apply_retention(NOW, five_minute_days=2, hourly_days=4)

    assert [r["bucket_start"] for r in store.read(REQUESTS, "5m")] == [NOW - timedelta(days=1)]
    assert [r["bucket_start"] for r in store.read(REQUESTS, "1h")] == [NOW - timedelta(days=3),
                                                                        NOW - timedelta(days=1)]
    assert (deleted["requests_5m"], deleted["requests_1h"]) == (2, 1)
