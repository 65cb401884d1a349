"""Fixtures of the dashboards' tests: the demo store with an imported bill and its planted discrepancies
(tests/billing/billed_store.py), priced with rules that give one team a name made of markup."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from collector.config import load_settings
from collector.cost.inventory import Inventory
from tests.billing.billed_store import DEPLOYMENTS, EXAMPLES, NOW, BilledDemo, build_billed_demo

#: The team the demo's rules call `platform`, renamed: markup and a plotly template, to be shown as text.
HOSTILE_TEAM = "<img src=x onerror=alert(1)> & %{y}"


@dataclass(frozen=True)
class Billed:
    demo: BilledDemo
    rules: Path

    def settings(self) -> Any:
        return load_settings(None, {"AOAI_OBS_PRICES__BOOK": str(EXAMPLES / "demo-prices.yaml"),
                                    "AOAI_OBS_TEAMS__RULES": str(self.rules)})

    @staticmethod
    def inventory() -> Inventory:
        return Inventory.of(list(DEPLOYMENTS))

    @staticmethod
    def now() -> Any:
        return NOW


@pytest.fixture(scope="session")
def billed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Billed]:
    root = tmp_path_factory.mktemp("billed")
    rules = root / "teams.yaml"
    text = (EXAMPLES / "demo-teams.yaml").read_text(encoding="utf-8")
    assert "    team: platform\n" in text
    rules.write_text(text.replace("    team: platform\n", f'    team: "{HOSTILE_TEAM}"\n'), encoding="utf-8")
    yield Billed(build_billed_demo(root, rules), rules)
