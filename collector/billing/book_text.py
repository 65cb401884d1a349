"""Pure: a price book's text with the rows the sync owns replaced, and everything a person wrote kept as written.

The sync owns the rows whose `source` starts with "Azure Retail Prices API" (it writes every row that way); every
other row, the `overrides:` section, `extends`, `currency` and every comment are a person's, and stay byte for byte.
The synced rows go where the first of the old ones was, or, when there were none, first under `rows:`, so that the
same rows give the same text on every sync.

The text is expected to have been read and checked by `collector.cost.pricing.read_price_book` already (bounded,
valid YAML); the caller checks the result the same way before writing it.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from collector.billing.price_sync import SOURCE_PREFIX

#: The column of the dashes of `price_sync.render_rows`.
RENDERED_DASH_COLUMN = 2


class LayoutError(ValueError):
    """The book is written in a form whose synced rows cannot be replaced without rewriting what a person wrote."""


@dataclass(frozen=True)
class _Item:
    first_line: int  # 0-based, the line of its dash
    last_line: int  # 0-based, inclusive: its last line with content (trailing comments and blank lines excluded)
    dash_column: int
    owned: bool


def is_owned(source: object) -> bool:
    """Whether a row's source says the sync wrote it."""
    return isinstance(source, str) and source.startswith(SOURCE_PREFIX)


def replace_synced_rows(text: str, rows_text: str) -> str:
    """`text` with the rows the sync owns replaced by `rows_text` (rendered rows, dashes in column 2)."""
    lines = text.splitlines(keepends=True)
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        raise LayoutError("the price book is not a mapping of `currency`, `extends`, `rows` and `overrides`")
    found = next(((k, v) for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "rows"), None)
    if found is None:
        if not rows_text:
            return text
        ending = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{ending}rows:\n{rows_text}"
    key, value = found
    if isinstance(value, yaml.ScalarNode) or (isinstance(value, yaml.SequenceNode) and not value.value):
        if not rows_text:
            return text
        # `rows:`, `rows: null` or `rows: []`: the written empty value goes, and the rows follow the key's line.
        row = key.start_mark.line
        if value.start_mark.index < value.end_mark.index:
            if value.start_mark.line != row or value.end_mark.line != row:
                raise LayoutError("`rows:` has an empty value on a later line: write `rows:` alone")
            line = lines[row]
            lines[row] = line[:value.start_mark.column].rstrip(" ") + line[value.end_mark.column:]
        if not lines[row].endswith("\n"):
            lines[row] += "\n"
        lines.insert(row + 1, rows_text)
        return "".join(lines)
    if not isinstance(value, yaml.SequenceNode) or value.flow_style:
        raise LayoutError("`rows` is written as a flow list ([...]): write it as a block list, one `- ` per row")
    items = [_item(text, lines, node) for node in value.value]
    columns = {item.dash_column for item in items}
    if len(columns) != 1:
        raise LayoutError("the rows' dashes are not in one column")
    rendered = _indent(rows_text, columns.pop() - RENDERED_DASH_COLUMN)
    owned = [item for item in items if item.owned]
    at = owned[0].first_line if owned else key.start_mark.line + 1
    drop = {n for item in owned for n in range(item.first_line, item.last_line + 1)}
    kept = [line for n, line in enumerate(lines) if n not in drop]
    at -= sum(1 for n in drop if n < at)
    if at > len(kept):
        raise LayoutError("the rows could not be placed")
    if at == len(kept) and kept and not kept[-1].endswith("\n"):
        kept[-1] += "\n"
    return "".join(kept[:at]) + rendered + "".join(kept[at:])


def _item(text: str, lines: list[str], node: yaml.Node) -> _Item:
    dash = text.rfind("-", 0, node.start_mark.index)
    if dash < 0:
        raise LayoutError("a row without its dash")
    first = text.count("\n", 0, dash)
    dash_column = dash - (text.rfind("\n", 0, dash) + 1)
    end = node.end_mark
    last = end.line if lines and end.line < len(lines) and lines[end.line][:end.column].strip() else end.line - 1
    last = min(last, len(lines) - 1)
    while last > first and (not lines[last].strip() or lines[last].lstrip().startswith("#")):
        last -= 1
    source = None
    if isinstance(node, yaml.MappingNode):
        source = next((v.value for k, v in node.value
                       if isinstance(k, yaml.ScalarNode) and k.value == "source" and isinstance(v, yaml.ScalarNode)),
                      None)
    return _Item(first, last, dash_column, is_owned(source))


def _indent(rows_text: str, shift: int) -> str:
    if shift == 0:
        return rows_text
    out = []
    for line in rows_text.splitlines(keepends=True):
        out.append(" " * shift + line if shift > 0 else line[-shift:])
    return "".join(out)
