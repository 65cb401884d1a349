"""Line-aware, bounded reading of the user's YAML files: every key's line, duplicate keys, problems located at them.

The one reader of every YAML file the product reads: settings, attribution rules, price book, budgets, inventory, and
`alerts`' rule files (the import-linter contract lets `alerts` import this module). A file is refused, with its
line, when it is larger than `MAX_BYTES`, nests deeper than `MAX_DEPTH`, or when its aliases and merge keys (`<<`)
would expand to more than `MAX_NODES` nodes (a 300-byte "billion laughs" file would otherwise take gigabytes in
whatever walks the data). A date that does not exist (2026-02-30) is reported at its line, as is any syntax error.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from collector.errors import InputError, Problem

Loc = tuple[str | int, ...]

#: Far above any real settings, rules or price book (the shipped alert pack is 20 KB), far below what hurts.
MAX_BYTES = 5 * 1024 * 1024
#: Nesting of mappings and lists; a real file nests under ten.
MAX_DEPTH = 64
#: Nodes of the document once every alias and merge key is expanded.
MAX_NODES = 200_000
MERGE = "<<"


def did_you_mean(word: object, candidates: Iterable[str]) -> str:
    """A hint naming the closest candidate (matched case-insensitively), or all of them when none is close."""
    options = list(dict.fromkeys(candidates))
    by_fold = {c.casefold(): c for c in options}
    close = difflib.get_close_matches(str(word).casefold(), list(by_fold), n=1, cutoff=0.6)
    if close:
        return f"did you mean {by_fold[close[0]]!r}?"
    return f"expected one of: {', '.join(options)}" if options else ""


def dotted(loc: Loc) -> str:
    """A location as people write it: `sources[0].path`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


class _TooLarge(yaml.MarkedYAMLError):
    """The document is deeper, or expands to more nodes, than the bounds allow."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a depth bound while composing, and dates checked where they are written."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooLarge(None, None, f"the document nests deeper than {MAX_DEPTH} levels",
                                self.peek_event().start_mark)  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> datetime | date:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as e:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid date or time ({e})", node.start_mark) from e


_BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", _BoundedLoader.construct_yaml_timestamp)


class _SelfReference(Exception):
    """An alias refers to a node that contains it."""


def _expanded_size(root: yaml.Node) -> int:
    """Nodes of the document with every alias expanded, counted without expanding it (shared nodes are counted
    once per use through a memo), so a billion-laughs file is measured in microseconds. A node that contains
    itself through an alias raises _SelfReference."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        if done:
            open_nodes.discard(id(node))
            sizes[id(node)] = min(MAX_NODES + 1, 1 + sum(sizes[id(c)] for c in children))
            continue
        if id(node) in open_nodes:
            raise _SelfReference
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                raise _SelfReference
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


_STRUCTURE = re.compile(r"""[\[\]{}'"#\n\\]""")


def _flow_too_deep(text: str) -> int | None:
    """The line where `[` and `{` nest deeper than MAX_DEPTH, outside quoted scalars and comments, if any. PyYAML's
    scanner reads a nested flow collection ahead in time quadratic in its depth, so this is checked on the text
    before the scanner sees it (a quote counts as opening a scalar only where a scalar can start)."""
    depth, line, quote, skip_to = 0, 1, "", -1
    for match in _STRUCTURE.finditer(text):
        i, char = match.start(), match.group()
        if char == "\n":
            line += 1
        if i < skip_to:
            continue
        previous = text[i - 1] if i else "\n"
        if quote:
            if char == "\\" and quote == '"':
                skip_to = i + 2
            elif char == quote:
                if quote == "'" and text.startswith("'", i + 1):
                    skip_to = i + 2
                else:
                    quote = ""
        elif char in "'\"":
            if previous in " \t\n[{,:-":
                quote = char
        elif char == "#":
            if previous in " \t\n":
                end = text.find("\n", i)
                skip_to = len(text) if end < 0 else end
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif char in "]}":
            depth = max(0, depth - 1)
    return None


def _first_alias_line(text: str) -> int | None:
    for number, line in enumerate(text.splitlines(), 1):
        if "*" in line and not line.lstrip().startswith("#"):
            return number
    return None


def _index_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, int], problems: list[Problem], path: Path) -> None:
    """Record the line of every key and list item under `node`; a key given twice is a problem. Keys that come in
    through a merge key (`<<: *base`) take the line of their anchor and give way to the mapping's own keys."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        merged: list[yaml.Node] = []
        for key, value in node.value:
            name, line = str(key.value), key.start_mark.line + 1
            if isinstance(key, yaml.ScalarNode) and name == MERGE and key.tag == "tag:yaml.org,2002:merge":
                merged.extend(value.value if isinstance(value, yaml.SequenceNode) else [value])
                continue
            if name in seen:
                message = f"{dotted((*loc, name))} is given twice (first at line {seen[name]})"
                problems.append(Problem(path, line, message, "keep one of them"))
            seen.setdefault(name, line)
            lines[(*loc, name)] = line
            _index_lines(value, (*loc, name), lines, problems, path)
        for base in merged:
            inherited: dict[Loc, int] = {}
            _index_lines(base, loc, inherited, [], path)
            for at, line in inherited.items():
                lines.setdefault(at, line)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*loc, i)] = item.start_mark.line + 1
            _index_lines(item, (*loc, i), lines, problems, path)


@dataclass
class Parsed:
    """A parsed file: its data (None when unreadable), the line of each location, and its problems so far."""

    path: Path
    data: Any = None
    lines: dict[Loc, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        """Whether the file could not be read as YAML at all (syntax, size, bounds): then `data` is None."""
        return self.data is None and bool(self.problems) and not self.lines


def parse_text(path: Path, text: str) -> Parsed:
    """Parse one YAML document within the bounds. Never raises for bad input: a file that cannot be read as YAML
    gives one located problem and data None."""
    parsed = Parsed(path)
    if len(text) > MAX_BYTES:
        parsed.problems.append(Problem(path, None, f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB",
                                       "split it, or check that it is the file you meant"))
        return parsed
    deep = _flow_too_deep(text)
    if deep is not None:
        parsed.problems.append(Problem(path, deep, f"the document nests deeper than {MAX_DEPTH} levels",
                                       "flatten the structure"))
        return parsed
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # reads the text at once: refuses control characters here
        node = loader.get_single_node()
        if node is None:
            return parsed
        if _expanded_size(node) > MAX_NODES:
            parsed.problems.append(Problem(
                path, _first_alias_line(text), f"the aliases (*name) and merge keys expand to more than {MAX_NODES:,} "
                                               "values", "repeat less through anchors; write the values out"))
            return parsed
        lines: dict[Loc, int] = {(): node.start_mark.line + 1}
        problems: list[Problem] = []
        _index_lines(node, (), lines, problems, path)
        parsed.data = loader.construct_document(node)
        parsed.lines, parsed.problems = lines, problems
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"column {mark.column + 1}: " if mark is not None else ""
        parsed.problems.append(Problem(path, mark.line + 1 if mark is not None else None,
                                       f"invalid YAML at {where}{e.problem or e.context}", e.context or ""))
    except (_SelfReference, RecursionError):  # an alias inside its own anchor: composing allows it
        parsed.problems.append(Problem(path, _first_alias_line(text), "invalid YAML: an alias (*name) contains "
                                       "itself, or aliases nest too deep", "YAML anchors must not refer to their "
                                                                           "own contents"))
    except (yaml.YAMLError, ValueError) as e:
        hint = "remove the control character" if isinstance(e, yaml.reader.ReaderError) else ""
        parsed.problems.append(Problem(path, None, f"invalid YAML: {e}", hint))
    finally:
        if loader is not None:
            loader.dispose()
    return parsed


def read_file(path: Path, what: str = "file", not_found_hint: str = "") -> Parsed:
    """Read and parse one file; an unreadable file is a located problem, not an exception."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            return Parsed(path, problems=[Problem(path, None, f"the {what} is larger than "
                                                              f"{MAX_BYTES // (1024 * 1024)} MB ({size:,} bytes)",
                                                  "check that it is the file you meant")])
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Parsed(path, problems=[Problem(path, None, f"{what} not found", not_found_hint)])
    except (OSError, UnicodeDecodeError) as e:
        return Parsed(path, problems=[Problem(path, None, f"cannot read the {what}: {e}")])
    return parse_text(path, text)


def read_located_yaml(
    path: Path, what: str, *, summary: str = "", not_found_hint: str = ""
) -> tuple[Any, dict[Loc, int], list[Problem]]:
    """The document, the line of every key and list item, and the duplicate keys; a file that cannot be read as
    YAML raises one located problem. `what` names the file in messages ("settings file", "price book")."""
    parsed = read_file(path, what, not_found_hint)
    if parsed.refused:
        raise InputError(parsed.problems, summary or f"1 problem in the {what} ({path})")
    return parsed.data, parsed.lines, parsed.problems


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
