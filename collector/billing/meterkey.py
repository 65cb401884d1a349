"""Pure: what a meter on the bill identifies (model, version, deployment type, kind), and the kinds it can be."""

from __future__ import annotations

from dataclasses import dataclass

#: The token kinds a per-token meter charges, named as the price book's rates are (collector/pricing.py RATE_KEYS),
#: and the kind of a provisioned meter (PTU-hours).
INPUT, CACHED_INPUT, OUTPUT, PTU_HOUR = "input", "cached_input", "output", "ptu_hour"
TOKEN_KINDS: tuple[str, ...] = (INPUT, CACHED_INPUT, OUTPUT)
KINDS: tuple[str, ...] = (*TOKEN_KINDS, PTU_HOUR)
#: A provisioned meter ("Provisioned Managed Global Unit") is not per model: its model is this wildcard (or "").
ANY_MODEL = "*"


@dataclass(frozen=True)
class MeterKey:
    """One Azure OpenAI meter on an account. Quantities on it are tokens for a token kind and PTU-hours for
    `ptu_hour`. Several deployments of one account with the same model, version and type share the meter."""

    model: str
    version: str | None
    deployment_type: str
    kind: str


def is_provisioned(meter: MeterKey) -> bool:
    """Whether the meter charges PTU-hours (whatever the traffic) rather than tokens."""
    return meter.kind == PTU_HOUR


def meter_order(meter: MeterKey) -> tuple[str, str, str, int, str]:
    """A total order on meters (a version may be None): model, version, type, then kinds in `KINDS` order."""
    kind_rank = KINDS.index(meter.kind) if meter.kind in KINDS else len(KINDS)
    return meter.model, meter.version or "", meter.deployment_type, kind_rank, meter.kind


def describe(meter: MeterKey) -> str:
    """`gpt-4o 2024-11-20 GlobalStandard input`, for messages; a provisioned meter names no model."""
    model = "" if meter.model in ("", ANY_MODEL) else meter.model
    return " ".join(part for part in (model, meter.version or "", meter.deployment_type, meter.kind) if part)
