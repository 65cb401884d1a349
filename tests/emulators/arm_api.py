"""An HTTPS emulator of ARM's `Microsoft.Insights/metricAlerts` (api-version 2018-03-01), for `alerts.arm`.

Serves, over HTTPS (`tests.emulators.tls`), what `shared/reference/specs/metricAlert_API.json` and §5 of the telemetry
reference describe and azure-mgmt-monitor 7.0.0's `metric_alerts` sends:

- `GET /subscriptions/{sub}/providers/Microsoft.Insights/metricAlerts` and
  `GET /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Insights/metricAlerts`: `{"value": [...]}`,
  no nextLink;
- `GET`, `PUT` (answers 200, for a create too), `DELETE` (200; 204 when absent) of `.../metricAlerts/{name}`.

Like ARM, path segments match case-insensitively, and a stored rule comes back with what the server adds: an `id`
in another case than the request's (upper-cased resource group, lower-cased provider), `type`,
`properties.lastUpdatedTime`, `properties.isMigrated`, a `hidden-link:{scope}` tag per scope, and its scopes and
action group ids upper-cased. A PUT is validated minimally: a criterion on the Azure OpenAI namespace naming a metric
`alerts.catalog` does not know, or a dimension that metric lacks, is a 400 ARM error `{"error": {"code":
"BadRequest", "message"}}`. Faults (status + Retry-After, optionally only for one method, after some requests have
passed) are injected per request; every request is logged with its JSON body.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from alerts import catalog
from tests.emulators.arm_errors import FAULT_CODES, ArmError, arm_error_body
from tests.emulators.tls import ServedOverHttps, send_json

API_VERSION = "2018-03-01"
TYPE = "Microsoft.Insights/metricAlerts"
LAST_UPDATED = "2025-03-03T10:00:00.0000000Z"
_PATH = re.compile(r"/subscriptions/([^/]+)(?:/resourceGroups/([^/]+))?/providers/Microsoft\.Insights/metricAlerts"
                   r"(?:/([^/]+))?/?", re.IGNORECASE)
_CRITERIA = ("Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
             "Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria")

Key = tuple[str, str, str]


@dataclass
class Fault:
    """Answer `status` (with an ARM error body and Retry-After) instead of serving a request."""

    status: int
    retry_after: str | None = None
    method: str = ""  # only requests with this method ("" = any)
    after: int = 0  # let this many matching requests through first


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    authorization: str
    body: Any
    status: int



@dataclass
class ArmEmulator(ServedOverHttps):
    """The emulator; use as a context manager. `rules` maps (subscription, resource group, name), lower-cased, to the
    resource as ARM would return it; tests may put rules there directly (a rule made in the portal)."""

    directory: Path
    rules: dict[Key, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return self.url

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)


    def inject(self, fault: Fault, times: int = 1) -> None:
        """Apply `fault` to `times` matching requests (after its `after` passes), before faults injected later."""
        with self._lock:
            self.faults.extend(copy.copy(fault) for _ in range(times))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def store(self, payload: dict[str, Any]) -> None:
        """Put a rule straight into the store (ARM JSON with an id), as if made outside the tool."""
        match = _PATH.fullmatch(payload["id"])
        assert match is not None and match[2] and match[3], payload["id"]
        with self._lock:
            self.rules[(match[1].lower(), match[2].lower(), match[3].lower())] = copy.deepcopy(payload)

    def calls(self, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if method is None or r.method == method]

    # -- request handling ------------------------------------------------------------------------------------------

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self.faults):
                if fault.method and fault.method != method:
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    return None
                return self.faults.pop(i)
        return None

    def answer(self, method: str, raw_path: str, authorization: str, raw_body: bytes) -> tuple[int, dict[str, str],
                                                                                              bytes]:
        split = urlsplit(raw_path)
        path = unquote(split.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = raw_body.decode(errors="replace")
        status, headers, answer = self._answer(method, path, query, authorization, body)
        with self._lock:
            self.requests.append(RecordedRequest(method, path, query, authorization, body, status))
        return status, headers, answer

    def _answer(self, method: str, path: str, query: dict[str, str], authorization: str,
                body: Any) -> tuple[int, dict[str, str], bytes]:
        fault = self._take_fault(method)
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return fault.status, headers, arm_error_body(FAULT_CODES.get(fault.status, "Error"),
                                                      f"injected {fault.status}")
        try:
            if not authorization.startswith("Bearer "):
                raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is "
                                                             "missing.")
            if query.get("api-version") != API_VERSION:
                raise ArmError(400, "InvalidApiVersionParameter",
                                f"The api-version '{query.get('api-version')}' is invalid. Supported: {API_VERSION}.")
            match = _PATH.fullmatch(path)
            if match is None:
                raise ArmError(404, "PathNotFound", f"The path {path} is not served by this emulator.")
            subscription, group, name = match[1], match[2], match[3]
            if name is None:
                if method != "GET":
                    raise ArmError(405, "MethodNotAllowed", f"{method} is not allowed on a collection.")
                return 200, {}, json.dumps({"value": self._list(subscription, group)}).encode()
            if group is None:
                raise ArmError(404, "PathNotFound", f"The path {path} is not served by this emulator.")
            key = (subscription.lower(), group.lower(), name.lower())
            if method == "GET":
                with self._lock:
                    found = self.rules.get(key)
                if found is None:
                    raise ArmError(404, "ResourceNotFound", f"The Resource '{TYPE}/{name}' under resource group "
                                                             f"'{group}' was not found.")
                return 200, {}, json.dumps(found).encode()
            if method == "PUT":
                return 200, {}, json.dumps(self._put(key, subscription, group, name, body)).encode()
            if method == "DELETE":
                with self._lock:
                    gone = self.rules.pop(key, None)
                return (200 if gone is not None else 204), {}, b""
            raise ArmError(405, "MethodNotAllowed", f"{method} is not served by this emulator.")
        except ArmError as e:
            return e.status, {}, arm_error_body(e.code, e.message)

    def _list(self, subscription: str, group: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(rule) for (sub, rg, _), rule in sorted(self.rules.items())
                    if sub == subscription.lower() and (group is None or rg == group.lower())]

    def _put(self, key: Key, subscription: str, group: str, name: str, body: Any) -> dict[str, Any]:
        _validate(name, body)
        stored: dict[str, Any] = copy.deepcopy(body)
        props = stored["properties"]
        props["scopes"] = [s.upper() for s in props["scopes"]]
        for action in props.get("actions") or []:
            action["actionGroupId"] = str(action["actionGroupId"]).upper()
        tags = stored.setdefault("tags", {}) or {}
        stored["tags"] = tags
        for scope in props["scopes"]:
            tags[f"hidden-link:{scope}"] = "Resource"
        props["lastUpdatedTime"] = LAST_UPDATED
        props["isMigrated"] = False
        stored["id"] = (f"/subscriptions/{subscription}/resourcegroups/{group.upper()}/providers/"
                        f"microsoft.insights/metricalerts/{name}")
        stored["name"] = name
        stored["type"] = TYPE
        with self._lock:
            self.rules[key] = stored
        return copy.deepcopy(stored)


def _validate(name: str, body: Any) -> None:
    def bad(message: str) -> ArmError:
        return ArmError(400, "BadRequest", message)

    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        raise bad(f"The request content of alert rule '{name}' is not a metric alert resource.")
    if str(body.get("location", "")).lower() != "global":
        raise bad(f"Alert rule '{name}': location must be 'global'.")
    props = body["properties"]
    for required in ("severity", "enabled", "scopes", "evaluationFrequency", "windowSize", "criteria"):
        if required not in props:
            raise bad(f"Alert rule '{name}': the property '{required}' is required.")
    criteria = props["criteria"]
    if not isinstance(criteria, dict) or criteria.get("odata.type") not in _CRITERIA:
        raise bad(f"Alert rule '{name}': criteria of type {criteria.get('odata.type')!r} are not supported.")
    if len(props["scopes"]) > 1 and not (props.get("targetResourceType") and props.get("targetResourceRegion")):
        raise bad(f"Alert rule '{name}': targetResourceType and targetResourceRegion are required for a rule on "
                  "several resources.")
    for criterion in criteria.get("allOf") or []:
        namespace = str(criterion.get("metricNamespace") or catalog.NAMESPACE)
        if namespace.casefold() != catalog.NAMESPACE.casefold():
            continue
        metric = catalog.lookup_metric(str(criterion.get("metricName", "")))
        if metric is None:
            raise bad(f"Couldn't find a metric named {criterion.get('metricName')}. Make sure the name is correct. "
                      f"Alert rule '{name}'.")
        for dimension in criterion.get("dimensions") or []:
            if catalog.canonical_dimension(metric, str(dimension.get("name", ""))) is None:
                raise bad(f"Alert rule '{name}': metric {metric.name} has no dimension {dimension.get('name')}.")


def _handler(emulator: ArmEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, headers, body = emulator.answer(self.command, self.path, self.headers.get("Authorization", ""),
                                                    raw)
            send_json(self, status, headers, body)

        do_GET = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


