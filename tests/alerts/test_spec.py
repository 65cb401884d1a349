"""Rule files: every problem at its line with a fix, for_each expansion and overrides, merging, Azure's limits."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from alerts.errors import Problem, SpecError
from alerts.spec import DynamicThreshold, RuleSet, StaticThreshold, load_rule_set, parse_rule_set
from tests.alerts.goldens import FIXTURES

ENVIRONMENT = (FIXTURES / "environment.yaml").read_text(encoding="utf-8")
ENV = (Path("env.yaml"), ENVIRONMENT)


def rules(text: str, name: str = "rules.yaml") -> tuple[Path, str]:
    return Path(name), textwrap.dedent(text).lstrip("\n")


def problems_of(*sources: tuple[Path, str]) -> list[Problem]:
    with pytest.raises(SpecError) as caught:
        parse_rule_set(list(sources))
    return caught.value.problems


def valid(*sources: tuple[Path, str]) -> RuleSet:
    return parse_rule_set([ENV, *sources])


MANY_MISTAKES = """
    defaults:
      severty: 2
    rules:
      - name: throttled
        metric: AzureOpenAIRequest
        operator: ">"
        threshold: 10
      - name: utilisation
        metric: AzureOpenAIProvisionedManagedUtilizationV2
        aggregation: Total
        operator: GreaterThan
        threshold: 80
        window: PT5M
        frequency: PT15M
        severity: 5
        scopes: [aoai-prd]
        actions: [on-call]
        dimensions: {ModelDeploymentNme: [gpt-4o]}
      - name: latency
        metric: AzureOpenAITimeToResponse
        dynamic: {operator: GreaterThanOrEqual, failing_periods: {evaluation_periods: 2, min_failing: 3}}
        window: PT2M
        scopes: [aoai-prod]
      - name: blocked
        metric: BlockedCalls
        operator: GreaterThan
        threshold: 1
        scopes: [aoai-prod]
        for_each: deployment
      - name: throttled
        metric: AzureOpenAIRequests
        operator: GreaterThan
        threshold: [1]
        scopes: [aoai-prod]
        tags: {managed-by: me}
"""


def test_one_file_with_many_mistakes_reports_all_of_them_at_their_lines() -> None:
    found = problems_of(ENV, rules(MANY_MISTAKES))
    assert {p.path for p in found} == {Path("rules.yaml")}
    assert [(p.line, p.message, p.hint) for p in found] == [
        (2, "unknown key 'severty' in defaults", "did you mean 'severity'?"),
        (4, "rule 'throttled' needs scopes (account names or ids) or for_each", "e.g. scopes: [aoai-dev]"),
        (5, "metric 'AzureOpenAIRequest' is not an Azure OpenAI metric", "did you mean 'AzureOpenAIRequests'?"),
        (10, "AzureOpenAIProvisionedManagedUtilizationV2 does not support the Total aggregation (a percent value "
             "cannot be summed)", "it takes Average, Minimum, Maximum"),
        (13, "window PT5M is shorter than frequency PT15M", "Azure requires window >= frequency"),
        (15, "rules[1].severity must be a whole number from 0 to 4, not 5", ""),
        (16, "scope 'aoai-prd' is neither an account name nor an account id", "did you mean 'aoai-prod'?"),
        (17, "unknown action group 'on-call'", "did you mean 'oncall'?"),
        (18, "AzureOpenAIProvisionedManagedUtilizationV2 has no dimension 'ModelDeploymentNme'",
         "did you mean 'ModelDeploymentName'?"),
        (21, "operator 'GreaterThanOrEqual' is not allowed for a dynamic threshold (GreaterThanOrEqual is for static "
             "thresholds)", "use one of GreaterThan, LessThan, GreaterOrLessThan"),
        (21, "min_failing (3) is more than evaluation_periods (2)", "Azure requires min_failing <= evaluation_periods"),
        (22, "window 'PT2M' is not one Azure allows", "use one of PT1M, PT5M, PT15M, PT30M, PT1H, PT6H, PT12H, PT24H"),
        (25, "metric 'BlockedCalls' is not an Azure OpenAI metric (a legacy Cognitive Services name)",
         "use AzureOpenAIRequests with dimensions: {StatusCode: ['429']}"),
        (29, "for_each 'deployment' is not known", "did you mean 'deployments'?"),
        (30, "rule name 'throttled' is used twice (also at rules.yaml:4)",
         "rule names are unique across all files (Azure compares them case-insensitively)"),
        (33, "rules[4].threshold must be a number, not a list", ""),
        (35, "tag 'managed-by' is reserved", "the tool sets managed-by itself and Azure adds hidden-link: tags"),
    ]


def test_legacy_metrics_get_advice_not_just_unknown() -> None:
    (problem,) = problems_of(ENV, rules("""
        rules:
          - {name: blocked, metric: BlockedCalls, operator: GreaterThan, threshold: 1, scopes: [aoai-prod]}
    """))
    assert (problem.line, problem.message) == (2, "metric 'BlockedCalls' is not an Azure OpenAI metric (a legacy "
                                                  "Cognitive Services name)")
    assert "StatusCode" in problem.hint


@pytest.mark.parametrize(("window", "frequency", "ok"), [
    ("PT1M", "PT1M", True), ("PT5M", "PT1M", True), ("PT24H", "PT1H", True), ("P1D", "PT1H", True),
    ("PT1H", "PT30M", True), ("PT6H", "PT5M", True), ("PT1M", "PT5M", False), ("PT2M", "PT1M", False),
    ("PT5M", "PT6H", False), ("PT48H", "PT1H", False), ("5m", "PT1M", False),
])
def test_window_and_frequency(window: str, frequency: str, ok: bool) -> None:
    source = rules(f"""
        rules:
          - name: r
            metric: AzureOpenAIRequests
            operator: GreaterThan
            threshold: 1
            scopes: [aoai-prod]
            window: {window}
            frequency: {frequency}
    """)
    if ok:
        assert valid(source).rules[0].window in ("PT1M", "PT5M", "PT24H", "PT1H", "PT6H")
    else:
        assert problems_of(ENV, source)


@pytest.mark.parametrize(("metric", "aggregation", "ok"), [
    ("AzureOpenAIRequests", "Total", True), ("AzureOpenAIRequests", "Average", False),
    ("AzureOpenAIProvisionedManagedUtilizationV2", "Maximum", True),
    ("AzureOpenAIProvisionedManagedUtilizationV2", "Total", False),
    ("AzureOpenAITimeToResponse", "Average", True), ("AzureOpenAITimeToResponse", "Total", False),
    ("AzureOpenAIContextTokensCacheMatchRate", "Minimum", True),
    ("AzureOpenAIContextTokensCacheMatchRate", "Total", False),
    ("ActiveTokens", "Total", True), ("TokenTransaction", "Count", False),
])
def test_aggregations_follow_the_metric(metric: str, aggregation: str, ok: bool) -> None:
    source = rules(f"""
        rules:
          - {{name: r, metric: {metric}, aggregation: {aggregation}, operator: ">", threshold: 1, scopes: [aoai-prod]}}
    """)
    if ok:
        assert valid(source).rules[0].aggregation == aggregation
    else:
        assert "aggregation" in problems_of(ENV, source)[0].message


@pytest.mark.parametrize(("kind", "operator", "ok"), [
    ("static", "GreaterThanOrEqual", True), ("static", "<=", True), ("static", "Equals", True),
    ("static", "GreaterOrLessThan", False), ("dynamic", "GreaterOrLessThan", True), ("dynamic", "LessThan", True),
    ("dynamic", "Equals", False), ("dynamic", "LessThanOrEqual", False), ("static", "Bigger", False),
])
def test_static_and_dynamic_operators_differ(kind: str, operator: str, ok: bool) -> None:
    condition = (f"operator: '{operator}'\n    threshold: 1" if kind == "static"
                 else f"dynamic: {{operator: {operator}}}")
    source = rules("rules:\n  - name: r\n    metric: AzureOpenAIRequests\n    scopes: [aoai-prod]\n"
                   f"    {condition}\n")
    if ok:
        assert valid(source).rules[0].condition.operator
    else:
        assert "operator" in problems_of(ENV, source)[0].message


def test_for_each_deployments_with_overrides() -> None:
    rule_set = valid(rules("""
        rules:
          - name: burn
            metric: TokenTransaction
            operator: GreaterThan
            threshold: {fraction_of_capacity: 0.5}
            for_each: standard_deployments
            window: PT15M
            frequency: PT5M
            overrides:
              gpt-4o-dev: {threshold: 1000, severity: 4, tags: {env: dev}}
              gpt-4o-prod: {dynamic: {operator: GreaterThan, sensitivity: High}}
    """))
    by_name = {r.name: r for r in rule_set.rules}
    assert sorted(by_name) == ["burn-gpt-4o-dev", "burn-gpt-4o-mini-prod", "burn-gpt-4o-prod"]
    assert by_name["burn-gpt-4o-mini-prod"].condition == StaticThreshold("GreaterThan", 0.5 * 500000 * 15)
    assert by_name["burn-gpt-4o-dev"].condition == StaticThreshold("GreaterThan", 1000.0)
    assert (by_name["burn-gpt-4o-dev"].severity, by_name["burn-gpt-4o-dev"].tags) == (4, (("env", "dev"),))
    assert by_name["burn-gpt-4o-prod"].condition == DynamicThreshold("GreaterThan", "High", 4, 4)
    mini = by_name["burn-gpt-4o-mini-prod"]
    assert [(d.name, d.operator, d.values) for d in mini.dimensions] == [
        ("ModelDeploymentName", "Include", ("gpt-4o-mini",))]
    assert mini.scopes == ("/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-ai-prod/providers/"
                           "Microsoft.CognitiveServices/accounts/aoai-prod",)
    assert (mini.resource_group, mini.severity, mini.window) == ("rg-ai-prod", 3, "PT15M")


def test_for_each_accounts_and_scope_filter() -> None:
    rule_set = valid(rules("""
        rules:
          - {name: errors, metric: AzureOpenAIRequests, operator: ">", threshold: 1, for_each: accounts}
          - {name: throttled, metric: AzureOpenAIRequests, operator: ">", threshold: 1, for_each: deployments,
             scopes: [aoai-dev]}
    """))
    assert [r.name for r in rule_set.rules] == ["errors-aoai-dev", "errors-aoai-prod", "throttled-gpt-4o-dev"]


@pytest.mark.parametrize(("rule", "message"), [
    ("{name: r, metric: AzureOpenAIRequests, operator: '>', threshold: 1, for_each: deployments,"
     " overrides: {gpt-5: {threshold: 2}}}", "override for 'gpt-5', which is not one of this rule's deployments"),
    ("{name: r, metric: AzureOpenAIRequests, operator: '>', threshold: 1, for_each: deployments,"
     " dimensions: {ModelDeploymentName: [x]}}", "for_each: deployments sets ModelDeploymentName itself"),
    ("{name: r, metric: TokenTransaction, operator: '>', threshold: {fraction_of_capacity: 0.8},"
     " for_each: provisioned_deployments}", "fraction_of_capacity needs a deployment with a tpm capacity"),
    ("{name: r, metric: AzureOpenAIRequests, operator: '>', threshold: 1, for_each: deployments,"
     " overrides: {gpt-4o-dev: {metric: X}}}", "unknown key 'metric' in rules[0].overrides.gpt-4o-dev"),
    ("{name: r, metric: AzureOpenAIRequests, operator: '>', threshold: 1, scopes: [aoai-prod, aoai-dev]}",
     "a rule over several accounts needs the region of each"),
    ("{name: 'r/1', metric: AzureOpenAIRequests, operator: '>', threshold: 1, scopes: [aoai-prod]}",
     "rule name 'r/1' is not allowed by Azure"),
    ("{name: r, metric: AzureOpenAIRequests, scopes: [aoai-prod]}", "rule 'r' needs a threshold"),
    ("{name: r, metric: AzureOpenAIRequests, threshold: 1, scopes: [aoai-prod]}",
     "a static threshold needs an operator"),
    ("{name: r, metric: AzureOpenAIRequests, operator: '>', threshold: 1}", "rule 'r' needs scopes"),
    ("{name: r, metric: AzureOpenAIRequests, operator: '>', threshold: 1, scopes: [aoai-prod],"
     " dimensions: {StatusCode: {include: [429], exclude: [500]}}}", "give either include: or exclude:"),
    ("{name: r, metric: AzureOpenAIRequests, operator: '>', threshold: true, scopes: [aoai-prod]}",
     "threshold must be a number, not True"),
])
def test_rule_problems(rule: str, message: str) -> None:
    found = problems_of(ENV, rules(f"rules:\n  - {rule}\n"))
    assert any(message in p.message for p in found), found
    assert all(p.line == 2 for p in found if p.path == Path("rules.yaml"))


def test_dimensions_take_include_exclude_numbers_and_any_case() -> None:
    (rule,) = valid(rules("""
        rules:
          - name: r
            metric: AzureOpenAIRequests
            operator: GreaterThan
            threshold: 1
            scopes: [aoai-prod]
            dimensions:
              statuscode: [503, 500, 500]
              ApiName: {exclude: [Embeddings]}
    """)).rules
    assert [(d.name, d.operator, d.values) for d in rule.dimensions] == [
        ("ApiName", "Exclude", ("Embeddings",)), ("StatusCode", "Include", ("500", "503"))]


def test_several_files_merge_and_duplicates_name_both_places() -> None:
    first = rules("rules:\n  - {name: r, metric: AzureOpenAIRequests, operator: '>', threshold: 1, "
                  "scopes: [aoai-prod]}\n", "a.yaml")
    second = rules("accounts:\n  aoai-prod: /subscriptions/x/resourceGroups/y/providers/Microsoft.CognitiveServices/"
                   "accounts/z\nrules:\n  - {name: R, metric: AzureOpenAIRequests, operator: '>', threshold: 2, "
                   "scopes: [aoai-prod]}\n", "b.yaml")
    found = [str(p) for p in problems_of(ENV, first, second)]
    assert found == [
        "b.yaml:2: account 'aoai-prod' is defined twice (also at env.yaml:3) (keep one definition)",
        "b.yaml:4: rule name 'R' is used twice (also at a.yaml:2) (rule names are unique across all files (Azure "
        "compares them case-insensitively))",
    ]


def test_yaml_syntax_and_duplicate_keys() -> None:
    (problem,) = problems_of(rules("rules:\n  - name: [unclosed\n"))
    assert problem.line == 3 and problem.message.startswith("invalid YAML")
    found = problems_of(ENV, rules("rules:\n  - name: r\n    name: s\n"))
    assert any(p.line == 3 and "given twice (first at line 2)" in p.message for p in found)


def test_more_than_5000_rules_in_a_subscription() -> None:
    deployments = "".join(f"  d{i}: aoai-prod\n" for i in range(5001))
    found = problems_of(ENV, rules(f"deployments:\n{deployments}rules:\n  - {{name: r, metric: AzureOpenAIRequests, "
                                   "operator: '>', threshold: 1, for_each: deployments}\n"))
    assert [p.message for p in found] == [
        "subscription 11111111-1111-1111-1111-111111111111 would hold 5005 metric alert rules; Azure allows 5,000 "
        "per subscription"]


def test_missing_file_is_a_problem() -> None:
    with pytest.raises(SpecError, match="file not found"):
        load_rule_set([Path("/nonexistent/rules.yaml")])


@pytest.mark.parametrize(("text", "message"), [
    ("\x1f", "unacceptable character"), ("a: &x [*x]\n", "an alias (*name) contains itself"),
    ("? [a]\n: b\n", "found unhashable key"), ("rules:\n  - when: 2001-02-30\n", "day is out of range"),
])
def test_hostile_yaml_is_a_problem_not_a_traceback(text: str, message: str) -> None:
    (problem,) = problems_of(rules(text))
    assert message in problem.message
