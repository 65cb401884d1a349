"""Collector semantics under faults and late data: a failed window never moves the watermark; nothing is lost."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from collector.collection.run import Timing, backfill, collect_once
from collector.errors import TransientError, WindowTooLarge
from collector.rollups.specs import REQUESTS, ROLLUPS, ResultLike, RollupSpec
from collector.rollups.windows import Window
from collector.store.database import Store
from collector.workspace.engine import insert_rows
from collector.workspace.source import WorkspaceSource
from tests.test_collect_golden import at, build_workspace, request_row

TIMING = Timing(grain=timedelta(minutes=5), lag=timedelta(minutes=10), lookback=timedelta(minutes=30),
                max_window=timedelta(minutes=5))


@dataclass
class FlakySource:
    """Our own Source, failing chosen (job, window start) pairs a number of times before answering."""

    inner: WorkspaceSource
    failures: dict[tuple[str, object], int] = field(default_factory=dict)
    calls: list[tuple[str, Window]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    def supports(self, spec: RollupSpec) -> bool:
        return self.inner.supports(spec)

    def close(self) -> None:
        self.inner.close()

    def fetch(self, spec: RollupSpec, window: Window, grain: timedelta) -> ResultLike:
        self.calls.append((spec.name, window))
        left = self.failures.get((spec.name, window.start), 0)
        if left:
            self.failures[(spec.name, window.start)] = left - 1
            raise TransientError(f"injected failure for {spec.name} {window}")
        return self.inner.fetch(spec, window, grain)


def test_a_failed_window_stops_its_job_and_keeps_the_watermark(tmp_path: Path) -> None:
    build_workspace(tmp_path / "w.duckdb")
    reference = Store.open(f"sqlite:///{tmp_path / 'reference.sqlite'}")
    # What a fault-free collector holds after the same passes: the second pass below reaches back to 09:45.
    backfill(reference, [WorkspaceSource("golden", tmp_path / "w.duckdb")], ROLLUPS, TIMING, at(9, 45), at(10, 15),
             at(12, 0))

    store = Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    flaky = FlakySource(WorkspaceSource("golden", tmp_path / "w.duckdb"), {(REQUESTS.name, at(10, 5)): 1})
    first = backfill(store, [flaky], ROLLUPS, TIMING, at(10, 0), at(10, 15), at(12, 0))

    assert not first.ok
    [failed] = first.failures()
    assert (failed.job, failed.failed) == (REQUESTS.name, Window(at(10, 5), at(10, 10)))
    assert store.watermark("golden", REQUESTS.name) == at(10, 5)
    # Nothing past the gap is stored (a backfill may have fetched it ahead, but throws it away).
    assert [r["bucket_start"] for r in store.read(REQUESTS)] == [at(10, 0)]
    assert store.watermark("golden", "latency_histogram") == at(10, 15)  # other jobs went on
    assert "injected failure" in next(s.last_error for s in store.job_statuses() if s.job == REQUESTS.name)

    # The next scheduled pass starts a lookback before the watermark and fills the gap.
    second = collect_once(store, [flaky], ROLLUPS, TIMING, at(10, 25))
    assert second.ok, second.line()
    assert list(store.iter_dump()) == list(reference.iter_dump())
    assert next(s.last_error for s in store.job_statuses() if s.job == REQUESTS.name) == ""


def test_late_data_is_picked_up_by_the_lookback(tmp_path: Path) -> None:
    workspace = build_workspace(tmp_path / "w.duckdb")
    source = WorkspaceSource("golden", tmp_path / "w.duckdb")
    store = Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    collect_once(store, [source], [REQUESTS], TIMING, at(10, 25))
    before = {r["bucket_start"]: r["requests"] for r in store.read(REQUESTS) if r["deployment"] == "gpt-4o-prod"}

    # A row for 10:06 arrives after that bucket was collected (ingestion delay beyond the lag).
    source.close()
    with workspace.writer() as con:
        insert_rows(con, "AzureDiagnostics",
                    ["TimeGenerated", "Category", "Resource", "ResourceId", "ResultSignature", "DurationMs",
                     "CorrelationId", "properties_s"],
                    [request_row(at(10, 6), "gpt-4o-prod", "gpt-4o", "429", 4, "B", 1, 1, "late")[:8]])
    collect_once(store, [source], [REQUESTS], TIMING, at(10, 30))

    after = {r["bucket_start"]: r for r in store.read(REQUESTS) if r["deployment"] == "gpt-4o-prod"}
    assert after[at(10, 5)]["requests"] == before[at(10, 5)] + 1
    assert after[at(10, 5)]["requests_429"] == 1
    # The hourly tier follows: 4 at 10:00, 1 + 1 late at 10:05, 1 at 10:15.
    hourly = {(r["bucket_start"], r["deployment"]): r["requests"] for r in store.read(REQUESTS, "1h")}
    assert hourly[(at(10, 0), "gpt-4o-prod")] == 7


@dataclass
class LimitedSource(FlakySource):
    """Answers only windows of at most `limit`; larger ones are 'cut by the row limit'."""

    limit: timedelta = timedelta(minutes=5)

    def fetch(self, spec: RollupSpec, window: Window, grain: timedelta) -> ResultLike:
        self.calls.append((spec.name, window))
        if window.end - window.start > self.limit:
            raise WindowTooLarge(f"more than the row limit in {window}")
        return self.inner.fetch(spec, window, grain)


def test_a_window_over_the_result_limit_is_collected_in_halves(tmp_path: Path) -> None:
    build_workspace(tmp_path / "w.duckdb")
    timing = Timing(grain=timedelta(minutes=5), lag=timedelta(minutes=10), lookback=timedelta(hours=1),
                    max_window=timedelta(hours=1))
    reference = Store.open(f"sqlite:///{tmp_path / 'reference.sqlite'}")
    backfill(reference, [WorkspaceSource("golden", tmp_path / "w.duckdb")], [REQUESTS], timing, at(10, 0),
             at(10, 15), at(12, 0))
    store = Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    limited = LimitedSource(WorkspaceSource("golden", tmp_path / "w.duckdb"))

    summary = backfill(store, [limited], [REQUESTS], timing, at(10, 0), at(10, 15), at(12, 0))

    assert summary.ok, summary.line()
    # [10:00, 10:15) -> [10:00, 10:05) + [10:05, 10:15) -> [10:05, 10:10) + [10:10, 10:15): 5 queries, 2 splits.
    [outcome] = summary.outcomes
    assert (outcome.queries, outcome.splits, outcome.windows) == (5, 2, 3)
    assert "5 query(ies)" in summary.line() and "2 window(s) split" in summary.line()
    assert list(store.iter_dump()) == list(reference.iter_dump())


def test_a_single_bucket_over_the_limit_is_a_terminal_error_naming_job_and_window(tmp_path: Path) -> None:
    build_workspace(tmp_path / "w.duckdb")
    store = Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    limited = LimitedSource(WorkspaceSource("golden", tmp_path / "w.duckdb"), limit=timedelta(0))

    summary = backfill(store, [limited], [REQUESTS], TIMING, at(10, 0), at(10, 5), at(12, 0))

    [outcome] = summary.outcomes
    assert not outcome.ok and not outcome.transient
    assert "golden/requests_by_status" in outcome.error and "2025-03-03T10:00:00Z/2025-03-03T10:05:00Z" in outcome.error
    assert store.watermark("golden", REQUESTS.name) is None
