"""Stored rollup rows as attribution inputs: APIM re-keying of gateway usage, platform fallback, provisioned hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.cost.attribution import (
    AttributionRules,
    DeploymentInfo,
    DeploymentTokens,
    ProvisionedHour,
    TokenUsage,
)
from collector.cost.usage import cost_inputs, platform_tokens, provisioned_hours, token_usage

H = datetime(2026, 3, 3, 10, tzinfo=UTC)
GW = "9f0e1d2c-3b4a-4596-8778-695a4b3c2d1e"


def usage(caller: str, prompt: int, cached: int, completion: int, requests: int = 1, account: str = "ACCT",
          deployment: str = "dep", bucket: datetime = H) -> dict[str, Any]:
    return {"source": "s", "bucket_start": bucket, "account": account, "deployment": deployment, "model": "m",
            "caller_object_id": caller, "requests": requests, "prompt_tokens": prompt, "cached_tokens": cached,
            "completion_tokens": completion}


def apim(sub: str, requests: int, prompt: int, completion: int, deployment: str = "dep") -> dict[str, Any]:
    return {"source": "s", "bucket_start": H, "apim_subscription_id": sub, "deployment": deployment, "model": "m",
            "requests": requests, "prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def metric(name: str, total: float, count: float = 1, status: str = "", deployment: str = "dep",
           bucket: datetime = H) -> dict[str, Any]:
    return {"source": "m", "bucket_start": bucket, "account": "acct", "deployment": deployment, "metric": name,
            "status_code": status, "total": total, "count": count, "minimum": 0.0, "maximum": 0.0}


def test_gateway_usage_is_rekeyed_to_apim_subscriptions_by_their_token_shares() -> None:
    rows = [usage(GW.upper(), 1000, 300, 200, requests=4), usage("oid-a", 50, 0, 5)]
    # The gateway saw sub-1: 3 requests, 750 prompt, 150 completion; sub-2: 1 request, 250 prompt, 50 completion.
    gateway = [apim("sub-1", 3, 750, 150), apim("sub-2", 1, 250, 50)]
    got = token_usage(rows, gateway, frozenset({GW}))
    assert got == [
        TokenUsage(H, "acct", "dep", GW, "sub-1", 3, 750, 225, 150),  # cached 300 x 750/1000
        TokenUsage(H, "acct", "dep", GW, "sub-2", 1, 250, 75, 50),
        TokenUsage(H, "acct", "dep", "oid-a", "", 1, 50, 0, 5),
    ]


def test_gateway_usage_without_gateway_logs_stays_under_the_gateway_identity() -> None:
    got = token_usage([usage(GW, 10, 0, 1)], [apim("sub-1", 1, 10, 1, deployment="other")], frozenset({GW}))
    assert got == [TokenUsage(H, "acct", "dep", GW, "", 1, 10, 0, 1)]


def test_without_declared_gateways_nothing_is_rekeyed() -> None:
    got = token_usage([usage(GW, 10, 0, 1)], [apim("sub-1", 1, 10, 1)], frozenset())
    assert [u.apim_subscription_id for u in got] == [""]


@settings(max_examples=200, deadline=None)
@given(
    total=st.tuples(st.integers(0, 50), st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 5_000)),
    subs=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 5_000), st.integers(0, 2_000)), min_size=1,
                  max_size=5),
)
def test_rekeying_keeps_every_total_exact_and_cached_within_prompt(
        total: tuple[int, int, int, int], subs: list[tuple[int, int, int]]) -> None:
    requests, prompt, cached_raw, completion = total
    cached = min(cached_raw, prompt)
    gateway = [apim(f"sub-{i}", *s) for i, s in enumerate(subs)]
    got = token_usage([usage(GW, prompt, cached, completion, requests=requests)], gateway, frozenset({GW}))
    assert sum(u.requests for u in got) == requests
    assert sum(u.prompt_tokens for u in got) == prompt
    assert sum(u.cached_tokens for u in got) == cached
    assert sum(u.completion_tokens for u in got) == completion
    assert all(0 <= u.cached_tokens <= u.prompt_tokens for u in got)


def test_the_same_caller_from_two_sources_and_two_spellings_is_one_row() -> None:
    rows = [usage("OID-A", 10, 0, 1), {**usage("oid-a", 5, 1, 2), "source": "t", "account": "acct"}]
    assert token_usage(rows, [], frozenset()) == [TokenUsage(H, "acct", "dep", "oid-a", "", 2, 15, 1, 3)]


def test_platform_tokens_only_for_hours_without_caller_level_usage_and_only_2xx_requests() -> None:
    rows = [metric("ProcessedPromptTokens", 1200.0), metric("GeneratedTokens", 300.0),
            metric("AzureOpenAIRequests", 7.0, status="200"), metric("AzureOpenAIRequests", 3.0, status="429"),
            metric("ProcessedPromptTokens", 99.0, deployment="covered"),
            metric("AzureOpenAITimeToResponse", 5000.0)]
    got = platform_tokens(rows, covered={(H, "acct", "covered")})
    assert got == [DeploymentTokens(H, "acct", "dep", 7, 1200, 0, 300)]


def test_provisioned_hours_are_the_hours_azure_reported_utilisation_and_no_others() -> None:
    ptu = DeploymentInfo("acct", "dep", "gpt-4o", None, "ProvisionedManaged", capacity=50)
    silent = DeploymentInfo("acct", "silent", "gpt-4o", None, "GlobalProvisioned", capacity=15)
    standard = DeploymentInfo("acct", "std", "gpt-4o", None, "GlobalStandard")
    # 60 one-minute points averaging 25 %, then 30 points averaging 10 % the next hour; the standard deployment's
    # utilisation rows (if any) are ignored, and the provisioned one with no rows has no hours (README: PTU cost
    # counts the hours Azure reports utilisation).
    rows = [metric("AzureOpenAIProvisionedManagedUtilizationV2", 1500.0, 60),
            metric("AzureOpenAIProvisionedManagedUtilizationV2", 300.0, 30, bucket=H + timedelta(hours=2)),
            metric("AzureOpenAIProvisionedManagedUtilizationV2", 600.0, 60, deployment="std")]
    hours = provisioned_hours(rows, [ptu, silent, standard])
    assert hours == [
        ProvisionedHour(H, "acct", "dep", 60, Decimal("0.25")),
        ProvisionedHour(H + timedelta(hours=2), "acct", "dep", 60, Decimal("0.1")),
    ]


def test_cost_inputs_put_it_together() -> None:
    dep = DeploymentInfo("acct", "dep", "gpt-4o", None, "GlobalStandard")
    inputs = cost_inputs(AttributionRules(apim_gateways=frozenset({GW})), [dep],
                         usage_rows=[usage(GW, 100, 0, 10)], apim_rows=[apim("sub-1", 1, 100, 10)],
                         caller_rows=[], metric_rows=[metric("ProcessedPromptTokens", 100.0)])
    assert inputs.usage == (TokenUsage(H, "acct", "dep", GW, "sub-1", 1, 100, 0, 10),)
    assert inputs.platform_tokens == ()  # covered by caller-level usage
    assert inputs.provisioned_hours == ()
