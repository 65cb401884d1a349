"""The monthly report and the bill: how much of the month is billed and how much estimated, and the reconciliation
section, on the demo with a planted bill (`tests.billing.billed_demo`: a missing export day, an account with no
telemetry, a day of telemetry with no bill line, a 10 % discount on one meter), on the same telemetry without a
bill, and for one team; text from the data escaped; the read-only path (the dashboard's) never writes."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from html import unescape
from pathlib import Path

import pytest

from collector.billing.meters import MeterKey, describe
from collector.billing.reconciliation import BilledLine, BillPeriod, Cause, EstimatedLine, Reason, reconcile
from collector.config import Settings, load_settings
from collector.cost.attribution import MICRO_USD
from collector.cost.budgets import Budgets
from collector.cost.model import CostModel
from collector.report.data import BillCheck, MonthlyReport, ReportInputs, assemble, load_report, reconcile_month
from collector.report.formatting import day_ranges, usd
from collector.report.reconciliation import GAP_ROWS, basis_phrase, by_cause
from collector.report.render import render_csv, render_html
from collector.rollups.months import month_of
from collector.store import bills
from collector.store.database import Store
from tests.billing.billed_store import (
    DAYS,
    DISCOUNTED,
    MISSING_DAY,
    NOW,
    UNBILLED,
    UNLOGGED,
    build_billed_demo,
    config_file,
)
from tests.report.test_report import csv_of, tables_of
from tests.report.test_report_cli import run

MARCH = month_of(datetime(2026, 3, 1, tzinfo=UTC))
D = Decimal


@dataclass(frozen=True)
class Reports:
    billed: MonthlyReport
    unbilled: MonthlyReport
    team: MonthlyReport
    config: Path
    settings: Settings
    model: CostModel
    bill_total: Decimal  # the stored bill of March, every line added up
    by_basis: dict[tuple[str, str], int]  # (team, basis) -> micro-dollars, as the store sums them
    days_by_basis: dict[str, set[int]]  # basis -> days of March with cost lines on it


def _store_figures(store: Store) -> tuple[Decimal, dict[tuple[str, str], int], dict[str, set[int]]]:
    bill = sum((D(r["billed_cost"]) for r in bills.read_lines(store, MARCH.start, MARCH.end)), D(0))
    rows = store.read_cost_daily(MARCH.start, MARCH.end, by=("team", "basis"))
    days: dict[str, set[int]] = defaultdict(set)
    for r in store.read_cost_daily(MARCH.start, MARCH.end, by=("day", "basis")):
        days[r["basis"]].add(r["day"].day)
    return bill, {(r["team"], r["basis"]): int(r["cost_micro_usd"]) for r in rows}, dict(days)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reports]:
    root = tmp_path_factory.mktemp("billed")
    demo = build_billed_demo(root)
    config = config_file(root, demo.workspace, demo.store.name)
    settings = load_settings(config, {})
    unbilled = load_settings(config_file(root, demo.workspace, demo.unbilled.name), {})
    store = Store.open(settings.store.url)
    try:
        billed = load_report(settings, store, MARCH, None, NOW)
        team = load_report(settings, store, MARCH, "search", NOW)
        figures = _store_figures(store)
    finally:
        store.close()
    other = Store.open(unbilled.store.url)
    try:
        plain = load_report(unbilled, other, MARCH, None, NOW)
    finally:
        other.close()
    yield Reports(billed, plain, team, config, settings, demo.model, *figures)


def _micro(value: int) -> Decimal:
    return D(value) * MICRO_USD


def _text(html: str) -> str:
    """The document's body text with tags dropped and blanks folded, as a reader sees it."""
    return " ".join(unescape(re.sub(r"<[^>]+>", "", html.split("<body>", 1)[1])).split())


# -- the basis -----------------------------------------------------------------------------------------------------


def test_a_billed_month_says_how_much_is_billed_and_on_which_days(reports: Reports) -> None:
    r = reports.billed
    billed = sum(v for (_, basis), v in reports.by_basis.items() if basis == "billed")
    estimated = sum(v for (_, basis), v in reports.by_basis.items() if basis == "estimate")
    assert (r.basis.billed_micro_usd, r.basis.estimate_micro_usd) == (billed, estimated)
    assert billed and estimated and billed + estimated == r.total.cost_micro_usd
    # The planted bill: every day but the missing one is billed; the missing day, and the day one account has no
    # bill line, are estimated (that day is both).
    assert set(r.basis.billed_days) == reports.days_by_basis["billed"] == {d.day for d in DAYS} - {MISSING_DAY.day}
    assert set(r.basis.estimate_days) == reports.days_by_basis["estimate"] == {MISSING_DAY.day, UNBILLED[1].day}
    # The allocation rounds each billed line to the cent: the report's billed share is the bill, line by line.
    assert abs(_micro(billed) - reports.bill_total) <= D("0.005") * len(r.basis.billed_days) * 20
    html = render_html(r)
    text = _text(html)
    assert "Estimate from telemetry and the price book, not the invoice." not in text
    assert (f"Partly billed: {usd(_micro(billed))} (" in text
            and f"on 4 days ({day_ranges(r.basis.billed_days, MARCH.start)})" in text
            and f"{usd(_micro(estimated))} (" in text
            and f"on 2 days ({day_ranges(r.basis.estimate_days, MARCH.start)})" in text)
    assert f"On {UNBILLED[1].day} March the bill covers some accounts and not others" in text
    tables = tables_of(html)
    assert tables["basis"][1][1:5] == [usd(_micro(billed)), f"{D(billed * 100) / (billed + estimated):.1f} %", "4",
                                       day_ranges(r.basis.billed_days, MARCH.start)]
    assert f"{D(billed * 100) / (billed + estimated):.1f} % billed" in text  # the basis tile
    rows = csv_of(render_csv(r))
    basis = {x["metric"]: x["value"] for x in rows if x["section"] == "basis"}
    assert D(basis["billed_cost_usd"]) + D(basis["estimate_cost_usd"]) == sum(
        D(x["value"]) for x in rows if x["section"] == "total" and x["period"] == "2026-03"
        and x["metric"] == "cost_usd")
    assert basis["billed_dates"].split(";") == [f"2026-03-{d:02d}" for d in r.basis.billed_days]
    per_team = defaultdict(dict)
    for x in rows:
        if x["section"] == "team_basis":
            per_team[x["team"]][x["metric"]] = D(x["value"])
    assert {(t, b): v for t, m in per_team.items() for b, v in
            (("billed", m["billed_cost_usd"]), ("estimate", m["estimate_cost_usd"])) if v} == {
        k: _micro(v) for k, v in reports.by_basis.items() if v}


def test_a_month_without_a_bill_says_its_figures_are_estimates_and_how_to_import_one(reports: Reports) -> None:
    r = reports.unbilled
    assert r.bill is None and r.basis.kind == "estimate" and r.basis.billed_micro_usd == 0
    assert r.basis.estimate_micro_usd == r.total.cost_micro_usd
    html = render_html(r)
    text = _text(html)
    assert "Estimate from telemetry and the price book, not the invoice." in text
    assert ("No imported bill covers March 2026: the figures are estimates from telemetry and the price book. To "
            "compare them with the invoice, import the Cost Management export (aoai-obs bill import SOURCE)") in text
    tables = tables_of(html)
    assert not {"basis", "reconciliation", "reconciliation-causes"} & set(tables)
    assert not [t for t in tables if t.startswith("gaps-")]
    rows = csv_of(render_csv(r))
    assert [(x["metric"], x["value"]) for x in rows if x["section"] == "reconciliation"] == [("status", "no_bill")]
    assert basis_phrase(r.basis) == "estimate from telemetry and the price book, not the invoice"


# -- the reconciliation --------------------------------------------------------------------------------------------


def test_the_reconciliation_section_shows_the_planted_causes_with_their_explanations(reports: Reports) -> None:
    r = reports.billed
    assert r.bill is not None and r.bill.result is not None and r.bill.threshold == D("0.01")
    result = r.bill.result
    s = result.summary
    assert s.billed_cost == reports.bill_total
    html = render_html(r)
    tables = tables_of(html)
    summary = {row[0]: row[1:] for row in tables["reconciliation"][1:]}
    assert summary["Estimate (telemetry and the price book)"][0] == usd(s.estimated_cost)
    assert summary["Billed"][0] == usd(reports.bill_total)
    assert summary["Net gap (billed − estimate)"] == [
        ("-" if s.net_gap < 0 else "+") + usd(abs(s.net_gap)), f"{s.net_percent:+} %"]
    assert summary["Threshold: 1 % of the estimate (gross gap)"][1] == "exceeded"
    # Causes by their absolute gaps, the largest first; the cells add up to every cell of the reconciliation.
    causes = tables["reconciliation-causes"][1:]
    assert [row[0] for row in causes[:-2]] == [c.cause.value for c in by_cause(result) if c.cause is not Cause.NONE]
    assert {row[0] for row in causes[:-2]} == {"export", "quantity", "price"}
    assert causes[-1][2] == f"{len(result.gaps):,}"
    # Each cause's table: its largest gaps first, each row followed by its reasons and explanation.
    for c in by_cause(result):
        if c.cause is Cause.NONE:
            continue
        rows = tables[f"gaps-{c.cause.value}"][1:]
        shown = c.gaps[:GAP_ROWS]
        assert [row[:3] for row in rows[0:2 * len(shown):2]] == [
            [g.day.isoformat(), g.account, describe(g.meter)] for g in shown]
        assert [row[0] for row in rows[1:2 * len(shown):2]] == [
            " ".join(f"{', '.join(x.value for x in g.reasons)}: {g.explanation}".split()) for g in shown]
        if len(c.gaps) > GAP_ROWS:
            assert rows[-1][0].startswith(f"and {len(c.gaps) - GAP_ROWS} more {c.cause.value} gap")
        else:
            assert len(rows) == 2 * len(c.gaps)
    text = _text(html)
    assert f"the export has no line at all on {MISSING_DAY.isoformat()}" in text
    assert f"billed usage on account {UNLOGGED}, which sends no telemetry" in text
    assert f"usage on {UNBILLED[0]}, but the bill has no line for it on a day it covers" in text
    assert "billed below the book" in text and "10% below the book" in text
    # The override that closes the discount, with its price-book entry.
    assert [o.name for o in result.overrides] == [DISCOUNTED[0]]
    assert result.overrides[0].describe() in text and "scope: account, name: contoso-aoai-eus" in text
    assert "What the reconciliation cannot explain" in text and "Azure bills an account, never a deployment" in text
    assert "Bill vs estimate" in text


def test_the_csv_has_every_gap_and_the_summary(reports: Reports) -> None:
    r = reports.billed
    assert r.bill is not None and r.bill.result is not None
    result = r.bill.result
    rows = csv_of(render_csv(r))
    summary = {x["metric"]: x["value"] for x in rows if x["section"] == "reconciliation"}
    assert summary["status"] == "reconciled" and summary["exceeded"] == "1" and summary["threshold_percent"] == "1"
    assert D(summary["billed_cost_usd"]) == reports.bill_total.quantize(D("0.000001"))
    assert (summary["first_day"], summary["last_day"]) == (DAYS[0].isoformat(), DAYS[-1].isoformat())
    gaps: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
    for x in rows:
        if x["section"] == "reconciliation_gap":
            gaps[(x["period"], x["account"], x["meter"])][x["metric"]] = x["value"]
            gaps[(x["period"], x["account"], x["meter"])]["cause"] = x["cause"]
    assert len(gaps) == len(result.gaps)
    assert sum(D(g["gap_usd"]) for g in gaps.values()) == pytest.approx(D(summary["net_gap_usd"]), abs=D("0.0001"))
    unlogged = [g for (_, account, _), g in gaps.items() if account == UNLOGGED]
    assert unlogged and all(g["cause"] == "quantity" and g["reasons"] == Reason.NO_TELEMETRY_ACCOUNT.value
                            and "sends no telemetry" in g["explanation"] for g in unlogged)
    assert {day for (day, _, _), g in gaps.items() if g["cause"] == "export"} == {MISSING_DAY.isoformat()}
    priced = [g for g in gaps.values() if g["cause"] == "price"]
    assert priced and all(g["suggested_override"] == result.overrides[0].describe() for g in priced)
    causes = {x["cause"]: x for x in rows if x["section"] == "reconciliation_cause" and x["metric"] == "cells"}
    assert sum(int(x["value"]) for x in causes.values()) == len(result.gaps)
    overrides = [x for x in rows if x["section"] == "reconciliation_override" and x["metric"] == "price_book_entry"]
    assert [(x["account"], x["model"]) for x in overrides] == [DISCOUNTED[:2]]


def test_a_team_report_shows_its_split_and_says_where_the_reconciliation_is(reports: Reports) -> None:
    r = reports.team
    assert r.bill is None
    assert (r.basis.billed_micro_usd, r.basis.estimate_micro_usd) == (
        reports.by_basis[("search", "billed")], reports.by_basis[("search", "estimate")])
    html = render_html(r)
    tables = tables_of(html)
    assert tables["basis"][-1][1] == usd(r.total.cost)
    assert not [t for t in tables if t.startswith("gaps-") or t.startswith("reconciliation")]
    assert ("The reconciliation with the bill is per account and meter (Azure bills accounts, not teams): it is in "
            "the organisation's report.") in _text(html)
    assert "Bill vs estimate" not in _text(html)
    rows = csv_of(render_csv(r))
    assert [(x["metric"], x["value"]) for x in rows if x["section"] == "reconciliation"] == [
        ("status", "organisation_report")]
    assert {x["team"] for x in rows if x["section"] == "team_basis"} == {"search"}


def test_the_command_says_what_the_total_is(reports: Reports, tmp_path: Path) -> None:
    result = run(reports.config, "--month", "2026-03", "--out", str(tmp_path / "march.csv"))
    assert result.exit_code == 0, result.output
    assert f"report 2026-03 (all teams): {usd(reports.billed.total.cost)}, 1 file(s) " \
           f"({basis_phrase(reports.billed.basis)})" in result.stderr
    assert "from the imported Azure bill" in result.stderr


def test_the_read_only_path_reconciles_without_writing_and_never_reprices(reports: Reports) -> None:
    store = Store.open(reports.settings.store.url)
    try:
        before = store.cost_day_fingerprints(MARCH.start, MARCH.end)
        # The dashboard's call: nothing stale, so the reconciliation is made, from what the store holds.
        fresh = load_report(reports.settings, store, MARCH, None, NOW, reprice=False)
        assert fresh.bill is not None and fresh.bill.result == reports.billed.bill.result  # type: ignore[union-attr]
        # Another cost model (here: no deployments) leaves every day stale: no reconciliation, and no write.
        other = CostModel(reports.model.book, reports.model.rules, ())
        check = reconcile_month(store, other, MARCH, NOW, D("0.01"), may_write=False)
        assert check is not None and check.result is None and "not priced by the current price book" in check.problem
        assert store.cost_day_fingerprints(MARCH.start, MARCH.end) == before
        assert load_report(reports.settings, store, MARCH, None, NOW, threshold=None).bill is None
    finally:
        store.close()


# -- pure ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("days", "expected"), [
    ((), "no day"), ((4,), "4 March"), ((2, 3, 4), "2–4 March"), ((1, 3, 4, 5, 9), "1, 3–5 and 9 March"),
    ((6, 2, 3), "2–3 and 6 March"),
])
def test_day_ranges(days: tuple[int, ...], expected: str) -> None:
    assert day_ranges(days, MARCH.start) == expected


def test_text_from_the_data_is_escaped() -> None:
    day = date(2026, 3, 2)
    at = datetime(2026, 3, 2, tzinfo=UTC)
    account, team = "acct<script>x</script>", "t<b>&amp;"
    meter = MeterKey("gpt-<i>4o</i>", "2024-11-20", "GlobalStandard", "input")
    estimate = [EstimatedLine(day, account, meter, D(1_000_000), D("2.50"), D("0.0000025"))]
    billed = [BilledLine(day, account, meter, D(1_000_000), D("2.25")),
              BilledLine(day, "other<img>", MeterKey("<u>m</u>", None, "Standard", "output"), D(10), D("1.00"))]
    result = reconcile(estimate, billed, [BillPeriod(day, day)], [account])
    row = {"team": team, "account": account, "deployment": "d<e>", "method": "direct", "price_id": "p<1>",
           "basis": "billed", "requests": 1, "prompt_tokens": 1, "cached_tokens": 0, "completion_tokens": 1,
           "cost_micro_usd": 2_250_000, "unpriced": 0}
    inputs = ReportInputs(MARCH, [row], [], [{"day": at, "team": team, "basis": "billed", "cost_micro_usd": 2_250_000}],
                          [], [], [], datetime(2026, 4, 2, tzinfo=UTC))
    for check in (BillCheck(D("0.01"), result), BillCheck(D("0.01"), problem="bill in <EUR>")):
        html = render_html(assemble(inputs, (), Budgets(), team=None, generated_at=NOW, bill=check))
        for raw in ("<script>", "<b>", "<i>4o", "<img>", "<u>m", "<EUR>", "<e>", "<1>"):
            assert raw not in html, raw
        assert ("&lt;EUR&gt;" if check.result is None else "acct&lt;script&gt;x&lt;/script&gt;") in html
    html = render_html(assemble(inputs, (), Budgets(), team=None, generated_at=NOW, bill=BillCheck(D("0.01"), result)))
    assert "gpt-&lt;i&gt;4o&lt;/i&gt; 2024-11-20 GlobalStandard input" in html
    assert "t&lt;b&gt;&amp;amp;" in html
    assert "billed usage on account other&lt;img&gt;, which sends no telemetry" in html
    all_billed = assemble(inputs, (), Budgets(), team=None, generated_at=NOW, bill=BillCheck(D("0.01"), result))
    assert all_billed.basis.kind == "billed" and "The Azure bill, allocated to teams: all $2.25" in _text(
        render_html(all_billed))
