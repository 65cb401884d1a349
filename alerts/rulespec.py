"""The validated, expanded rule spec: what one metric alert rule in the YAML asks for, in Azure's terms."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.inventory import Inventory


@dataclass(frozen=True)
class StaticThreshold:
    """Fire when the aggregated metric compares with a fixed value."""

    operator: str
    threshold: float


@dataclass(frozen=True)
class DynamicThreshold:
    """Fire when the metric leaves the band Azure learns from its history, in min_failing of evaluation_periods."""

    operator: str
    sensitivity: str
    evaluation_periods: int
    min_failing: int


@dataclass(frozen=True)
class DimensionSpec:
    """Which values of one dimension the rule watches (Include) or ignores (Exclude); '*' watches each value."""

    name: str
    operator: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class ActionSpec:
    """An action group to notify, with the custom properties added to its webhook payload."""

    action_group_id: str
    webhook_properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RuleSpec:
    """One metric alert rule as the YAML asks for it, validated and expanded; `origin` is path:line of its entry."""

    name: str
    subscription_id: str
    resource_group: str
    description: str
    severity: int
    enabled: bool
    scopes: tuple[str, ...]
    target_region: str | None  # set when the rule watches several accounts (ARM requires it then)
    metric: str
    namespace: str
    aggregation: str
    condition: StaticThreshold | DynamicThreshold
    dimensions: tuple[DimensionSpec, ...]
    frequency: str
    window: str
    auto_mitigate: bool
    actions: tuple[ActionSpec, ...]
    tags: tuple[tuple[str, str], ...]
    origin: str


@dataclass(frozen=True)
class RuleSet:
    """Every rule of the merged files, sorted by name, and the inventory they were resolved against."""

    rules: tuple[RuleSpec, ...]
    inventory: Inventory
