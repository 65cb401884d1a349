"""A terminal summary of what the store holds per deployment: what `make demo` prints until the dashboards land."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from collector.rollups.histogram import percentile
from collector.rollups.specs import LATENCY, PLATFORM_METRICS, REQUESTS
from collector.store.database import Store


@dataclass(frozen=True)
class DeploymentSummary:
    account: str
    deployment: str
    requests: int
    errors_4xx: int
    throttled_429: int
    errors_5xx: int
    content_filter_blocks: int
    prompt_tokens: int
    completion_tokens: int
    p50_ms: float | None
    p95_ms: float | None


def summarise(store: Store, start: datetime, end: datetime, source: str | None = None) -> list[DeploymentSummary]:
    """Per account and deployment over [start, end): counts from the logs, tokens and blocks from the metrics."""
    tier = "1h" if (end - start).days > 2 else "5m"
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in store.read(REQUESTS, tier, source=source, start=start, end=end):
        c = counts[(row["account"], row["deployment"])]
        c[0] += row["requests"]
        c[1] += row["requests_4xx"] - row["requests_429"]
        c[2] += row["requests_429"]
        c[3] += row["requests_5xx"]
    metrics: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in store.read(PLATFORM_METRICS, tier, source=source, start=start, end=end):
        metrics[(row["account"], row["deployment"])][row["metric"]] += row["total"]
    histograms: dict[tuple[str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for row in store.read(LATENCY, tier, source=source, start=start, end=end):
        histograms[(row["account"], row["deployment"])][row["le_bucket"]] += row["requests"]
    summaries = []
    for key in sorted(set(counts) | set(metrics)):
        c, m, h = counts[key], metrics[key], histograms[key]
        summaries.append(DeploymentSummary(
            account=key[0], deployment=key[1], requests=c[0], errors_4xx=c[1], throttled_429=c[2], errors_5xx=c[3],
            content_filter_blocks=round(m.get("RAIRejectedRequests", 0.0)),
            prompt_tokens=round(m.get("ProcessedPromptTokens", 0.0)),
            completion_tokens=round(m.get("GeneratedTokens", 0.0)),
            p50_ms=percentile(h, 0.5), p95_ms=percentile(h, 0.95),
        ))
    return summaries


def render(summaries: list[DeploymentSummary], title: str) -> str:
    header = ("account", "deployment", "requests", "4xx*", "429", "5xx", "blocked", "prompt tok", "compl tok",
              "p50 ms", "p95 ms")
    rows = [header]
    for s in summaries:
        rows.append((s.account, s.deployment, f"{s.requests:,}", f"{s.errors_4xx:,}", f"{s.throttled_429:,}",
                     f"{s.errors_5xx:,}", f"{s.content_filter_blocks:,}", f"{s.prompt_tokens:,}",
                     f"{s.completion_tokens:,}", _ms(s.p50_ms), _ms(s.p95_ms)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [title, ""]
    for i, r in enumerate(rows):
        lines.append("  ".join(v.ljust(w) if j < 2 else v.rjust(w) for j, (v, w) in enumerate(zip(r, widths,
                                                                                                  strict=True))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("4xx* excludes 429s; blocked = content-filter blocks (RAIRejectedRequests); tokens from the Metrics "
                 "store; latency percentiles from merged histograms of successful requests (bucket upper edge).")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
