"""Rule files as `alerts` reads them: the shared bounded reader (`collector.yamlfile`) with typed, located reads."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from collector import yamlfile
from collector.errors import Problem
from collector.yamlfile import Loc, Parsed, dotted, parse_text, read_file

__all__ = ["Loc", "YamlFile", "did_you_mean", "dotted", "kind_of", "parse_yaml", "read_yaml"]


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
    """The shared hint, with the candidates listed in alphabetical order."""
    return yamlfile.did_you_mean(word, sorted(set(candidates)))


class YamlFile(Parsed):
    """One parsed rule file: its data, the line of each location, and the problems found in it so far."""

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


def parse_yaml(path: Path, text: str) -> YamlFile:
    """Parse one document. Syntax errors become a single located problem and data None; never raises for input."""
    parsed = parse_text(path, text)
    return YamlFile(parsed.path, parsed.data, parsed.lines, parsed.problems)


def read_yaml(path: Path) -> YamlFile:
    """Read and parse one file; an unreadable file is a problem, not an exception."""
    parsed = read_file(path)
    return YamlFile(parsed.path, parsed.data, parsed.lines, parsed.problems)
