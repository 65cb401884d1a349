"""The price book: loading with located problems, choosing a price by date and type, token and PTU cost."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from collector.billing.meters import DEPLOYMENT_TYPES as METERED_TYPES
from collector.cost.pricing import (
    DEPLOYMENT_TYPES,
    PROVISIONED_TYPES,
    cost_of_ptus,
    cost_of_tokens,
    load_price_book,
    price_for,
    read_price_book,
)
from collector.errors import InputError

DEFAULT = Path(__file__).parents[2] / "collector" / "cost" / "pricebook" / "default.yaml"

BOOK = """\
currency: USD
rows:
  - id: gpt-4o-gs-2024
    model: gpt-4o
    deployment_type: GlobalStandard
    effective: 2024-01-01
    input: "2.50"
    cached_input: "1.25"
    output: "10.00"
    source: test figure
    retrieved: 2025-01-01
  - id: gpt-4o-gs-2025-06
    model: gpt-4o
    deployment_type: GlobalStandard
    effective: 2025-06-01
    input: "2.00"
    cached_input: "1.00"
    output: "8.00"
    source: test figure, a price cut
    retrieved: 2025-06-01
  - id: gpt-4o-dz
    model: gpt-4o
    deployment_type: DataZoneStandard
    effective: 2024-01-01
    input: "2.75"
    cached_input: "1.375"
    output: "11.00"
    source: test figure
    retrieved: 2025-01-01
    approximate: true
  - id: gpt-4o-eus-2024-11-20
    model: gpt-4o
    version: "2024-11-20"
    region: eastus
    deployment_type: GlobalStandard
    effective: 2024-01-01
    input: "3.00"
    output: "12.00"
    source: test figure for one version in one region
    retrieved: 2025-01-01
  - id: ptu
    model: "*"
    deployment_type: ProvisionedManaged
    effective: 2024-01-01
    ptu_hour: "1.00"
    source: test figure
    retrieved: 2025-01-01
overrides:
  - scope: account
    name: contoso
    discount_percent: 15
    source: EA agreement (test)
  - scope: deployment
    name: gpt-4o-special
    account: contoso
    input: "1.00"
    output: "4.00"
    source: negotiated rates (test)
"""


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


@pytest.fixture
def book_path(tmp_path: Path) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(BOOK, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("version", "dtype", "region", "day", "expected"),
    [
        (None, "GlobalStandard", None, "2025-05-31T23:59", "gpt-4o-gs-2024"),  # the cut is not effective yet
        (None, "GlobalStandard", None, "2025-06-01", "gpt-4o-gs-2025-06"),  # effective at midnight, inclusive
        ("2024-08-06", "GlobalStandard", "eastus", "2025-07-01", "gpt-4o-gs-2025-06"),  # other version: generic
        ("2024-11-20", "GlobalStandard", "EastUS", "2025-07-01", "gpt-4o-eus-2024-11-20"),  # most specific wins
        ("2024-11-20", "GlobalStandard", "westus", "2025-07-01", "gpt-4o-gs-2025-06"),  # region does not match
        (None, "DataZoneStandard", None, "2025-07-01", "gpt-4o-dz"),
        (None, "ProvisionedManaged", None, "2025-07-01", "ptu"),  # "*" matches any model
        (None, "GlobalStandard", None, "2023-12-31", None),  # before any row
        (None, "Standard", None, "2025-07-01", None),  # no Regional Standard row
    ],
)
def test_price_selection_by_date_type_version_and_region(
    book_path: Path, version: str | None, dtype: str, region: str | None, day: str, expected: str | None
) -> None:
    row = price_for(load_price_book(book_path), "gpt-4o", version, dtype, region, _at(day))
    assert (row.id if row else None) == expected


def test_cached_tokens_are_priced_at_the_cached_rate(book_path: Path) -> None:
    row = price_for(load_price_book(book_path), "gpt-4o", None, "GlobalStandard", None, _at("2025-01-01"))
    # 10,000 prompt of which 4,000 cached, 1,000 completion at 2.50 / 1.25 / 10.00 per 1M:
    # 6,000 x 2.50 / 1e6 = 0.015; 4,000 x 1.25 / 1e6 = 0.005; 1,000 x 10.00 / 1e6 = 0.010; total 0.030
    assert cost_of_tokens(row, 10_000, 4_000, 1_000) == Decimal("0.030")
    with pytest.raises(ValueError, match="cached tokens"):
        cost_of_tokens(row, 100, 101, 0)


def test_a_row_without_cached_rate_charges_cached_tokens_at_the_input_rate(book_path: Path) -> None:
    row = price_for(load_price_book(book_path), "gpt-4o", "2024-11-20", "GlobalStandard", "eastus",
                    _at("2025-01-01"))
    # 1,000 prompt (500 cached) at 3.00 = 0.003; 1,000 completion at 12.00 = 0.012
    assert cost_of_tokens(row, 1_000, 500, 1_000) == Decimal("0.015")


def test_batch_costs_half_of_global_standard_in_the_default_book() -> None:
    book = load_price_book(DEFAULT)
    at = _at("2025-09-01")
    batch = price_for(book, "gpt-4o", "2024-11-20", "GlobalBatch", "eastus", at)
    standard = price_for(book, "gpt-4o", "2024-11-20", "GlobalStandard", "eastus", at)
    # Batch: 1,000,000 x 1.25 / 1e6 + 200,000 x 5.00 / 1e6 = 1.25 + 1.00 = 2.25
    assert cost_of_tokens(batch, 1_000_000, 0, 200_000) == Decimal("2.25")
    # Global Standard: 2.50 + 200,000 x 10.00 / 1e6 = 4.50, twice the Batch cost
    assert cost_of_tokens(standard, 1_000_000, 0, 200_000) == Decimal("4.50")


@pytest.mark.parametrize(
    ("account", "deployment", "expected", "override"),
    [
        # 15% off 2.50 / 10.00 is 2.125 / 8.50: 1M prompt + 1M completion = 10.625
        ("contoso", "gpt-4o", Decimal("10.625"), "account:contoso -15% (EA agreement (test))"),
        # the deployment's full rates win over the account's discount: 1.00 + 4.00
        ("contoso", "gpt-4o-special", Decimal("5.00"), "deployment:gpt-4o-special rates (negotiated rates (test))"),
        # another account: list price 2.50 + 10.00
        ("fabrikam", "gpt-4o-special", Decimal("12.50"), ""),
    ],
)
def test_overrides(book_path: Path, account: str, deployment: str, expected: Decimal, override: str) -> None:
    row = price_for(load_price_book(book_path), "gpt-4o", None, "GlobalStandard", None, _at("2025-01-01"),
                    account=account, deployment=deployment)
    assert row is not None
    assert cost_of_tokens(row, 1_000_000, 0, 1_000_000) == expected
    assert row.override == override


def test_ptu_cost_is_per_ptu_hour_prorated_per_minute(book_path: Path) -> None:
    row = price_for(load_price_book(book_path), "gpt-4o", None, "ProvisionedManaged", None, _at("2025-01-01"))
    assert cost_of_ptus(row, 50, 60) == Decimal("50.00")  # 50 PTU x 1.00 x 1h
    assert cost_of_ptus(row, 50, 45) == Decimal("37.5")  # 50 x 1.00 x 45/60
    assert cost_of_tokens(row, 1_000, 0, 1_000) == 0  # provisioned: no per-token charge


def test_the_default_book_loads_and_every_row_has_provenance() -> None:
    book = load_price_book(DEFAULT)
    assert book.rows
    for row in book.rows:
        assert row.source.strip() and row.retrieved, row.id
        assert row.deployment_type in DEPLOYMENT_TYPES
        if row.deployment_type == "DataZoneStandard":
            assert row.approximate, row.id
        if row.deployment_type in PROVISIONED_TYPES:
            # no public $/PTU-hour figure: the row is there to be filled in, and flagged until it is
            assert row.ptu_hour is None and row.unpriced, row.id
        else:
            assert "Microsoft's figures" not in row.source or "not Microsoft's" in row.source, row.id
    assert {r.deployment_type for r in book.rows if r.unpriced} == set(PROVISIONED_TYPES)
    at = _at("2025-09-01")
    for row in book.rows:
        if row.deployment_type == "GlobalBatch":
            base = price_for(book, row.model, None, "GlobalStandard", None, at)
            assert base is not None and base.input is not None and row.input == base.input / 2, row.id
            assert base.output is not None and row.output == base.output / 2, row.id


BAD_BOOK = """\
currency: EUR
rows:
  - model: gpt-4o
    deployment_type: GlobalStandart
    effective: 2024-01-01
    input: "2.50"
    output: "ten"
    source: test
    retrieved: 2025-01-01
  - model: gpt-4o
    deployment_type: ProvisionedManaged
    effective: someday
    ptu_hour: "-1"
    input: "2.50"
    source: test
    retrieved: 2025-01-01
  - model: gpt-4o
    deployment_type: GlobalStandard
    effective: 2024-01-01
    input: "2.50"
    output: "10"
    cached_inptu: "1.25"
    retrieved: 2025-01-01
overrides:
  - scope: acount
    name: contoso
    discount_percent: 150
    source: test
"""


def test_a_bad_price_book_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_BOOK, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_price_book(path)
    found = [(p.line, p.message, p.hint) for p in caught.value.problems]
    assert all(p.path == path for p in caught.value.problems)
    text = str(caught.value)
    assert f"{path}:1: currency: only USD" in text
    assert (4, "rows[0].deployment_type: 'GlobalStandart' is not allowed", "did you mean 'GlobalStandard'?") in found
    assert (7, "rows[0].output: 'ten' is not a number", "") in found
    assert (12, "rows[1].effective: 'someday' is not a date", "write YYYY-MM-DD") in found
    assert any(line == 13 and "ptu_hour" in msg for line, msg, _ in found)
    assert any(line == 14 and "billed per PTU-hour" in msg for line, msg, _ in found)
    assert (22, "rows[2].cached_inptu: unknown key", "did you mean 'cached_input'?") in found
    assert (17, "rows[2]: 'source' is required", "") in found
    assert (25, "overrides[0].scope: 'acount' is not allowed", "did you mean 'account'?") in found
    assert any(line == 27 and "more than 100" in msg for line, msg, _ in found)
    assert len(found) == 10


def test_invalid_yaml_is_located(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("rows:\n  - model: [gpt-4o\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_price_book(path)
    assert caught.value.problems[0].line is not None


ONE_RATE = """\
rows:
  - model: text-embedding-3-small
    deployment_type: GlobalStandard
    effective: 2025-01-01
    input: "0.02"
    output: null
    source: one input meter
    retrieved: 2025-01-01
  - model: gpt-4.1
    deployment_type: GlobalStandard
    effective: 2025-01-01
    input: "2.2"
    output: null
    source: the output meter is not listed yet
    retrieved: 2025-01-01
  - model: gpt-4.1
    deployment_type: DataZoneBatch
    effective: 2025-01-01
    input: "1.1"
    cached_input: "0.275"
    output: "4.4"
    source: test figure
    retrieved: 2025-01-01
"""


def test_an_embedding_row_priced_by_its_one_rate_is_priced_and_a_chat_row_without_output_is_not(
        tmp_path: Path) -> None:
    path = tmp_path / "book.yaml"
    path.write_text(ONE_RATE, encoding="utf-8")
    book = load_price_book(path)
    at = datetime(2025, 3, 1, tzinfo=UTC)
    embedding = price_for(book, "text-embedding-3-small", "1", "GlobalStandard", "eastus", at)
    assert embedding is not None and not embedding.unpriced
    assert cost_of_tokens(embedding, 2_000_000, 0, 0) == Decimal("0.04")
    chat = price_for(book, "gpt-4.1", None, "GlobalStandard", "eastus", at)
    assert chat is not None and chat.unpriced and cost_of_tokens(chat, 1_000_000, 0, 1_000) == 0


def test_data_zone_batch_is_a_deployment_type_of_the_book(tmp_path: Path) -> None:
    assert "DataZoneBatch" in DEPLOYMENT_TYPES and set(METERED_TYPES) == set(DEPLOYMENT_TYPES)
    path = tmp_path / "book.yaml"
    path.write_text(ONE_RATE, encoding="utf-8")
    row = price_for(load_price_book(path), "gpt-4.1", None, "DataZoneBatch", None, datetime(2025, 3, 1, tzinfo=UTC))
    assert row is not None and not row.provisioned and not row.unpriced
    assert cost_of_tokens(row, 1_000_000, 500_000, 1_000_000) == Decimal("0.55") + Decimal("0.1375") + Decimal("4.4")


def test_read_price_book_keeps_the_files_own_rows_apart_from_the_book_it_extends(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("extends: default\nrows:\n  - model: gpt-4o\n    deployment_type: GlobalStandard\n"
                    "    effective: 2024-01-01\n    input: '2'\n    output: '8'\n    source: my agreement\n"
                    "    retrieved: 2025-01-01\n", encoding="utf-8")
    read = read_price_book(path)
    assert [r.source for r in read.rows] == ["my agreement"]
    assert read.base is not None and read.base.rows == load_price_book(DEFAULT).rows
    merged = load_price_book(path)
    assert merged == read.book and len(merged.rows) == len(read.base.rows)  # the base row of the same id replaced
    assert [r for r in merged.rows if r.id == "gpt-4o/GlobalStandard/2024-01-01"] == list(read.rows)
