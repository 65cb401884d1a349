"""The client-side rate limit: never more than the limit in any 30 s, waiting no longer than needed."""

from __future__ import annotations

import random

from collector.ratelimit import RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_rate_limiter_holds_the_request_past_the_limit_until_the_oldest_is_30_s_old() -> None:
    fake = FakeTime()
    limiter = RateLimiter(3, clock=fake.clock, sleep=fake.sleep)

    waits = [limiter.acquire() for _ in range(3)]
    fake.now += 10
    waits.append(limiter.acquire())

    assert waits == [0, 0, 0, 20]
    assert fake.now == 1030


def test_the_rate_limiter_never_allows_more_than_the_limit_in_any_30_s() -> None:
    fake = FakeTime()
    limiter = RateLimiter(7, clock=fake.clock, sleep=fake.sleep)
    rng = random.Random(3)
    sent = []
    for _ in range(300):
        fake.now += rng.choice([0.0, 0.0, 0.5, 2.0, 9.0])
        limiter.acquire()
        sent.append(fake.now)

    assert max(sum(1 for t in sent if start <= t < start + 30) for start in sent) == 7
