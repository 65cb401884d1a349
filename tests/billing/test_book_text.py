"""The synced rows replaced in a book's text, everything a person wrote kept as written: input/output pairs."""

from __future__ import annotations

import pytest

from collector.billing.book_text import LayoutError, replace_synced_rows

NEW = '  - id: "new"\n    source: "Azure Retail Prices API: input meter m2"\n'
OLD = '  - id: "old"\n    source: "Azure Retail Prices API: input meter m1"\n'
MINE = "  # my rate\n  - model: a\n    source: mine  # why\n"

CASES = {
    "a first sync puts the rows first under `rows:`": (
        f"currency: USD\nrows:\n{MINE}overrides: []\n",
        f"currency: USD\nrows:\n{NEW}{MINE}overrides: []\n"),
    "the old synced rows are replaced where they were": (
        f"# head\nrows:\n{OLD}{OLD.replace('old', 'older')}\n{MINE}",
        f"# head\nrows:\n{NEW}\n{MINE}"),
    "a comment after a synced row stays": (
        f"rows:\n{OLD}  # about a\n  - model: a\n    source: mine\n",
        f"rows:\n{NEW}  # about a\n  - model: a\n    source: mine\n"),
    "dashes in column 0 are followed": (
        "rows:\n- model: a\n  source: mine\n",
        'rows:\n- id: "new"\n  source: "Azure Retail Prices API: input meter m2"\n- model: a\n  source: mine\n'),
    "an empty flow list gives way, its comment stays": (
        "rows: []  # none yet\noverrides: []\n",
        f"rows:  # none yet\n{NEW}overrides: []\n"),
    "an empty `rows:` is filled": (
        "extends: default\nrows:\noverrides: []\n",
        f"extends: default\nrows:\n{NEW}overrides: []\n"),
    "a book with no rows gets them at its end": (
        "extends: default\noverrides: []",
        f"extends: default\noverrides: []\nrows:\n{NEW}"),
    "the last row, without a newline": (
        "rows:\n  - model: a\n    source: mine",
        f"rows:\n{NEW}  - model: a\n    source: mine"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_synced_rows_are_replaced_and_the_rest_kept(case: str) -> None:
    before, expected = CASES[case]
    after = replace_synced_rows(before, NEW)
    assert after == expected
    assert replace_synced_rows(after, NEW) == after  # the same rows again: the same text


def test_no_synced_rows_left_removes_the_old_ones_only() -> None:
    assert replace_synced_rows(f"rows:\n{OLD}{MINE}", "") == f"rows:\n{MINE}"


def test_a_flow_list_of_rows_is_refused() -> None:
    with pytest.raises(LayoutError, match="flow list"):
        replace_synced_rows("rows: [{model: a, source: mine}]\n", NEW)
