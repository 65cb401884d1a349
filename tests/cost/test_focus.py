"""FOCUS 1.2 export: mandatory columns filled, exact totals, dates in the billing period, CSV round trip."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from collector.cost.attribution import (
    Attribution,
    AttributionRules,
    CallerRequests,
    DeploymentInfo,
    DeploymentTokens,
    ProvisionedHour,
    Rule,
    TokenUsage,
    attribute,
)
from collector.cost.focus import (
    COLUMNS,
    CUSTOM_COLUMNS,
    MANDATORY_COLUMNS,
    NOT_NULL_COLUMNS,
    focus_rows,
    iso_utc,
    price_sources,
    write_focus_csv,
)
from collector.cost.pricing import PriceBook, PriceRow

D = Decimal
START, END = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)
H1, H2 = datetime(2025, 3, 4, 10, tzinfo=UTC), datetime(2025, 3, 4, 11, tzinfo=UTC)
H3 = datetime(2025, 3, 31, 23, tzinfo=UTC)


def _row(id_: str, model: str, dtype: str, input_: str | None = None, output: str | None = None,
         ptu: str | None = None) -> PriceRow:
    return PriceRow(id_, model, None, dtype, None, datetime(2024, 1, 1, tzinfo=UTC), D(input_) if input_ else None,
                    None, D(output) if output else None, D(ptu) if ptu else None, f"source of {id_}",
                    datetime(2025, 1, 1).date())


BOOK = PriceBook((_row("gpt-4o/gs", "gpt-4o", "GlobalStandard", "2.50", "10.00"),
                  _row("ptu/pm", "*", "ProvisionedManaged", ptu="1.00")))
SHARED = DeploymentInfo("acct", "shared", "gpt-4o", None, "GlobalStandard", region="eastus")
ESTIMATED = DeploymentInfo("acct", "est", "gpt-4o", None, "GlobalStandard", region="eastus")
PTU = DeploymentInfo("acct", "ptu", "gpt-4o", None, "ProvisionedManaged", region="swedencentral", capacity=10)
NOPRICE = DeploymentInfo("acct", "nano", "gpt-9-nano", None, "GlobalStandard")
DEPLOYMENTS = [SHARED, ESTIMATED, PTU, NOPRICE]
RULES = AttributionRules((Rule("caller", "oid-a", "team-a"), Rule("caller", "oid-b", "team-b")))


def _attribution() -> Attribution:
    usage = [TokenUsage(H1, "acct", "shared", "oid-a", "", 3, 10_000, 0, 1_000),  # direct
             TokenUsage(H2, "acct", "shared", "oid-a", "", 1, 1_000, 0, 100),  # same day: summed into one row
             TokenUsage(H1, "acct", "shared", "", "", 1, 0, 0, 100_000),  # unallocated
             TokenUsage(H1, "acct", "ptu", "oid-b", "", 2, 300, 0, 200),
             TokenUsage(H3, "acct", "nano", "oid-b", "", 1, 500, 0, 50)]  # unpriced, last hour of the month
    platform = [DeploymentTokens(H1, "acct", "est", 10, 9_000, 0, 3_000)]
    callers = [CallerRequests(H1, "acct", "est", "oid-a", 2), CallerRequests(H1, "acct", "est", "oid-b", 1)]
    hours = [ProvisionedHour(H1, "acct", "ptu", 60, D("0.25"))]
    return attribute(BOOK, RULES, DEPLOYMENTS, usage, platform, callers, hours)


def _rows(attribution: Attribution | None = None) -> list[dict[str, str]]:
    return focus_rows(attribution or _attribution(), DEPLOYMENTS, billing_period_start=START,
                      billing_period_end=END, billing_account_id="ea-1234", billing_account_name="Contoso EA",
                      sub_account_id="sub-1", ptu_hour_rates={"ptu/pm": D("1.00")}, sources=price_sources(BOOK))


def test_the_fixture_covers_every_method() -> None:
    methods = {r["x_AttributionMethod"] for r in _rows()}
    assert methods == {"direct", "estimated", "unallocated", "idle"}


def test_every_mandatory_column_is_present_and_not_null_where_the_spec_forbids_null() -> None:
    for row in _rows():
        assert list(row) == list(COLUMNS)
        assert set(MANDATORY_COLUMNS) <= set(row)
        assert [c for c in NOT_NULL_COLUMNS if not row[c]] == []
        assert row["ChargeClass"] == ""  # null unless the row corrects a previously invoiced period
        assert row["ChargeCategory"] == "Usage" and row["ServiceCategory"] == "AI and Machine Learning"
        assert row["SkuPriceId"] and row["PricingUnit"] and row["PricingQuantity"]  # PricingQuantity with SkuPriceId
        assert "not the invoice" in row["ChargeDescription"] and row["x_CostBasis"] == "estimate"
        assert all(c.startswith("x_") for c in CUSTOM_COLUMNS)


def test_costs_add_up_exactly_to_the_attribution_totals() -> None:
    attribution = _attribution()
    rows = _rows(attribution)
    total = sum((t.cost for t in attribution.totals), D(0))
    for column in ("BilledCost", "EffectiveCost", "ContractedCost", "ListCost"):
        assert sum((D(r[column]) for r in rows), D(0)) == total
    assert total == D("11.091")  # shared 0.0385 + 1.00, est 0.0525, PTU 10 x 1.00 x 1 h, unpriced 0
    per_deployment: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        per_deployment[r["x_Deployment"]] += D(r["BilledCost"])
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for t in attribution.totals:
        expected[t.deployment] += t.cost
    assert per_deployment == expected
    tokens = sum(int(r["x_PromptTokens"]) + int(r["x_CompletionTokens"]) for r in rows)
    assert tokens == sum(t.prompt_tokens + t.completion_tokens for t in attribution.totals)


def test_rows_by_method_carry_the_allocation_details() -> None:
    rows = {(r["x_Deployment"], r["x_Team"], r["x_AttributionMethod"]): r for r in _rows()}
    direct = rows[("shared", "team-a", "direct")]  # two hours, one day
    # 11,000 x 2.50 / 1e6 + 1,100 x 10.00 / 1e6 = 0.0275 + 0.011 = 0.0385
    assert (direct["BilledCost"], direct["ConsumedQuantity"], direct["ConsumedUnit"]) == ("0.0385", "12100", "Tokens")
    assert (direct["ChargePeriodStart"], direct["ChargePeriodEnd"]) == ("2025-03-04T00:00:00Z", "2025-03-05T00:00:00Z")
    assert (direct["x_PriceId"], direct["x_PriceSource"], direct["SkuPriceId"]) == ("gpt-4o/gs", "source of gpt-4o/gs",
                                                                                     "gpt-4o/gs")
    assert rows[("shared", "unallocated", "unallocated")]["BilledCost"] == "1"
    estimated = [r for k, r in rows.items() if k[0] == "est"]
    assert {r["x_Team"] for r in estimated} == {"team-a", "team-b"}
    idle = rows[("ptu", "idle", "idle")]
    # 10 PTU x 1 h at 25 % utilisation: 7.5 PTU-hours idle at 1.00 USD
    assert (idle["BilledCost"], idle["PricingQuantity"], idle["PricingUnit"], idle["ConsumedUnit"]) == \
        ("7.5", "7.5", "PTU-Hours", "PTU-Hours")
    assert idle["ChargeCategory"] == "Usage" and "idle provisioned capacity" in idle["ChargeDescription"]
    used = rows[("ptu", "team-b", "direct")]
    assert (used["BilledCost"], used["PricingQuantity"], used["ConsumedQuantity"]) == ("2.5", "2.5", "500")
    unpriced = rows[("nano", "team-b", "direct")]
    assert (unpriced["BilledCost"], unpriced["x_Unpriced"], unpriced["x_PriceId"]) == ("0", "true", "")
    assert unpriced["SkuPriceId"] == unpriced["SkuId"] == "gpt-9-nano/GlobalStandard"


def test_dates_are_iso_utc_and_fall_in_the_billing_period() -> None:
    for row in _rows():
        assert row["BillingPeriodStart"] == "2025-03-01T00:00:00Z" and row["BillingPeriodEnd"] == "2025-04-01T00:00:00Z"
        start = datetime.strptime(row["ChargePeriodStart"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        end = datetime.strptime(row["ChargePeriodEnd"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert START <= start < end <= END


def test_amounts_are_plain_decimals_never_floats_or_exponents() -> None:
    for row in _rows():
        for column in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "PricingQuantity",
                       "ConsumedQuantity"):
            assert "e" not in row[column].lower() and D(row[column]) >= 0


def test_csv_round_trips_with_the_documented_header() -> None:
    rows = _rows()
    stream = io.StringIO(newline="")
    assert write_focus_csv(rows, stream) == len(rows)
    stream.seek(0)
    reader = csv.DictReader(stream)
    assert tuple(reader.fieldnames or ()) == COLUMNS
    assert COLUMNS[: len(MANDATORY_COLUMNS)] == MANDATORY_COLUMNS
    assert [dict(r) for r in reader] == rows


def test_lines_outside_the_billing_period_are_refused_not_dropped() -> None:
    with pytest.raises(ValueError, match="outside the billing period"):
        focus_rows(_attribution(), DEPLOYMENTS, billing_period_start=datetime(2025, 2, 1, tzinfo=UTC),
                   billing_period_end=START, billing_account_id="ea-1234")


@pytest.mark.parametrize(
    ("start", "end", "account", "message"),
    [(END, START, "ea", "empty"), (datetime(2025, 3, 1), END, "ea", "timezone"), (START, END, "", "BillingAccountId")],
)
def test_bad_arguments_are_refused(start: datetime, end: datetime, account: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        focus_rows(_attribution(), DEPLOYMENTS, billing_period_start=start, billing_period_end=end,
                   billing_account_id=account)


def test_iso_utc_converts_and_refuses_naive_datetimes() -> None:
    from datetime import timedelta, timezone
    assert iso_utc(datetime(2025, 3, 1, 2, tzinfo=timezone(timedelta(hours=2)))) == "2025-03-01T00:00:00Z"
    with pytest.raises(ValueError):
        iso_utc(datetime(2025, 3, 1))
