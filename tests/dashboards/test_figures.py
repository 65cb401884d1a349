"""The pure parts of the dashboards on fixed data: arithmetic, figure builders (validated by plotly), the table and
its CSV, URL filters, colours and the freshness banner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
import pytest

from collector.cost.attribution import DeploymentInfo
from collector.rollups.windows import Window
from collector.store.database import JobStatus
from collector.store.reads import DeploymentRow, MetricAggregate, RequestCounts, TimePoint
from dashboards import figures
from dashboards.colours import PALETTE, colour_of
from dashboards.filters import Filters, from_controls, parse_query, resolve_range, to_query
from dashboards.freshness import banner, format_age, summarise
from dashboards.tables import to_csv

UTC_ZONE = ZoneInfo("UTC")
PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
COUNTS = RequestCounts(requests=200, requests_2xx=150, requests_4xx=40, requests_400=10, requests_429=25,
                       requests_5xx=10, duration_ms_sum=0)


def valid(figure: dict[str, Any]) -> go.Figure:
    """Plotly's own validation of a builder's output (raises on any unknown property or bad value)."""
    return go.Figure(figure)


# -- arithmetic --------------------------------------------------------------------------------------------------

def test_percentiles_from_a_fixed_histogram_are_bucket_upper_edges() -> None:
    histogram = {40: 50, 44: 45, 48: 4, 52: 1}  # 100 requests
    p50, p95, p99 = figures.percentiles(histogram)
    assert (p50, p95, p99) == pytest.approx((1217.748, 2435.496, 4870.992), abs=1e-3)
    assert figures.percentiles({}) == (None, None, None)


def test_error_rates_by_class() -> None:
    assert figures.status_classes(COUNTS) == {"2xx": 150, "4xx (not 429)": 15, "429": 25, "5xx": 10, "other": 0}
    assert figures.error_rates(COUNTS) == {"4xx (not 429)": 0.075, "429": 0.125, "5xx": 0.05, "all errors": 0.25}
    assert figures.error_rates(RequestCounts()) == {"4xx (not 429)": None, "429": None, "5xx": None,
                                                    "all errors": None}
    # Statuses no class counts (1xx, 3xx) keep the classes adding up to the requests.
    assert sum(figures.status_classes(RequestCounts(5, 3, 1, 0, 0, 0, 0)).values()) == 5


STANDARD = DeploymentInfo("aoai-eus", "gpt-4o", "gpt-4o", "2024-11-20", "GlobalStandard", capacity=450)
PTU = DeploymentInfo("aoai-eus", "gpt-4o-ptu", "gpt-4o", "2024-08-06", "ProvisionedManaged", capacity=50)


def test_headroom_against_the_tpm_quota() -> None:
    row = DeploymentRow("AOAI-EUS", "gpt-4o", peak_tokens_per_bucket=1_000_000.0)
    tpm = figures.peak_tpm(row, bucket_minutes=5)
    room = figures.headroom(STANDARD, tpm)
    assert room is not None
    assert (tpm, room.capacity_tpm, room.headroom_tpm) == (200_000.0, 450_000.0, 250_000.0)
    assert room.used == pytest.approx(0.4444, abs=1e-4)
    assert figures.headroom(PTU, tpm) is None  # provisioned: the utilisation metric says it
    assert figures.headroom(None, tpm) is None


# -- figures -----------------------------------------------------------------------------------------------------

def points() -> list[TimePoint]:
    return [TimePoint(T0, COUNTS), TimePoint(T0 + timedelta(minutes=5), RequestCounts()),
            TimePoint(T0 + timedelta(minutes=10), RequestCounts(7, 5, 0, 0, 0, 0, 0))]


def test_requests_by_class_adds_up_to_the_requests_and_shows_local_times() -> None:
    figure = valid(figures.requests_by_class(points(), PARIS))
    assert [t.name for t in figure.data] == ["2xx", "4xx (not 429)", "429", "5xx", "other"]
    assert sum(sum(t.y) for t in figure.data) == 207
    assert figure.data[0].x[0] == "2025-03-03 11:00"  # 10:00 UTC in Paris
    assert figure.layout.xaxis.title.text == "time (Europe/Paris)"


def test_error_rate_figure_in_percent_with_gaps_where_nothing_was_logged() -> None:
    figure = valid(figures.error_rate_by_class(points(), UTC_ZONE))
    by_name = {t.name: list(t.y) for t in figure.data}
    assert by_name["429"] == [12.5, None, 0.0]
    assert by_name["4xx (not 429)"] == [7.5, None, 0.0]


def test_latency_and_time_to_token_figures() -> None:
    latency = valid(figures.latency_percentiles([(T0, {40: 50, 44: 45, 48: 4, 52: 1}), (T0, {})], UTC_ZONE))
    assert [t.name for t in latency.data] == ["p50", "p95", "p99"]
    assert latency.data[2].y == pytest.approx((4870.992, None))
    series = {("AzureOpenAITimeToResponse", "", ""): [(T0, MetricAggregate(3000.0, 6.0, 10.0, 900.0))]}
    ttft = valid(figures.time_to_token(series, UTC_ZONE))
    assert [(t.name, t.y) for t in ttft.data] == [("first token", (500.0,))]


def deployment_rows() -> list[DeploymentRow]:
    return [
        DeploymentRow("AOAI-EUS", "gpt-4o", COUNTS, {40: 50, 44: 45, 48: 4, 52: 1},
                      {"RAIRejectedRequests": MetricAggregate(3.0, 3.0, 1.0, 1.0),
                       "AzureOpenAITimeToResponse": MetricAggregate(3000.0, 6.0, 10.0, 900.0),
                       "TokenTransaction": MetricAggregate(1_000_000.0, 100.0, 1.0, 1.0)}, 1_000_000.0),
        DeploymentRow("AOAI-EUS", "gpt-4o-ptu", RequestCounts(10, 10, 0, 0, 0, 0, 0), {36: 10},
                      {"AzureOpenAIProvisionedManagedUtilizationV2": MetricAggregate(300.0, 10.0, 5.0, 87.5)}),
        DeploymentRow("AOAI-SWC", "embed", RequestCounts(4, 4, 0, 0, 0, 0, 0), {24: 4}, {}),
    ]


def test_per_deployment_bars() -> None:
    rows = deployment_rows()
    throttled = valid(figures.throttling_by_deployment(rows))
    assert (list(throttled.data[0].y), list(throttled.data[0].x)) == (["gpt-4o · aoai-eus"], [25])
    assert throttled.data[0].customdata == (12.5,)
    blocks = valid(figures.blocks_by_deployment(rows))
    assert list(blocks.data[0].x) == [3.0]
    inventory = {("AOAI-EUS", "gpt-4o"): STANDARD, ("AOAI-EUS", "gpt-4o-ptu"): PTU}
    capacity = valid(figures.capacity_used(rows, inventory, bucket_minutes=5))
    assert dict(zip(capacity.data[0].y, capacity.data[0].x, strict=True)) == pytest.approx(
        {"gpt-4o · aoai-eus": 44.444, "gpt-4o-ptu · aoai-eus": 87.5}, abs=1e-3)
    assert "1 deployment(s) not shown" in capacity.layout.annotations[0].text


def test_deployment_and_account_names_reach_plotly_as_text() -> None:
    hostile = "<a href='//x'>d</a> 100%{x}"
    escaped = "&lt;a href='//x'&gt;d&lt;/a&gt; 100&#37;{x}"
    rows = [DeploymentRow("<b>acct</b>", hostile, COUNTS, {}, {"RAIRejectedRequests": MetricAggregate(3.0, 3.0, 1.0,
                                                                                                     1.0)})]
    label = f"{escaped} · &lt;b&gt;acct&lt;/b&gt;"
    assert valid(figures.throttling_by_deployment(rows)).data[0].y == (label,)
    assert valid(figures.blocks_by_deployment(rows)).data[0].y == (label,)
    series = {("AzureOpenAIProvisionedManagedUtilizationV2", "<b>acct</b>", hostile): [(T0, MetricAggregate(
        1.0, 1.0, 1.0, 50.0))]}
    assert valid(figures.ptu_utilisation(series, UTC_ZONE)).data[0].name == label


@pytest.mark.parametrize("build", [
    lambda: figures.requests_by_class([TimePoint(T0)], UTC_ZONE),
    lambda: figures.error_rate_by_class([], UTC_ZONE),
    lambda: figures.latency_percentiles([(T0, {})], UTC_ZONE),
    lambda: figures.time_to_token({}, UTC_ZONE),
    lambda: figures.throttling_by_deployment([]),
    lambda: figures.blocks_by_deployment([]),
    lambda: figures.ptu_utilisation({}, UTC_ZONE),
    lambda: figures.capacity_used([], {}, 5),
], ids=["requests", "error-rate", "latency", "time-to-token", "throttling", "blocks", "ptu", "capacity"])
def test_every_figure_says_why_it_is_empty(build: Any) -> None:
    figure = valid(build())
    assert not figure.data
    assert figure.layout.annotations[0].text.startswith(("No ", "Capacity unknown"))


def test_ptu_utilisation_plots_each_deployments_highest_minute() -> None:
    series = {("AzureOpenAIProvisionedManagedUtilizationV2", "AOAI-EUS", "gpt-4o-ptu"):
              [(T0, MetricAggregate(300.0, 10.0, 5.0, 87.5))]}
    figure = valid(figures.ptu_utilisation(series, UTC_ZONE))
    assert (figure.data[0].name, figure.data[0].y, figure.data[0].line.color) == (
        "gpt-4o-ptu · aoai-eus", (87.5,), colour_of("gpt-4o-ptu"))


# -- table and CSV -----------------------------------------------------------------------------------------------

def test_table_rows_and_their_csv() -> None:
    inventory = {("AOAI-EUS", "gpt-4o"): STANDARD, ("AOAI-EUS", "gpt-4o-ptu"): PTU}
    models = {("AOAI-SWC", "embed"): ("text-embedding-3-small",)}
    records = figures.table_rows(deployment_rows(), models, inventory, bucket_minutes=5)
    assert [r["deployment"] for r in records] == ["gpt-4o", "gpt-4o-ptu", "embed"]  # busiest first
    gpt = records[0]
    assert {k: gpt[k] for k in ("requests", "errors_4xx", "throttled", "throttled_pct", "errors_5xx", "error_pct",
                                "blocked", "p50_ms", "p99_ms", "first_token_ms", "peak_tpm", "capacity",
                                "capacity_used_pct")} == {
        "requests": 200, "errors_4xx": 15, "throttled": 25, "throttled_pct": 12.5, "errors_5xx": 10,
        "error_pct": 25.0, "blocked": 3, "p50_ms": 1218.0, "p99_ms": 4871.0, "first_token_ms": 500.0,
        "peak_tpm": 200000, "capacity": "450,000 TPM", "capacity_used_pct": 44.4}
    assert (records[1]["capacity"], records[1]["capacity_used_pct"]) == ("50 PTU", 87.5)
    assert (records[2]["model"], records[2]["capacity"], records[2]["peak_tpm"]) == (
        "text-embedding-3-small", "unknown", None)
    csv = to_csv(figures.TABLE_COLUMNS, records).splitlines()
    assert csv[0].startswith("Account,Deployment,Model,Requests,4xx (not 429),429,429 %,")
    assert csv[1].startswith("AOAI-EUS,gpt-4o,gpt-4o,200,15,25,12.5,10,25.0,3,1218.0,")
    assert csv[3].endswith(",unknown,")  # None is an empty cell


def test_totals_merge_every_deployment() -> None:
    counts, histogram, metrics = figures.totals(deployment_rows())
    assert (counts.requests, counts.requests_429) == (214, 25)
    assert histogram == {40: 50, 44: 45, 48: 4, 52: 1, 36: 10, 24: 4}
    assert metrics["RAIRejectedRequests"] == MetricAggregate(3.0, 3.0, 1.0, 1.0)


# -- URL filters -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "filters"), [
    ("", Filters()),
    ("?range=7d", Filters(range="7d")),
    ("?account=AOAI-EUS&deployment=gpt-4o&deployment=embed&model=gpt-4o",
     Filters(accounts=("AOAI-EUS",), deployments=("gpt-4o", "embed"), models=("gpt-4o",))),
    ("?from=2025-03-03T10%3A00&to=2025-03-03T12%3A00", Filters(range="custom", start="2025-03-03T10:00",
                                                               end="2025-03-03T12:00")),
    ("?team=search", Filters(teams=("search",))),
])
def test_query_strings_round_trip(query: str, filters: Filters) -> None:
    assert parse_query(query) == filters
    assert to_query(filters) == query
    assert parse_query(to_query(filters)) == filters


def test_bad_url_values_are_reported_not_fatal() -> None:
    parsed = parse_query("?range=3w&colour=red")
    assert parsed.range == "24h"
    assert [p.split(" ")[0] for p in parsed.problems] == ["unknown", "range"]
    start, end, problems = resolve_range(Filters(range="custom", start="yesterday"), T0, UTC_ZONE)
    assert (start, end) == (T0 - timedelta(hours=24), T0) and "ISO-8601" in problems[0]


def test_custom_times_are_in_the_display_zone_unless_they_say_otherwise() -> None:
    start, end, problems = resolve_range(Filters(range="custom", start="2025-03-03T11:00", end="2025-03-03T12:00Z"),
                                         T0, PARIS)
    assert (start.astimezone(UTC), end, problems) == (T0, datetime(2025, 3, 3, 12, tzinfo=UTC), [])
    assert resolve_range(Filters(range="7d"), T0, PARIS)[:2] == (T0 - timedelta(days=7), T0)


def test_controls_keep_what_the_page_has_no_control_for() -> None:
    kept = from_controls("6h", "", None, ["AOAI-EUS"], [], None, keep=parse_query("?team=search&range=7d"))
    assert to_query(kept) == "?range=6h&account=AOAI-EUS&team=search"


# -- colours and freshness ---------------------------------------------------------------------------------------

def test_colours_are_stable_per_name() -> None:
    assert colour_of("search") == colour_of("search") in PALETTE
    # Golden: the colour must not change between runs or releases (it is a SHA-1, not Python's salted hash).
    assert [colour_of(n) for n in ("search", "platform", "gpt-4o")] == ["#8cd17d", "#4e79a7", "#b07aa1"]
    assert len({colour_of(f"team-{i}") for i in range(100)}) == len(PALETTE)


def status(job: str, watermark: datetime | None, failed: Window | None = None) -> JobStatus:
    return JobStatus("demo", job, watermark, T0, T0, "boom" if failed else "", failed)


def test_freshness_levels_and_banner() -> None:
    stale_after = timedelta(minutes=30)
    now = T0 + timedelta(minutes=20)
    assert summarise([], now, stale_after).level == "empty"
    ok = summarise([status("requests_by_status", T0), status("platform_metrics", T0 - timedelta(minutes=5))], now,
                   stale_after)
    assert (ok.level, ok.newest) == ("ok", T0)
    stale = summarise([status("requests_by_status", T0), status("usage_tokens", T0 - timedelta(hours=3))], now,
                      stale_after)
    assert stale.level == "stale"
    failed = summarise([status("usage_tokens", T0, Window(T0, T0 + timedelta(minutes=5)))], now, stale_after)
    assert failed.level == "failed" and "boom" in failed.jobs[0].failed
    text = str(banner(stale, now, PARIS).to_plotly_json())
    assert "Data up to 2025-03-03 11:00 (Europe/Paris), 20 min ago." in text
    assert "1 job(s) behind: demo/usage_tokens 3 h 20 min." in text
    assert [format_age(timedelta(minutes=m)) for m in (5, 150, 3000)] == ["5 min", "2 h 30 min", "2 d 2 h"]
