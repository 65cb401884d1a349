"""The essence: round trips through the ARM body, normalisation of what ARM changes, what it leaves out."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from alerts.errors import ArmPayloadError
from alerts.model import (
    MULTIPLE,
    SINGLE,
    RuleEssence,
    essence_from_arm,
    essence_from_spec,
    is_managed,
    to_arm_body,
)
from alerts.spec import load_rule_set, parse_rule_set
from tests.alerts.arm_payloads import server_payload
from tests.alerts.goldens import FIXTURES

PACK = load_rule_set([FIXTURES.parent.parent.parent / "alerts" / "pack" / "azure-openai.yaml",
                      FIXTURES / "environment.yaml"])
FIXTURE_RULES = load_rule_set([FIXTURES / "environment.yaml", FIXTURES / "rules.yaml"])
ESSENCES = [essence_from_spec(r) for r in (*PACK.rules, *FIXTURE_RULES.rules)]
MULTI_SCOPE = essence_from_spec(parse_rule_set([(FIXTURES / "environment.yaml",
                                                 (FIXTURES / "environment.yaml").read_text()), (FIXTURES / "m.yaml", """
accounts:
  east-a: {id: /subscriptions/s/resourceGroups/RG-A/providers/Microsoft.CognitiveServices/accounts/A, region: eastus}
  east-b: {id: /subscriptions/s/resourceGroups/rg-b/providers/Microsoft.CognitiveServices/accounts/b, region: EastUS}
rules:
  - {name: both, metric: AzureOpenAIRequests, operator: '>', threshold: 1, scopes: [east-a, east-b], window: PT24H,
     frequency: PT1H, tags: {cost-center: '42'}}
""")]).rules[0])


@pytest.mark.parametrize("essence", [*ESSENCES, MULTI_SCOPE], ids=lambda e: e.name)
def test_round_trip_through_the_arm_body_and_server_fields(essence: RuleEssence) -> None:
    assert essence_from_arm(server_payload(essence)) == essence
    assert essence_from_arm(server_payload(essence, shout_ids=True)) == essence


def test_the_put_body_has_the_shape_of_reference_section_5() -> None:
    body = to_arm_body(next(e for e in ESSENCES if e.name == "throttled-gpt-4o-prod"))
    assert json.loads(json.dumps(body)) == {
        "location": "global", "tags": {"team": "ai-platform", "managed-by": "aoai-observatory"},
        "properties": {
            "description": "429s on a standard deployment of the production account.", "severity": 2,
            "enabled": True,
            "scopes": ["/subscriptions/11111111-1111-1111-1111-111111111111/resourcegroups/rg-ai-prod/providers/"
                       "microsoft.cognitiveservices/accounts/aoai-prod"],
            "evaluationFrequency": "PT1M", "windowSize": "PT5M",
            "criteria": {"odata.type": "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria", "allOf": [
                {"criterionType": "StaticThresholdCriterion", "name": "c1", "metricName": "AzureOpenAIRequests",
                 "metricNamespace": "Microsoft.CognitiveServices/accounts", "timeAggregation": "Total",
                 "dimensions": [{"name": "ModelDeploymentName", "operator": "Include", "values": ["gpt-4o"]},
                                {"name": "StatusCode", "operator": "Include", "values": ["429"]}],
                 "operator": "GreaterThan", "threshold": 10.0}]},
            "autoMitigate": True,
            "actions": [{"actionGroupId": "/subscriptions/11111111-1111-1111-1111-111111111111/resourcegroups/rg-ops/"
                                          "providers/microsoft.insights/actiongroups/oncall",
                         "webHookProperties": {"runbook": "https://runbooks.example.com/aoai",
                                               "team": "ai-platform"}}]}}


def test_dynamic_or_multi_scope_rules_use_multiple_resource_criteria() -> None:
    dynamic = next(e for e in ESSENCES if e.name == "latency-prod")
    criteria = to_arm_body(dynamic)["properties"]["criteria"]
    assert criteria["odata.type"] == MULTIPLE
    assert criteria["allOf"][0]["failingPeriods"] == {"numberOfEvaluationPeriods": 4.0, "minFailingPeriodsToAlert": 3.0}
    assert "targetResourceType" not in to_arm_body(dynamic)["properties"]
    props = to_arm_body(MULTI_SCOPE)["properties"]
    assert (props["criteria"]["odata.type"], props.get("targetResourceType"), props.get("targetResourceRegion")) == (
        MULTIPLE, "Microsoft.CognitiveServices/accounts", "eastus")
    assert to_arm_body(ESSENCES[0])["properties"]["criteria"]["odata.type"] in (SINGLE, MULTIPLE)


def portal_edit(payload: dict[str, Any]) -> dict[str, Any]:
    """What the portal and ARM do without changing meaning: casing, order, spellings, server-added fields."""
    p = copy.deepcopy(payload)
    props = p["properties"]
    p["id"] = p["id"].upper()
    p["tags"]["hidden-link:/subscriptions/x"] = "Resource"
    props["scopes"] = [s.upper() for s in reversed(props["scopes"])]
    props["windowSize"] = "P1D" if props["windowSize"] == "PT24H" else props["windowSize"]
    props["targetResourceRegion"] = "East US" if "targetResourceRegion" in props else None
    props["targetResourceType"] = "microsoft.cognitiveservices/ACCOUNTS" if "targetResourceType" in props else None
    props["description"] = props["description"] or None
    for criterion in props["criteria"]["allOf"]:
        criterion["name"] = "Metric1"
        criterion["metricName"] = criterion["metricName"].lower()
        criterion["metricNamespace"] = criterion["metricNamespace"].lower()
        for dimension in criterion["dimensions"]:
            dimension["name"] = dimension["name"].lower()
            dimension["values"] = list(reversed(dimension["values"]))
        criterion["dimensions"].reverse()
    for action in props["actions"]:
        action["actionGroupId"] = action["actionGroupId"].upper()
    del props["autoMitigate"]  # ARM's default is true
    return p


@pytest.mark.parametrize("essence", [e for e in [*ESSENCES, MULTI_SCOPE] if e.auto_mitigate], ids=lambda e: e.name)
def test_what_arm_changes_without_meaning_is_not_a_difference(essence: RuleEssence) -> None:
    assert essence_from_arm(portal_edit(server_payload(essence))) == essence


def test_single_resource_target_fields_filled_in_by_the_server_are_ignored() -> None:
    essence = next(e for e in ESSENCES if e.name == "latency-prod")
    payload = server_payload(essence)
    payload["properties"].update(targetResourceType="Microsoft.CognitiveServices/accounts",
                                 targetResourceRegion="eastus")
    assert essence_from_arm(payload) == essence


def test_ownership() -> None:
    essence = ESSENCES[0]
    assert is_managed(server_payload(essence)) and not is_managed(server_payload(essence, managed=False))
    assert not is_managed({"tags": None}) and not is_managed({"tags": {"managed-by": "someone-else"}})


@pytest.mark.parametrize("mutation", [
    lambda p: p["properties"]["criteria"].update({"odata.type": "Microsoft.Azure.Monitor."
                                                                "WebtestLocationAvailabilityCriteria"}),
    lambda p: p["properties"].pop("severity"),
    lambda p: p["properties"]["criteria"]["allOf"][0].update(criterionType="Mystery"),
    lambda p: p.update(properties="nope"),
])
def test_unreadable_payloads_raise_our_error(mutation: Any) -> None:
    payload = server_payload(ESSENCES[0])
    mutation(payload)
    with pytest.raises(ArmPayloadError, match=ESSENCES[0].name):
        essence_from_arm(payload)


def test_a_payload_without_a_metric_alerts_id_is_refused() -> None:
    with pytest.raises(ArmPayloadError, match="metricAlerts id"):
        essence_from_arm({"id": "/subscriptions/x/resourceGroups/y/providers/Microsoft.Web/sites/z"})
