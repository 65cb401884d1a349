"""A small, hand-countable store: literal rollup rows written through Store.replace_window, as the collector would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from collector.rollups.specs import APIM_TOKENS, LATENCY, PLATFORM_METRICS, REQUESTS, USAGE_TOKENS, RollupSpec
from collector.rollups.windows import Window
from collector.store.database import Store

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
WINDOW = Window(T0, T0 + timedelta(hours=2))
NOW = T0 + timedelta(hours=2, minutes=10)
EUS, SWC = "AOAI-EUS", "AOAI-SWC"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# (source, bucket, account, deployment, requests, 2xx, 4xx, 400, 429, 5xx, duration_ms_sum)
REQUEST_ROWS: list[tuple[Any, ...]] = [
    ("demo", at(0), EUS, "gpt-4o", 10, 7, 3, 1, 2, 0, 5000),
    ("demo", at(5), EUS, "gpt-4o", 4, 4, 0, 0, 0, 0, 2000),
    ("demo", at(0), EUS, "gpt-4o-ptu", 6, 5, 0, 0, 0, 1, 3000),
    ("demo", at(65), SWC, "embed", 8, 8, 0, 0, 0, 0, 800),
    ("other", at(0), EUS, "gpt-4o", 1, 1, 0, 0, 0, 0, 100),  # a second source adds to the first
]
# (source, bucket, account, deployment, le_bucket, requests, duration_ms_sum)
LATENCY_ROWS: list[tuple[Any, ...]] = [
    ("demo", at(0), EUS, "gpt-4o", 40, 5, 5000),
    ("demo", at(0), EUS, "gpt-4o", 44, 2, 3000),
    ("demo", at(5), EUS, "gpt-4o", 40, 4, 4000),
    ("demo", at(0), EUS, "gpt-4o-ptu", 36, 5, 1000),
    ("demo", at(65), SWC, "embed", 24, 8, 400),
]
# (source, bucket, account, deployment, model, caller, requests, prompt, cached, completion)
USAGE_ROWS: list[tuple[Any, ...]] = [
    ("demo", at(0), EUS, "gpt-4o", "gpt-4o", "A", 7, 700, 0, 70),
    ("demo", at(0), EUS, "gpt-4o-ptu", "gpt-4o", "B", 5, 500, 100, 50),
    ("demo", at(65), SWC, "embed", "text-embedding-3-small", "C", 8, 80, 0, 0),
    ("demo", at(70), SWC, "", "", "", 1, 10, 0, 0),  # usage without a deployment: not a deployment of any model
]
# (source, bucket, apim_subscription_id, deployment, model, requests, prompt, completion, total)
APIM_ROWS: list[tuple[Any, ...]] = [
    ("demo", at(0), "sub-1", "gpt-4o", "gpt-4o-2024-11-20", 2, 20, 2, 22),
    ("demo", at(0), "sub-1", "gateway-only", "gpt-35-turbo", 1, 10, 1, 11),
]
# (source, bucket, account, deployment, metric, status_code, total, count, minimum, maximum)
METRIC_ROWS: list[tuple[Any, ...]] = [
    ("demo", at(0), EUS, "gpt-4o", "RAIRejectedRequests", "", 2.0, 2.0, 1.0, 1.0),
    ("demo", at(5), EUS, "gpt-4o", "RAIRejectedRequests", "", 1.0, 1.0, 1.0, 1.0),
    ("demo", at(0), EUS, "gpt-4o", "AzureOpenAITimeToResponse", "", 3000.0, 7.0, 100.0, 900.0),
    ("demo", at(5), EUS, "gpt-4o", "AzureOpenAITimeToResponse", "", 1000.0, 4.0, 50.0, 400.0),
    ("demo", at(0), EUS, "gpt-4o", "TokenTransaction", "", 770.0, 7.0, 50.0, 200.0),
    ("demo", at(5), EUS, "gpt-4o", "TokenTransaction", "", 1500.0, 4.0, 100.0, 600.0),
    ("demo", at(0), EUS, "gpt-4o-ptu", "AzureOpenAIProvisionedManagedUtilizationV2", "", 60.0, 5.0, 5.0, 30.0),
    ("demo", at(5), EUS, "gpt-4o-ptu", "AzureOpenAIProvisionedManagedUtilizationV2", "", 100.0, 5.0, 10.0, 45.0),
    ("demo", at(0), EUS, "gpt-4o-ptu", "TokenTransaction", "", 550.0, 5.0, 60.0, 150.0),
    ("demo", at(65), SWC, "embed", "TokenTransaction", "", 80.0, 8.0, 5.0, 20.0),
    ("demo", at(65), SWC, "embed", "AzureOpenAIRequests", "200", 8.0, 8.0, 1.0, 1.0),
]

TABLES: list[tuple[RollupSpec, list[tuple[Any, ...]]]] = [
    (REQUESTS, REQUEST_ROWS), (LATENCY, LATENCY_ROWS), (USAGE_TOKENS, USAGE_ROWS), (APIM_TOKENS, APIM_ROWS),
    (PLATFORM_METRICS, METRIC_ROWS),
]


def fill(store: Store) -> Store:
    """Write every table's rows, per source, over WINDOW."""
    for spec, rows in TABLES:
        for source in sorted({r[0] for r in REQUEST_ROWS}):
            store.replace_window(spec, source, WINDOW, [r for r in rows if r[0] == source], now=NOW)
    return store


# The daily cost table, as the collector's cost job writes it (accounts lower-cased, as attribution keys them).
# (day, account, deployment, team, method, price_id, requests, prompt, cached, completion, cost_micro_usd, unpriced)
D0, D1, D2 = (datetime(2025, 3, day, tzinfo=UTC) for day in (1, 2, 3))  # D0 is the previous period of [D1, D2]
P4O, PTU, EMB = "gpt-4o/GlobalStandard/2024-01-01", "*/ProvisionedManaged/2024-01-01", \
    "text-embedding-3-small/Standard/2024-01-01"
COST_ROWS: list[tuple[Any, ...]] = [
    (D0, "aoai-eus", "gpt-4o", "search", "direct", P4O, 4, 400, 0, 40, 2_000_000, 0),
    (D0, "aoai-eus", "gpt-4o", "ads", "estimated", P4O, 1, 100, 0, 10, 500_000, 0),
    (D1, "aoai-eus", "gpt-4o", "search", "direct", P4O, 6, 600, 0, 60, 3_000_000, 0),
    (D1, "aoai-eus", "gpt-4o-ptu", "idle", "idle", PTU, 0, 0, 0, 0, 9_000_000, 0),
    (D2, "aoai-eus", "gpt-4o", "search", "direct", P4O, 10, 1000, 100, 200, 5_000_000, 0),
    (D2, "aoai-eus", "gpt-4o", "ads", "estimated", P4O, 5, 500, 0, 100, 2_500_000, 0),
    (D2, "aoai-eus", "gpt-4o-ptu", "search", "direct", PTU, 4, 400, 0, 40, 1_000_000, 0),
    (D2, "aoai-eus", "gpt-4o-ptu", "idle", "idle", PTU, 0, 0, 0, 0, 9_000_000, 0),
    (D2, "aoai-swc", "embed", "unallocated", "unallocated", EMB, 8, 80, 0, 0, 80, 0),
    (D2, "aoai-swc", "mystery", "ads", "owner", "", 2, 20, 0, 2, 0, 1),  # no price matched: priced at 0
]
COST_COLUMNS = ("day", "account", "deployment", "team", "method", "price_id", "requests", "prompt_tokens",
                "cached_tokens", "completion_tokens", "cost_micro_usd", "unpriced")
#: When the cost rows were written: the daily cost table's version.
PRICED_AT = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


def fill_costs(store: Store, rows: list[tuple[Any, ...]] = COST_ROWS, *, at: datetime = PRICED_AT) -> Store:
    """Write cost rows for the days D0..D2 through Store.replace_cost_days."""
    store.replace_cost_days(D0, D2 + timedelta(days=1), [dict(zip(COST_COLUMNS, r, strict=True)) for r in rows],
                            "fixture", at)
    return store
