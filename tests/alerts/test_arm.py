"""validate / plan / apply through the real azure-mgmt-monitor SDK against the HTTPS ARM metricAlerts emulator."""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from click.testing import CliRunner, Result

import alerts.cli
from alerts.apply import apply
from alerts.arm import MetricAlertsClient
from alerts.catalog import OWNERSHIP_TAG_KEY
from alerts.cli import STACK_ENV
from alerts.cli import alerts as alerts_group
from alerts.errors import ApplyInterruptedError, ArmPermissionError, ArmRejectedError, ArmTransientError
from alerts.model import essence_from_arm, to_arm_body
from alerts.plan import EXIT_CHANGES, EXIT_CONFLICTS, EXIT_ERROR, EXIT_IN_SYNC, plan
from tests.alerts.arm_payloads import server_payload
from tests.alerts.goldens import FIXTURES, assert_golden
from tests.alerts.test_plan import BY_NAME, DESIRED, PORTAL_RULE, RETIRED
from tests.emulators.arm_api import ArmEmulator, Fault

FILES = [str(FIXTURES / "environment.yaml"), str(FIXTURES / "rules.yaml")]
SUB = "11111111-1111-1111-1111-111111111111"


class FakeCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("test-token", int(time.time()) + 3600)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmEmulator]:
    with ArmEmulator(tmp_path_factory.mktemp("arm")) as emulator:
        yield emulator


@pytest.fixture
def arm(server: ArmEmulator, monkeypatch: pytest.MonkeyPatch) -> ArmEmulator:
    server.rules.clear()
    server.clear_faults()
    server.requests.clear()
    monkeypatch.setattr(alerts.cli, "credential", FakeCredential)
    return server


def client(arm: ArmEmulator, retries: int = 3) -> MetricAlertsClient:
    return MetricAlertsClient(FakeCredential(), endpoint=arm.endpoint, ca_bundle=arm.ca_bundle, retries=retries)


def cli(arm: ArmEmulator, command: str, *extra: str) -> Result:
    args = [command, *FILES, "--endpoint", arm.endpoint, "--ca-bundle", str(arm.ca_bundle), *extra]
    return CliRunner().invoke(alerts_group, args)


def touched(arm: ArmEmulator, method: str) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in arm.calls(method)]


def test_validate() -> None:
    result = CliRunner().invoke(alerts_group, ["validate", *FILES])
    assert result.exit_code == 0 and result.output == "4 rule(s) valid in 2 file(s).\n"


def test_fresh_scope_plan_is_the_core_golden_with_one_list_call(arm: ArmEmulator) -> None:
    result = cli(arm, "plan")
    assert result.exit_code == EXIT_CHANGES, result.output
    assert_golden("plan_fresh_scope.txt", result.output)
    # The default scope is the resource groups the rules live in (all of them in rg-ai-prod), not the subscription.
    (call,) = arm.requests
    assert (call.method, call.path, call.query) == ("GET", f"/subscriptions/{SUB}/resourceGroups/rg-ai-prod/"
                                                           "providers/Microsoft.Insights/metricAlerts",
                                                    {"api-version": "2018-03-01"})
    assert call.authorization == "Bearer test-token"
    assert json.loads(cli(arm, "plan", "--json").output)["summary"]["create"] == 4


def test_apply_creates_everything_then_plan_is_empty(arm: ArmEmulator) -> None:
    result = cli(arm, "apply")
    assert result.exit_code == EXIT_IN_SYNC, result.output
    assert result.output.endswith("Applied: 4 created, 0 updated, 0 deleted.\n")
    # What the SDK put on the wire is to_arm_body, ownership tag included.
    sent = {r.path.rsplit("/", 1)[-1]: r.body for r in arm.calls("PUT")}
    assert sent == {e.name: json.loads(json.dumps(to_arm_body(e))) for e in DESIRED}
    # ARM answered ids in another case, upper-cased scopes and hidden-link tags; no diff for all that.
    stored = arm.rules[(SUB, "rg-ai-prod", "latency-prod")]
    assert "/resourcegroups/RG-AI-PROD/" in stored["id"] and any(t.startswith("hidden-link:") for t in stored["tags"])
    arm.requests.clear()
    again = cli(arm, "plan", "--prune")
    assert again.exit_code == EXIT_IN_SYNC, again.output
    assert again.output.endswith("Plan: 0 to create, 0 to update, 0 to delete, 4 unchanged, 0 left alone, "
                                 "0 conflict(s).\n")
    assert cli(arm, "apply", "--prune").output.endswith("Applied: 0 created, 0 updated, 0 deleted.\n")
    assert not arm.calls("PUT") and not arm.calls("DELETE")


def test_listed_rules_read_back_as_the_essence_put(arm: ArmEmulator) -> None:
    with client(arm) as c:
        for essence in DESIRED:
            c.put_rule(SUB, essence.resource_group, essence.name, json.loads(json.dumps(to_arm_body(essence))))
        by_group = c.list_rules(SUB, "RG-AI-PROD")
        by_sub = c.list_rules(SUB)
    assert by_group == by_sub
    assert sorted((essence_from_arm(p) for p in by_sub), key=lambda e: e.name) == sorted(DESIRED,
                                                                                          key=lambda e: e.name)
    assert arm.calls("GET")[0].path.endswith("/resourceGroups/RG-AI-PROD/providers/Microsoft.Insights/metricAlerts")


def test_threshold_change_is_one_update(arm: ArmEmulator) -> None:
    cli(arm, "apply")
    rule = arm.rules[(SUB, "rg-ai-prod", "throttled-gpt-4o-prod")]
    rule["properties"]["criteria"]["allOf"][0]["threshold"] = 20.0  # edited in the portal
    result = cli(arm, "plan")
    assert result.exit_code == EXIT_CHANGES
    assert "  ~ update throttled-gpt-4o-prod\n      criteria[0].threshold: 20.0 -> 10.0\n" in result.output
    arm.requests.clear()
    applied = cli(arm, "apply")
    assert applied.exit_code == 0 and touched(arm, "PUT") == ["throttled-gpt-4o-prod"]
    assert cli(arm, "plan").exit_code == EXIT_IN_SYNC


def test_removed_rule_is_deleted_only_with_prune_and_foreign_rules_never(arm: ArmEmulator) -> None:
    cli(arm, "apply")
    arm.store(server_payload(RETIRED, shout_ids=True))
    arm.store(server_payload(PORTAL_RULE, managed=False))
    waiting = cli(arm, "apply")
    assert waiting.exit_code == 0 and "would delete old-5xx-rule" in waiting.output
    assert "= left alone someone-elses-rule" in waiting.output and not arm.calls("DELETE")
    assert cli(arm, "plan").exit_code == EXIT_CHANGES  # a managed rule the YAML lacks is drift
    pruned = cli(arm, "apply", "--prune")
    assert pruned.exit_code == 0 and "Applied: 0 created, 0 updated, 1 deleted." in pruned.output
    assert touched(arm, "DELETE") == ["old-5xx-rule"] and touched(arm, "PUT") == [e.name for e in DESIRED]
    assert (SUB, "rg-ai-prod", "someone-elses-rule") in arm.rules
    assert cli(arm, "plan", "--prune").exit_code == EXIT_IN_SYNC


def test_foreign_rule_with_a_desired_name_is_adopted_only_when_asked(arm: ArmEmulator) -> None:
    arm.store(server_payload(BY_NAME["latency-prod"], managed=False))
    refused = cli(arm, "apply")
    assert refused.exit_code == 3 and not arm.calls("PUT")
    adopted = cli(arm, "apply", "--adopt")
    assert adopted.exit_code == 0 and "Applied: 3 created, 1 updated, 0 deleted." in adopted.output
    assert arm.rules[(SUB, "rg-ai-prod", "latency-prod")]["tags"][OWNERSHIP_TAG_KEY] == "aoai-observatory"
    assert cli(arm, "plan").exit_code == EXIT_IN_SYNC


def test_mass_change_is_refused_without_force(arm: ArmEmulator) -> None:
    cli(arm, "apply")
    for rule in arm.rules.values():
        rule["properties"]["severity"] = 4
    arm.requests.clear()
    refused = cli(arm, "apply", "--max-changes", "2")
    assert refused.exit_code == EXIT_ERROR and "re-run with --force" in refused.output
    assert "Traceback" not in refused.output and not arm.calls("PUT")
    forced = cli(arm, "apply", "--max-changes", "2", "--force")
    assert forced.exit_code == 0 and len(arm.calls("PUT")) == 4


def test_429_is_retried_after_retry_after(arm: ArmEmulator) -> None:
    arm.inject(Fault(429, retry_after="1", method="GET"))
    started = time.monotonic()
    with client(arm) as c:
        assert c.list_rules(SUB) == []
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in arm.requests] == [429, 200]


def test_errors_are_mapped(arm: ArmEmulator) -> None:
    body: dict[str, Any] = json.loads(json.dumps(to_arm_body(BY_NAME["server-errors-prod"])))
    bad = copy.deepcopy(body)
    bad["properties"]["criteria"]["allOf"][0]["metricName"] = "BlockedCalls"
    with client(arm, retries=0) as c:
        with pytest.raises(ArmRejectedError, match=r"rule 'server-errors-prod'.*HTTP 400 BadRequest: Couldn't find "
                                                   "a metric named BlockedCalls"):
            c.put_rule(SUB, "rg-ai-prod", "server-errors-prod", bad)
        arm.inject(Fault(403, method="PUT"))
        with pytest.raises(ArmPermissionError, match=r"Monitoring Contributor role on /subscriptions/.*/rg-ai-prod"):
            c.put_rule(SUB, "rg-ai-prod", "server-errors-prod", body)
        arm.inject(Fault(500))
        with pytest.raises(ArmTransientError, match="HTTP 500"):
            c.list_rules(SUB)
    assert not arm.rules


def test_an_interrupted_apply_converges_on_the_next_run(arm: ArmEmulator) -> None:
    arm.inject(Fault(500, method="PUT", after=2))
    with client(arm, retries=0) as c:
        first = plan(DESIRED, c.list_rules(SUB), prune=True, adopt=False)
        with pytest.raises(ApplyInterruptedError, match="after 2 of 4 change"):
            apply(first, c, prune=True)
        second = plan(DESIRED, c.list_rules(SUB), prune=True, adopt=False)
        assert (len(second.unchanged), len(second.creates)) == (2, 2)
        assert apply(second, c, prune=True).changed == 2
        assert not plan(DESIRED, c.list_rules(SUB), prune=True, adopt=False).changes_pending


def test_the_baseline_pack_validates_plans_and_applies_cleanly(arm: ArmEmulator) -> None:
    from pathlib import Path

    pack = [str(FIXTURES / "environment.yaml"), str(Path(alerts.cli.__file__).parent / "pack" / "azure-openai.yaml")]

    def run(command: str, *extra: str) -> Result:
        return CliRunner().invoke(alerts_group, [command, *pack, "--endpoint", arm.endpoint, "--ca-bundle",
                                                 str(arm.ca_bundle), *extra])

    validated = CliRunner().invoke(alerts_group, ["validate", *pack])
    assert validated.exit_code == 0, validated.output
    count = int(validated.output.split()[0])
    planned = run("plan", "--json")
    assert planned.exit_code == EXIT_CHANGES, planned.output
    assert json.loads(planned.output)["summary"]["create"] == count
    applied = run("apply", "--max-changes", str(count))
    assert applied.exit_code == EXIT_IN_SYNC, applied.output
    assert len(arm.calls("PUT")) == count  # every rule accepted by ARM (unknown metrics would be a 400)
    again = run("plan", "--json")
    assert again.exit_code == EXIT_IN_SYNC, again.output
    assert json.loads(again.output)["summary"]["unchanged"] == count


# -- stacks ----------------------------------------------------------------------------------------------------------

TEAM_B_RULES = """
rules:
  - name: team-b-dev-throttled
    description: 429s on the development account.
    scopes: [aoai-dev]
    metric: AzureOpenAIRequests
    dimensions: {StatusCode: [429]}
    operator: GreaterThan
    threshold: 100
    actions: [ops]
  - name: team-b-prod-errors
    description: Team B's own rule next to team A's, in the same resource group.
    scopes: [aoai-prod]
    metric: AzureOpenAIRequests
    dimensions: {StatusCode: [500]}
    operator: GreaterThan
    threshold: 20
    actions: [ops]
"""
EMPTY_RULES = "rules: []\n"
TWO_RULES = (FIXTURES / "rules.yaml").read_text(encoding="utf-8").split("  - name: server-errors-prod")[0]


def run(arm: ArmEmulator, command: str, files: list[str], *extra: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(alerts_group, [command, *files, "--endpoint", arm.endpoint, "--ca-bundle",
                                             str(arm.ca_bundle), *extra], env=env)


def rules_file(tmp_path: Path, name: str, text: str) -> list[str]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return [str(FIXTURES / "environment.yaml"), str(path)]


def stacks_of(arm: ArmEmulator) -> dict[str, str]:
    return {key[2]: rule["tags"][OWNERSHIP_TAG_KEY] for key, rule in arm.rules.items()}


@pytest.mark.parametrize("stack_a", ["default", "team-a"])
def test_two_stacks_in_one_subscription_never_touch_each_other(arm: ArmEmulator, tmp_path: Path,
                                                               stack_a: str) -> None:
    team_b = rules_file(tmp_path, "team-b.yaml", TEAM_B_RULES)
    assert run(arm, "apply", FILES, "--stack", stack_a).exit_code == EXIT_IN_SYNC
    applied_b = run(arm, "apply", team_b, "--stack", "team-b", "--prune")
    assert applied_b.exit_code == EXIT_IN_SYNC, applied_b.output
    assert "Applied: 2 created, 0 updated, 0 deleted." in applied_b.output  # none of team A's rules pruned
    assert "= other stack latency-prod" in applied_b.output  # A's rules in rg-ai-prod are listed apart
    owner_a = "aoai-observatory" if stack_a == "default" else f"aoai-observatory/{stack_a}"
    assert stacks_of(arm) == {**{e.name: owner_a for e in DESIRED}, "team-b-dev-throttled": "aoai-observatory/team-b",
                              "team-b-prod-errors": "aoai-observatory/team-b"}
    # Each plan returns 0 after its apply, whatever the other stack holds, with and without --prune.
    for files, stack in ((FILES, stack_a), (team_b, "team-b")):
        for extra in ((), ("--prune",)):
            planned = run(arm, "plan", files, "--stack", stack, *extra)
            assert planned.exit_code == EXIT_IN_SYNC, planned.output
    # Team A's prune over every resource group of the subscription, even forced, deletes only team A's rules.
    arm.requests.clear()
    pruned = run(arm, "apply", rules_file(tmp_path, "empty.yaml", EMPTY_RULES), "--stack", stack_a, "--prune",
                 "--force", "--subscription", SUB)
    assert pruned.exit_code == EXIT_IN_SYNC, pruned.output
    assert sorted(touched(arm, "DELETE")) == sorted(e.name for e in DESIRED) and not arm.calls("PUT")
    assert stacks_of(arm) == {"team-b-dev-throttled": "aoai-observatory/team-b",
                              "team-b-prod-errors": "aoai-observatory/team-b"}
    assert run(arm, "plan", team_b, "--stack", "team-b", "--prune").exit_code == EXIT_IN_SYNC


def test_a_desired_name_held_by_another_stack_is_refused_even_with_adopt(arm: ArmEmulator) -> None:
    assert run(arm, "apply", FILES, "--stack", "team-a").exit_code == EXIT_IN_SYNC
    arm.requests.clear()
    refused = run(arm, "apply", FILES, "--stack", "team-b", "--adopt")
    assert refused.exit_code == EXIT_CONFLICTS and not arm.calls("PUT") and not arm.calls("DELETE")
    assert "stack 'team-a' owns a rule with this name" in refused.output
    assert set(stacks_of(arm).values()) == {"aoai-observatory/team-a"}


def test_the_default_scope_is_the_resource_groups_the_rules_live_in(arm: ArmEmulator) -> None:
    # Issue 16: two teams on the default stack, in different resource groups; one's prune deleted the other's rule.
    other = dataclasses.replace(BY_NAME["latency-prod"], name="dev-team-rule", resource_group="rg-ai-dev")
    arm.store(server_payload(other))
    applied = cli(arm, "apply", "--prune")
    assert applied.exit_code == EXIT_IN_SYNC, applied.output
    assert not arm.calls("DELETE") and (SUB, "rg-ai-dev", "dev-team-rule") in arm.rules
    assert {r.path for r in arm.calls("GET")} == {f"/subscriptions/{SUB}/resourceGroups/rg-ai-prod/providers/"
                                                  "Microsoft.Insights/metricAlerts"}
    assert cli(arm, "plan", "--prune").exit_code == EXIT_IN_SYNC


def test_deleting_all_rules_of_a_small_stack_needs_force(arm: ArmEmulator, tmp_path: Path) -> None:
    assert cli(arm, "apply", "--stack", "team-a").exit_code == EXIT_IN_SYNC
    empty = rules_file(tmp_path, "empty.yaml", EMPTY_RULES)
    arm.requests.clear()
    refused = run(arm, "apply", empty, "--stack", "team-a", "--prune", "--subscription", SUB, "--resource-group",
                  "rg-ai-prod")
    assert refused.exit_code == EXIT_ERROR and "deleting all 4 rule(s) of stack 'team-a'" in refused.output
    assert "Traceback" not in refused.output and not arm.calls("DELETE") and len(arm.rules) == 4
    half = run(arm, "apply", rules_file(tmp_path, "two.yaml", TWO_RULES), "--stack", "team-a", "--prune")
    assert half.exit_code == EXIT_IN_SYNC and len(arm.calls("DELETE")) == 2, half.output  # exactly half: allowed
    forced = run(arm, "apply", empty, "--stack", "team-a", "--prune", "--force", "--subscription", SUB,
                 "--resource-group", "rg-ai-prod")
    assert forced.exit_code == EXIT_IN_SYNC and not arm.rules, forced.output


def test_the_stack_comes_from_the_environment_and_is_validated(arm: ArmEmulator) -> None:
    assert cli(arm, "apply").exit_code == EXIT_IN_SYNC  # the default stack
    from_env = run(arm, "plan", FILES, "--json", env={STACK_ENV: "team-a"})
    document = json.loads(from_env.output)
    assert document["summary"]["stack"] == "team-a" and document["summary"]["conflicts"] == 4
    assert run(arm, "plan", FILES, "--stack", "default", env={STACK_ENV: "team-a"}).exit_code == EXIT_IN_SYNC
    for bad in ("Team-A", "team/a", ""):
        arm.requests.clear()
        result = run(arm, "plan", FILES, "--stack", bad)
        assert result.exit_code == EXIT_ERROR and "Invalid value for '--stack'" in result.output, bad
        assert "Traceback" not in result.output and not arm.requests


def test_the_stack_variable_is_not_taken_for_a_collector_setting() -> None:
    # A double-underscore name (AOAI_OBS_ALERTS__STACK) would be refused by the settings loader of every other command.
    from collector.config import load_settings

    load_settings(None, {STACK_ENV: "team-a"})
