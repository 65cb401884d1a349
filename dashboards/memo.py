"""Memoised reads per version of the collected data: a view seen before is drawn without reading the store again.

The rollups change only when a collector pass commits (each commit records its job's success time), so the newest
success time of any job is the data's version: a new version empties the memo. Bounded (least recently used), and
safe across the server's threads. Callers must not change what they get back.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any, TypeVar

from collector.store.database import Store

T = TypeVar("T")


def data_version(store: Store) -> tuple[datetime | None, int]:
    """The newest commit of any job and the number of jobs: changes whenever a pass stores anything."""
    statuses = store.job_statuses()
    successes = [s.last_success_at for s in statuses if s.last_success_at is not None]
    return (max(successes) if successes else None), len(statuses)


class Memo:
    """Results by key, for one data version at a time."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._version: Hashable = None
        self._found: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, version: Hashable, key: Hashable, read: Callable[[], T]) -> T:
        with self._lock:
            if version != self._version:
                self._version, self._found = version, OrderedDict()
            elif key in self._found:
                self._found.move_to_end(key)
                found: T = self._found[key]
                return found
        value = read()
        with self._lock:
            if version == self._version:
                self._found[key] = value
                while len(self._found) > self.size:
                    self._found.popitem(last=False)
        return value
