"""Usage exports (grouping, CSV, Parquet), the FOCUS checks, and the export/cost commands on a collected demo day."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from collector.cli.main import main
from collector.collection.run import Timing, backfill
from collector.cost.attribution import Attribution, CostLine, DeploymentInfo
from collector.cost.export import COLUMNS, parse_by, usage_rows, write_csv, write_parquet
from collector.cost.focus import check_rows
from collector.errors import InputError
from collector.rollups.specs import ROLLUPS
from collector.store.database import Store
from collector.workspace.engine import Workspace
from collector.workspace.generate import generate
from collector.workspace.source import WorkspaceSource

D = Decimal
H = datetime(2026, 3, 3, 10, tzinfo=UTC)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
INVENTORY = {("acct", "a"): DeploymentInfo("acct", "a", "gpt-4o", None, "GlobalStandard"),
             ("acct", "p"): DeploymentInfo("acct", "p", "gpt-4o", None, "ProvisionedManaged", capacity=10)}


def _line(bucket: datetime, dep: str, team: str, method: str, prompt: int, cost: str, price: str | None = "p1",
          unpriced: bool = False) -> CostLine:
    return CostLine(bucket, "acct", dep, team, method, 1, prompt, prompt // 10, prompt // 4, D(cost), price, unpriced)


ATTRIBUTION = Attribution((
    _line(H, "a", "t1", "direct", 1000, "0.004500"),
    _line(H + timedelta(hours=1), "a", "t1", "direct", 2000, "0.009000"),
    _line(H + timedelta(days=1), "a", "t1", "direct", 100, "0.000450"),
    _line(H, "a", "t2", "estimated", 500, "0.002250"),
    _line(H, "p", "idle", "idle", 0, "7.500000", "ptu"),
    _line(H, "x", "unallocated", "unallocated", 40, "0", None, unpriced=True),
), ())


def test_by_is_checked() -> None:
    assert parse_by("team, deployment,day") == ("team", "deployment", "day")
    for bad, message in (("team,colour", "unknown 'colour'"), ("day,month", "at most one period"),
                         ("team,team", "named twice")):
        with pytest.raises(InputError, match=message):
            parse_by(bad)


def test_rows_per_team_and_day_keep_method_and_price_apart_and_add_up() -> None:
    rows = usage_rows(ATTRIBUTION, INVENTORY, ("team", "day"), H)
    got = [(r["period_start"].day, r["team"], r["deployment"], r["attribution_method"], r["price_id"],
            r["prompt_tokens"], r["cost_usd"], r["unpriced"]) for r in rows]
    assert got == [
        (3, "idle", "", "idle", "ptu", 0, D("7.5"), False),
        (3, "t1", "", "direct", "p1", 3000, D("0.0135"), False),
        (3, "t2", "", "estimated", "p1", 500, D("0.00225"), False),
        (3, "unallocated", "", "unallocated", "", 40, D("0"), True),
        (4, "t1", "", "direct", "p1", 100, D("0.00045"), False),
    ]
    assert sum(r["cost_usd"] for r in rows) == sum(x.cost for x in ATTRIBUTION.lines)


def test_rows_carry_model_and_type_from_the_inventory_and_no_period_means_the_start() -> None:
    rows = usage_rows(ATTRIBUTION, INVENTORY, ("deployment",), H)
    assert {(r["period_start"], r["account"], r["deployment"], r["model"], r["deployment_type"]) for r in rows} == {
        (H, "acct", "a", "gpt-4o", "GlobalStandard"), (H, "acct", "p", "gpt-4o", "ProvisionedManaged"),
        (H, "acct", "x", "", "")}
    assert {r["team"] for r in rows} == {""}  # not grouped by


def test_csv_has_the_documented_columns_and_exact_amounts() -> None:
    stream = io.StringIO(newline="")
    assert write_csv(usage_rows(ATTRIBUTION, INVENTORY, ("team", "month"), H), stream) == 4
    table = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert tuple(table[0]) == COLUMNS
    assert [(r["period_start"], r["team"], r["cost_usd"], r["unpriced"]) for r in table] == [
        ("2026-03-01T00:00:00Z", "idle", "7.5", "false"),
        ("2026-03-01T00:00:00Z", "t1", "0.01395", "false"),
        ("2026-03-01T00:00:00Z", "t2", "0.00225", "false"),
        ("2026-03-01T00:00:00Z", "unallocated", "0", "true"),
    ]


def test_parquet_round_trips_decimals_exactly(tmp_path: Path) -> None:
    rows = usage_rows(ATTRIBUTION, INVENTORY, ("team", "deployment", "hour"), H)
    assert write_parquet(rows, tmp_path / "u.parquet") == len(rows)
    table = pq.read_table(tmp_path / "u.parquet").to_pylist()
    assert [r["cost_usd"] for r in table] == [r["cost_usd"] for r in rows]
    assert table[0]["period_start"] == rows[0]["period_start"]
    assert sum(r["cost_usd"] for r in table) == D("7.516200")


def test_focus_checks_catch_what_the_spec_forbids() -> None:
    good = {"BilledCost": "1.5", "BillingAccountId": "b", "BillingAccountName": "b", "BillingCurrency": "USD",
            "BillingPeriodEnd": "2026-04-01T00:00:00Z", "BillingPeriodStart": "2026-03-01T00:00:00Z",
            "ChargeCategory": "Usage", "ChargeClass": "", "ChargeDescription": "d",
            "ChargePeriodEnd": "2026-03-04T00:00:00Z", "ChargePeriodStart": "2026-03-03T00:00:00Z",
            "ContractedCost": "1.5", "EffectiveCost": "1.5", "InvoiceIssuerName": "Microsoft", "ListCost": "1.5",
            "PricingQuantity": "10", "PricingUnit": "Tokens", "ProviderName": "Microsoft",
            "PublisherName": "Microsoft", "ServiceCategory": "AI and Machine Learning", "ServiceName": "Azure OpenAI",
            "ConsumedQuantity": "10", "ConsumedUnit": "Tokens", "SkuPriceId": "p", "x_Team": "t"}
    assert check_rows([good]) == []
    bad = {**good, "BilledCost": "1e3", "ChargeCategory": "Spend", "ChargeClass": "Refund", "BillingCurrency": "usd",
           "ChargePeriodStart": "2026-02-28T00:00:00Z", "Team": "t", "ServiceName": ""}
    del bad["ListCost"]
    usage_without_quantity = {**good, "ConsumedUnit": ""}
    problems = check_rows([good, bad, usage_without_quantity])
    assert [p.split(":")[0] for p in problems] == [
        "row 2, ListCost", "row 2, ServiceName", "row 2, Team", "row 2, BilledCost", "row 2, BillingCurrency",
        "row 2, ChargeCategory", "row 2, ChargeClass", "row 2, ChargePeriodStart", "row 3, ConsumedUnit"]


# -- the commands, on a collected demo day ---------------------------------------------------------------------

DAY = datetime(2026, 3, 3, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    ws = Workspace(root / "ws.duckdb")
    ws.create()
    generate(ws, start=DAY, end=DAY + timedelta(days=1), seed=3)
    store = Store.open(f"sqlite:///{root / 'store.sqlite'}")
    timing = Timing(grain=timedelta(minutes=5), lag=timedelta(0), lookback=timedelta(0), max_window=timedelta(days=1))
    assert backfill(store, [WorkspaceSource("demo", root / "ws.duckdb")], ROLLUPS, timing, DAY,
                    DAY + timedelta(days=1), DAY + timedelta(days=1)).ok
    store.close()
    config = root / "aoai-obs.yaml"
    config.write_text(f"sources:\n  - name: demo\n    kind: workspace\n    path: ws.duckdb\n"
                      f"store:\n  url: sqlite:///{root / 'store.sqlite'}\n"
                      f"teams:\n  rules: {EXAMPLES / 'demo-teams.yaml'}\n"
                      f"prices:\n  book: {EXAMPLES / 'demo-prices.yaml'}\n")
    return config


def _run(config: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_export_usage_csv_and_parquet_agree_and_total_the_focus_export(demo_config: Path, tmp_path: Path) -> None:
    text = _run(demo_config, "export", "usage", "--from", "2026-03-03", "--to", "2026-03-04",
                "--by", "team,deployment,model,day")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["team"] for r in rows} == {"data-science", "idle", "marketing", "platform", "search", "support-bot"}
    assert all(r["model"] and r["deployment_type"] for r in rows)
    total = sum(D(r["cost_usd"]) for r in rows)
    _run(demo_config, "export", "usage", "--month", "2026-03", "--format", "parquet", "--out",
         str(tmp_path / "u.parquet"))
    assert sum(r["cost_usd"] for r in pq.read_table(tmp_path / "u.parquet").to_pylist()) == total
    _run(demo_config, "export", "focus", "--month", "2026-03", "--out", str(tmp_path / "focus.csv"))
    with (tmp_path / "focus.csv").open(newline="") as f:
        focus = list(csv.DictReader(f))
    assert check_rows(focus) == []
    assert sum(D(r["BilledCost"]) for r in focus) == total
    assert all(r["ResourceId"].startswith("/subscriptions/") for r in focus)
    ptu = [r for r in focus if r["x_Deployment"] == "gpt-4o-ptu"]
    # 50 PTU x 24 h at the demo book's example $1.00 per PTU-hour, as PTU-hours and dollars.
    assert sum(D(r["PricingQuantity"]) for r in ptu) == D(1200)
    assert sum(D(r["BilledCost"]) for r in ptu) == D(1200)


def test_cost_table_and_helpful_errors(demo_config: Path, tmp_path: Path) -> None:
    table = _run(demo_config, "cost", "--month", "2026-03")
    assert "support-bot" in table and "idle" in table and table.splitlines()[-1].startswith("total")
    runner = CliRunner()
    for args, message in (
        (["export", "usage", "--month", "2026-3x"], "not a month; write YYYY-MM"),
        (["export", "usage", "--format", "parquet", "--month", "2026-03"], "needs --out FILE"),
        (["export", "usage", "--from", "2026-03-04", "--to", "2026-03-03"], "is not before --to"),
        (["export", "usage", "--month", "2026-03", "--from", "2026-03-01"], "either --month or --from/--to"),
        (["export", "usage", "--month", "2026-03", "--by", "teams"], "unknown 'teams'"),
    ):
        result = runner.invoke(main, ["--config", str(demo_config), *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    import os

    from collector.atomicfile import atomic_text

    mask = os.umask(0o022)
    try:
        with atomic_text(tmp_path / "out.csv") as stream:
            stream.write("x\n")
    finally:
        os.umask(mask)
    assert (tmp_path / "out.csv").stat().st_mode & 0o777 == 0o644
