"""Golden: a hand-built workspace whose rollups were computed by hand equals what the collector stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.collection.run import Timing, backfill
from collector.rollups.specs import (
    APIM_TOKENS,
    CALLER_REQUESTS,
    LATENCY,
    PLATFORM_METRICS,
    REQUESTS,
    ROLLUPS,
    USAGE_TOKENS,
)
from collector.store.database import Store
from collector.workspace.engine import Workspace, insert_rows
from collector.workspace.source import WorkspaceSource

ACCOUNT = "AOAI-EUS"
RESOURCE_ID = f"/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.COGNITIVESERVICES/ACCOUNTS/{ACCOUNT}"
ARM_ID = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/aoai-eus"
TIMING = Timing(grain=timedelta(minutes=5), lag=timedelta(minutes=10), lookback=timedelta(hours=1),
                max_window=timedelta(hours=6))
NOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2025, 3, 3, hh, mm, ss, tzinfo=UTC)


def request_row(when: datetime, deployment: str, model: str, status: str, duration: int, caller: str,
                req_len: int, resp_len: int, corr: str) -> tuple[Any, ...]:
    props = {"modelDeploymentName": deployment, "modelName": model, "objectId": caller,
             "requestLength": req_len, "responseLength": resp_len} if deployment else {}
    return (when, "RequestResponse", ACCOUNT, RESOURCE_ID, status, duration, corr, json.dumps(props))


def usage_row(when: datetime, corr: str, prompt: int, cached: int, generated: int,
              shape: str = "arrays") -> tuple[Any, ...]:
    """A usage record in one of the shapes public queries read: `arrays` (single-element arrays, `generatedTokens`)
    or `numbers` (plain numbers, `completionTokens`)."""
    if shape == "arrays":
        props: dict[str, Any] = {"promptTokens": [prompt], "cachedTokens": [cached], "generatedTokens": [generated]}
    else:
        props = {"promptTokens": prompt, "cachedTokens": cached, "completionTokens": generated}
    return (when, "AzureOpenAIRequestUsage", ACCOUNT, RESOURCE_ID, "200", 0, corr, json.dumps(props))


def build_workspace(path: Path) -> Workspace:
    workspace = Workspace(path)
    workspace.create()
    diag_cols = ["TimeGenerated", "Category", "Resource", "ResourceId", "ResultSignature", "DurationMs",
                 "CorrelationId", "properties_s"]
    diagnostics = [
        request_row(at(10, 0, 10), "gpt-4o-prod", "gpt-4o", "200", 800, "A", 100, 1000, "c1"),
        request_row(at(10, 1), "gpt-4o-prod", "gpt-4o", "200", 1200, "A", 200, 2000, "c2"),
        request_row(at(10, 2), "gpt-4o-prod", "gpt-4o", "429", 5, "B", 50, 100, "c3"),
        request_row(at(10, 4, 59), "gpt-4o-prod", "gpt-4o", "400", 20, "B", 70, 300, "c4"),
        request_row(at(10, 5), "gpt-4o-prod", "gpt-4o", "500", 3000, "", 10, 20, "c5"),
        request_row(at(10, 7), "embed-small", "text-embedding-3-small", "200", 60, "B", 400, 9000, "c6"),
        # The nearly empty twin row some tenants get: no deployment, so it must not be counted.
        request_row(at(10, 7, 30), "", "", "200", 0, "", 0, 0, "c6"),
        # Outside the window [10:00, 10:15): end is exclusive.
        request_row(at(10, 15), "gpt-4o-prod", "gpt-4o", "200", 900, "A", 1, 1, "c7"),
        request_row(at(9, 59, 59), "gpt-4o-prod", "gpt-4o", "200", 900, "A", 1, 1, "c8"),
        usage_row(at(10, 0, 11), "c1", 100, 20, 50),
        usage_row(at(10, 1, 1), "c2", 300, 0, 80, shape="numbers"),
        usage_row(at(10, 7, 1), "c6", 40, 0, 0),
        usage_row(at(10, 8), "c99", 10, 0, 5, "numbers"),  # no RequestResponse row: tokens kept, deployment unknown
    ]
    llm_cols = ["TimeGenerated", "CorrelationId", "DeploymentName", "ModelName", "PromptTokens",
                "CompletionTokens", "TotalTokens", "SequenceNumber"]
    llm = [
        (at(10, 0, 10), "a1", "gpt-4o-prod", "gpt-4o", 100, 50, 150, 0),
        (at(10, 0, 10), "a1", "", "", None, None, None, 1),  # continuation row: tokens only on the header row
        (at(10, 6), "a2", "gpt-4o-prod", "gpt-4o", 10, 5, 15, 0),
        (at(10, 6), "a3", "embed-small", "text-embedding-3-small", 7, 0, 7, 0),
    ]
    gateway_cols = ["TimeGenerated", "CorrelationId", "ApimSubscriptionId", "ResponseCode"]
    gateway = [(at(10, 0, 9), "a1", "team-search", 200), (at(10, 6), "a2", "team-search", 200)]
    metric_cols = ["TimeGenerated", "ResourceId", "MetricName", "Dimensions", "Total", "Count", "Minimum", "Maximum"]

    def dims(deployment: str, status: str = "") -> str:
        values = {"ModelDeploymentName": deployment}
        if status:
            values["StatusCode"] = status
        return json.dumps(values)

    metrics = [
        (at(10, 0), ARM_ID, "AzureOpenAIRequests", dims("gpt-4o-prod", "200"), 2, 2, 1, 1),
        (at(10, 2), ARM_ID, "AzureOpenAIRequests", dims("gpt-4o-prod", "429"), 1, 1, 1, 1),
        (at(10, 3), ARM_ID, "ProcessedPromptTokens", dims("gpt-4o-prod"), 400, 2, 100, 300),
        (at(10, 4), ARM_ID, "ProcessedPromptTokens", dims("gpt-4o-prod"), 5, 1, 5, 5),
        (at(10, 6), ARM_ID, "ProcessedPromptTokens", dims("embed-small"), 40, 1, 40, 40),
        (at(10, 6), ARM_ID, "ActiveTokens", dims("embed-small"), 40, 1, 40, 40),  # not a collected metric
        (at(10, 15), ARM_ID, "ProcessedPromptTokens", dims("embed-small"), 99, 1, 99, 99),  # outside
    ]
    with workspace.writer() as con:
        insert_rows(con, "AzureDiagnostics", diag_cols, diagnostics)
        insert_rows(con, "ApiManagementGatewayLlmLog", llm_cols, llm)
        insert_rows(con, "ApiManagementGatewayLogs", gateway_cols, gateway)
        insert_rows(con, "_PlatformMetrics", metric_cols, metrics)
    return workspace


def row(bucket: datetime, **values: Any) -> dict[str, Any]:
    return {"source": "golden", "bucket_start": bucket, **values}


def req(bucket: datetime, deployment: str, n: int, ok: int, c4: int, c400: int, c429: int, c5: int,
        ms: int) -> dict[str, Any]:
    return row(bucket, account=ACCOUNT, deployment=deployment, requests=n, requests_2xx=ok, requests_4xx=c4,
               requests_400=c400, requests_429=c429, requests_5xx=c5, duration_ms_sum=ms)


# Computed by hand from the rows above. Latency buckets: floor(log2(ms) * 4): 800 ms -> 38, 1200 ms -> 40, 60 ms -> 23.
EXPECTED_5M = {
    REQUESTS: [
        req(at(10, 0), "gpt-4o-prod", 4, 2, 2, 1, 1, 0, 800 + 1200 + 5 + 20),
        req(at(10, 5), "embed-small", 1, 1, 0, 0, 0, 0, 60),
        req(at(10, 5), "gpt-4o-prod", 1, 0, 0, 0, 0, 1, 3000),
    ],
    LATENCY: [
        row(at(10, 0), account=ACCOUNT, deployment="gpt-4o-prod", le_bucket=38, requests=1, duration_ms_sum=800),
        row(at(10, 0), account=ACCOUNT, deployment="gpt-4o-prod", le_bucket=40, requests=1, duration_ms_sum=1200),
        row(at(10, 5), account=ACCOUNT, deployment="embed-small", le_bucket=23, requests=1, duration_ms_sum=60),
    ],
    CALLER_REQUESTS: [
        row(at(10, 0), account=ACCOUNT, deployment="gpt-4o-prod", caller_object_id="A", requests=2, requests_ok=2,
            request_bytes=300, response_bytes=3000),
        row(at(10, 0), account=ACCOUNT, deployment="gpt-4o-prod", caller_object_id="B", requests=2, requests_ok=0,
            request_bytes=120, response_bytes=400),
        row(at(10, 5), account=ACCOUNT, deployment="embed-small", caller_object_id="B", requests=1, requests_ok=1,
            request_bytes=400, response_bytes=9000),
        row(at(10, 5), account=ACCOUNT, deployment="gpt-4o-prod", caller_object_id="", requests=1, requests_ok=0,
            request_bytes=10, response_bytes=20),
    ],
    USAGE_TOKENS: [
        row(at(10, 0), account=ACCOUNT, deployment="gpt-4o-prod", model="gpt-4o", caller_object_id="A", requests=2,
            prompt_tokens=400, cached_tokens=20, completion_tokens=130),
        row(at(10, 5), account=ACCOUNT, deployment="", model="", caller_object_id="", requests=1,
            prompt_tokens=10, cached_tokens=0, completion_tokens=5),
        row(at(10, 5), account=ACCOUNT, deployment="embed-small", model="text-embedding-3-small",
            caller_object_id="B", requests=1, prompt_tokens=40, cached_tokens=0, completion_tokens=0),
    ],
    APIM_TOKENS: [
        row(at(10, 0), apim_subscription_id="team-search", deployment="gpt-4o-prod", model="gpt-4o", requests=1,
            prompt_tokens=100, completion_tokens=50, total_tokens=150),
        row(at(10, 5), apim_subscription_id="", deployment="embed-small", model="text-embedding-3-small",
            requests=1, prompt_tokens=7, completion_tokens=0, total_tokens=7),
        row(at(10, 5), apim_subscription_id="team-search", deployment="gpt-4o-prod", model="gpt-4o", requests=1,
            prompt_tokens=10, completion_tokens=5, total_tokens=15),
    ],
    PLATFORM_METRICS: [
        row(at(10, 0), account=ACCOUNT, deployment="gpt-4o-prod", metric="AzureOpenAIRequests", status_code="200",
            total=2.0, count=2.0, minimum=1.0, maximum=1.0),
        row(at(10, 0), account=ACCOUNT, deployment="gpt-4o-prod", metric="AzureOpenAIRequests", status_code="429",
            total=1.0, count=1.0, minimum=1.0, maximum=1.0),
        row(at(10, 0), account=ACCOUNT, deployment="gpt-4o-prod", metric="ProcessedPromptTokens", status_code="",
            total=405.0, count=3.0, minimum=5.0, maximum=300.0),
        row(at(10, 5), account=ACCOUNT, deployment="embed-small", metric="ProcessedPromptTokens", status_code="",
            total=40.0, count=1.0, minimum=40.0, maximum=40.0),
    ],
}

EXPECTED_1H_REQUESTS = [
    req(at(10, 0), "embed-small", 1, 1, 0, 0, 0, 0, 60),
    req(at(10, 0), "gpt-4o-prod", 5, 2, 2, 1, 1, 1, 800 + 1200 + 5 + 20 + 3000),
]


@pytest.fixture
def golden_source(tmp_path: Path) -> WorkspaceSource:
    build_workspace(tmp_path / "golden.duckdb")
    return WorkspaceSource("golden", tmp_path / "golden.duckdb")


def test_every_rollup_has_a_golden_expectation() -> None:
    assert set(EXPECTED_5M) == set(ROLLUPS)


def test_collector_stores_the_hand_computed_rollups(store: Store, golden_source: WorkspaceSource) -> None:
    summary = backfill(store, [golden_source], ROLLUPS, TIMING, at(10, 0), at(10, 15), NOW)

    assert summary.ok, summary.line()
    for spec, expected in EXPECTED_5M.items():
        assert store.read(spec, "5m") == expected, spec.name
    assert store.read(REQUESTS, "1h") == EXPECTED_1H_REQUESTS
    assert store.watermark("golden", "requests_by_status") == at(10, 15)


def test_collecting_the_same_window_twice_changes_nothing(store: Store, golden_source: WorkspaceSource) -> None:
    backfill(store, [golden_source], ROLLUPS, TIMING, at(10, 0), at(10, 15), NOW)
    first = list(store.iter_dump())

    backfill(store, [golden_source], ROLLUPS, TIMING, at(10, 0), at(10, 15), NOW)

    assert list(store.iter_dump()) == first
    assert any(rows for _, rows in first)


#: Usage records as public queries read them (see queries/usage_tokens.kql): each field an array or a plain number,
#: completions as `generatedTokens` or `completionTokens`. (prompt, cached, completion) -> properties.
USAGE_SHAPES: dict[str, Any] = {
    "arrays, generatedTokens": lambda p, c, g: {"promptTokens": [p], "cachedTokens": [c], "generatedTokens": [g]},
    "numbers, completionTokens": lambda p, c, g: {"promptTokens": p, "cachedTokens": c, "completionTokens": g},
    "numbers, generatedTokens": lambda p, c, g: {"promptTokens": p, "cachedTokens": c, "generatedTokens": g},
    "arrays, completionTokens": lambda p, c, g: {"promptTokens": [p], "cachedTokens": [c], "completionTokens": [g]},
    "array and number mixed": lambda p, c, g: {"promptTokens": [p], "cachedTokens": c, "completionTokens": [g]},
    # Both names on one record (none seen published): counted once, from generatedTokens.
    "both completion names": lambda p, c, g: {"promptTokens": p, "cachedTokens": [c], "generatedTokens": [g],
                                              "completionTokens": g},
}


@pytest.mark.parametrize("shapes", [[s] for s in USAGE_SHAPES] + [list(USAGE_SHAPES)],
                         ids=[*USAGE_SHAPES, "all shapes in one bucket"])
def test_usage_tokens_count_every_record_shape_to_the_token(tmp_path: Path, store: Store, shapes: list[str]) -> None:
    workspace = Workspace(tmp_path / "shapes.duckdb")
    workspace.create()
    diagnostics = []
    expected = [0, 0, 0]
    # Each shape's records sit beside arrays-shaped ones in the same bucket, so a shape read as zero or null shows.
    planted = [shape for shape in shapes for _ in range(3)] + ["arrays, generatedTokens"] * 2
    for i, shape in enumerate(planted):
        tokens = (1000 + 37 * i, 128 * (i % 3), 200 + 11 * i)  # distinct per record: a dropped record shows
        corr = f"s{i}"
        diagnostics.append(request_row(at(10, 1, i), "gpt-4o-prod", "gpt-4o", "200", 100, "A", 1, 1, corr))
        props = USAGE_SHAPES[shape](*tokens)
        diagnostics.append((at(10, 1, i), "AzureOpenAIRequestUsage", ACCOUNT, RESOURCE_ID, "200", 0, corr,
                            json.dumps(props)))
        expected = [e + t for e, t in zip(expected, tokens, strict=True)]
    with workspace.writer() as con:
        insert_rows(con, "AzureDiagnostics", ["TimeGenerated", "Category", "Resource", "ResourceId",
                                              "ResultSignature", "DurationMs", "CorrelationId", "properties_s"],
                    diagnostics)

    summary = backfill(store, [WorkspaceSource("golden", workspace.path)], (USAGE_TOKENS,), TIMING, at(10, 0),
                       at(10, 15), NOW)

    assert summary.ok, summary.line()
    assert store.read(USAGE_TOKENS, "5m") == [
        row(at(10, 0), account=ACCOUNT, deployment="gpt-4o-prod", model="gpt-4o", caller_object_id="A",
            requests=len(planted), prompt_tokens=expected[0], cached_tokens=expected[1],
            completion_tokens=expected[2]),
    ]
