"""The monthly report on fixed rows: golden totals, month over month, movers, unallocated and idle, budgets and
incidents, checked in the HTML's tables and in the CSV; and the store's aggregate reads behind it."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest

from collector.cost.attribution import DeploymentInfo
from collector.cost.budgets import Budget, Budgets
from collector.report.data import (
    IncidentRules,
    MonthlyReport,
    ReportInputs,
    assemble,
    filter_spikes,
    percent_change,
    throttle_episodes,
)
from collector.report.render import CSV_COLUMNS, render_csv, render_html
from collector.rollups.months import month_of
from collector.rollups.specs import PLATFORM_METRICS, REQUESTS
from collector.rollups.windows import Window
from collector.store.database import Store

MARCH = month_of(datetime(2026, 3, 1, tzinfo=UTC))
D = Decimal
NOW = datetime(2026, 4, 2, 6, tzinfo=UTC)
INVENTORY = (
    DeploymentInfo("acct", "chat", "gpt-4o", "2024-11-20", "GlobalStandard"),
    DeploymentInfo("acct", "ptu", "gpt-4o", "2024-08-06", "ProvisionedManaged", capacity=10),
    DeploymentInfo("acct", "mini", "gpt-4o-mini", "2024-07-18", "GlobalStandard"),
    DeploymentInfo("acct", "emb", "text-embedding-3-small", "1", "Standard"),
)


def _cost(team: str, deployment: str, method: str, price: str, requests: int, prompt: int, cached: int,
          completion: int, micro: int, unpriced: int = 0) -> dict[str, Any]:
    return {"team": team, "account": "acct", "deployment": deployment, "method": method, "price_id": price,
            "requests": requests, "prompt_tokens": prompt, "cached_tokens": cached, "completion_tokens": completion,
            "cost_micro_usd": micro, "unpriced": unpriced}


CURRENT = [
    _cost("search", "chat", "direct", "p-4o", 100, 10_000, 1_000, 2_000, 12_345_678),
    _cost("search", "emb", "direct", "p-emb", 50, 40_000, 0, 0, 800_000),
    _cost("marketing", "chat", "estimated", "p-4o", 30, 3_000, 0, 600, 3_000_005),
    _cost("marketing", "mini", "direct", "p-mini", 20, 2_000, 0, 400, 1_500_000),
    _cost("unallocated", "mini", "unallocated", "p-mini", 5, 500, 0, 100, 250_000),
    _cost("idle", "ptu", "idle", "p-ptu", 0, 0, 0, 0, 100_000_000),
    _cost("support", "ptu", "owner", "p-ptu", 10, 1_000, 0, 200, 20_000_000),
    _cost("data", "x-dep", "direct", "", 7, 700, 0, 70, 0, unpriced=1),  # not in the inventory, no price
]
PREVIOUS = [
    _cost("search", "chat", "direct", "p-4o", 80, 8_000, 0, 1_600, 10_000_000),
    _cost("marketing", "chat", "estimated", "p-4o", 40, 4_000, 0, 800, 5_000_000),
    _cost("unallocated", "mini", "unallocated", "p-mini", 20, 2_000, 0, 400, 1_000_000),
    _cost("idle", "ptu", "idle", "p-ptu", 0, 0, 0, 0, 100_000_000),
    _cost("support", "ptu", "owner", "p-ptu", 10, 1_000, 0, 200, 20_000_000),
    _cost("legacy", "chat", "direct", "p-4o", 16, 1_600, 0, 320, 2_000_000),
]
DAILY = [
    {"day": MARCH.start + timedelta(days=d), "team": t, "cost_micro_usd": c}
    for d, t, c in ((0, "search", 6_000_000), (14, "search", 7_145_678), (2, "marketing", 4_500_005),
                    (0, "idle", 50_000_000), (30, "idle", 50_000_000), (5, "support", 20_000_000),
                    (7, "unallocated", 250_000))
]


def _hour(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def _throttled(deployment: str, at: datetime, requests: int, throttled: int) -> dict[str, Any]:
    return {"bucket_start": at, "account": "ACCT", "deployment": deployment, "requests": requests,
            "requests_429": throttled}


HOURS = [  # (deployment, hour, requests, 429s): which pass the rule is in the test below
    ("chat", _hour(3, 14), 200, 120), ("chat", _hour(3, 15), 300, 150), ("chat", _hour(3, 16), 100, 30),
    ("chat", _hour(3, 17), 100, 5), ("chat", _hour(3, 18), 400, 30), ("chat", _hour(3, 19), 150, 20),
    ("chat", _hour(10, 14), 50, 5), ("mini", _hour(3, 15), 1000, 100),
]
BLOCKS = [
    *({"day": _hour(d, 0), "account": "ACCT", "deployment": "chat", "total": 5.0} for d in range(1, 11)),
    {"day": _hour(11, 0), "account": "ACCT", "deployment": "chat", "total": 16.0},  # 3 × median, under 20
    {"day": _hour(12, 0), "account": "ACCT", "deployment": "chat", "total": 40.0},  # a spike
    {"day": _hour(20, 0), "account": "ACCT", "deployment": "chat", "total": 600.0},  # a spike, over the floor too
    *({"day": _hour(d, 0), "account": "ACCT", "deployment": "mini", "total": 300.0} for d in range(1, 11)),
    {"day": _hour(11, 0), "account": "ACCT", "deployment": "mini", "total": 550.0},  # < 3 × 300, over the floor
]
ACTIVE = [*({"day": _hour(d, 0), "account": "acct", "deployment": "chat", "requests": 10} for d in range(1, 21)),
          *({"day": _hour(d, 0), "account": "acct", "deployment": "mini", "requests": 10} for d in range(1, 12))]
BUDGETS = Budgets((Budget("team", "search", D(20), (50, 80, 100)), Budget("team", "marketing", D(4), (50, 80, 100)),
                   Budget("deployment", "ptu", D(100), (90, 100), "acct")))


def _inputs(collected_until: datetime = datetime(2026, 4, 2, tzinfo=UTC)) -> ReportInputs:
    return ReportInputs(MARCH, CURRENT, PREVIOUS, DAILY, [_throttled(*h) for h in HOURS], BLOCKS, ACTIVE,
                        collected_until)


def _report(team: str | None = None, **kw: Any) -> MonthlyReport:
    return assemble(_inputs(**kw), INVENTORY, BUDGETS, team=team, generated_at=NOW)


class _Tables(HTMLParser):
    """Every <table id=...> of a document as rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs)["id"] or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables_of(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def csv_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _money_sum(rows: list[dict[str, str]], **where: str) -> Decimal:
    return sum((D(r["value"]) for r in rows if all(r[k] == v for k, v in where.items())), D(0))


# -- the pure parts ------------------------------------------------------------------------------------------------


def test_429_hours_merge_into_storms_by_the_documented_rule() -> None:
    episodes = throttle_episodes([_throttled(*h) for h in HOURS], IncidentRules())
    assert [(e.deployment, e.start, e.end, e.hours, e.requests, e.throttled, e.peak_percent) for e in episodes] == [
        ("chat", _hour(3, 14), _hour(3, 17), 3, 600, 300, D("60.0")),  # 17:00 has 5 429s, 18:00 7.5 %
        ("mini", _hour(3, 15), _hour(3, 16), 1, 1000, 100, D("10.0")),  # exactly 10 %: in
        ("chat", _hour(3, 19), _hour(3, 20), 1, 150, 20, D("13.3")),  # exactly 20 429s: in
    ]
    assert {e.account for e in episodes} == {"acct"}  # the logs' upper-case account, as the inventory spells it
    strict = IncidentRules(throttle_min_429=21, throttle_min_percent=11)
    assert [e.start for e in throttle_episodes([_throttled(*h) for h in HOURS], strict)] == [_hour(3, 14)]


def test_content_filter_spikes_against_the_median_of_active_days_and_the_floor() -> None:
    spikes = filter_spikes(BLOCKS, ACTIVE, IncidentRules())
    assert [(s.deployment, s.day.day, s.blocks, s.median) for s in spikes] == [
        ("mini", 11, 550, D(300)),  # under 3 × 300 but over the floor of 500
        ("chat", 12, 40, D(5)),
        ("chat", 20, 600, D(5)),
    ]
    # The median counts the days a deployment served requests without blocks as 0, and no day it did not serve.
    every_day = [{"day": _hour(d, 0), "account": "acct", "deployment": "chat", "requests": 1} for d in range(1, 32)]
    assert [(s.day.day, s.median) for s in filter_spikes(BLOCKS, every_day, IncidentRules())
            if s.deployment == "chat"] == [(12, D(0)), (20, D(0))]
    assert [(s.day.day, s.median) for s in filter_spikes(BLOCKS, [], IncidentRules()) if s.deployment == "chat"] == [
        (12, D(5)), (20, D(5))]


@pytest.mark.parametrize(("previous", "current", "expected"), [
    (10_000_000, 13_145_678, D("31.5")), (5_000_000, 4_500_005, D("-10.0")), (2, 0, D("-100.0")), (0, 5, None),
    (7, 7, D("0.0")),
])
def test_percent_change(previous: int, current: int, expected: Decimal | None) -> None:
    assert percent_change(previous, current) == expected


def test_golden_figures_of_the_organisation() -> None:
    r = _report()
    assert (r.total.cost_micro_usd, r.previous_total.cost_micro_usd) == (137_895_683, 138_000_000)
    assert r.total.requests == 222 and r.total.tokens == 57_200 + 3_370
    assert [(t.name, t.current.cost_micro_usd, t.previous.cost_micro_usd, t.percent) for t in r.teams] == [
        ("support", 20_000_000, 20_000_000, D("0.0")),
        ("search", 13_145_678, 10_000_000, D("31.5")),
        ("marketing", 4_500_005, 5_000_000, D("-10.0")),
        ("legacy", 0, 2_000_000, D("-100.0")),
        ("data", 0, 0, None),
        ("unallocated", 250_000, 1_000_000, D("-75.0")),  # never hidden, never a mover: its own line
        ("idle", 100_000_000, 100_000_000, D("0.0")),
    ]
    assert dict(r.line("marketing").methods) == {"direct": 1_500_000, "estimated": 3_000_005}  # type: ignore[union-attr]
    assert [(m.name, m.change_micro_usd) for m in r.team_movers] == [
        ("search", 3_145_678), ("legacy", -2_000_000), ("marketing", -499_995)]
    assert [(m.name, m.current.cost_micro_usd, m.previous.cost_micro_usd) for m in r.models] == [
        ("gpt-4o", 135_345_683, 137_000_000), ("gpt-4o-mini", 1_750_000, 1_000_000),
        ("text-embedding-3-small", 800_000, 0), ("unknown", 0, 0)]
    assert [(m.name, m.change_micro_usd, m.percent) for m in r.model_movers] == [
        ("gpt-4o", -1_654_317, D("-1.2")), ("text-embedding-3-small", 800_000, None),
        ("gpt-4o-mini", 750_000, D("75.0"))]
    ptu = next(d for d in r.deployments if d.deployment == "ptu")
    assert (ptu.model, ptu.deployment_type, ptu.idle.cost_micro_usd, ptu.current.cost_micro_usd) == (
        "gpt-4o", "ProvisionedManaged", 100_000_000, 120_000_000)
    assert r.unpriced == (("acct", "x-dep"),)
    assert dict(r.daily)["search"][14] == 7_145_678 and len(dict(r.daily)["idle"]) == 31
    # A closed month: budgets as of its end, and the forecast is what was spent.
    assert [(b.budget.id, b.spent, b.percent_used, b.crossed, b.forecast) for b in r.budgets] == [
        ("team:search", D("13.145678"), D("65.73"), (50,), D("13.145678")),
        ("team:marketing", D("4.500005"), D("112.50"), (50, 80, 100), D("4.500005")),
        ("deployment:acct/ptu", D("120.000000"), D("120.00"), (90, 100), D("120.000000")),
    ]
    assert r.complete and len(r.throttling) == 3 and len(r.content_filter) == 3


def test_html_shows_the_golden_numbers_in_its_tables() -> None:
    html = render_html(_report())
    tables = tables_of(html)
    teams = {row[0]: row for row in tables["teams"][1:]}
    assert teams["search"][1:8] == ["150", "50,000", "2,000", "$13.15", "$10.00", "+$3.15",
                                    "+31.5 %"]
    assert teams["marketing"][4:9] == ["$4.50", "$5.00", "-$0.50", "-10.0 %", "direct 33 %, estimated 67 %"]
    assert teams["legacy"][4:8] == ["$0.00", "$2.00", "-$2.00", "-100.0 %"]
    assert teams["data"][4:8] == ["$0.00", "$0.00", "$0.00", "–"]
    assert teams["unallocated"][4:8] == ["$0.25", "$1.00", "-$0.75", "-75.0 %"]
    assert teams["idle"][4:8] == ["$100.00", "$100.00", "$0.00", "0.0 %"]
    assert teams["Total"][1:8] == ["222", "57,200", "3,370", "$137.90", "$138.00", "-$0.10", "-0.1 %"]
    models = {row[0]: row for row in tables["models"][1:]}
    assert models["gpt-4o"][4:8] == ["$135.35", "$137.00", "-$1.65", "-1.2 %"]
    assert models["text-embedding-3-small"][7] == "new"
    assert [row[0] for row in tables["movers-teams"][1:]] == ["search", "legacy", "marketing"]
    assert tables["movers-models"][2] == ["text-embedding-3-small", "$0.00", "$0.80", "+$0.80", "new"]
    assert tables["budgets"][1:] == [
        ["team:search", "$20.00", "$13.15", "65.73 %", "$13.15 (65.73 %)", "50 %, 80 %, 100 %", "50 %"],
        ["team:marketing", "$4.00", "$4.50", "112.50 %", "$4.50 (112.50 %)", "50 %, 80 %, 100 %",
         "50 %, 80 %, 100 %"],
        ["deployment:acct/ptu", "$100.00", "$120.00", "120.00 %", "$120.00 (120.00 %)", "90 %, 100 %",
         "90 %, 100 %"],
    ]
    assert tables["unallocated"][1:] == [["ptu acct", "gpt-4o", "ProvisionedManaged", "0", "$0.00", "$100.00",
                                          "$100.00"],
                                         ["mini acct", "gpt-4o-mini", "GlobalStandard", "600", "$0.25", "$0.00",
                                          "$0.25"],
                                         ["Total", "", "", "600", "$0.25", "$100.00", "$100.25"]]
    assert tables["throttling"][1:] == [
        ["acct/chat", "2026-03-03 14:00", "2026-03-03 17:00", "3", "600", "300", "60.0 %"],
        ["acct/mini", "2026-03-03 15:00", "2026-03-03 16:00", "1", "1,000", "100", "10.0 %"],
        ["acct/chat", "2026-03-03 19:00", "2026-03-03 20:00", "1", "150", "20", "13.3 %"],
    ]
    assert tables["content-filter"][1:] == [["acct/mini", "2026-03-11", "550", "300"],
                                            ["acct/chat", "2026-03-12", "40", "5"],
                                            ["acct/chat", "2026-03-20", "600", "5"]]
    deployments = {row[0]: row for row in tables["deployments"][1:]}
    assert deployments["x-dep acct"][1:3] == ["unknown", "?"] and "unpriced" in deployments["x-dep acct"][7]
    assert deployments["Total"][5:7] == ["$137.90", "$138.00"]
    assert "Estimate from telemetry and the price book, not the invoice." in html
    assert re.search(r"No price in the price book matched the usage of acct/x-dep", html)
    assert "The month is not complete" not in html


def test_html_is_self_contained() -> None:
    for html in (render_html(_report()), render_html(_report("marketing"))):
        assert html.startswith("<!DOCTYPE html>")
        assert "<script" not in html.lower()
        assert not re.search(r"https?://", html), "an external URL in the report"
        assert not re.search(r"""(?:src|href)\s*=\s*["']?(?!#)""", html), "a link to another file"
        assert html.count("<svg") == html.count("</svg>") >= 4
        assert html.count('role="img"') == html.count("<title id=") == html.count("<svg")


def test_csv_sums_give_the_html_totals_to_the_cent() -> None:
    report = _report()
    rows = csv_of(render_csv(report))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert {r["month"] for r in rows} == {"2026-03"} and {r["scope"] for r in rows} == {"organisation"}
    for period, shown in (("2026-03", "$137.90"), ("2026-02", "$138.00")):
        total = _money_sum(rows, section="total", period=period, metric="cost_usd")
        for section in ("team", "model", "deployment"):
            assert _money_sum(rows, section=section, period=period, metric="cost_usd") == total, section
        assert f"${total.quantize(D('0.01')):,}" == shown
    assert _money_sum(rows, section="total", period="2026-03", metric="cost_usd") == D("137.895683")
    assert _money_sum(rows, section="daily", team="search", metric="cost_usd") == D("13.145678")
    assert _money_sum(rows, section="team_method", team="marketing", metric="cost_usd") == D("4.500005")
    by_team = {r["team"]: r["value"] for r in rows if r["section"] == "team" and r["period"] == "2026-03"
               and r["metric"] == "cost_usd"}
    assert by_team["unallocated"] == "0.250000" and by_team["idle"] == "100.000000"
    mover = {r["metric"]: r["value"] for r in rows if r["section"] == "mover_model"
             and r["model"] == "text-embedding-3-small"}
    assert mover == {"previous_cost_usd": "0.000000", "cost_usd": "0.800000", "change_usd": "0.800000",
                     "change_percent": "new"}
    storms = [r for r in rows if r["section"] == "throttling" and r["period"] == "2026-03-03T14:00:00Z"]
    assert {r["metric"]: r["value"] for r in storms} == {"end": "2026-03-03T17:00:00Z", "hours": "3",
                                                          "requests": "600", "requests_429": "300",
                                                          "peak_429_percent": "60.0"}
    budget = {r["metric"]: r["value"] for r in rows if r["section"] == "budget" and r["deployment"] == "ptu"}
    assert budget["percent_used"] == "120.00" and budget["thresholds_passed"] == "90;100"
    assert [(r["account"], r["deployment"]) for r in rows if r["section"] == "unpriced"] == [("acct", "x-dep")]


def test_one_team_sees_its_lines_and_the_incidents_on_its_deployments() -> None:
    r = _report("marketing")
    assert r.total.cost_micro_usd == 4_500_005 and [t.name for t in r.teams] == ["marketing"]
    assert [b.budget.id for b in r.budgets] == ["team:marketing"]
    assert {(e.deployment, e.start.hour) for e in r.throttling} == {("chat", 14), ("chat", 19), ("mini", 15)}
    assert r.team_movers == () and [m.name for m in r.model_movers] == ["gpt-4o", "gpt-4o-mini"]
    html = render_html(r)
    tables = tables_of(html)
    assert [row[0] for row in tables["teams"][1:]] == ["marketing", "Total"]
    assert "unallocated" not in tables and "organisation-level" in html
    rows = csv_of(render_csv(r))
    assert {r["scope"] for r in rows} == {"team:marketing"}
    assert _money_sum(rows, section="team", period="2026-03", metric="cost_usd") == D("4.500005")
    assert not _report("support").throttling  # its PTU deployment had no storm


def test_an_incomplete_month_says_so_and_forecasts_the_budgets() -> None:
    r = _report(collected_until=datetime(2026, 3, 16, tzinfo=UTC))
    assert not r.complete
    search = r.budgets[0]
    assert search.as_of == datetime(2026, 3, 16, tzinfo=UTC) and search.forecast == D("27.17")  # × 31 / 15
    html = render_html(r)
    assert "The month is not complete: the data ends at 2026-03-16 00:00 UTC" in html
    assert tables_of(html)["budgets"][1][4] == "$27.17 (135.85 %)"


# -- the store's aggregate reads -----------------------------------------------------------------------------------


def test_store_reads_throttled_hours_summed_over_sources(store: Store) -> None:
    window = Window(_hour(3, 0), _hour(11, 0))
    by_source: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for deployment, at, requests, throttled in HOURS:
        for minute, share in ((0, 2), (5, 1)):  # two 5-minute buckets per hour: the hourly tier sums them
            n, t = requests * share // 3, throttled * share // 3
            if minute == 5:
                n, t = requests - requests * 2 // 3, throttled - throttled * 2 // 3
            by_source["a"].append(("a", at + timedelta(minutes=minute), "ACCT", deployment, n, n - t, t, 0, t, 0, 1))
    by_source["b"].append(("b", _hour(3, 17), "ACCT", "chat", 100, 80, 20, 0, 20, 0, 1))  # 17:00 becomes 200/25
    for source, rows in by_source.items():
        store.replace_window(REQUESTS, source, window, sorted(rows), now=NOW)
    got = store.read_throttled_hours(MARCH.start, MARCH.end, min_throttled=20, min_percent=10)
    assert [(r["bucket_start"], r["deployment"], r["requests"], r["requests_429"]) for r in got] == [
        (_hour(3, 14), "chat", 200, 120), (_hour(3, 15), "chat", 300, 150), (_hour(3, 16), "chat", 100, 30),
        (_hour(3, 17), "chat", 200, 25), (_hour(3, 19), "chat", 150, 20), (_hour(3, 15), "mini", 1000, 100)]
    assert [e.hours for e in throttle_episodes(got, IncidentRules())] == [4, 1, 1]
    assert store.read_throttled_hours(_hour(3, 15), _hour(3, 16), min_throttled=20, min_percent=50) == [
        {"bucket_start": _hour(3, 15), "account": "ACCT", "deployment": "chat", "requests": 300,
         "requests_429": 150}]


def test_store_reads_a_metric_per_day_summed_over_hours_sources_and_status_codes(store: Store) -> None:
    window = Window(datetime(2026, 3, 31, 22, tzinfo=UTC), datetime(2026, 4, 1, 2, tzinfo=UTC))
    rows = [("m", datetime(2026, 3, 31, 22, 5, tzinfo=UTC), "ACCT", "chat", "RAIRejectedRequests", "", 3.0, 3.0, 1, 1),
            ("m", datetime(2026, 3, 31, 23, 55, tzinfo=UTC), "ACCT", "chat", "RAIRejectedRequests", "", 4.0, 4.0, 1, 1),
            ("m", datetime(2026, 3, 31, 23, 55, tzinfo=UTC), "ACCT", "chat", "RAIRejectedRequests", "400", 1.0, 1.0,
             1, 1),
            ("m", datetime(2026, 3, 31, 23, 55, tzinfo=UTC), "ACCT", "chat", "GeneratedTokens", "", 99.0, 1.0, 1, 1),
            ("m", datetime(2026, 4, 1, 0, 0, tzinfo=UTC), "ACCT", "chat", "RAIRejectedRequests", "", 2.0, 2.0, 1, 1)]
    store.replace_window(PLATFORM_METRICS, "m", window, rows, now=NOW)
    store.replace_window(PLATFORM_METRICS, "n", window, [("n", datetime(2026, 4, 1, 1, tzinfo=UTC), "ACCT", "mini",
                                                           "RAIRejectedRequests", "", 5.0, 5.0, 1, 1)], now=NOW)
    got = store.read_metric_daily("RAIRejectedRequests", datetime(2026, 3, 1, tzinfo=UTC),
                                  datetime(2026, 5, 1, tzinfo=UTC))
    assert [(r["day"], r["deployment"], r["total"]) for r in got] == [
        (datetime(2026, 3, 31, tzinfo=UTC), "chat", 8.0), (datetime(2026, 4, 1, tzinfo=UTC), "chat", 2.0),
        (datetime(2026, 4, 1, tzinfo=UTC), "mini", 5.0)]
    assert store.read_metric_daily("RAIRejectedRequests", datetime(2026, 4, 1, tzinfo=UTC),
                                   datetime(2026, 4, 1, 1, tzinfo=UTC))[0]["total"] == 2.0


def test_a_month_without_cost_still_renders() -> None:
    empty = ReportInputs(MARCH, [], [], [], [], [], [], datetime(2026, 4, 2, tzinfo=UTC))
    r = assemble(empty, INVENTORY, Budgets(), team=None, generated_at=NOW)
    html = render_html(r)
    assert tables_of(html)["teams"][1:] == [["Total", "0", "0", "0", "$0.00", "$0.00", "$0.00", "–", ""]]
    assert "No budget is set" in html and html.count("None this month") == 3
    # The month's basis split (nothing billed, nothing estimated) and, with no bill, the reconciliation's status.
    assert [row["section"] for row in csv_of(render_csv(r))] == ["total"] * 10 + ["basis"] * 6 + ["reconciliation"]


def test_a_large_organisation_prints_the_largest_rows_and_one_for_the_rest() -> None:
    current = [_cost(f"team{i:02d}", f"dep{i:02d}", "direct", "p", 1, 10, 0, 1, 1_000_000 + i) for i in range(40)]
    current += [_cost("unallocated", f"dep{i:02d}", "unallocated", "p", 1, 10, 0, 1, 10 + i) for i in range(40)]
    inputs = ReportInputs(MARCH, current, [], [], [], [], [], datetime(2026, 4, 2, tzinfo=UTC))
    r = assemble(inputs, INVENTORY, Budgets(), team=None, generated_at=NOW)
    html = render_html(r)
    tables = tables_of(html)
    assert len(tables["teams"]) == 1 + 41 + 1  # every team, unallocated and the total
    assert [row[0] for row in tables["deployments"][-3:]] == ["dep15 acct", "15 other deployments", "Total"]
    rest = sum(1_000_000 + i for i in range(15)) + sum(10 + i for i in range(15))  # the 15 cheapest, both lines
    assert tables["deployments"][-2][5] == usd_of(rest)
    assert tables["unallocated"][-2][0] == "15 other deployments"
    assert "The 25 largest of 40 deployments are shown" in html
    assert "26 other teams" in html  # the chart: 14 teams and one bar for the rest
    rows = csv_of(render_csv(r))
    assert len({r["deployment"] for r in rows if r["section"] == "deployment"}) == 40


def usd_of(micro: int) -> str:
    return f"${(D(micro) / 1_000_000).quantize(D('0.01')):,}"


def test_teams_keep_one_colour_without_collisions() -> None:
    org, team = _report(), _report("marketing")
    teams = [t.name for t in org.teams if t.charged]
    assert len({org.colours[t] for t in teams}) == len(teams)
    assert team.colours["marketing"] == org.colours["marketing"]
    assert org.colours["idle"] not in {org.colours[t] for t in teams}
    inputs = ReportInputs(MARCH, CURRENT, PREVIOUS, [], [], [], [], None, all_teams=["aaa", "search"])
    assert assemble(inputs, INVENTORY, BUDGETS, team=None, generated_at=NOW).colours["aaa"] == "#4e79a7"
