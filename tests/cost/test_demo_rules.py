"""The demo organisation's attribution rules (examples/demo-teams.yaml) place every identified caller in its team."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.cost.attribution import DIRECT, OWNER, DeploymentInfo, load_attribution_rules, match
from collector.workspace.demo import DEMO_ORG, Caller

RULES = Path(__file__).resolve().parents[2] / "examples" / "demo-teams.yaml"
DEPLOYMENTS = [
    DeploymentInfo(account=d.account, name=d.name, model=d.model, version=d.model_version,
                   deployment_type=d.deployment_type, capacity=d.capacity, owner_team=d.owner_team)
    for d in DEMO_ORG.deployments
]


@pytest.mark.parametrize("caller", DEMO_ORG.callers, ids=lambda c: c.name)
def test_each_demo_caller_lands_in_its_team(caller: Caller) -> None:
    rules = load_attribution_rules(RULES)
    for deployment in DEPLOYMENTS:
        found = match(rules, deployment, caller.object_id, caller.apim_subscription_id)
        if caller.auth == "api-key":  # no identity in the logs: the deployment's owner carries it
            assert found == (deployment.owner_team, OWNER)
        else:
            assert found == (caller.team, DIRECT)


def test_the_demo_settings_use_these_rules() -> None:
    from collector.config import load_settings

    settings = load_settings(RULES.with_name("demo.yaml"), {})
    assert settings.teams.rules == RULES


def test_the_demo_rules_name_the_demo_gateway() -> None:
    rules = load_attribution_rules(RULES)
    assert rules.apim_gateways == {DEMO_ORG.apim.managed_identity_object_id}
