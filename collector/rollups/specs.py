"""Pure: what each collection job stores (its rollup spec) and how a result table becomes rollup rows.

Every measure is additive (a count or sum, or a min/max), so rollups of any range re-aggregate exactly, and the
hourly tier is derived from the fine tier by the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Protocol

from collector.errors import TerminalError
from collector.rollups.windows import Window, align_down


class Aggregation(Enum):
    SUM = "sum"
    MIN = "min"
    MAX = "max"


@dataclass(frozen=True)
class Key:
    """A key column: its name in the query result and in the store, and its KQL type."""

    result: str
    store: str
    kql_type: str = "string"


@dataclass(frozen=True)
class Measure:
    result: str
    store: str
    kql_type: str = "long"
    aggregation: Aggregation = Aggregation.SUM


@dataclass(frozen=True)
class RollupSpec:
    """One collection job: a KQL query file (kind "kql") or the platform metrics (kind "metrics")."""

    name: str
    kind: str
    table: str
    keys: tuple[Key, ...]
    measures: tuple[Measure, ...]
    time_column: str = "TimeGenerated"

    def result_columns(self) -> list[tuple[str, str]]:
        """The (name, KQL type) columns the job's result must have, in order."""
        return [
            (self.time_column, "datetime"),
            *((k.result, k.kql_type) for k in self.keys),
            *((m.result, m.kql_type) for m in self.measures),
        ]


class ResultLike(Protocol):
    """The shape of a query result this module reads (the engine's ResultTable and the Azure sources' alike)."""

    @property
    def rows(self) -> list[tuple[Any, ...]]: ...

    def column_names(self) -> list[str]: ...


_STRING = "string"

REQUESTS = RollupSpec(
    name="requests_by_status",
    kind="kql",
    table="requests",
    keys=(Key("Account", "account"), Key("Deployment", "deployment")),
    measures=(
        Measure("Requests", "requests"),
        Measure("Requests2xx", "requests_2xx"),
        Measure("Requests4xx", "requests_4xx"),
        Measure("Requests400", "requests_400"),
        Measure("Requests429", "requests_429"),
        Measure("Requests5xx", "requests_5xx"),
        Measure("DurationMsSum", "duration_ms_sum"),
    ),
)

LATENCY = RollupSpec(
    name="latency_histogram",
    kind="kql",
    table="latency",
    keys=(Key("Account", "account"), Key("Deployment", "deployment"), Key("LatencyBucket", "le_bucket", "int")),
    measures=(Measure("Requests", "requests"), Measure("DurationMsSum", "duration_ms_sum")),
)

CALLER_REQUESTS = RollupSpec(
    name="caller_requests",
    kind="kql",
    table="caller_requests",
    keys=(Key("Account", "account"), Key("Deployment", "deployment"), Key("CallerObjectId", "caller_object_id")),
    measures=(
        Measure("Requests", "requests"),
        Measure("RequestsOk", "requests_ok"),
        Measure("RequestBytes", "request_bytes"),
        Measure("ResponseBytes", "response_bytes"),
    ),
)

APIM_TOKENS = RollupSpec(
    name="apim_tokens",
    kind="kql",
    table="apim_tokens",
    keys=(Key("ApimSubscriptionId", "apim_subscription_id"), Key("Deployment", "deployment"), Key("Model", "model")),
    measures=(
        Measure("Requests", "requests"),
        Measure("PromptTokens", "prompt_tokens"),
        Measure("CompletionTokens", "completion_tokens"),
        Measure("TotalTokens", "total_tokens"),
    ),
)

USAGE_TOKENS = RollupSpec(
    name="usage_tokens",
    kind="kql",
    table="usage_tokens",
    keys=(
        Key("Account", "account"),
        Key("Deployment", "deployment"),
        Key("Model", "model"),
        Key("CallerObjectId", "caller_object_id"),
    ),
    measures=(
        Measure("Requests", "requests"),
        Measure("PromptTokens", "prompt_tokens"),
        Measure("CachedTokens", "cached_tokens"),
        Measure("CompletionTokens", "completion_tokens"),
    ),
)

PLATFORM_METRICS = RollupSpec(
    name="platform_metrics",
    kind="metrics",
    table="platform_metrics",
    keys=(
        Key("Account", "account"),
        Key("Deployment", "deployment"),
        Key("Metric", "metric"),
        Key("StatusCode", "status_code"),
    ),
    measures=(
        Measure("Total", "total", "real"),
        Measure("Count", "count", "real"),
        Measure("Minimum", "minimum", "real", Aggregation.MIN),
        Measure("Maximum", "maximum", "real", Aggregation.MAX),
    ),
)

ROLLUPS: tuple[RollupSpec, ...] = (REQUESTS, LATENCY, CALLER_REQUESTS, APIM_TOKENS, USAGE_TOKENS, PLATFORM_METRICS)

#: The platform metrics collected per account, and the dimensions each is split by (Azure OpenAI metrics, §3 of
#: the telemetry reference). StatusCode only where Azure offers it.
METRIC_SPLITS: dict[str, tuple[str, ...]] = {
    "AzureOpenAIRequests": ("ModelDeploymentName", "StatusCode"),
    "ProcessedPromptTokens": ("ModelDeploymentName",),
    "GeneratedTokens": ("ModelDeploymentName",),
    "TokenTransaction": ("ModelDeploymentName",),
    "RAIRejectedRequests": ("ModelDeploymentName",),
    "AzureOpenAITimeToResponse": ("ModelDeploymentName",),
    "AzureOpenAITTLTInMS": ("ModelDeploymentName",),
    "AzureOpenAIProvisionedManagedUtilizationV2": ("ModelDeploymentName",),
}


def to_rows(
    spec: RollupSpec, result: ResultLike, source: str, window: Window, grain: timedelta
) -> list[tuple[Any, ...]]:
    """Turn a job's result into store rows (tuples in `row_columns` order), checking the column contract and that
    every bucket lies in the window on the grain."""
    expected = [name for name, _ in spec.result_columns()]
    got = result.column_names()
    if got != expected:
        raise TerminalError(
            f"job {spec.name}: the result has columns {got}, the rollup expects {expected}; "
            "the query file and collector/rollups/specs.py disagree"
        )
    converters = [_key_converter(k) for k in spec.keys] + [_measure_converter(m) for m in spec.measures]
    buckets: dict[datetime, datetime] = {}
    rows: list[tuple[Any, ...]] = []
    for values in result.rows:
        bucket = buckets.get(values[0])
        if bucket is None:
            bucket = buckets[values[0]] = _checked_bucket(spec, values[0], window, grain)
        tail = values[1:]
        if None in tail:  # rare: a sum over nothing; strings and counts never are
            tail = tuple(convert(v) for convert, v in zip(converters, tail, strict=True))
        rows.append((source, bucket, *tail))
    width = 2 + len(spec.keys)
    if len({row[:width] for row in rows}) != len(rows):
        # Two result rows for one key (say, dimension values differing only in case): combine them.
        return merge_duplicates(spec, rows)
    return rows


def row_columns(spec: RollupSpec) -> list[str]:
    """The store columns of a rollup row, in the order `to_rows` produces them."""
    return [*key_columns(spec), *(m.store for m in spec.measures)]


def _checked_bucket(spec: RollupSpec, value: Any, window: Window, grain: timedelta) -> datetime:
    bucket = _bucket(value)
    if bucket < window.start or bucket >= window.end or align_down(bucket, grain) != bucket:
        raise TerminalError(
            f"job {spec.name}: bucket {bucket.isoformat()} is outside window {window} or off the {grain} grain"
        )
    return bucket


def _bucket(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise TerminalError(f"time column holds {value!r}, not a datetime")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _as_string(value: Any) -> str:
    return "" if value is None else str(value)


def _as_int(value: Any) -> int:
    return 0 if value is None else int(value)


def _as_float(value: Any) -> float:
    return 0.0 if value is None else float(value)


def _key_converter(key: Key) -> Callable[[Any], Any]:
    return _as_string if key.kql_type == _STRING else _as_int


def _measure_converter(measure: Measure) -> Callable[[Any], Any]:
    return _as_float if measure.kql_type == "real" else _as_int


def key_columns(spec: RollupSpec) -> list[str]:
    return ["source", "bucket_start", *(k.store for k in spec.keys)]


def merge_duplicates(spec: RollupSpec, rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Combine rows sharing a key by each measure's aggregation; the result is in key order."""
    width = 2 + len(spec.keys)
    aggregations = [m.aggregation for m in spec.measures]
    merged: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        key = row[:width]
        current = merged.get(key)
        if current is None:
            merged[key] = list(row[width:])
            continue
        for i, aggregation in enumerate(aggregations):
            current[i] = _combine(aggregation, current[i], row[width + i])
    return [(*key, *merged[key]) for key in sorted(merged, key=_sort_key)]


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v.timestamp() if isinstance(v, datetime) else v) for v in key)


def _combine(aggregation: Aggregation, a: Any, b: Any) -> Any:
    if aggregation is Aggregation.SUM:
        return a + b
    if aggregation is Aggregation.MIN:
        return min(a, b)
    return max(a, b)
