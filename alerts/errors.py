"""The alerts package's error tree: one base, located problems in rule files, and refusals of a plan."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class AlertsError(Exception):
    """Base of every error this package raises on purpose. The CLI prints these without a traceback."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rule file, located at a file and line, with a hint on how to fix it."""

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


class SpecError(AlertsError):
    """Rule files are wrong; carries every problem found, in file and line order, not just the first."""

    def __init__(self, problems: list[Problem], summary: str = "") -> None:
        self.problems = list(problems)
        head = summary or f"{len(self.problems)} problem(s) in the alert rules"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class ArmPayloadError(AlertsError):
    """A metricAlert payload from ARM that cannot be read as a metric alert rule (e.g. a web-test criterion)."""


class UnsafePlanError(AlertsError):
    """A plan changes more managed rules than the safety threshold allows; re-run with --force if that is meant."""


class ArmError(AlertsError):
    """ARM refused or failed a metricAlerts call; the message says which rule or scope and what to do."""


class ArmTransientError(ArmError):
    """ARM throttled (429) or failed (5xx, network) even after the client's retries; running again may succeed."""


class ArmRejectedError(ArmError):
    """ARM refused a request as invalid (400, e.g. an unknown metric); carries ARM's message and the rule name."""


class ArmPermissionError(ArmError):
    """ARM refused the identity (401/403); the message names the role needed on the scope."""


class ApplyInterruptedError(AlertsError):
    """An apply stopped part-way (ARM failed a call); what was done stays done, and the next apply converges."""
