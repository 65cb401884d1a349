"""The Azure Retail Prices API: the only module that talks to it; Azure OpenAI's list prices, every page of them.

`GET https://prices.azure.com/api/retail/prices?api-version=2023-01-01-preview&currencyCode=USD&$filter=...`, no
sign-in (learn.microsoft.com rest/api/cost-management/retail-prices/azure-retail-prices). What this relies on:

- The envelope is `BillingCurrency`, `CustomerEntityId`, `CustomerEntityType`, `Items`, `NextPageLink` (null on the
  last page) and `Count`; a page holds at most 1,000 items (100 in the page's 2021 version) and `NextPageLink` is an
  absolute link carrying `$skip`. The documented example of that link carries the `$filter` and `$skip` only, so a
  query parameter the link lacks (`api-version`, `currencyCode`) is added back before following it.
- `$filter` takes the documented fields (armRegionName, Location, meterId, meterName, productid, skuId, productName,
  skuName, serviceName, serviceId, serviceFamily, priceType, armSkuName). Since `2023-01-01-preview` filter values
  are case-sensitive. The page documents `eq` and `and`; `or`, parentheses and `contains(field, 'text')` are what
  public clients send and Azure answers (third-party, e.g. grafana/cloudcost-exporter PR 885); `not(...)` is refused
  with a 400 (ahmadabdalla/azure-cost-calculator issue 894).
- `currencyCode` is a query parameter, not a filter field; prices not in USD are for reference only.
- `type` is `Consumption` (a price per use), `Reservation` (the price of a 1- or 3-year reservation term, bought
  up front, not a rate per use) or `DevTestConsumption`; this module returns every row, typed, and
  `price_sync` decides which are prices per use.

HTTP errors become `TransientError` (408, 429, 5xx, unreachable: the next run tries again) or `TerminalError`
(anything else: a person must change something), with what to do in the message.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NotRequired, TypedDict
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from azure.core import PipelineClient
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline.policies import (
    HeadersPolicy,
    HttpLoggingPolicy,
    NetworkTraceLoggingPolicy,
    RedirectPolicy,
    RetryPolicy,
    UserAgentPolicy,
)
from azure.core.rest import HttpRequest, HttpResponse

from collector.azure_clients import Connection
from collector.errors import TerminalError, TransientError

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://prices.azure.com/api/retail/prices"
#: The public API: no sign-in, three retries, a minute per page.
PUBLIC = Connection(DEFAULT_ENDPOINT, retries=3, read_timeout=60.0)
API_VERSION = "2023-01-01-preview"
#: Azure OpenAI's meters were listed under "Cognitive Services" and are now under "Foundry Models" (§9): ask for both.
OPENAI_SERVICES = ("Cognitive Services", "Foundry Models")
OPENAI_PRODUCT_WORD = "OpenAI"  # "Azure OpenAI", "Azure OpenAI GPT5", "Azure OpenAI Reasoning", ...
MAX_PAGES = 1_000  # a million items; Azure OpenAI has a few thousand


class WireItem(TypedDict):
    """One item of `Items`, as the API sends it (field names and types from the documentation's examples)."""

    currencyCode: str
    tierMinimumUnits: Decimal
    retailPrice: Decimal
    unitPrice: Decimal
    armRegionName: str
    location: str
    effectiveStartDate: str
    meterId: str
    meterName: str
    productId: str
    skuId: str
    productName: str
    skuName: str
    serviceName: str
    serviceId: str
    serviceFamily: str
    unitOfMeasure: str
    type: str
    isPrimaryMeterRegion: bool
    armSkuName: str
    reservationTerm: NotRequired[str]


class WirePage(TypedDict):
    BillingCurrency: str
    CustomerEntityId: str
    CustomerEntityType: str
    Items: list[WireItem]
    NextPageLink: str | None
    Count: int


@dataclass(frozen=True)
class RetailPrice:
    """One row of the retail price list: a meter's price in a region from a date."""

    meter_id: str
    meter_name: str
    sku_name: str
    product_name: str
    service_name: str
    region: str  # armRegionName, lower case ("" for a meter with no region)
    unit_of_measure: str
    retail_price: Decimal
    currency: str
    effective_start: datetime  # aware, UTC
    type: str  # Consumption, Reservation, DevTestConsumption
    tier_minimum_units: Decimal = Decimal(0)
    reservation_term: str | None = None
    sku_id: str = ""
    product_id: str = ""
    is_primary_meter_region: bool = True


def quote_literal(value: str) -> str:
    """An OData string literal: in single quotes, a quote inside doubled."""
    return "'" + value.replace("'", "''") + "'"


def openai_filter() -> str:
    """The `$filter` for Azure OpenAI's meters: either service name, and a product name containing "OpenAI"."""
    services = " or ".join(f"serviceName eq {quote_literal(s)}" for s in OPENAI_SERVICES)
    return f"({services}) and contains(productName, {quote_literal(OPENAI_PRODUCT_WORD)})"


class RetailPricesClient:
    """Reads the Retail Prices API through azure-core's pipeline (retries with Retry-After, logging, redirects)."""

    def __init__(self, connection: Connection = PUBLIC, *, retry_backoff_factor: float = 0.8,
                 **client_kwargs: Any) -> None:
        self.endpoint = connection.endpoint.rstrip("/")
        self.retry_total = retry_total = connection.retries
        self._timeout = connection.read_timeout
        policies = [
            HeadersPolicy({"Accept": "application/json"}),
            UserAgentPolicy(sdk_moniker="aoai-observatory-retailprices"),
            RedirectPolicy(),
            RetryPolicy(retry_total=retry_total, retry_backoff_factor=retry_backoff_factor),
            NetworkTraceLoggingPolicy(),
            HttpLoggingPolicy(),
        ]
        self._client: PipelineClient[HttpRequest, HttpResponse] = PipelineClient(
            self.endpoint, policies=policies, connection_verify=connection.verify, **client_kwargs)

    def __enter__(self) -> RetailPricesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def openai_prices(self, currency: str = "USD") -> list[RetailPrice]:
        """Every Azure OpenAI price row (all types, regions and effective dates) in `currency`."""
        return self.prices(openai_filter(), currency)

    def prices(self, odata_filter: str, currency: str = "USD") -> list[RetailPrice]:
        """Every item the filter selects, following `NextPageLink` to the last page."""
        params = {"api-version": API_VERSION, "currencyCode": currency, "$filter": odata_filter}
        url: str | None = f"{self.endpoint}?{urlencode(params, quote_via=quote, safe='$')}"
        seen: set[str] = set()
        items: list[RetailPrice] = []
        pages = 0
        while url is not None:
            if url in seen or pages >= MAX_PAGES:
                raise TerminalError(f"the Retail Prices API's NextPageLink came back to a page already read ({url})"
                                    f" after {pages} page(s): stopped rather than loop; report this with the link")
            seen.add(url)
            page = self._page(url, odata_filter)
            pages += 1
            read = [_price(raw, pages, i) for i, raw in enumerate(page["Items"])]
            wrong = {p.currency for p in read} - {currency}
            if wrong:
                raise TerminalError(f"the Retail Prices API answered page {pages} in {sorted(wrong)}, not the "
                                    f"{currency} asked for: check --currency (one of the API's supported codes)")
            items.extend(read)
            url = self._next(page.get("NextPageLink"), params)
        log.info("read %d retail price item(s) in %d page(s) from %s", len(items), pages, self.endpoint)
        return items

    def _next(self, link: str | None, params: dict[str, str]) -> str | None:
        if not link:
            return None
        split, base = urlsplit(link), urlsplit(self.endpoint)
        if (split.scheme, split.hostname, split.port or 443) != (base.scheme, base.hostname, base.port or 443):
            raise TerminalError(f"the Retail Prices API's NextPageLink points elsewhere ({link}), not to "
                                f"{self.endpoint}: not followed; check the endpoint setting")
        present = {k for k, _ in parse_qsl(split.query, keep_blank_values=True)}
        missing = {k: v for k, v in params.items() if k not in present and k != "$filter"}
        if not missing:
            return link
        return f"{link}{'&' if split.query else '?'}{urlencode(missing, quote_via=quote)}"

    def _page(self, url: str, odata_filter: str) -> WirePage:
        request = HttpRequest("GET", url)
        try:
            response = self._client.send_request(request, connection_timeout=min(self._timeout, 30.0),
                                                 read_timeout=self._timeout)
            response.raise_for_status()
        except HttpResponseError as e:
            raise _http_error(self.endpoint, e, self.retry_total, odata_filter) from e
        except (ServiceRequestError, ServiceResponseError) as e:
            raise TransientError(f"cannot reach the Retail Prices API at {self.endpoint}: {e}; check the network "
                                 "(a proxy or firewall must let HTTPS through); the next run tries again") from e
        try:
            body = json.loads(response.text(), parse_float=Decimal)
        except ValueError as e:
            raise TransientError(f"the Retail Prices API answered {url} with something that is not JSON "
                                 f"({response.text()[:120]!r}); the next run tries again") from e
        if not isinstance(body, dict) or not isinstance(body.get("Items"), list):
            raise TransientError(f"the Retail Prices API answered {url} without an Items list; the next run tries "
                                 "again (if it persists, the API's format changed: report it)")
        return body  # type: ignore[return-value]  # checked above as far as we read it; items are checked in _price


def _price(raw: Any, page: int, index: int) -> RetailPrice:
    where = f"the Retail Prices API's item {index} on page {page}"
    if not isinstance(raw, dict):
        raise TerminalError(f"{where} is not an object: report this; the API's format may have changed")
    try:
        started = datetime.fromisoformat(str(raw["effectiveStartDate"]).replace("Z", "+00:00"))
        return RetailPrice(
            meter_id=str(raw["meterId"]), meter_name=str(raw["meterName"]), sku_name=str(raw.get("skuName", "")),
            product_name=str(raw.get("productName", "")), service_name=str(raw.get("serviceName", "")),
            region=str(raw.get("armRegionName") or "").lower(), unit_of_measure=str(raw["unitOfMeasure"]),
            retail_price=Decimal(str(raw["retailPrice"])), currency=str(raw["currencyCode"]),
            effective_start=(started if started.tzinfo else started.replace(tzinfo=UTC)).astimezone(UTC),
            type=str(raw["type"]), tier_minimum_units=Decimal(str(raw.get("tierMinimumUnits", 0))),
            reservation_term=raw.get("reservationTerm"), sku_id=str(raw.get("skuId", "")),
            product_id=str(raw.get("productId", "")),
            is_primary_meter_region=bool(raw.get("isPrimaryMeterRegion", True)))
    except KeyError as e:
        raise TerminalError(f"{where} lacks {e.args[0]!r}: report this; the API's format may have changed") from e
    except (ValueError, ArithmeticError) as e:
        raise TerminalError(f"{where} ({raw.get('meterName')!r}) has a value that cannot be read: {e}") from e


def _message(e: HttpResponseError) -> str:
    """The error text of a response body, whatever its casing ({"error": {"message"}}, {"Error": {"Message"}})."""
    try:
        body = json.loads(e.response.text()) if e.response is not None else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        lowered = {k.lower(): v for k, v in body.items()}
        inner = lowered.get("error", lowered)
        if isinstance(inner, dict):
            found = {k.lower(): v for k, v in inner.items()}
            if found.get("message"):
                code = f"{found['code']}: " if found.get("code") else ""
                return f"{code}{found['message']}"
    return str(e.reason or e.message or e)


def _http_error(endpoint: str, e: HttpResponseError, retries: int, odata_filter: str) -> TransientError | TerminalError:
    status = e.status_code
    detail = f"HTTP {status}: {_message(e)}"
    if status is not None and (status in (408, 429) or status >= 500):
        return TransientError(f"the Retail Prices API at {endpoint} answered {detail} (still failing after "
                              f"{retries} retries); the next run tries again")
    if status == 400:
        return TerminalError(f"the Retail Prices API refused the request: {detail} (filter sent: {odata_filter}); "
                             "check --currency, and report the filter if it is ours")
    if status == 404:
        return TerminalError(f"no Retail Prices API at {endpoint} ({detail}): check the endpoint setting "
                             f"(the public one is {DEFAULT_ENDPOINT})")
    return TerminalError(f"the Retail Prices API at {endpoint} answered {detail}")

