"""One collection pass: for each source and job, windows -> source -> rollups -> store."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from collector.collection.source import Source
from collector.errors import ObservatoryError, TerminalError, TransientError, WindowTooLarge
from collector.rollups.specs import RollupSpec, to_rows
from collector.rollups.windows import Window, collectable_end, plan_windows, split_range
from collector.store.database import DriverRows, Store

log = logging.getLogger(__name__)

#: How many window results a backfill fetches ahead of the one being stored, on how many threads.
LOOKAHEAD = 3
FETCHERS = 2


@dataclass(frozen=True)
class Timing:
    """How windows are cut: the collector section of the settings, as the pass needs it."""

    grain: timedelta
    lag: timedelta
    lookback: timedelta
    max_window: timedelta


@dataclass
class JobOutcome:
    """What happened to one job of one source during a pass."""

    source: str
    job: str
    windows: int = 0
    rows: int = 0
    queries: int = 0
    splits: int = 0
    failed: Window | None = None
    error: str = ""
    transient: bool = True

    @property
    def ok(self) -> bool:
        return self.failed is None


@dataclass
class RunSummary:
    outcomes: list[JobOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    def failures(self) -> list[JobOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def line(self) -> str:
        """The one summary line each run logs."""
        windows = sum(o.windows for o in self.outcomes)
        rows = sum(o.rows for o in self.outcomes)
        queries = sum(o.queries for o in self.outcomes)
        splits = sum(o.splits for o in self.outcomes)
        failed = self.failures()
        text = (f"collected {windows} window(s), {rows} rollup row(s) over {len(self.outcomes)} job(s) "
                f"with {queries} query(ies)")
        if splits:
            text += f", {splits} window(s) split in halves for the size limit"
        if failed:
            missing = ", ".join(f"{o.source}/{o.job} from {o.failed.start.isoformat()}" for o in failed if o.failed)
            text += f"; {len(failed)} job(s) failed, missing: {missing}"
        return text


def jobs_for(source: Source, specs: Iterable[RollupSpec], only: Sequence[str] = ()) -> list[RollupSpec]:
    return [s for s in specs if source.supports(s) and (not only or s.name in only)]


def fetch_rows(source: Source, spec: RollupSpec, window: Window, grain: timedelta) -> list[tuple[Any, ...]]:
    """One window of one job, as store rows."""
    return to_rows(spec, source.fetch(spec, window, grain), source.name, window, grain)


def fetch_for(store: Store, source: Source, spec: RollupSpec, window: Window, grain: timedelta) -> DriverRows:
    """One window of one job, as the store's driver takes them (run on a backfill's fetch threads)."""
    return store.for_driver(fetch_rows(source, spec, window, grain))


def collect_window(
    store: Store, source: Source, spec: RollupSpec, window: Window, grain: timedelta, outcome: JobOutcome,
    now: datetime, fetched: Callable[[], DriverRows] | None = None,
) -> bool:
    """Collect one window of one job; on failure record it and return False (the watermark stays put).

    `fetched` hands over rows fetched ahead of time (it raises what the fetch raised). A result cut by the
    service's limits is collected again in halves, down to a single grain bucket.
    """
    try:
        outcome.queries += 1
        rows: list[tuple[Any, ...]] | DriverRows = (
            fetched() if fetched is not None else fetch_rows(source, spec, window, grain))
        store.replace_window(spec, source.name, window, rows, now=now)
    except WindowTooLarge as e:
        halves = window.halves(grain)
        if halves is None:
            error = TerminalError(f"{source.name}/{spec.name}: even one {grain} bucket at {window} is over the "
                                  f"service's result limit ({e}); narrow the query or raise its limits")
            return _failed(store, source, spec, window, outcome, now, error)
        outcome.splits += 1
        log.info("%s/%s window %s is over the result limit; collecting it in halves", source.name, spec.name, window)
        return all(collect_window(store, source, spec, half, grain, outcome, now) for half in halves)
    except ObservatoryError as e:
        return _failed(store, source, spec, window, outcome, now, e)
    outcome.windows += 1
    outcome.rows += len(rows)
    return True


def _failed(store: Store, source: Source, spec: RollupSpec, window: Window, outcome: JobOutcome, now: datetime,
            error: ObservatoryError) -> bool:
    outcome.failed, outcome.error, outcome.transient = window, str(error), isinstance(error, TransientError)
    log.warning("%s/%s window %s failed: %s", source.name, spec.name, window, error)
    store.record_failure(source.name, spec.name, window, str(error), now=now)
    return False


def collect_once(
    store: Store, sources: Sequence[Source], specs: Sequence[RollupSpec], timing: Timing, now: datetime,
    only: Sequence[str] = (),
) -> RunSummary:
    """The scheduled pass: from each job's watermark (less the lookback) up to now - lag.

    A failed window stops that job for this pass, so its watermark never passes a gap; other jobs go on.
    """
    summary = RunSummary()
    for source in sources:
        for spec in jobs_for(source, specs, only):
            outcome = JobOutcome(source.name, spec.name)
            summary.outcomes.append(outcome)
            windows = plan_windows(
                store.watermark(source.name, spec.name), now, grain=timing.grain, lag=timing.lag,
                lookback=timing.lookback, max_window=timing.max_window,
            )
            for window in windows:
                if not collect_window(store, source, spec, window, timing.grain, outcome, now):
                    break
    return summary


def backfill(
    store: Store, sources: Sequence[Source], specs: Sequence[RollupSpec], timing: Timing, since: datetime,
    until: datetime, now: datetime, only: Sequence[str] = (), on_window: Callable[[Window], None] | None = None,
) -> RunSummary:
    """Collect [since, until) window by window (never past now - lag), every job of every source per window.

    Worker threads fetch the next windows, and convert their rows for the database driver, while this one is
    stored (the engine and the database both work outside the GIL); commits keep their order. Memory stays flat: at
    most `LOOKAHEAD` results wait. Re-running the same backfill replaces the same windows with the same rows, so a
    backfill killed half-way and started again ends where an uninterrupted one would.
    """
    until = min(until, collectable_end(now, timing.grain, timing.lag))
    summary = RunSummary()
    plans = [(source, spec, JobOutcome(source.name, spec.name)) for source in sources
             for spec in jobs_for(source, specs, only)]
    summary.outcomes.extend(outcome for _, _, outcome in plans)
    if since >= until or not plans:
        return summary
    tasks = iter([(window, i) for window in split_range(since, until, timing.grain, timing.max_window)
                  for i in range(len(plans))])
    pending: deque[tuple[Window, int, Future[DriverRows]]] = deque()
    with ThreadPoolExecutor(max_workers=FETCHERS, thread_name_prefix="aoai-obs-fetch") as pool:

        def top_up() -> None:
            while len(pending) < LOOKAHEAD:
                task = next(tasks, None)
                if task is None:
                    return
                window, i = task
                source, spec, _ = plans[i]
                pending.append((window, i, pool.submit(fetch_for, store, source, spec, window, timing.grain)))

        top_up()
        while pending:
            window, i, future = pending.popleft()
            top_up()
            source, spec, outcome = plans[i]
            if outcome.ok:  # a job that failed takes no later window: its watermark must not pass the gap
                collect_window(store, source, spec, window, timing.grain, outcome, now, fetched=future.result)
            if i == len(plans) - 1 and on_window is not None:
                on_window(window)
    return summary
