"""Field-by-field differences between two rule essences, with values as plain JSON for text and JSON plans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from alerts.model import Criterion, RuleEssence

JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"


@dataclass(frozen=True)
class FieldChange:
    """One field that differs; None stands for "not set" on that side (e.g. a criterion that only one side has)."""

    field: str
    before: JsonValue
    after: JsonValue


def _criterion_fields(prefix: str, c: Criterion) -> dict[str, JsonValue]:
    fields: dict[str, JsonValue] = {
        f"{prefix}.metric": c.metric, f"{prefix}.namespace": c.namespace, f"{prefix}.aggregation": c.aggregation,
        f"{prefix}.operator": c.operator}
    if c.is_dynamic:
        fields[f"{prefix}.sensitivity"] = c.sensitivity
        fields[f"{prefix}.failing_periods"] = {"evaluation_periods": c.evaluation_periods,
                                               "min_failing": c.min_failing}
    else:
        fields[f"{prefix}.threshold"] = c.threshold
    for d in c.dimensions:
        fields[f"{prefix}.dimensions.{d.name}"] = {"operator": d.operator, "values": list(d.values)}
    return fields


def flatten(essence: RuleEssence) -> dict[str, JsonValue]:
    """The essence as named fields (identity left out), in a fixed order; criteria and dimensions one by one."""
    fields: dict[str, JsonValue] = {
        "description": essence.description, "severity": essence.severity, "enabled": essence.enabled,
        "scopes": list(essence.scopes), "evaluation_frequency": essence.evaluation_frequency,
        "window_size": essence.window_size}
    for i, criterion in enumerate(essence.criteria):
        fields.update(_criterion_fields(f"criteria[{i}]", criterion))
    if essence.target_resource_type is not None or essence.target_resource_region is not None:
        fields["target_resource_type"] = essence.target_resource_type
        fields["target_resource_region"] = essence.target_resource_region
    fields["auto_mitigate"] = essence.auto_mitigate
    fields["actions"] = [{"action_group_id": a.action_group_id, "webhook_properties": dict(a.webhook_properties)}
                         for a in essence.actions]
    fields["tags"] = dict(essence.tags)
    return fields


def diff_essences(before: RuleEssence, after: RuleEssence) -> tuple[FieldChange, ...]:
    """What would change, field by field, going from `before` (Azure) to `after` (the YAML)."""
    old, new = flatten(before), flatten(after)
    order = list(new) + [k for k in old if k not in new]
    return tuple(FieldChange(k, old.get(k), new.get(k)) for k in order if old.get(k) != new.get(k))
