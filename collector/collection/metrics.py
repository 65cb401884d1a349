"""The Azure Monitor Metrics API source: the only importer of azure.mgmt.monitor; platform metrics per deployment.

Per window and account it makes one `metrics.list` call per distinct split of `METRIC_SPLITS` (naming all that
split's metrics at once, `ModelDeploymentName eq '*'` in the filter), so the number of calls grows with accounts and
splits, never with deployments. The rows it returns are the ones the embedded workspace gives for the same job.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.credentials import TokenCredential
from azure.mgmt.monitor import MonitorManagementClient

from collector.azure_clients import AccountId, Connection, Service, SubscriptionClients, call_arm
from collector.config import MetricsSourceSettings
from collector.errors import TerminalError, TransientError
from collector.ratelimit import RateLimiter
from collector.rollups.specs import METRIC_SPLITS, PLATFORM_METRICS, RollupSpec
from collector.rollups.windows import Window

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
SERVICE = Service("the Metrics API", "a metrics response", f"the {ROLE} role on the account")


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
        self.connection = Connection.of(settings, settings.endpoint)
        self._clients = SubscriptionClients(self.connection, MonitorManagementClient, credential,
                                            overrides=client_kwargs, before_each_attempt=self.limiter.acquire)

    @property
    def name(self) -> str:
        return self.settings.name

    def supports(self, spec: RollupSpec) -> bool:
        return spec.kind == "metrics"

    def close(self) -> None:
        self._clients.close()

    def fetch(self, spec: RollupSpec, window: Window, grain: timedelta) -> MetricsResult:
        if spec.kind != "metrics":
            raise TerminalError(f"source {self.name} answers only the platform metrics job, not {spec.name}")
        interval = iso_interval(grain)
        timespan = iso_timespan(window)
        rows: list[tuple[Any, ...]] = []
        for account in self.accounts:
            client = self._clients.get(account.subscription_id)
            for call in self.calls:
                response = self._list(client, account, call, window, timespan, interval)
                rows.extend(self._flatten(response, account, call, window))
        return MetricsResult(rows)

    def _list(self, client: MonitorManagementClient, account: AccountId, call: MetricsCall, window: Window,
              timespan: str, interval: str) -> Any:
        where = f"metrics source {self.name}: account {account.name}, window {window}"
        return call_arm(where, SERVICE, self.connection, lambda: client.metrics.list(
            account.resource_id, timespan=timespan, interval=interval, metricnames=",".join(call.metric_names),
            aggregation=AGGREGATIONS, top=MAX_SERIES, filter=call.filter, metricnamespace=METRIC_NAMESPACE,
        ), missing=f"account {account.resource_id}", timeout=self.settings.timeout)

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
