"""YAML rule files -> validated, expanded rule specs, with every problem reported at once at its file and line.

A rule file is a mapping with up to five sections; several files are merged (names must be unique across them):

    defaults:          # this file's rules inherit these keys (tags are merged key by key)
      severity: 2
      actions: [ops]
    accounts:          # name -> ARM id of an Azure OpenAI account, or {id, region}; region is needed when one
      aoai-prod:       # rule watches several accounts
        id: /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.CognitiveServices/accounts/aoai-prod
        region: eastus
    deployments:       # name -> account, or {account, deployment_name (default: the key), tpm | ptu}
      gpt-4o-prod: {account: aoai-prod, deployment_name: gpt-4o, tpm: 150000}
    action_groups:     # name -> ARM id of an action group, or {id, webhook_properties}
      ops: {id: /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Insights/actionGroups/ops}
    rules:
      - name: aoai-throttled              # unique; for_each rules become <name>-<deployment or account>
        description: why it exists and what to do when it fires
        metric: AzureOpenAIRequests       # an Azure OpenAI metric (alerts.catalog.METRICS)
        namespace: Microsoft.CognitiveServices/accounts   # the default and the only one known
        aggregation: Total                # default: Total for counters, Average for percent/latency
        operator: GreaterThan             # static thresholds: Equals GreaterThan GreaterThanOrEqual LessThan
        threshold: 10                     #   LessThanOrEqual (or == > >= < <=); or {fraction_of_capacity: 0.8}
        # dynamic: {sensitivity: Medium, operator: GreaterThan, failing_periods: {evaluation_periods: 4,
        #           min_failing: 4}}      # instead of threshold/operator; operators GreaterThan LessThan
        #                                 # GreaterOrLessThan; sensitivity Low Medium High
        window: PT5M                      # default PT5M; PT1M PT5M PT15M PT30M PT1H PT6H PT12H PT24H
        frequency: PT1M                   # default PT1M; PT1M PT5M PT15M PT30M PT1H; never longer than window
        severity: 2                       # 0 (critical) to 4 (verbose); default 3
        dimensions:                       # name -> values to include, or {exclude: [...]}; "*" splits by value
          StatusCode: [429]
        scopes: [aoai-prod]               # account names or account ids
        actions: [ops]                    # action group names or ids
        auto_mitigate: true               # default true
        enabled: true                     # default true
        tags: {team: ai-platform}
        resource_group: rg-alerts         # where the rule lives; default: the first scope's resource group
        for_each: deployments             # or standard_deployments (tpm), provisioned_deployments (ptu), accounts
        overrides:                        # per deployment (or account) of a for_each rule
          gpt-4o-prod: {threshold: 50}

`for_each: deployments` makes one rule per deployment, scoped to its account, with a ModelDeploymentName dimension
including that deployment; `scopes:` on such a rule restricts which accounts' deployments are used. A
`fraction_of_capacity` threshold is that fraction of the deployment's tpm times the window in minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alerts import catalog as az
from alerts.errors import Problem, SpecError
from alerts.inventory import Account, Deployment, Inventory, read_inventory
from alerts.rulefields import Effective, RuleEntry, Target, build_rule
from alerts.rulespec import ActionSpec, DimensionSpec, DynamicThreshold, RuleSet, RuleSpec, StaticThreshold
from alerts.yamlfile import Loc, YamlFile, did_you_mean, dotted, parse_yaml, read_yaml

TOP_KEYS = ("defaults", "accounts", "deployments", "action_groups", "rules")
RULE_KEYS = ("name", "description", "metric", "namespace", "aggregation", "operator", "threshold", "dynamic",
             "window", "frequency", "severity", "dimensions", "scopes", "actions", "auto_mitigate", "enabled", "tags",
             "resource_group", "for_each", "overrides")
DEFAULT_KEYS = ("namespace", "aggregation", "operator", "window", "frequency", "severity", "scopes", "actions",
                "auto_mitigate", "enabled", "tags", "resource_group", "description")
OVERRIDE_KEYS = ("description", "aggregation", "operator", "threshold", "dynamic", "window", "frequency", "severity",
                 "actions", "auto_mitigate", "enabled", "tags")
FOR_EACH = ("deployments", "standard_deployments", "provisioned_deployments", "accounts")


def _overlay(values: Effective, layer: Effective) -> Effective:
    """Later layers win; a layer giving threshold or dynamic replaces both (so an override can switch kinds), and
    one giving dynamic drops the static operator below it."""
    result = dict(values)
    if "threshold" in layer or "dynamic" in layer:
        result.pop("threshold", None)
        result.pop("dynamic", None)
    if "dynamic" in layer:
        result.pop("operator", None)
    result.update(layer)
    return result


def _merge(layers: list[tuple[dict[str, Any], Loc]]) -> tuple[Effective, list[tuple[Any, Loc]]]:
    values: Effective = {}
    tags: list[tuple[Any, Loc]] = []
    for body, loc in layers:
        tags += [(body["tags"], (*loc, "tags"))] if "tags" in body else []
        values = _overlay(values, {k: (v, (*loc, k)) for k, v in body.items() if k not in ("tags", "overrides")})
    return values, tags


def _targets(rule: RuleEntry, rule_body: dict[str, Any]) -> list[tuple[str, Target]]:
    """The (suffix, target) pairs a rule expands to; one pair with no target for a plain rule."""
    inv, file = rule.inventory, rule.file
    if rule.for_each is None:
        return [("", None)]
    targets: list[tuple[str, Target]]
    if rule.for_each == "accounts":
        targets = [(name, inv.accounts[name]) for name in sorted(inv.accounts)]
    else:
        targets = [(key, d) for key, d in sorted(inv.deployments.items())
                   if rule.for_each == "deployments" or (rule.for_each == "standard_deployments" and d.tpm is not None)
                   or (rule.for_each == "provisioned_deployments" and d.ptu is not None)]
    if "scopes" in rule_body:
        loc = (*rule.loc, "scopes")
        wanted = set()
        for i, scope in enumerate(file.strings(loc, rule_body["scopes"]) or []):
            if scope in inv.accounts:
                wanted.add(scope)
            else:
                file.problem((*loc, i), f"unknown account {scope!r} in the scopes of a for_each rule",
                             did_you_mean(scope, inv.accounts))
        targets = [(k, t) for k, t in targets if (isinstance(t, Account) and t.name in wanted)
                   or (isinstance(t, Deployment) and t.account in wanted)]
    return targets


def _rule_entries(file: YamlFile, inv: Inventory) -> list[tuple[RuleEntry, dict[str, Any], Loc]]:
    data = file.mapping((), file.data, TOP_KEYS) if file.data is not None else None
    if not data:
        return []
    defaults = file.mapping(("defaults",), data["defaults"], DEFAULT_KEYS) if data.get("defaults") is not None else {}
    raw_rules = data.get("rules")
    if raw_rules is None:
        return []
    if not isinstance(raw_rules, list):
        file.problem(("rules",), "rules must be a list of rules, each starting with `- name:`")
        return []
    entries = []
    for i, raw in enumerate(raw_rules):
        loc: Loc = ("rules", i)
        body = file.mapping(loc, raw, RULE_KEYS)
        if body is None:
            continue
        name = file.text((*loc, "name"), body["name"]) if "name" in body else None
        if "name" not in body:
            file.problem(loc, f"{dotted(loc)} needs a name")
        for_each = None
        if "for_each" in body:
            for_each = body["for_each"] if body["for_each"] in FOR_EACH else None
            if for_each is None:  # still check the rest of the rule, as a plain one
                file.problem((*loc, "for_each"), f"for_each {body['for_each']!r} is not known",
                             did_you_mean(body["for_each"], FOR_EACH))
        if "overrides" in body and "for_each" not in body:
            file.problem((*loc, "overrides"), "overrides are per deployment or account: they need for_each")
        if name is None:
            continue
        values, tags = _merge([(defaults or {}, ("defaults",)), (body, loc)])
        rule = RuleEntry(file, inv, loc, name, for_each, values, tags)
        entries.append((rule, body, loc))
    return entries


def _expand(rule: RuleEntry, body: dict[str, Any]) -> list[tuple[str, RuleSpec | None]]:
    file, loc = rule.file, rule.loc
    targets = _targets(rule, body)
    overrides: dict[str, Any] = {}
    if rule.for_each is not None and body.get("overrides") is not None:
        overrides = file.mapping((*loc, "overrides"), body["overrides"]) or {}
        names = [k for k, _ in targets]
        for key in overrides:
            if key not in names:
                what = "accounts" if rule.for_each == "accounts" else rule.for_each.replace("_", " ")
                file.problem((*loc, "overrides", key), f"override for {key!r}, which is not one of this rule's {what}",
                             did_you_mean(key, names))
    specs: list[tuple[str, RuleSpec | None]] = []
    for suffix, target in targets:
        expanded = rule
        if suffix in overrides:
            o_loc = (*loc, "overrides", suffix)
            o_body = file.mapping(o_loc, overrides[suffix], OVERRIDE_KEYS) or {}
            values, tags = _merge([(o_body, o_loc)])
            expanded = RuleEntry(file, rule.inventory, loc, rule.name, rule.for_each, _overlay(rule.values, values),
                                 rule.tag_layers + tags)
        name = f"{rule.name}-{suffix}" if suffix else rule.name
        specs.append((name, build_rule(expanded, name, target)))
    return specs


def _check_unique(names: list[tuple[str, YamlFile, Loc]]) -> None:
    """Rule names (after expansion) are unique across all files, whether or not the rules are otherwise valid."""
    seen: dict[str, str] = {}
    for name, file, loc in names:
        first = seen.setdefault(name.casefold(), file.where(loc))
        if first != file.where(loc):
            file.problem(loc, f"rule name {name!r} is used twice (also at {first})",
                         "rule names are unique across all files (Azure compares them case-insensitively)")


def _check_limits(specs: list[RuleSpec], problems: list[Problem]) -> None:
    per_subscription: dict[str, int] = {}
    for spec in specs:
        per_subscription[spec.subscription_id] = per_subscription.get(spec.subscription_id, 0) + 1
    for subscription, count in sorted(per_subscription.items()):
        if count > az.MAX_RULES_PER_SUBSCRIPTION:
            problems.append(Problem(None, None, f"subscription {subscription} would hold {count} metric alert rules; "
                                                f"Azure allows {az.MAX_RULES_PER_SUBSCRIPTION:,} per subscription",
                                    "narrow the for_each rules or spread accounts over subscriptions"))


def build_rule_set(files: list[YamlFile]) -> RuleSet:
    """Validate and expand parsed files; raise SpecError with every problem, in file and line order."""
    inventory = read_inventory(files)
    specs: list[RuleSpec] = []
    names: list[tuple[str, YamlFile, Loc]] = []
    for file in files:
        for rule, body, loc in _rule_entries(file, inventory):
            for name, spec in _expand(rule, body):
                names.append((name, file, (*loc, "name")))
                specs.extend([spec] if spec is not None else [])
    _check_unique(names)
    problems: list[Problem] = []
    for file in files:
        problems.extend(sorted(dict.fromkeys(file.problems), key=lambda p: p.line or 0))
    _check_limits(specs, problems)
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))
    return RuleSet(tuple(sorted(specs, key=lambda s: s.name.casefold())), inventory)


def parse_rule_set(sources: Sequence[tuple[Path, str]]) -> RuleSet:
    """Rule files given as (path, text) pairs; the path only names the file in problems."""
    return build_rule_set([parse_yaml(path, text) for path, text in sources])


def load_rule_set(paths: Sequence[Path]) -> RuleSet:
    """Read, merge, validate and expand rule files."""
    return build_rule_set([read_yaml(path) for path in paths])


__all__ = ["ActionSpec", "DimensionSpec", "DynamicThreshold", "RuleSet", "RuleSpec", "StaticThreshold",
           "build_rule_set", "load_rule_set", "parse_rule_set"]
