"""The example settings name cost files that load: rules, price book, inventory and budgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import load_settings
from collector.cost.attribution import load_attribution_rules
from collector.cost.budgets import load_budgets
from collector.cost.inventory import load_inventory_file
from collector.cost.pricing import load_price_book

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["aoai-obs.yaml", "demo.yaml"])
def test_example_settings_name_cost_files_that_load(name: str) -> None:
    settings = load_settings(EXAMPLES / name, {})
    assert load_attribution_rules(settings.teams.rules).rules
    assert load_price_book(settings.prices.book).rows
    assert load_budgets(settings.budgets.file).budgets
    if settings.inventory.file is not None:
        assert len(load_inventory_file(settings.inventory.file)) > 0
