"""Retail prices -> the price book: rows with a meter per figure, unmapped rows listed, a stable text, the diff."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from collector.azure_clients import Connection
from collector.billing.price_sync import SyncedBook, SyncedRow, build_book, diff, keep_retrieved, render_book
from collector.billing.retailprices import RetailPrice, RetailPricesClient
from collector.cost import pricing
from collector.errors import InputError
from tests.emulators.retail_prices import RetailPricesEmulator

TODAY = date(2026, 1, 5)


@pytest.fixture(scope="module")
def prices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RetailPrice]]:
    with RetailPricesEmulator(tmp_path_factory.mktemp("tls"), page_size=100) as emulator, RetailPricesClient(
            Connection(emulator.endpoint, ca_bundle=emulator.ca_bundle)) as client:
        yield client.openai_prices()


def _find(book: SyncedBook, row_id: str) -> SyncedRow:
    found = [r for r in book.rows if r.id == row_id]
    assert len(found) == 1, row_id
    return found[0]


def _supported(rows: Sequence[SyncedRow]) -> tuple[SyncedRow, ...]:
    """The rows pricing.py accepts: Data Zone Batch only once it knows that type."""
    return tuple(r for r in rows if r.deployment_type in pricing.DEPLOYMENT_TYPES)


def test_token_rows_are_per_million_with_a_meter_per_figure(prices: list[RetailPrice]) -> None:
    book = build_book(prices, TODAY)
    row = _find(book, "gpt-4o@2024-11-20/GlobalStandard/eastus/2025-01-01")
    assert (row.rate("input"), row.rate("cached_input"), row.rate("output"), row.rate("ptu_hour")) == (
        Decimal("2.5"), Decimal("1.25"), Decimal("10"), None)
    by_name = {p.meter_name: p.meter_id for p in prices if p.region == "eastus"}
    assert row.source == (f"Azure Retail Prices API: input meter {by_name['gpt 4o 1120 Inp glbl Tokens']}, "
                          f"cached_input meter {by_name['gpt 4o 1120 cached Inp glbl Tokens']}, "
                          f"output meter {by_name['gpt 4o 1120 Outp glbl Tokens']}")
    assert row.retrieved == TODAY
    gpt5 = _find(book, "gpt-5/GlobalBatch/swedencentral/2025-01-01")  # a 1M meter is not multiplied again
    assert (gpt5.rate("input"), gpt5.rate("output")) == (Decimal("0.625"), Decimal("5"))


def test_every_deployment_type_and_region_gets_its_rows(prices: list[RetailPrice]) -> None:
    book = build_book(prices, TODAY)
    assert {r.deployment_type for r in book.rows} == {
        "GlobalStandard", "DataZoneStandard", "Standard", "GlobalBatch", "DataZoneBatch", "GlobalProvisioned",
        "DataZoneProvisioned", "ProvisionedManaged"}
    regional = {r.region: r.rate("input") for r in book.rows if r.id.startswith("gpt-4o@2024-11-20/Standard/")}
    assert regional["eastus"] == Decimal("2.75") and regional["westeurope"] == Decimal("3.025")


def test_provisioned_meters_give_a_ptu_hour_rate_for_any_model(prices: list[RetailPrice]) -> None:
    book = build_book(prices, TODAY)
    ptu = [r for r in book.rows if r.deployment_type == "ProvisionedManaged"]
    assert ptu and all(r.model == "*" and r.rate("ptu_hour") == Decimal("2") and r.rate("input") is None
                       for r in ptu)
    assert _find(book, "*/GlobalProvisioned/eastus2/2024-08-01").rate("ptu_hour") == Decimal("1")


def test_a_meter_with_two_effective_dates_gives_two_rows(prices: list[RetailPrice]) -> None:
    book = build_book(prices, TODAY)
    early = _find(book, "gpt-4.1/GlobalStandard/eastus/2025-04-01")
    late = _find(book, "gpt-4.1/GlobalStandard/eastus/2025-06-01")
    assert (early.rate("input"), early.rate("output")) == (Decimal("2.2"), None)  # no output meter yet
    assert (late.rate("input"), late.rate("cached_input"), late.rate("output")) == (
        Decimal("2"), Decimal("0.5"), Decimal("8"))
    assert early.figures["input"].meter_id == late.figures["input"].meter_id


def test_what_cannot_be_mapped_is_listed_with_its_reason(prices: list[RetailPrice]) -> None:
    book = build_book(prices, TODAY)
    listed = {(u.meter_name, u.reason.split(" ")[1]) for u in book.unmapped}
    assert ("Provisioned Managed Global Unit", "Reservation") in listed
    assert {u.meter_name for u in book.unmapped} == {
        "Provisioned Managed Global Unit", "Az-Text-Embedding-3-Large Tokens", "gpt-4o-aud-1217 Inp glbl Tokens",
        "o4 mini ft hosting Dz", "Code-Interpreter-global", "5.4 mini pp Inp Gl 1M Tokens"}
    mapped = {f.meter_id for r in book.rows for f in r.figures.values()}
    assert mapped | {u.meter_id for u in book.unmapped} == {p.meter_id for p in prices}  # nothing dropped


def test_non_usd_tiered_and_conflicting_prices_are_listed_not_written() -> None:
    base = RetailPrice("m1", "gpt 4.1 Inp glbl Tokens", "gpt 4.1 Inp glbl", "Azure OpenAI", "Foundry Models",
                       "eastus", "1K", Decimal("0.002"), "USD", datetime(2025, 6, 1, tzinfo=UTC), "Consumption")
    book = build_book([
        replace(base, meter_id="m2", currency="EUR"),
        replace(base, meter_id="m3", tier_minimum_units=Decimal(1000)),
        replace(base, meter_id="m4", unit_of_measure="1 Hour"),
        base, replace(base, meter_id="m5", meter_name="gpt-4.1-Inp-glbl Tokens", retail_price=Decimal("0.003")),
    ], TODAY)
    assert book.rows == ()
    reasons = {u.meter_id: u.reason for u in book.unmapped}
    assert "USD only" in reasons["m2"] and "tier" in reasons["m3"] and "not per a number of tokens" in reasons["m4"]
    assert "two meters" in reasons["m1"] and "two meters" in reasons["m5"]


def test_the_rendered_book_loads_through_the_price_book_reader(prices: list[RetailPrice], tmp_path: Path) -> None:
    book = build_book(prices, TODAY)
    path = tmp_path / "synced.yaml"
    rows = book.rows
    if "DataZoneBatch" not in pricing.DEPLOYMENT_TYPES:
        # pricing.py does not know Data Zone Batch yet: the full book's only problems must be those rows.
        path.write_text(render_book(rows), encoding="utf-8")
        with pytest.raises(InputError) as refused:
            pricing.load_price_book(path)
        assert refused.value.problems and all("'DataZoneBatch' is not allowed" in p.message
                                              for p in refused.value.problems)
        rows = tuple(r for r in rows if r.deployment_type != "DataZoneBatch")
    path.write_text(render_book(rows), encoding="utf-8")
    loaded = pricing.load_price_book(path)
    assert sorted(r.id for r in loaded.rows) == sorted(r.id for r in rows)
    by_id = {r.id: r for r in loaded.rows}
    for row in rows:
        got = by_id[row.id]
        assert (got.input, got.cached_input, got.output, got.ptu_hour) == tuple(
            row.rate(k) for k in ("input", "cached_input", "output", "ptu_hour"))
        assert (got.model, got.version, got.deployment_type, got.region, got.effective, got.retrieved,
                got.source) == (row.model, row.version, row.deployment_type, row.region, row.effective,
                                row.retrieved, row.source)
    at = datetime(2025, 7, 1, tzinfo=UTC)
    priced = pricing.price_for(loaded, "gpt-4o", "2024-11-20", "GlobalStandard", "eastus", at)
    assert priced is not None and priced.input == Decimal("2.5")


def test_a_second_sync_with_no_changes_gives_the_same_text(prices: list[RetailPrice], tmp_path: Path) -> None:
    first = _supported(build_book(prices, TODAY).rows)
    text = render_book(first)
    assert render_book(tuple(reversed(first))) == text  # the order the API sends does not matter
    written = tmp_path / "book.yaml"
    written.write_text(text, encoding="utf-8")
    current = pricing.load_price_book(written).rows
    later = _supported(keep_retrieved(build_book(list(reversed(prices)), date(2026, 2, 9)), current).rows)
    assert render_book(later) == text
    assert diff(current, later) == []


def test_a_changed_price_gets_todays_retrieved_day_and_shows_in_the_diff(prices: list[RetailPrice],
                                                                         tmp_path: Path) -> None:
    written = tmp_path / "book.yaml"
    written.write_text(render_book(_supported(build_book(prices, TODAY).rows)), encoding="utf-8")
    current = pricing.load_price_book(written).rows
    moved = [replace(p, retail_price=Decimal("0.002")) if p.meter_name == "gpt 4o 1120 Inp glbl Tokens" else p
             for p in prices if p.meter_name != "gpt 4.1 nano Outp glbl Tokens"]
    added = replace(prices[0], meter_id="new", meter_name="o3 0416 Inp glbl Tokens", region="westus3")
    later = _supported(keep_retrieved(build_book([*moved, added], date(2026, 2, 9)), current).rows)
    changes = {(c.row_id, c.figure): c for c in diff(current, later)}
    changed = changes["gpt-4o@2024-11-20/GlobalStandard/eastus/2025-01-01", "input"]
    assert (changed.kind, changed.old, changed.new) == ("changed", Decimal("2.5"), Decimal("2"))
    assert str(changed) == "~ gpt-4o@2024-11-20/GlobalStandard/eastus/2025-01-01 input: 2.5 -> 2"
    removed = changes["gpt-4.1-nano/GlobalStandard/eastus/2025-01-01", "output"]
    assert (removed.kind, removed.old, removed.new) == ("removed", Decimal("0.4"), None)
    assert changes["o3@2025-04-16/GlobalStandard/westus3/2025-01-01", "input"].kind == "added"
    # The Global input meter moved in each of the 6 regions, nano's output meter went in each, one meter came.
    assert sorted(c.kind for c in changes.values()) == ["added"] + ["changed"] * 6 + ["removed"] * 6
    rows = {r.id: r for r in later}
    assert rows["gpt-4o@2024-11-20/GlobalStandard/eastus/2025-01-01"].retrieved == date(2026, 2, 9)
    assert rows["gpt-4o@2024-11-20/DataZoneStandard/eastus/2025-01-01"].retrieved == TODAY


def test_rows_a_person_wrote_are_never_removed(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("rows:\n  - model: gpt-4o\n    deployment_type: GlobalStandard\n    effective: 2024-01-01\n"
                    "    input: '2.5'\n    output: '10'\n    source: my agreement\n    retrieved: 2025-01-01\n")
    assert diff(pricing.load_price_book(mine).rows, ()) == []
