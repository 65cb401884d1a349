"""The embedded workspace as a collector Source: runs the KQL files and answers the platform-metrics job."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from collector.errors import TerminalError
from collector.rollups.kql import KqlQuery, kql_timespan, load_queries
from collector.rollups.specs import METRIC_SPLITS, PLATFORM_METRICS, RollupSpec
from collector.rollups.windows import Window
from collector.workspace.engine import Column, MetricsRequest, ResultTable, Workspace

#: The timespan sent with a query is wider than the window: each query filters its window exactly, and a join
#: side may read a little either side of it (Log Analytics applies the timespan to every table it reads).
TIMESPAN_PAD = timedelta(minutes=15)


@dataclass
class WorkspaceSource:
    """Collects from an embedded workspace file."""

    name: str
    path: Path
    query_dir: Path | None = None
    _queries: dict[str, KqlQuery] = field(default_factory=dict, init=False, repr=False)
    _resources: list[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.workspace = Workspace(self.path)
        self._queries = {q.name: q for q in load_queries(self.query_dir)}

    def close(self) -> None:
        self.workspace.close()
        self._resources = None

    def supports(self, spec: RollupSpec) -> bool:
        return spec.kind == "metrics" or spec.name in self._queries

    def fetch(self, spec: RollupSpec, window: Window, grain: timedelta) -> ResultTable:
        if spec.kind == "metrics":
            return self._fetch_metrics(window, grain)
        query = self._queries.get(spec.name)
        if query is None:
            raise TerminalError(f"no query file {spec.name}.kql for job {spec.name}")
        # The window is bound as parameters, so the translation is cached across windows (duckdb-kql cannot bin
        # by a timespan parameter, so Grain stays a `let`); `aoai-obs query` and the Azure sources bind all three
        # names with a `let` prelude, and a test checks both give the same result.
        return self.workspace.query(
            f"let Grain = {kql_timespan(grain)};\n{query.text}",
            (window.start - TIMESPAN_PAD, window.end + TIMESPAN_PAD),
            parameters={"WindowStart": window.start, "WindowEnd": window.end},
        )

    def _fetch_metrics(self, window: Window, grain: timedelta) -> ResultTable:
        rows: list[tuple[Any, ...]] = []
        if self._resources is None:  # a scan of the whole metrics table: once per open source, not per window
            self._resources = self.workspace.metric_resources()
        for resource_id in self._resources:
            account = resource_id.rstrip("/").rsplit("/", 1)[-1].upper()
            # One question per distinct split, naming all its metrics, as one Metrics API call would.
            by_split: dict[tuple[str, ...], list[str]] = {}
            for metric, split in METRIC_SPLITS.items():
                by_split.setdefault(split, []).append(metric)
            requests = [MetricsRequest(resource_id, tuple(metrics), window.start, window.end, grain, split)
                        for split, metrics in by_split.items()]
            for request, answer in zip(requests, self.workspace.metric_rows(requests), strict=True):
                deployment = _position(request.split_by, "ModelDeploymentName")
                status = _position(request.split_by, "StatusCode")
                for metric, ts, *values in answer:
                    rows.append((ts, account, values[deployment] if deployment is not None else "", metric,
                                 values[status] if status is not None else "", *values[-4:]))
        columns = tuple(Column(name, kql_type) for name, kql_type in PLATFORM_METRICS.result_columns())
        return ResultTable(columns, rows)


def _position(split_by: tuple[str, ...], dimension: str) -> int | None:
    return split_by.index(dimension) if dimension in split_by else None
