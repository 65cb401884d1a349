"""The collector's error tree: one base, transient and terminal kinds, and user-input errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class ObservatoryError(Exception):
    """Base of every error this package raises on purpose. The CLI prints these without a traceback."""


class TransientError(ObservatoryError):
    """Worth retrying later: the watermark stays where it is and the next run tries again."""


class TerminalError(ObservatoryError):
    """Retrying the same thing will fail the same way: a person must change something."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a user's input, located in a file."""

    path: Path | None
    line: int | None
    message: str
    hint: str = ""

    def __str__(self) -> str:
        if self.path is None:
            text = self.message
        else:
            where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
            text = f"{where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class InputError(TerminalError):
    """A user's file or argument is wrong; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem], summary: str = "") -> None:
        self.problems = list(problems)
        head = summary or f"{len(self.problems)} problem(s) found"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class WindowTooLarge(ObservatoryError):
    """A result was cut by the service's row or size limit (or came back partial): collect the window in halves."""


class QueryError(TerminalError):
    """A KQL query was refused by the engine (syntax, unsupported construct, unknown column)."""
