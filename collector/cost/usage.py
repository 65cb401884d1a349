"""Pure: stored rollup rows (hourly tier) as the attribution's inputs, with the choices that turns into rules.

Which figures feed the cost of a deployment hour, best first:

1. `usage_tokens` (AzureOpenAIRequestUsage joined to RequestResponse): tokens per caller identity, exact.
   Rows logged under an API Management gateway's managed identity (`apim_gateways` in the attribution rules) are
   calls made through the gateway; they are re-keyed to APIM subscriptions by the subscriptions' share of the
   gateway's `apim_tokens` for the same hour and deployment (requests by requests, prompt and cached by prompt
   tokens, completion by completion tokens; largest remainder, so the deployment's totals stay exact). The
   gateway logs carry no account, so a deployment name served by two accounts behind one gateway shares one split.
   With no gateway rows for that hour, the usage stays under the gateway's identity (unallocated unless a rule
   names it).
2. Platform metrics (`ProcessedPromptTokens`, `GeneratedTokens`, and the 2xx of `AzureOpenAIRequests`): the
   deployment's tokens without callers, split by `caller_requests` (estimated). The Metrics API has no cached
   token count, so these hours price every prompt token at the input rate.

Provisioned hours: an hour in which Azure reported the deployment's `AzureOpenAIProvisionedManagedUtilizationV2`
(it reports every minute the deployment exists, idle ones included) is an hour it existed; its mean utilisation
is the metric's total over its count, in percent. Only those hours are charged. An hour's charge depends on that
hour's rows alone, never on the range read, so a month is the sum of its days (`cost_daily`) to the micro-dollar,
and a month before any telemetry costs nothing. (Charging inventory deployments for every hour the collector
covered instead made a range with no utilisation rows cost a full month of idle PTU, while the daily table, built
from days with collected data, said $0.)

Account names are compared lower-case: Log Analytics upper-cases `Resource`, ARM and the inventory do not.
Rows of several sources are added together (different workspaces or accounts; one source per data set).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from collector.apportion import largest_remainder
from collector.cost.attribution import (
    AttributionRules,
    CallerRequests,
    DeploymentInfo,
    DeploymentTokens,
    ProvisionedHour,
    TokenUsage,
)
from collector.cost.pricing import PROVISIONED_TYPES

UTILISATION = "AzureOpenAIProvisionedManagedUtilizationV2"
PROMPT_TOKENS, GENERATED_TOKENS, REQUESTS = "ProcessedPromptTokens", "GeneratedTokens", "AzureOpenAIRequests"
#: The platform metrics the cost model reads.
COST_METRICS = (PROMPT_TOKENS, GENERATED_TOKENS, REQUESTS, UTILISATION)

Row = Mapping[str, Any]


@dataclass(frozen=True)
class CostInputs:
    usage: tuple[TokenUsage, ...]
    platform_tokens: tuple[DeploymentTokens, ...]
    caller_requests: tuple[CallerRequests, ...]
    provisioned_hours: tuple[ProvisionedHour, ...]


def _apim_shares(apim_rows: Iterable[Row]) -> dict[tuple[datetime, str], dict[str, tuple[int, int, int]]]:
    """(bucket, deployment) -> subscription -> (requests, prompt, completion) from the gateway's logs."""
    shares: dict[tuple[datetime, str], dict[str, list[int]]] = defaultdict(dict)
    for row in apim_rows:
        counts = shares[(row["bucket_start"], row["deployment"])].setdefault(row["apim_subscription_id"], [0, 0, 0])
        counts[0] += int(row["requests"])
        counts[1] += int(row["prompt_tokens"])
        counts[2] += int(row["completion_tokens"])
    return {key: {sub: (c[0], c[1], c[2]) for sub, c in subs.items()} for key, subs in shares.items()}


def _split_gateway(row: TokenUsage, shares: Mapping[str, tuple[int, int, int]]) -> list[TokenUsage]:
    subs = sorted(shares)
    requests = largest_remainder(row.requests, [shares[s][0] for s in subs])
    prompt = largest_remainder(row.prompt_tokens, [shares[s][1] for s in subs])
    cached = largest_remainder(row.cached_tokens, [shares[s][1] for s in subs])
    completion = largest_remainder(row.completion_tokens, [shares[s][2] for s in subs])
    return [
        TokenUsage(row.bucket, row.account, row.deployment, row.caller_object_id, sub, requests[i],
                   prompt[i], min(cached[i], prompt[i]), completion[i])
        for i, sub in enumerate(subs)
    ]


def _rebalance_cached(parts: list[TokenUsage], cached_total: int) -> list[TokenUsage]:
    """Cached tokens never exceed a part's prompt tokens; capping can lose some, which go to parts with room."""
    missing = cached_total - sum(p.cached_tokens for p in parts)
    out = []
    for p in parts:
        room = p.prompt_tokens - p.cached_tokens
        add = min(room, missing)
        missing -= add
        out.append(TokenUsage(p.bucket, p.account, p.deployment, p.caller_object_id, p.apim_subscription_id,
                              p.requests, p.prompt_tokens, p.cached_tokens + add, p.completion_tokens))
    return out


def token_usage(usage_rows: Iterable[Row], apim_rows: Iterable[Row], gateways: frozenset[str]) -> list[TokenUsage]:
    """`usage_tokens` rows as TokenUsage, gateway rows re-keyed to APIM subscriptions."""
    shares = _apim_shares(apim_rows) if gateways else {}
    merged: dict[tuple[datetime, str, str, str], list[int]] = {}
    for row in usage_rows:
        key = (row["bucket_start"], str(row["account"]).lower(), row["deployment"], row["caller_object_id"].lower())
        counts = merged.setdefault(key, [0, 0, 0, 0])
        counts[0] += int(row["requests"])
        counts[1] += int(row["prompt_tokens"])
        counts[2] += int(row["cached_tokens"])
        counts[3] += int(row["completion_tokens"])
    out: list[TokenUsage] = []
    for (bucket, account, deployment, caller), c in sorted(merged.items()):
        usage = TokenUsage(bucket, account, deployment, caller, "", c[0], c[1], c[2], c[3])
        found = shares.get((bucket, deployment))
        if caller in gateways and found:
            out.extend(_rebalance_cached(_split_gateway(usage, found), usage.cached_tokens))
        else:
            out.append(usage)
    return out


def platform_tokens(metric_rows: Iterable[Row], covered: set[tuple[datetime, str, str]]) -> list[DeploymentTokens]:
    """Deployment tokens from platform metrics, for the (bucket, account, deployment) keys NOT in `covered`
    (those that have caller-level usage)."""
    sums: dict[tuple[datetime, str, str], list[int]] = {}
    for row in metric_rows:
        metric = row["metric"]
        if metric not in (PROMPT_TOKENS, GENERATED_TOKENS, REQUESTS):
            continue
        if metric == REQUESTS and not str(row["status_code"]).startswith("2"):
            continue
        key = (row["bucket_start"], str(row["account"]).lower(), row["deployment"])
        if key in covered:
            continue
        counts = sums.setdefault(key, [0, 0, 0])
        counts[(REQUESTS, PROMPT_TOKENS, GENERATED_TOKENS).index(metric)] += round(float(row["total"]))
    return [DeploymentTokens(b, a, d, c[0], c[1], 0, c[2]) for (b, a, d), c in sorted(sums.items())]


def caller_requests(rows: Iterable[Row]) -> list[CallerRequests]:
    """Requests and bytes per caller. A gateway's identity stays as it is: the RequestResponse logs cannot say
    which APIM subscription a call came from."""
    merged: dict[tuple[datetime, str, str, str], list[int]] = {}
    for row in rows:
        key = (row["bucket_start"], str(row["account"]).lower(), row["deployment"], row["caller_object_id"].lower())
        counts = merged.setdefault(key, [0, 0])
        counts[0] += int(row["requests"])
        counts[1] += int(row["request_bytes"])
    return [CallerRequests(b, a, d, c, n[0], n[1]) for (b, a, d, c), n in sorted(merged.items())]


def provisioned_hours(metric_rows: Iterable[Row], deployments: Sequence[DeploymentInfo]) -> list[ProvisionedHour]:
    """Hours in which Azure reported a provisioned deployment's utilisation, with its mean (0..1)."""
    provisioned = {(d.account.lower(), d.name) for d in deployments if d.deployment_type in PROVISIONED_TYPES}
    seen: dict[tuple[datetime, str, str], list[float]] = {}
    for row in metric_rows:
        if row["metric"] != UTILISATION:
            continue
        key = (row["bucket_start"], str(row["account"]).lower(), row["deployment"])
        totals = seen.setdefault(key, [0.0, 0.0])
        totals[0] += float(row["total"])
        totals[1] += float(row["count"])
    return [
        ProvisionedHour(b, a, d, 60, Decimal(str(round(t / n, 4))) / 100 if n else Decimal(0))
        for (b, a, d), (t, n) in sorted(seen.items())
        if (a, d) in provisioned
    ]


def cost_inputs(rules: AttributionRules, deployments: Sequence[DeploymentInfo], *, usage_rows: Iterable[Row],
                apim_rows: Iterable[Row], caller_rows: Iterable[Row], metric_rows: Sequence[Row]) -> CostInputs:
    """Everything `attribution.attribute` needs, from the stored rows of one range."""
    usage = token_usage(usage_rows, apim_rows, rules.apim_gateways)
    covered = {(u.bucket, u.account, u.deployment) for u in usage}
    return CostInputs(
        usage=tuple(usage),
        platform_tokens=tuple(platform_tokens(metric_rows, covered)),
        caller_requests=tuple(caller_requests(caller_rows)),
        provisioned_hours=tuple(provisioned_hours(metric_rows, deployments)),
    )
