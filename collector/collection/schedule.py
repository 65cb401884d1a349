"""The long-running collector: one collection pass on an interval (APScheduler, one instance, missed runs coalesced)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)


def run_every(interval: timedelta, job: Callable[[datetime], object], now: Callable[[], datetime]) -> None:
    """Call `job(now())` every `interval`, starting at once, until interrupted.

    One instance at a time (a slow pass delays the next rather than overlapping it) and missed runs coalesce into
    one: a pass always covers everything since its job's watermark, so nothing is lost by skipping a tick.
    """
    scheduler = BlockingScheduler(timezone=UTC)
    # The scheduler keeps its own (real) time for when to fire; `now` is what each pass is told the time is.
    scheduler.add_job(
        lambda: job(now()),
        IntervalTrigger(seconds=int(interval.total_seconds()), timezone=UTC),
        id="collect",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=int(interval.total_seconds()),
    )
    log.info("collector running every %s; Ctrl-C stops it", interval)
    try:
        job(now())
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("collector stopped")
