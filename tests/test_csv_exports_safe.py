"""Every CSV the product writes, made from data whose team names are spreadsheet formulas, holds no formula: each cell
is checked as a spreadsheet would read it (its first character), and the numeric columns still parse as numbers.

The exporters run as a user runs them: `export usage`, `export focus`, `report --out x.csv`, `reconcile --format
csv` and `query --format csv` through the CLI, the dashboards' table downloads through `to_csv` over the Cost page's
own rows, over the billed demo store (tests/billing/billed_store.py) priced with rules that give five teams hostile
names.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli.main import main
from collector.config import load_settings
from collector.cost.attribution import Attribution, CostLine, DeploymentInfo
from collector.cost.export import usage_rows, write_csv
from collector.csvcells import FORMULA_STARTS, is_number_text
from collector.store.database import Store
from dashboards import cost_figures as cf
from dashboards import reconciliation as rc
from dashboards.context import Context
from dashboards.pages import cost
from dashboards.tables import Column, to_csv
from tests.billing.billed_store import DEPLOYMENTS, EXAMPLES, NOW, build_billed_demo
from tests.dashboards.test_cost_billed import SEARCH

#: The demo's teams renamed: OWASP's formula starts (the rules give five teams; a CR start is in the pure cases).
HOSTILE = {"support-bot": '=HYPERLINK("http://x")', "marketing": "+cmd|' /C calc'!A0", "search": "-2+3",
           "data-science": "@SUM(A1)", "platform": "\tplatform"}
EVERY_HOSTILE = (*HOSTILE.values(), "\rreturn")


@dataclass(frozen=True)
class Hostile:
    config: Path
    store: str
    settings_env: dict[str, str]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Hostile:
    root = tmp_path_factory.mktemp("hostile")
    text = (EXAMPLES / "demo-teams.yaml").read_text(encoding="utf-8")
    for team, name in HOSTILE.items():
        assert f"    team: {team}\n" in text
        text = text.replace(f"    team: {team}\n", f"    team: {json.dumps(name)}\n")  # a YAML double-quoted string
    rules = root / "teams.yaml"
    rules.write_text(text, encoding="utf-8")
    demo = build_billed_demo(root, rules)
    config = root / "aoai-obs.yaml"
    config.write_text(f"sources:\n  - name: demo\n    kind: workspace\n    path: {demo.workspace}\n"
                      f"store:\n  url: {demo.url}\n"
                      f"prices:\n  book: {EXAMPLES / 'demo-prices.yaml'}\n"
                      f"teams:\n  rules: {rules}\n"
                      f"inventory:\n  from_azure: false\n", encoding="utf-8")
    return Hostile(config, demo.url, {"AOAI_OBS_PRICES__BOOK": str(EXAMPLES / "demo-prices.yaml"),
                                      "AOAI_OBS_TEAMS__RULES": str(rules)})


def _run(config: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code in (0, 3), result.output  # reconcile exits 3 when the gap passes its threshold
    return result.stdout


def _table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def assert_no_formula(rows: Iterable[dict[str, str]]) -> None:
    """What a spreadsheet reads from each cell: a formula only when the cell starts with one of OWASP's characters
    and is not just a number."""
    formulas = [(k, v) for row in rows for k, v in row.items()
                if v and v.startswith(FORMULA_STARTS) and not is_number_text(v)]
    assert formulas == []


def assert_numbers(rows: Sequence[dict[str, str]], columns: Iterable[str], words: Iterable[str] = ()) -> None:
    """Every non-empty cell of `columns` is a number (or one of the column's documented `words`)."""
    for column in columns:
        values = [r[column] for r in rows if r[column] not in ("", *words)]
        assert values, column
        for value in values:
            try:
                Decimal(value)
            except InvalidOperation:
                pytest.fail(f"{column}: {value!r} is not a number")


def assert_names_kept(rows: Sequence[dict[str, str]], column: str, names: Iterable[str] = HOSTILE.values()) -> None:
    """The hostile names are there, each behind the quote that makes it text."""
    assert {r[column] for r in rows} >= {"'" + n for n in names}


def test_export_usage(hostile: Hostile) -> None:
    rows = _table(_run(hostile.config, "export", "usage", "--month", "2026-03"))
    assert_no_formula(rows)
    assert_names_kept(rows, "team")
    assert_numbers(rows, ("requests", "prompt_tokens", "cached_tokens", "completion_tokens", "cost_usd"))


def test_export_focus(hostile: Hostile) -> None:
    rows = _table(_run(hostile.config, "export", "focus", "--month", "2026-03"))
    assert_no_formula(rows)
    assert_names_kept(rows, "x_Team")
    assert_numbers(rows, ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "PricingQuantity"))


def test_the_report(hostile: Hostile, tmp_path: Path) -> None:
    _run(hostile.config, "report", "--month", "2026-03", "--out", str(tmp_path / "r.csv"))
    rows = _table((tmp_path / "r.csv").read_text(encoding="utf-8"))
    assert_no_formula(rows)
    assert_names_kept(rows, "team")
    money = [r for r in rows if r["metric"].endswith("_usd")]
    assert_numbers(money, ("value",))
    assert any(r["value"].startswith("-") for r in money)  # a negative amount, written as a number


def test_the_reconciliation(hostile: Hostile) -> None:
    rows = _table(_run(hostile.config, "reconcile", "--month", "2026-03", "--format", "csv"))
    assert_no_formula(rows)
    assert_numbers(rows, ("estimated_cost", "billed_cost", "gap", "estimated_quantity", "billed_quantity"))
    assert any(r["gap"].startswith("-") for r in rows)  # billed below the estimate: negative, and a number


def test_a_query(hostile: Hostile, tmp_path: Path) -> None:
    cells = ", ".join(f"c{i}={json.dumps(name)}" for i, name in enumerate(EVERY_HOSTILE))
    (tmp_path / "q.kql").write_text(f"print {cells}, n=-1.5\n", encoding="utf-8")
    rows = _table(_run(hostile.config, "query", "--format", "csv", str(tmp_path / "q.kql")))
    assert_no_formula(rows)
    assert [rows[0][f"c{i}"] for i in range(len(EVERY_HOSTILE))] == ["'" + n for n in EVERY_HOSTILE]
    assert rows[0]["n"] == "-1.5"


def test_the_dashboards_downloads(hostile: Hostile) -> None:
    store = Store.open(hostile.store, migrate_schema=False)
    try:
        from collector.cost.inventory import Inventory

        ctx = Context(store, load_settings(None, hostile.settings_env), Inventory.of(list(DEPLOYMENTS)), lambda: NOW)
        loaded = cost.Sources(ctx).get()
        shown = cost.summary(ctx, loaded, SEARCH, "")
        _, movers = cost.movers(ctx, loaded, shown.current)
        section = cost.reconciliation(ctx, rc.Reconciler(store), loaded, SEARCH, "")
    finally:
        store.close()
    tables: list[tuple[Sequence[Column], list[dict[str, object]]]] = [
        (cf.TEAM_COLUMNS, shown.teams), (cf.DEPLOYMENT_COLUMNS, shown.deployments), (cf.PRICE_COLUMNS, shown.prices),
        (cf.MOVER_COLUMNS, movers), (rc.COLUMNS, section.rows)]
    for columns, records in tables:
        rows = _table(to_csv(columns, records))
        assert rows, columns
        assert_no_formula(rows)
        numeric = [header for _, header, kind in columns if kind == "numeric"]
        words = ("", "new")  # a mover's Change % when the previous period had none
        assert_numbers(rows, [h for h in numeric if any(r[h] not in words for r in rows)], words=words)
    team_header = next(h for k, h, _ in cf.TEAM_COLUMNS if k == "team")
    assert_names_kept(_table(to_csv(cf.TEAM_COLUMNS, shown.teams)), team_header)
    gaps = _table(to_csv(rc.COLUMNS, section.rows))
    assert any(r["Gap USD"].startswith("-") for r in gaps)


def test_a_usage_export_of_hostile_accounts_deployments_and_price_ids() -> None:
    at = datetime(2026, 3, 3, 10, tzinfo=UTC)
    lines = tuple(CostLine(at, name, name, name, "direct", 1, 10, 0, 5, Decimal("-0.25"), name, False)
                  for name in EVERY_HOSTILE)
    deployments = {(n, n): DeploymentInfo(n, n, n, None, n) for n in EVERY_HOSTILE}
    out = io.StringIO(newline="")
    write_csv(usage_rows(Attribution(lines, ()), deployments, ("team", "deployment"), at), out)
    rows = _table(out.getvalue())
    assert_no_formula(rows)
    for column in ("team", "account", "deployment", "model", "deployment_type", "price_id"):
        assert_names_kept(rows, column, EVERY_HOSTILE)
    assert {r["cost_usd"] for r in rows} == {"-0.25"}
