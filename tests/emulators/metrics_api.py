"""An HTTPS emulator of the Azure Monitor Metrics API, answering from an embedded workspace's `_PlatformMetrics`.

Serves `GET {resourceUri}/providers/Microsoft.Insights/metrics` over HTTPS (`tests.emulators.tls`), with
per-request fault injection (status + Retry-After, delay, malformed body) and a log of the requests it saw.
Follows `shared/reference/azure-telemetry.md` §3 and §5 and the REST reference of Metrics - List (api-version
2024-02-01, what azure-mgmt-monitor 7.0.0 sends): `timespan`, `interval`, `metricnames`, `aggregation`, `top`
(10 series per metric by default when there is a $filter), `$filter` (`Dim eq '*'`, `Dim eq 'v'`, `or` within one
dimension), `metricnamespace`; ARM error bodies `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from collector.workspace.engine import MetricSeries, MetricsRequest, Workspace, insert_rows
from collector.workspace.schema import METRICS_COLUMNS, METRICS_TABLE
from tests.emulators.arm_errors import FAULT_CODES, ArmError, arm_error_body
from tests.emulators.tls import ServedOverHttps, send_json

API_VERSION = "2024-02-01"
NAMESPACE = "Microsoft.CognitiveServices/accounts"
_METRICS_PATH = "/providers/microsoft.insights/metrics"

#: Metric -> (unit, dimensions), from §3 of the telemetry reference.
_DEPLOYMENT_DIMS = ("Region", "ModelDeploymentName", "ModelName", "ModelVersion")
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "AzureOpenAIRequests": ("Count", ("ApiName", "OperationName", "Region", "StreamType", "ModelDeploymentName",
                                      "ModelName", "ModelVersion", "StatusCode", "IsSpillover", "ServiceTierRequest",
                                      "ServiceTierResponse")),
    "ProcessedPromptTokens": ("Count", ("ApiName", "ModelDeploymentName", "FeatureName", "UsageChannel", "Region",
                                        "ModelVersion")),
    "GeneratedTokens": ("Count", ("ApiName", "ModelDeploymentName", "FeatureName", "UsageChannel", "Region",
                                  "ModelVersion")),
    "TokenTransaction": ("Count", ("ApiName", "ModelDeploymentName", "FeatureName", "UsageChannel", "Region",
                                   "ModelVersion")),
    "ActiveTokens": ("Count", _DEPLOYMENT_DIMS),
    "AzureOpenAIContextTokensCacheMatchRate": ("Percent", _DEPLOYMENT_DIMS),
    "AzureOpenAIProvisionedManagedUtilizationV2": ("Percent", (*_DEPLOYMENT_DIMS, "StreamType")),
    "AzureOpenAITimeToResponse": ("MilliSeconds", ("ApiName", "OperationName", "Region", "StreamType",
                                                   "ModelDeploymentName", "ModelName", "ModelVersion", "StatusCode")),
    "AzureOpenAITTLTInMS": ("MilliSeconds", _DEPLOYMENT_DIMS),
    "AzureOpenAINormalizedTTFTInMS": ("MilliSeconds", _DEPLOYMENT_DIMS),
    "AzureOpenAINormalizedTBTInMS": ("MilliSeconds", _DEPLOYMENT_DIMS),
    "AzureOpenAITokenPerSecond": ("Count", _DEPLOYMENT_DIMS),
    "RAIRejectedRequests": ("Count", (*_DEPLOYMENT_DIMS, "ApiName", "TextType", "Category")),
    "RAIHarmfulRequests": ("Count", (*_DEPLOYMENT_DIMS, "ApiName", "TextType", "Category", "Severity")),
    "RAITotalRequests": ("Count", (*_DEPLOYMENT_DIMS, "ApiName")),
}
_AGGREGATIONS = ("average", "count", "minimum", "maximum", "total")
_INTERVALS = {"PT1M": 1, "PT5M": 5, "PT15M": 15, "PT30M": 30, "PT1H": 60, "PT6H": 360, "PT12H": 720, "P1D": 1440}
_MAX_METRICS = 20
_DEFAULT_TOP = 10


@dataclass
class Fault:
    """What to do instead of (or before) answering one request."""

    status: int = 200  # not 200: answer this status with an ARM error body
    retry_after: str | None = None
    delay: float = 0.0  # seconds to wait before answering
    body: bytes | None = None  # answer 200 with this body (a malformed one, say)
    match: str = ""  # only requests whose query string contains this (decoded) text


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    authorization: str
    status: int



@dataclass
class MetricsEmulator(ServedOverHttps):
    """The emulator; use as a context manager. `endpoint` and `ca_bundle` are what the product's settings take."""

    workspace_path: Path
    directory: Path
    faults: list[Fault] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    #: The metrics the emulated resource type defines; a test may remove one (a region without it).
    metrics: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=lambda: dict(METRICS))

    def __post_init__(self) -> None:
        self._workspace = Workspace(self.workspace_path)
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return self.url

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Apply `fault` to the next `times` requests it matches, before any fault injected later."""
        with self._lock:
            self.faults.extend([fault] * times)

    def metric_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.lower().endswith(_METRICS_PATH)]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    def stop(self) -> None:
        super().stop()
        with self._lock:
            self._workspace.close()


    @contextmanager
    def workspace_writer(self) -> Iterator[Any]:
        """Write to the backing workspace (the emulator's read connection is closed meanwhile)."""
        with self._lock, self._workspace.writer() as con:
            yield con

    # -- request handling --------------------------------------------------------------------------------------

    def _take_fault(self, query_text: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self.faults):
                if fault.match in query_text:
                    return self.faults.pop(i)
        return None

    def answer(self, method: str, raw_path: str, authorization: str) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(raw_path)
        path = unquote(split.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        fault = self._take_fault(unquote(split.query))
        status, headers, body = self._answer(method, path, query, authorization, fault)
        with self._lock:
            self.requests.append(RecordedRequest(method, path, query, authorization, status))
        return status, headers, body

    def _answer(self, method: str, path: str, query: dict[str, str], authorization: str,
                fault: Fault | None) -> tuple[int, dict[str, str], bytes]:
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status != 200:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                code = FAULT_CODES.get(fault.status, "Error")
                return fault.status, headers, arm_error_body(code, f"injected {fault.status}")
            if fault.body is not None:
                return 200, {}, fault.body
        try:
            if not authorization.startswith("Bearer "):
                raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is "
                                                             "missing.")
            if method != "GET" or not path.lower().endswith(_METRICS_PATH):
                raise ArmError(404, "PathNotFound", f"The path {path} is not served by this emulator.")
            resource_id = path[: -len(_METRICS_PATH)]
            return 200, {}, json.dumps(self._metrics(resource_id, query)).encode()
        except ArmError as e:
            return e.status, {}, arm_error_body(e.code, e.message)

    def _metrics(self, resource_id: str, query: dict[str, str]) -> dict[str, Any]:
        if query.get("api-version") != API_VERSION:
            raise ArmError(400, "InvalidApiVersionParameter",
                            f"The api-version '{query.get('api-version')}' is invalid. Supported: {API_VERSION}.")
        namespace = query.get("metricnamespace", NAMESPACE)
        if namespace.lower() != NAMESPACE.lower():
            raise ArmError(400, "BadRequest", f"Metric namespace {namespace} is not valid for this resource.")
        with self._lock:
            known = {r.lower(): r for r in self._workspace.metric_resources()}
        if resource_id.lower() not in known:
            raise ArmError(404, "ResourceNotFound", f"The Resource '{resource_id}' was not found.")
        names = _metric_names(query.get("metricnames", ""), self.metrics)
        aggregations = _aggregations(query.get("aggregation"), [self.metrics[n] for n in names])
        interval_text = query.get("interval", "PT1M")
        if interval_text.upper() not in _INTERVALS:
            raise ArmError(400, "BadRequest", f"Invalid time grain {interval_text}; supported: "
                                               f"{', '.join(_INTERVALS)}.")
        interval = timedelta(minutes=_INTERVALS[interval_text.upper()])
        start, end = _timespan(query.get("timespan"))
        filter_text = query.get("$filter")
        split_by, filters = _parse_filter(filter_text) if filter_text else ((), {})
        for name in names:
            missing = [d for d in split_by if d not in self.metrics[name][1]]
            if missing:
                raise ArmError(400, "BadRequest", f"Metric {name} has no dimension(s) {', '.join(missing)}.")
        top = int(query.get("top", _DEFAULT_TOP)) if filter_text else None
        request = MetricsRequest(known[resource_id.lower()], tuple(names), start, end, interval, split_by, filters)
        with self._lock:
            series = self._workspace.metrics([request])
        return {
            "cost": 0,
            "timespan": f"{_iso(start)}/{_iso(end)}",
            "interval": interval_text.upper(),
            "namespace": NAMESPACE,
            "resourceregion": "eastus",
            "value": [_metric_json(resource_id, name, self.metrics[name][0], [s for s in series if s.metric == name],
                                   aggregations, start, end, interval, top) for name in names],
        }


def _handler(emulator: MetricsEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status, headers, body = emulator.answer("GET", self.path, self.headers.get("Authorization", ""))
            send_json(self, status, headers, body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler




def _metric_names(text: str, metrics: dict[str, tuple[str, tuple[str, ...]]]) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ArmError(400, "BadRequest", "metricnames is required.")
    if len(names) > _MAX_METRICS:
        raise ArmError(400, "BadRequest", f"At most {_MAX_METRICS} metrics per request, got {len(names)}.")
    unknown = [n for n in names if n not in metrics]
    if unknown:
        raise ArmError(400, "BadRequest",
                        f"Failed to find metric configuration for provider: Microsoft.CognitiveServices, resource "
                        f"Type: accounts, metric: {', '.join(unknown)}, Valid metrics: {', '.join(metrics)}")
    return names


def _aggregations(text: str | None, metrics: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    if text is None:  # the primary aggregation
        return ["total" if metrics[0][0] == "Count" else "average"]
    wanted = [a.strip().lower() for a in text.split(",") if a.strip()]
    bad = [a for a in wanted if a not in _AGGREGATIONS]
    if bad or not wanted:
        raise ArmError(400, "BadRequest", f"Invalid aggregation(s) {', '.join(bad) or text!r}; valid: "
                                           f"{', '.join(_AGGREGATIONS)}.")
    return wanted


_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE)


def _duration(text: str) -> timedelta | None:
    match = _DURATION.match(text)
    if not match or text.upper() in ("P", "PT"):
        return None
    days, hours, minutes, seconds = match.groups()
    return timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0),
                     seconds=float(seconds or 0))


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _timespan(text: str | None) -> tuple[datetime, datetime]:
    """`start/end`, `start/duration` or `duration/end` (ISO 8601); absent: the last hour."""
    if text is None:
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        return end - timedelta(hours=1), end
    parts = text.split("/")
    if len(parts) == 2:
        first, second = parts
        start, end = _moment(first), _moment(second)
        if start is not None and end is None and (d := _duration(second)) is not None:
            end = start + d
        elif start is None and end is not None and (d := _duration(first)) is not None:
            start = end - d
        if start is not None and end is not None and start < end:
            return start, end
    raise ArmError(400, "BadRequest", f"Invalid timespan '{text}': expected startTime/endTime in ISO 8601.")


_CLAUSE = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)


def _parse_filter(text: str) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """`A eq '*' and (B eq 'x' or B eq 'y')` -> split by (A, B), B limited to x, y."""
    split_by: list[str] = []
    filters: dict[str, tuple[str, ...]] = {}
    for part in re.split(r"\s+and\s+", text, flags=re.IGNORECASE):
        alternatives = re.split(r"\s+or\s+", part.strip().removeprefix("(").removesuffix(")"), flags=re.IGNORECASE)
        clauses = [_CLAUSE.match(a) for a in alternatives]
        if not all(clauses):
            raise ArmError(400, "BadRequest", f"The $filter '{text}' is invalid near '{part.strip()}'.")
        names = {c.group(1).lower() for c in clauses if c}
        if len(names) != 1:
            raise ArmError(400, "BadRequest", f"The $filter '{text}' is invalid: 'or' cannot separate two "
                                               "different metadata names.")
        dimension = _canonical(next(c.group(1) for c in clauses if c))
        values = tuple(c.group(2).replace("''", "'") for c in clauses if c)
        split_by.append(dimension)
        if "*" not in values:
            filters[dimension] = values
    return tuple(split_by), filters


def _canonical(dimension: str) -> str:
    """Dimension names are case-insensitive on the wire; the workspace stores them in Azure's own casing."""
    for _, dims in METRICS.values():
        for known in dims:
            if known.lower() == dimension.lower():
                return known
    raise ArmError(400, "BadRequest", f"Unknown dimension {dimension}.")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _metric_json(resource_id: str, name: str, unit: str, series: list[MetricSeries], aggregations: list[str],
                 start: datetime, end: datetime, interval: timedelta, top: int | None) -> dict[str, Any]:
    series = sorted(series, key=lambda s: s.dimensions)
    if top is not None:
        series = series[:top]
    stamps = []
    cursor = start
    while cursor < end:
        stamps.append(cursor)
        cursor += interval
    # An interval with no samples: Count metrics as zeros, the others as a bare timeStamp. Which metric Azure fills
    # how is not documented; emulating both makes the source handle both.
    zero_filled = unit == "Count"
    timeseries = []
    for s in series:
        points = {p.timestamp: p for p in s.points}
        data = []
        for stamp in stamps:
            point = points.get(stamp)
            entry: dict[str, Any] = {"timeStamp": _iso(stamp)}
            if point is not None:
                values = {"total": point.total, "count": point.count, "minimum": point.minimum,
                          "maximum": point.maximum, "average": point.average}
                entry.update({a: values[a] for a in aggregations})
            elif zero_filled:
                entry.update({a: 0.0 for a in aggregations if a in ("total", "count")})
            data.append(entry)
        timeseries.append({
            "metadatavalues": [{"name": {"value": d.lower(), "localizedValue": d.lower()}, "value": v}
                               for d, v in s.dimensions],
            "data": data,
        })
    return {
        "id": f"{resource_id}/providers/Microsoft.Insights/metrics/{name}",
        "type": "Microsoft.Insights/metrics",
        "name": {"value": name, "localizedValue": name},
        "displayDescription": "",
        "unit": unit,
        "timeseries": timeseries,
        "errorCode": "Success",
    }


def add_deployments(workspace: Workspace, count: int, start: datetime, end: datetime) -> list[str]:
    """Give every account of the workspace `count` more deployments with traffic in every minute of [start, end):
    what a much larger organisation looks like to the Metrics API. Returns the new deployment names."""
    names = [f"extra-{i:03d}" for i in range(count)]
    if not names:
        return names
    rows: list[tuple[Any, ...]] = []
    resources = workspace.metric_resources()
    minutes = int((end - start) / timedelta(minutes=1))
    for resource in resources:
        for name in names:
            for minute in range(0, minutes, 15):
                stamp = start + timedelta(minutes=minute)
                for status in ("200", "429"):
                    dims = json.dumps({"ModelDeploymentName": name, "StatusCode": status})
                    rows.append((stamp, resource, "AzureOpenAIRequests", dims, 3.0, 3.0, 1.0, 1.0))
                dims = json.dumps({"ModelDeploymentName": name})
                rows.append((stamp, resource, "ProcessedPromptTokens", dims, 900.0, 3.0, 100.0, 500.0))
                rows.append((stamp, resource, "AzureOpenAITimeToResponse", dims, 600.0, 3.0, 150.0, 250.0))
    with workspace.writer() as con:
        insert_rows(con, METRICS_TABLE, list(METRICS_COLUMNS), rows)
    return names
