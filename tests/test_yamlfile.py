"""The one YAML reader: bounded against alias bombs, deep nesting and huge files; dates and merge keys located."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from alerts.errors import SpecError
from alerts.spec import load_rule_set
from collector.config import load_settings
from collector.cost.attribution import load_attribution_rules
from collector.cost.budgets import load_budgets
from collector.cost.inventory import load_inventory_file
from collector.cost.pricing import load_price_book
from collector.errors import InputError
from collector.yamlfile import MAX_NODES, parse_text, read_file

#: The classic "billion laughs": nine levels of nine aliases, 9^9 strings once expanded.
BOMB = "\n".join(
    ['a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]']
    + [f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
) + "\n"
DEEP = "x: " + "[" * 3000 + "]" * 3000 + "\n"
#: 3,000 levels of block mappings, one more space of indentation each (4.5 MB).
DEEP_BLOCKS = "".join(" " * i + "k:\n" for i in range(3000))

LOADERS: dict[str, Callable[[Path], Any]] = {
    "settings": lambda path: load_settings(path, {}),
    "attribution rules": load_attribution_rules,
    "price book": load_price_book,
    "budgets": load_budgets,
    "inventory": load_inventory_file,
    "alert rules": lambda path: load_rule_set([path]),
}


def test_the_bomb_is_the_size_the_issue_names() -> None:
    assert 300 <= len(BOMB.encode()) <= 330


@pytest.mark.parametrize("kind", list(LOADERS))
@pytest.mark.parametrize(("name", "text", "line", "says"), [
    ("bomb", BOMB, 2, "expand to more than"),
    ("deep", DEEP, 1, "nests deeper than"),
    ("deep-blocks", DEEP_BLOCKS, 64, "nests deeper than"),
])
def test_every_input_kind_refuses_bombs_and_depth_with_one_located_error(
        tmp_path: Path, kind: str, name: str, text: str, line: int, says: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises((InputError, SpecError)) as raised:
            LOADERS[kind](path)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    problems = raised.value.problems
    assert len(problems) == 1, problems
    assert problems[0].path == path and problems[0].line == line
    assert says in problems[0].message
    assert elapsed < 1.0
    assert peak < 100 * 1024 * 1024


def test_a_self_referencing_alias_is_located(tmp_path: Path) -> None:
    parsed = parse_text(tmp_path / "x.yaml", "a: &a\n  b: *a\n")
    assert parsed.data is None
    assert [(p.line, "contains itself" in p.message) for p in parsed.problems] == [(2, True)]


def test_an_invalid_date_is_reported_at_its_line(tmp_path: Path) -> None:
    parsed = parse_text(tmp_path / "x.yaml", "a: 1\nb:\n  effective: 2026-02-30\n")
    assert parsed.data is None
    assert len(parsed.problems) == 1
    assert parsed.problems[0].line == 3
    assert "'2026-02-30' is not a valid date" in parsed.problems[0].message


def test_an_invalid_date_in_a_price_book_is_located(tmp_path: Path) -> None:
    path = tmp_path / "book.yaml"
    path.write_text("currency: USD\nrows:\n  - model: gpt-4o\n    effective: 2025-13-01\n")
    with pytest.raises(InputError) as raised:
        load_price_book(path)
    assert [p.line for p in raised.value.problems] == [4]


def test_merge_keys_are_resolved_and_their_keys_located(tmp_path: Path) -> None:
    text = "base: &base\n  a: 1\n  b: 2\nrule:\n  <<: *base\n  b: 3\n  c: 4\n"
    parsed = parse_text(tmp_path / "x.yaml", text)
    assert parsed.problems == []
    assert parsed.data["rule"] == {"a": 1, "b": 3, "c": 4}
    assert parsed.lines[("rule", "a")] == 2  # inherited: the anchor's line
    assert parsed.lines[("rule", "b")] == 6  # the mapping's own key wins
    assert ("rule", "<<") not in parsed.lines


def test_a_key_given_twice_is_still_reported(tmp_path: Path) -> None:
    parsed = parse_text(tmp_path / "x.yaml", "a: 1\nb: 2\na: 3\n")
    assert [(p.line, "given twice" in p.message) for p in parsed.problems] == [(3, True)]


def test_moderate_reuse_through_anchors_is_fine(tmp_path: Path) -> None:
    text = "common: &c {x: 1, y: [1, 2, 3]}\n" + "".join(f"k{i}: *c\n" for i in range(1000))
    parsed = parse_text(tmp_path / "x.yaml", text)
    assert parsed.problems == []
    assert len(parsed.data) == 1001
    assert MAX_NODES > 1000 * 9


def test_brackets_inside_quotes_and_comments_do_not_count_as_nesting(tmp_path: Path) -> None:
    text = "a: '" + "[" * 100 + "'\nb: \"" + "{" * 100 + "\"\n# " + "[" * 100 + "\nc: it's [1, [2]]\n"
    parsed = parse_text(tmp_path / "x.yaml", text)
    assert parsed.problems == []
    assert parsed.data["c"] == "it's [1, [2]]"


def test_a_file_over_the_size_bound_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("w") as f:
        f.write("a: '" + "x" * (6 * 1024 * 1024) + "'\n")
    parsed = read_file(path, "settings file")
    assert parsed.data is None
    assert "larger than" in parsed.problems[0].message
