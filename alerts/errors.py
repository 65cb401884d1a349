"""The alerts package's errors: kinds of the shared tree (`collector.errors`): rule files, plans and ARM calls."""

from __future__ import annotations

from collector.errors import InputError, ObservatoryError, Problem

__all__ = ["AlertsError", "ApplyInterruptedError", "ArmError", "ArmPayloadError", "ArmPermissionError",
           "ArmRejectedError", "ArmTransientError", "Problem", "SpecError", "UnsafePlanError"]


class AlertsError(ObservatoryError):
    """Base of every error this package raises on purpose. The CLI prints these without a traceback."""


class SpecError(AlertsError, InputError):
    """Rule files are wrong; carries every problem found, in file and line order, not just the first."""

    def __init__(self, problems: list[Problem], summary: str = "") -> None:
        InputError.__init__(self, problems, summary or f"{len(problems)} problem(s) in the alert rules")


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
