"""End to end: demo telemetry collected and priced, a Cost Management export made independently from the raw logs
and the price book with four planted discrepancies, imported, and `aoai-obs reconcile`: each discrepancy found with
its cause, everything else within half a percent.

The demo and its bill are built by `tests.billing.billed_demo` (from the workspace's raw records, never from the
collector's rollups or cost table).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from collector.billing.reconciliation import Cause, Reason, Reconciliation
from collector.cli.main import main
from collector.config import load_settings
from collector.cost.job import month_spend
from collector.cost.pricing import MILLION
from collector.cost.reconcile import reconcile_range
from collector.errors import InputError
from collector.report.data import load_report
from collector.rollups.months import month_of
from collector.store import bills, reads
from collector.store.database import Store
from tests.billing.billed_store import (
    DAYS,
    DISCOUNTED,
    EXAMPLES,
    MARCH,
    MISSING_DAY,
    NOW,
    UNBILLED,
    UNLOGGED,
    build_billed_demo,
    config_file,
)


@pytest.fixture(scope="module")
def reconciled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Reconciliation, Path, Path]]:
    root = tmp_path_factory.mktemp("reconcile")
    demo = build_billed_demo(root)
    store = Store.open(demo.url)
    try:
        yield reconcile_range(store, demo.model, *MARCH, NOW, threshold=Decimal("0.01")), root, demo.workspace
    finally:
        store.close()


def _gaps(result: Reconciliation, cause: Cause) -> list[tuple[date, str, str, tuple[Reason, ...]]]:
    return sorted({(g.day, g.account, g.meter.kind if g.meter.model != "*" else "ptu_hour", g.reasons)
                   for g in result.gaps if g.cause == cause})


def test_the_discount_is_a_price_gap_with_the_override_that_closes_it(
        reconciled: tuple[Reconciliation, Path, Path]) -> None:
    result = reconciled[0]
    priced = [g for g in result.gaps if g.cause in (Cause.PRICE, Cause.PRICE_AND_QUANTITY)]
    assert {(g.account, g.meter.model, g.meter.kind) for g in priced} == {DISCOUNTED}
    assert all(Reason.DISCOUNT in g.reasons for g in priced)
    billed_days = set(DAYS) - {MISSING_DAY}
    assert {g.day for g in priced} == billed_days
    # Only the output meter is discounted, so the fix is that rate (the book's 0.60 per 1M, less 10%), not a
    # discount on every kind of the model.
    assert [o.describe() for o in result.overrides] == [
        "rates on gpt-4o-mini GlobalStandard for account contoso-aoai-eus: output 0.54 per 1M"]


def test_the_missing_day_is_an_export_gap(reconciled: tuple[Reconciliation, Path, Path]) -> None:
    export = [g for g in reconciled[0].gaps if g.cause == Cause.EXPORT]
    assert {g.day for g in export} == {MISSING_DAY}
    assert all(g.reasons == (Reason.MISSING_EXPORT_DAY,) and g.billed_cost == 0 for g in export)
    assert {g.account for g in export} == {"contoso-aoai-eus", "contoso-aoai-swc"}


def test_the_unlogged_account_and_the_unbilled_day_are_quantity_gaps(
        reconciled: tuple[Reconciliation, Path, Path]) -> None:
    quantity = [g for g in reconciled[0].gaps if g.cause == Cause.QUANTITY]
    unlogged = [g for g in quantity if g.account == UNLOGGED]
    assert {g.day for g in unlogged} == set(DAYS) - {MISSING_DAY}
    assert all(g.reasons == (Reason.NO_TELEMETRY_ACCOUNT,) and g.estimated_cost == 0 for g in unlogged)
    unbilled = [g for g in quantity if g.account != UNLOGGED]
    assert {(g.account, g.day) for g in unbilled} == {UNBILLED}
    assert all(g.reasons == (Reason.NOT_BILLED,) and g.billed_cost == 0 for g in unbilled)


def test_where_nothing_was_planted_estimate_and_bill_agree_within_half_a_percent(
        reconciled: tuple[Reconciliation, Path, Path]) -> None:
    result = reconciled[0]
    planted = {Cause.EXPORT, Cause.QUANTITY, Cause.PRICE, Cause.PRICE_AND_QUANTITY}
    clean = [g for g in result.gaps if g.cause not in planted]
    assert len(clean) > 50
    for g in clean:
        assert g.cause == Cause.NONE
        assert abs(g.gap) <= max(Decimal("0.01"), g.estimated_cost * Decimal("0.005")), g
    assert {g.meter.kind for g in clean} >= {"input", "cached_input", "output", "ptu_hour"}
    assert result.summary.exceeded


def test_the_command_prints_the_causes_and_exits_3_past_the_threshold(
        reconciled: tuple[Reconciliation, Path, Path]) -> None:
    _, root, workspace = reconciled
    config = root / "aoai-obs.yaml"
    config.write_text(f"sources:\n  - name: demo\n    kind: workspace\n    path: {workspace}\n"
                      f"store:\n  url: sqlite:///{root / 'store.sqlite'}\n"
                      f"prices:\n  book: {EXAMPLES / 'demo-prices.yaml'}\n"
                      f"teams:\n  rules: {EXAMPLES / 'demo-teams.yaml'}\n")
    result = CliRunner().invoke(main, ["--config", str(config), "reconcile", "--month", "2026-03"])
    assert result.exit_code == 3, result.output
    assert "rates on gpt-4o-mini GlobalStandard for account contoso-aoai-eus: output 0.54 per 1M" in result.stdout
    for cause in ("EXPORT gaps", "QUANTITY gaps", "PRICE gaps"):
        assert cause in result.stdout
    loose = CliRunner().invoke(main, ["--config", str(config), "reconcile", "--month", "2026-03",
                                      "--threshold", "100%", "--format", "csv"])
    assert loose.exit_code == 0, loose.output
    header = loose.stdout.splitlines()[0].split(",")
    assert header[:3] == ["day", "account", "meter"] and "cause" in header


def _cli(config: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _by_team(rows: list[dict[str, str]], team: str, cost: str) -> dict[str, Decimal]:
    found: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        found[row[team]] += Decimal(row[cost])
    return {k: v for k, v in found.items() if v}


@pytest.mark.parametrize("store_name", ["store.sqlite", "unbilled.sqlite"])
@pytest.mark.parametrize("month", ["2026-02", "2026-03", "2026-04"])
def test_every_cost_surface_gives_the_same_figures_per_team_to_the_cent(
        reconciled: tuple[Reconciliation, Path, Path], store_name: str, month: str) -> None:
    """`aoai-obs cost`, `export usage`, `export focus`, the Cost page's reads, the monthly report and budgets, for
    a month before any data, one with data (billed or not) and one after."""
    _, root, workspace = reconciled
    config = config_file(root, workspace, store_name)
    period = month_of(datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC))
    usage = list(csv.DictReader(io.StringIO(_cli(config, "export", "usage", "--month", month, "--by", "team"))))
    focus = list(csv.DictReader(io.StringIO(_cli(config, "export", "focus", "--month", month))))
    table = _cli(config, "cost", "--month", month, "--by", "team").splitlines()[1:-1]
    cli = _by_team([{"team": line.split()[2], "cost": line.split()[-1].replace(",", "")} for line in table],
                   "team", "cost")
    settings = load_settings(config, {})
    store = Store.open(settings.store.url)
    try:
        page = {r["team"]: Decimal(r["cost_micro_usd"]) / MILLION
                for r in reads.cost_rows(store, period.start, period.end, by=("team",)) if r["cost_micro_usd"]}
        if month == "2026-04":  # after the collected data: the report refuses rather than show an empty month
            with pytest.raises(InputError, match="nothing is collected for 2026-04 yet"):
                load_report(settings, store, period, None, NOW)
            report_teams: tuple[Any, ...] = ()
        else:
            report_teams = load_report(settings, store, period, None, NOW).teams
        budgets = {k[1]: v for k, v in month_spend(store, period, period.end).items() if k[0] == "team" and v}
    finally:
        store.close()
    from_report = {line.name: Decimal(line.current.cost_micro_usd) / MILLION for line in report_teams
                   if line.current.cost_micro_usd}
    figures = _by_team(usage, "team", "cost_usd")
    assert _by_team(focus, "x_Team", "BilledCost") == figures
    assert page == figures
    assert from_report == figures
    assert {team: cost.quantize(Decimal("0.01")) for team, cost in figures.items()} == cli
    assert budgets == figures  # spend per team scope (no budget is set for unallocated or idle)
    if month != "2026-03":
        assert figures == {}
    else:
        assert set(figures) >= {"idle", "platform"}
        bases = {row["basis"] for row in usage}
        assert bases == ({"billed", "estimate"} if store_name == "store.sqlite" else {"estimate"})


def test_the_allocated_bill_adds_up_to_the_bill_per_account_and_day(
        reconciled: tuple[Reconciliation, Path, Path]) -> None:
    _, root, _ = reconciled
    store = Store.open(f"sqlite:///{root / 'store.sqlite'}")
    try:
        rows = store.read_cost_daily(*MARCH, by=("day", "account", "basis"))
        billed_lines = bills_read(store)
    finally:
        store.close()
    allocated = {(r["day"].date(), r["account"]): Decimal(r["cost_micro_usd"]) / MILLION for r in rows
                 if r["basis"] == "billed"}
    assert allocated == billed_lines
    estimated = {(r["day"].date(), r["account"]) for r in rows if r["basis"] == "estimate"}
    unbilled_account, unbilled_day = UNBILLED
    assert estimated == {(MISSING_DAY, "contoso-aoai-eus"), (MISSING_DAY, "contoso-aoai-swc"),
                         (unbilled_day, unbilled_account)}


def bills_read(store: Store) -> dict[tuple[date, str], Decimal]:
    """The stored bill per day and account, each line rounded to the cent as the allocation rounds it."""
    per_line: dict[tuple[date, str, str], Decimal] = defaultdict(Decimal)
    for row in bills.read_lines(store, *MARCH):
        per_line[(row["day"].date(), row["account"], row["meter_id"])] += Decimal(row["billed_cost"])
    found: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for (day, account, _), cost in per_line.items():
        found[(day, account)] += cost.quantize(Decimal("0.01"))
    return dict(found)
