"""Log Analytics workspaces as a collector Source: the only importer of azure.monitor.query; its errors map here."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.rest import HttpResponse
from azure.monitor.query import LogsQueryClient, LogsQueryPartialResult, LogsTable

from collector.azure_clients import close_credential, default_credential
from collector.config import LogAnalyticsSourceSettings
from collector.errors import QueryError, TerminalError, TransientError, WindowTooLarge
from collector.ratelimit import RateLimiter
from collector.rollups.kql import KqlQuery, bind_window, load_queries
from collector.rollups.specs import RollupSpec
from collector.rollups.windows import Window
from collector.workspace.engine import Column, ResultTable
from collector.workspace.source import TIMESPAN_PAD

log = logging.getLogger(__name__)

#: The public cloud's token audience for the query API (scope `https://api.loganalytics.io/.default`).
PUBLIC_AUDIENCE = "https://api.loganalytics.io"
#: Log Analytics runs a query for at most 10 minutes (`Prefer: wait=600`).
MAX_SERVER_TIMEOUT = 600
#: What the service says when a result is cut by its row, size or memory limits: collecting halves fixes these.
_LIMIT_MARKERS = re.compile(
    r"exceed the set limit|E_QUERY_RESULT_SET_TOO_LARGE|-2133196797|result set has exceeded|"
    r"E_LOW_MEMORY_CONDITION|exceeded the allowed memory|memory limit",
    re.IGNORECASE,
)
_ROLE_HINT = ("the identity needs the Log Analytics Reader role (or Microsoft.OperationalInsights/workspaces/query/"
              "read) on every workspace of the source")


class _RateLimitPolicy(SansIOHTTPPolicy[Any, Any]):
    """Takes a slot before every attempt, retries included: Azure counts each one against its limit."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    def on_request(self, request: PipelineRequest[Any]) -> None:
        waited = self._limiter.acquire()
        if waited:
            log.debug("rate limiter held a Log Analytics request for %.1f s", waited)


class _FinalStatus:
    """The HTTP status of the last attempt of one call (the SDK's response hook runs once per attempt)."""

    code: int | None = None

    def record(self, response: PipelineResponse[Any, Any]) -> None:
        self.code = response.http_response.status_code


class LogAnalyticsSource:
    """Collects the kql jobs from Log Analytics workspaces through `LogsQueryClient`.

    Every query covers all the configured workspaces (the first as the primary, the rest as additional workspaces),
    so the number of requests per pass is one per job and window, whatever the number of workspaces or deployments.
    Only the settings (endpoint, audience, ca_bundle) point it elsewhere, such as at a test emulator. The keyword
    arguments after `query_dir` tune what the settings do not cover yet: the rate limiter (with its clock), the
    retry backoff, and how long past the server timeout the client waits for an answer.
    """

    def __init__(
        self,
        settings: LogAnalyticsSourceSettings,
        credential: TokenCredential | None = None,
        *,
        query_dir: Path | None = None,
        limiter: RateLimiter | None = None,
        retry_backoff_factor: float = 0.8,
        retry_backoff_max: float = 60.0,
        response_grace: timedelta = timedelta(seconds=30),
    ) -> None:
        if settings.endpoint.startswith("http://"):
            raise TerminalError(f"source {settings.name}: endpoint {settings.endpoint} is plain http; Azure SDKs send "
                                "bearer tokens over https only")
        self.settings = settings
        self._credential = credential
        self._owns_credential = credential is None
        self._queries: dict[str, KqlQuery] = {q.name: q for q in load_queries(query_dir)}
        self._limiter = limiter or RateLimiter(settings.requests_per_30s)
        self._retry_backoff_factor = retry_backoff_factor
        self._retry_backoff_max = retry_backoff_max
        self._response_grace = response_grace
        self._client: LogsQueryClient | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.settings.name

    def supports(self, spec: RollupSpec) -> bool:
        return spec.kind == "kql" and spec.name in self._queries

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            credential = self._credential if self._owns_credential else None
            if self._owns_credential:
                self._credential = None
        if client is not None:
            client.close()
        close_credential(credential)

    @property
    def server_timeout(self) -> int:
        """The `Prefer: wait=` seconds sent with each query."""
        return max(1, min(MAX_SERVER_TIMEOUT, int(self.settings.timeout.total_seconds())))

    def fetch(self, spec: RollupSpec, window: Window, grain: timedelta) -> ResultTable:
        query = self._queries.get(spec.name) if spec.kind == "kql" else None
        if query is None:
            raise TerminalError(f"source {self.name} has no query file {spec.name}.kql for job {spec.name}")
        where = f"{self.name}/{spec.name} window {window}"
        primary, *others = self.settings.workspace_ids
        status = _FinalStatus()
        try:
            response = self._open().query_workspace(
                primary,
                bind_window(query, window.start, window.end, grain),
                timespan=(window.start - TIMESPAN_PAD, window.end + TIMESPAN_PAD),
                server_timeout=self.server_timeout,
                additional_workspaces=others or None,
                raw_response_hook=status.record,
            )
        except HttpResponseError as e:
            raise _mapped_http_error(e, where) from e
        except ServiceResponseError as e:
            raise TransientError(f"{where}: no answer from Log Analytics within {self._read_timeout():.0f} s "
                                 f"({e.message}); the next run tries again") from e
        except ServiceRequestError as e:
            raise TransientError(f"{where}: cannot reach {self.settings.endpoint} ({e.message}); the next run "
                                 "tries again") from e
        except AzureError as e:
            raise TransientError(f"{where}: Log Analytics request failed ({e.message})") from e
        except ValueError as e:
            # azure-monitor-query 2.0.0 parses the body of any non-200 answer as JSON before raising; a 204 (which
            # the service sends for a workspace with nothing to say) has no body, so the SDK dies with a
            # JSONDecodeError. A 204 is "no data": an empty result, so the window is stored as empty.
            if status.code == 204:
                log.info("%s: Log Analytics answered 204 No Content; storing the window as empty", where)
                return ResultTable(tuple(Column(n, t) for n, t in spec.result_columns()), [])
            raise TransientError(f"{where}: Log Analytics answered HTTP {status.code} with a body that is not "
                                 f"JSON ({e}); the next run tries again") from e
        if isinstance(response, LogsQueryPartialResult):
            raise WindowTooLarge(f"{where}: Log Analytics returned a partial result ({_partial_detail(response)})")
        return _result_table(response.tables, where)

    def _read_timeout(self) -> float:
        return self.server_timeout + self._response_grace.total_seconds()

    def _open(self) -> LogsQueryClient:
        with self._lock:
            if self._client is None:
                if self._credential is None:
                    self._credential = default_credential(self.settings.tenant_id, self.settings.client_id)
                retries = self.settings.retries
                endpoint = self.settings.endpoint.rstrip("/")
                # The SDK drops the whole path of an endpoint ending in /v1; keep a proxy's path prefix.
                endpoint = endpoint.removesuffix("/v1")
                self._client = LogsQueryClient(
                    self._credential,
                    endpoint=endpoint,
                    audience=self.settings.audience or PUBLIC_AUDIENCE,
                    connection_verify=str(self.settings.ca_bundle) if self.settings.ca_bundle else True,
                    connection_timeout=min(30.0, self._read_timeout()),
                    read_timeout=self._read_timeout(),
                    retry_total=retries,
                    retry_status=retries,
                    retry_connect=retries,
                    retry_backoff_factor=self._retry_backoff_factor,
                    retry_backoff_max=self._retry_backoff_max,
                    per_retry_policies=[_RateLimitPolicy(self._limiter)],
                )
            return self._client


def _mapped_http_error(e: HttpResponseError, where: str) -> Exception:
    """Our error for an HTTP failure the SDK raised (after its own retries of 429 and 5xx)."""
    status = e.status_code
    code, message = _service_error(e)
    said = f"{code}: {message}" if code else message
    if status is None:  # no response at all: the credential could not get a token
        return TerminalError(f"{where}: cannot get a token for Log Analytics ({e.message}); sign in with `az login`, "
                             "or check the managed identity (client_id) and tenant_id of the source")
    if _LIMIT_MARKERS.search(message) or _LIMIT_MARKERS.search(str(e.message)):
        return WindowTooLarge(f"{where}: over a Log Analytics result limit ({said})")
    if status == 429 or status >= 500 or status == 408:
        response = _response_of(e)
        retry_after = response.headers.get("Retry-After") if response is not None else None
        wait = f", Retry-After {retry_after} s" if retry_after else ""
        return TransientError(f"{where}: Log Analytics answered HTTP {status}{wait} after the retries ({said}); "
                              "the window is left for the next run")
    if status in (401, 403):
        return TerminalError(f"{where}: Log Analytics refused access (HTTP {status}, {said}); {_ROLE_HINT}")
    if status == 404:
        return TerminalError(f"{where}: Log Analytics knows no such workspace (HTTP 404, {said}); check "
                             "workspace_ids (the workspace id GUID, not its name) and endpoint")
    if status == 400:
        return QueryError(f"{where}: Log Analytics refused the query ({said}); fix the .kql file (line numbers "
                          "count the three `let` lines the collector puts first)")
    if status == 200:  # a 200 whose body the SDK could not read
        return TransientError(f"{where}: Log Analytics answered 200 with a body that could not be read "
                              f"({e.message}); the next run tries again")
    return TerminalError(f"{where}: Log Analytics answered HTTP {status} ({said})")


def _response_of(e: HttpResponseError) -> HttpResponse | None:
    return e.response if isinstance(e.response, HttpResponse) else None


def _service_error(e: HttpResponseError) -> tuple[str, str]:
    """The service's error code and its innermost message, from the ARM-style error body."""
    body: Any = None
    response = _response_of(e)
    if response is not None:
        try:
            body = response.json()
        except ValueError:
            body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", str(e.reason or e.message)
    code = str(error.get("code", ""))
    inner: dict[str, Any] = error
    while isinstance(inner.get("innererror"), dict):
        inner = inner["innererror"]
    details = error.get("details")
    if inner is error and isinstance(details, list) and details and isinstance(details[0], dict):
        inner = details[0].get("innererror") or details[0]
    return code, str(inner.get("message") or error.get("message") or e.message)


def _partial_detail(response: LogsQueryPartialResult) -> str:
    """What went wrong in a partial result: the engine's message sits in the first detail's inner error."""
    error = response.partial_error
    if error is None:
        return "no detail"
    message = error.message
    for detail in error.details or []:
        inner = detail.get("innererror") if isinstance(detail, dict) else None
        if isinstance(inner, dict) and inner.get("message"):
            message = str(inner["message"])
            break
    return f"{error.code}: {message}"


def _result_table(tables: Sequence[LogsTable], where: str) -> ResultTable:
    """The primary table as the engine's ResultTable: aware UTC datetimes, ints, floats, dynamic as JSON text."""
    if not tables:
        return ResultTable((), [])
    table = tables[0]
    columns = tuple(Column(n, t) for n, t in zip(table.columns, table.columns_types, strict=True))
    converters = [_CONVERTERS.get(c.type, _same) for c in columns]
    try:
        rows = [tuple(convert(v) for convert, v in zip(converters, row, strict=True)) for row in table.rows]
    except (TypeError, ValueError, InvalidOperation) as e:
        raise TransientError(f"{where}: Log Analytics returned a value that does not match its column type "
                             f"({e})") from e
    return ResultTable(columns, rows)


def _same(value: Any) -> Any:
    return value


def _datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # the SDK leaves a value it cannot parse as text
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise TypeError(f"{value!r} is not a datetime")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)


def _real(value: Any) -> float | None:
    return None if value is None else float(value)


def _dynamic(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


_TIMESPAN = re.compile(r"(-)?(?:(\d+)\.)?(\d+):(\d+):(\d+)(?:\.(\d+))?")


def _timespan(value: Any) -> timedelta | None:
    """KQL's wire form of a timespan: `[-][d.]hh:mm:ss[.fffffff]`."""
    if value is None:
        return None
    match = _TIMESPAN.fullmatch(str(value))
    if match is None:
        raise ValueError(f"{value!r} is not a timespan")
    sign, days, hours, minutes, seconds, fraction = match.groups()
    span = timedelta(days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=int(seconds),
                     microseconds=int((fraction or "0")[:6].ljust(6, "0")))
    return -span if sign else span


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "datetime": _datetime,
    "int": _integer,
    "long": _integer,
    "real": _real,
    "dynamic": _dynamic,
    "decimal": _decimal,
    "timespan": _timespan,
    "guid": lambda v: None if v is None else str(v),
}
