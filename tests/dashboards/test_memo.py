"""Reads are memoised per version of the collected data: read once per version, again after a pass commits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.rollups.specs import REQUESTS
from collector.rollups.windows import Window
from collector.store.database import Store
from dashboards.memo import Memo, data_version
from tests.test_store_retention import requests_row

T0 = datetime(2025, 3, 4, 10, tzinfo=UTC)


def test_one_read_per_key_and_version_and_a_bounded_size() -> None:
    memo, calls = Memo(size=2), []

    def read(value: int) -> int:
        calls.append(value)
        return value

    assert [memo.get("v1", k, lambda k=k: read(k)) for k in (1, 1, 2, 1)] == [1, 1, 2, 1]
    assert calls == [1, 2]
    memo.get("v1", 3, lambda: read(3))  # evicts the least recently used key: 2
    memo.get("v1", 2, lambda: read(2))
    assert calls == [1, 2, 3, 2]
    memo.get("v2", 1, lambda: read(1))  # a new version: nothing of the old one is served
    assert calls == [1, 2, 3, 2, 1]


def test_the_data_version_moves_when_a_pass_commits(store: Store) -> None:
    empty = data_version(store)
    store.replace_window(REQUESTS, "s", Window(T0, T0 + timedelta(minutes=5)), [requests_row(T0)], now=T0)
    first = data_version(store)
    assert first != empty
    store.replace_window(REQUESTS, "s", Window(T0, T0 + timedelta(minutes=5)), [requests_row(T0)],
                         now=T0 + timedelta(minutes=5))
    assert data_version(store) != first
