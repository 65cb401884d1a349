"""Pure: who used what and what it cost: attribution rules, estimated and provisioned splits, exact apportioning.

Every figure carries its method: `direct` (the caller's identity or APIM subscription names the team), `owner`
(deployment ownership, tags or an agreed fixed share), `estimated` (a shared deployment's tokens apportioned by the
callers' share of requests or request bytes), `unallocated` (nothing says whose it is) and `idle` (the unused share
of a provisioned deployment's capacity).

Exactness: tokens are integers and cost is rounded once per deployment and bucket to `MICRO_USD` (1e-6 USD, half
even); both are then apportioned by the largest-remainder method, so per-team figures add up exactly to the
deployment's totals, and any sum of buckets does too.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from collector.apportion import largest_remainder
from collector.cost.pricing import PriceBook, PriceRow, cost_of_ptus, cost_of_tokens, price_for
from collector.yamlfile import Located, read_located_yaml

MICRO_USD = Decimal("0.000001")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
DIRECT, OWNER, ESTIMATED, UNALLOCATED, IDLE = "direct", "owner", "estimated", "unallocated", "idle"
METHODS = (DIRECT, OWNER, ESTIMATED, UNALLOCATED, IDLE)
#: What a cost figure rests on: the bill allocated to teams (`collector.cost.ledger`), or telemetry priced by the
#: price book (every figure attribution itself makes).
BILLED, ESTIMATE = "billed", "estimate"
RULE_KINDS = ("apim_subscription", "caller", "deployment", "tag", "owner")
ESTIMATE_BY = ("requests", "request_bytes")
SPLITS = ("tokens", "even", "fixed")

# -- inputs ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeploymentInfo:
    """A deployment as the inventory knows it. `capacity` is PTUs for provisioned types."""

    account: str
    name: str
    model: str
    version: str | None
    deployment_type: str
    region: str | None = None
    capacity: int = 0
    owner_team: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenUsage:
    """Tokens with a caller (a `usage_tokens` row; `apim_subscription_id` filled from `apim_tokens` when known)."""

    bucket: datetime
    account: str
    deployment: str
    caller_object_id: str = ""
    apim_subscription_id: str = ""
    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class DeploymentTokens:
    """A deployment's tokens without callers (platform metrics): the case for an estimated split."""

    bucket: datetime
    account: str
    deployment: str
    requests: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class CallerRequests:
    """A `caller_requests` row: how much each caller asked of a deployment."""

    bucket: datetime
    account: str
    deployment: str
    caller_object_id: str
    requests: int
    request_bytes: int = 0


@dataclass(frozen=True)
class ProvisionedHour:
    """An hour (bucket) in which a provisioned deployment existed, for `minutes` of it, and its mean utilisation
    (0..1, from AzureOpenAIProvisionedManagedUtilizationV2 / 100); None when unknown."""

    bucket: datetime
    account: str
    deployment: str
    minutes: int = 60
    utilisation: Decimal | None = None


# -- rules -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    kind: str  # one of RULE_KINDS
    value: str  # subscription id, object id, deployment name or tag name; "" for owner
    team: str  # "" for a tag rule that takes the team from the tag's value
    account: str = ""  # deployment rules: only on this account
    tag_value: str | None = None


@dataclass(frozen=True)
class ProvisionedSplit:
    deployment: str
    account: str = ""
    split: str = "tokens"  # tokens | even | fixed
    shares: Mapping[str, Decimal] = field(default_factory=dict)  # fixed: percent per team, summing to 100


@dataclass(frozen=True)
class AttributionRules:
    rules: tuple[Rule, ...] = ()
    estimate_by: str = "requests"
    provisioned: tuple[ProvisionedSplit, ...] = ()
    #: Object ids (lower-case) of API Management gateways' managed identities: usage Azure logs under one of
    #: them was made through the gateway, and is re-keyed to APIM subscriptions (see collector/cost/usage.py).
    apim_gateways: frozenset[str] = frozenset()


def match(rules: AttributionRules, deployment: DeploymentInfo, caller_object_id: str,
          apim_subscription_id: str) -> tuple[str, str] | None:
    """(team, method) of the first rule that matches, in the user's order; None: unallocated."""
    for rule in rules.rules:
        if rule.kind == "apim_subscription" and apim_subscription_id and rule.value == apim_subscription_id:
            return rule.team, DIRECT
        if rule.kind == "caller" and caller_object_id and rule.value.lower() == caller_object_id.lower():
            return rule.team, DIRECT
        if (rule.kind == "deployment" and rule.value == deployment.name
                and rule.account in ("", deployment.account.lower())):
            return rule.team, OWNER
        if rule.kind == "tag" and rule.value in deployment.tags:
            value = deployment.tags[rule.value]
            if rule.tag_value is None or rule.tag_value == value:
                return rule.team or value, OWNER
        if rule.kind == "owner" and deployment.owner_team:
            return deployment.owner_team, OWNER
    return None


def _rule(at: Located, raw: Any, loc: tuple[str | int, ...]) -> Rule | None:
    entry = at.mapping(raw, loc, (*RULE_KINDS, "team", "account", "value"))
    kinds = [k for k in RULE_KINDS if k in entry]
    if entry and len(kinds) != 1:
        at.add(loc, f"a rule matches by exactly one of {', '.join(RULE_KINDS)}; found {kinds or 'none'}")
        return None
    if not entry:
        return None
    before, kind = len(at.problems), kinds[0]
    team = entry.get("team")
    if kind == "owner":
        if entry["owner"] is not True or team is not None:
            at.add((*loc, "owner"), "write `owner: true` (the deployment's owner team), with no team")
        value = ""
    else:
        value = at.text(entry[kind], (*loc, kind)) or ""
    if kind == "tag" and team is None:
        team = ""
    elif kind != "owner":
        if "team" not in entry:
            at.add(loc, "'team' is required")
        team = at.text(team, (*loc, "team")) if "team" in entry else None
    if isinstance(team, str) and team in (UNALLOCATED, IDLE):
        at.add((*loc, "team"), f"{team!r} is reserved for figures nobody is charged for")
    if "account" in entry and kind != "deployment":
        at.add((*loc, "account"), "only a deployment rule takes an account")
    if "value" in entry and kind != "tag":
        at.add((*loc, "value"), "only a tag rule takes a value")
    if len(at.problems) > before:
        return None
    tag_value = str(entry["value"]) if entry.get("value") is not None else None
    # Account names compare lower-case, as ARM treats them (Log Analytics upper-cases them).
    return Rule(kind, value, str(team or ""), str(entry.get("account") or "").lower(), tag_value)


def _split(at: Located, raw: Any, loc: tuple[str | int, ...]) -> ProvisionedSplit | None:
    entry = at.mapping(raw, loc, ("deployment", "account", "split", "shares"), ("deployment",))
    if not entry:
        return None
    before = len(at.problems)
    name = at.text(entry.get("deployment"), (*loc, "deployment")) if "deployment" in entry else None
    split = at.choice(entry.get("split", "tokens"), (*loc, "split"), SPLITS)
    shares: dict[str, Decimal] = {}
    raw_shares = entry.get("shares")
    if split == "fixed":
        if not isinstance(raw_shares, dict) or not raw_shares:
            at.add((*loc, "shares"), "a fixed split needs shares: a mapping of team to percent")
        else:
            shares = {str(t): p for t, v in raw_shares.items()
                      if (p := at.decimal(v, (*loc, "shares", str(t)))) is not None}
            if len(shares) == len(raw_shares) and sum(shares.values()) != 100:
                at.add((*loc, "shares"), f"the shares add up to {sum(shares.values())}, not 100")
    elif raw_shares is not None:
        at.add((*loc, "shares"), "only a fixed split takes shares")
    if len(at.problems) > before or name is None or split is None:
        return None
    return ProvisionedSplit(name, str(entry.get("account") or ""), split, shares)


def load_attribution_rules(path: Path) -> AttributionRules:
    """Read and check attribution rules; every problem in the file is reported at once, with its line."""
    data, lines, problems = read_located_yaml(path, "attribution rules")
    at = Located(path, lines, problems)
    top = at.mapping(data, (), ("rules", "estimate_by", "provisioned", "apim_gateways"), ("rules",))
    estimate_by = at.choice(top.get("estimate_by", "requests"), ("estimate_by",), ESTIMATE_BY) or "requests"
    sections: dict[str, list[Any]] = {}
    for key in ("rules", "provisioned"):
        value = top.get(key) or []
        if not isinstance(value, list):
            at.add((key,), "must be a list")
            value = []
        sections[key] = value
    rules = [r for i, raw in enumerate(sections["rules"]) if (r := _rule(at, raw, ("rules", i))) is not None]
    splits = [s for i, raw in enumerate(sections["provisioned"])
              if (s := _split(at, raw, ("provisioned", i))) is not None]
    gateways = _gateways(at, top.get("apim_gateways"))
    at.raise_if_any("attribution rules")
    return AttributionRules(tuple(rules), estimate_by, tuple(splits), gateways)


def _gateways(at: Located, raw: Any) -> frozenset[str]:
    if raw is None:
        return frozenset()
    if not isinstance(raw, list):
        at.add(("apim_gateways",), "must be a list of object ids (the gateways' managed identities)")
        return frozenset()
    found = set()
    for i, value in enumerate(raw):
        text = at.text(value, ("apim_gateways", i))
        if text is not None and not _GUID.fullmatch(text):
            at.add(("apim_gateways", i), f"{text!r} is not an Entra object id (a GUID)",
                   "the object id of the gateway's managed identity, as Azure OpenAI logs it in objectId")
        elif text is not None:
            found.add(text.lower())
    return frozenset(found)


# -- exact apportioning ------------------------------------------------------------------------------------------


def to_micro(amount: Decimal) -> int:
    """USD as whole micro-dollars, rounded half even."""
    return int(amount.quantize(MICRO_USD, rounding=ROUND_HALF_EVEN) / MICRO_USD)


# -- attribution -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostLine:
    """One team's (or unallocated's, or idle's) share of one deployment in one bucket."""

    bucket: datetime
    account: str
    deployment: str
    team: str  # a team, "unallocated" or "idle"
    method: str  # one of METHODS
    requests: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost: Decimal  # USD, a multiple of MICRO_USD
    price_id: str | None
    unpriced: bool  # no price (or no rate) matched: cost 0, flagged, never dropped
    basis: str = ESTIMATE  # BILLED or ESTIMATE


@dataclass(frozen=True)
class DeploymentTotal:
    bucket: datetime
    account: str
    deployment: str
    requests: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost: Decimal
    price_id: str | None
    unpriced: bool


@dataclass(frozen=True)
class Attribution:
    lines: tuple[CostLine, ...]
    totals: tuple[DeploymentTotal, ...]


# A portion of a deployment's usage: requests, uncached prompt, cached prompt, completion.
_Counts = tuple[int, int, int, int]
Key = tuple[datetime, str, str]


def _portions(rules: AttributionRules, dep: DeploymentInfo, usage: Sequence[TokenUsage],
              platform: Sequence[DeploymentTokens], callers: Sequence[CallerRequests]) -> dict[tuple[str, str],
                                                                                              _Counts]:
    found: list[tuple[tuple[str, str], _Counts]] = []
    if usage:
        for row in usage:
            who = match(rules, dep, row.caller_object_id, row.apim_subscription_id) or (UNALLOCATED, UNALLOCATED)
            found.append((who, (row.requests, row.prompt_tokens - row.cached_tokens, row.cached_tokens,
                                row.completion_tokens)))
    elif platform:
        total = (sum(p.requests for p in platform), sum(p.prompt_tokens - p.cached_tokens for p in platform),
                 sum(p.cached_tokens for p in platform), sum(p.completion_tokens for p in platform))
        per_caller: dict[str, int] = defaultdict(int)
        for c in callers:
            per_caller[c.caller_object_id] += c.requests if rules.estimate_by == "requests" else c.request_bytes
        if sum(per_caller.values()) > 0:
            names = sorted(per_caller)
            splits = [largest_remainder(t, [per_caller[n] for n in names]) for t in total]
            for i, name in enumerate(names):
                matched = match(rules, dep, name, "")
                if matched is None:
                    who = (UNALLOCATED, UNALLOCATED)
                else:
                    who = (matched[0], ESTIMATED if matched[1] == DIRECT else matched[1])
                found.append((who, (splits[0][i], splits[1][i], splits[2][i], splits[3][i])))
        else:
            found.append((match(rules, dep, "", "") or (UNALLOCATED, UNALLOCATED), total))
    merged: dict[tuple[str, str], _Counts] = {}
    for who, counts in found:
        old = merged.get(who, (0, 0, 0, 0))
        merged[who] = (old[0] + counts[0], old[1] + counts[1], old[2] + counts[2], old[3] + counts[3])
    return merged


def _ptu_weights(rules: AttributionRules, dep: DeploymentInfo, portions: dict[tuple[str, str], _Counts]
                 ) -> dict[tuple[str, str], Decimal]:
    split = next((s for s in rules.provisioned
                  if s.deployment == dep.name and s.account.lower() in ("", dep.account.lower())),
                 ProvisionedSplit(dep.name))
    if split.split == "fixed":
        weights = {(team, OWNER): share for team, share in split.shares.items()}
        return {who: weights.get(who, Decimal(0)) for who in portions} | weights
    if split.split == "even":
        return {who: Decimal(1) for who in portions}
    return {who: Decimal(c[1] + c[2] + c[3]) for who, c in portions.items()}


def _lines_for(key: Key, dep: DeploymentInfo, price: PriceRow | None, rules: AttributionRules,
               portions: dict[tuple[str, str], _Counts], hours: Sequence[ProvisionedHour]
               ) -> tuple[list[CostLine], DeploymentTotal]:
    bucket, account, name = key
    price_id = price.id if price is not None else None
    unpriced = price is None or price.unpriced
    totals = tuple(sum(c[i] for c in portions.values()) for i in range(4))
    if price is not None and price.provisioned:
        minutes = sum(h.minutes for h in hours)
        total_micro = to_micro(cost_of_ptus(price, dep.capacity, minutes)) if hours else 0
        used = [h.utilisation for h in hours if h.utilisation is not None]
        if used:
            used_share = min(max(sum(used, Decimal(0)) / len(used), Decimal(0)), Decimal(1))
        else:
            used_share = Decimal(1) if any(totals) else Decimal(0)  # unknown utilisation: no idle unless unused
        weights = _ptu_weights(rules, dep, portions)
        if not any(weights.values()):
            used_share = Decimal(0)  # nobody to charge: all of it is idle
        used_micro, idle_micro = largest_remainder(total_micro, [used_share, 1 - used_share])
        whos = list(weights)
        costs = dict(zip(whos, largest_remainder(used_micro, [weights[w] for w in whos]), strict=True))
        if idle_micro or (not portions and hours):
            costs[(IDLE, IDLE)] = idle_micro
        for who in costs:
            portions.setdefault(who, (0, 0, 0, 0))
    else:
        whos = list(portions)
        exact = [cost_of_tokens(price, c[1] + c[2], c[2], c[3]) for c in portions.values()]
        total_micro = to_micro(sum(exact, Decimal(0)))
        costs = dict(zip(whos, largest_remainder(total_micro, exact), strict=True))
    lines = [CostLine(bucket, account, name, team, method, c[0], c[1] + c[2], c[2], c[3],
                      Decimal(costs.get((team, method), 0)) * MICRO_USD, price_id, unpriced)
             for (team, method), c in sorted(portions.items())]
    total = DeploymentTotal(bucket, account, name, totals[0], totals[1] + totals[2], totals[2], totals[3],
                            Decimal(total_micro) * MICRO_USD, price_id, unpriced)
    return lines, total


def _group(rows: Iterable[Any]) -> dict[Key, list[Any]]:
    grouped: dict[Key, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[(row.bucket, row.account, row.deployment)].append(row)
    return grouped


def attribute(book: PriceBook, rules: AttributionRules, deployments: Sequence[DeploymentInfo],
              usage: Iterable[TokenUsage] = (), platform_tokens: Iterable[DeploymentTokens] = (),
              caller_requests: Iterable[CallerRequests] = (), provisioned_hours: Iterable[ProvisionedHour] = (),
              ) -> Attribution:
    """Price and attribute usage per (bucket, account, deployment). Prices are chosen at each bucket's start, so
    a corrected price book re-prices history. Caller-level usage wins over platform totals for the same bucket;
    platform totals are split by `caller_requests` (estimated) when there is no caller-level usage."""
    inventory = {(d.account, d.name): d for d in deployments}
    by_usage, by_platform = _group(usage), _group(platform_tokens)
    by_callers, by_hours = _group(caller_requests), _group(provisioned_hours)
    lines: list[CostLine] = []
    totals: list[DeploymentTotal] = []
    for key in sorted(set(by_usage) | set(by_platform) | set(by_hours)):
        bucket, account, name = key
        dep = inventory.get((account, name), DeploymentInfo(account, name, "", None, ""))
        price = price_for(book, dep.model, dep.version, dep.deployment_type, dep.region, bucket,
                          account=account, deployment=name)
        portions = _portions(rules, dep, by_usage.get(key, []), by_platform.get(key, []), by_callers.get(key, []))
        found, total = _lines_for(key, dep, price, rules, portions, by_hours.get(key, []))
        lines.extend(found)
        totals.append(total)
    return Attribution(tuple(lines), tuple(totals))
