"""The accounts' daily latency (`latency_accounts_1d`): derived from the daily tier whenever a window replaces it, kept
by the daily retention, filled when an existing store is migrated, and read for long latency series of every
deployment or of whole accounts with the same answer the per-deployment rows give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import command

from collector.rollups.specs import LATENCY
from collector.rollups.windows import Window
from collector.store import reads
from collector.store.database import ACCOUNT_LATENCY, Store, create_engine
from collector.store.migrations.upgrade import alembic_config

DAY0 = datetime(2025, 3, 10, tzinfo=UTC)
FIVE = timedelta(minutes=5)


def latency_row(bucket: datetime, account: str, deployment: str, le_bucket: int, requests: int,
                source: str = "s") -> tuple[Any, ...]:
    return (source, bucket, account, deployment, le_bucket, requests, requests * 100)


def accounts(store: Store) -> list[tuple[Any, ...]]:
    table = store.tables[ACCOUNT_LATENCY]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.source, table.c.bucket_start, table.c.account, table.c.le_bucket,
                                      table.c.requests, table.c.duration_ms_sum)
                            .order_by(table.c.bucket_start, table.c.account, table.c.le_bucket)).all()
    return [tuple(r) for r in rows]


def write(store: Store, bucket: datetime, rows: list[tuple[Any, ...]], source: str = "s") -> None:
    store.replace_window(LATENCY, source, Window(bucket, bucket + FIVE), rows, now=bucket + FIVE)


def test_accounts_latency_follows_the_daily_tier(store: Store) -> None:
    morning, evening, next_day = DAY0 + timedelta(hours=9), DAY0 + timedelta(hours=21), DAY0 + timedelta(days=1)
    write(store, morning, [latency_row(morning, "A", "d1", 40, 3), latency_row(morning, "A", "d2", 40, 4),
                           latency_row(morning, "A", "d2", 44, 1), latency_row(morning, "B", "d1", 40, 5)])
    write(store, evening, [latency_row(evening, "A", "d1", 40, 2)])
    write(store, next_day, [latency_row(next_day, "A", "d1", 36, 6)])
    # Another source: its own rows.
    write(store, morning, [latency_row(morning, "B", "d9", 40, 7, source="t")], source="t")
    assert accounts(store) == [
        ("s", DAY0, "A", 40, 9, 900), ("s", DAY0, "A", 44, 1, 100), ("s", DAY0, "B", 40, 5, 500),
        ("t", DAY0, "B", 40, 7, 700), ("s", next_day, "A", 36, 6, 600)]

    # The morning comes again without account B (re-collected after a correction): day 0 is derived again.
    write(store, morning, [latency_row(morning, "A", "d1", 40, 3)])
    assert accounts(store) == [
        ("s", DAY0, "A", 40, 5, 500), ("t", DAY0, "B", 40, 7, 700), ("s", next_day, "A", 36, 6, 600)]

    store.apply_retention(next_day + timedelta(days=3), five_minute_days=1, hourly_days=1)
    assert len(accounts(store)) == 3  # no daily retention: kept
    store.apply_retention(next_day + timedelta(days=3), five_minute_days=1, hourly_days=1, daily_days=3)
    assert accounts(store) == [("s", next_day, "A", 36, 6, 600)]


def test_daily_rows_loaded_directly_are_derived_on_request(store: Store) -> None:
    daily = store.table(LATENCY, "1d")
    with store.engine.begin() as conn:
        conn.execute(sa.insert(daily), [
            {"source": "s", "bucket_start": DAY0, "account": "A", "deployment": d, "le_bucket": 40, "requests": n,
             "duration_ms_sum": n} for d, n in (("d1", 2), ("d2", 3))])
    assert accounts(store) == []
    store.rederive_account_latency("s", DAY0, DAY0 + timedelta(days=1))
    assert accounts(store) == [("s", DAY0, "A", 40, 5, 5)]


def test_a_long_series_of_every_deployment_or_account_equals_the_per_deployment_rows(store: Store) -> None:
    for day in range(20):
        bucket = DAY0 + timedelta(days=day, hours=day % 24)
        write(store, bucket, [latency_row(bucket, "A", "d1", 40 + day % 3, day + 1),
                              latency_row(bucket, "A", "d2", 40, 2 * day + 1),
                              latency_row(bucket, "B", "d3", 30 + day % 5, 3)])
    plan = reads.plan(DAY0, DAY0 + timedelta(days=20))
    assert plan.tier == "1d"
    every = reads.Scope(deployments=("d1", "d2", "d3"))  # every deployment, named: read per deployment
    assert reads.latency_series(store, plan) == reads.latency_series(store, plan, every)
    assert reads.latency_series(store, plan, reads.Scope(accounts=("A",))) == reads.latency_series(
        store, plan, reads.Scope(accounts=("A",), deployments=("d1", "d2")))
    first = dict(reads.latency_series(store, plan))[DAY0]
    assert first == {40: 1 + 1, 30: 3}


def test_migrating_an_existing_store_derives_its_accounts(store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0006")
        for deployment, requests in (("d1", 3), ("d2", 4)):
            conn.execute(sa.text("INSERT INTO latency_1d (source, bucket_start, account, deployment, le_bucket, "
                                 "requests, duration_ms_sum) VALUES ('s', :b, 'A', :d, 40, :n, 10)"),
                         {"b": DAY0.replace(tzinfo=None) if engine.dialect.name == "sqlite" else DAY0,
                          "d": deployment, "n": requests})
    engine.dispose()
    store = Store.open(store_url)
    try:
        assert accounts(store) == [("s", DAY0, "A", 40, 7, 20)]
    finally:
        store.close()
