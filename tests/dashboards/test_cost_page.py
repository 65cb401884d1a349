"""The cost page on the hand-counted daily cost table (store_rows.COST_ROWS), SQLite and PostgreSQL: the cost reads
in collector.store.reads, each callback's work (`summary`, `series`, `movers`, `budgets`), and the app wiring."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pytest

from collector.config import load_settings
from collector.cost.attribution import DeploymentInfo
from collector.cost.budgets import load_budgets
from collector.cost.inventory import Inventory
from collector.cost.job import CostJob
from collector.cost.model import load_cost_model
from collector.store import reads
from collector.store.database import Store
from dashboards.app import create_app
from dashboards.context import Context, NoInventory
from dashboards.pages import cost
from tests.dashboards.store_rows import D0, D1, D2, EMB, P4O, PTU, fill_costs

DAY = timedelta(days=1)
NOW = datetime(2025, 3, 3, 18, 0, tzinfo=UTC)
SEARCH = f"?from={D1:%Y-%m-%d}T00:00Z&to={D2 + DAY:%Y-%m-%d}T00:00Z"  # the days D1 and D2
INVENTORY = Inventory.of([
    DeploymentInfo("aoai-eus", "gpt-4o", "gpt-4o", None, "GlobalStandard", "eastus"),
    DeploymentInfo("aoai-eus", "gpt-4o-ptu", "gpt-4o", None, "ProvisionedManaged", "eastus", 50),
    DeploymentInfo("aoai-swc", "embed", "text-embedding-3-small", None, "Standard", "swedencentral"),
])
BUDGETS = """\
budgets:
  - team: search
    monthly_usd: 100
  - deployment: gpt-4o-ptu
    account: AOAI-EUS
    monthly_usd: 30
    thresholds: [50, 100]
"""


def settings(tmp_path: Path, budgets: str | None = BUDGETS) -> Any:
    env = {}
    if budgets is not None:
        (tmp_path / "budgets.yaml").write_text(budgets, encoding="utf-8")
        env["AOAI_OBS_BUDGETS__FILE"] = str(tmp_path / "budgets.yaml")
    return load_settings(None, env)


def context(store: Store, tmp_path: Path, **kw: Any) -> Context:
    return Context(fill_costs(store), settings(tmp_path, **kw), INVENTORY, lambda: NOW)


def total(figure: dict[str, Any], axis: str = "y") -> float:
    go.Figure(figure)  # plotly's own validation
    return sum(v for t in figure["data"] if t["type"] == "bar" for v in t[axis] if v is not None)


# -- reads -------------------------------------------------------------------------------------------------------


def test_cost_rows_sum_in_the_database_per_key_and_day(store: Store) -> None:
    fill_costs(store)
    [everything] = reads.cost_rows(store, D0, D2 + DAY)
    assert everything == {"requests": 40, "prompt_tokens": 3100, "cached_tokens": 100, "completion_tokens": 452,
                          "cost_micro_usd": 32_000_080, "unpriced": 1}
    by_team = {r["team"]: r["cost_micro_usd"] for r in reads.cost_rows(store, D1, D2 + DAY, by=("team",))}
    assert by_team == {"ads": 2_500_000, "idle": 18_000_000, "search": 9_000_000, "unallocated": 80}
    days = reads.cost_rows(store, D0, D2 + DAY, by=("method",), step=DAY)
    assert {(r["step"], r["method"]): r["cost_micro_usd"] for r in days if r["method"] == "idle"} == {
        (D1, "idle"): 9_000_000, (D2, "idle"): 9_000_000}
    two_days = reads.cost_rows(store, D0, D2 + DAY, step=2 * DAY)
    assert [(r["step"], r["cost_micro_usd"]) for r in two_days] == [(D0, 14_500_000), (D2, 17_500_080)]
    assert reads.cost_rows(store, D2 + DAY, D2 + 2 * DAY, by=("team",)) == []


def test_cost_ranges_are_whole_utc_days() -> None:
    assert reads.cost_days(D1 + timedelta(hours=18), D2 + timedelta(hours=6)) == (D1, D2 + DAY)
    assert reads.cost_days(D1, D1 + timedelta(minutes=5)) == (D1, D2)
    assert reads.cost_days(D1, D1) == (D1, D2)
    with pytest.raises(ValueError):
        reads.cost_days(D1.replace(tzinfo=None), D2)


@pytest.mark.parametrize(("scope", "cost"), [
    (reads.CostScope(), 29_500_080),
    (reads.CostScope(accounts=("AOAI-SWC",)), 80),  # as the filter bar spells it
    (reads.CostScope(deployments=("gpt-4o", "embed")), 10_500_080),
    (reads.CostScope(teams=("search",)), 9_000_000),
    (reads.CostScope(pairs=(("AOAI-EUS", "gpt-4o-ptu"),)), 19_000_000),
    (reads.CostScope(pairs=()), 0),
    (reads.CostScope(accounts=("aoai-eus",), teams=("idle", "ads")), 20_500_000),
], ids=["all", "account", "deployments", "team", "pairs", "no-pairs", "account-and-teams"])
def test_cost_scopes_filter_in_the_database(store: Store, scope: reads.CostScope, cost: int) -> None:
    fill_costs(store)
    assert reads.cost_rows(store, D1, D2 + DAY, scope)[0]["cost_micro_usd"] == cost


def test_cost_labels_are_computed_in_the_database(store: Store) -> None:
    fill_costs(store)
    teams = reads.CostLabels("team", {"search": "search"}, "other teams")
    found = {(r["label"], r["method"]): r["cost_micro_usd"]
             for r in reads.cost_rows(store, D1, D2 + DAY, by=("method",), labels=teams)}
    assert found == {("search", "direct"): 9_000_000, ("other teams", "estimated"): 2_500_000,
                     ("other teams", "owner"): 0, ("idle", "idle"): 18_000_000,
                     ("unallocated", "unallocated"): 80}
    models = reads.CostLabels("deployment", {("AOAI-EUS", "gpt-4o"): "gpt-4o", ("aoai-eus", "gpt-4o-ptu"): "gpt-4o"},
                              "other models")
    per_day = {(r["step"], r["label"]): r["cost_micro_usd"]
               for r in reads.cost_rows(store, D1, D2 + DAY, step=DAY, labels=models)}
    assert per_day == {(D1, "gpt-4o"): 3_000_000, (D1, "idle"): 9_000_000, (D2, "gpt-4o"): 8_500_000,
                       (D2, "idle"): 9_000_000, (D2, "other models"): 0, (D2, "unallocated"): 80}
    # Twice in a row (SQLite keeps the labels in a temporary table of the connection) and with no labels at all.
    again = reads.cost_rows(store, D1, D2 + DAY, step=DAY, labels=models)
    assert {(r["step"], r["label"]): r["cost_micro_usd"] for r in again} == per_day
    nothing = reads.cost_rows(store, D1, D2 + DAY, labels=reads.CostLabels("team", {}, "all", own=()))
    assert [(r["label"], r["cost_micro_usd"]) for r in nothing] == [("all", 29_500_080)]


@pytest.mark.parametrize("bad", [{"by": ("day",)}, {"step": timedelta(hours=12)},
                                 {"labels": reads.CostLabels("model", {"x": "y"}, "other")}])
def test_cost_rows_refuse_what_the_table_cannot_answer(store: Store, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        reads.cost_rows(store, D1, D2, **bad)


def test_cost_teams_and_version(store: Store) -> None:
    assert reads.cost_teams(store) == [] and reads.cost_version(store) is None
    fill_costs(store)
    assert reads.cost_teams(store) == ["ads", "idle", "search", "unallocated"]
    assert reads.cost_teams(store, D1, D1 + DAY) == ["idle", "search"]
    assert reads.cost_version(store) == datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


# -- the callbacks' work -----------------------------------------------------------------------------------------


def test_summary_totals_equal_the_stores(store: Store, tmp_path: Path) -> None:
    ctx = context(store, tmp_path)
    shown = cost.summary(ctx, cost.Sources(ctx).get(), SEARCH, "")
    kpis = {label: (value, detail) for label, value, detail in shown.kpis}
    assert kpis["Cost (estimate)"] == ("$29.50", "2 UTC day(s) · 4 deployment(s)")
    assert kpis["Idle PTU capacity"][0] == "$18.00" and kpis["Unallocated"][0] == "$0.0001"
    assert kpis["Unit cost (idle excluded)"][0] == f"${11_500_080 / 1e6 / 3002 * 1000:,.2f} / 1K tokens"
    assert total(shown.figures["cost-breakdown"], "x") == pytest.approx(29.50008)
    assert shown.note[0].startswith("2025-03-02 – 2025-03-03, 2 whole UTC day(s)")
    assert shown.unpriced == [("aoai-swc", "mystery")]
    assert sum(r["cost_usd"] for r in shown.teams) == pytest.approx(29.50008)
    assert [r["team"] for r in shown.teams] == ["idle", "search", "ads", "unallocated"]
    assert [(r["deployment"], r["model"]) for r in shown.deployments][:2] == [("gpt-4o-ptu", "gpt-4o"),
                                                                              ("gpt-4o", "gpt-4o")]
    prices = {r["price_id"]: r for r in shown.prices}
    assert set(prices) == {P4O, PTU, EMB, "(none)"}
    assert "community price table" in prices[P4O]["provenance"] and "retrieved" in prices[P4O]["provenance"]
    assert prices["(none)"]["provenance"].startswith("no price in the price book")
    unit = shown.figures["cost-unit-team"]
    assert unit["data"][0]["y"] == ["unallocated", "ads", "search"]  # idle has no tokens; the largest on top
    assert shown.current["top"] == ["search", "ads"] and len(shown.current["lines"]) == 6


def test_the_team_and_model_filters_change_every_figure(store: Store, tmp_path: Path) -> None:
    ctx = context(store, tmp_path)
    loaded = cost.Sources(ctx).get()
    everything = cost.summary(ctx, loaded, SEARCH, "")
    search = cost.summary(ctx, loaded, f"{SEARCH}&team=search", "")
    assert total(search.figures["cost-breakdown"], "x") == pytest.approx(9.0)
    assert all(search.figures[g] != everything.figures[g] for g in cost.SUMMARY_GRAPHS)
    assert total(cost.series(ctx, loaded, search.current)["cost-daily"]) == pytest.approx(9.0)
    embeddings = cost.summary(ctx, loaded, f"{SEARCH}&model=text-embedding-3-small", "")
    assert [r["deployment"] for r in embeddings.deployments] == ["embed"]
    unknown = cost.summary(ctx, loaded, f"{SEARCH}&model=gpt-9", "")
    assert unknown.deployments == [] and any("no deployment of gpt-9" in line for line in unknown.note)


@pytest.mark.parametrize(("hash_text", "labels"), [
    ("", {"idle", "search", "ads", "unallocated"}),
    ("#by=model", {"idle", "gpt-4o", "model not in the inventory", "unallocated"}),
    ("#by=deployment_type", {"idle", "GlobalStandard", "ProvisionedManaged", "type not in the inventory",
                             "unallocated"}),
    ("#by=deployment", {"idle", "gpt-4o · aoai-eus", "gpt-4o-ptu · aoai-eus", "mystery · aoai-swc",
                        "unallocated"}),
])
def test_series_draw_each_breakdown_per_day_and_total_the_store(store: Store, tmp_path: Path, hash_text: str,
                                                                labels: set[str]) -> None:
    ctx = context(store, tmp_path)
    loaded = cost.Sources(ctx).get()
    drawn = cost.series(ctx, loaded, cost.summary(ctx, loaded, SEARCH, hash_text).current)
    daily = drawn["cost-daily"]
    assert total(daily) == pytest.approx(sum(int(r["cost_micro_usd"]) for r in store.read_cost_daily(
        D1, D2 + DAY, by=("team",))) / 1e6)
    assert {t["name"] for t in daily["data"] if t.get("legend") != "legend2" and t["type"] == "bar"} <= labels
    assert {t["name"] for t in daily["data"] if t.get("legend") == "legend2"} == {
        "direct", "estimated", "unallocated", "idle"}
    assert daily["data"][0]["x"] == ["2025-03-02", "2025-03-03"]
    assert total(drawn["cost-daily-tokens"]) == 3002


def test_series_fold_labels_beyond_the_top_into_other(store: Store, tmp_path: Path) -> None:
    ctx = context(store, tmp_path)
    loaded = cost.Sources(ctx).get()
    current = {**cost.summary(ctx, loaded, SEARCH, "").current, "top": ["search"], "others": 1}
    names = {t["name"] for t in cost.series(ctx, loaded, current)["cost-daily"]["data"]}
    assert "other teams (1)" in names and "ads" not in names


def test_movers_compare_with_the_previous_period(store: Store, tmp_path: Path) -> None:
    ctx = context(store, tmp_path)
    loaded = cost.Sources(ctx).get()
    figures, rows = cost.movers(ctx, loaded, cost.summary(ctx, loaded, SEARCH, "").current)
    by_name = {(r["kind"], r["name"]): r for r in rows}
    assert by_name[("team", "search")]["change_usd"] == pytest.approx(7.0)
    assert by_name[("team", "search")]["change_pct"] == "+350.0"
    assert by_name[("team", "idle")]["change_pct"] == "new"
    assert by_name[("deployment", "gpt-4o · aoai-eus")]["previous_usd"] == pytest.approx(2.5)
    assert ("deployment", "mystery · aoai-swc") not in by_name  # $0 both times: no change
    assert [r["name"] for r in rows if r["kind"] == "team"] == ["idle", "search", "ads", "unallocated"]
    assert "previous 2 day(s) (2025-02-28 – 2025-03-01)" in figures["cost-movers-team"]["layout"]["title"]["text"]


def test_budgets_equal_the_collectors_statuses(store: Store, tmp_path: Path) -> None:
    ctx = context(store, tmp_path)
    shown = cost.budgets(ctx, cost.Sources(ctx).get(), "?range=2d")
    job = CostJob(load_cost_model(ctx.settings, INVENTORY.deployments()), load_budgets(tmp_path / "budgets.yaml"),
                  None, recent=DAY, history=DAY)
    expected = {s.budget.id: s for s in job.statuses(store, NOW)}
    assert [r["budget"] for r in shown.rows] == list(expected)
    for row in shown.rows:
        status = expected[row["budget"]]
        assert Decimal(str(row["spent_usd"])) == status.spent
        assert row["forecast_usd"] == float(status.forecast or 0)
    assert shown.rows[1]["passed"] == "50%" and shown.rows[1]["methods"] == "direct 5% · idle 95%"
    burn = shown.figure
    go.Figure(burn)
    search = next(t for t in burn["data"] if t["name"] == "team:search (direct 100%)")
    assert search["y"][-1] == pytest.approx(11.0)  # $11 of $100 by NOW
    assert search["x"][0] == "2025-03-01 00:00" and search["x"][-1] == "2025-03-03 18:00"
    assert [s["y0"] for s in burn["layout"]["shapes"]] == [50, 80, 100]


def test_budgets_follow_the_filters_and_say_when_there_are_none(store: Store, tmp_path: Path) -> None:
    ctx = context(store, tmp_path)
    loaded = cost.Sources(ctx).get()
    assert [r["budget"] for r in cost.budgets(ctx, loaded, "?team=search").rows] == ["team:search"]
    assert [r["budget"] for r in cost.budgets(ctx, loaded, "?model=gpt-4o").rows] == [
        "deployment:aoai-eus/gpt-4o-ptu"]
    none = cost.budgets(ctx, loaded, "?deployment=embed")
    assert none.rows == [] and none.figure["layout"]["annotations"][0]["text"].startswith("No budget for")
    unset = context(store, tmp_path, budgets=None)
    shown = cost.budgets(unset, cost.Sources(unset).get(), "")
    assert shown.rows == [] and "set budgets.file" in shown.figure["layout"]["annotations"][0]["text"]


def test_sources_reload_when_the_cost_table_changes_and_report_bad_files(store: Store, tmp_path: Path) -> None:
    ctx = context(store, tmp_path, budgets="budgets: [{team: x}]\n")
    sources = cost.Sources(ctx)
    first = sources.get()
    assert any("budgets file" in p and "monthly_usd" in p for p in first.problems)
    assert first.colours["ads"] != first.colours["search"] and first.colours["idle"] == "#c9ced6"
    assert sources.get() is first
    fill_costs(store, [(D2, "aoai-eus", "gpt-4o", "zeta", "direct", P4O, 1, 1, 0, 1, 1, 0)],
               at=datetime(2025, 3, 3, 13, 0, tzinfo=UTC))
    assert "zeta" in sources.get().colours


def test_files_are_parsed_again_only_when_they_change(store: Store, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = context(store, tmp_path, budgets="budgets: [{team: x}]\n")
    parses: list[Path] = []
    real = cost.load_budgets
    monkeypatch.setattr(cost, "load_budgets", lambda path: parses.append(path) or real(path))
    first = cost.Sources(ctx).get()
    again = cost.Sources(ctx).get()  # a new server view of the same files: not parsed again
    assert len(parses) == 1 and again.problems == first.problems
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("budgets: [{team: search, monthly_usd: 100}]\n", encoding="utf-8")  # fixed: other size
    fixed = cost.Sources(ctx).get()
    assert len(parses) == 2
    assert not any("budgets file" in p for p in fixed.problems)
    assert fixed.budgets is not None and [b.name for b in fixed.budgets.budgets] == ["search"]


def test_an_empty_table_draws_empty_states(store: Store, tmp_path: Path) -> None:
    ctx = Context(store, settings(tmp_path, budgets=None), NoInventory(), lambda: NOW)
    loaded = cost.Sources(ctx).get()
    shown = cost.summary(ctx, loaded, "", "#by=nonsense")
    assert any("#by=nonsense" in line for line in shown.note)
    for g in cost.SUMMARY_GRAPHS:
        assert shown.figures[g]["data"] == [] and shown.figures[g]["layout"]["annotations"]
    assert cost.series(ctx, loaded, shown.current)["cost-daily"]["data"] == []
    assert cost.movers(ctx, loaded, shown.current)[1] == []


# -- the app -----------------------------------------------------------------------------------------------------


@pytest.fixture
def app_store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    yield fill_costs(opened)
    opened.close()


def _call(client: Any, callbacks: list[dict[str, Any]], output: str, inputs: list[dict[str, Any]]) -> Any:
    spec = next(c for c in callbacks if output in c["output"])
    outputs = [o.rsplit(".", 1) for o in spec["output"].strip(".").split("...")]
    body = {"output": spec["output"], "state": [], "changedPropIds": [f"{i['id']}.{i['property']}" for i in inputs],
            "outputs": [{"id": json.loads(i) if i.startswith("{") else i, "property": prop} for i, prop in outputs],
            "inputs": inputs}
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.data[:500]
    return json.loads(response.data)["response"]


def test_the_app_serves_the_cost_page_and_draws_through_its_callbacks(app_store: Store, tmp_path: Path) -> None:
    app = create_app(settings(tmp_path), app_store, inventory=INVENTORY, now=lambda: NOW)
    client = app.server.test_client()
    assert client.get("/cost").status_code == 200
    assert b"filter-team" in client.get("/_dash-layout").data
    callbacks = json.loads(client.get("/_dash-dependencies").data)
    url = [{"id": "url", "property": "search", "value": SEARCH}, {"id": "url", "property": "hash", "value": ""}]
    drawn = _call(client, callbacks, "cost-breakdown.figure", url)
    assert total(drawn["cost-breakdown"]["figure"], "x") == pytest.approx(29.50008)
    current = drawn["cost-current"]["data"]
    series = _call(client, callbacks, "cost-daily.figure", [{"id": "cost-current", "property": "data",
                                                             "value": current}])
    assert total(series["cost-daily"]["figure"]) == pytest.approx(29.50008)
    links = _call(client, callbacks, "cost-by-model.href", url)
    assert links["cost-by-model"]["href"] == f"/cost{SEARCH}#by=model"
