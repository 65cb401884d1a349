"""Generated rule files: never a traceback, always either precise problems or rules that plan and render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.errors import SpecError
from alerts.model import essence_from_arm, essence_from_spec
from alerts.plan import plan, render_json, render_text
from alerts.spec import parse_rule_set
from tests.alerts.arm_payloads import server_payload
from tests.alerts.goldens import FIXTURES

ENV = (Path("env.yaml"), (FIXTURES / "environment.yaml").read_text(encoding="utf-8"))
JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True), st.text(max_size=8),
                 st.lists(st.integers(0, 600), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                                            max_size=2))
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": st.sampled_from(["r", "R", "a/b", "x" * 300, "ok-rule"]),
    "metric": st.sampled_from(["AzureOpenAIRequests", "TokenTransaction", "AzureOpenAITimeToResponse",
                               "AzureOpenAIProvisionedManagedUtilizationV2", "BlockedCalls", "nope"]),
    "aggregation": st.sampled_from(["Total", "Average", "Maximum", "Count", "avg"]),
    "operator": st.sampled_from([">", "GreaterThan", "GreaterOrLessThan", "Equals", "~"]),
    "threshold": st.one_of(st.floats(-1e9, 1e9), st.just({"fraction_of_capacity": 0.8}), st.just({"x": 1})),
    "dynamic": st.fixed_dictionaries({}, optional={
        "operator": st.sampled_from(["GreaterThan", "LessThan", "Equals"]),
        "sensitivity": st.sampled_from(["Low", "High", "loud"]),
        "failing_periods": st.fixed_dictionaries({}, optional={"evaluation_periods": st.integers(-1, 6),
                                                               "min_failing": st.integers(-1, 6)})}),
    "window": st.sampled_from(["PT1M", "PT5M", "PT15M", "PT24H", "P1D", "PT2M", "5m"]),
    "frequency": st.sampled_from(["PT1M", "PT5M", "PT1H", "PT6H"]),
    "severity": st.integers(-1, 6),
    "dimensions": st.dictionaries(st.sampled_from(["StatusCode", "ModelDeploymentName", "statuscode", "Nope"]),
                                  st.one_of(st.lists(st.sampled_from([429, "500", "*"]), max_size=3),
                                            st.just({"exclude": ["x"]}), st.just({"include": [], "exclude": []})),
                                  max_size=2),
    "scopes": st.lists(st.sampled_from(["aoai-prod", "aoai-dev", "nope", "/subscriptions/s/resourceGroups/g/providers/"
                                        "Microsoft.CognitiveServices/accounts/a"]), max_size=3),
    "actions": st.lists(st.sampled_from(["oncall", "ops", "nobody"]), max_size=2),
    "for_each": st.sampled_from(["deployments", "standard_deployments", "provisioned_deployments", "accounts", "all"]),
    "overrides": st.dictionaries(st.sampled_from(["gpt-4o-prod", "aoai-dev", "zzz"]),
                                 st.dictionaries(st.sampled_from(["threshold", "severity", "dynamic", "metric"]),
                                                 st.integers(0, 5), max_size=2), max_size=2),
    "tags": st.dictionaries(st.sampled_from(["team", "managed-by", "hidden-link:/x"]), st.text(max_size=4),
                            max_size=2),
    "enabled": st.booleans(), "auto_mitigate": st.booleans(), "description": st.text(max_size=20),
    "resource_group": st.sampled_from(["rg-alerts", ""]),
}
RULE = st.fixed_dictionaries({}, optional={k: st.one_of(v, JUNK) if k != "name" else v for k, v in VALUES.items()})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(RULE, max_size=4), st.one_of(st.none(), st.dictionaries(st.sampled_from(["severity", "sevrity"]),
                                                                         st.integers(0, 5), max_size=1)))
def test_generated_rule_files_never_crash(rules: list[dict[str, Any]], defaults: dict[str, Any] | None) -> None:
    document: dict[str, Any] = {"rules": rules} if defaults is None else {"defaults": defaults, "rules": rules}
    text = yaml.safe_dump(document, sort_keys=False)
    try:
        rule_set = parse_rule_set([ENV, (Path("gen.yaml"), text)])
    except SpecError as e:
        assert e.problems and all(p.message for p in e.problems)
        assert all(p.line is not None for p in e.problems if p.path == Path("gen.yaml"))
        return
    desired = [essence_from_spec(r) for r in rule_set.rules]
    assert all(essence_from_arm(server_payload(e)) == e for e in desired)
    render_text(plan(desired, [], prune=False, adopt=False))
    assert not plan(desired, [server_payload(e) for e in desired], prune=True, adopt=False).changes_pending
    render_json(plan(desired, [], prune=True, adopt=True))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_is_a_problem_or_an_empty_rule_set(text: str) -> None:
    try:
        parse_rule_set([(Path("junk.yaml"), text)])
    except SpecError as e:
        assert e.problems
