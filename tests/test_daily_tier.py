"""The daily tier: derived from the hourly tier for the days a window touches, exact for every aggregation, kept
by its own retention, and filled from the hourly tier when an existing store is migrated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command

from collector.rollups.specs import PLATFORM_METRICS, REQUESTS, row_columns
from collector.rollups.windows import Window
from collector.store.database import Store, create_engine
from collector.store.migrations.upgrade import alembic_config
from tests.test_store_retention import requests_row

DAY0 = datetime(2025, 3, 10, tzinfo=UTC)
FIVE = timedelta(minutes=5)


def metric_row(bucket: datetime, total: float, low: float, high: float) -> tuple[object, ...]:
    values = {"source": "s", "bucket_start": bucket, "account": "A", "deployment": "d", "metric": "m",
              "status_code": "", "total": total, "count": 1.0, "minimum": low, "maximum": high}
    return tuple(values[c] for c in row_columns(PLATFORM_METRICS))


def test_days_are_rederived_when_a_window_is_replaced(store: Store) -> None:
    late = DAY0 + timedelta(hours=23, minutes=55)  # the last bucket of day 0
    for bucket in (DAY0 + timedelta(hours=1), late, DAY0 + timedelta(days=1, hours=2)):
        store.replace_window(REQUESTS, "s", Window(bucket, bucket + FIVE), [requests_row(bucket)], now=late)
        store.replace_window(PLATFORM_METRICS, "s", Window(bucket, bucket + FIVE),
                             [metric_row(bucket, 2.0, bucket.hour, bucket.hour + 10)], now=late)
    daily = store.read(REQUESTS, "1d")
    assert [(r["bucket_start"], r["requests"], r["duration_ms_sum"]) for r in daily] == [
        (DAY0, 2, 20), (DAY0 + timedelta(days=1), 1, 10)]
    metrics = store.read(PLATFORM_METRICS, "1d")
    assert [(r["total"], r["minimum"], r["maximum"]) for r in metrics] == [(4.0, 1.0, 33.0), (2.0, 2.0, 12.0)]

    # The late bucket comes again, empty (re-collected after a correction): day 0 is re-derived.
    store.replace_window(REQUESTS, "s", Window(late, late + FIVE), [], now=late)
    assert [(r["bucket_start"], r["requests"]) for r in store.read(REQUESTS, "1d")] == [
        (DAY0, 1), (DAY0 + timedelta(days=1), 1)]


def test_the_daily_tier_has_its_own_retention(store: Store) -> None:
    now = DAY0 + timedelta(days=10, hours=12)
    for days_ago in (1, 5, 9):
        bucket = now - timedelta(days=days_ago)
        store.replace_window(REQUESTS, "s", Window(bucket, bucket + FIVE), [requests_row(bucket)], now=now)
    store.apply_retention(now, five_minute_days=2, hourly_days=4)
    assert len(store.read(REQUESTS, "1d")) == 3  # no daily retention: kept
    store.apply_retention(now, five_minute_days=2, hourly_days=4, daily_days=6)
    assert [r["bucket_start"] for r in store.read(REQUESTS, "1d")] == [DAY0 + timedelta(days=5),
                                                                        DAY0 + timedelta(days=9)]


def test_migrating_an_existing_store_derives_its_days(store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0003")
        for hour, requests in ((1, 3), (5, 4), (30, 2)):
            conn.execute(sa.text(
                "INSERT INTO requests_1h VALUES ('s', :b, 'A', 'd', :n, :n, 0, 0, 0, 0, 7)"),
                {"b": (DAY0 + timedelta(hours=hour)).replace(tzinfo=None)
                 if engine.dialect.name == "sqlite" else DAY0 + timedelta(hours=hour), "n": requests})
    engine.dispose()
    store = Store.open(store_url)
    try:
        assert [(r["bucket_start"], r["requests"], r["duration_ms_sum"]) for r in store.read(REQUESTS, "1d")] == [
            (DAY0, 7, 14), (DAY0 + timedelta(days=1), 2, 7)]
    finally:
        store.close()
