"""The normalised "essence" of a metric alert rule, built alike from a spec and from ARM, and the ARM PUT body.

Both sides are reduced to the same frozen value before any comparison (house style: never diff YAML with Azure's
payload). ARM ids are case-insensitive and ARM changes their casing, so ids, resource groups and regions are
lower-cased; durations get one spelling (the SDK sends 24 hours as P1D, the YAML says PT24H); dimensions, values,
criteria, actions, webhook properties and tags are sorted. Left out: what ARM adds or owns (id, type, location,
lastUpdatedTime, isMigrated, `hidden-link:` tags), our ownership tag (ownership is decided before diffing), the
criterion names (labels with no effect), the criteria's odata.type (it follows from scopes and threshold kinds) and,
for a rule on a single resource, targetResourceType/Region (implied by the scope, and filled in by some servers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from alerts import catalog as az
from alerts.catalog import DEFAULT_STACK, OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE, ownership_value, stack_of_tags
from alerts.errors import ArmPayloadError
from alerts.rulespec import DynamicThreshold, RuleSpec

OWNERSHIP_TAG = (OWNERSHIP_TAG_KEY, OWNERSHIP_TAG_VALUE)
LOCATION = "global"  # reference §5: metric alert rules always live in "global"
SINGLE = "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
MULTIPLE = "Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria"
STATIC, DYNAMIC = "StaticThresholdCriterion", "DynamicThresholdCriterion"
RULE_ID = re.compile(r"/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Insights/metricAlerts/"
                     r"([^/]+)/?", re.IGNORECASE)


@dataclass(frozen=True)
class Dimension:
    name: str
    operator: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Criterion:
    """One metric condition; static when `threshold` is set, dynamic when `sensitivity` is."""

    metric: str
    namespace: str
    aggregation: str
    operator: str
    dimensions: tuple[Dimension, ...]
    threshold: float | None = None
    sensitivity: str | None = None
    evaluation_periods: int | None = None
    min_failing: int | None = None

    @property
    def is_dynamic(self) -> bool:
        return self.sensitivity is not None


@dataclass(frozen=True)
class Action:
    action_group_id: str
    webhook_properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RuleEssence:
    """Everything about a rule that a diff should see, normalised; equal essences need no update."""

    subscription_id: str
    resource_group: str
    name: str
    description: str
    severity: int
    enabled: bool
    scopes: tuple[str, ...]
    evaluation_frequency: str
    window_size: str
    criteria: tuple[Criterion, ...]
    target_resource_type: str | None
    target_resource_region: str | None
    auto_mitigate: bool
    actions: tuple[Action, ...]
    tags: tuple[tuple[str, str], ...]

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies a rule in Azure: subscription, resource group and name, all case-insensitive."""
        return self.subscription_id, self.resource_group, self.name.casefold()

    @property
    def resource_id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}/providers/"
                f"Microsoft.Insights/metricAlerts/{self.name}")


# -- the wire shape of the PUT body (reference §5) -------------------------------------------------------------------

class ArmDimension(TypedDict):
    name: str
    operator: str
    values: list[str]


class ArmFailingPeriods(TypedDict):
    numberOfEvaluationPeriods: float
    minFailingPeriodsToAlert: float


class ArmCriterion(TypedDict):
    criterionType: str
    name: str
    metricName: str
    metricNamespace: str
    timeAggregation: str
    dimensions: list[ArmDimension]
    operator: str
    threshold: NotRequired[float]
    alertSensitivity: NotRequired[str]
    failingPeriods: NotRequired[ArmFailingPeriods]


ArmCriteria = TypedDict("ArmCriteria", {"odata.type": str, "allOf": list[ArmCriterion]})


class ArmAction(TypedDict):
    actionGroupId: str
    webHookProperties: dict[str, str]


class ArmProperties(TypedDict):
    description: str
    severity: int
    enabled: bool
    scopes: list[str]
    evaluationFrequency: str
    windowSize: str
    targetResourceType: NotRequired[str]
    targetResourceRegion: NotRequired[str]
    criteria: ArmCriteria
    autoMitigate: bool
    actions: list[ArmAction]


class ArmRuleBody(TypedDict):
    location: str
    tags: dict[str, str]
    properties: ArmProperties


# -- normalisation ---------------------------------------------------------------------------------------------------


def _id(value: str) -> str:
    return value.strip().rstrip("/").lower()


def _fold(value: str, options: tuple[str, ...]) -> str:
    return next((o for o in options if o.casefold() == value.casefold()), value)


def _dimension(metric: str, name: str, operator: str, values: list[str] | tuple[str, ...]) -> Dimension:
    canonical = az.canonical_dimension(az.lookup_metric(metric), name) or name
    return Dimension(canonical, _fold(operator, az.DIMENSION_OPERATORS), tuple(sorted(set(values))))


def _criterion(metric: str, namespace: str, aggregation: str, operator: str, dimensions: list[Dimension],
               threshold: float | None = None, sensitivity: str | None = None, evaluation_periods: int | None = None,
               min_failing: int | None = None) -> Criterion:
    known = az.lookup_metric(metric)
    canonical_ns = az.NAMESPACE if namespace.casefold() == az.NAMESPACE.casefold() else namespace.lower()
    return Criterion(
        metric=known.name if known else metric, namespace=canonical_ns,
        aggregation=_fold(aggregation, az.AGGREGATIONS),
        operator=_fold(operator, (*az.STATIC_OPERATORS, *az.DYNAMIC_OPERATORS)),
        dimensions=tuple(sorted(dimensions, key=lambda d: d.name.casefold())),
        threshold=float(threshold) if threshold is not None else None,
        sensitivity=_fold(sensitivity, az.SENSITIVITIES) if sensitivity is not None else None,
        evaluation_periods=evaluation_periods, min_failing=min_failing)


def _criterion_order(c: Criterion) -> str:
    return repr((c.metric.casefold(), c.namespace, c.aggregation, c.operator, c.dimensions, c.threshold,
                 c.sensitivity, c.evaluation_periods, c.min_failing))


def _essence(subscription_id: str, resource_group: str, name: str, description: str | None, severity: int,
             enabled: bool, scopes: list[str] | tuple[str, ...], frequency: str, window: str,
             criteria: list[Criterion], target_type: str | None, target_region: str | None, auto_mitigate: bool,
             actions: list[Action], tags: dict[str, str]) -> RuleEssence:
    scope_ids = tuple(sorted({_id(s) for s in scopes}))
    several = len(scope_ids) > 1
    return RuleEssence(
        subscription_id=subscription_id.lower(), resource_group=resource_group.lower(), name=name,
        description=description or "", severity=severity, enabled=enabled, scopes=scope_ids,
        evaluation_frequency=az.canonical_duration(frequency), window_size=az.canonical_duration(window),
        criteria=tuple(sorted(criteria, key=_criterion_order)),
        target_resource_type=(az.RESOURCE_TYPE if (target_type or "").casefold() == az.RESOURCE_TYPE.casefold()
                              else (target_type or "").lower() or None) if several else None,
        target_resource_region=(target_region or "").replace(" ", "").lower() or None if several else None,
        auto_mitigate=auto_mitigate,
        actions=tuple(sorted({a.action_group_id: a for a in actions}.values(), key=lambda a: a.action_group_id)),
        tags=tuple(sorted((k, v) for k, v in tags.items() if not az.is_system_tag(k))))


def essence_from_spec(spec: RuleSpec) -> RuleEssence:
    """The essence of a rule as the YAML asks for it."""
    condition = spec.condition
    dimensions = [_dimension(spec.metric, d.name, d.operator, d.values) for d in spec.dimensions]
    if isinstance(condition, DynamicThreshold):
        criterion = _criterion(spec.metric, spec.namespace, spec.aggregation, condition.operator, dimensions,
                               sensitivity=condition.sensitivity, evaluation_periods=condition.evaluation_periods,
                               min_failing=condition.min_failing)
    else:
        criterion = _criterion(spec.metric, spec.namespace, spec.aggregation, condition.operator, dimensions,
                               threshold=condition.threshold)
    actions = [Action(_id(a.action_group_id), tuple(sorted(a.webhook_properties))) for a in spec.actions]
    return _essence(spec.subscription_id, spec.resource_group, spec.name, spec.description, spec.severity,
                    spec.enabled, spec.scopes, spec.frequency, spec.window, [criterion], az.RESOURCE_TYPE,
                    spec.target_region, spec.auto_mitigate, actions, dict(spec.tags))


# -- from and to ARM -------------------------------------------------------------------------------------------------


def rule_identity(payload: dict[str, Any]) -> tuple[str, str, str]:
    """(subscription, resource group, name) of an ARM metricAlert payload, from its id; lower-cased but the name."""
    match = RULE_ID.fullmatch(str(payload.get("id", "")))
    if match is None:
        raise ArmPayloadError(f"metric alert payload without a metricAlerts id: {payload.get('id')!r}")
    name = payload.get("name")
    return match[1].lower(), match[2].lower(), name if isinstance(name, str) and name else match[3]


def owner_stack(payload: dict[str, Any]) -> str | None:
    """The stack whose ownership tag a rule carries (`default` for the bare value), None when no stack owns it."""
    return stack_of_tags(payload.get("tags"))


def is_managed(payload: dict[str, Any], stack: str | None = None) -> bool:
    """Whether a rule carries our ownership tag: of any stack, or of `stack` when given (compared case-insensitively,
    as tag values were before stacks)."""
    owner = owner_stack(payload)
    return owner is not None and (stack is None or owner == stack)


def _arm_criterion(raw: dict[str, Any]) -> Criterion:
    metric = str(raw["metricName"])
    dimensions = [_dimension(metric, str(d["name"]), str(d["operator"]), [str(v) for v in d["values"]])
                  for d in raw.get("dimensions") or []]
    kind = raw.get("criterionType") or (DYNAMIC if "alertSensitivity" in raw else STATIC)
    namespace = str(raw.get("metricNamespace") or az.NAMESPACE)
    if kind == DYNAMIC:
        periods = raw["failingPeriods"]
        return _criterion(metric, namespace, str(raw["timeAggregation"]), str(raw["operator"]), dimensions,
                          sensitivity=str(raw["alertSensitivity"]),
                          evaluation_periods=int(periods["numberOfEvaluationPeriods"]),
                          min_failing=int(periods["minFailingPeriodsToAlert"]))
    if kind != STATIC:
        raise ValueError(f"unknown criterionType {kind!r}")
    return _criterion(metric, namespace, str(raw["timeAggregation"]), str(raw["operator"]), dimensions,
                      threshold=float(raw["threshold"]))


def essence_from_arm(payload: dict[str, Any]) -> RuleEssence:
    """The essence of one metricAlert resource as ARM returns it (GET or list), ignoring what ARM adds."""
    subscription_id, resource_group, name = rule_identity(payload)
    try:
        props = payload["properties"]
        criteria = props["criteria"]
        if criteria.get("odata.type") not in (SINGLE, MULTIPLE):
            raise ValueError(f"criteria of type {criteria.get('odata.type')!r} are not metric criteria")
        actions = [Action(_id(str(a["actionGroupId"])),
                          tuple(sorted((str(k), str(v)) for k, v in (a.get("webHookProperties") or {}).items())))
                   for a in props.get("actions") or []]
        tags = {str(k): str(v) for k, v in (payload.get("tags") or {}).items()}
        return _essence(subscription_id, resource_group, name, props.get("description"), int(props["severity"]),
                        bool(props["enabled"]), [str(s) for s in props["scopes"]], str(props["evaluationFrequency"]),
                        str(props["windowSize"]), [_arm_criterion(c) for c in criteria["allOf"]],
                        props.get("targetResourceType"), props.get("targetResourceRegion"),
                        bool(props.get("autoMitigate", True)), actions, tags)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ArmPayloadError(f"metric alert {name!r} in {resource_group}: cannot read it as a metric alert rule "
                              f"({type(e).__name__}: {e})") from e


def _arm_criteria(essence: RuleEssence) -> ArmCriteria:
    items: list[ArmCriterion] = []
    for i, c in enumerate(essence.criteria, start=1):
        item: ArmCriterion = {
            "criterionType": DYNAMIC if c.is_dynamic else STATIC, "name": f"c{i}", "metricName": c.metric,
            "metricNamespace": c.namespace, "timeAggregation": c.aggregation,
            "dimensions": [{"name": d.name, "operator": d.operator, "values": list(d.values)} for d in c.dimensions],
            "operator": c.operator}
        if c.is_dynamic:
            item["alertSensitivity"] = c.sensitivity or ""
            item["failingPeriods"] = {"numberOfEvaluationPeriods": float(c.evaluation_periods or 0),
                                      "minFailingPeriodsToAlert": float(c.min_failing or 0)}
        else:
            item["threshold"] = float(c.threshold or 0.0)
        items.append(item)
    # SingleResource criteria take static criteria only (metricAlert_API.json: its allOf items are MetricCriteria).
    single = len(essence.scopes) == 1 and not any(c.is_dynamic for c in essence.criteria)
    return {"odata.type": SINGLE if single else MULTIPLE, "allOf": items}


def to_arm_body(essence: RuleEssence, stack: str = DEFAULT_STACK) -> ArmRuleBody:
    """The PUT body for one rule of `stack`, in the shape the SDK sends (reference §5); key order is not
    significant. The ownership tag names the stack (`catalog.ownership_value`)."""
    props: ArmProperties = {
        "description": essence.description, "severity": essence.severity, "enabled": essence.enabled,
        "scopes": list(essence.scopes), "evaluationFrequency": essence.evaluation_frequency,
        "windowSize": essence.window_size, "criteria": _arm_criteria(essence),
        "autoMitigate": essence.auto_mitigate,
        "actions": [{"actionGroupId": a.action_group_id, "webHookProperties": dict(a.webhook_properties)}
                    for a in essence.actions]}
    if essence.target_resource_type is not None and essence.target_resource_region is not None:
        props["targetResourceType"] = essence.target_resource_type  # mandatory for several scopes (spec)
        props["targetResourceRegion"] = essence.target_resource_region
    return {"location": LOCATION, "tags": {**dict(essence.tags), OWNERSHIP_TAG_KEY: ownership_value(stack)},
            "properties": props}
