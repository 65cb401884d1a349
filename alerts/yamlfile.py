"""Line-aware YAML reading: the data of one rule file, the line of every key and item, and located problems."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alerts.errors import Problem

Loc = tuple[str | int, ...]


def dotted(loc: Loc) -> str:
    """rules[2].dimensions.StatusCode: how a location is named in messages."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def kind_of(value: object) -> str:
    """How a YAML value is described in messages: `a list`, `the string 'x'`, `nothing`."""
    if value is None:
        return "nothing"
    if isinstance(value, bool | int | float):
        return f"{value!r}"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) <= 60 else "a long string"
    if isinstance(value, dict):
        return "a mapping"
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"


def did_you_mean(word: object, candidates: Iterable[str]) -> str:
    """A hint naming the closest candidate (matched case-insensitively), or all of them when none is close."""
    options = sorted(set(candidates))
    by_fold = {c.casefold(): c for c in options}
    close = difflib.get_close_matches(str(word).casefold(), list(by_fold), n=1, cutoff=0.6)
    if close:
        return f"did you mean {by_fold[close[0]]!r}?"
    return f"expected one of: {', '.join(options)}" if options else ""


@dataclass
class YamlFile:
    """One parsed rule file: its data, the line of each location, and the problems found in it so far."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def line(self, loc: Loc) -> int | None:
        """The line of a location, or of its nearest ancestor that has one."""
        return next((self.lines[loc[:i]] for i in range(len(loc), -1, -1) if loc[:i] in self.lines), None)

    def problem(self, loc: Loc, message: str, hint: str = "") -> None:
        """Record a problem at a location."""
        self.problems.append(Problem(self.path, self.line(loc), message, hint))

    def where(self, loc: Loc) -> str:
        """path:line of a location, to name the other place in a duplicate."""
        line = self.line(loc)
        return f"{self.path}:{line}" if line is not None else str(self.path)

    # Typed reads: each returns None (and records a problem) when the value has the wrong type.

    def mapping(self, loc: Loc, value: object, allowed: Iterable[str] | None = None) -> dict[str, Any] | None:
        """A mapping with string keys; with `allowed`, unknown keys are reported with "did you mean"."""
        if not isinstance(value, dict):
            self.problem(loc, f"{dotted(loc) or 'the file'} must be a mapping, not {kind_of(value)}")
            return None
        known = list(allowed) if allowed is not None else None
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                self.problem(loc, f"{dotted(loc) or 'the file'}: key {key!r} must be a string")
            elif known is not None and key not in known:
                where = f" in {dotted(loc)}" if loc else ""
                self.problem((*loc, key), f"unknown key {key!r}{where}", did_you_mean(key, known))
            else:
                result[key] = item
        return result

    def text(self, loc: Loc, value: object) -> str | None:
        """A non-empty string."""
        if not isinstance(value, str) or not value.strip():
            self.problem(loc, f"{dotted(loc)} must be a non-empty string, not {kind_of(value)}")
            return None
        return value.strip()

    def flag(self, loc: Loc, value: object) -> bool | None:
        """true or false."""
        if not isinstance(value, bool):
            self.problem(loc, f"{dotted(loc)} must be true or false, not {kind_of(value)}")
            return None
        return value

    def whole(self, loc: Loc, value: object, low: int, high: int | None = None) -> int | None:
        """A whole number in [low, high]; YAML booleans are not numbers here."""
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            self.problem(loc, f"{dotted(loc)} must be a whole number {bounds}, not {kind_of(value)}")
            return None
        return value

    def number(self, loc: Loc, value: object) -> float | None:
        """A finite number."""
        if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
            self.problem(loc, f"{dotted(loc)} must be a number, not {kind_of(value)}")
            return None
        return float(value)

    def strings(self, loc: Loc, value: object, *, scalars: bool = False) -> list[str] | None:
        """A non-empty list of non-empty strings (one string alone counts as a list of one); with `scalars`, numbers
        are taken as their text, so that `StatusCode: [429]` means '429'."""
        items = value if isinstance(value, list) else [value]
        result: list[str] = []
        for i, item in enumerate(items):
            at = (*loc, i) if isinstance(value, list) else loc
            if scalars and isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str) or not item.strip():
                self.problem(at, f"{dotted(at)} must be a non-empty string, not {kind_of(item)}")
                return None
            result.append(item.strip())
        if not result:
            self.problem(loc, f"{dotted(loc)} must not be empty")
            return None
        return result


def _index_lines(node: yaml.Node, loc: Loc, file: YamlFile) -> None:
    """Record the line of every key and list item, and report keys given twice (PyYAML keeps the last silently)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name, line = str(key.value), key.start_mark.line + 1
            if name in seen:
                file.problems.append(Problem(file.path, line, f"{dotted((*loc, name))} is given twice (first at "
                                                              f"line {seen[name]})", "keep one of them"))
            seen.setdefault(name, line)
            file.lines[(*loc, name)] = line
            _index_lines(value, (*loc, name), file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            file.lines[(*loc, i)] = item.start_mark.line + 1
            _index_lines(item, (*loc, i), file)


def parse_yaml(path: Path, text: str) -> YamlFile:
    """Parse one document. Syntax errors become a single located problem and data None; never raises for input."""
    file = YamlFile(path, None)
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # already reads the text: refuses control characters here
        node = loader.get_single_node()
        file.data = loader.construct_document(node) if node is not None else None
        if node is not None:
            file.lines[()] = node.start_mark.line + 1
            _index_lines(node, (), file)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"column {mark.column + 1}: " if mark is not None else ""
        file.data, file.lines = None, {}
        file.problems[:] = [Problem(path, mark.line + 1 if mark is not None else None,
                                    f"invalid YAML at {where}{e.problem or e.context}", e.context or "")]
    except RecursionError:
        file.data, file.lines = None, {}
        file.problems[:] = [Problem(path, None, "invalid YAML: an alias (*name) contains itself",
                                    "YAML anchors must not refer to their own contents")]
    except (yaml.YAMLError, ValueError) as e:  # a bad timestamp raises ValueError while constructing
        file.data, file.lines = None, {}
        file.problems[:] = [Problem(path, None, f"invalid YAML: {e}")]
    finally:
        if loader is not None:
            loader.dispose()
    return file


def read_yaml(path: Path) -> YamlFile:
    """Read and parse one file; an unreadable file is a problem, not an exception."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return YamlFile(path, None, problems=[Problem(path, None, "file not found")])
    except (OSError, UnicodeDecodeError) as e:
        return YamlFile(path, None, problems=[Problem(path, None, f"cannot read the file: {e}")])
    return parse_yaml(path, text)
