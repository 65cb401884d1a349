"""Collector health over Prometheus: a real HTTP scrape after a pass with a failed job."""

from __future__ import annotations

import socket
import urllib.request
from datetime import timedelta
from pathlib import Path

from collector.collection.health import HealthMetrics
from collector.collection.run import Timing, collect_once
from collector.rollups.specs import REQUESTS, ROLLUPS
from collector.store.database import Store
from collector.workspace.source import WorkspaceSource
from tests.test_collect_faults import FlakySource
from tests.test_collect_golden import at, build_workspace

TIMING = Timing(grain=timedelta(minutes=5), lag=timedelta(minutes=10), lookback=timedelta(minutes=30),
                max_window=timedelta(minutes=15))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_scrape_shows_watermarks_lag_and_the_failing_job(tmp_path: Path) -> None:
    build_workspace(tmp_path / "w.duckdb")
    store = Store.open(f"sqlite:///{tmp_path / 's.sqlite'}")
    source = FlakySource(WorkspaceSource("golden", tmp_path / "w.duckdb"), {(REQUESTS.name, at(9, 45)): 1})
    now = at(10, 25)
    summary = collect_once(store, [source], ROLLUPS, TIMING, now)

    health = HealthMetrics()
    port = free_port()
    health.serve(port)
    health.observe(summary, store.job_statuses(), now)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()

    assert 'aoai_obs_job_failing{job="requests_by_status",source="golden"} 1.0' in body
    assert 'aoai_obs_job_failing{job="latency_histogram",source="golden"} 0.0' in body
    # latency_histogram reached now - lag = 10:15, 10 minutes behind 10:25.
    assert 'aoai_obs_lag_seconds{job="latency_histogram",source="golden"} 600.0' in body
    assert 'aoai_obs_passes_total{outcome="failed"} 1.0' in body
