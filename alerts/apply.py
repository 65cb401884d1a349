"""Carry out a plan through ARM: creates and updates (PUTs) first, then deletes, only with prune, only managed rules.

The plan decides ownership: its updates and deletes are rules carrying its stack's tag (or, for an adopt update, an
unmanaged rule the user asked to take over, whose PUT body gains the tag from `to_arm_body`); every PUT body carries
the plan's stack. Rules without the tag, and rules of other stacks, are never written or deleted. A plan with
conflicts is refused whole. Mass changes are refused by `check_safety` unless forced. Every PUT is idempotent, so
an apply that stopped half-way converges when run again (list, plan, apply): what was written shows as unchanged,
what was not still shows as a change.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Protocol

from alerts.errors import AlertsError, ApplyInterruptedError
from alerts.model import RuleEssence, to_arm_body
from alerts.plan import MAX_CHANGES, Plan, RuleRef, check_safety


class RuleWriter(Protocol):
    """What apply needs from ARM (`alerts.arm.MetricAlertsClient`)."""

    def put_rule(self, subscription_id: str, resource_group: str, name: str,
                 body: dict[str, Any]) -> dict[str, Any]: ...

    def delete_rule(self, subscription_id: str, resource_group: str, name: str) -> None: ...


@dataclass(frozen=True)
class ApplyReport:
    """What an apply did, in the order it did it; `waiting_deletes` are managed rules left because prune was off."""

    created: tuple[RuleRef, ...] = ()
    updated: tuple[RuleRef, ...] = ()
    deleted: tuple[RuleRef, ...] = ()
    waiting_deletes: tuple[RuleRef, ...] = ()

    @property
    def changed(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deleted)

    def render(self) -> str:
        lines = [*(f"  + created {r.name} ({r.resource_group})" for r in self.created),
                 *(f"  ~ updated {r.name} ({r.resource_group})" for r in self.updated),
                 *(f"  - deleted {r.name} ({r.resource_group})" for r in self.deleted),
                 *(f"  - not deleted {r.name} ({r.resource_group}): pass --prune to delete it"
                   for r in self.waiting_deletes)]
        lines.append(f"Applied: {len(self.created)} created, {len(self.updated)} updated, {len(self.deleted)} "
                     f"deleted" + (f", {len(self.waiting_deletes)} waiting for --prune" if self.waiting_deletes
                                   else "") + ".")
        return "\n".join(lines) + "\n"


def _body(essence: RuleEssence, stack: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(to_arm_body(essence, stack)))
    return result


def apply(result: Plan, client: RuleWriter, *, prune: bool, force: bool = False,
          max_changes: int = MAX_CHANGES) -> ApplyReport:
    """Apply `result` through `client`; raises UnsafePlanError before any call when the plan is too large, and
    ApplyInterruptedError (from the ARM error) when a call fails part-way, saying what was done."""
    if result.conflicts:
        names = ", ".join(r.name for r in result.conflicts)
        raise AlertsError(f"nothing applied: rule(s) not of stack {result.stack!r} hold the name of desired "
                          f"rule(s): {names}; rename them in the YAML, or pass --adopt to take over unmanaged ones")
    result = dataclasses.replace(result, prune=prune)
    check_safety(result, max_changes, force)
    created: list[RuleRef] = []
    updated: list[RuleRef] = []
    deleted: list[RuleRef] = []
    total = len(result.creates) + len(result.updates) + (len(result.deletes) if prune else 0)
    try:
        for essence in result.creates:
            ref = RuleRef.of(essence)
            client.put_rule(ref.subscription_id, ref.resource_group, ref.name, _body(essence, result.stack))
            created.append(ref)
        for update in result.updates:
            ref = RuleRef.of(update.after)
            client.put_rule(ref.subscription_id, ref.resource_group, ref.name, _body(update.after, result.stack))
            updated.append(ref)
        if prune:
            for essence in result.deletes:
                # The existing rule's own name: ARM matches it case-insensitively, and it is the one listed.
                ref = RuleRef.of(essence)
                client.delete_rule(ref.subscription_id, ref.resource_group, ref.name)
                deleted.append(ref)
    except AlertsError as e:
        done = len(created) + len(updated) + len(deleted)
        raise ApplyInterruptedError(f"apply stopped after {done} of {total} change(s) ({len(created)} created, "
                                    f"{len(updated)} updated, {len(deleted)} deleted): {e}\nWhat was applied "
                                    "stays applied; run apply again to converge.") from e
    waiting = () if prune else tuple(RuleRef.of(e) for e in result.deletes)
    return ApplyReport(tuple(created), tuple(updated), tuple(deleted), waiting)
