"""Collector health as Prometheus metrics: per source and job, the watermark, lag behind now and failures."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from collector.collection.run import RunSummary
from collector.store.database import JobStatus


class HealthMetrics:
    """The gauges and counters `collect run` keeps up to date after every pass."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        labels = ("source", "job")
        self.watermark = Gauge("aoai_obs_watermark_timestamp_seconds",
                               "End of the last window stored, as a Unix time.", labels, registry=self.registry)
        self.lag = Gauge("aoai_obs_lag_seconds", "How far the watermark is behind now.", labels,
                         registry=self.registry)
        self.failing = Gauge("aoai_obs_job_failing", "1 while the job's last window failed (the gap is retried).",
                             labels, registry=self.registry)
        self.windows = Counter("aoai_obs_windows_collected", "Windows collected and stored.", labels,
                               registry=self.registry)
        self.rows = Counter("aoai_obs_rollup_rows_written", "Rollup rows written.", labels, registry=self.registry)
        self.passes = Counter("aoai_obs_passes", "Collection passes, by outcome.", ("outcome",),
                              registry=self.registry)

    def observe(self, summary: RunSummary, statuses: Sequence[JobStatus], now: datetime) -> None:
        for outcome in summary.outcomes:
            self.windows.labels(outcome.source, outcome.job).inc(outcome.windows)
            self.rows.labels(outcome.source, outcome.job).inc(outcome.rows)
        self.passes.labels("ok" if summary.ok else "failed").inc()
        for status in statuses:
            if status.watermark is not None:
                self.watermark.labels(status.source, status.job).set(status.watermark.timestamp())
                self.lag.labels(status.source, status.job).set((now - status.watermark).total_seconds())
            self.failing.labels(status.source, status.job).set(1 if status.last_error else 0)

    def serve(self, port: int, address: str = "127.0.0.1") -> None:
        """Expose /metrics on a background thread."""
        start_http_server(port, addr=address, registry=self.registry)
