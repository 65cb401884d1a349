"""The embedded workspace as a collector Source: runs the KQL files and answers the platform-metrics job."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from collector.errors import TerminalError
from collector.kql import KqlQuery, bind_window, load_queries
from collector.rollup import METRIC_SPLITS, PLATFORM_METRICS, RollupSpec
from collector.windows import Window
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

    def __post_init__(self) -> None:
        self.workspace = Workspace(self.path)
        self._queries = {q.name: q for q in load_queries(self.query_dir)}

    def supports(self, spec: RollupSpec) -> bool:
        return spec.kind == "metrics" or spec.name in self._queries

    def fetch(self, spec: RollupSpec, window: Window, grain: timedelta) -> ResultTable:
        if spec.kind == "metrics":
            return self._fetch_metrics(window, grain)
        query = self._queries.get(spec.name)
        if query is None:
            raise TerminalError(f"no query file {spec.name}.kql for job {spec.name}")
        text = bind_window(query, window.start, window.end, grain)
        return self.workspace.query(text, (window.start - TIMESPAN_PAD, window.end + TIMESPAN_PAD))

    def _fetch_metrics(self, window: Window, grain: timedelta) -> ResultTable:
        rows: list[tuple[Any, ...]] = []
        for resource_id in self.workspace.metric_resources():
            account = resource_id.rstrip("/").rsplit("/", 1)[-1].upper()
            for metric, split in METRIC_SPLITS.items():
                request = MetricsRequest(resource_id, (metric,), window.start, window.end, grain, split)
                for series in self.workspace.metrics(request):
                    dims = dict(series.dimensions)
                    for point in series.points:
                        rows.append((point.timestamp, account, dims.get("ModelDeploymentName", ""), metric,
                                     dims.get("StatusCode", ""), point.total, point.count, point.minimum,
                                     point.maximum))
        columns = tuple(Column(name, kql_type) for name, kql_type in PLATFORM_METRICS.result_columns())
        return ResultTable(columns, rows)
