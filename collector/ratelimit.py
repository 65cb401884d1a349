"""A client-side rate limit shared by the threads of one Azure source: at most N requests in any 30 s."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta


class RateLimiter:
    """At most `limit` requests in any `period`, shared by the threads of one source.

    A sliding log of request times rather than a token bucket: a bucket of `limit` tokens refilled over `period`
    lets nearly twice `limit` through in the first period, and Azure counts requests per 30 s per caller.
    """

    def __init__(self, limit: int, period: timedelta = timedelta(seconds=30), *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if limit < 1:
            raise ValueError(f"a rate limit allows at least one request, not {limit}")
        self.limit = limit
        self.period = period.total_seconds()
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until one more request fits in the limit, count it, and return the seconds waited."""
        waited = 0.0
        with self._lock:  # waiters queue on the lock, so they go in arrival order
            while True:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self.period:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return waited
                delay = self._sent[0] + self.period - now
                self._sleep(delay)
                waited += delay
