"""Pure: an attribution as FOCUS 1.2 cost-and-usage rows (every mandatory column filled), and their CSV writer.

Grain: one row per UTC day (clamped to the billing period), account, deployment, team, attribution method and
price id; the attribution's hourly lines are summed into it, so cost and tokens add up exactly to the attribution.

Each row says what it rests on in `x_CostBasis` and its ChargeDescription: `billed`, the invoice's cost (an imported
Cost Management export) allocated to teams by telemetry, exact to the cent per billed line; or `estimate`,
telemetry priced with the price book, for days and accounts no imported bill covers. A FinOps hub should load this
dataset next to the real bill (it splits the same cost by team), not add it to it. FOCUS 1.2 has no allocation
columns, so the allocation is told in x_ columns (x_Team, x_AttributionMethod, x_CostBasis).

Spec facts used (FinOps Open Cost and Usage Specification 1.2, https://focus.finops.org/focus-specification/v1-2/;
column files in github.com/FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec, specification/columns/*.md):
- Mandatory columns (feature level "Mandatory"): the 21 in `MANDATORY_COLUMNS`, alphabetical as the spec lists
  them. Not null: BilledCost, BillingAccountId, BillingCurrency, BillingPeriodStart/End, ChargeCategory,
  ChargePeriodStart/End, ContractedCost, EffectiveCost, ListCost, ServiceCategory, ServiceName, ProviderName,
  PublisherName, InvoiceIssuerName, BillingAccountName. ChargeDescription SHOULD NOT be null (we always fill it).
  ChargeClass is "Correction" only for corrections of a previously invoiced period and null otherwise, so it is
  empty here. PricingQuantity/PricingUnit must not be null when SkuPriceId is not null.
- ChargeCategory allowed values: Usage, Purchase, Tax, Credit, Adjustment. Token usage and provisioned hours are
  "Usage" ("charges based on the quantity of a service or resource that was consumed over a given period").
- Idle provisioned capacity is also "Usage": Azure bills a provisioned deployment per PTU-hour whether or not it
  is used, so the idle share is part of the hourly usage charge. CommitmentDiscountStatus "Unused" is for the
  unused part of a commitment discount (a reservation), which this price book does not model, so the commitment
  columns are left out; the idle share is marked by `x_AttributionMethod` = "idle" and its ChargeDescription.
- ServiceCategory allowed value "AI and Machine Learning". ChargeFrequency (recommended): "Usage-Based".
- PricingCategory "Standard": priced at the agreed rate for the billing account, negotiated discounts included.
- SkuPriceId: "If a provider does not have a SkuPriceId ... the SkuId MAY be used in the SkuPriceId column".
- DateTime format: ISO 8601 UTC, "YYYY-MM-DDTHH:mm:ssZ"; periods are [start, end): start inclusive, end exclusive.
- Custom columns are prefixed `x_`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO

from collector.cost.attribution import BILLED, IDLE, Attribution, CostLine, DeploymentInfo
from collector.cost.pricing import PROVISIONED_TYPES, PriceBook
from collector.csvcells import SafeDictWriter

FOCUS_VERSION = "1.2"

#: The FOCUS 1.2 columns with feature level "Mandatory", in the spec's (alphabetical) order.
MANDATORY_COLUMNS: tuple[str, ...] = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
)
#: Mandatory columns that must not be null (ChargeClass is null for anything but a correction).
NOT_NULL_COLUMNS: tuple[str, ...] = tuple(c for c in MANDATORY_COLUMNS if c != "ChargeClass")
#: Conditional and recommended columns whose conditions apply to Azure OpenAI usage, alphabetical.
CONDITIONAL_COLUMNS: tuple[str, ...] = (
    "ChargeFrequency",
    "ConsumedQuantity",
    "ConsumedUnit",
    "PricingCategory",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
)
#: Our allocation details (FOCUS custom columns carry the `x_` prefix).
CUSTOM_COLUMNS: tuple[str, ...] = (
    "x_Team",
    "x_AttributionMethod",
    "x_PriceId",
    "x_PriceSource",
    "x_Unpriced",
    "x_CostBasis",
    "x_Account",
    "x_Deployment",
    "x_Model",
    "x_DeploymentType",
    "x_Requests",
    "x_PromptTokens",
    "x_CachedTokens",
    "x_CompletionTokens",
)
COLUMNS: tuple[str, ...] = (*MANDATORY_COLUMNS, *CONDITIONAL_COLUMNS, *CUSTOM_COLUMNS)

TOKENS, PTU_HOURS = "Tokens", "PTU-Hours"
_DAY = timedelta(days=1)
_PTU_HOUR_QUANTUM = Decimal("0.000001")  # PTU-hours to the micro: a share of a cost in micro-USD


def price_sources(book: PriceBook) -> dict[str, str]:
    """Price id -> where the figure came from, for `x_PriceSource`."""
    return {row.id: row.source for row in book.rows}


def iso_utc(at: datetime) -> str:
    """FOCUS DateTime: ISO 8601 in UTC with a Z."""
    if at.tzinfo is None:
        raise ValueError(f"{at!r} has no time zone; FOCUS datetimes are UTC")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decimal_text(value: Decimal) -> str:
    """A Decimal as plain digits (no exponent), never through float."""
    return format(value.normalize() if value else Decimal(0), "f")


@dataclass
class _Charge:
    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal(0)
    unpriced: bool = False


def _day(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, at.day, tzinfo=UTC)


def focus_rows(
    attribution: Attribution,
    deployments: Mapping[tuple[str, str], DeploymentInfo] | Sequence[DeploymentInfo],
    *,
    billing_period_start: datetime,
    billing_period_end: datetime,
    billing_account_id: str,
    billing_account_name: str = "",
    sub_account_id: str = "",
    ptu_hour_rates: Mapping[str, Decimal] | None = None,
    sources: Mapping[str, str] | None = None,
    resource_ids: Mapping[tuple[str, str], str] | None = None,
    provider: str = "Microsoft",
    service_name: str = "Azure OpenAI",
    currency: str = "USD",
) -> list[dict[str, str]]:
    """FOCUS 1.2 rows for the lines of `attribution`, one per (UTC day, account, deployment, team, method, price).

    `deployments` is the inventory, keyed by (account, name) or as a sequence. `ptu_hour_rates` (price id -> USD
    per PTU-hour) turns a provisioned line's cost into its PTU-hours (PricingQuantity); `sources` (price id ->
    provenance, see `price_sources`) fills `x_PriceSource`; `resource_ids` ((account, deployment) -> Azure
    resource id) fills ResourceId, which otherwise is "account/deployments/name". Every line must fall in the
    billing period [start, end), or ValueError: an export must not silently drop cost.
    """
    if billing_period_start.tzinfo is None or billing_period_end.tzinfo is None:
        raise ValueError("the billing period must be timezone-aware (UTC)")
    if not billing_period_start < billing_period_end:
        raise ValueError(f"the billing period is empty: {billing_period_start} .. {billing_period_end}")
    if not billing_account_id:
        raise ValueError("BillingAccountId must not be empty")
    inventory = deployments if isinstance(deployments, Mapping) else {(d.account, d.name): d for d in deployments}
    outside = [x for x in attribution.lines if not billing_period_start <= x.bucket < billing_period_end]
    if outside:
        raise ValueError(f"{len(outside)} attributed line(s) fall outside the billing period "
                         f"{iso_utc(billing_period_start)} .. {iso_utc(billing_period_end)}, the first at "
                         f"{iso_utc(outside[0].bucket)}; attribute only the period being exported")
    charges: dict[tuple[datetime, str, str, str, str, str | None, str], _Charge] = {}
    for line in attribution.lines:
        key = (_day(line.bucket), line.account, line.deployment, line.team, line.method, line.price_id, line.basis)
        _add(charges.setdefault(key, _Charge()), line)
    rows = []
    for (day, account, name, team, method, price_id, basis), charge in sorted(
            charges.items(), key=lambda kv: (kv[0][:5], kv[0][5] or "", kv[0][6])):
        dep = inventory.get((account, name), DeploymentInfo(account, name, "", None, ""))
        start, end = max(day, billing_period_start), min(day + _DAY, billing_period_end)
        provisioned = dep.deployment_type in PROVISIONED_TYPES
        tokens = charge.prompt_tokens + charge.completion_tokens
        rate = (ptu_hour_rates or {}).get(price_id or "")
        if provisioned:
            pricing_unit = PTU_HOURS
            pricing_quantity = (charge.cost / rate).quantize(_PTU_HOUR_QUANTUM) if rate else Decimal(0)
        else:
            pricing_unit, pricing_quantity = TOKENS, Decimal(tokens)
        if method == IDLE:
            consumed_unit, consumed = PTU_HOURS, pricing_quantity
            what = "idle provisioned capacity (PTU-hours nobody used)"
        else:
            consumed_unit, consumed = TOKENS, Decimal(tokens)
            what = "provisioned capacity used" if provisioned else "tokens"
        sku_id = f"{dep.model or 'unknown-model'}/{dep.deployment_type or 'unknown-type'}"
        cost = decimal_text(charge.cost)
        rows.append({
            "BilledCost": cost,
            "BillingAccountId": billing_account_id,
            "BillingAccountName": billing_account_name or billing_account_id,
            "BillingCurrency": currency,
            "BillingPeriodEnd": iso_utc(billing_period_end),
            "BillingPeriodStart": iso_utc(billing_period_start),
            "ChargeCategory": "Usage",
            "ChargeClass": "",
            "ChargeDescription": (
                f"Azure OpenAI {what} on {account}/{name} ({sku_id}) attributed to {team} by {method}"
                f"{'; no price matched, priced at 0' if charge.unpriced else ''}. "
                + ("The invoice's cost (Cost Management export) allocated to teams by aoai-observatory."
                   if basis == BILLED else
                   "Estimate by aoai-observatory from telemetry and its price book, not the invoice.")),
            "ChargePeriodEnd": iso_utc(end),
            "ChargePeriodStart": iso_utc(start),
            "ContractedCost": cost,
            "EffectiveCost": cost,
            "InvoiceIssuerName": provider,
            "ListCost": cost,
            "PricingQuantity": decimal_text(pricing_quantity),
            "PricingUnit": pricing_unit,
            "ProviderName": provider,
            "PublisherName": provider,
            "ServiceCategory": "AI and Machine Learning",
            "ServiceName": service_name,
            "ChargeFrequency": "Usage-Based",
            "ConsumedQuantity": decimal_text(consumed),
            "ConsumedUnit": consumed_unit,
            "PricingCategory": "Standard",
            "RegionId": dep.region or "",
            "RegionName": dep.region or "",
            "ResourceId": (resource_ids or {}).get((account, name), f"{account}/deployments/{name}"),
            "ResourceName": name,
            "SkuId": sku_id,
            "SkuPriceId": price_id or sku_id,
            "SubAccountId": sub_account_id,
            "x_Team": team,
            "x_AttributionMethod": method,
            "x_PriceId": price_id or "",
            "x_PriceSource": (sources or {}).get(price_id or "", ""),
            "x_Unpriced": "true" if charge.unpriced else "false",
            "x_CostBasis": basis,
            "x_Account": account,
            "x_Deployment": name,
            "x_Model": dep.model,
            "x_DeploymentType": dep.deployment_type,
            "x_Requests": str(charge.requests),
            "x_PromptTokens": str(charge.prompt_tokens),
            "x_CachedTokens": str(charge.cached_tokens),
            "x_CompletionTokens": str(charge.completion_tokens),
        })
    return rows


def _add(charge: _Charge, line: CostLine) -> None:
    charge.requests += line.requests
    charge.prompt_tokens += line.prompt_tokens
    charge.cached_tokens += line.cached_tokens
    charge.completion_tokens += line.completion_tokens
    charge.cost += line.cost
    charge.unpriced = charge.unpriced or line.unpriced


SERVICE_CATEGORIES = ("AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases",
                      "Developer Tools", "Multicloud", "Identity", "Integration", "Internet of Things",
                      "Management and Governance", "Media", "Migration", "Mobile", "Networking", "Security",
                      "Storage", "Web", "Other")
CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
CHARGE_FREQUENCIES = ("One-Time", "Recurring", "Usage-Based")
PRICING_CATEGORIES = ("Standard", "Dynamic", "Committed", "Other")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_DECIMAL = re.compile(r"-?\d+(\.\d+)?")
_COST_COLUMNS = ("BilledCost", "ContractedCost", "EffectiveCost", "ListCost")


def check_rows(rows: Sequence[Mapping[str, str]]) -> list[str]:
    """The FOCUS 1.2 column requirements this dataset must meet, checked row by row; each problem names the row
    (1-based, after the header) and column. Empty list: valid. Written from the spec's column definitions."""
    problems: list[str] = []
    for n, row in enumerate(rows, start=1):
        def bad(column: str, what: str, n: int = n) -> None:
            problems.append(f"row {n}, {column}: {what}")

        for column in MANDATORY_COLUMNS:
            if column not in row:
                bad(column, "mandatory column missing")
        for column in NOT_NULL_COLUMNS:
            if column in row and row[column] == "":
                bad(column, "must not be null")
        for column in row:
            if column not in COLUMNS and not column.startswith("x_"):
                bad(column, "not a FOCUS column; custom columns need the x_ prefix")
        for column in ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"):
            if row.get(column) and not _DATETIME.fullmatch(row[column]):
                bad(column, f"{row[column]!r} is not ISO 8601 UTC (YYYY-MM-DDTHH:mm:ssZ)")
        for column in (*_COST_COLUMNS, "PricingQuantity", "ConsumedQuantity"):
            if row.get(column) and not _DECIMAL.fullmatch(row[column]):
                bad(column, f"{row[column]!r} is not a decimal number")
        if row.get("BillingCurrency") and not re.fullmatch(r"[A-Z]{3}", row["BillingCurrency"]):
            bad("BillingCurrency", "must be an ISO 4217 currency code")
        _allowed(row, "ChargeCategory", CHARGE_CATEGORIES, bad)
        _allowed(row, "ServiceCategory", SERVICE_CATEGORIES, bad)
        _allowed(row, "ChargeFrequency", CHARGE_FREQUENCIES, bad)
        _allowed(row, "PricingCategory", PRICING_CATEGORIES, bad)
        if row.get("ChargeClass") not in ("", "Correction", None):
            bad("ChargeClass", "null, or Correction for a correction of an invoiced period")
        if row.get("SkuPriceId") and not (row.get("PricingQuantity") and row.get("PricingUnit")):
            bad("PricingQuantity", "PricingQuantity and PricingUnit must not be null when SkuPriceId is not null")
        if row.get("ChargeCategory") == "Usage" and row.get("ChargeClass") != "Correction":
            for column in ("ConsumedQuantity", "ConsumedUnit"):
                if not row.get(column):
                    bad(column, "must not be null for usage that is not a correction")
        starts = [row.get(c, "") for c in ("BillingPeriodStart", "ChargePeriodStart", "ChargePeriodEnd",
                                           "BillingPeriodEnd")]
        if all(_DATETIME.fullmatch(v) for v in starts) and not (starts[0] <= starts[1] < starts[2] <= starts[3]):
            bad("ChargePeriodStart", "the charge period must be non-empty and inside the billing period")
    return problems


def _allowed(row: Mapping[str, str], column: str, values: Sequence[str], bad: Any) -> None:
    if row.get(column) and row[column] not in values:
        bad(column, f"{row[column]!r} is not one of {', '.join(values)}")


def write_focus_csv(rows: Iterable[Mapping[str, str]], stream: TextIO) -> int:
    """Write FOCUS rows as CSV in `COLUMNS` order (mandatory, conditional, then `x_`); returns the rows written.
    Null is the empty field; text a spreadsheet would run as a formula gets a leading `'` (`collector.csvcells`).
    Open the stream with newline="" as the csv module asks."""
    writer = SafeDictWriter(stream, fieldnames=COLUMNS, extrasaction="raise", lineterminator="\r\n")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count
