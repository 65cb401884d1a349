"""An HTTPS emulator of the Log Analytics query API, answering from embedded workspace files, with per-request
fault injection and a log of every request.

Follows `shared/reference/azure-telemetry.md` §4 and `shared/reference/specs/OperationalInsights.json`:
`POST /v1/workspaces/{id}/query`, `POST /v1/{resourceId}/query` and `POST /v1/$batch`; a body
`{"query", "timespan", "workspaces"}` whose ISO-8601 timespan (`start/end`, `start/PT..S` with float seconds,
`PT..S` ending now, `duration/end`) filters `TimeGenerated` of every table; `Prefer: wait=N` bounds the query time
(a slower query answers 504); 200 bodies `{"tables": [{"name": "PrimaryResult", "columns", "rows"}]}` with wire
values (datetimes with 7 fractional digits and `Z`, dynamic as JSON text, decimal as text, timespans as
`[d.]hh:mm:ss.fffffff`); errors `{"error": {"code", "message", "innererror"}}`; a result over `max_rows` answers a
200 PartialError with the first `max_rows` rows, as the service does at its 500,000-row limit.

A query over several workspaces is answered per workspace and the tables concatenated: exact for the collector's
additive rollup queries (the collector merges rows sharing a key), not Kusto's union for arbitrary queries.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from collector.errors import ObservatoryError, QueryError
from collector.workspace.engine import ResultTable, Workspace
from tests.emulators.tls import RunningServer, serve_https

PARTIAL_MESSAGE = "There were some errors when processing your query."


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator saw it; a `$batch` is recorded once as a whole and once per query in it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    workspace: str = ""

    @property
    def query(self) -> str:
        return str(self.body.get("query", "")) if isinstance(self.body, dict) else ""

    @property
    def job(self) -> str:
        """The `// name:` header of the query file the collector sent."""
        match = re.search(r"^//\s*name:\s*(\S+)", self.query, re.MULTILINE)
        return match.group(1) if match else ""

    @property
    def window_start(self) -> datetime | None:
        match = re.search(r"let WindowStart = datetime\(([^)]+)\)", self.query)
        return datetime.fromisoformat(match.group(1).replace("Z", "+00:00")) if match else None

    @property
    def window_end(self) -> datetime | None:
        match = re.search(r"let WindowEnd = datetime\(([^)]+)\)", self.query)
        return datetime.fromisoformat(match.group(1).replace("Z", "+00:00")) if match else None


@dataclass
class Fault:
    """What to do instead of (or before) answering one query. `when` picks the query; None takes the next one."""

    kind: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    error: dict[str, Any] = field(default_factory=dict)
    when: Callable[[RecordedRequest], bool] | None = None


Predicate = Callable[[RecordedRequest], bool] | None


def throttled(retry_after: str | None = "1", when: Predicate = None) -> Fault:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Fault("status", 429, headers, error={"code": "ThrottledError", "message": "Your request was throttled: "
                                                "too many requests. Retry after the time in Retry-After."},
                 when=when)


def server_error(status: int = 503, when: Predicate = None) -> Fault:
    codes = {500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
    return Fault("status", status, error={"code": codes.get(status, "ServerError"),
                                          "message": "The service could not process the request."}, when=when)


def forbidden(when: Predicate = None) -> Fault:
    return Fault("status", 403, error={"code": "InsufficientAccessError", "message": "The provided credentials have "
                                       "insufficient access to perform the requested operation",
                                       "innererror": {"code": "InsufficientAccessError",
                                                      "message": "Missing permission to query the workspace."}},
                 when=when)


def partial_error(message: str = "The results of this query exceed the set limit of 1 records.",
                  when: Predicate = None) -> Fault:
    """A 200 carrying the (possibly cut) tables and a PartialError."""
    return Fault("partial", error=_partial(message), when=when)


def slow(seconds: float, when: Predicate = None) -> Fault:
    """The query runs `seconds`; past the request's `Prefer: wait=` the service gives up with a 504."""
    return Fault("slow", seconds=seconds, when=when)


def stalled(seconds: float, when: Predicate = None) -> Fault:
    """Nothing comes back for `seconds`, whatever the Prefer header says (a stuck proxy, a lost connection)."""
    return Fault("stalled", seconds=seconds, when=when)


def malformed(when: Predicate = None) -> Fault:
    """A 200 whose JSON body is cut short."""
    return Fault("malformed", when=when)


def no_content(when: Predicate = None) -> Fault:
    """The 204 the service may send for a workspace with no data (it crashes azure-monitor-query 2.0.0)."""
    return Fault("no_content", 204, when=when)


def _partial(message: str) -> dict[str, Any]:
    return {"code": "PartialError", "message": PARTIAL_MESSAGE,
            "details": [{"code": "EngineError", "message": "Something went wrong processing your query on the server.",
                         "innererror": {"code": "-2133196797", "message": message, "severity": 2,
                                        "severityName": "Error"}}]}


def _error_body(code: str, message: str, inner_code: str = "", inner_message: str = "") -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "correlationId": str(uuid.uuid4())}
    if inner_code:
        error["innererror"] = {"code": inner_code, "message": inner_message}
    return {"error": error}


@dataclass
class Answer:
    """One HTTP answer, and how long to take before giving it."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def _json_answer(status: int, payload: Any, headers: Mapping[str, str] | None = None, delay: float = 0.0) -> Answer:
    return Answer(status, json.dumps(payload).encode(), {"Content-Type": "application/json; charset=utf-8",
                                                         **(headers or {})}, delay)


class LogAnalyticsEmulator:
    """The query API over workspace files, by workspace id (and by ARM resource id for `/v1/{resourceId}/query`)."""

    def __init__(
        self,
        workspaces: Mapping[str, Path],
        *,
        resources: Mapping[str, Path] | None = None,
        max_rows: int | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._paths = {k.lower(): v for k, v in workspaces.items()}
        self._resources = {k.strip("/").lower(): v for k, v in (resources or {}).items()}
        self._workspaces: dict[Path, Workspace] = {}
        self.max_rows = max_rows
        self.now = now
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._engine_lock = threading.Lock()  # one cached connection per workspace: queries take turns
        self.stopping = threading.Event()
        self.server: RunningServer | None = None

    # -- test-facing ---------------------------------------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each is used once, by the first query it matches, in queue order."""
        with self._lock:
            self.faults.extend(faults)

    def queries(self) -> list[RecordedRequest]:
        """The queries received (a `$batch` counts each query in it), in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.query]

    @property
    def url(self) -> str:
        assert self.server is not None, "the emulator is not running"
        return self.server.url

    @property
    def ca_bundle(self) -> Path:
        assert self.server is not None, "the emulator is not running"
        return self.server.ca_bundle

    @contextmanager
    def running(self, directory: Path | None = None) -> Iterator[LogAnalyticsEmulator]:
        """Serve HTTPS on 127.0.0.1 until the block ends."""
        with serve_https(_Handler, self, directory) as server:
            self.server = server
            try:
                yield self
            finally:
                self.stopping.set()
                for workspace in self._workspaces.values():
                    workspace.close()
                self.server = None

    # -- serving ------------------------------------------------------------------------------------------------

    def record(self, request: RecordedRequest) -> Fault | None:
        """Log a query and take the first queued fault that matches it."""
        with self._lock:
            self.requests.append(request)
            if not request.query:
                return None
            for i, fault in enumerate(self.faults):
                if fault.when is None or fault.when(request):
                    return self.faults.pop(i)
        return None

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        if not headers.get("authorization", "").startswith("Bearer "):
            self.record(RecordedRequest(method, path, headers, None))
            return _json_answer(401, _error_body("AuthorizationRequiredError", "Valid authentication was not provided"))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self.record(RecordedRequest(method, path, headers, None))
            return _json_answer(400, _error_body("BadArgumentError", "The request had some invalid properties",
                                                 "InvalidJsonBody", "The request body is not valid JSON."))
        if method != "POST":
            self.record(RecordedRequest(method, path, headers, body))
            return _json_answer(405, _error_body("MethodNotAllowed", f"{method} is not emulated; use POST"))
        if path == "/v1/$batch":
            self.record(RecordedRequest(method, path, headers, body))
            return self._batch(body)
        workspace = re.fullmatch(r"/v1/workspaces/([^/]+)/query", path)
        if workspace:
            request = RecordedRequest(method, path, headers, body, workspace.group(1))
            return self._query(request, [workspace.group(1), *_extra(body)], headers.get("prefer", ""))
        resource = re.fullmatch(r"/v1/(subscriptions/.+)/query", path, re.IGNORECASE)
        if resource:
            request = RecordedRequest(method, path, headers, body, resource.group(1))
            return self._query(request, [resource.group(1), *_extra(body)], headers.get("prefer", ""))
        self.record(RecordedRequest(method, path, headers, body))
        return _json_answer(404, _error_body("PathNotFoundError", f"The requested path does not exist: {path}"))

    def _batch(self, body: Any) -> Answer:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return _json_answer(400, _error_body("BadArgumentError", "The request had some invalid properties",
                                                 "InvalidBatch", "`requests` must be a non-empty list."))
        responses: list[dict[str, Any]] = []
        delay = 0.0
        for item in requests:
            workspace = str(item.get("workspace", ""))
            sub_headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
            sub_path = f"/v1/workspaces/{workspace}{item.get('path', '/query')}"
            request = RecordedRequest(str(item.get("method", "GET")), sub_path, sub_headers, item.get("body"),
                                      workspace)
            answer = self._query(request, [workspace, *_extra(item.get("body"))], sub_headers.get("prefer", ""))
            if answer.status == 204 or answer.body[:1] != b"{" or not answer.body.endswith(b"}"):
                return answer  # a whole-response fault (no content, malformed) stands for the batch
            delay = max(delay, answer.delay)
            response: dict[str, Any] = {"id": item.get("id"), "status": answer.status, "body": json.loads(answer.body)}
            extra_headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-type"}
            if extra_headers:
                response["headers"] = extra_headers
            responses.append(response)
        # The service answers a batch's parts in any order.
        return _json_answer(200, {"responses": list(reversed(responses))}, delay=delay)

    def _query(self, request: RecordedRequest, workspace_ids: list[str], prefer: str) -> Answer:
        fault = self.record(request)
        if not request.query:
            return _json_answer(400, _error_body("BadArgumentError", "The request had some invalid properties",
                                                 "QueryMissing", "The request body must contain a query."))
        wait = _prefer_wait(prefer)
        if fault is not None and fault.kind == "status":
            return _json_answer(fault.status, {"error": fault.error}, fault.headers)
        if fault is not None and fault.kind == "no_content":
            return Answer(204)
        if fault is not None and fault.kind == "slow" and wait is not None and fault.seconds > wait:
            return _json_answer(504, _error_body("GatewayTimeout", "The query exceeded the time allowed by the "
                                                 f"Prefer header (wait={wait:g})."), delay=wait)
        try:
            span = parse_timespan(request.body.get("timespan"), self.now())
        except ValueError as e:
            return _json_answer(400, _error_body("BadArgumentError", "The request had some invalid properties",
                                                 "InvalidTimespan", str(e)))
        paths = []
        for workspace_id in workspace_ids:
            path = self._paths.get(workspace_id.lower()) or self._resources.get(workspace_id.strip("/").lower())
            if path is None:
                return _json_answer(404, _error_body("PathNotFoundError", "The requested path does not exist",
                                                     "WorkspaceNotFoundError",
                                                     f"Workspace {workspace_id} not found"))
            paths.append(path)
        try:
            results = [self._run(path, request.query, span) for path in paths]
        except QueryError as e:
            return _json_answer(400, _error_body("BadArgumentError", "The request had some invalid properties",
                                                 "SyntaxError", str(e)))
        except ObservatoryError as e:
            return _json_answer(500, _error_body("InternalServerError", str(e)))
        table = _encode(results)
        payload: dict[str, Any] = {"tables": [table]}
        if "include-statistics=true" in prefer:
            payload["statistics"] = {"query": {"executionTime": 0.01, "resourceUsage": {}}}
        if self.max_rows is not None and len(table["rows"]) > self.max_rows:
            table["rows"] = table["rows"][: self.max_rows]
            payload["error"] = _partial(f"The results of this query exceed the set limit of {self.max_rows} records.")
        if fault is not None and fault.kind == "partial":
            payload["error"] = fault.error
        if fault is not None and fault.kind == "malformed":
            return Answer(200, json.dumps(payload).encode()[:40], {"Content-Type": "application/json"})
        delay = fault.seconds if fault is not None and fault.kind in ("slow", "stalled") else 0.0
        return _json_answer(200, payload, delay=delay)

    def _run(self, path: Path, text: str, span: tuple[datetime, datetime] | None) -> ResultTable:
        with self._engine_lock:
            workspace = self._workspaces.get(path)
            if workspace is None:
                workspace = self._workspaces[path] = Workspace(path)
            return workspace.query(text, span)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def _serve(self, method: str) -> None:
        emulator: LogAnalyticsEmulator = self.server.app
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer = emulator.handle(method, self.path.split("?", 1)[0], headers, raw)
        if answer.delay and emulator.stopping.wait(answer.delay):
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if answer.body:
            self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _extra(body: Any) -> list[str]:
    workspaces = body.get("workspaces") if isinstance(body, dict) else None
    return [str(w) for w in workspaces] if isinstance(workspaces, list) else []


def _prefer_wait(prefer: str) -> float | None:
    match = re.search(r"(?:^|,)\s*wait=(\d+(?:\.\d+)?)", prefer)
    return float(match.group(1)) if match else None


_DURATION = re.compile(r"P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?"
                       r"(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text.strip())
    if match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not an ISO-8601 duration the service accepts")
    weeks, days, hours, minutes, seconds = (float(g or 0) for g in match.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


def parse_instant(text: str) -> datetime:
    text = text.strip().replace("z", "Z")
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_timespan(value: Any, now: datetime) -> tuple[datetime, datetime] | None:
    """The request body's `timespan` as (start, end); None when it is absent (no time filter)."""
    if value is None or value == "":
        return None
    text = str(value)
    if "/" not in text:
        return now - parse_duration(text), now
    first, second = text.split("/", 1)
    if first.upper().startswith("P"):
        end = parse_instant(second)
        return end - parse_duration(first), end
    start = parse_instant(first)
    end = start + parse_duration(second) if second.upper().startswith("P") else parse_instant(second)
    if end < start:
        raise ValueError(f"timespan {text} ends before it starts")
    return start, end


def _encode(results: list[ResultTable]) -> dict[str, Any]:
    columns = list(results[0].columns) if results else []
    rows = [[_wire(v, c.type) for v, c in zip(row, columns, strict=True)] for result in results for row in result.rows]
    return {"name": "PrimaryResult", "columns": [{"name": c.name, "type": c.type} for c in columns], "rows": rows}


def _wire(value: Any, kql_type: str) -> Any:
    """A value as the service puts it on the wire."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
    if isinstance(value, timedelta):
        sign = "-" if value < timedelta(0) else ""
        value = abs(value)
        hours, rest = divmod(value.seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        days = f"{value.days}." if value.days else ""
        return f"{sign}{days}{hours:02}:{minutes:02}:{seconds:02}.{value.microseconds:06}0"
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if kql_type == "dynamic" and not isinstance(value, str):
        return json.dumps(value, separators=(",", ":"))
    return value
