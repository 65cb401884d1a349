"""`aoai-obs prices sync` in-process, through the real Retail Prices client against the HTTPS emulator: the book it
writes, what it shows, what it keeps and when it writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli import prices as prices_cli
from collector.cli.main import main
from collector.cost.pricing import DEFAULT_BOOK, cost_of_ptus, load_price_book, price_for
from tests.emulators.retail_prices import Fault, RetailPricesEmulator

FIRST_DAY = datetime(2026, 1, 5, 9, tzinfo=UTC)
LATER_DAY = datetime(2026, 2, 9, 9, tzinfo=UTC)
GPT4O_EASTUS = "gpt-4o@2024-11-20/GlobalStandard/eastus/2025-01-01"
UNMAPPED_METERS = ("Provisioned Managed Global Unit", "Az-Text-Embedding-3-Large Tokens",
                   "gpt-4o-aud-1217 Inp glbl Tokens", "o4 mini ft hosting Dz", "Code-Interpreter-global",
                   "5.4 mini pp Inp Gl 1M Tokens")

MINE = """\
# My negotiated prices: kept by `prices sync`.
extends: default
currency: USD
rows:
  # the enterprise agreement's gpt-4o rate in East US
  - id: my-gpt-4o
    model: gpt-4o
    deployment_type: GlobalStandard
    region: eastus
    effective: 2025-03-01
    input: "2.00"   # 20 % off
    output: "8.00"
    source: EA amendment 7
    retrieved: 2025-03-02
overrides:
  - scope: account
    name: contoso-aoai
    discount_percent: "5"
    source: EA amendment 7
"""


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[RetailPricesEmulator]:
    (tmp_path / "tls").mkdir()
    with RetailPricesEmulator(tmp_path / "tls", page_size=100) as running:
        yield running


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    now = [FIRST_DAY]
    monkeypatch.setattr(prices_cli, "utcnow", lambda: now[0])
    return now


@pytest.fixture
def config(tmp_path: Path, emulator: RetailPricesEmulator) -> Path:
    path = tmp_path / "aoai-obs.yaml"
    path.write_text(f"prices:\n  book: prices.yaml\n  retail_endpoint: {emulator.endpoint}\n"
                    f"  ca_bundle: {emulator.ca_bundle}\n", encoding="utf-8")
    return path


def sync(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--config", str(config), "prices", "sync", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def meter_ids(emulator: RetailPricesEmulator, region: str) -> dict[str, str]:
    return {i["meterName"]: i["meterId"] for i in emulator.items if i["armRegionName"] == region
            and i["type"] == "Consumption" and i["productName"].startswith("Azure OpenAI")}


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_the_book_names_a_meter_and_a_retrieval_day_for_every_figure(
        config: Path, emulator: RetailPricesEmulator, clock: list[datetime]) -> None:
    code, out, err = sync(config)
    assert code == 0, err
    book = load_price_book(config.parent / "prices.yaml")
    assert len(book.rows) > 100
    for row in book.rows:
        figures = [k for k in ("input", "cached_input", "output", "ptu_hour") if getattr(row, k) is not None]
        named = row.source.removeprefix("Azure Retail Prices API: ").split(", ")
        assert [n.split(" meter ")[0] for n in named] == figures, row.id
        assert row.retrieved == FIRST_DAY.date()
    ids = meter_ids(emulator, "eastus")
    row = next(r for r in book.rows if r.id == GPT4O_EASTUS)
    assert (row.input, row.cached_input, row.output) == (Decimal("2.5"), Decimal("1.25"), Decimal("10"))
    assert row.source == (f"Azure Retail Prices API: input meter {ids['gpt 4o 1120 Inp glbl Tokens']}, "
                          f"cached_input meter {ids['gpt 4o 1120 cached Inp glbl Tokens']}, "
                          f"output meter {ids['gpt 4o 1120 Outp glbl Tokens']}")
    assert f"added   {GPT4O_EASTUS}" in out
    assert "written to" in err and "nothing written" not in err


def test_ptu_hour_rates_are_filled_and_price_provisioned_deployments(
        config: Path, emulator: RetailPricesEmulator, clock: list[datetime]) -> None:
    assert sync(config)[0] == 0
    book = load_price_book(config.parent / "prices.yaml")
    at = datetime(2025, 9, 1, tzinfo=UTC)
    for dtype, rate in (("GlobalProvisioned", "1"), ("DataZoneProvisioned", "1.1"), ("ProvisionedManaged", "2")):
        row = price_for(book, "gpt-4o", "2024-11-20", dtype, "swedencentral", at)
        assert row is not None and row.ptu_hour == Decimal(rate) and not row.unpriced, dtype
        assert cost_of_ptus(row, 15, 60) == 15 * Decimal(rate)
    dz_batch = price_for(book, "gpt-4o", "2024-11-20", "DataZoneBatch", "eastus", at)
    assert dz_batch is not None and (dz_batch.input, dz_batch.output) == (Decimal("1.375"), Decimal("5.5"))
    embedding = price_for(book, "text-embedding-3-small", "1", "GlobalStandard", "eastus", at)
    assert embedding is not None and embedding.input == Decimal("0.02") and not embedding.unpriced


def test_meters_it_cannot_map_are_listed_with_their_reasons(
        config: Path, emulator: RetailPricesEmulator, clock: list[datetime]) -> None:
    code, out, err = sync(config)
    assert code == 0
    listed = out.split("Not in the book: ", 1)[1]
    assert listed.startswith("11 price item(s) of 6 meter(s)")
    lines = {line.split("  ")[0]: line for line in listed.splitlines()[2:]}
    assert set(lines) == set(UNMAPPED_METERS)
    assert "a Reservation price (1 Month term), not a price per use" in lines["Provisioned Managed Global Unit"]
    assert "6: eastus, eastus2, francecentral, northcentralus +2" in lines["Az-Text-Embedding-3-Large Tokens"]
    assert "an audio meter" in lines["gpt-4o-aud-1217 Inp glbl Tokens"]
    assert "11 item(s) not mapped" in err


def test_a_second_sync_with_no_change_writes_nothing(
        config: Path, emulator: RetailPricesEmulator, clock: list[datetime]) -> None:
    book = config.parent / "prices.yaml"
    assert sync(config)[0] == 0
    before = snapshot(book)
    clock[0] = LATER_DAY
    code, out, err = sync(config)
    assert code == 0
    assert snapshot(book) == before
    assert out.startswith("Price book: no figure changes.\n")
    assert "already up to date: nothing written" in err


def test_a_changed_price_shows_in_the_diff_and_only_its_row_gets_the_new_day(
        config: Path, emulator: RetailPricesEmulator, clock: list[datetime]) -> None:
    assert sync(config)[0] == 0
    for item in emulator.items:
        if item["meterName"] == "gpt 4o 1120 Inp glbl Tokens" and item["armRegionName"] == "eastus":
            item["retailPrice"] = item["unitPrice"] = Decimal("0.002")
    emulator.items = [i for i in emulator.items if i["meterName"] != "gpt 4.1 nano Outp glbl Tokens"
                      or i["armRegionName"] != "westeurope"]
    clock[0] = LATER_DAY
    code, out, err = sync(config)
    assert code == 0
    changes = [line.split() for line in out.split("\n\n")[0].splitlines()[2:]]
    assert changes == [["removed", "gpt-4.1-nano/GlobalStandard/westeurope/2025-01-01", "output", "0.4", "-"],
                       ["changed", GPT4O_EASTUS, "input", "2.5", "2"]]
    assert "1 changed, 1 removed" in err
    rows = {r.id: r for r in load_price_book(config.parent / "prices.yaml").rows}
    assert rows[GPT4O_EASTUS].input == Decimal("2") and rows[GPT4O_EASTUS].retrieved == LATER_DAY.date()
    assert rows["gpt-4o@2024-11-20/GlobalStandard/eastus2/2025-01-01"].retrieved == FIRST_DAY.date()
    nano = rows["gpt-4.1-nano/GlobalStandard/westeurope/2025-01-01"]
    assert (nano.output, nano.unpriced) == (None, True)


def test_rows_written_by_hand_overrides_and_comments_are_kept(
        config: Path, emulator: RetailPricesEmulator, clock: list[datetime]) -> None:
    book = config.parent / "prices.yaml"
    book.write_text(MINE, encoding="utf-8")
    mine = load_price_book(book)
    code, _, err = sync(config)
    assert code == 0, err
    text = book.read_text(encoding="utf-8")
    assert text.startswith("# My negotiated prices: kept by `prices sync`.\nextends: default\ncurrency: USD\nrows:\n")
    assert MINE.split("rows:\n", 1)[1] in text  # the row, its comments and the overrides, byte for byte
    synced = load_price_book(book)
    assert [r for r in synced.rows if r.id == "my-gpt-4o"] == [r for r in mine.rows if r.id == "my-gpt-4o"]
    assert synced.overrides == mine.overrides
    assert len(synced.rows) > len(mine.rows) + 100  # the shipped book's rows (extends), this row, and Azure's
    at = datetime(2025, 9, 1, tzinfo=UTC)
    chosen = price_for(synced, "gpt-4o", "2024-11-20", "GlobalStandard", "eastus", at, account="contoso-aoai")
    assert chosen is not None and chosen.id == f"{GPT4O_EASTUS}+account:contoso-aoai"  # Azure's row, discounted
    assert "1 row(s) written by hand kept" in err
    before = snapshot(book)
    clock[0] = LATER_DAY
    assert sync(config)[0] == 0
    assert snapshot(book) == before


def test_a_row_written_by_hand_wins_over_the_synced_row_of_its_id(
        config: Path, emulator: RetailPricesEmulator, clock: list[datetime]) -> None:
    book = config.parent / "prices.yaml"
    book.write_text(MINE.replace("id: my-gpt-4o", f'id: "{GPT4O_EASTUS}"'), encoding="utf-8")
    code, out, _ = sync(config)
    assert code == 0
    assert f"Kept your rows over Azure's list prices for 1 id(s):\n  {GPT4O_EASTUS}\n" in out
    rows = [r for r in load_price_book(book).rows if r.id == GPT4O_EASTUS]
    assert [(r.input, r.source) for r in rows] == [(Decimal("2.00"), "EA amendment 7")]


@pytest.mark.parametrize(("fault", "message"), [
    (Fault(body=b"<html>busy</html>"), "is not JSON"),
    (Fault(status=403), "answered HTTP 403"),
])
def test_the_api_failing_leaves_the_book_untouched(config: Path, emulator: RetailPricesEmulator,
                                                   clock: list[datetime], fault: Fault, message: str) -> None:
    book = config.parent / "prices.yaml"
    assert sync(config)[0] == 0
    before = snapshot(book)
    for item in emulator.items:
        item["retailPrice"] = item["unitPrice"] = item["retailPrice"] * 2
    emulator.inject(Fault())  # the first page is read, the second fails
    emulator.inject(fault)
    clock[0] = LATER_DAY
    code, out, err = sync(config)
    assert code == 1
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert out == ""
    assert snapshot(book) == before
    assert sorted(p.name for p in book.parent.iterdir() if p.name.startswith(".prices")) == []


def test_a_dry_run_shows_the_changes_and_writes_nothing(
        config: Path, emulator: RetailPricesEmulator, clock: list[datetime]) -> None:
    code, out, err = sync(config, "--dry-run")
    assert code == 0
    assert f"added   {GPT4O_EASTUS}" in out and "dry run: nothing written" in err
    assert not (config.parent / "prices.yaml").exists()


def test_the_endpoint_option_wins_over_the_setting(
        tmp_path: Path, emulator: RetailPricesEmulator, clock: list[datetime]) -> None:
    config = tmp_path / "other.yaml"
    config.write_text(f"prices:\n  retail_endpoint: https://127.0.0.1:9/nowhere\n  ca_bundle: {emulator.ca_bundle}\n",
                      encoding="utf-8")
    out = tmp_path / "synced.yaml"
    code, _, err = sync(config, "--out", str(out), "--endpoint", emulator.endpoint)
    assert code == 0, err
    assert emulator.requests and out.is_file()


@pytest.mark.parametrize(("settings", "args", "expected"), [
    ("", (), "give --out FILE"),
    ("", ("--out", str(DEFAULT_BOOK)), "inside the installed package"),
    ("prices:\n  book: prices.yaml\n", ("--currency", "EUR"), "the price book is in USD"),
])
def test_mistakes_are_refused_before_any_request(tmp_path: Path, emulator: RetailPricesEmulator, settings: str,
                                                 args: tuple[str, ...], expected: str) -> None:
    config = tmp_path / "aoai-obs.yaml"
    config.write_text(settings + f"{'' if settings else 'prices:'}\n  retail_endpoint: {emulator.endpoint}\n",
                      encoding="utf-8")
    shipped = snapshot(DEFAULT_BOOK)
    code, _, err = sync(config, *args)
    assert code == 2 and expected in err and "Traceback" not in err
    assert emulator.requests == []
    assert snapshot(DEFAULT_BOOK) == shipped


def test_a_broken_book_is_reported_with_its_line_before_any_request(
        config: Path, emulator: RetailPricesEmulator) -> None:
    book = config.parent / "prices.yaml"
    book.write_text("rows:\n  - model: gpt-4o\n    deployment_type: GlobalStandrd\n", encoding="utf-8")
    code, _, err = sync(config)
    assert code == 2 and f"{book}:3" in err and "did you mean 'GlobalStandard'" in err
    assert emulator.requests == []
    assert book.read_text(encoding="utf-8").endswith("GlobalStandrd\n")



def test_a_book_whose_rows_cannot_be_replaced_in_place_is_left_as_it_is(
        config: Path, emulator: RetailPricesEmulator, clock: list[datetime]) -> None:
    book = config.parent / "prices.yaml"
    book.write_text("rows: [{model: gpt-4o, deployment_type: GlobalStandard, effective: 2024-01-01, input: '2', "
                    "output: '8', source: mine, retrieved: 2025-01-01}]\n", encoding="utf-8")
    before = snapshot(book)
    code, _, err = sync(config)
    assert code == 2 and "write it as a block list" in err and "Traceback" not in err
    assert snapshot(book) == before
