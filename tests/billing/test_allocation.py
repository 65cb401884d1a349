"""Allocation of billed lines to teams: exact sums, PTU idle, unallocated cost, basis and determinism."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.billing.allocation import (
    BILLED,
    ESTIMATE,
    IDLE,
    UNALLOCATED,
    AllocatedCost,
    BilledAmount,
    Driver,
    ProvisionedUse,
    allocate,
    currency_quantum,
    totals,
)
from collector.billing.meters import INPUT, OUTPUT, PTU_HOUR, MeterKey
from collector.cost.attribution import (
    AttributionRules,
    DeploymentInfo,
    ProvisionedHour,
    Rule,
    TokenUsage,
    attribute,
)
from collector.cost.pricing import PriceBook, PriceRow

DAY = date(2025, 5, 1)
IN = MeterKey("gpt-4o", "2024-11-20", "GlobalStandard", INPUT)
OUT = MeterKey("gpt-4o", "2024-11-20", "GlobalStandard", OUTPUT)
PTU = MeterKey("*", None, "GlobalProvisioned", PTU_HOUR)
CENT = Decimal("0.01")


def by_team(rows: tuple[AllocatedCost, ...]) -> dict[str, Decimal]:
    return totals(rows, lambda r: r.team)


# -- the property: every billed line is allocated exactly, whatever the telemetry -----------------------------------

days = st.sampled_from([DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)])
accounts = st.sampled_from(["acct-a", "ACCT-A", "acct-b"])  # the same account in two cases
meters = st.sampled_from([IN, OUT, PTU])
money = st.decimals(min_value=Decimal("-20"), max_value=Decimal("5000"), places=10, allow_nan=False)
amounts = st.decimals(min_value=Decimal(0), max_value=Decimal("1e7"), places=3, allow_nan=False)
bills = st.builds(BilledAmount, days, accounts, meters, amounts, money)
drivers = st.builds(Driver, days, accounts, meters, st.sampled_from(["red", "blue", "green", UNALLOCATED]),
                    st.sampled_from(["dep-1", "dep-2"]), st.sampled_from(["direct", "owner", "estimated"]),
                    st.integers(0, 10**7).map(Decimal), money.map(abs))
uses = st.builds(ProvisionedUse, days, accounts, st.just(PTU), st.sampled_from(["dep-1", "dep-2", "dep-3"]),
                 st.integers(0, 2400).map(Decimal),
                 st.none() | st.decimals(min_value=0, max_value=1, places=4, allow_nan=False), money.map(abs))


def line_key(x: BilledAmount | AllocatedCost) -> tuple[date, str, MeterKey]:
    return x.day, x.account.lower(), x.meter


@settings(max_examples=150, deadline=None)
@given(st.lists(bills, max_size=8), st.lists(drivers, max_size=25), st.lists(uses, max_size=6))
def test_allocated_cost_adds_up_to_each_billed_line_to_the_cent(
        billed: list[BilledAmount], found: list[Driver], held: list[ProvisionedUse]) -> None:
    result = allocate(billed, found, held)
    expected_cost: dict[tuple[date, str, MeterKey], Decimal] = defaultdict(Decimal)
    expected_quantity: dict[tuple[date, str, MeterKey], Decimal] = defaultdict(Decimal)
    for line in billed:
        expected_cost[line_key(line)] += line.cost
        expected_quantity[line_key(line)] += line.quantity
    billed_rows = [r for r in result.rows if r.basis == BILLED]
    assert totals(billed_rows, line_key) == {k: v.quantize(CENT) for k, v in expected_cost.items()}
    assert {k: v for k, v in totals_quantity(billed_rows).items()} == dict(expected_quantity)
    assert all(r.cost == r.cost.quantize(CENT) for r in result.rows)
    assert result.rounding == sum(v.quantize(CENT) - v for v in expected_cost.values())
    # A line is never split against its own sign (a credit is credited, a charge charged).
    for r in billed_rows:
        assert r.cost * expected_cost[line_key(r)] >= 0
    # The days the bill covers get billed figures only; the others, estimates only.
    assert {r.day for r in result.rows if r.basis == ESTIMATE}.isdisjoint({b.day for b in billed})
    # Deterministic: the order of the inputs does not matter.
    assert allocate(billed[::-1], found[::-1], held[::-1]) == result


def totals_quantity(rows: list[AllocatedCost]) -> dict[tuple[date, str, MeterKey], Decimal]:
    sums: dict[tuple[date, str, MeterKey], Decimal] = defaultdict(Decimal)
    for r in rows:
        sums[line_key(r)] += r.quantity
    return dict(sums)


# -- tokens ------------------------------------------------------------------------------------------------------


def test_a_shared_meter_is_split_by_the_drivers_of_every_deployment_on_the_account() -> None:
    drivers = [Driver(DAY, "acct-a", IN, "red", "dep-1", "direct", Decimal(300)),
               Driver(DAY, "acct-a", IN, "red", "dep-2", "direct", Decimal(100)),
               Driver(DAY, "acct-a", IN, "blue", "dep-2", "direct", Decimal(100)),
               Driver(DAY, "acct-b", IN, "blue", "dep-1", "direct", Decimal(10**6))]  # another account's meter
    result = allocate([BilledAmount(DAY, "acct-a", IN, Decimal(500), Decimal("10.00"))], drivers)
    assert by_team(result.rows) == {"red": Decimal("8.00"), "blue": Decimal("2.00")}
    assert totals(result.rows, lambda r: r.deployment) == {"dep-1": Decimal("6.00"), "dep-2": Decimal("4.00")}
    assert totals(result.rows, lambda r: r.basis) == {BILLED: Decimal("10.00")}
    assert sum(r.quantity for r in result.rows) == 500
    assert [d.account for d in result.unbilled] == ["acct-b"]


def test_ties_go_to_the_first_deployment_team_and_method_in_order() -> None:
    drivers = [Driver(DAY, "acct-a", IN, team, "dep-1", "direct", Decimal(1)) for team in ("c", "a", "b")]
    result = allocate([BilledAmount(DAY, "acct-a", IN, Decimal(3), Decimal("0.10"))], drivers)
    assert [(r.team, r.cost) for r in result.rows] == [("a", Decimal("0.04")), ("b", Decimal("0.03")),
                                                       ("c", Decimal("0.03"))]


def test_the_line_is_rounded_once_half_even_and_the_rounding_reported() -> None:
    drivers = [Driver(DAY, "acct-a", IN, t, "dep-1", "direct", Decimal(1)) for t in ("red", "blue")]
    result = allocate([BilledAmount(DAY, "acct-a", IN, Decimal(2), Decimal("0.125")),
                       BilledAmount(DAY, "acct-a", OUT, Decimal(2), Decimal("0.135"))], drivers)
    assert totals(result.rows, lambda r: r.meter) == {IN: Decimal("0.12"), OUT: Decimal("0.14")}
    assert result.rounding == Decimal("0.000")


def test_a_finer_quantum_keeps_the_exports_precision() -> None:
    drivers = [Driver(DAY, "acct-a", IN, t, "dep-1", "direct", Decimal(1)) for t in ("red", "blue", "green")]
    result = allocate([BilledAmount(DAY, "acct-a", IN, Decimal(3), Decimal("0.0123456789"))], drivers,
                      quantum=Decimal("1E-10"))
    assert sum(r.cost for r in result.rows) == Decimal("0.0123456789")
    assert result.rounding == 0


@pytest.mark.parametrize(("currency", "quantum"), [("USD", "0.01"), ("EUR", "0.01"), ("JPY", "1"), ("KWD", "0.001")])
def test_the_quantum_is_the_currencys_minor_unit(currency: str, quantum: str) -> None:
    assert currency_quantum(currency) == Decimal(quantum)
    drivers = [Driver(DAY, "acct-a", IN, t, "dep-1", "direct", Decimal(1)) for t in ("red", "blue", "green")]
    result = allocate([BilledAmount(DAY, "acct-a", IN, Decimal(3), Decimal("1000.4567"), currency)], drivers)
    assert sum(r.cost for r in result.rows) == Decimal("1000.4567").quantize(Decimal(quantum))
    assert all(r.currency == currency and r.cost == r.cost.quantize(Decimal(quantum)) for r in result.rows)


# -- no driver ---------------------------------------------------------------------------------------------------


def test_billed_cost_without_a_driver_is_unallocated_with_the_reason() -> None:
    drivers = [Driver(DAY, "acct-a", IN, "red", "dep-1", "direct", Decimal(5)),
               Driver(DAY + timedelta(days=1), "acct-b", IN, "red", "dep-1", "direct", Decimal(5)),
               Driver(DAY, "acct-d", OUT, "red", "dep-1", "direct", Decimal(0))]
    billed = [BilledAmount(DAY, "acct-a", OUT, Decimal(7), Decimal("1.50")),  # no output that day
              BilledAmount(DAY, "acct-b", IN, Decimal(7), Decimal("2.50")),  # no telemetry that day
              BilledAmount(DAY, "acct-c", IN, Decimal(7), Decimal("3.50")),  # never any telemetry
              BilledAmount(DAY, "acct-d", OUT, Decimal(7), Decimal("4.50"))]  # drivers with no tokens
    result = allocate(billed, drivers)
    unallocated = {r.account: r for r in result.rows if r.team == UNALLOCATED}
    assert set(unallocated) == {"acct-a", "acct-b", "acct-c", "acct-d"}
    assert all(r.method == UNALLOCATED and r.deployment == "" and r.basis == BILLED and r.quantity == 7
               for r in unallocated.values())
    assert "no gpt-4o 2024-11-20 GlobalStandard output usage" in unallocated["acct-a"].note
    assert "no telemetry from this account on 2025-05-01" in unallocated["acct-b"].note
    assert "no telemetry from this account at all" in unallocated["acct-c"].note
    assert unallocated["acct-d"].cost == Decimal("4.50")
    assert {r.team for r in result.rows} == {"red", UNALLOCATED}


# -- basis -------------------------------------------------------------------------------------------------------


def test_days_without_a_bill_are_estimates_and_unbilled_drivers_are_returned() -> None:
    later, uncovered = DAY + timedelta(days=1), DAY + timedelta(days=2)
    drivers = [Driver(DAY, "acct-a", IN, "red", "dep-1", "direct", Decimal(1000), Decimal("0.0025")),
               Driver(later, "acct-a", IN, "red", "dep-1", "direct", Decimal(1000), Decimal("0.0025")),
               Driver(uncovered, "acct-a", IN, "red", "dep-1", "direct", Decimal(3000), Decimal("1.234")),
               Driver(uncovered, "acct-a", IN, "blue", "dep-2", "owner", Decimal(1000), Decimal("2.000"))]
    result = allocate([BilledAmount(DAY, "acct-a", IN, Decimal(1000), Decimal("0.01"))], drivers,
                      billed_days=[DAY, later])
    assert [(r.day, r.team, r.basis, r.cost) for r in result.rows] == [
        (DAY, "red", BILLED, Decimal("0.01")),
        (uncovered, "red", ESTIMATE, Decimal("1.23")),
        (uncovered, "blue", ESTIMATE, Decimal("2.00")),
    ]
    assert [(r.quantity, r.method) for r in result.rows if r.basis == ESTIMATE] == [(Decimal(3000), "direct"),
                                                                                   (Decimal(1000), "owner")]
    assert [d.day for d in result.unbilled] == [later]


# -- provisioned -------------------------------------------------------------------------------------------------


def test_ptu_hours_go_to_teams_by_tokens_for_the_used_share_and_the_rest_is_idle() -> None:
    drivers = [Driver(DAY, "acct-a", PTU, "red", "dep-1", "direct", Decimal(300)),
               Driver(DAY, "acct-a", PTU, "blue", "dep-1", "direct", Decimal(100)),
               Driver(DAY, "acct-a", PTU, "blue", "dep-2", "direct", Decimal(50))]
    held = [ProvisionedUse(DAY, "acct-a", PTU, "dep-1", Decimal(1200), Decimal("0.6")),
            ProvisionedUse(DAY, "acct-a", PTU, "dep-2", Decimal(600), None),  # unknown: no idle, it served tokens
            ProvisionedUse(DAY, "acct-a", PTU, "dep-3", Decimal(600), Decimal("0.5"))]  # served nobody: all idle
    result = allocate([BilledAmount(DAY, "acct-a", PTU, Decimal(2400), Decimal("240.00"))], drivers, held)
    costs = totals(result.rows, lambda r: (r.deployment, r.team, r.method))
    assert costs == {("dep-1", "red", "direct"): Decimal("54.00"), ("dep-1", "blue", "direct"): Decimal("18.00"),
                     ("dep-1", IDLE, IDLE): Decimal("48.00"), ("dep-2", "blue", "direct"): Decimal("60.00"),
                     ("dep-3", IDLE, IDLE): Decimal("60.00")}
    hours = {(r.deployment, r.team): r.quantity for r in result.rows}
    assert hours[("dep-1", IDLE)] == Decimal(480) and sum(hours.values()) == 2400
    notes = {r.deployment: r.note for r in result.rows if r.team == IDLE}
    assert notes == {"dep-1": "unused provisioned capacity (mean utilisation 60.0%)",
                     "dep-3": "unused provisioned capacity (mean utilisation 50.0%)"}


def test_ptu_without_capacity_figures_is_split_by_tokens_and_nothing_is_idle() -> None:
    drivers = [Driver(DAY, "acct-a", PTU, "red", "dep-1", "direct", Decimal(3)),
               Driver(DAY, "acct-a", PTU, "blue", "dep-1", "direct", Decimal(1))]
    result = allocate([BilledAmount(DAY, "acct-a", PTU, Decimal(24), Decimal("24.00"))], drivers)
    assert by_team(result.rows) == {"red": Decimal("18.00"), "blue": Decimal("6.00")}
    assert all(r.note == "utilisation unknown: split by tokens, nothing idle" for r in result.rows)


def test_ptu_shares_match_what_attribution_estimates() -> None:
    """When the bill charges what the book estimates, allocation and `attribute` give each team the same."""
    start = datetime(2025, 5, 1, tzinfo=UTC)
    row = PriceRow("ptu", "*", None, "GlobalProvisioned", None, start, None, None, None, Decimal("2.00"), "test",
                   start.date())
    dep = DeploymentInfo("acct-a", "dep-1", "gpt-4o", "2024-11-20", "GlobalProvisioned", capacity=50)
    rules = AttributionRules((Rule("caller", "11111111-1111-1111-1111-111111111111", "red"),
                              Rule("caller", "22222222-2222-2222-2222-222222222222", "blue")))
    hours = [start + timedelta(hours=h) for h in range(24)]
    usage = [TokenUsage(h, "acct-a", "dep-1", caller, "", 1, prompt, 0, completion)
             for h in hours for caller, prompt, completion in (
                 ("11111111-1111-1111-1111-111111111111", 7000, 900),
                 ("22222222-2222-2222-2222-222222222222", 2500, 600))]
    utilisation = [ProvisionedHour(h, "acct-a", "dep-1", 60, Decimal("0.65")) for h in hours]
    estimate = attribute(PriceBook((row,)), rules, [dep], usage, provisioned_hours=utilisation)
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for line in estimate.lines:
        expected[line.team] += line.cost
    tokens: dict[str, int] = defaultdict(int)
    for line in estimate.lines:
        tokens[line.team] += line.prompt_tokens + line.completion_tokens
    drivers = [Driver(DAY, "acct-a", PTU, team, "dep-1", "direct", Decimal(n)) for team, n in tokens.items() if n]
    billed = BilledAmount(DAY, "acct-a", PTU, Decimal(50 * 24), sum(expected.values(), Decimal(0)))
    result = allocate([billed], drivers, [ProvisionedUse(DAY, "acct-a", PTU, "dep-1", Decimal(50 * 24),
                                                          Decimal("0.65"))])
    assert expected.keys() == {"red", "blue", IDLE}
    assert by_team(result.rows) == {team: cost.quantize(CENT) for team, cost in expected.items()}


def test_negative_drivers_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        allocate([], [Driver(DAY, "acct-a", IN, "red", "dep-1", "direct", Decimal(-1))])
