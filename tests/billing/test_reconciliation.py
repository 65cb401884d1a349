"""Reconciliation over a generated month of telemetry and bill, with discrepancies planted in it."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from collector.billing.meters import CACHED_INPUT, INPUT, OUTPUT, PTU_HOUR, MeterKey
from collector.billing.reconciliation import (
    BilledLine,
    BillPeriod,
    Cause,
    EstimatedLine,
    Gap,
    Reason,
    Reconciliation,
    reconcile,
)
from collector.billing.reconciliation_text import render_text
from collector.cost.pricing import load_price_book, price_for

MAY = [date(2025, 5, 1) + timedelta(days=i) for i in range(31)]
GPT4O = {k: MeterKey("gpt-4o", "2024-11-20", "GlobalStandard", k) for k in (INPUT, CACHED_INPUT, OUTPUT)}
MINI = {k: MeterKey("gpt-4o-mini", "2024-07-18", "GlobalStandard", k) for k in (INPUT, CACHED_INPUT, OUTPUT)}
PTU = MeterKey("*", None, "GlobalProvisioned", PTU_HOUR)
# Book prices per token: the community figures of azure-telemetry.md section 7 (USD per 1M / 1e6); the PTU-hour
# figure is a test figure, no public source gives one.
PER_TOKEN = {GPT4O[INPUT]: Decimal("2.50"), GPT4O[CACHED_INPUT]: Decimal("1.25"), GPT4O[OUTPUT]: Decimal("10.00"),
             MINI[INPUT]: Decimal("0.15"), MINI[CACHED_INPUT]: Decimal("0.075"), MINI[OUTPUT]: Decimal("0.60")}
BOOK = {m: p / Decimal(1_000_000) for m, p in PER_TOKEN.items()} | {PTU: Decimal("1.00")}
USES = {"acct-a": [*GPT4O.values(), *MINI.values()], "acct-b": [*GPT4O.values(), *MINI.values(), PTU],
        "acct-c": list(MINI.values())}
TELEMETRY = ("acct-a", "acct-b")  # acct-c has no diagnostic setting


@dataclass(frozen=True)
class Month:
    estimated: list[EstimatedLine]
    billed: list[BilledLine]
    periods: list[BillPeriod]

    def reconcile(self, threshold: str = "0.01") -> Reconciliation:
        return reconcile(self.estimated, self.billed, self.periods, TELEMETRY, threshold=Decimal(threshold))


def generate(seed: int = 7, *, discount: dict[tuple[str, MeterKey], Decimal] | None = None,
             billed_factor: dict[tuple[date, str, MeterKey], Decimal] | None = None,
             drop_days: tuple[date, ...] = (), drop_account_days: tuple[tuple[date, str], ...] = (),
             with_acct_c: bool = True) -> Month:
    """A month of true usage; telemetry sees it within +-0.1% each day, the bill sees it exactly (times any
    planted discount, with the export's ten decimal places)."""
    rng = random.Random(seed)
    estimated, billed = [], []
    for day in MAY:
        for account, meters in USES.items():
            for meter in meters:
                if meter.kind == PTU_HOUR:
                    true = Decimal(50 * 24)
                    seen = true
                else:
                    true = Decimal(rng.randint(200_000, 20_000_000))
                    seen = (true * (1 + Decimal(rng.uniform(-0.001, 0.001)))).to_integral_value()
                if account in TELEMETRY:
                    estimated.append(EstimatedLine(day, account, meter, seen, seen * BOOK[meter], BOOK[meter]))
                if account == "acct-c" and not with_acct_c:
                    continue
                if day in drop_days or (day, account) in drop_account_days:
                    continue
                quantity = true * (billed_factor or {}).get((day, account, meter), Decimal(1))
                price = BOOK[meter] * (discount or {}).get((account, meter), Decimal(1))
                billed.append(BilledLine(day, account.upper() if account == "acct-b" else account, meter, quantity,
                                         (quantity * price).quantize(Decimal("1E-10")), price))
    return Month(estimated, billed, [BillPeriod(MAY[0], MAY[-1])])


def cells(result: Reconciliation) -> dict[tuple[date, str, MeterKey], Gap]:
    return {(g.day, g.account, g.meter): g for g in result.gaps}


def assert_unplanted_within_half_a_percent(gaps: list[Gap]) -> None:
    assert gaps
    for g in gaps:
        assert g.cause is Cause.NONE, g
        assert g.gap_percent is not None and abs(g.gap_percent) <= Decimal("0.5"), g


def test_a_clean_month_reconciles_within_half_a_percent() -> None:
    result = generate(with_acct_c=False).reconcile()
    assert len(result.gaps) == 31 * (6 + 7)
    assert_unplanted_within_half_a_percent(list(result.gaps))
    assert not result.summary.exceeded
    assert result.overrides == ()


def test_each_planted_discrepancy_is_found_with_its_cause() -> None:
    missing, unbilled = MAY[11], MAY[19]
    month = generate(discount={("acct-a", GPT4O[INPUT]): Decimal("0.9")}, drop_days=(missing,),
                     drop_account_days=((unbilled, "acct-b"),))
    result = month.reconcile()
    found = cells(result)
    planted: set[tuple[date, str, MeterKey]] = set()

    discounted = [g for k, g in found.items() if k[1:] == ("acct-a", GPT4O[INPUT]) and k[0] != missing]
    assert len(discounted) == 30
    for g in discounted:
        assert (g.cause, g.reasons) == (Cause.PRICE, (Reason.DISCOUNT,)), g
        assert g.override is not None and g.override.describe() == \
            "rates on gpt-4o GlobalStandard for account acct-a: input 2.25 per 1M"
        assert g.gap_percent is not None and abs(g.gap_percent + 10) <= Decimal("0.5")
        planted.add((g.day, g.account, g.meter))

    export = [g for k, g in found.items() if k[0] == missing]
    assert {g.account for g in export} == {"acct-a", "acct-b"}  # acct-c sends no telemetry: nothing to miss
    for g in export:
        assert (g.cause, g.reasons) == (Cause.EXPORT, (Reason.MISSING_EXPORT_DAY,)), g
        assert g.billed_cost == 0 and g.estimated_cost > 0
        planted.add((g.day, g.account, g.meter))

    no_logs = [g for k, g in found.items() if k[1] == "acct-c"]
    assert len(no_logs) == 30 * 3
    for g in no_logs:
        assert (g.cause, g.reasons) == (Cause.QUANTITY, (Reason.NO_TELEMETRY_ACCOUNT,)), g
        assert g.estimated_cost == 0 and g.gap == g.billed_cost > 0
        planted.add((g.day, g.account, g.meter))

    not_billed = [g for k, g in found.items() if k[:2] == (unbilled, "acct-b")]
    assert len(not_billed) == 7
    for g in not_billed:
        assert (g.cause, g.reasons) == (Cause.QUANTITY, (Reason.NOT_BILLED,)), g
        planted.add((g.day, g.account, g.meter))

    assert_unplanted_within_half_a_percent([g for k, g in found.items() if k not in planted])
    assert result.summary.exceeded
    assert [o.describe() for o in result.overrides] == \
        ["rates on gpt-4o GlobalStandard for account acct-a: input 2.25 per 1M"]


def test_a_discount_on_every_kind_of_a_model_is_named_as_a_discount() -> None:
    month = generate(discount={("acct-a", m): Decimal("0.9") for m in GPT4O.values()}, with_acct_c=False)
    result = month.reconcile()
    assert [o.describe() for o in result.overrides] == ["a 10% discount on gpt-4o GlobalStandard for account acct-a"]
    for g in result.gaps:
        expected = Cause.PRICE if (g.account, g.meter) in {("acct-a", m) for m in GPT4O.values()} else Cause.NONE
        assert g.cause is expected, g


def test_the_same_discount_on_every_account_is_named_book_wide() -> None:
    month = generate(discount={(a, m): Decimal("0.85") for a in TELEMETRY for m in MINI.values()}, with_acct_c=False)
    assert [o.describe() for o in month.reconcile().overrides] == \
        ["a 15% discount on gpt-4o-mini GlobalStandard for every account (book-wide)"]


@pytest.mark.parametrize("rates", [False, True], ids=["discount", "rates"])
def test_the_suggested_override_makes_the_price_book_match_the_bill(tmp_path: Path, rates: bool) -> None:
    discounted = [GPT4O[INPUT]] if rates else list(GPT4O.values())
    month = generate(discount={("acct-a", m): Decimal("0.9") for m in discounted}, with_acct_c=False)
    (suggestion,) = month.reconcile().overrides
    book_file = tmp_path / "book.yaml"
    book_file.write_text("extends: default\noverrides:\n" + suggestion.yaml("test") + "\n")
    book = load_price_book(book_file)
    at = datetime(2025, 5, 15, tzinfo=UTC)
    row = price_for(book, "gpt-4o", "2024-11-20", "GlobalStandard", None, at, account="acct-a")
    base = price_for(load_price_book(tmp_path / "book.yaml"), "gpt-4o", "2024-11-20", "GlobalStandard", None, at,
                     account="acct-b")
    assert row is not None and base is not None and row.override and not base.override
    assert row.input is not None and base.input is not None and row.output is not None and base.output is not None
    # The shipped book's own gpt-4o rate is what the override applies to; the bill's ratio is 0.9 of OUR book.
    assert row.input == base.input * Decimal("0.9") if not rates else row.input == Decimal("2.25")
    assert row.output == (base.output if rates else base.output * Decimal("0.9"))


def test_price_and_quantity_gaps_at_once_are_told_apart() -> None:
    both, quantity_only = (MAY[4], "acct-a", GPT4O[INPUT]), (MAY[6], "acct-a", MINI[OUTPUT])
    month = generate(discount={("acct-a", GPT4O[INPUT]): Decimal("0.9")},
                     billed_factor={both: Decimal("1.2"), quantity_only: Decimal("1.2")}, with_acct_c=False)
    found = cells(month.reconcile())
    g = found[both]
    assert (g.cause, g.reasons) == (Cause.PRICE_AND_QUANTITY, (Reason.QUANTITY_DIFFERS, Reason.DISCOUNT))
    assert g.quantity_part + g.price_part == g.gap
    # Telemetry saw about 1/1.2 of the billed tokens; the bill's unit price is 90% of the book's.
    assert abs(g.quantity_part / (g.estimated_quantity * BOOK[GPT4O[INPUT]]) - Decimal("0.2")) < Decimal("0.002")
    assert abs(g.price_part / (g.billed_quantity * BOOK[GPT4O[INPUT]]) + Decimal("0.1")) < Decimal("0.002")
    assert g.override is not None and "input 2.25" in g.override.describe()
    q = found[quantity_only]
    assert (q.cause, q.reasons) == (Cause.QUANTITY, (Reason.QUANTITY_DIFFERS,))
    assert abs(q.price_part) < abs(q.quantity_part) / 100
    assert q.override is None


def test_a_price_off_on_one_day_only_is_not_a_discount() -> None:
    odd = (MAY[9], "acct-a", GPT4O[OUTPUT])
    month = generate(with_acct_c=False)
    month = replace(month, billed=[replace(b, cost=b.cost * Decimal("0.7")) if (b.day, b.account, b.meter) == odd
                                   else b for b in month.billed])
    result = month.reconcile()
    g = cells(result)[odd]
    assert (g.cause, g.reasons, g.override) == (Cause.PRICE, (Reason.PRICE_VARIES,), None)
    assert result.overrides == ()


def test_a_meter_the_book_does_not_price_gets_full_rates() -> None:
    month = generate(with_acct_c=False)
    unpriced = [replace(e, cost=Decimal(0), unit_price=None) if e.meter == PTU else e for e in month.estimated]
    result = reconcile(unpriced, month.billed, month.periods, TELEMETRY)
    ptu = [g for g in result.gaps if g.meter == PTU]
    assert len(ptu) == 31
    assert all((g.cause, g.reasons) == (Cause.PRICE, (Reason.UNPRICED,)) for g in ptu)
    assert [o.describe() for o in result.overrides] == \
        ["rates on GlobalProvisioned for account acct-b: ptu_hour 1 per PTU-hour"]


def test_trailing_days_not_yet_exported_are_an_export_gap_of_their_own() -> None:
    month = generate(drop_days=(MAY[29], MAY[30]), with_acct_c=False)
    found = cells(month.reconcile())
    late = [g for k, g in found.items() if k[0] in (MAY[29], MAY[30])]
    assert late and all((g.cause, g.reasons) == (Cause.EXPORT, (Reason.NOT_YET_EXPORTED,)) for g in late)


def test_estimates_outside_the_bills_period_are_not_reconciled() -> None:
    month = generate(with_acct_c=False)
    result = reconcile(month.estimated, [b for b in month.billed if b.day <= MAY[14]],
                       [BillPeriod(MAY[0], MAY[14])], TELEMETRY)
    assert {g.day for g in result.gaps} == set(MAY[:15])
    assert result.summary.estimate_outside_bill == sum(e.cost for e in month.estimated if e.day > MAY[14])
    assert not result.summary.exceeded


def test_a_day_without_telemetry_and_a_meter_telemetry_never_saw() -> None:
    month = generate(with_acct_c=False)
    gap_day = MAY[3]
    estimated = [e for e in month.estimated if not (e.day == gap_day and e.account == "acct-a")
                 and e.meter != MINI[CACHED_INPUT]]
    found = cells(reconcile(estimated, month.billed, month.periods, TELEMETRY))
    assert all(g.reasons == (Reason.NO_TELEMETRY_DAY,) for k, g in found.items() if k[:2] == (gap_day, "acct-a"))
    assert all(g.reasons == (Reason.NO_TELEMETRY_METER,) for k, g in found.items()
               if k[2] == MINI[CACHED_INPUT] and k[:2] != (gap_day, "acct-a"))


def test_cached_tokens_priced_as_input_are_recognised() -> None:
    month = generate(with_acct_c=False)
    cached = {(e.day, e.account): e.quantity for e in month.estimated if e.meter == GPT4O[CACHED_INPUT]}
    # Platform metrics have no cached count: telemetry puts every prompt token on the input meter.
    estimated = [replace(e, quantity=e.quantity + cached[(e.day, e.account)],
                         cost=(e.quantity + cached[(e.day, e.account)]) * BOOK[e.meter])
                 if e.meter == GPT4O[INPUT] else e for e in month.estimated if e.meter != GPT4O[CACHED_INPUT]]
    found = cells(reconcile(estimated, month.billed, month.periods, TELEMETRY))
    shifted = [g for k, g in found.items() if k[2] == GPT4O[CACHED_INPUT]]
    assert len(shifted) == 62 and all(g.reasons == (Reason.CACHED_AS_INPUT,) for g in shifted)
    assert all(g.cause is Cause.QUANTITY for k, g in found.items() if k[2] == GPT4O[INPUT])


def test_a_version_spelled_differently_is_the_same_meter() -> None:
    month = generate(with_acct_c=False)
    estimated = [replace(e, meter=replace(e.meter, version=None)) if e.meter.model == "gpt-4o" else e
                 for e in month.estimated]
    result = reconcile(estimated, month.billed, month.periods, TELEMETRY)
    assert_unplanted_within_half_a_percent(list(result.gaps))


def test_the_threshold_applies_to_the_months_gross_gap() -> None:
    # Opposite gaps on two meters: the net gap nearly cancels, the gross one does not.
    month = generate(discount={("acct-a", MINI[OUTPUT]): Decimal("0.8"), ("acct-b", MINI[OUTPUT]): Decimal("1.2")},
                     with_acct_c=False)
    result = month.reconcile()
    per_meter: dict[tuple[str, MeterKey], Decimal] = defaultdict(Decimal)
    for g in result.gaps:
        per_meter[(g.account, g.meter)] += g.gap
    gross = sum(abs(v) for v in per_meter.values())
    s = result.summary
    assert s.gross_gap == gross
    assert s.gross_percent is not None and s.net_percent is not None
    assert abs(s.net_percent) < s.gross_percent
    limit = s.gross_percent / 100
    assert month.reconcile(str(limit - Decimal("0.0001"))).summary.exceeded
    assert not month.reconcile(str(limit + Decimal("0.0001"))).summary.exceeded


def test_render_text_groups_by_cause_biggest_first_with_totals() -> None:
    month = generate(discount={("acct-a", GPT4O[INPUT]): Decimal("0.9")}, drop_days=(MAY[11],))
    result = month.reconcile()
    text = render_text(result, max_rows=5)
    headings = [line for line in text.splitlines() if line.endswith(")") is False and " gaps: " in line]
    assert [h.split()[0] for h in headings] == ["EXPORT", "QUANTITY", "PRICE"]
    for cause in (Cause.EXPORT, Cause.QUANTITY, Cause.PRICE):
        gaps = sorted((g for g in result.gaps if g.cause is cause), key=lambda g: -abs(g.gap))
        total = sum(g.gap for g in gaps)
        assert f"{cause.value.upper()} gaps: {len(gaps)} cell(s), {'-' if total < 0 else '+'}${abs(total):,.2f}" in text
        section = text.split(f"{cause.value.upper()} gaps:")[1].split("\n\n")[0]
        shown = [line for line in section.splitlines() if line.startswith("  20")]
        assert len(shown) == 5
        assert [line.split()[-2] for line in shown] == \
            [f"{'-' if g.gap < 0 else '+'}${abs(g.gap):,.2f}" for g in gaps[:5]]
        assert f"... and {len(gaps) - 5} more" in section
    assert "Threshold 1.00% of the estimate (gross gap): EXCEEDED" in text
    entry = yaml.safe_load(text.split("Price-book overrides that would close the price gaps:\n")[1].splitlines()[1]
                           .strip())
    assert entry == [{"scope": "account", "name": "acct-a", "model": "gpt-4o", "deployment_type": "GlobalStandard",
                      "input": 2.25, "source": "reconciliation with the bill, 2025-05-01..2025-05-31"}]


def test_noisy_telemetry_and_a_bill_rounded_to_cents_still_show_the_discount_and_only_it() -> None:
    rng = random.Random(3)
    family = {("acct-a", m): Decimal("0.93") for m in GPT4O.values()}
    month = generate(discount=family, with_acct_c=False)
    estimated = []
    for e in month.estimated:  # telemetry within +-3% each day
        seen = (e.quantity * Decimal(1 + rng.uniform(-0.03, 0.03))).to_integral_value()
        estimated.append(replace(e, quantity=seen, cost=seen * BOOK[e.meter]))
    billed = [replace(b, cost=b.cost.quantize(Decimal("0.01"))) for b in month.billed]
    result = reconcile(estimated, billed, month.periods, TELEMETRY)
    assert [o.describe() for o in result.overrides] == ["a 7% discount on gpt-4o GlobalStandard for account acct-a"]
    for g in result.gaps:
        if (g.account, g.meter) in family:
            assert g.cause in (Cause.PRICE, Cause.PRICE_AND_QUANTITY) and Reason.DISCOUNT in g.reasons, g
        else:
            assert g.cause in (Cause.NONE, Cause.QUANTITY), g
    # Daily noise cancels over the month: the gross gap is the discount's, give or take the noise.
    discount = sum((g.billed_cost - g.billed_quantity * BOOK[g.meter] for g in result.gaps
                    if (g.account, g.meter) in family), Decimal(0))
    assert abs(result.summary.gross_gap - abs(discount)) < Decimal("0.005") * result.summary.estimated_cost
