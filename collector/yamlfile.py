"""Line-aware reading of the user's YAML files: every key's line, duplicate keys, problems located at them.

Settings, the price book and the attribution rules all read their files through here. (`alerts` has its own
`alerts/yamlfile.py`: it may not import the collector.)
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from collector.errors import InputError, Problem

Loc = tuple[str | int, ...]


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """A hint naming the closest choice, or listing them all when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(choices)}"


def dotted(loc: Loc) -> str:
    """A location as people write it: `sources[0].path`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def index_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, int], problems: list[Problem], path: Path) -> None:
    """Record the line of every key and list item under `node`; a key given twice is a problem."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name, line = str(key.value), key.start_mark.line + 1
            if name in seen:
                message = f"{dotted((*loc, name))} is given twice (first at line {seen[name]})"
                problems.append(Problem(path, line, message, "keep one of them"))
            seen.setdefault(name, line)
            lines[(*loc, name)] = line
            index_lines(value, (*loc, name), lines, problems, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*loc, i)] = item.start_mark.line + 1
            index_lines(item, (*loc, i), lines, problems, path)


def read_located_yaml(
    path: Path, what: str, *, summary: str = "", not_found_hint: str = ""
) -> tuple[Any, dict[Loc, int], list[Problem]]:
    """The document, the line of every key and list item, and the duplicate keys; a file that cannot be read as
    YAML raises one located problem. `what` names the file in messages ("settings file", "price book")."""
    summary = summary or f"1 problem in the {what} ({path})"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError([Problem(path, None, f"{what} not found", not_found_hint)], summary) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError([Problem(path, None, f"cannot read the {what}: {e}")], summary) from e
    try:
        # The reader checks characters as soon as it is built: a control character raises here already.
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as e:
        raise InputError([Problem(path, None, f"invalid YAML: {e}", "remove the control character")], summary) from e
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"column {mark.column + 1}: " if mark is not None else ""
        raise InputError([Problem(path, mark.line + 1 if mark is not None else None,
                                  f"invalid YAML at {where}{e.problem or e.context}", e.context or "")],
                         summary) from e
    except yaml.YAMLError as e:
        raise InputError([Problem(path, None, f"invalid YAML: {e}")], summary) from e
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    problems: list[Problem] = []
    if node is not None:
        lines[()] = node.start_mark.line + 1
        index_lines(node, (), lines, problems, path)
    return data, lines, problems


class Located:
    """Collects problems against a file, each at the line of the nearest located key."""

    def __init__(self, path: Path, lines: dict[Loc, int], problems: list[Problem]) -> None:
        self.path, self.lines, self.problems = path, lines, problems

    def add(self, loc: Loc, message: str, hint: str = "") -> None:
        probe = loc
        while probe and probe not in self.lines:
            probe = probe[:-1]
        where = dotted(loc)
        self.problems.append(Problem(self.path, self.lines.get(probe), f"{where}: {message}" if where else message,
                                     hint))

    def mapping(self, value: Any, loc: Loc, allowed: Sequence[str], required: Sequence[str] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.add(loc, "must be a mapping")
            return {}
        for key in value:
            if str(key) not in allowed:
                self.add((*loc, str(key)), "unknown key", did_you_mean(str(key), allowed))
        for key in required:
            if key not in value:
                self.add(loc, f"{key!r} is required")
        return value

    def text(self, value: Any, loc: Loc) -> str | None:
        if isinstance(value, str) and value.strip():
            return value
        self.add(loc, f"must be non-empty text, not {value!r}")
        return None

    def choice(self, value: Any, loc: Loc, choices: Sequence[str]) -> str | None:
        if isinstance(value, str) and value in choices:
            return value
        self.add(loc, f"{value!r} is not allowed", did_you_mean(str(value), choices))
        return None

    def decimal(self, value: Any, loc: Loc, minimum: Decimal = Decimal(0)) -> Decimal | None:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.add(loc, f"{value!r} is not a number")
            return None
        try:
            number = Decimal(str(value).strip())  # str() of a YAML float is its shortest exact spelling
        except InvalidOperation:
            self.add(loc, f"{value!r} is not a number")
            return None
        if not number.is_finite() or number < minimum:
            self.add(loc, f"{value!r} must be a number of at least {minimum}")
            return None
        return number

    def instant(self, value: Any, loc: Loc) -> datetime | None:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        self.add(loc, f"{value!r} is not a date", "write YYYY-MM-DD")
        return None

    def raise_if_any(self, what: str) -> None:
        if self.problems:
            self.problems.sort(key=lambda p: p.line or 0)  # stable: a line's problems keep their order
            raise InputError(self.problems, f"{len(self.problems)} problem(s) in the {what} ({self.path})")
