"""The plan: desired essences against existing ARM rules -> creates, updates, deletes; rendering; exit codes; safety.

Only rules carrying the ownership tag of the plan's stack (`managed-by: aoai-observatory` for the default stack,
`managed-by: aoai-observatory/<stack>` for a named one) are ours. Rules of other stacks are listed apart and never
changed: a desired rule whose name one of them holds is a conflict, even with `adopt`. Any other rule is left alone
and reported; a desired rule whose name is taken by such a rule is a conflict (its PUT would overwrite someone
else's rule) unless `adopt` is given, which turns it into an update that adds our tag.

Exit codes for `aoai-obs alerts plan` (CI drift checks): 0 in sync; 1 an error (reported by the CLI); 2 changes
pending (creates, updates or deletes, counting deletes that wait for --prune, since Azure then holds a managed rule
the YAML no longer has); 3 conflicts (a desired rule's name is held by an unmanaged rule: rename it or --adopt).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alerts.catalog import DEFAULT_STACK
from alerts.diff import FieldChange, JsonValue, diff_essences, flatten
from alerts.errors import AlertsError, UnsafePlanError
from alerts.model import RuleEssence, essence_from_arm, owner_stack, rule_identity

EXIT_IN_SYNC, EXIT_ERROR, EXIT_CHANGES, EXIT_CONFLICTS = 0, 1, 2, 3
# octodns's defaults: refuse to update or delete more than 30 % of the managed records when there are at least 10.
MAX_CHANGES, MAX_FRACTION, MIN_EXISTING = 10, 0.3, 10
# Whatever the count (a small stack too): deleting more than half of a stack's rules, or all of them, needs force.
MAX_DELETE_FRACTION = 0.5


@dataclass(frozen=True)
class RuleRef:
    """Where a rule lives in Azure: subscription and resource group (lower-cased) and its name."""

    subscription_id: str
    resource_group: str
    name: str

    @property
    def resource_id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}/providers/"
                f"Microsoft.Insights/metricAlerts/{self.name}")

    @property
    def key(self) -> tuple[str, str, str]:
        return self.subscription_id, self.resource_group, self.name.casefold()

    @classmethod
    def of(cls, essence: RuleEssence) -> RuleRef:
        return cls(essence.subscription_id, essence.resource_group, essence.name)


@dataclass(frozen=True)
class Update:
    """An existing rule to overwrite with the desired one; `adopt` when it is an unmanaged rule being taken over."""

    before: RuleEssence
    after: RuleEssence
    changes: tuple[FieldChange, ...]
    adopt: bool = False


@dataclass(frozen=True)
class StackRule:
    """A rule another stack owns: listed, never changed."""

    ref: RuleRef
    stack: str


@dataclass(frozen=True)
class Plan:
    """What applying the YAML would do. `deletes` are performed only when `prune`; otherwise they are reported."""

    creates: tuple[RuleEssence, ...]
    updates: tuple[Update, ...]
    deletes: tuple[RuleEssence, ...]
    unchanged: tuple[RuleRef, ...]
    left_alone: tuple[RuleRef, ...]
    conflicts: tuple[RuleRef, ...]
    managed: int
    prune: bool
    adopt: bool
    stack: str = DEFAULT_STACK
    other_stacks: tuple[StackRule, ...] = ()

    @property
    def changes_pending(self) -> bool:
        return bool(self.creates or self.updates or self.deletes)


def _key(ref: RuleRef | RuleEssence) -> tuple[str, str, str]:
    return ref.key


def plan(desired: Sequence[RuleEssence], existing_arm: Sequence[dict[str, Any]], *, prune: bool, adopt: bool,
         stack: str = DEFAULT_STACK) -> Plan:
    """Compare the desired rules with the rules listed in Azure (ARM JSON, as listed); touch only `stack`'s rules
    (plus, with `adopt`, unmanaged rules holding a desired name)."""
    wanted: dict[tuple[str, str, str], RuleEssence] = {}
    for essence in desired:
        if wanted.setdefault(essence.key, essence) is not essence:
            raise AlertsError(f"rule {essence.name!r} is desired twice in {essence.resource_group}")
    managed: dict[tuple[str, str, str], RuleEssence] = {}
    foreign: dict[tuple[str, str, str], dict[str, Any]] = {}
    others: dict[tuple[str, str, str], StackRule] = {}
    for payload in existing_arm:
        ref = RuleRef(*rule_identity(payload))
        owner = owner_stack(payload)
        if owner == stack:
            managed[ref.key] = essence_from_arm(payload)
        elif owner is None:
            foreign[ref.key] = payload
        else:
            others[ref.key] = StackRule(ref, owner)
    creates, updates, unchanged, conflicts = [], [], [], []
    for key, essence in sorted(wanted.items()):
        if key in managed:
            changes = diff_essences(managed[key], essence)
            if changes:
                updates.append(Update(managed[key], essence, changes))
            else:
                unchanged.append(RuleRef.of(essence))
        elif key in others:
            conflicts.append(others[key].ref)
        elif key in foreign and adopt:
            before = essence_from_arm(foreign[key])
            updates.append(Update(before, essence, diff_essences(before, essence), adopt=True))
        elif key in foreign:
            conflicts.append(RuleRef(*rule_identity(foreign[key])))
        else:
            creates.append(essence)
    deletes = [essence for key, essence in sorted(managed.items()) if key not in wanted]
    left_alone = sorted((RuleRef(*rule_identity(p)) for k, p in foreign.items() if k not in wanted), key=_key)
    return Plan(tuple(creates), tuple(updates), tuple(deletes), tuple(unchanged), tuple(left_alone),
                tuple(conflicts), len(managed), prune, adopt, stack,
                tuple(others[k] for k in sorted(others)))


def exit_code(result: Plan) -> int:
    """3 conflicts, 2 changes pending (deletes waiting for --prune included), 0 in sync."""
    if result.conflicts:
        return EXIT_CONFLICTS
    return EXIT_CHANGES if result.changes_pending else EXIT_IN_SYNC


def check_safety(result: Plan, max_changes: int = MAX_CHANGES, force: bool = False, *,
                 max_fraction: float = MAX_FRACTION, min_existing: int = MIN_EXISTING) -> None:
    """Refuse (UnsafePlanError) a plan that updates or deletes more managed rules than a reviewer would expect:
    more than `max_changes`, or more than `max_fraction` of them when at least `min_existing` exist, or, whatever
    the count, deletes of more than half of the stack's rules or of all of them (an empty or truncated file with
    --prune). Creates are never limited; deletes count only when they would happen (prune)."""
    deletes = len(result.deletes) if result.prune else 0
    touched = len(result.updates) + deletes
    too_many = touched > max_changes
    too_large = result.managed >= min_existing and touched > max_fraction * result.managed
    most_deleted = deletes > 0 and deletes > MAX_DELETE_FRACTION * result.managed
    if force or not (too_many or too_large or most_deleted):
        return
    if too_many:
        limit = f"more than {max_changes}"
    elif too_large:
        limit = f"more than {max_fraction:.0%} of the {result.managed} managed rules"
    elif deletes >= result.managed:
        limit = f"deleting all {result.managed} rule(s) of stack {result.stack!r}"
    else:
        limit = f"deleting more than half of the {result.managed} rules of stack {result.stack!r}"
    raise UnsafePlanError(f"the plan would change {touched} existing rule(s) ({len(result.updates)} update(s), "
                          f"{deletes} delete(s)), {limit}: review the plan, then re-run with --force")


# -- rendering -------------------------------------------------------------------------------------------------------


def _value(value: JsonValue) -> str:
    return "(none)" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _where(ref: RuleRef) -> str:
    return f"subscription {ref.subscription_id}, resource group {ref.resource_group}"


def _summary(result: Plan) -> dict[str, int]:
    deletes = len(result.deletes)
    return {"create": len(result.creates), "update": len(result.updates), "delete": deletes if result.prune else 0,
            "would_delete": 0 if result.prune else deletes, "unchanged": len(result.unchanged),
            "left_alone": len(result.left_alone), "conflicts": len(result.conflicts),
            "other_stacks": len(result.other_stacks)}


def render_text(result: Plan) -> str:
    """The plan for people: grouped by subscription and resource group, stable order, per-field before -> after."""
    groups: dict[RuleRef, list[str]] = {}

    def add(ref: RuleRef, lines: list[str]) -> None:
        groups.setdefault(RuleRef(ref.subscription_id, ref.resource_group, ""), []).extend(lines)

    for essence in result.creates:
        add(RuleRef.of(essence), [f"  + create {essence.name}",
                                  *(f"      {k}: {_value(v)}" for k, v in flatten(essence).items())])
    for update in result.updates:
        how = " (adopt: take over an unmanaged rule and add the ownership tag)" if update.adopt else ""
        add(RuleRef.of(update.after), [f"  ~ update {update.after.name}{how}",
                                       *(f"      {c.field}: {_value(c.before)} -> {_value(c.after)}"
                                         for c in update.changes)])
    for essence in result.deletes:
        add(RuleRef.of(essence), [f"  - delete {essence.name}" if result.prune
                                  else f"  - would delete {essence.name} (managed, no longer in the YAML; "
                                       "pass --prune to delete it)"])
    held = {r.ref.key: r.stack for r in result.other_stacks}
    for ref in result.conflicts:
        add(ref, [f"  ! conflict {ref.name}: stack {held[ref.key]!r} owns a rule with this name (rename the rule; "
                  "rules of other stacks are never changed)" if ref.key in held
                  else f"  ! conflict {ref.name}: an unmanaged rule has this name (rename the rule, or pass --adopt "
                       "to take it over)"])
    for ref in result.left_alone:
        add(ref, [f"  = left alone {ref.name} (not managed by aoai-observatory)"])
    for other in result.other_stacks:
        if other.ref.key not in {c.key for c in result.conflicts}:
            add(other.ref, [f"  = other stack {other.ref.name} (stack {other.stack!r}; never changed here)"])
    lines: list[str] = []
    for group in sorted(groups, key=_key):
        lines += [_where(group), *groups[group], ""]
    counts = _summary(result)
    waiting = f", {counts['would_delete']} to delete with --prune" if counts["would_delete"] else ""
    stack = "" if result.stack == DEFAULT_STACK else f" (stack {result.stack})"
    others = f", {counts['other_stacks']} of other stacks" if counts["other_stacks"] else ""
    lines.append(f"Plan{stack}: {counts['create']} to create, {counts['update']} to update, {counts['delete']} to "
                 f"delete{waiting}, {counts['unchanged']} unchanged, {counts['left_alone']} left alone{others}, "
                 f"{counts['conflicts']} conflict(s).")
    return "\n".join(lines) + "\n"


def _ref_json(ref: RuleRef) -> dict[str, JsonValue]:
    return {"id": ref.resource_id, "subscription_id": ref.subscription_id, "resource_group": ref.resource_group,
            "name": ref.name}


def render_json(result: Plan) -> str:
    """The plan for machines: one JSON document, keys sorted, lists in a stable order."""
    deletes: list[JsonValue] = [_ref_json(RuleRef.of(e)) for e in result.deletes]
    document: dict[str, JsonValue] = {
        "summary": {**_summary(result), "stack": result.stack, "prune": result.prune, "adopt": result.adopt,
                    "changes_pending": result.changes_pending, "exit_code": exit_code(result)},
        "create": [{**_ref_json(RuleRef.of(e)), "rule": flatten(e)} for e in result.creates],
        "update": [{**_ref_json(RuleRef.of(u.after)), "adopt": u.adopt,
                    "changes": [{"field": c.field, "before": c.before, "after": c.after} for c in u.changes]}
                   for u in result.updates],
        "delete": deletes if result.prune else [],
        "would_delete": [] if result.prune else deletes,
        "unchanged": [_ref_json(r) for r in result.unchanged],
        "left_alone": [_ref_json(r) for r in result.left_alone],
        "conflicts": [_ref_json(r) for r in result.conflicts],
        "other_stacks": [{**_ref_json(r.ref), "stack": r.stack} for r in result.other_stacks],
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
