"""Realistic Cost Management exports for tests and the benchmark: FOCUS and legacy EA/MCA files in run folders.

Column lists: FOCUS from finops-toolkit src/open-data/dataset-metadata/FocusCost_1.0.json and
FocusCost_1.2-preview.json; EA from azure-docs cost-management-billing/dataset-schema/cost-usage-details-ea.md
(version 2024-08-01); MCA from cost-usage-details-mca.md (version 2023-12-01-preview). Layout and manifest as in
finops-toolkit docs-mslearn/toolkit/hubs/data-processing.md. Meter names as in azure-telemetry.md section 9.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

FOCUS_1_0 = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingAccountType", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency",
    "ChargePeriodEnd", "ChargePeriodStart", "CommitmentDiscountCategory", "CommitmentDiscountId",
    "CommitmentDiscountName", "CommitmentDiscountStatus", "CommitmentDiscountType", "ConsumedQuantity",
    "ConsumedUnit", "ContractedCost", "ContractedUnitPrice", "EffectiveCost", "InvoiceIssuerName", "ListCost",
    "ListUnitPrice", "PricingCategory", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "RegionId",
    "RegionName", "ResourceId", "ResourceName", "ResourceType", "ServiceCategory", "ServiceName", "SkuId",
    "SkuPriceId", "SubAccountId", "SubAccountName", "SubAccountType", "Tags", "x_AccountId", "x_AccountName",
    "x_AccountOwnerId", "x_BilledCostInUsd", "x_BilledUnitPrice", "x_BillingAccountId", "x_BillingAccountName",
    "x_BillingExchangeRate", "x_BillingExchangeRateDate", "x_BillingProfileId", "x_BillingProfileName",
    "x_ContractedCostInUsd", "x_CostAllocationRuleName", "x_CostCenter", "x_CustomerId", "x_CustomerName",
    "x_EffectiveCostInUsd", "x_EffectiveUnitPrice", "x_InvoiceId", "x_InvoiceIssuerId", "x_InvoiceSectionId",
    "x_InvoiceSectionName", "x_ListCostInUsd", "x_PartnerCreditApplied", "x_PartnerCreditRate", "x_PricingBlockSize",
    "x_PricingCurrency", "x_PricingSubcategory", "x_PricingUnitDescription", "x_PublisherCategory", "x_PublisherId",
    "x_ResellerId", "x_ResellerName", "x_ResourceGroupName", "x_ResourceType", "x_ServicePeriodEnd",
    "x_ServicePeriodStart", "x_SkuDescription", "x_SkuDetails", "x_SkuIsCreditEligible", "x_SkuMeterCategory",
    "x_SkuMeterId", "x_SkuMeterName", "x_SkuMeterSubcategory", "x_SkuOfferId", "x_SkuOrderId", "x_SkuOrderName",
    "x_SkuPartNumber", "x_SkuRegion", "x_SkuServiceFamily", "x_SkuTerm", "x_SkuTier")
FOCUS_1_2 = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingAccountType", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "CapacityReservationId", "CapacityReservationStatus", "ChargeCategory",
    "ChargeClass", "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
    "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName", "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus", "CommitmentDiscountType", "CommitmentDiscountUnit", "ConsumedQuantity",
    "ConsumedUnit", "ContractedCost", "ContractedUnitPrice", "EffectiveCost", "InvoiceId", "InvoiceIssuerName",
    "ListCost", "ListUnitPrice", "PricingCategory", "PricingCurrency", "PricingQuantity", "PricingUnit",
    "ProviderName", "PublisherName", "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType",
    "ServiceCategory", "ServiceName", "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceDetails", "SkuPriceId",
    "SubAccountId", "SubAccountName", "SubAccountType", "Tags", "x_AccountId", "x_AccountName", "x_AccountOwnerId",
    "x_AmortizationClass", "x_BilledCostInUsd", "x_BilledUnitPrice", "x_BillingAccountId", "x_BillingAccountName",
    "x_BillingExchangeRate", "x_BillingExchangeRateDate", "x_BillingProfileId", "x_BillingProfileName",
    "x_ContractedCostInUsd", "x_CostAllocationRuleName", "x_CostCenter", "x_CustomerId", "x_CustomerName",
    "x_EffectiveCostInUsd", "x_EffectiveUnitPrice", "x_InvoiceIssuerId", "x_InvoiceSectionId", "x_InvoiceSectionName",
    "x_ListCostInUsd", "x_PartnerCreditApplied", "x_PartnerCreditRate", "x_PricingBlockSize", "x_PricingSubcategory",
    "x_PricingUnitDescription", "x_PublisherCategory", "x_PublisherId", "x_ResellerId", "x_ResellerName",
    "x_ResourceGroupName", "x_ResourceType", "x_ServiceModel", "x_ServicePeriodEnd", "x_ServicePeriodStart",
    "x_SkuDescription", "x_SkuDetails", "x_SkuIsCreditEligible", "x_SkuMeterCategory", "x_SkuMeterId",
    "x_SkuMeterName", "x_SkuMeterSubcategory", "x_SkuOfferId", "x_SkuOrderId", "x_SkuOrderName", "x_SkuPartNumber",
    "x_SkuPlanName", "x_SkuRegion", "x_SkuServiceFamily", "x_SkuTerm", "x_SkuTier")
EA = ("InvoiceSectionName", "AccountName", "AccountOwnerId", "SubscriptionId", "SubscriptionName", "ResourceGroup",
      "ResourceLocation", "Date", "ProductName", "MeterCategory", "MeterSubCategory", "MeterId", "MeterName",
      "MeterRegion", "UnitOfMeasure", "Quantity", "EffectivePrice", "CostInBillingCurrency", "CostCenter",
      "ConsumedService", "ResourceId", "Tags", "OfferId", "AdditionalInfo", "ServiceInfo1", "ServiceInfo2",
      "ResourceName", "ReservationId", "ReservationName", "UnitPrice", "ProductOrderId", "ProductOrderName", "Term",
      "PublisherType", "PublisherName", "ChargeType", "Frequency", "PricingModel", "AvailabilityZone",
      "BillingAccountId", "BillingAccountName", "BillingCurrencyCode", "BillingPeriodStartDate",
      "BillingPeriodEndDate", "BillingProfileId", "BillingProfileName", "InvoiceSectionId", "IsAzureCreditEligible",
      "PartNumber", "PayGPrice", "PlanName", "ServiceFamily", "CostAllocationRuleName", "benefitId", "benefitName",
      "AccountId", "ResourceLocationNormalized")
MCA = ("invoiceId", "previousInvoiceId", "billingAccountId", "billingAccountName", "billingProfileId",
       "billingProfileName", "invoiceSectionId", "invoiceSectionName", "resellerName", "resellerMpnId", "costCenter",
       "billingPeriodEndDate", "billingPeriodStartDate", "servicePeriodEndDate", "servicePeriodStartDate", "date",
       "serviceFamily", "productOrderId", "productOrderName", "consumedService", "meterId", "meterName",
       "meterCategory", "meterSubCategory", "meterRegion", "ProductId", "ProductName", "SubscriptionId",
       "subscriptionName", "publisherType", "publisherId", "publisherName", "resourceGroupName", "ResourceId",
       "resourceLocation", "location", "effectivePrice", "quantity", "unitOfMeasure", "chargeType", "billingCurrency",
       "pricingCurrency", "costInBillingCurrency", "costInPricingCurrency", "costInUsd", "paygCostInBillingCurrency",
       "paygCostInUsd", "exchangeRatePricingToBilling", "exchangeRateDate", "isAzureCreditEligible", "serviceInfo1",
       "serviceInfo2", "additionalInfo", "tags", "PayGPrice", "frequency", "term", "reservationId", "reservationName",
       "pricingModel", "unitPrice", "costAllocationRuleName", "benefitId", "benefitName", "provider")


@dataclass(frozen=True)
class Meter:
    name: str
    meter_id: str
    subcategory: str
    unit: str  # UnitOfMeasure: "1K" (tokens) or "1 Hour" (provisioned units)
    price: Decimal  # per unit of measure
    block: int


METERS = tuple(Meter(name, f"{i:08x}-0000-4000-8000-{i * 7919:012x}", sub, unit, Decimal(price), block)
               for i, (name, sub, unit, price, block) in enumerate([
                   ("gpt 4o 1120 Inp glbl Tokens", "gpt 4o", "1K", "0.0025", 1000),
                   ("gpt 4o 1120 cached Inp glbl Tokens", "gpt 4o", "1K", "0.00125", 1000),
                   ("gpt 4o 1120 Outp glbl Tokens", "gpt 4o", "1K", "0.01", 1000),
                   ("gpt-4o-mini-0718-Inp-glbl Tokens", "gpt 4o mini", "1K", "0.000165", 1000),
                   ("gpt-4o-mini-0718-Outp-glbl Tokens", "gpt 4o mini", "1K", "0.00066", 1000),
                   ("gpt 4.1 Inp Data Zone Tokens", "gpt 4.1", "1K", "0.0022", 1000),
                   ("gpt 4.1 Outp Data Zone Tokens", "gpt 4.1", "1K", "0.0088", 1000),
                   ("gpt 4.1 mini Inp regnl Tokens", "gpt 4.1 mini", "1K", "0.00044", 1000),
                   ("gpt 4.1 mini Outp regnl Tokens", "gpt 4.1 mini", "1K", "0.00176", 1000),
                   ("o3 mini 0131 Inp glbl Batch Tokens", "o3 mini", "1K", "0.00055", 1000),
                   ("Az-Text-Embedding-3-Large Tokens", "embeddings", "1K", "0.00013", 1000),
                   ("Provisioned Managed Global Unit", "provisioned managed", "1 Hour", "1", 1),
               ], start=1))
OTHER = (("Storage", "Tables", "LRS Data Stored", "1 GB/Month", "Microsoft.Storage/storageAccounts", "stlogs"),
         ("Virtual Machines", "Dv5 Series", "D4s v5", "1 Hour", "Microsoft.Compute/virtualMachines", "vm-app"),
         ("Cognitive Services", "Speech", "S1 Speech To Text", "1 Hour", "Microsoft.CognitiveServices/accounts",
          "speech-eus"))


@dataclass(frozen=True)
class Usage:
    """The truth a generated export is made from: tokens (or hours) of one account's meter on one day."""

    day: date
    account_id: str  # with Azure's mixed case
    meter: Meter
    quantity: int

    @property
    def cost(self) -> Decimal:
        return self.meter.price * self.quantity / self.meter.block


def account_ids(count: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    subs = [f"{rnd.getrandbits(32):08x}-{rnd.getrandbits(16):04x}-4{rnd.getrandbits(12):03x}-a{rnd.getrandbits(12):03x}"
            f"-{rnd.getrandbits(48):012x}" for _ in range(max(1, count // 20 + 1))]
    return [f"/subscriptions/{subs[i % len(subs)]}/resourceGroups/RG-AI-Prod-{i % 4}/providers/"
            f"Microsoft.CognitiveServices/accounts/AOAI-EastUS-{i:03d}" for i in range(count)]


def usages(accounts: Sequence[str], days: Iterable[date], meters_per_account: int = 6, seed: int = 1) -> list[Usage]:
    rnd = random.Random(seed)
    chosen = {a: rnd.sample(METERS, min(meters_per_account, len(METERS))) for a in accounts}
    return [Usage(d, a, m, 24 if m.block == 1 else rnd.randrange(1_000, 50_000_000))
            for d in days for a in accounts for m in chosen[a]]


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")


def focus_rows(items: Iterable[Usage], version: str = "1.0", others: int = 1) -> Iterator[dict[str, str]]:
    """FOCUS rows: ids lower-cased as FOCUS exports often write them, other services' lines mixed in."""
    seconds = ":00" if version != "1.0" else ""
    for u in items:
        start = f"{u.day.isoformat()}T00:00{seconds}Z"
        cost, qty = _num(u.cost), u.quantity
        row = {"ChargePeriodStart": start, "ChargePeriodEnd": start, "BillingCurrency": "USD",
               "ChargeCategory": "Usage", "ChargeClass": "", "ChargeFrequency": "Usage-Based",
               "PricingCategory": "Standard", "ResourceId": u.account_id.lower(),
               "ResourceName": u.account_id.rsplit("/", 1)[-1].lower(),
               "ResourceType": "Azure AI services multi-service account", "x_ResourceType":
               "microsoft.cognitiveservices/accounts", "ServiceName": "Azure AI Services",
               "ServiceCategory": "AI and Machine Learning", "x_SkuMeterCategory": "Azure OpenAI",
               "x_SkuMeterSubcategory": u.meter.subcategory, "x_SkuMeterName": u.meter.name,
               "SkuMeter": u.meter.name, "x_SkuMeterId": u.meter.meter_id, "ChargeDescription":
               f"Azure OpenAI - {u.meter.name}", "ConsumedQuantity": str(qty), "ConsumedUnit":
               "Units" if u.meter.block > 1 else "Hours", "PricingQuantity": _num(Decimal(qty) / u.meter.block),
               "PricingUnit": "Units" if u.meter.block > 1 else "Hours", "x_PricingBlockSize": str(u.meter.block),
               "x_PricingUnitDescription": u.meter.unit, "BilledCost": cost, "EffectiveCost": cost,
               "ContractedCost": cost, "ListCost": cost, "ContractedUnitPrice": _num(u.meter.price),
               "ListUnitPrice": _num(u.meter.price), "x_EffectiveUnitPrice": _num(u.meter.price),
               "Tags": '{"team":"search, ranking","env":"prod"}', "RegionId": "eastus", "RegionName": "East US",
               "ProviderName": "Microsoft", "PublisherName": "Microsoft", "x_BillingExchangeRate": "1",
               **_billing_columns(u)}
        yield row
        for k in range(others):
            cat, sub, name, unit, rtype, rname = OTHER[(u.quantity + k) % len(OTHER)]
            rid = u.account_id.rsplit("/providers/", 1)[0] + f"/providers/{rtype}/{rname}-{k}"
            yield {**row, "ResourceId": rid.lower(), "x_SkuMeterCategory": cat, "x_SkuMeterSubcategory": sub,
                   "x_SkuMeterName": name, "SkuMeter": name, "ChargeDescription": f"{cat} - {name}",
                   "ServiceName": "Storage Accounts" if cat == "Storage" else cat, "x_PricingUnitDescription": unit,
                   "x_PricingBlockSize": "1", "x_SkuMeterId": f"{k:08x}-1111-4111-8111-000000000000"}


def _billing_columns(u: Usage) -> dict[str, str]:
    """The columns a real FOCUS row fills besides the ones the reader uses (they make up most of a file's bytes)."""
    sub = u.account_id.split("/")[2]
    month = u.day.replace(day=1)
    nxt = (month.replace(year=month.year + 1, month=1) if month.month == 12 else month.replace(month=month.month + 1))
    cost = _num(u.cost)
    return {
        "BillingAccountId": "/providers/Microsoft.Billing/billingAccounts/12345678", "BillingAccountName": "Contoso",
        "BillingAccountType": "Billing Profile", "BillingPeriodStart": f"{month.isoformat()}T00:00Z",
        "BillingPeriodEnd": f"{nxt.isoformat()}T00:00Z", "SubAccountId": f"/subscriptions/{sub}",
        "SubAccountName": f"ai-platform-{sub[:4]}", "SubAccountType": "Subscription", "InvoiceIssuerName": "Microsoft",
        "SkuId": f"DZH318Z0{u.meter.meter_id[:4].upper()}/000{u.meter.block % 7}",
        "SkuPriceId": f"DZH318Z0{u.meter.meter_id[:4].upper()}/0001/{u.meter.meter_id}",
        "x_AccountName": "AI Platform", "x_BilledCostInUsd": cost, "x_EffectiveCostInUsd": cost,
        "x_ListCostInUsd": cost, "x_ContractedCostInUsd": cost, "x_BillingProfileId": "/providers/Microsoft.Billing/"
        "billingAccounts/12345678/billingProfiles/ABCD-EFGH-IJK-LMN", "x_BillingProfileName": "Contoso Engineering",
        "x_InvoiceSectionId": "/providers/Microsoft.Billing/billingAccounts/12345678/billingProfiles/ABCD-EFGH-IJK-LMN/"
        "invoiceSections/QRST-UVW", "x_InvoiceSectionName": "AI Platform", "x_PricingCurrency": "USD",
        "x_ResourceGroupName": u.account_id.split("/")[4].lower(), "x_SkuDescription": u.meter.name,
        "x_SkuRegion": "Global", "x_SkuServiceFamily": "AI + Machine Learning", "x_SkuIsCreditEligible": "true",
        "x_SkuPartNumber": f"AAH-{u.meter.meter_id[:5].upper()}", "x_PublisherCategory": "Cloud Provider",
        "x_ServicePeriodStart": f"{u.day.isoformat()}T00:00Z", "x_SkuDetails": '{"DeploymentType":"Global"}',
        "x_BillingExchangeRateDate": f"{month.isoformat()}T00:00Z", "x_SkuTerm": "", "x_SkuTier": "Standard",
    }


def legacy_rows(items: Iterable[Usage], flavor: str = "ea", amortized: bool = False, quantity_counts: str = "blocks",
                others: int = 1) -> Iterator[dict[str, str]]:
    """EA (PascalCase, MM/DD/YYYY) or MCA (camelCase) rows; Quantity counts blocks or tokens, as sources disagree."""
    for u in items:
        qty = Decimal(u.quantity) / u.meter.block if quantity_counts == "blocks" else Decimal(u.quantity)
        cost = _num(u.cost)
        row = {"Date": u.day.strftime("%m/%d/%Y") if flavor == "ea" else u.day.isoformat(),
               "ResourceId": u.account_id, "MeterCategory": "Azure OpenAI", "MeterSubCategory": u.meter.subcategory,
               "MeterId": u.meter.meter_id, "MeterName": u.meter.name, "UnitOfMeasure": u.meter.unit,
               "Quantity": _num(qty), "EffectivePrice": _num(u.meter.price), "UnitPrice": _num(u.meter.price),
               "PayGPrice": _num(u.meter.price), "CostInBillingCurrency": cost, "ChargeType": "Usage",
               "PricingModel": "OnDemand", "ConsumedService": "Microsoft.CognitiveServices",
               "ProductName": f"Azure OpenAI - {u.meter.name}", "BillingCurrencyCode": "EUR", "BillingCurrency": "EUR",
               "PaygCostInBillingCurrency": cost, "Tags": '"team": "search"'}
        yield row
        for k in range(others):
            cat, sub, name, unit, rtype, rname = OTHER[(u.quantity + k) % len(OTHER)]
            yield {**row, "MeterCategory": cat, "MeterSubCategory": sub, "MeterName": name, "UnitOfMeasure": unit,
                   "ProductName": f"{cat} - {name}", "ConsumedService": rtype.split("/")[0],
                   "ResourceId": u.account_id.rsplit("/providers/", 1)[0] + f"/providers/{rtype}/{rname}"}


def columns_for(dataset: str, version: str = "1.0", flavor: str = "ea") -> tuple[str, ...]:
    if dataset == "FocusCost":
        return FOCUS_1_2 if version.startswith("1.2") else FOCUS_1_0
    return EA if flavor == "ea" else MCA


def _cells(rows: Iterable[dict[str, str]], columns: Sequence[str]) -> Iterator[list[str]]:
    lowered = [c.lower() for c in columns]
    for row in rows:
        low = {k.lower(): v for k, v in row.items()}
        yield [low.get(c, "") for c in lowered]


def csv_bytes(rows: Iterable[dict[str, str]], columns: Sequence[str], bom: bool = False) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(_cells(rows, columns))
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode()


def parquet_bytes(rows: Iterable[dict[str, str]], columns: Sequence[str]) -> bytes:
    """Parquet as an export writes it: money as decimals, quantities as doubles, dates as timestamps (snappy)."""
    cells = list(_cells(rows, columns))
    arrays = []
    for i, name in enumerate(columns):
        values = [r[i] for r in cells]
        if name in ("BilledCost", "EffectiveCost", "ListCost"):
            arrays.append(pa.array([Decimal(v) if v else None for v in values], pa.decimal128(38, 18)))
        elif name in ("ConsumedQuantity", "PricingQuantity", "ContractedUnitPrice"):
            arrays.append(pa.array([float(v) if v else None for v in values], pa.float64()))
        elif name == "ChargePeriodStart":
            arrays.append(pa.array([datetime.fromisoformat(v.replace("Z", "+00:00")) for v in values],
                                   pa.timestamp("us", tz="UTC")))
        else:
            arrays.append(pa.array(values, pa.string()))
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, names=list(columns)), sink, compression="snappy")
    return sink.getvalue()


def write_run(root: Path, rows: Sequence[dict[str, str]], *, export: str = "aoai-focus", dataset: str = "FocusCost",
              version: str = "1.0", start: date, end: date, run_id: str, submitted: datetime, fmt: str = "csv",
              parts: int = 2, flavor: str = "ea", directory: str = "exports/costs") -> Path:
    """One run as Azure writes it: <directory>/<export>/<YYYYMMDD-YYYYMMDD>/<run id>/part_*.<ext> + manifest.json."""
    folder = f"{directory}/{export}/{start:%Y%m%d}-{end:%Y%m%d}/{run_id}"
    (root / folder).mkdir(parents=True, exist_ok=True)
    columns = columns_for(dataset, version, flavor)
    ext = {"csv": "csv", "csv.gz": "csv.gz", "parquet": "snappy.parquet"}[fmt]
    blobs: list[dict[str, object]] = []
    total = 0
    size = max(1, -(-len(rows) // parts))
    for p in range(parts):
        chunk = rows[p * size:(p + 1) * size]
        if fmt == "parquet":
            data = parquet_bytes(chunk, columns)
        else:
            data = csv_bytes(chunk, columns)
            data = gzip.compress(data, compresslevel=6) if fmt == "csv.gz" else data
        name = f"{folder}/part_{p}_0001.{ext}"
        (root / name).write_bytes(data)
        blobs.append({"blobName": name, "byteCount": len(data)})
        total += len(data)
    manifest = {
        "manifestVersion": "2024-04-01", "byteCount": total, "blobCount": len(blobs),
        "dataRowCount": len(rows),
        "exportConfig": {"exportName": export, "resourceId": "/subscriptions/00000000-0000-0000-0000-000000000000/"
                         f"providers/Microsoft.CostManagement/exports/{export}", "dataVersion": version,
                         "apiVersion": "2023-07-01-preview", "type": dataset, "timeFrame": "MonthToDate",
                         "granularity": "Daily"},
        "deliveryConfig": {"partitionData": True, "dataOverwriteBehavior": "CreateNewReport",
                           "fileFormat": "Parquet" if fmt == "parquet" else "Csv", "rootFolderPath": directory},
        "runInfo": {"executionType": "Scheduled", "submittedTime": submitted.astimezone(UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.1032074Z"), "runId": run_id, "startDate": f"{start.isoformat()}T00:00:00",
            "endDate": f"{end.isoformat()}T00:00:00"},
        "blobs": blobs,
    }
    path = root / folder / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2))
    return path
