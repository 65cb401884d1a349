"""The Cost page over a store with an imported bill (tests/billing/billed_store.py: five demo days, a bill with four
planted discrepancies): every figure's basis (billed or estimate) and the reconciliation section, each callback's
work called without a browser; the section reads and never writes, and is memoised per version of the data."""

from __future__ import annotations

import csv
import io
import shutil
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pytest
from dash import dcc, html

from collector.billing.reconciliation import Cause
from collector.cost.reconcile import reconcile_range
from collector.store import bills, reads
from collector.store.database import Store
from dashboards import cost_figures as cf
from dashboards import reconciliation as rc
from dashboards.context import Context
from dashboards.pages import cost
from dashboards.tables import to_csv
from tests.billing.billed_store import DAYS, DISCOUNTED, EXAMPLES, MARCH, MISSING_DAY, NOW, UNBILLED, UNLOGGED
from tests.dashboards.conftest import HOSTILE_TEAM, Billed

DAY = timedelta(days=1)
FIRST = datetime(2026, 3, 2, tzinfo=UTC)
SEARCH = f"?from={FIRST:%Y-%m-%d}T00:00Z&to={FIRST + 5 * DAY:%Y-%m-%d}T00:00Z"  # the five demo days
BILL_DAYS = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in DAYS]


@pytest.fixture
def billed_store(billed: Billed, tmp_path: Path) -> Any:
    """A copy of the billed store (a test may compare files before and after)."""
    path = tmp_path / "store.sqlite"
    shutil.copy(billed.demo.store, path)
    store = Store.open(f"sqlite:///{path}", migrate_schema=False)
    yield store
    store.close()


def context(store: Store, billed: Billed) -> Context:
    return Context(store, billed.settings(), billed.inventory(), billed.now)


def store_basis(store: Store) -> tuple[dict[str, int], dict[datetime, set[str]]]:
    """The daily cost table's own cost per basis and bases per day (Store.read_cost_daily, not the page's reads)."""
    cost: dict[str, int] = defaultdict(int)
    days: dict[datetime, set[str]] = defaultdict(set)
    for row in store.read_cost_daily(FIRST, FIRST + 5 * DAY, by=("day", "basis")):
        cost[row["basis"]] += int(row["cost_micro_usd"])
        days[row["day"]].add(row["basis"])
    return dict(cost), dict(days)


# -- the basis of every figure -----------------------------------------------------------------------------------


def test_the_basis_line_splits_the_range_into_billed_and_estimated(billed_store: Store, billed: Billed) -> None:
    ctx = context(billed_store, billed)
    shown = cost.summary(ctx, cost.Sources(ctx).get(), SEARCH, "")
    cost_by_basis, days = store_basis(billed_store)
    assert set(cost_by_basis) == {"billed", "estimate"}
    billed_days = sorted(d for d, b in days.items() if "billed" in b)
    estimated = sorted(d for d, b in days.items() if "estimate" in b)
    assert shown.basis == (f"Basis: {cf.money(cost_by_basis['billed'])} billed (from the Cost Management export, "
                           f"days {cf.day_runs(billed_days)}), {cf.money(cost_by_basis['estimate'])} estimated from "
                           f"telemetry and the price book (days {cf.day_runs(estimated)}, where no bill covers an "
                           "account's day yet).")
    # The planted gaps: no line at all on the missing day; the unbilled account's last day.
    assert cf.day_runs(billed_days) == "2026-03-02..2026-03-03, 2026-03-05..2026-03-06"
    assert cf.day_runs(estimated) == "2026-03-04, 2026-03-06"
    assert shown.kpis[0][0] == "Cost (billed + estimate)"
    assert not any("another price book" in line for line in shown.note)


def test_a_store_without_a_bill_says_all_is_estimated_and_how_to_import(billed: Billed, tmp_path: Path) -> None:
    path = tmp_path / "unbilled.sqlite"
    shutil.copy(billed.demo.unbilled, path)
    store = Store.open(f"sqlite:///{path}", migrate_schema=False)
    try:
        ctx = context(store, billed)
        loaded = cost.Sources(ctx).get()
        shown = cost.summary(ctx, loaded, SEARCH, "")
        whole = sum(int(r["cost_micro_usd"]) for r in store.read_cost_daily(FIRST, FIRST + 5 * DAY, by=("team",)))
        assert shown.basis.startswith(f"Basis: all {cf.money(whole)} estimated")
        assert "aoai-obs bill import SOURCE" in shown.basis
        assert shown.kpis[0][0] == "Cost (estimate)"
        assert {r["basis"] for r in shown.teams} == {"estimate"}
        daily = cost.series(ctx, loaded, shown.current)["cost-daily"]
        marks = next(t for t in daily["data"] if t["name"] == "basis")
        assert set(marks["marker"]["symbol"]) == {"circle-open"}
        section = cost.reconciliation(ctx, rc.Reconciler(store), loaded, SEARCH, "")
        assert section.groups == [] and section.rows == [] and section.cards == []
        assert "No imported bill covers 2026-03" in section.note[-1]
        assert "aoai-obs bill import SOURCE" in section.note[-1]
    finally:
        store.close()


def test_the_daily_chart_fades_estimated_days_and_marks_each_days_basis(billed_store: Store, billed: Billed) -> None:
    ctx = context(billed_store, billed)
    loaded = cost.Sources(ctx).get()
    daily = cost.series(ctx, loaded, cost.summary(ctx, loaded, SEARCH, "").current)["cost-daily"]
    go.Figure(daily)  # plotly's own validation
    _, days = store_basis(billed_store)
    expected = ["billed" if days[d] == {"billed"} else "estimate" if days[d] == {"estimate"} else "partly billed"
                for d in BILL_DAYS]
    assert expected == ["billed", "billed", "estimate", "billed", "partly billed"]
    bars = [t for t in daily["data"] if t["type"] == "bar" and t.get("legend") != "legend2"]
    assert bars and all(t["customdata"] == expected for t in bars)
    assert all(t["marker"]["opacity"] == [cf.BASIS_OPACITY[b] for b in expected] for t in bars)
    assert all("(%{customdata})" in t["hovertemplate"] for t in bars)
    marks = next(t for t in daily["data"] if t["name"] == "basis")
    assert marks["marker"]["symbol"] == ["circle", "circle", "circle-open", "circle", "circle-open-dot"]
    assert marks["customdata"][2] == "estimate (telemetry × price book)"
    assert marks["customdata"][4].startswith("partly billed: $")
    # The markers sit over each day's stack.
    for i, top in enumerate(marks["y"]):
        assert top > sum(t["y"][i] or 0 for t in bars)
    tokens = cost.series(ctx, loaded, cost.summary(ctx, loaded, SEARCH, "").current)["cost-daily-tokens"]
    assert not any(t.get("name") == "basis" for t in tokens["data"])  # tokens are telemetry's, billed or not


def test_every_table_and_its_csv_carry_the_basis(billed_store: Store, billed: Billed) -> None:
    ctx = context(billed_store, billed)
    loaded = cost.Sources(ctx).get()
    shown = cost.summary(ctx, loaded, SEARCH, "")
    per_team: dict[str, dict[str, int]] = defaultdict(dict)
    for row in billed_store.read_cost_daily(FIRST, FIRST + 5 * DAY, by=("team", "basis")):
        per_team[row["team"]][row["basis"]] = int(row["cost_micro_usd"])
    assert {r["team"]: r["basis"] for r in shown.teams} == {t: cf.basis_shares(b) for t, b in per_team.items()}
    assert any(" · " in r["basis"] for r in shown.teams)  # billed on some days, estimated on others
    swc = [r for r in shown.deployments if r["account"] == UNBILLED[0]]
    assert swc and all(r["basis"].startswith("billed ") and "estimate" in r["basis"] for r in swc)
    assert {r["price_id"]: r["basis"] for r in shown.prices}["bill"] == "billed"
    _, movers = cost.movers(ctx, loaded, shown.current)
    assert movers and all(r["basis"].endswith("; —") for r in movers)  # nothing in the previous five days
    for columns, rows in ((cf.TEAM_COLUMNS, shown.teams), (cf.DEPLOYMENT_COLUMNS, shown.deployments),
                          (cf.PRICE_COLUMNS, shown.prices), (cf.MOVER_COLUMNS, movers)):
        table = list(csv.DictReader(io.StringIO(to_csv(columns, rows))))
        header = next(h for k, h, _ in columns if k == "basis")
        assert [r[header] for r in table] == [r["basis"] for r in rows]


def test_a_team_name_made_of_markup_reaches_plotly_as_text(billed_store: Store, billed: Billed) -> None:
    ctx = context(billed_store, billed)
    loaded = cost.Sources(ctx).get()
    shown = cost.summary(ctx, loaded, SEARCH, "")
    assert HOSTILE_TEAM in {r["team"] for r in shown.teams}  # the table (Dash text) keeps the name as it is
    escaped = "&lt;img src=x onerror=alert(1)&gt; &amp; &#37;{y}"
    breakdown = shown.figures["cost-breakdown"]
    assert escaped in breakdown["data"][0]["y"]
    assert not any(HOSTILE_TEAM in str(t) for t in breakdown["data"])
    daily = cost.series(ctx, loaded, shown.current)["cost-daily"]
    named = [t for t in daily["data"] if t["name"] == escaped]
    assert named and all(t["hovertemplate"].startswith(escaped + " · ") for t in named)
    assert not any(HOSTILE_TEAM in str(t) for t in daily["data"])


# -- the reconciliation section ----------------------------------------------------------------------------------


def test_the_section_shows_the_planted_causes_biggest_first_with_the_override(billed_store: Store,
                                                                              billed: Billed) -> None:
    ctx = context(billed_store, billed)
    section = cost.reconciliation(ctx, rc.Reconciler(billed_store), cost.Sources(ctx).get(), SEARCH, "")
    assert section.month == "2026-03"  # the month the range ends in
    assert [g.cause for g in section.groups] == [Cause.EXPORT, Cause.QUANTITY, Cause.PRICE]
    for group in section.groups:
        gaps = [abs(r["gap_usd"]) for r in group.rows]
        assert gaps == sorted(gaps, reverse=True) and len(gaps) == group.cells
    export, quantity, price = section.groups
    assert {r["day"] for r in export.rows} == {MISSING_DAY.isoformat()}
    assert {r["account"] for r in quantity.rows} == {UNLOGGED, UNBILLED[0]}
    assert {(r["account"], r["meter"].split()[0], r["meter"].split()[-1]) for r in price.rows} == {DISCOUNTED}
    assert all(r["override"] and r["explanation"] for r in price.rows)
    assert section.overrides[0][0] == \
        "rates on gpt-4o-mini GlobalStandard for account contoso-aoai-eus: output 0.54 per 1M"
    assert section.overrides[0][1].startswith("- {scope: account, name: contoso-aoai-eus")
    # The same figures as `aoai-obs reconcile` (on a copy: it prices stale days first, and may write).
    copy = billed_store.engine.url.database + ".cli.sqlite"
    shutil.copy(billed_store.engine.url.database, copy)
    other = Store.open(f"sqlite:///{copy}", migrate_schema=False)
    try:
        cli = reconcile_range(other, cost.Sources(ctx).get().model, *MARCH, NOW, threshold=rc.THRESHOLD)
    finally:
        other.close()
    assert len(section.rows) == len(cli.gaps)
    cards = {label: (value, detail) for label, value, detail in section.cards}
    s = cli.summary
    assert cards["Estimate"][0] == f"${s.estimated_cost:,.2f}" and cards["Billed"][0] == f"${s.billed_cost:,.2f}"
    assert cards["Gross gap"] == (f"${s.gross_gap:,.2f}", f"{s.gross_percent:.2f}% of the estimate: threshold 1%, "
                                                          "EXCEEDED")
    billed_total = sum(Decimal(r["billed_cost"]) for r in bills.read_lines(billed_store, *MARCH))
    assert abs(Decimal(cards["Billed"][0].strip("$").replace(",", "")) - billed_total) < Decimal("0.01")
    assert cards["Net gap"][0].startswith("+$" if s.net_gap >= 0 else "-$")


def test_the_csv_has_every_cell_with_its_cause_explanation_and_override(billed_store: Store, billed: Billed) -> None:
    ctx = context(billed_store, billed)
    section = cost.reconciliation(ctx, rc.Reconciler(billed_store), cost.Sources(ctx).get(), SEARCH, "")
    table = list(csv.DictReader(io.StringIO(to_csv(rc.COLUMNS, section.rows))))
    assert len(table) == len(section.rows) > 50
    assert {r["Cause"] for r in table} == {"export", "quantity", "price", "none"}
    assert sum(Decimal(r["Gap USD"]) for r in table) == pytest.approx(
        sum(Decimal(str(r["gap_usd"])) for r in section.rows))
    priced = [r for r in table if r["Cause"] == "price"]
    assert priced and all(r["Suggested override"].startswith("rates on gpt-4o-mini") for r in priced)
    assert all(r["Explanation"] for r in table if r["Cause"] != "none")


def test_the_account_filter_applies_and_the_team_filter_says_it_does_not(billed_store: Store,
                                                                         billed: Billed) -> None:
    ctx = context(billed_store, billed)
    loaded = cost.Sources(ctx).get()
    reconciler = rc.Reconciler(billed_store)
    section = cost.reconciliation(ctx, reconciler, loaded, f"{SEARCH}&account={UNLOGGED.upper()}", "")
    assert [g.cause for g in section.groups] == [Cause.QUANTITY]
    assert {r["account"] for r in section.rows} == {UNLOGGED}
    cards = {label: value for label, value, _ in section.cards}
    assert cards["Estimate"] == "$0.00"
    assert cards["Billed"] == f"${sum(Decimal(str(r['billed_usd'])) for r in section.rows):,.2f}"
    assert section.overrides == []  # the discount is another account's
    everyone = cost.reconciliation(ctx, reconciler, loaded, SEARCH, "")
    teams = cost.reconciliation(ctx, reconciler, loaded, f"{SEARCH}&team=search", "")
    assert teams.rows == everyone.rows
    assert any("team filter does not apply" in line for line in teams.note)


def test_the_month_comes_from_the_hash_and_a_month_without_a_bill_says_so(billed_store: Store,
                                                                         billed: Billed) -> None:
    ctx = context(billed_store, billed)
    loaded = cost.Sources(ctx).get()
    reconciler = rc.Reconciler(billed_store)
    section = cost.reconciliation(ctx, reconciler, loaded, SEARCH, "#by=model&month=2026-02")
    assert section.month == "2026-02" and section.groups == []
    assert "No imported bill covers 2026-02" in section.note[-1]
    links = {label: (href, with_bill) for label, href, with_bill in section.months}
    assert links["2026-03"] == (f"/cost{SEARCH}#by=model&month=2026-03", True)
    assert links["2026-02"][1] is False
    hrefs, _ = cost.dimension_links(SEARCH, "#by=model&month=2026-02")
    assert hrefs[0] == f"/cost{SEARCH}#month=2026-02"  # the breakdown's links keep the month
    assert cost.view_by("#by=model&month=2026-02", "by=model") is cost.no_update  # the month alone: no redraw
    assert cost.view_by("#by=team&month=2026-02", "by=model") == "by=team"


def test_the_section_only_reads_and_is_memoised_per_version_of_the_data(billed_store: Store, billed: Billed,
                                                                        tmp_path: Path) -> None:
    # A price book other than the one that priced the store: the section compares the days as stored, says so,
    # and writes nothing (the CLI would re-price them first).
    book = tmp_path / "book.yaml"
    text = (EXAMPLES / "demo-prices.yaml").read_text(encoding="utf-8")
    assert 'ptu_hour: "1.00"' in text
    book.write_text(text.replace('ptu_hour: "1.00"', 'ptu_hour: "2.00"'), encoding="utf-8")
    settings = billed.settings()
    settings = settings.model_copy(update={"prices": settings.prices.model_copy(update={"book": book})})
    ctx = Context(billed_store, settings, billed.inventory(), billed.now)
    before = (reads.cost_version(billed_store), billed_store.read_cost_daily(*MARCH, by=("day", "team", "basis")))
    reconciler = rc.Reconciler(billed_store)
    loaded = cost.Sources(ctx).get()
    first = reconciler.get(loaded.model, rc.default_month(ctx, SEARCH), reconciler.runs())
    assert first.result is not None and first.stale_days == 5
    section = cost.reconciliation(ctx, reconciler, loaded, SEARCH, "")
    assert any("5 day(s) of 2026-03 were priced with another price book" in line for line in section.note)
    assert (reads.cost_version(billed_store), billed_store.read_cost_daily(*MARCH, by=("day", "team", "basis"))) \
        == before
    again = reconciler.get(loaded.model, rc.default_month(ctx, SEARCH), reconciler.runs())
    assert again is first  # memoised
    billed_store.replace_cost_days(FIRST - 10 * DAY, FIRST - 9 * DAY, [], "other", NOW + DAY)  # a collector pass
    assert reconciler.get(loaded.model, rc.default_month(ctx, SEARCH), reconciler.runs()) is not first


def test_data_in_the_section_is_drawn_as_text() -> None:
    hostile = "<script>alert(1)</script> **bold** [link](javascript:alert(1))"
    shown = rc.Section("2026-03", [("2026-03", "/cost#month=2026-03", True)], [hostile], [("Billed", hostile, hostile)],
                       [rc.Group(Cause.PRICE, 1, Decimal(1), [{"day": "2026-03-02", "account": hostile,
                                                               "meter": hostile, "explanation": hostile,
                                                               "override": hostile, "reasons": hostile}])],
                       [], [(hostile, hostile)])
    drawn = rc.draw(shown)

    def strings(node: Any) -> list[Any]:
        """Every component under `node`, and no component that renders markup."""
        found = [node]
        children = getattr(node, "children", None)
        for child in children if isinstance(children, list | tuple) else [children]:
            if child is not None and not isinstance(child, str | int | float):
                found += strings(child)
        return found

    components = [c for part in drawn if part is not None and not isinstance(part, list | str)
                  for c in strings(part)] + [c for part in drawn if isinstance(part, list)
                                             for item in part if not isinstance(item, dict | str)
                                             for c in strings(item)]
    assert not any(isinstance(c, dcc.Markdown) for c in components)
    assert not any(getattr(c, "dangerously_allow_html", False) for c in components)
    texts = [c.children for c in components if isinstance(getattr(c, "children", None), str)]
    assert texts.count(hostile) >= 6  # note, card value and detail, account, meter, explanation, override...
    assert any(isinstance(c, html.Pre) and c.children == hostile for c in components)
