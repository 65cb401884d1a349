"""The real Retail Prices client against the HTTPS emulator: every page, the filter, the currency, errors mapped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from collector.azure_clients import Connection
from collector.billing.retailprices import RetailPricesClient, openai_filter
from collector.errors import TerminalError, TransientError
from tests.emulators.retail_prices import Fault, RetailPricesEmulator, matches, parse_filter


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[RetailPricesEmulator]:
    # 100 a page (the page size of the documentation's first version) so the catalogue spans three pages.
    with RetailPricesEmulator(tmp_path, page_size=100) as running:
        yield running


def _client(emulator: RetailPricesEmulator, retries: int = 3) -> RetailPricesClient:
    return RetailPricesClient(Connection(emulator.endpoint, ca_bundle=emulator.ca_bundle, retries=retries),
                              retry_backoff_factor=0.0)


def _openai_items(emulator: RetailPricesEmulator) -> list[dict[str, Any]]:
    return [i for i in emulator.items if i["serviceName"] in ("Cognitive Services", "Foundry Models")
            and "OpenAI" in i["productName"]]


def test_every_page_is_read_and_only_azure_openai_comes_back(emulator: RetailPricesEmulator) -> None:
    with _client(emulator) as client:
        prices = client.openai_prices()
    expected = _openai_items(emulator)
    assert len(emulator.requests) >= 3
    assert [p.meter_id for p in prices] == [i["meterId"] for i in expected]
    assert {p.product_name for p in prices} >= {"Azure OpenAI", "Azure OpenAI GPT5", "Azure OpenAI Reasoning"}
    assert not {"Azure Llama Models", "Translator Text", "azure openai legacy"} & {p.product_name for p in prices}
    assert {p.service_name for p in prices} == {"Cognitive Services", "Foundry Models"}


def test_the_filter_api_version_and_currency_are_sent_on_every_page(emulator: RetailPricesEmulator) -> None:
    with _client(emulator) as client:
        client.openai_prices()
    first, *later = emulator.requests
    assert first.query == {"api-version": "2023-01-01-preview", "currencyCode": "USD", "$filter": openai_filter()}
    assert [r.query["$skip"] for r in later] == [str(100 * (i + 1)) for i in range(len(later))]
    assert all(r.query["$filter"] == openai_filter() and r.query["currencyCode"] == "USD" for r in later)


def test_a_next_link_without_the_version_and_currency_gets_them_back(tmp_path: Path) -> None:
    # The documented NextPageLink example carries only $filter and $skip.
    with RetailPricesEmulator(tmp_path, page_size=100, next_link_drops=("api-version", "currencyCode")) as emulator:
        with _client(emulator) as client:
            prices = client.openai_prices("EUR")
        assert {p.currency for p in prices} == {"EUR"}
        assert all(r.query["api-version"] == "2023-01-01-preview" for r in emulator.requests)


def test_prices_are_exact_decimals_and_dates_are_aware_utc(emulator: RetailPricesEmulator) -> None:
    with _client(emulator) as client:
        prices = client.openai_prices()
    cached = next(p for p in prices if p.meter_name == "gpt 4o mini 0718 cached Inp glbl Tokens")
    assert cached.retail_price == Decimal("0.000075") and cached.unit_of_measure == "1K"
    assert all(p.effective_start.tzinfo is not None and p.effective_start.utcoffset() == timedelta(0)
               for p in prices)
    reservation = next(p for p in prices if p.type == "Reservation")
    assert reservation.reservation_term == "1 Month"


def test_another_currency_is_asked_for_and_checked(emulator: RetailPricesEmulator) -> None:
    with _client(emulator) as client:
        euros = client.openai_prices("EUR")
    assert {p.currency for p in euros} == {"EUR"}
    assert emulator.requests[0].query["currencyCode"] == "EUR"
    usd = {(i["meterId"], i["effectiveStartDate"][:10]): i["retailPrice"] for i in emulator.items}
    # The API sends JSON numbers: the emulator's converted price goes through a float on the way.
    assert all(p.retail_price == Decimal(repr(float(usd[p.meter_id, p.effective_start.date().isoformat()]
                                                    * Decimal("0.92")))) for p in euros)


def test_an_unsupported_currency_is_a_terminal_error_that_names_the_option(emulator: RetailPricesEmulator) -> None:
    with _client(emulator) as client, pytest.raises(TerminalError, match=r"currencyCode 'XYZ'.*check --currency"):
        client.openai_prices("XYZ")


def test_throttling_is_retried_with_retry_after(emulator: RetailPricesEmulator) -> None:
    emulator.inject(Fault(status=429, retry_after="0"), times=2)
    with _client(emulator) as client:
        prices = client.openai_prices()
    assert len(prices) == len(_openai_items(emulator))
    assert [r.status for r in emulator.requests[:3]] == [429, 429, 200]


def test_a_server_error_that_persists_is_transient(emulator: RetailPricesEmulator) -> None:
    emulator.inject(Fault(status=503), times=3)
    with _client(emulator, retries=2) as client, pytest.raises(TransientError, match=r"HTTP 503.*next run"):
        client.openai_prices()


def test_a_refused_filter_is_terminal_and_quotes_the_api(emulator: RetailPricesEmulator) -> None:
    with _client(emulator) as client, pytest.raises(TerminalError, match=r"refused the request.*'price'"):
        client.prices("price eq 'x'")


def test_a_wrong_endpoint_is_terminal_and_says_which(emulator: RetailPricesEmulator) -> None:
    with RetailPricesClient(Connection(emulator.endpoint.replace("/prices", "/nothing"), ca_bundle=emulator.ca_bundle)
                            ) as client, pytest.raises(TerminalError, match="check the endpoint setting"):
        client.openai_prices()


def test_an_unreachable_endpoint_is_transient(emulator: RetailPricesEmulator) -> None:
    with RetailPricesClient(Connection("https://127.0.0.1:9/api/retail/prices", ca_bundle=emulator.ca_bundle,
                                       retries=0)) as client, pytest.raises(TransientError, match="cannot reach"):
        client.openai_prices()


def test_a_malformed_page_is_transient(emulator: RetailPricesEmulator) -> None:
    emulator.inject(Fault(body=b"<html>proxy error</html>"))
    with _client(emulator) as client, pytest.raises(TransientError, match="not JSON"):
        client.openai_prices()


def test_a_next_link_that_loops_is_stopped(emulator: RetailPricesEmulator) -> None:
    emulator.inject(Fault(loop=True), times=2)  # the second page's link is the first's
    with _client(emulator) as client, pytest.raises(TerminalError, match="already read"):
        client.openai_prices()
    assert len(emulator.requests) == 2


# -- the emulator's filter, as documented ---------------------------------------------------------------------------

ITEM = {"serviceName": "Foundry Models", "productName": "Azure OpenAI", "type": "Consumption"}


@pytest.mark.parametrize(("text", "case_sensitive", "expected"), [
    ("serviceName eq 'Foundry Models'", True, True),
    ("serviceName eq 'foundry models'", True, False),  # values are case-sensitive from 2023-01-01-preview
    ("serviceName eq 'foundry models'", False, True),  # and were not before
    ("SERVICENAME eq 'Foundry Models'", True, True),  # field names are not
    ("contains(productName, 'OpenAI') and priceType eq 'Consumption'", True, True),
    ("(serviceName eq 'Cognitive Services' or serviceName eq 'Foundry Models') and contains(productName, 'Open')",
     True, True),
    ("serviceName eq 'Cognitive Services' or contains(productName, 'openai')", True, False),
])
def test_the_emulator_filters_as_documented(text: str, case_sensitive: bool, expected: bool) -> None:
    assert matches(parse_filter(text), ITEM, case_sensitive) is expected


@pytest.mark.parametrize(("text", "status_text"), [
    ("price eq 'x'", "Could not find a property named 'price'"),
    ("not(contains(productName, 'OpenAI'))", "not supported"),
    ("serviceName ne 'x'", "operator 'ne' is not supported"),
    ("serviceName eq 'x' and", "Syntax error"),
    ("(serviceName eq 'x'", "Syntax error"),
    ("serviceName eq \"x\"", "Invalid character"),
])
def test_the_emulator_refuses_what_is_not_documented(emulator: RetailPricesEmulator, text: str,
                                                      status_text: str) -> None:
    with _client(emulator) as client, pytest.raises(TerminalError, match="HTTP 400") as raised:
        client.prices(text)
    assert status_text in str(raised.value)
