"""The README's module map names every module of the collector, and no module that is gone."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _map() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Development", 1)[1]
    return section.split("```text", 1)[1].split("```", 1)[0]


def test_every_collector_module_is_in_the_readme_map() -> None:
    listed = _map()
    modules = sorted(p.relative_to(REPO / "collector") for p in (REPO / "collector").rglob("*.py")
                     if p.name != "__init__.py" and "migrations" not in p.parts)
    missing = [str(m) for m in modules if not re.search(rf"(?<![\w/]){re.escape(m.name)}(?!\w)", listed)]
    assert missing == []


def test_every_module_the_map_names_exists() -> None:
    names = set(re.findall(r"\b([a-z_]+\.py)\b", _map()))
    present = {p.name for root in ("collector", "dashboards", "alerts") for p in (REPO / root).rglob("*.py")}
    assert sorted(names - present) == []
