"""The baseline pack validates with an example environment and holds the rules it promises."""

from __future__ import annotations

from pathlib import Path

from alerts.catalog import METRICS
from alerts.model import essence_from_spec, to_arm_body
from alerts.plan import plan
from alerts.spec import StaticThreshold, load_rule_set
from tests.alerts.arm_payloads import server_payload
from tests.alerts.goldens import FIXTURES

PACK = Path(__file__).resolve().parents[2] / "alerts" / "pack" / "azure-openai.yaml"
RULES = load_rule_set([PACK, FIXTURES / "environment.yaml"]).rules
BY_NAME = {r.name: r for r in RULES}


def test_the_pack_validates_and_expands_per_deployment_and_account() -> None:
    assert sorted(BY_NAME) == [
        "aoai-content-filter-blocks-aoai-dev", "aoai-content-filter-blocks-aoai-prod",
        "aoai-ptu-saturated-gpt-4o-ptu", "aoai-ptu-utilisation-high-gpt-4o-ptu",
        "aoai-server-errors-aoai-dev", "aoai-server-errors-aoai-prod",
        "aoai-throttled-gpt-4o-dev", "aoai-throttled-gpt-4o-mini-prod", "aoai-throttled-gpt-4o-prod",
        "aoai-throttled-gpt-4o-ptu",
        "aoai-time-to-response-slow-aoai-dev", "aoai-time-to-response-slow-aoai-prod",
        "aoai-token-burn-gpt-4o-dev", "aoai-token-burn-gpt-4o-mini-prod", "aoai-token-burn-gpt-4o-prod"]


def test_every_rule_says_why_and_what_to_do() -> None:
    for rule in RULES:
        assert "Why:" in rule.description and "When it fires:" in rule.description, rule.name
        assert rule.actions and dict(rule.tags) == {"pack": "azure-openai"}


def test_the_pack_uses_the_right_metrics_and_aggregations() -> None:
    throttled = BY_NAME["aoai-throttled-gpt-4o-prod"]
    assert (throttled.metric, [(d.name, d.values) for d in throttled.dimensions]) == (
        "AzureOpenAIRequests", [("ModelDeploymentName", ("gpt-4o",)), ("StatusCode", ("429",))])
    assert BY_NAME["aoai-content-filter-blocks-aoai-prod"].metric == "RAIRejectedRequests"
    for rule in RULES:
        assert rule.aggregation in METRICS[rule.metric].aggregations
        if METRICS[rule.metric].unit != "Count":
            assert rule.aggregation != "Total", rule.name
    assert {BY_NAME["aoai-ptu-utilisation-high-gpt-4o-ptu"].aggregation,
            BY_NAME["aoai-ptu-saturated-gpt-4o-ptu"].aggregation} == {"Average", "Maximum"}


def test_token_burn_is_measured_against_each_deployments_capacity() -> None:
    # 80 % of the tpm quota, over the 5-minute window
    assert BY_NAME["aoai-token-burn-gpt-4o-prod"].condition == StaticThreshold("GreaterThan", 0.8 * 150000 * 5)
    assert BY_NAME["aoai-token-burn-gpt-4o-dev"].condition == StaticThreshold("GreaterThan", 0.8 * 30000 * 5)


def test_the_pack_plans_cleanly_and_converges() -> None:
    desired = [essence_from_spec(r) for r in RULES]
    assert len(plan(desired, [], prune=True, adopt=False).creates) == len(RULES)
    applied = [server_payload(e, shout_ids=True) for e in desired]
    result = plan(desired, applied, prune=True, adopt=False)
    assert len(result.unchanged) == len(RULES) and not result.changes_pending
    assert all(to_arm_body(e)["location"] == "global" for e in desired)
