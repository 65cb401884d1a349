"""The Azure Monitor Metrics API source: the only importer of azure.mgmt.monitor; platform metrics per deployment.

Per window and account it makes one `metrics.list` call per distinct split of `METRIC_SPLITS` (naming all that
split's metrics at once, `ModelDeploymentName eq '*'` in the filter), so the number of calls grows with accounts and
splits, never with deployments. The rows it returns are the ones the embedded workspace gives for the same job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    DecodeError,
    DeserializationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.mgmt.monitor import MonitorManagementClient

from collector.config import MetricsSourceSettings
from collector.errors import TerminalError, TransientError
from collector.ratelimit import RateLimiter
from collector.rollup import METRIC_SPLITS, PLATFORM_METRICS, RollupSpec
from collector.windows import Window

log = logging.getLogger(__name__)

METRIC_NAMESPACE = "Microsoft.CognitiveServices/accounts"
#: All four stored measures, for every metric. §3 of the telemetry reference lists Min/Max/Avg only for the latency
#: and utilisation metrics, but the platform keeps sum, count, min and max of every metric and the embedded
#: workspace stores all four; Average x Count would not give back Total exactly, so Total is asked for directly.
AGGREGATIONS = "Total,Count,Minimum,Maximum"
#: The Metrics API names at most 20 metrics per call.
MAX_METRICS_PER_CALL = 20
#: `top`: with a $filter the API returns only 10 time series per metric unless told otherwise. A metric answering
#: this many series may have been cut, which is refused rather than stored short.
MAX_SERIES = 5000
#: The time grains the Metrics API accepts without AutoAdjustTimegrain.
SUPPORTED_INTERVALS = {
    timedelta(minutes=1): "PT1M", timedelta(minutes=5): "PT5M", timedelta(minutes=15): "PT15M",
    timedelta(minutes=30): "PT30M", timedelta(hours=1): "PT1H", timedelta(hours=6): "PT6H",
    timedelta(hours=12): "PT12H", timedelta(days=1): "P1D",
}
ROLE = "Monitoring Reader"


@dataclass(frozen=True)
class AccountId:
    """An Azure OpenAI account's ARM id and the parts the collector needs from it."""

    resource_id: str
    subscription_id: str
    name: str

    @classmethod
    def parse(cls, resource_id: str) -> AccountId:
        parts = resource_id.strip("/").split("/")
        if len(parts) < 8 or parts[0].lower() != "subscriptions" or parts[-2].lower() != "accounts":
            raise TerminalError(
                f"{resource_id!r} is not an account's ARM id; expected /subscriptions/<sub>/resourceGroups/<rg>/"
                "providers/Microsoft.CognitiveServices/accounts/<name>")
        return cls("/" + "/".join(parts), parts[1], parts[-1])

    @property
    def account(self) -> str:
        """The account as rollups name it: upper-cased, as Azure's logs give `Resource`."""
        return self.name.upper()


@dataclass(frozen=True)
class MetricsCall:
    """One `metrics.list` question asked of every account: some metrics, split by some dimensions."""

    metric_names: tuple[str, ...]
    split_by: tuple[str, ...]

    @property
    def filter(self) -> str:
        return " and ".join(f"{dimension} eq '*'" for dimension in self.split_by)


def plan_calls(splits: Mapping[str, tuple[str, ...]] = METRIC_SPLITS) -> list[MetricsCall]:
    """The calls one window takes per account: one per distinct split (and per 20 metrics)."""
    by_split: dict[tuple[str, ...], list[str]] = {}
    for metric, split in splits.items():
        by_split.setdefault(split, []).append(metric)
    return [MetricsCall(tuple(names[i:i + MAX_METRICS_PER_CALL]), split)
            for split, names in by_split.items() for i in range(0, len(names), MAX_METRICS_PER_CALL)]


def iso_interval(grain: timedelta) -> str:
    """The grain as the ISO-8601 duration the API takes (a timedelta would be sent as `0:05:00` and refused)."""
    try:
        return SUPPORTED_INTERVALS[grain]
    except KeyError:
        raise TerminalError(f"the Metrics API has no {grain} grain; use one of "
                            f"{', '.join(SUPPORTED_INTERVALS.values())}") from None


def iso_timespan(window: Window) -> str:
    return f"{_iso(window.start)}/{_iso(window.end)}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class MetricsResult:
    """The job's result: rows in `PLATFORM_METRICS.result_columns()` order."""

    rows: list[tuple[Any, ...]]

    def column_names(self) -> list[str]:
        return [name for name, _ in PLATFORM_METRICS.result_columns()]


class MetricsSource:
    """Collects the `platform_metrics` job from the Azure Monitor Metrics API of the configured accounts."""

    def __init__(self, settings: MetricsSourceSettings, credential: TokenCredential | None = None, *,
                 limiter: RateLimiter | None = None, **client_kwargs: Any) -> None:
        self.settings = settings
        self.accounts = [AccountId.parse(a) for a in settings.accounts]
        self.calls = plan_calls()
        self.limiter = limiter or RateLimiter(settings.requests_per_30s)
        self._credential = credential
        self._owns_credential = credential is None
        self._client_kwargs = client_kwargs
        self._clients: dict[str, MonitorManagementClient] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.settings.name

    def supports(self, spec: RollupSpec) -> bool:
        return spec.kind == "metrics"

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
            if self._owns_credential and self._credential is not None:
                close = getattr(self._credential, "close", None)
                if close is not None:
                    close()
                self._credential = None

    def fetch(self, spec: RollupSpec, window: Window, grain: timedelta) -> MetricsResult:
        if spec.kind != "metrics":
            raise TerminalError(f"source {self.name} answers only the platform metrics job, not {spec.name}")
        interval = iso_interval(grain)
        timespan = iso_timespan(window)
        rows: list[tuple[Any, ...]] = []
        for account in self.accounts:
            client = self._client(account.subscription_id)
            for call in self.calls:
                response = self._list(client, account, call, window, timespan, interval)
                rows.extend(self._flatten(response, account, call, window))
        return MetricsResult(rows)

    def _list(self, client: MonitorManagementClient, account: AccountId, call: MetricsCall, window: Window,
              timespan: str, interval: str) -> Any:
        where = f"metrics source {self.name}: account {account.name}, window {window}"
        try:
            return client.metrics.list(
                account.resource_id, timespan=timespan, interval=interval, metricnames=",".join(call.metric_names),
                aggregation=AGGREGATIONS, top=MAX_SERIES, filter=call.filter, metricnamespace=METRIC_NAMESPACE,
            )
        except (DecodeError, DeserializationError) as e:
            raise TransientError(f"{where}: the Metrics API answered a body that is not a metrics response ({e}); "
                                 "the next run tries again") from e
        except ClientAuthenticationError as e:
            raise TerminalError(f"{where}: authentication failed ({_message(e)}); check the identity "
                                "(managed identity, `az login`, tenant_id/client_id in the settings)") from e
        except ResourceNotFoundError as e:
            raise TerminalError(f"{where}: ARM has no account {account.resource_id} ({_message(e)}); "
                                "fix `accounts:` in the settings") from e
        except HttpResponseError as e:
            raise _http_error(where, e, self.settings.retries) from e
        except ServiceRequestError as e:
            raise TransientError(f"{where}: could not reach the Metrics API at {self.settings.endpoint} ({e}); "
                                 "the next run tries again") from e
        except ServiceResponseError as e:
            raise TransientError(f"{where}: no complete answer from the Metrics API within the timeout "
                                 f"({self.settings.timeout}) after {self.settings.retries} retries ({e}); "
                                 "the next run tries again") from e

    def _flatten(self, response: Any, account: AccountId, call: MetricsCall, window: Window) -> list[tuple[Any, ...]]:
        by_deployment = "ModelDeploymentName" in call.split_by
        by_status = "StatusCode" in call.split_by
        rows: list[tuple[Any, ...]] = []
        for metric in response.value or ():
            name = metric.name.value
            if metric.error_code not in (None, "", "Success"):
                raise TransientError(f"metrics source {self.name}: account {account.name}, window {window}: "
                                     f"metric {name} failed: {metric.error_code} {metric.error_message or ''}")
            series = metric.timeseries or []
            if len(series) >= MAX_SERIES:
                raise TerminalError(f"metrics source {self.name}: account {account.name}, window {window}: metric "
                                    f"{name} has {len(series)} time series or more, the most one call returns; "
                                    "some may be missing")
            for element in series:
                dims = {(m.name.value or "").lower(): m.value or "" for m in element.metadatavalues or ()}
                deployment = dims.get("modeldeploymentname", "") if by_deployment else ""
                status = dims.get("statuscode", "") if by_status else ""
                for point in element.data or ():
                    if not point.count and not point.total:
                        continue  # an interval with no samples (Azure may fill gaps with zeros or nothing)
                    stamp = point.time_stamp.astimezone(UTC)
                    if not window.start <= stamp < window.end:
                        continue  # belongs to a neighbouring window, which collects it itself
                    rows.append((stamp, account.account, deployment, name, status, point.total, point.count,
                                 point.minimum, point.maximum))
        return rows

    def _client(self, subscription_id: str) -> MonitorManagementClient:
        with self._lock:
            client = self._clients.get(subscription_id)
            if client is None:
                if self._credential is None:
                    self._credential = _default_credential(self.settings)
                client = self._clients[subscription_id] = MonitorManagementClient(
                    self._credential, subscription_id, base_url=self.settings.endpoint,
                    **_client_options(self.settings, self.limiter, self._client_kwargs))
            return client


def _client_options(settings: MetricsSourceSettings, limiter: RateLimiter,
                    overrides: Mapping[str, Any]) -> dict[str, Any]:
    audience = (settings.audience or settings.endpoint).rstrip("/")
    timeout = settings.timeout.total_seconds()
    options: dict[str, Any] = {
        "credential_scopes": [f"{audience}/.default"],
        "retry_total": settings.retries,
        "connection_timeout": min(timeout, 30.0),
        "read_timeout": timeout,
        # Runs once per attempt, retries included, so the limit holds for what goes on the wire.
        "raw_request_hook": lambda _request: limiter.acquire(),
    }
    if settings.ca_bundle is not None:
        options["connection_verify"] = str(settings.ca_bundle)
    options.update(overrides)
    return options


def _default_credential(settings: MetricsSourceSettings) -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    kwargs: dict[str, Any] = {}
    if settings.client_id:
        kwargs["managed_identity_client_id"] = settings.client_id
    if settings.tenant_id:
        for key in _TENANT_KEYWORDS:
            kwargs[key] = settings.tenant_id
    return DefaultAzureCredential(**kwargs)


#: DefaultAzureCredential takes no `tenant_id`, only one per credential it chains.
_TENANT_KEYWORDS = ("workload_identity_tenant_id", "shared_cache_tenant_id", "visual_studio_code_tenant_id",
                    "interactive_browser_tenant_id")


def _message(e: HttpResponseError) -> str:
    error = getattr(e, "error", None)
    message = getattr(error, "message", None) if error is not None else None
    return str(message or e.message or e)


def _http_error(where: str, e: HttpResponseError, retries: int) -> TransientError | TerminalError:
    status = e.status_code
    code = getattr(getattr(e, "error", None), "code", None) or ""
    detail = f"HTTP {status}{' ' + code if code else ''}: {_message(e)}"
    if status is not None and (status in (408, 429) or status >= 500):
        return TransientError(f"{where}: {detail} (still failing after {retries} retries); the next run tries again")
    if status == 403:
        return TerminalError(f"{where}: {detail}; grant the collector's identity the {ROLE} role on the account")
    if status == 400:
        return TerminalError(f"{where}: the Metrics API refused the request: {detail}")
    return TerminalError(f"{where}: {detail}")

