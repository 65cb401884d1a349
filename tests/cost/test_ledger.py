"""The cost every surface reads: the bill allocated to teams where it covers an account's day (exact to the cent per
billed line), the estimate untouched elsewhere, requests and tokens always the telemetry's."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.billing.meters import MeterKey
from collector.billing.reconciliation import BilledLine, BillPeriod
from collector.cost.attribution import AttributionRules, DeploymentInfo
from collector.cost.ledger import BILL_PRICE, ledger_rows
from collector.cost.meter_lines import UNMAPPED, BillSide
from collector.cost.model import CostModel
from collector.cost.pricing import PriceBook, PriceRow

DAY0 = datetime(2026, 5, 1, tzinfo=UTC)
CENT = Decimal("0.01")
BOOK = PriceBook((
    PriceRow("gpt-4o", "gpt-4o", None, "GlobalStandard", None, datetime(2024, 1, 1, tzinfo=UTC), Decimal("2.50"),
             Decimal("1.25"), Decimal("10"), None, "test", date(2026, 1, 1)),
    PriceRow("ptu", "*", None, "ProvisionedManaged", None, datetime(2024, 1, 1, tzinfo=UTC), None, None, None,
             Decimal("1"), "test", date(2026, 1, 1)),
))
DEPLOYMENTS = (
    DeploymentInfo("acct-a", "chat", "gpt-4o", "2024-11-20", "GlobalStandard"),
    DeploymentInfo("acct-a", "ptu", "gpt-4o", "2024-08-06", "ProvisionedManaged", capacity=50),
    DeploymentInfo("acct-b", "chat", "gpt-4o", "2024-11-20", "GlobalStandard"),
)
MODEL = CostModel(BOOK, AttributionRules(), DEPLOYMENTS)
METERS = [MeterKey("gpt-4o", "2024-11-20", "GlobalStandard", k) for k in ("input", "cached_input", "output")] + [
    MeterKey("*", None, "ProvisionedManaged", "ptu_hour"), MeterKey(UNMAPPED + "Az-Speech", None, "", "")]


@st.composite
def estimates(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows = []
    for day in range(draw(st.integers(1, 3))):
        for account, deployment in (("acct-a", "chat"), ("acct-a", "ptu"), ("acct-b", "chat")):
            for team, method in draw(st.lists(st.sampled_from([("search", "direct"), ("ads", "owner"),
                                                               ("unallocated", "unallocated"), ("idle", "idle")]),
                                              max_size=3, unique=True)):
                prompt = draw(st.integers(0, 10**7))
                cached = draw(st.integers(0, prompt))
                rows.append({"day": DAY0 + timedelta(days=day), "account": account, "deployment": deployment,
                             "team": team, "method": method, "price_id": "ptu" if deployment == "ptu" else "gpt-4o",
                             "requests": draw(st.integers(0, 1000)), "prompt_tokens": prompt, "cached_tokens": cached,
                             "completion_tokens": draw(st.integers(0, 10**6)),
                             "cost_micro_usd": draw(st.integers(0, 10**9)), "unpriced": 0})
    return rows


@st.composite
def bills(draw: st.DrawFn) -> BillSide:
    lines = [BilledLine((DAY0 + timedelta(days=draw(st.integers(0, 2)))).date(), draw(st.sampled_from(
        ["acct-a", "ACCT-B", "acct-c"])), draw(st.sampled_from(METERS)), Decimal(draw(st.integers(0, 10**7))),
        Decimal(draw(st.integers(-10**6, 10**9))) / Decimal(10**6)) for _ in range(draw(st.integers(0, 12)))]
    return BillSide(tuple(lines), (BillPeriod(DAY0.date(), (DAY0 + timedelta(days=2)).date()),),
                    frozenset({"USD"} if lines else set()))


def _per_pair(rows: list[dict[str, Any]], measure: str) -> dict[tuple[date, str], int]:
    sums: dict[tuple[date, str], int] = defaultdict(int)
    for row in rows:
        sums[(row["day"].date(), row["account"].lower())] += row[measure]
    return dict(sums)


@settings(max_examples=150, deadline=None)
@given(estimates(), bills())
def test_billed_days_add_up_to_the_bill_to_the_cent_and_the_rest_stays_the_estimate(
        estimate: list[dict[str, Any]], bill: BillSide) -> None:
    rows = ledger_rows(estimate, bill, MODEL)
    billed_pairs = {(b.day, b.account.lower()) for b in bill.lines}
    # Each billed line (summed per account, meter and day) is rounded once to the cent and allocated in whole cents.
    expected: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    per_meter: dict[tuple[date, str, MeterKey], Decimal] = defaultdict(Decimal)
    for b in bill.lines:
        per_meter[(b.day, b.account.lower(), b.meter)] += b.cost
    for (day, account, _), cost in per_meter.items():
        expected[(day, account)] += cost.quantize(CENT, rounding=ROUND_HALF_EVEN)
    billed = [r for r in rows if r["basis"] == "billed"]
    got = _per_pair(billed, "cost_micro_usd")
    assert {k: Decimal(v) / 10**6 for k, v in got.items() if k in billed_pairs} == {
        k: v for k, v in expected.items()} | {k: Decimal(0) for k in got if k not in expected}
    assert all(r["cost_micro_usd"] % 10**4 == 0 and r["price_id"] == BILL_PRICE for r in billed)
    # Elsewhere the estimate as it was, row for row.
    kept = [r for r in rows if r["basis"] == "estimate"]
    assert sorted(map(repr, kept)) == sorted(repr({**r, "basis": "estimate"}) for r in estimate
                                             if (r["day"].date(), r["account"]) not in billed_pairs)
    # Requests and tokens are the telemetry's, whatever the basis.
    for measure in ("requests", "prompt_tokens", "cached_tokens", "completion_tokens"):
        assert {k: v for k, v in _per_pair(rows, measure).items() if v} == {
            k: v for k, v in _per_pair(estimate, measure).items() if v}


def test_a_line_no_telemetry_explains_is_unallocated_and_the_discount_reaches_every_team() -> None:
    estimate = [
        {"day": DAY0, "account": "acct-a", "deployment": "chat", "team": team, "method": "direct",
         "price_id": "gpt-4o", "requests": 10, "prompt_tokens": tokens, "cached_tokens": 0, "completion_tokens": 0,
         "cost_micro_usd": tokens * 25 // 10, "unpriced": 0} for team, tokens in (("search", 3_000_000),
                                                                                   ("ads", 1_000_000))]
    # The bill: the input meter at a 10% discount (4M tokens x $2.25 per 1M), and a meter telemetry never saw.
    lines = (BilledLine(DAY0.date(), "acct-a", METERS[0], Decimal(4_000_000), Decimal("9.00")),
             BilledLine(DAY0.date(), "acct-a", METERS[4], Decimal(5), Decimal("1.234")))
    rows = ledger_rows(estimate, BillSide(lines, (BillPeriod(DAY0.date(), DAY0.date()),), frozenset({"USD"})),
                       MODEL)
    cost = {(r["team"], r["deployment"]): Decimal(r["cost_micro_usd"]) / 10**6 for r in rows}
    assert cost == {("search", "chat"): Decimal("6.75"), ("ads", "chat"): Decimal("2.25"),
                    ("unallocated", ""): Decimal("1.23")}
    assert {r["basis"] for r in rows} == {"billed"}


def test_a_bill_in_another_currency_leaves_the_estimate() -> None:
    estimate = [{"day": DAY0, "account": "acct-a", "deployment": "chat", "team": "search", "method": "direct",
                 "price_id": "gpt-4o", "requests": 1, "prompt_tokens": 100, "cached_tokens": 0,
                 "completion_tokens": 0, "cost_micro_usd": 250, "unpriced": 0}]
    bill = BillSide((BilledLine(DAY0.date(), "acct-a", METERS[0], Decimal(100), Decimal("0.01")),),
                    (BillPeriod(DAY0.date(), DAY0.date()),), frozenset({"EUR"}))
    assert ledger_rows(estimate, bill, MODEL) == [{**estimate[0], "basis": "estimate"}]
