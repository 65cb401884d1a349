"""One rule entry's merged keys -> a RuleSpec: every field checked against Azure's rules, each problem at its line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts import catalog as az
from alerts.inventory import ACCOUNT_ID, ACTION_GROUP_ID, Account, Deployment, Inventory
from alerts.rulespec import ActionSpec, DimensionSpec, DynamicThreshold, RuleSpec, StaticThreshold
from alerts.yamlfile import Loc, YamlFile, did_you_mean, kind_of

OPERATOR_SYMBOLS = {"==": "Equals", ">": "GreaterThan", ">=": "GreaterThanOrEqual", "<": "LessThan",
                    "<=": "LessThanOrEqual", "<>": "GreaterOrLessThan"}
DEFAULT_WINDOW, DEFAULT_FREQUENCY, DEFAULT_SEVERITY = "PT5M", "PT1M", 3
DEFAULT_SENSITIVITY, DEFAULT_PERIODS = "Medium", 4
DEPLOYMENT_DIMENSION = "ModelDeploymentName"

_FORBIDDEN = "".join(sorted(az.FORBIDDEN_NAME_CHARACTERS))

Effective = dict[str, tuple[Any, Loc]]
Target = Account | Deployment | None


@dataclass
class RuleEntry:
    """One rule entry with its layers (defaults, the rule, an override) merged, ready to build per target."""

    file: YamlFile
    inventory: Inventory
    loc: Loc
    name: str
    for_each: str | None
    values: Effective
    tag_layers: list[tuple[Any, Loc]]

    def get(self, key: str, default: Any = None) -> tuple[Any, Loc]:
        """A merged value and the location it came from; the rule's own location when it is not given."""
        return self.values.get(key, (default, self.loc))

    def given_here(self, key: str) -> bool:
        """Whether a key was written on the rule or an override, not inherited from the file's defaults."""
        return key in self.values and self.values[key][1][:1] != ("defaults",)


def _fold(text: str, options: tuple[str, ...]) -> str | None:
    return next((o for o in options if o.casefold() == text.casefold()), None)


def _metric(entry: RuleEntry) -> az.Metric | None:
    file, (value, loc) = entry.file, entry.get("metric")
    if "metric" not in entry.values:
        file.problem(entry.loc, f"rule {entry.name!r} needs a metric", "e.g. metric: AzureOpenAIRequests")
        return None
    text = file.text(loc, value)
    if text is None:
        return None
    metric = az.lookup_metric(text)
    if metric is None:
        legacy = next((advice for name, advice in az.LEGACY_METRICS.items() if name.casefold() == text.casefold()), "")
        what = "is not an Azure OpenAI metric" + (" (a legacy Cognitive Services name)" if legacy else "")
        file.problem(loc, f"metric {text!r} {what}", legacy or did_you_mean(text, az.METRICS))
    value, loc = entry.get("namespace", az.NAMESPACE)
    namespace = file.text(loc, value)
    if namespace is not None and namespace.casefold() != az.NAMESPACE.casefold():
        file.problem(loc, f"metric namespace {namespace!r} is not supported",
                     f"only {az.NAMESPACE} (Azure OpenAI) metrics are known")
    return metric


def _aggregation(entry: RuleEntry, metric: az.Metric | None) -> str | None:
    file, (value, loc) = entry.file, entry.get("aggregation")
    if value is None:
        return metric.default_aggregation if metric else None
    text = file.text(loc, value)
    canonical = _fold(text, az.AGGREGATIONS) if text else None
    if text and canonical is None:
        file.problem(loc, f"aggregation {text!r} is not known", did_you_mean(text, az.AGGREGATIONS))
    elif canonical and metric and canonical not in metric.aggregations:
        why = f" (a {metric.unit.lower()} value cannot be summed)" if metric.unit != "Count" else ""
        file.problem(loc, f"{metric.name} does not support the {canonical} aggregation{why}",
                     f"it takes {', '.join(metric.aggregations)}")
        return None
    return canonical


def _duration(entry: RuleEntry, key: str, default: str, allowed: tuple[str, ...]) -> str | None:
    file, (value, loc) = entry.file, entry.get(key, default)
    canonical = az.canonical_duration(value) if isinstance(value, str) else None
    if canonical not in allowed:
        message = (f"{key} {value!r} is not one Azure allows" if isinstance(value, str)
                   else f"{key} must be an ISO-8601 duration, not {kind_of(value)}")
        file.problem(loc, message, f"use one of {', '.join(allowed)}")
        return None
    return canonical


def _operator(entry: RuleEntry, loc: Loc, value: object, dynamic: bool) -> str | None:
    text = entry.file.text(loc, value)
    if text is None:
        return None
    allowed, other = (az.DYNAMIC_OPERATORS, az.STATIC_OPERATORS) if dynamic else (az.STATIC_OPERATORS,
                                                                                 az.DYNAMIC_OPERATORS)
    canonical = OPERATOR_SYMBOLS.get(text) or _fold(text, (*allowed, *other)) or text
    if canonical in allowed:
        return canonical
    kind, other_kind = ("dynamic", "static") if dynamic else ("static", "dynamic")
    only = f" ({canonical} is for {other_kind} thresholds)" if canonical in other else ""
    entry.file.problem(loc, f"operator {text!r} is not allowed for a {kind} threshold{only}",
                       did_you_mean(text, allowed) if not only else f"use one of {', '.join(allowed)}")
    return None


def _static(entry: RuleEntry, metric: az.Metric | None, aggregation: str | None, window: str | None,
            target: Target) -> StaticThreshold | None:
    file, (value, loc) = entry.file, entry.get("threshold")
    op_value, op_loc = entry.get("operator")
    operator = _operator(entry, op_loc, op_value, False) if op_value is not None else None
    if op_value is None:
        file.problem(entry.loc, "a static threshold needs an operator", "operator: GreaterThan (or >, >=, <, <=, ==)")
    if not isinstance(value, dict):
        threshold = file.number(loc, value)
        return StaticThreshold(operator, threshold) if operator and threshold is not None else None
    body = file.mapping(loc, value, ("fraction_of_capacity",)) or {}
    if "fraction_of_capacity" not in body:
        file.problem(loc, "threshold must be a number or {fraction_of_capacity: <fraction>}")
        return None
    fraction = file.number((*loc, "fraction_of_capacity"), body["fraction_of_capacity"])
    if fraction is not None and fraction <= 0:
        file.problem((*loc, "fraction_of_capacity"), "fraction_of_capacity must be above 0", "e.g. 0.8 for 80 %")
        return None
    if not isinstance(target, Deployment) or target.tpm is None:
        file.problem(loc, "fraction_of_capacity needs a deployment with a tpm capacity",
                     "use for_each: standard_deployments and give each deployment tpm:")
        return None
    if metric is not None and (not metric.counts_tokens or aggregation != "Total"):
        file.problem(loc, f"fraction_of_capacity compares tokens with the tpm quota; {metric.name} "
                          f"({aggregation}) is not a token count", "use TokenTransaction (Total)")
        return None
    if fraction is None or operator is None or window is None:
        return None
    return StaticThreshold(operator, round(fraction * target.tpm * az.duration_minutes(window), 3))


def _dynamic(entry: RuleEntry) -> DynamicThreshold | None:
    file, (value, loc) = entry.file, entry.get("dynamic")
    if entry.given_here("operator"):
        file.problem(entry.get("operator")[1], "operator is for static thresholds",
                     "a dynamic threshold takes dynamic.operator")
    body = file.mapping(loc, value, ("sensitivity", "operator", "failing_periods"))
    if body is None:
        return None
    if "operator" not in body:
        file.problem(loc, "a dynamic threshold needs dynamic.operator", f"one of {', '.join(az.DYNAMIC_OPERATORS)}")
    operator = _operator(entry, (*loc, "operator"), body["operator"], True) if "operator" in body else None
    sensitivity = _fold(str(body.get("sensitivity", DEFAULT_SENSITIVITY)), az.SENSITIVITIES)
    if sensitivity is None:
        file.problem((*loc, "sensitivity"), f"sensitivity {body['sensitivity']!r} is not known",
                     did_you_mean(body["sensitivity"], az.SENSITIVITIES))
    periods = file.mapping((*loc, "failing_periods"), body.get("failing_periods", {}), ("evaluation_periods",
                                                                                        "min_failing")) or {}
    at = (*loc, "failing_periods")
    evaluation = file.whole((*at, "evaluation_periods"), periods.get("evaluation_periods", DEFAULT_PERIODS), 1)
    failing = file.whole((*at, "min_failing"), periods.get("min_failing", DEFAULT_PERIODS), 1)
    if evaluation is not None and failing is not None and failing > evaluation:
        file.problem((*at, "min_failing"), f"min_failing ({failing}) is more than evaluation_periods ({evaluation})",
                     "Azure requires min_failing <= evaluation_periods")
        return None
    if operator is None or sensitivity is None or evaluation is None or failing is None:
        return None
    return DynamicThreshold(operator, sensitivity, evaluation, failing)


def _dimensions(entry: RuleEntry, metric: az.Metric | None, target: Target) -> tuple[DimensionSpec, ...]:
    file, (value, loc) = entry.file, entry.get("dimensions", {})
    dims: dict[str, DimensionSpec] = {}
    for name, raw in (file.mapping(loc, value) or {}).items():
        at = (*loc, name)
        canonical = az.canonical_dimension(metric, name) if metric else name
        if canonical is None:
            file.problem(at, f"{metric.name if metric else 'the metric'} has no dimension {name!r}",
                         did_you_mean(name, metric.dimensions if metric else ()))
            continue
        if canonical in dims:
            file.problem(at, f"dimension {canonical} is given twice")
            continue
        if isinstance(target, Deployment) and canonical == DEPLOYMENT_DIMENSION:
            file.problem(at, f"for_each: {entry.for_each} sets {DEPLOYMENT_DIMENSION} itself", "remove it here")
            continue
        operator, values_loc, values = "Include", at, raw
        if isinstance(raw, dict):
            body = file.mapping(at, raw, ("include", "exclude")) or {}
            if len(body) != 1:
                file.problem(at, f"dimension {canonical}: give either include: or exclude:, not {len(body)} of them")
                continue
            key, values = next(iter(body.items()))
            operator, values_loc = key.capitalize(), (*at, key)
        texts = file.strings(values_loc, values, scalars=True)
        if texts is not None:
            dims[canonical] = DimensionSpec(canonical, operator, tuple(sorted(set(texts))))
    if isinstance(target, Deployment) and metric is not None:
        if DEPLOYMENT_DIMENSION not in metric.dimensions:
            file.problem(entry.loc, f"{metric.name} has no {DEPLOYMENT_DIMENSION} dimension, so it cannot be "
                                    f"split per deployment", "use for_each: accounts")
        dims[DEPLOYMENT_DIMENSION] = DimensionSpec(DEPLOYMENT_DIMENSION, "Include", (target.deployment_name,))
    return tuple(sorted(dims.values(), key=lambda d: d.name))


def _scopes(entry: RuleEntry, target: Target) -> list[Account] | None:
    if isinstance(target, Account):
        return [target]
    if isinstance(target, Deployment):
        return [entry.inventory.accounts[target.account]]
    file, (value, loc) = entry.file, entry.get("scopes")
    if value is None:
        file.problem(entry.loc, f"rule {entry.name!r} needs scopes (account names or ids) or for_each",
                     f"e.g. scopes: [{min(entry.inventory.accounts)}]" if entry.inventory.accounts else "")
        return None
    accounts: list[Account] = []
    for i, scope in enumerate(file.strings(loc, value) or []):
        at = (*loc, i) if isinstance(value, list) else loc
        match = ACCOUNT_ID.fullmatch(scope)
        account = entry.inventory.accounts.get(scope) or (
            Account(scope, scope, match[1].lower(), match[2].lower(), None, "") if match else None)
        if account is None:
            hint = did_you_mean(scope, entry.inventory.accounts) if not scope.startswith("/") else (
                "expected /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.CognitiveServices/accounts/<n>")
            file.problem(at, f"scope {scope!r} is neither an account name nor an account id", hint)
        elif any(a.resource_id.casefold() == account.resource_id.casefold() for a in accounts):
            file.problem(at, f"scope {scope!r} is listed twice")
        else:
            accounts.append(account)
    if len(accounts) > 1:
        if len({a.subscription_id for a in accounts}) > 1:
            file.problem(loc, "the scopes are in different subscriptions; a metric alert watches one subscription",
                         "split the rule or use for_each: accounts")
        regions = {a.region for a in accounts}
        if None in regions:
            file.problem(loc, "a rule over several accounts needs the region of each (ARM's targetResourceRegion)",
                         "name them under accounts: with {id: ..., region: ...}")
        elif len(regions) > 1:
            file.problem(loc, f"the scopes are in different regions ({', '.join(sorted(map(str, regions)))}); Azure "
                              "needs one region per rule", "split the rule or use for_each: accounts")
    return accounts or None


def _actions(entry: RuleEntry) -> tuple[ActionSpec, ...]:
    file, (value, loc) = entry.file, entry.get("actions", [])
    if value == []:
        return ()
    actions: dict[str, ActionSpec] = {}
    for i, name in enumerate(file.strings(loc, value) or []):
        at = (*loc, i) if isinstance(value, list) else loc
        group = entry.inventory.action_groups.get(name)
        if group is not None:
            actions[group.resource_id.casefold()] = ActionSpec(group.resource_id, group.webhook_properties)
        elif ACTION_GROUP_ID.fullmatch(name):
            actions[name.casefold()] = ActionSpec(name)
        else:
            file.problem(at, f"unknown action group {name!r}", did_you_mean(name, entry.inventory.action_groups))
    return tuple(actions.values())


def _tags(entry: RuleEntry) -> dict[str, str]:
    tags: dict[str, str] = {}
    for value, loc in entry.tag_layers:
        for key, raw in (entry.file.mapping(loc, value) or {}).items():
            if az.is_system_tag(key):
                entry.file.problem((*loc, key), f"tag {key!r} is reserved", "the tool sets "
                                   f"{az.OWNERSHIP_TAG_KEY} itself and Azure adds hidden-link: tags")
            elif isinstance(raw, str | int | float) and not isinstance(raw, bool):
                tags[key] = str(raw)
            else:
                entry.file.problem((*loc, key), f"tag {key!r} must be a string, not {kind_of(raw)}")
    return tags


def _check_name(entry: RuleEntry, name: str) -> None:
    bad = sorted({c for c in name if c in az.FORBIDDEN_NAME_CHARACTERS or ord(c) < 32})
    if bad or len(name) > az.MAX_RULE_NAME_LENGTH or name.endswith((" ", ".")):
        entry.file.problem((*entry.loc, "name"), f"rule name {name!r} is not allowed by Azure",
                           f"at most {az.MAX_RULE_NAME_LENGTH} characters, none of {_FORBIDDEN}, no trailing "
                           "space or period")


def build_rule(entry: RuleEntry, name: str, target: Target) -> RuleSpec | None:
    """One RuleSpec for one target (None for a plain rule); None when any field has a problem."""
    file = entry.file
    before = len(file.problems)
    _check_name(entry, name)
    metric = _metric(entry)
    aggregation = _aggregation(entry, metric)
    window = _duration(entry, "window", DEFAULT_WINDOW, az.WINDOWS)
    frequency = _duration(entry, "frequency", DEFAULT_FREQUENCY, az.FREQUENCIES)
    if window and frequency and az.duration_minutes(window) < az.duration_minutes(frequency):
        file.problem(entry.get("window")[1], f"window {window} is shorter than frequency {frequency}",
                     "Azure requires window >= frequency")
    condition: StaticThreshold | DynamicThreshold | None = None
    if "threshold" in entry.values and "dynamic" in entry.values:
        file.problem(entry.get("dynamic")[1], "give threshold (static) or dynamic, not both")
    elif "dynamic" in entry.values:
        condition = _dynamic(entry)
    elif "threshold" in entry.values:
        condition = _static(entry, metric, aggregation, window, target)
    else:
        file.problem(entry.loc, f"rule {entry.name!r} needs a threshold (static) or dynamic: {{...}}")
    severity_value, severity_loc = entry.get("severity", DEFAULT_SEVERITY)
    severity = file.whole(severity_loc, severity_value, 0, 4)
    flags = {key: file.flag(entry.get(key, True)[1], entry.get(key, True)[0]) for key in ("enabled", "auto_mitigate")}
    description_value, description_loc = entry.get("description", "")
    description = description_value if isinstance(description_value, str) else None
    if description is None:
        file.problem(description_loc, f"description must be text, not {kind_of(description_value)}")
    dimensions = _dimensions(entry, metric, target)
    scopes = _scopes(entry, target)
    actions = _actions(entry)
    tags = _tags(entry)
    group_value, group_loc = entry.get("resource_group", scopes[0].resource_group if scopes else "")
    resource_group = file.text(group_loc, group_value) if scopes else None
    enabled, auto_mitigate = flags["enabled"], flags["auto_mitigate"]
    if (len(file.problems) > before or metric is None or aggregation is None or window is None or frequency is None
            or condition is None or severity is None or scopes is None or description is None
            or resource_group is None or enabled is None or auto_mitigate is None):
        return None
    return RuleSpec(
        name=name, subscription_id=scopes[0].subscription_id, resource_group=resource_group.lower(),
        description=description, severity=severity, enabled=enabled,
        scopes=tuple(a.resource_id for a in scopes), target_region=scopes[0].region if len(scopes) > 1 else None,
        metric=metric.name, namespace=az.NAMESPACE, aggregation=aggregation, condition=condition,
        dimensions=dimensions, frequency=frequency, window=window, auto_mitigate=auto_mitigate,
        actions=actions, tags=tuple(sorted(tags.items())), origin=file.where(entry.loc))


