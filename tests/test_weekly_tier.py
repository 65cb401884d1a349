"""The weekly tier: ISO weeks (Monday 00:00 UTC) derived from the daily tier for the weeks a window touches, exact for
every aggregation, gone with the last of its days, and filled from the daily tier when a store is migrated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command

from collector.rollups.specs import PLATFORM_METRICS, REQUESTS
from collector.rollups.windows import Window
from collector.store.database import Store, create_engine, week_start
from collector.store.migrations.upgrade import alembic_config
from tests.test_daily_tier import metric_row
from tests.test_store_retention import requests_row

MONDAY = datetime(2025, 3, 10, tzinfo=UTC)
WEEK, DAY, FIVE = timedelta(days=7), timedelta(days=1), timedelta(minutes=5)


def test_week_start_is_the_monday_on_or_before() -> None:
    assert week_start(MONDAY) == MONDAY
    assert week_start(MONDAY + timedelta(days=6, hours=23, minutes=59)) == MONDAY  # Sunday night
    assert week_start(MONDAY + WEEK) == MONDAY + WEEK
    assert week_start(MONDAY - timedelta(microseconds=1)) == MONDAY - WEEK


def test_weeks_are_rederived_when_a_window_is_replaced(store: Store) -> None:
    sunday_night = MONDAY + timedelta(days=6, hours=23, minutes=55)
    buckets = (MONDAY + timedelta(hours=2), MONDAY + timedelta(days=2, hours=9), sunday_night, MONDAY + WEEK)
    for bucket in buckets:
        store.replace_window(REQUESTS, "s", Window(bucket, bucket + FIVE), [requests_row(bucket)], now=bucket)
        store.replace_window(PLATFORM_METRICS, "s", Window(bucket, bucket + FIVE),
                             [metric_row(bucket, 2.0, bucket.day, bucket.day + 10)], now=bucket)
    # A window across the week boundary replaces both weeks' buckets at once.
    store.replace_window(REQUESTS, "s", Window(sunday_night, MONDAY + WEEK + FIVE),
                         [requests_row(sunday_night), requests_row(MONDAY + WEEK)], now=MONDAY + WEEK + FIVE)
    weekly = store.read(REQUESTS, "1w")
    assert [(r["bucket_start"], r["requests"], r["duration_ms_sum"]) for r in weekly] == [
        (MONDAY, 3, 30), (MONDAY + WEEK, 1, 10)]
    daily = store.read(REQUESTS, "1d")
    for week in (MONDAY, MONDAY + WEEK):  # a week is the sum of its days
        assert sum(r["requests"] for r in daily if week <= r["bucket_start"] < week + WEEK) == \
            next(r["requests"] for r in weekly if r["bucket_start"] == week)
    metrics = store.read(PLATFORM_METRICS, "1w")
    assert [(r["bucket_start"], r["total"], r["count"], r["minimum"], r["maximum"]) for r in metrics] == [
        (MONDAY, 6.0, 3.0, 10.0, 26.0), (MONDAY + WEEK, 2.0, 1.0, 17.0, 27.0)]

    # Sunday night's bucket is re-collected empty: only the first week changes.
    store.replace_window(REQUESTS, "s", Window(sunday_night, sunday_night + FIVE), [], now=MONDAY + WEEK)
    assert [(r["bucket_start"], r["requests"]) for r in store.read(REQUESTS, "1w")] == [
        (MONDAY, 2), (MONDAY + WEEK, 1)]


def test_a_week_goes_with_the_last_of_its_days(store: Store) -> None:
    now = MONDAY + timedelta(days=20, hours=12)  # Sunday of the third week
    for days_ago in (19, 12, 2):  # Tuesday of week 1, Tuesday of week 2, Friday of week 3
        bucket = now - timedelta(days=days_ago)
        store.replace_window(REQUESTS, "s", Window(bucket, bucket + FIVE), [requests_row(bucket)], now=now)
    assert [r["bucket_start"] for r in store.read(REQUESTS, "1w")] == [MONDAY, MONDAY + WEEK, MONDAY + 2 * WEEK]
    store.apply_retention(now, five_minute_days=2, hourly_days=4)
    assert len(store.read(REQUESTS, "1w")) == 3  # no daily retention: kept
    store.apply_retention(now, five_minute_days=2, hourly_days=4, daily_days=10)  # days before Thursday of week 2
    assert [r["bucket_start"] for r in store.read(REQUESTS, "1w")] == [MONDAY + WEEK, MONDAY + 2 * WEEK]


def test_migrating_an_existing_store_derives_its_weeks(store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0004")
        for day, requests in ((0, 3), (6, 4), (7, 2)):
            at = MONDAY + DAY * day
            conn.execute(sa.text("INSERT INTO requests_1d VALUES ('s', :b, 'A', 'd', :n, :n, 0, 0, 0, 0, 7)"),
                         {"b": at.replace(tzinfo=None) if engine.dialect.name == "sqlite" else at, "n": requests})
    engine.dispose()
    store = Store.open(store_url)
    try:
        assert [(r["bucket_start"], r["requests"], r["duration_ms_sum"]) for r in store.read(REQUESTS, "1w")] == [
            (MONDAY, 7, 14), (MONDAY + WEEK, 2, 7)]
    finally:
        store.close()


def test_rederive_builds_the_weeks_of_rows_loaded_into_the_daily_tier(store: Store) -> None:
    daily = store.table(REQUESTS, "1d")
    with store.engine.begin() as conn:  # a bulk load straight into the daily tier
        for day, requests in ((1, 3), (6, 4), (8, 2)):
            conn.execute(sa.insert(daily).values(source="s", bucket_start=MONDAY + DAY * day, account="A",
                                                  deployment="d", requests=requests, requests_2xx=requests,
                                                  requests_4xx=0, requests_400=0, requests_429=0, requests_5xx=0,
                                                  duration_ms_sum=10 * requests))
    store.rederive(REQUESTS, "s", "1w", MONDAY, MONDAY + 2 * WEEK)
    assert [(r["bucket_start"], r["requests"], r["duration_ms_sum"]) for r in store.read(REQUESTS, "1w")] == [
        (MONDAY, 7, 70), (MONDAY + WEEK, 2, 20)]
