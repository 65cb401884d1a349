"""The cost page's pure parts on fixed data: sums, KPI cards, every figure builder (validated by plotly, totals
checked), movers, budget burn, table rows and the team colours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import plotly.graph_objects as go
import pytest

from collector.cost.attribution import DeploymentInfo
from collector.cost.budgets import Budget, evaluate
from collector.rollups.months import month_of
from dashboards import cost_figures as cf
from dashboards.colours import (
    EXTRA_PALETTE,
    IDLE_COLOUR,
    METHOD_PATTERNS,
    PALETTE,
    UNALLOCATED_COLOUR,
    colour_of,
    team_colour,
    team_colours,
)

D1, D2 = datetime(2025, 3, 2, tzinfo=UTC), datetime(2025, 3, 3, tzinfo=UTC)
LINES = [
    cf.Line("eus", "gpt-4o", "search", "direct", "p4o", 10, 1000, 100, 200, 6_000_000, False),
    cf.Line("eus", "gpt-4o", "ads", "estimated", "p4o", 5, 500, 0, 100, 3_000_000, False),
    cf.Line("eus", "gpt-4o", "ads", "owner", "p4o", 1, 100, 0, 0, 500_000, False),
    cf.Line("eus", "ptu", "idle", "idle", "pptu", 0, 0, 0, 0, 20_000_000, False),
    cf.Line("eus", "ptu", "search", "direct", "pptu", 2, 200, 0, 0, 1_000_000, False),
    cf.Line("swc", "embed", "unallocated", "unallocated", "pemb", 4, 400, 0, 0, 400, False),
    cf.Line("swc", "new", "ads", "direct", "", 1, 10, 0, 0, 0, True),
]
INVENTORY: dict[tuple[str, str], DeploymentInfo | None] = {
    ("eus", "gpt-4o"): DeploymentInfo("eus", "gpt-4o", "gpt-4o", None, "GlobalStandard"),
    ("eus", "ptu"): DeploymentInfo("eus", "ptu", "gpt-4o", None, "ProvisionedManaged", capacity=50),
    ("swc", "embed"): DeploymentInfo("swc", "embed", "text-embedding-3-small", None, "Standard"),
}
PROVENANCE = {"p4o": "community price table (retrieved 2025-01-01)", "pptu": "EXAMPLE rate; book rates (x)"}
COLOUR = cf.colour_by(team_colours(["search", "ads"]))


def valid(figure: dict[str, Any]) -> go.Figure:
    return go.Figure(figure)


def bar_total(figure: dict[str, Any], axis: str) -> float:
    return sum(v for t in figure["data"] if t["type"] == "bar" for v in t[axis] if v is not None)


# -- sums and cards ----------------------------------------------------------------------------------------------


def test_lines_add_up_per_key_with_methods_and_prices() -> None:
    rows = [{"account": "eus", "deployment": "d", "team": "t", "method": "direct", "price_id": "p", "requests": 1,
             "prompt_tokens": 2, "cached_tokens": 0, "completion_tokens": 3, "cost_micro_usd": 4, "unpriced": 0}]
    assert cf.lines(rows) == [cf.Line("eus", "d", "t", "direct", "p", 1, 2, 0, 3, 4, False)]
    teams = cf.sum_by(LINES, cf.key_of("team", INVENTORY))
    assert teams["ads"].cost == 3_500_000 and teams["ads"].methods == {"estimated": 3_000_000, "owner": 500_000,
                                                                       "direct": 0}
    assert teams["ads"].unpriced and teams["ads"].deployments == {("eus", "gpt-4o"), ("swc", "new")}
    models = cf.sum_by(LINES, cf.key_of("model", INVENTORY))
    assert set(models) == {"gpt-4o", "idle", "unallocated", "model not in the inventory"}
    assert models["gpt-4o"].cost == 10_500_000 and models["gpt-4o"].prices == {"p4o": 9_500_000, "pptu": 1_000_000}
    apart = cf.sum_by(LINES, cf.key_of("deployment_type", INVENTORY, own_series=False))
    assert apart["ProvisionedManaged"].cost == 21_000_000
    assert cf.ranked(teams, 1) == ["search"] and cf.ranked(models, 5)[0] == "gpt-4o"


def test_kpis_say_cost_tokens_unit_cost_idle_unallocated_and_methods() -> None:
    cards = {label: (value, detail) for label, value, detail in cf.kpis(LINES, 2)}
    assert cards["Cost (estimate)"] == ("$30.50", "2 UTC day(s) · 4 deployment(s)")
    assert cards["Tokens"][0] == "2,510"
    assert cards["Unit cost (idle excluded)"][0] == f"${10_500_400 / 2510 / 1000:,.2f} / 1K tokens"
    assert cards["Idle PTU capacity"] == ("$20.00", "65.6% of cost: provisioned capacity no one used")
    assert cards["Unallocated"][0] == "$0.0004"
    assert cards["Attribution"] == ("66% idle", "direct 23% · owner 2% · estimated 10% · unallocated 0% · idle 66%")
    empty = {label: value for label, value, _ in cf.kpis([], 1)}
    assert empty["Cost (estimate)"] == "$0.00" and empty["Unit cost (idle excluded)"] == "—"


@pytest.mark.parametrize(("micro", "text"), [(0, "$0.00"), (1, "$0.0000"), (4_200, "$0.0042"),
                                             (1_234_567_890, "$1,234.57"), (-2_000_000, "$-2.00")])
def test_money(micro: int, text: str) -> None:
    assert cf.money(micro) == text


def test_unpriced_deployments_and_provenance_text() -> None:
    assert cf.unpriced_deployments(LINES) == [("swc", "new")]
    text = cf.provenance_text({"p4o": 5, "": 1, "pptu": 9}, PROVENANCE, limit=3)
    assert text.split("<br>") == ["pptu: EXAMPLE rate; book rates (x)", "p4o: community price table (retrieved "
                                  "2025-01-01)", "no price: no price in the price book (priced at 0)"]
    assert cf.provenance_text({"a": 3, "b": 2, "c": 1}, {}).endswith("and 1 more price(s)")


# -- figures -----------------------------------------------------------------------------------------------------


def test_breakdown_stacks_methods_and_hovers_the_prices() -> None:
    groups = cf.sum_by(LINES, cf.key_of("team", INVENTORY))
    figure = cf.breakdown(groups, "team", COLOUR, PROVENANCE)
    valid(figure)
    assert bar_total(figure, "x") == pytest.approx(30.5004)
    bars = [t for t in figure["data"] if t.get("legend") != "legend2"]
    assert {t["name"] for t in bars} == {"direct", "estimated", "owner", "unallocated", "idle"}
    assert bars[0]["y"] == ["unallocated", "ads", "search", "idle"]  # bottom-up: the largest on top
    estimated = next(t for t in bars if t["name"] == "estimated")
    assert estimated["marker"]["pattern"]["shape"] == METHOD_PATTERNS["estimated"] == "/"
    assert estimated["marker"]["color"][1] == COLOUR("ads") and estimated["marker"]["color"][3] == IDLE_COLOUR
    assert "EXAMPLE rate" in estimated["customdata"][3] and "community price table" in estimated["customdata"][2]
    legend = [t["name"] for t in figure["data"] if t.get("legend") == "legend2"]
    assert legend == ["direct", "owner", "estimated", "unallocated", "idle"]
    assert figure["layout"]["legend2"]["title"]["text"] == "Attribution method:"


def test_breakdown_folds_the_rest_into_other_and_says_when_empty() -> None:
    many = [cf.Line("a", f"d{i}", f"team-{i:02d}", "direct", "p", 1, 1, 0, 1, 1000 + i, False) for i in range(20)]
    figure = cf.breakdown(cf.sum_by(many, cf.key_of("team", {})), "team", COLOUR, {})
    assert f"other ({20 - cf.TOP_BARS})" in figure["data"][0]["y"]
    assert bar_total(figure, "x") == pytest.approx(sum(x.cost for x in many) / 1e6)
    nothing = cf.breakdown({}, "model", COLOUR, {})
    assert nothing["data"] == [] and nothing["layout"]["annotations"][0]["text"] == cf.NO_COST


def test_daily_stacks_labels_and_methods_per_day() -> None:
    points = [
        {"step": D1, "label": "search", "method": "direct", "cost_micro_usd": 2_000_000, "prompt_tokens": 10,
         "completion_tokens": 5},
        {"step": D2, "label": "search", "method": "direct", "cost_micro_usd": 1_000_000, "prompt_tokens": 1,
         "completion_tokens": 1},
        {"step": D2, "label": "search", "method": "owner", "cost_micro_usd": 500_000, "prompt_tokens": 1,
         "completion_tokens": 0},
        {"step": D2, "label": "idle", "method": "idle", "cost_micro_usd": 9_000_000, "prompt_tokens": 0,
         "completion_tokens": 0},
        {"step": D1, "label": "other teams (3)", "method": "estimated", "cost_micro_usd": 1, "prompt_tokens": 0,
         "completion_tokens": 0},
    ]
    figure = cf.daily(points, [D1, D2], "cost", "team", COLOUR)
    valid(figure)
    assert bar_total(figure, "y") == pytest.approx(12.500001)
    bars = [t for t in figure["data"] if t.get("legend") != "legend2"]
    assert [(t["name"], t["showlegend"]) for t in bars] == [("idle", True), ("search", True), ("search", False),
                                                            ("other teams (3)", True)]
    assert bars[0]["y"] == [None, 9.0] and bars[0]["x"] == ["2025-03-02", "2025-03-03"]
    assert bars[2]["marker"]["pattern"]["shape"] == "." and bars[0]["marker"]["color"] == IDLE_COLOUR
    assert "search · owner" in bars[2]["hovertemplate"]
    tokens = cf.daily(points, [D1, D2], "tokens", "team", COLOUR)
    assert bar_total(tokens, "y") == 18 and "idle" not in {t["name"] for t in tokens["data"]}
    assert cf.daily([], [D1], "cost", "model", COLOUR)["layout"]["annotations"][0]["text"] == cf.NO_COST
    week = cf.daily(points, [D1 + timedelta(days=i) for i in range(7)], "cost", "team", COLOUR)
    assert week["layout"]["xaxis"]["type"] == "date"


def test_unit_costs_divide_each_methods_cost_by_the_groups_tokens_and_requests() -> None:
    teams = cf.sum_by([x for x in LINES if x.method != "idle"], lambda x: x.team)
    figure = cf.unit_costs(teams, "Unit cost per team", COLOUR)
    valid(figure)
    search = teams["search"]
    per_1k = [t for t in figure["data"] if t.get("xaxis") is None and t.get("legend") != "legend2"]
    per_request = [t for t in figure["data"] if t.get("xaxis") == "x2"]
    at = per_1k[0]["y"].index("search")
    assert sum(t["x"][at] or 0 for t in per_1k) == pytest.approx(7.0 / search.tokens * 1000)
    assert sum(t["x"][at] or 0 for t in per_request) == pytest.approx(7.0 / search.requests)
    assert figure["layout"]["xaxis2"]["domain"] == [0.53, 1]
    assert cf.unit_costs({"idle": cf.Sums(cost=5)}, "t", COLOUR)["data"] == []


def test_movers_rank_changes_either_way_and_mark_new() -> None:
    current = {"search": {"direct": 9_000_000}, "ads": {"estimated": 1_000_000}, "new": {"direct": 5_000_000},
               "same": {"direct": 7}}
    previous = {"search": {"direct": 2_000_000}, "ads": {"estimated": 4_000_000}, "same": {"direct": 7},
                "gone": {"owner": 100}}
    found = cf.movers(current, previous)
    assert [(m.name, m.change) for m in found] == [("search", 7_000_000), ("new", 5_000_000),
                                                   ("ads", -3_000_000), ("gone", -100)]
    assert [m.label for m in found] == ["+$7.00 (+350%)", "+$5.00 (new)", "−$3.00 (−75%)", "−$0.0001 (−100%)"]
    figure = cf.movers_figure(found, "Top movers by team", COLOUR)
    valid(figure)
    assert bar_total(figure, "x") == pytest.approx(8.9999)
    assert figure["layout"]["barmode"] == "relative"
    marks = next(t for t in figure["data"] if t["type"] == "scatter")
    assert marks["text"][-1] == "+$7.00 (+350%)"
    assert marks["textposition"][0] == "middle left"
    assert cf.movers_figure([], "t", COLOUR)["layout"]["annotations"][0]["text"].startswith("No change")
    rows = cf.mover_rows("team", found)
    assert rows[0] == {"kind": "team", "name": "search", "previous_usd": 2.0, "current_usd": 9.0,
                       "change_usd": 7.0, "change_pct": "+350.0", "methods": "direct +7.00", "basis": "—; —"}
    assert rows[1]["change_pct"] == "new"


def test_budget_burn_draws_spend_forecast_and_thresholds() -> None:
    march = month_of(D1)
    budget = Budget("team", "search", Decimal(100), (50, 80, 100))
    status = evaluate(budget, march, Decimal("11.00"), datetime(2025, 3, 3, 18, tzinfo=UTC))
    burn = cf.Burn(budget.id, budget.id, "#4e79a7", 100_000_000,
                   ((D1, 2_000_000, {"direct": 2_000_000}),
                    (datetime(2025, 3, 3, 18, tzinfo=UTC), 11_000_000, {"direct": 10_000_000, "owner": 1_000_000})),
                   int((status.forecast or 0) * 1_000_000), budget.thresholds)
    figure = cf.budget_burn([burn], march.label, march.start, march.end, "none")
    valid(figure)
    spend, forecast = figure["data"]
    assert spend["name"] == "team:search (direct 91% · owner 9%)"  # the methods of the spend, in the legend
    assert spend["y"] == [0.0, 2.0, 11.0] and spend["x"][-1] == "2025-03-03 18:00"
    assert "direct 91% · owner 9%" in spend["customdata"][-1]
    assert forecast["line"]["dash"] == "dash" and forecast["y"] == [11.0, pytest.approx(124.0)]
    assert forecast["x"][-1] == "2025-04-01 00:00"
    assert [s["y0"] for s in figure["layout"]["shapes"]] == [50, 80, 100]
    assert figure["layout"]["yaxis"]["range"][1] == pytest.approx(1.08 * 124.0)
    assert cf.budget_burn([], "2025-03", march.start, march.end, "nothing")["layout"]["annotations"][0][
        "text"] == "nothing"
    row = cf.budget_row(status, {"direct": 1})
    assert row["spent_usd"] == 11.0 and row["forecast_pct"] == 124.0 and row["passed"] == "none"


# -- tables ------------------------------------------------------------------------------------------------------


def test_table_rows_carry_exact_usd_unit_costs_and_prices() -> None:
    teams = cf.team_rows(cf.sum_by(LINES, lambda x: x.team))
    assert [r["team"] for r in teams] == ["idle", "search", "ads", "unallocated"]
    assert teams[1]["cost_usd"] == 7.0 and teams[1]["usd_per_1k"] == f"{7.0 / 1400 * 1000:.6f}"
    assert teams[0]["usd_per_1k"] is None and teams[0]["methods"] == "idle 100%"
    deployments = cf.deployment_rows(LINES, INVENTORY)
    assert deployments[0]["deployment"] == "ptu" and deployments[0]["deployment_type"] == "ProvisionedManaged"
    assert deployments[-1]["unpriced"] == "yes: priced at 0" and deployments[-1]["model"] == ""
    prices = cf.price_rows(LINES, PROVENANCE)
    assert [(r["price_id"], r["deployments"]) for r in prices] == [("pptu", 1), ("p4o", 1), ("pemb", 1),
                                                                  ("(none)", 1)]
    assert prices[0]["provenance"] == PROVENANCE["pptu"] and prices[2]["provenance"] == "?"
    assert prices[3]["provenance"].startswith("no price in the price book")
    assert cf.method_shares({}) == "—" and cf.method_shares({"owner": 0}) == "owner"


# -- colours -----------------------------------------------------------------------------------------------------


def test_team_colours_are_collision_free_for_the_palette_and_stable() -> None:
    teams = [f"team-{i:02d}" for i in range(40)]
    colours = team_colours([*reversed(teams), "idle", "unallocated"])
    first = [colours[t] for t in teams[:len(PALETTE)]]
    assert first == list(PALETTE)  # sorted order takes the slots: no two share a colour
    assert all(colours[t] in EXTRA_PALETTE for t in teams[len(PALETTE):])
    assert colours["idle"] == IDLE_COLOUR and colours["unallocated"] == UNALLOCATED_COLOUR
    assert team_colours(teams) == {k: v for k, v in colours.items()}  # the same list, the same colours
    assert team_colour(colours, "team-00") == PALETTE[0]
    assert team_colour(colours, "zz-new") in EXTRA_PALETTE and team_colour({}, "idle") == IDLE_COLOUR
    assert colour_of("search") == "#8cd17d"  # other names keep their hash colour
    assert cf.colour_by({"a": "#000000"})("b") == colour_of("b")
