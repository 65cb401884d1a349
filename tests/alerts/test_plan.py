"""Plans against existing ARM rules: golden text and JSON, ownership, drift, prune, adopt, exit codes, safety."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from alerts.catalog import OWNERSHIP_TAG_KEY, TAG_VALUE_MAX, ownership_value, stack_problem
from alerts.errors import UnsafePlanError
from alerts.model import Dimension, RuleEssence, essence_from_spec, is_managed, owner_stack, to_arm_body
from alerts.plan import (
    EXIT_CHANGES,
    EXIT_CONFLICTS,
    EXIT_IN_SYNC,
    Plan,
    Update,
    check_safety,
    exit_code,
    plan,
    render_json,
    render_text,
)
from alerts.spec import load_rule_set
from tests.alerts.arm_payloads import edited, server_payload
from tests.alerts.goldens import FIXTURES, assert_golden

DESIRED = [essence_from_spec(r) for r in load_rule_set([FIXTURES / "environment.yaml",
                                                        FIXTURES / "rules.yaml"]).rules]
BY_NAME = {e.name: e for e in DESIRED}


def with_criterion(essence: RuleEssence, **changes: Any) -> RuleEssence:
    return dataclasses.replace(essence, criteria=(dataclasses.replace(essence.criteria[0], **changes),))


def deployed(*, skip: str = "", **replacements: RuleEssence) -> list[dict[str, Any]]:
    """The desired rules as Azure returns them after an apply, with some replaced by an older or edited version."""
    return [server_payload(replacements.get(e.name.replace("-", "_"), e)) for e in DESIRED if e.name != skip]


RETIRED = dataclasses.replace(BY_NAME["server-errors-prod"], name="old-5xx-rule")
PORTAL_RULE = dataclasses.replace(BY_NAME["latency-prod"], name="someone-elses-rule", tags=(("owner", "data-team"),))


def drifted() -> list[dict[str, Any]]:
    """server-errors-prod edited in the portal (severity 1 -> 3); ids upper-cased and hidden-link tags by ARM."""
    payloads = [server_payload(e, shout_ids=True) for e in DESIRED]
    index = next(i for i, p in enumerate(payloads) if p["name"] == "server-errors-prod")
    payloads[index] = edited(payloads[index], severity=3)
    return payloads


SCENARIOS: dict[str, tuple[Callable[[], list[dict[str, Any]]], bool, bool]] = {
    "fresh_scope": (lambda: [], False, False),
    "no_changes": (lambda: deployed(), False, False),
    "threshold_change": (lambda: deployed(throttled_gpt_4o_prod=with_criterion(BY_NAME["throttled-gpt-4o-prod"],
                                                                               threshold=20.0)), False, False),
    "dimension_change": (lambda: deployed(server_errors_prod=with_criterion(
        BY_NAME["server-errors-prod"], dimensions=(Dimension("ModelDeploymentName", "Include", ("*",)),
                                                   Dimension("StatusCode", "Include", ("500", "502", "503"))))),
        False, False),
    "removed_rule": (lambda: [*deployed(), server_payload(RETIRED)], False, False),
    "removed_rule_prune": (lambda: [*deployed(), server_payload(RETIRED)], True, False),
    "foreign_left_alone": (lambda: [*deployed(), server_payload(PORTAL_RULE, managed=False)], True, False),
    "portal_drift": (drifted, False, False),
    "foreign_same_name": (lambda: [server_payload(e, managed=e.name != "latency-prod") for e in DESIRED], False,
                          False),
    "adopt_same_name": (lambda: [server_payload(e, managed=e.name != "latency-prod") for e in DESIRED], False, True),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_golden_plans(scenario: str) -> None:
    existing, prune, adopt = SCENARIOS[scenario]
    result = plan(DESIRED, existing(), prune=prune, adopt=adopt)
    assert_golden(f"plan_{scenario}.txt", render_text(result))
    assert_golden(f"plan_{scenario}.json", render_json(result))
    assert json.loads(render_json(result))["summary"]["exit_code"] == exit_code(result)


def test_fresh_scope_creates_everything() -> None:
    result = plan(DESIRED, [], prune=False, adopt=False)
    assert [e.name for e in result.creates] == sorted(BY_NAME)
    assert (result.updates, result.deletes, exit_code(result)) == ((), (), EXIT_CHANGES)


def test_applied_rules_plan_no_changes_even_with_ids_in_another_case() -> None:
    for shout in (False, True):
        result = plan(DESIRED, [server_payload(e, shout_ids=shout) for e in DESIRED], prune=True, adopt=False)
        assert (result.creates, result.updates, result.deletes) == ((), (), ())
        assert len(result.unchanged) == len(DESIRED) and exit_code(result) == EXIT_IN_SYNC


def test_portal_drift_shows_severity_but_not_casing_or_hidden_links() -> None:
    result = plan(DESIRED, drifted(), prune=False, adopt=False)
    (update,) = result.updates
    assert update.after.name == "server-errors-prod"
    assert [(c.field, c.before, c.after) for c in update.changes] == [("severity", 3, 1)]


def test_threshold_and_dimension_changes_are_per_field() -> None:
    (update,) = plan(DESIRED, SCENARIOS["threshold_change"][0](), prune=False, adopt=False).updates
    assert [(c.field, c.before, c.after) for c in update.changes] == [("criteria[0].threshold", 20.0, 10.0)]
    (update,) = plan(DESIRED, SCENARIOS["dimension_change"][0](), prune=False, adopt=False).updates
    assert [c.field for c in update.changes] == ["criteria[0].dimensions.StatusCode"]


def test_removed_rules_are_deleted_only_with_prune() -> None:
    existing = [*deployed(), server_payload(RETIRED)]
    for prune in (False, True):
        result = plan(DESIRED, existing, prune=prune, adopt=False)
        assert [e.name for e in result.deletes] == ["old-5xx-rule"] and result.prune is prune
        assert exit_code(result) == EXIT_CHANGES  # a managed rule the YAML no longer has is drift either way
        document = json.loads(render_json(result))
        assert (len(document["delete"]), len(document["would_delete"])) == ((1, 0) if prune else (0, 1))


def test_foreign_rules_are_never_touched() -> None:
    foreign = server_payload(PORTAL_RULE, managed=False)
    result = plan([], [foreign], prune=True, adopt=True)
    assert (result.creates, result.updates, result.deletes) == ((), (), ())
    assert [r.name for r in result.left_alone] == ["someone-elses-rule"] and exit_code(result) == EXIT_IN_SYNC


def test_a_foreign_rule_with_a_desired_name_is_a_conflict_unless_adopted() -> None:
    existing = SCENARIOS["foreign_same_name"][0]()
    result = plan(DESIRED, existing, prune=True, adopt=False)
    assert [r.name for r in result.conflicts] == ["latency-prod"] and not result.creates
    assert exit_code(result) == EXIT_CONFLICTS
    adopted = plan(DESIRED, existing, prune=True, adopt=True)
    (update,) = adopted.updates
    assert update.adopt and update.changes == () and exit_code(adopted) == EXIT_CHANGES


def test_ownership_tag_is_matched_case_insensitively() -> None:
    payload = server_payload(BY_NAME["latency-prod"])
    del payload["tags"][OWNERSHIP_TAG_KEY]
    payload["tags"][OWNERSHIP_TAG_KEY.upper()] = "AOAI-Observatory"
    assert plan([BY_NAME["latency-prod"]], [payload], prune=False, adopt=False).unchanged


def _plan_with(updates: int, deletes: int, managed: int, prune: bool = True) -> Plan:
    essence = DESIRED[0]
    return Plan((), tuple(Update(essence, essence, ()) for _ in range(updates)), (essence,) * deletes, (), (), (),
                managed, prune, False)


@pytest.mark.parametrize(("updates", "deletes", "managed", "prune", "force", "refused"), [
    (10, 0, 100, True, False, False),   # exactly the absolute limit, 10 % of the rules
    (11, 0, 100, True, False, True),    # over the absolute limit
    (6, 5, 100, True, True, False),     # --force
    (2, 2, 10, True, False, True),      # 40 % of 10 managed rules
    (3, 0, 10, True, False, False),     # 30 % is still allowed
    (3, 3, 9, True, False, False),      # fewer than 10 managed rules: only the absolute limit applies
    (0, 50, 100, False, False, False),  # deletes without prune do not happen, so they do not count
    (0, 0, 0, True, False, False),
])
def test_mass_change_guard(updates: int, deletes: int, managed: int, prune: bool, force: bool, refused: bool) -> None:
    result = _plan_with(updates, deletes, managed, prune)
    if refused:
        with pytest.raises(UnsafePlanError, match="--force"):
            check_safety(result, 10, force)
    else:
        check_safety(result, 10, force)


def test_creates_are_never_limited() -> None:
    check_safety(Plan(tuple(DESIRED) * 20, (), (), (), (), (), 0, True, False), 10, False)


# -- stacks ----------------------------------------------------------------------------------------------------------


def of_stack(essence: RuleEssence, stack: str) -> dict[str, Any]:
    """A rule as Azure lists it after an apply by `stack` (the ownership tag's value names it)."""
    payload = server_payload(essence)
    payload["tags"][OWNERSHIP_TAG_KEY] = ownership_value(stack)
    return payload


TEAM_B = dataclasses.replace(BY_NAME["latency-prod"], name="team-b-latency")


@pytest.mark.parametrize("stack", ["default", "team-a"])
def test_rules_of_other_stacks_are_listed_apart_and_never_deleted(stack: str) -> None:
    other = "team-b" if stack == "default" else "default"
    existing = [*(of_stack(e, stack) for e in DESIRED), of_stack(TEAM_B, other), of_stack(RETIRED, stack)]
    result = plan(DESIRED, existing, prune=True, adopt=True, stack=stack)
    assert [e.name for e in result.deletes] == ["old-5xx-rule"] and result.managed == len(DESIRED) + 1
    assert [(r.ref.name, r.stack) for r in result.other_stacks] == [("team-b-latency", other)]
    assert not result.conflicts and not result.left_alone and result.stack == stack
    assert f"  = other stack team-b-latency (stack {other!r}; never changed here)" in render_text(result)
    document = json.loads(render_json(result))
    assert document["summary"]["stack"] == stack and document["other_stacks"][0]["stack"] == other


def test_an_other_stacks_rule_with_a_desired_name_is_a_conflict_even_with_adopt() -> None:
    existing = [of_stack(e, "team-b" if e.name == "latency-prod" else "team-a") for e in DESIRED]
    for adopt in (False, True):
        result = plan(DESIRED, existing, prune=True, adopt=adopt, stack="team-a")
        assert [r.name for r in result.conflicts] == ["latency-prod"] and exit_code(result) == EXIT_CONFLICTS
        assert not result.updates and not result.deletes
        assert "stack 'team-b' owns a rule with this name" in render_text(result)


def test_rules_of_the_release_before_stacks_belong_to_the_default_stack() -> None:
    legacy = deployed()  # tagged `managed-by: aoai-observatory`, no stack: what the previous release wrote
    assert all(p["tags"][OWNERSHIP_TAG_KEY] == "aoai-observatory" for p in legacy)
    assert exit_code(plan(DESIRED, legacy, prune=True, adopt=False)) == EXIT_IN_SYNC
    named = plan([], legacy, prune=True, adopt=False, stack="team-a")
    assert (named.deletes, named.managed, len(named.other_stacks)) == ((), 0, len(DESIRED))
    assert exit_code(named) == EXIT_IN_SYNC


def test_the_stack_is_written_in_the_ownership_tag_and_read_back_case_insensitively() -> None:
    essence = BY_NAME["latency-prod"]
    assert to_arm_body(essence)["tags"][OWNERSHIP_TAG_KEY] == "aoai-observatory"
    assert to_arm_body(essence, "team-a")["tags"][OWNERSHIP_TAG_KEY] == "aoai-observatory/team-a"
    shouted = server_payload(essence)
    shouted["tags"] = {"MANAGED-BY": "AOAI-Observatory/Team-A", **{k: v for k, v in shouted["tags"].items()
                                                                    if k != OWNERSHIP_TAG_KEY}}
    assert owner_stack(shouted) == "team-a" and is_managed(shouted, "team-a") and not is_managed(shouted, "default")
    assert plan([essence], [shouted], prune=True, adopt=False, stack="team-a").unchanged
    for value in ("aoai-observatory/", "aoai-observatory-team-a", "terraform"):
        assert owner_stack({"tags": {OWNERSHIP_TAG_KEY: value}}) is None, value


def test_other_stacks_golden() -> None:
    existing = [*(of_stack(e, "team-a") for e in DESIRED if e.name != "latency-prod"), of_stack(TEAM_B, "team-b"),
                of_stack(BY_NAME["latency-prod"], "default"), server_payload(PORTAL_RULE, managed=False)]
    result = plan(DESIRED, existing, prune=False, adopt=False, stack="team-a")
    assert_golden("plan_other_stacks.txt", render_text(result))


@pytest.mark.parametrize(("name", "problem"), [
    ("team-a", None), ("default", None), ("a", None), ("ai.platform_eu-1", None), ("x" * 63, None),
    ("", "cannot be empty"), ("x" * 64, "at most 63"), ("Team-A", "lowercase it"), ("-team", "starting with"),
    ("team/a", "letters, digits"), ("équipe", "letters, digits"), ("team a", "letters, digits"),
])
def test_stack_names(name: str, problem: str | None) -> None:
    found = stack_problem(name)
    assert (found is None) if problem is None else (found is not None and problem in found)
    if problem is None:
        assert len(ownership_value(name)) <= TAG_VALUE_MAX


@pytest.mark.parametrize(("deletes", "managed", "prune", "refused"), [
    (4, 4, True, True),     # all of a small stack: the empty file with --prune from issue 16
    (1, 1, True, True),     # all of a one-rule stack
    (3, 5, True, True),     # more than half
    (2, 4, True, False),    # exactly half
    (1, 3, True, False),
    (4, 4, False, False),   # without prune nothing is deleted
    (0, 0, True, False),
])
def test_deleting_most_or_all_of_a_stack_needs_force_whatever_the_count(deletes: int, managed: int, prune: bool,
                                                                        refused: bool) -> None:
    result = dataclasses.replace(_plan_with(0, deletes, managed, prune), stack="team-a")
    if refused:
        with pytest.raises(UnsafePlanError, match=r"(all|more than half of the) \d+ rule.* of stack 'team-a'.*--force"):
            check_safety(result, 10, False)
    else:
        check_safety(result, 10, False)
    check_safety(result, 10, True)
