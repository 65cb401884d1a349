"""An HTTPS emulator of the Azure Retail Prices API (`GET /api/retail/prices`), seeded with Azure OpenAI meters.

Written from learn.microsoft.com rest/api/cost-management/retail-prices/azure-retail-prices:

- no sign-in; `api-version` is optional (the page shows calls with and without it); the versions it names are
  `2021-10-01-preview` and `2023-01-01-preview`. Which other versions Azure refuses is not documented: this
  emulator refuses any other value with a 400 (strict).
- the envelope `BillingCurrency`, `CustomerEntityId` ("Default"), `CustomerEntityType` ("Retail"), `Items`,
  `NextPageLink` (null on the last page), `Count` (the items on this page); item fields as in the page's examples.
- at most `page_size` items a page: the page says 1,000 (its 2021 version said 100); tests may set fewer. The next
  page's link is absolute and carries `$skip`.
- `$filter` on the documented fields (matched case-insensitively, as the page spells them `Location`, `productid`),
  with `eq`, `and`, `or`, parentheses and `contains(field, 'text')`; `not`, other operators, an unknown field or bad
  syntax is a 400. Since `2023-01-01-preview` values compare case-sensitively; before, case-insensitively.
- `currencyCode` (quoted or not) from the page's list of supported currencies; prices are converted at fixed rates.
- `meterRegion='primary'` keeps primary meter regions only.

Not documented, so this emulator's choice: the error body `{"Error": {"Code", "Message"}}` and the 400 for an
unsupported currency or api-version. Faults (status + Retry-After, a malformed body, a looping NextPageLink) are
injected per request, and every request is recorded.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from tests.emulators.tls import ServedOverHttps, send_json

PATH = "/api/retail/prices"
API_VERSIONS = ("2021-10-01-preview", "2023-01-01-preview")
CASE_SENSITIVE_FROM = "2023-01-01-preview"
#: The documentation's "Supported currencies" table; rates are this emulator's, for realism only.
CURRENCIES = {"USD": Decimal(1), "AUD": Decimal("1.5"), "BRL": Decimal("5.4"), "CAD": Decimal("1.37"),
              "CHF": Decimal("0.88"), "CNY": Decimal("7.2"), "DKK": Decimal("6.9"), "EUR": Decimal("0.92"),
              "GBP": Decimal("0.79"), "INR": Decimal("83"), "JPY": Decimal("150"), "KRW": Decimal("1350"),
              "NOK": Decimal("10.6"), "NZD": Decimal("1.65"), "RUB": Decimal("92"), "SEK": Decimal("10.5"),
              "TWD": Decimal("32")}
#: Filterable fields as documented -> the item key they compare (`priceType` is the item's `type`).
FIELDS = {"armregionname": "armRegionName", "location": "location", "meterid": "meterId", "metername": "meterName",
          "productid": "productId", "skuid": "skuId", "productname": "productName", "skuname": "skuName",
          "servicename": "serviceName", "serviceid": "serviceId", "servicefamily": "serviceFamily",
          "pricetype": "type", "armskuname": "armSkuName"}


class FilterError(ValueError):
    """A `$filter` the API refuses."""


# -- $filter -------------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<punct>[(),])|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<bad>\S))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            break
        pos = match.end()
        kind = match.lastgroup or "bad"
        if kind == "bad":
            raise FilterError(f"Invalid character {match.group(kind)!r} at position {match.start(kind)}")
        out.append((kind, match.group(kind)))
    return out


Predicate = Any  # a nested tuple: ("or"|"and", a, b) | ("eq"|"contains", item key, value)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def parse(self) -> Predicate:
        if not self.tokens:
            raise FilterError("The $filter is empty")
        node = self._or()
        if self.pos != len(self.tokens):
            raise FilterError(f"Syntax error at {self.tokens[self.pos][1]!r}")
        return node

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self, kind: str, value: str | None = None) -> str:
        token = self._peek()
        if token is None or token[0] != kind or (value is not None and token[1].lower() != value):
            raise FilterError(f"Syntax error: expected {value or kind} at {token[1] if token else 'the end'!r}")
        self.pos += 1
        return token[1]

    def _or(self) -> Predicate:
        node = self._and()
        while (t := self._peek()) and t[0] == "word" and t[1].lower() == "or":
            self.pos += 1
            node = ("or", node, self._and())
        return node

    def _and(self) -> Predicate:
        node = self._unary()
        while (t := self._peek()) and t[0] == "word" and t[1].lower() == "and":
            self.pos += 1
            node = ("and", node, self._unary())
        return node

    def _unary(self) -> Predicate:
        token = self._peek()
        if token == ("punct", "("):
            self.pos += 1
            node = self._or()
            self._take("punct", ")")
            return node
        name = self._take("word")
        if name.lower() == "contains":
            self._take("punct", "(")
            key = _field(self._take("word"))
            self._take("punct", ",")
            value = _literal(self._take("str"))
            self._take("punct", ")")
            return ("contains", key, value)
        if name.lower() in ("not", "startswith", "endswith", "tolower", "toupper", "indexof"):
            raise FilterError(f"The function or operator {name!r} is not supported")
        key = _field(name)
        operator = self._take("word").lower()
        if operator != "eq":
            raise FilterError(f"The operator {operator!r} is not supported")
        return ("eq", key, _literal(self._take("str")))


def _field(name: str) -> str:
    key = FIELDS.get(name.lower())
    if key is None:
        raise FilterError(f"Could not find a property named '{name}'")
    return key


def _literal(text: str) -> str:
    return text[1:-1].replace("''", "'")


def parse_filter(text: str) -> Predicate:
    return _Parser(text).parse()


def matches(node: Predicate, item: dict[str, Any], case_sensitive: bool) -> bool:
    op = node[0]
    if op == "or":
        return matches(node[1], item, case_sensitive) or matches(node[2], item, case_sensitive)
    if op == "and":
        return matches(node[1], item, case_sensitive) and matches(node[2], item, case_sensitive)
    have, want = str(item.get(node[1], "")), node[2]
    if not case_sensitive:
        have, want = have.lower(), want.lower()
    return have == want if op == "eq" else want in have


# -- the catalogue -------------------------------------------------------------------------------------------------

REGIONS = {"eastus": "US East", "eastus2": "US East 2", "northcentralus": "US North Central",
           "swedencentral": "SE Central", "westeurope": "EU West", "francecentral": "FR Central"}
_REGIONAL_UPLIFT = {"eastus": Decimal("1.1"), "eastus2": Decimal("1.1"), "northcentralus": Decimal("1.1"),
                    "swedencentral": Decimal("1.21"), "westeurope": Decimal("1.21"), "francecentral": Decimal("1.21")}


def _item(meter: str, price: str, region: str, *, product: str = "Azure OpenAI", service: str = "Foundry Models",
          unit: str = "1K", effective: str = "2025-01-01T00:00:00Z", kind: str = "Consumption",
          family: str = "AI + Machine Learning", term: str | None = None, sku: str | None = None) -> dict[str, Any]:
    sku_name = sku if sku is not None else meter.removesuffix(" Tokens").removesuffix(" Unit")
    ident = uuid.uuid5(uuid.NAMESPACE_URL, f"{service}/{product}/{meter}/{region}/{kind}/{term}")
    product_id = "DZH318Z0" + uuid.uuid5(uuid.NAMESPACE_URL, product).hex[:4].upper()
    item: dict[str, Any] = {
        "currencyCode": "USD", "tierMinimumUnits": Decimal("0.0"), "retailPrice": Decimal(price),
        "unitPrice": Decimal(price), "armRegionName": region, "location": REGIONS.get(region, region),
        "effectiveStartDate": effective, "meterId": str(ident), "meterName": meter, "productId": product_id,
        "skuId": f"{product_id}/{ident.hex[:4].upper()}", "productName": product, "skuName": sku_name,
        "serviceName": service, "serviceId": "DZH3180C" + uuid.uuid5(uuid.NAMESPACE_URL, service).hex[:4].upper(),
        "serviceFamily": family, "unitOfMeasure": unit, "type": kind, "isPrimaryMeterRegion": True,
        "armSkuName": "",
    }
    if term is not None:
        item["reservationTerm"] = term
    return item


def _token_meters(name: str, prices: dict[str, str], regions: list[str], **kw: Any) -> list[dict[str, Any]]:
    """Meters `name` % kind in every region; Global and Data Zone prices are the same everywhere, regional ones
    differ by region (as Azure lists them)."""
    out = []
    for meter, price in prices.items():
        for region in regions:
            value = Decimal(price)
            if "regnl" in meter or "regional" in meter:
                value = (value * _REGIONAL_UPLIFT[region]).quantize(Decimal("0.0000001")).normalize()
            out.append(_item(meter.format(name=name), str(value), region, **kw))
    return out


def openai_catalogue() -> list[dict[str, Any]]:
    """Azure OpenAI meters spelt as public dumps of the API show them (see tests/billing/test_meters.py for
    sources), plus meters our reader cannot map and items of other services the filter must leave out."""
    all_regions = list(REGIONS)
    items: list[dict[str, Any]] = []
    items += _token_meters("gpt 4o 1120", {
        "{name} Inp glbl Tokens": "0.0025", "{name} cached Inp glbl Tokens": "0.00125",
        "{name} Outp glbl Tokens": "0.01", "{name} Inp Data Zone Tokens": "0.00275",
        "{name} cached Inp Data Zone Tokens": "0.001375", "{name} Outp Data Zone Tokens": "0.011",
        "{name} Inp regnl Tokens": "0.0025", "{name} cached Inp regnl Tokens": "0.00125",
        "{name} Outp regnl Tokens": "0.01", "{name} Batch Inp glbl Tokens": "0.00125",
        "{name} Batch Outp glbl Tokens": "0.005", "{name} Batch Inp DZ Tokens": "0.001375",
        "{name} Batch Outp DZ Tokens": "0.0055"}, all_regions, service="Cognitive Services")
    items += _token_meters("gpt-4o-mini-0718", {
        "{name}-Inp-glbl Tokens": "0.00015", "{name}-Outp-glbl Tokens": "0.0006",
        "{name}-Inp-regnl Tokens": "0.000165", "{name}-Outp-regnl Tokens": "0.00066"}, all_regions)
    items += _token_meters("gpt 4o mini 0718", {
        "{name} cached Inp glbl Tokens": "0.000075", "{name} Batch Inp Data Zone Tokens": "0.0000825"}, all_regions)
    items.append(_item("gpt 4o mini0718 BatchOutp DataZone Tokens", "0.00033", "eastus2"))
    items += _token_meters("gpt 4.1 mini", {
        "{name} Inp glbl Tokens": "0.0004", "{name} cached Inp glbl Tokens": "0.0001",
        "{name} Outp glbl Tokens": "0.0016", "{name} Inp Data Zone Tokens": "0.00044",
        "{name} cached Inp DZone Tokens": "0.00011", "{name} Outp Data Zone Tokens": "0.00176"}, all_regions)
    items += _token_meters("gpt 4.1 nano", {
        "{name} Inp glbl Tokens": "0.0001", "{name} cached Inp glbl Tokens": "0.000025",
        "{name} Outp glbl Tokens": "0.0004"}, all_regions)
    # gpt-4.1's Global input meter at two effective dates (the cached and output meters at the later one only).
    items += [_item("gpt 4.1 Inp glbl Tokens", "0.0022", r, effective="2025-04-01T00:00:00Z") for r in all_regions]
    items += [_item("gpt 4.1 Inp glbl Tokens", "0.002", r, effective="2025-06-01T00:00:00Z") for r in all_regions]
    items += _token_meters("gpt 4.1", {
        "{name} cached Inp glbl Tokens": "0.0005", "{name} Outp glbl Tokens": "0.008"}, all_regions,
        effective="2025-06-01T00:00:00Z")
    items += _token_meters("o3 0416", {
        "{name} Inp glbl Tokens": "0.002", "{name} cached Inp glbl Tokens": "0.0005",
        "{name} Outp glbl Tokens": "0.008"}, ["eastus2", "swedencentral"], product="Azure OpenAI Reasoning")
    items += _token_meters("o4-mini 0416", {
        "{name} Inp glbl Tokens": "0.0011", "{name} cached Inp glbl Tokens": "0.000275",
        "{name} Outp glbl Tokens": "0.0044", "{name} Inp regnl Tokens": "0.00121",
        "{name} Outp regnl Tokens": "0.00484"}, ["eastus2", "swedencentral"], product="Azure OpenAI Reasoning")
    items += _token_meters("GPT 5", {
        "{name} Inpt Glbl 1M Tokens": "1.25", "{name} cchd Inpt Glbl 1M Tokens": "0.125",
        "{name} outpt Glbl 1M Tokens": "10", "{name} Batch Inpt Glbl 1M Tokens": "0.625",
        "{name} Batch outpt Glbl 1M Tokens": "5"}, ["eastus2", "swedencentral"], product="Azure OpenAI GPT5",
        unit="1M")
    items += _token_meters("GPT 5 Mini", {
        "{name} Inpt Glbl 1M Tokens": "0.25", "{name} cchd Inpt Glbl 1M Tokens": "0.025",
        "{name} outpt Glbl 1M Tokens": "2"}, ["eastus2", "swedencentral"], product="Azure OpenAI GPT5", unit="1M")
    items += _token_meters("text-embedding-3-small", {
        "{name}-glbl Tokens": "0.00002", "{name}-regional Tokens": "0.00002"}, all_regions)
    items += [_item("Az-Text-Embedding-3-Large Tokens", "0.00013", r) for r in all_regions]  # no deployment type
    for scope, price in (("Global", "1"), ("Data Zone", "1.1"), ("Regional", "2")):
        items += [_item(f"Provisioned Managed {scope} Unit", price, r, unit="1/Hour", sku=f"Provisioned Managed "
                        f"{scope}", effective="2024-08-01T00:00:00Z") for r in all_regions]
    items.append(_item("Provisioned Managed Global Unit", "2448", "eastus2", unit="1/Hour", kind="Reservation",
                       term="1 Month", sku="Provisioned Managed Global"))
    # Azure OpenAI meters our reader cannot map: audio, fine-tuning hosting, a tool, priority processing.
    items += [_item("gpt-4o-aud-1217 Inp glbl Tokens", "0.04", "eastus2"),
              _item("o4 mini ft hosting Dz", "1.7", "eastus2", unit="1 Hour"),
              _item("Code-Interpreter-global", "0.03", "eastus2", unit="1"),
              _item("5.4 mini pp Inp Gl 1M Tokens", "1.5", "eastus2", unit="1M", product="Azure OpenAI GPT5")]
    # Not Azure OpenAI: left out by the filter.
    items += [_item("Llama 3.3 70B Inp glbl Tokens", "0.00071", r, product="Azure Llama Models")
              for r in all_regions]
    items += [_item("S1 Characters", "10", r, product="Translator Text", service="Cognitive Services", unit="1M")
              for r in all_regions]
    items += [_item("D4s v5", "0.192", r, product="Virtual Machines Dsv5 Series", service="Virtual Machines",
                    unit="1 Hour", family="Compute") for r in all_regions]
    items.append(_item("gpt 4o 1120 Inp glbl Tokens", "0.0025", "eastus", product="azure openai legacy"))
    return items


# -- the server ----------------------------------------------------------------------------------------------------

@dataclass
class Fault:
    status: int = 200  # not 200: answer this status with an error body
    retry_after: str | None = None
    body: bytes | None = None  # answer 200 with this body
    loop: bool = False  # answer the page with a NextPageLink to itself


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    query: dict[str, str]
    status: int


@dataclass
class RetailPricesEmulator(ServedOverHttps):
    directory: Path
    items: list[dict[str, Any]] = field(default_factory=openai_catalogue)
    page_size: int = 1000
    #: query parameters the NextPageLink leaves out (the documented example carries only $filter and $skip)
    next_link_drops: tuple[str, ...] = ()
    faults: list[Fault] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return self.url + PATH

    def inject(self, fault: Fault, times: int = 1) -> None:
        with self._lock:
            self.faults.extend([fault] * times)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)


    def answer(self, method: str, raw_path: str) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(raw_path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        with self._lock:
            fault = self.faults.pop(0) if self.faults else None
        status, headers, body = self._answer(method, split.path, query, fault)
        with self._lock:
            self.requests.append(RecordedRequest(split.path, query, status))
        return status, headers, body

    def _answer(self, method: str, path: str, query: dict[str, str],
                fault: Fault | None) -> tuple[int, dict[str, str], bytes]:
        if fault is not None and fault.status != 200:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return fault.status, headers, _error("ServiceUnavailable" if fault.status >= 500 else "TooManyRequests",
                                                 f"injected {fault.status}")
        if fault is not None and fault.body is not None:
            return 200, {}, fault.body
        if method != "GET":
            return 405, {}, _error("MethodNotAllowed", f"The method {method} is not supported.")
        if path.rstrip("/").lower() != PATH:
            return 404, {}, _error("NotFound", f"The path {path} is not served.")
        try:
            page = self._page(query, loop=fault is not None and fault.loop)
        except FilterError as e:
            return 400, {}, _error("BadRequest", f"Invalid $filter: {e}")
        except ValueError as e:
            return 400, {}, _error("BadRequest", str(e))
        return 200, {}, json.dumps(page, default=_number).encode()

    def _page(self, query: dict[str, str], loop: bool) -> dict[str, Any]:
        version = query.get("api-version")
        if version is not None and version not in API_VERSIONS:
            raise ValueError(f"The api-version '{version}' is not supported. Supported: {', '.join(API_VERSIONS)}")
        currency = query.get("currencyCode", "USD").strip("'")
        if currency not in CURRENCIES:
            raise ValueError(f"The currencyCode '{currency}' is not supported.")
        skip_text = query.get("$skip", "0")
        if not skip_text.isdigit():
            raise ValueError(f"The $skip '{skip_text}' is not a non-negative integer.")
        selected = self.items
        if "$filter" in query:
            predicate = parse_filter(query["$filter"])
            case_sensitive = version is not None and version >= CASE_SENSITIVE_FROM
            selected = [i for i in selected if matches(predicate, i, case_sensitive)]
        if query.get("meterRegion", "").strip("'") == "primary":
            selected = [i for i in selected if i["isPrimaryMeterRegion"]]
        skip = int(skip_text)
        page = [_in_currency(i, currency) for i in selected[skip:skip + self.page_size]]
        next_link = None
        if loop or skip + self.page_size < len(selected):
            params = {k: v for k, v in query.items() if k != "$skip" and k not in self.next_link_drops}
            params["$skip"] = str(skip if loop else skip + self.page_size)
            next_link = f"{self.endpoint}?{urlencode(params, quote_via=quote, safe='$')}"
        return {"BillingCurrency": currency, "CustomerEntityId": "Default", "CustomerEntityType": "Retail",
                "Items": page, "NextPageLink": next_link, "Count": len(page)}


def _in_currency(item: dict[str, Any], currency: str) -> dict[str, Any]:
    rate = CURRENCIES[currency]
    converted = (item["retailPrice"] * rate).normalize()
    return {**item, "currencyCode": currency, "retailPrice": converted, "unitPrice": converted}


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # the API sends JSON numbers
    raise TypeError(f"cannot serialise {value!r}")


def _error(code: str, message: str) -> bytes:
    return json.dumps({"Error": {"Code": code, "Message": message}}).encode()


def _handler(emulator: RetailPricesEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _reply(self, method: str) -> None:
            status, headers, body = emulator.answer(method, self.path)
            send_json(self, status, headers, body)

        def do_GET(self) -> None:
            self._reply("GET")

        def do_POST(self) -> None:
            self._reply("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
