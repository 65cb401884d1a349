"""Attribution: named methods, estimated and PTU splits with idle, unallocated, re-pricing, and exact totals."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.apportion import largest_remainder
from collector.cost.attribution import (
    AttributionRules,
    CallerRequests,
    DeploymentInfo,
    DeploymentTokens,
    ProvisionedHour,
    ProvisionedSplit,
    Rule,
    TokenUsage,
    attribute,
    load_attribution_rules,
)
from collector.cost.pricing import PriceBook, PriceRow
from collector.errors import InputError

H = datetime(2025, 3, 4, 10, tzinfo=UTC)
D = Decimal


def _row(model: str, dtype: str, input_: str | None = None, output: str | None = None, cached: str | None = None,
         ptu: str | None = None, effective: datetime = datetime(2024, 1, 1, tzinfo=UTC)) -> PriceRow:
    return PriceRow(f"{model}/{dtype}", model, None, dtype, None, effective, D(input_) if input_ else None,
                    D(cached) if cached else None, D(output) if output else None, D(ptu) if ptu else None, "test",
                    effective.date())


BOOK = PriceBook((_row("gpt-4o", "GlobalStandard", "2.50", "10.00", "1.25"),
                  _row("*", "ProvisionedManaged", ptu="1.00")))
SHARED = DeploymentInfo("acct", "shared", "gpt-4o", None, "GlobalStandard", owner_team="platform")
PTU = DeploymentInfo("acct", "ptu", "gpt-4o", None, "ProvisionedManaged", capacity=10)
RULES = AttributionRules((Rule("apim_subscription", "sub-a", "team-a"), Rule("caller", "oid-a", "team-a"),
                          Rule("caller", "oid-b", "team-b"), Rule("caller", "oid-c", "team-c")))


def _by_team(result: object) -> dict[tuple[str, str], tuple[int, int, int, Decimal]]:
    lines = result.lines  # type: ignore[attr-defined]
    return {(x.team, x.method): (x.prompt_tokens, x.cached_tokens, x.completion_tokens, x.cost) for x in lines}


def test_direct_and_unallocated_usage() -> None:
    usage = [TokenUsage(H, "acct", "shared", "oid-a", "", 3, 10_000, 4_000, 1_000),
             TokenUsage(H, "acct", "shared", "gw-identity", "sub-a", 1, 1_000_000, 0, 0),
             TokenUsage(H, "acct", "shared", "", "", 1, 0, 0, 100_000)]  # an API key: nobody to charge
    result = attribute(BOOK, RULES, [SHARED], usage)
    # team-a: 6,000 x 2.50 + 4,000 x 1.25 + 1,000 x 10 = 0.030, plus 1,000,000 x 2.50 / 1e6 = 2.50 -> 2.530
    # unallocated: 100,000 x 10.00 / 1e6 = 1.00
    assert _by_team(result) == {("team-a", "direct"): (1_010_000, 4_000, 1_000, D("2.530000")),
                                ("unallocated", "unallocated"): (0, 0, 100_000, D("1.000000"))}
    assert result.totals[0].cost == D("3.530000") and result.totals[0].price_id == "gpt-4o/GlobalStandard"


def test_owner_rule_takes_what_no_identity_claims() -> None:
    rules = AttributionRules((*RULES.rules, Rule("owner", "", "")))
    usage = [TokenUsage(H, "acct", "shared", "", "", 1, 0, 0, 100_000)]
    assert _by_team(attribute(BOOK, rules, [SHARED], usage)) == {("platform", "owner"): (0, 0, 100_000, D("1"))}


def test_estimated_split_of_a_shared_deployment_by_requests() -> None:
    platform = [DeploymentTokens(H, "acct", "shared", 100, 10_000, 0, 2_000)]
    callers = [CallerRequests(H, "acct", "shared", "oid-a", 60, 6), CallerRequests(H, "acct", "shared", "oid-b", 30),
               CallerRequests(H, "acct", "shared", "", 10)]
    result = attribute(BOOK, RULES, [SHARED], platform_tokens=platform, caller_requests=callers)
    # shares 60 / 30 / 10 %: prompt 6,000 / 3,000 / 1,000, completion 1,200 / 600 / 200
    # cost 2.50 x prompt / 1e6 + 10 x completion / 1e6: 0.015 + 0.012 = 0.027; 0.0075 + 0.006 = 0.0135; 0.0045
    assert _by_team(result) == {("team-a", "estimated"): (6_000, 0, 1_200, D("0.027000")),
                                ("team-b", "estimated"): (3_000, 0, 600, D("0.013500")),
                                ("unallocated", "unallocated"): (1_000, 0, 200, D("0.004500"))}
    assert result.totals[0].cost == D("0.045000")


def test_estimated_split_by_request_bytes_uses_largest_remainders() -> None:
    platform = [DeploymentTokens(H, "acct", "shared", 3, 10_000, 0, 0)]
    callers = [CallerRequests(H, "acct", "shared", "oid-a", 1, 1), CallerRequests(H, "acct", "shared", "oid-b", 1, 1),
               CallerRequests(H, "acct", "shared", "oid-c", 1, 1)]
    result = attribute(BOOK, AttributionRules(RULES.rules, "request_bytes"), [SHARED], platform_tokens=platform,
                       caller_requests=callers)
    # 10,000 / 3 = 3,333.33: floors 3,333 each, the one left over to the first caller (ties go first)
    # cost follows the tokens: 3,334 x 2.50 = 8,335 micro-USD; 3,333 x 2.50 = 8,332.5 twice; total 25,000.
    # floors 8,335 + 8,332 + 8,332 = 24,999: the one micro-dollar left goes to the first tied remainder (team-b)
    assert _by_team(result) == {("team-a", "estimated"): (3_334, 0, 0, D("0.008335")),
                                ("team-b", "estimated"): (3_333, 0, 0, D("0.008333")),
                                ("team-c", "estimated"): (3_333, 0, 0, D("0.008332"))}


def test_ptu_deployment_split_across_three_teams_with_idle_capacity() -> None:
    usage = [TokenUsage(H, "acct", "ptu", "oid-a", "", 5, 400, 0, 100), TokenUsage(H, "acct", "ptu", "oid-b", "", 3,
                                                                                 200, 0, 100),
             TokenUsage(H, "acct", "ptu", "oid-c", "", 2, 150, 0, 50)]
    hours = [ProvisionedHour(H, "acct", "ptu", 60, D("0.6"))]
    result = attribute(BOOK, RULES, [PTU], usage, provisioned_hours=hours)
    # 10 PTU x 1.00 USD x 1 h = 10.00; utilisation 60 %: idle 4.00, used 6.00 split by tokens 500 / 300 / 200
    assert _by_team(result) == {("team-a", "direct"): (400, 0, 100, D("3.000000")),
                                ("team-b", "direct"): (200, 0, 100, D("1.800000")),
                                ("team-c", "direct"): (150, 0, 50, D("1.200000")),
                                ("idle", "idle"): (0, 0, 0, D("4.000000"))}
    assert result.totals[0].cost == D("10.000000")


@pytest.mark.parametrize(
    ("split", "expected"),
    [
        # 10 PTU x 1.00 x 45/60 h = 7.50; utilisation 0.5: idle 3.75, used 3.75 / 3 = 1.25 each
        (ProvisionedSplit("ptu", split="even"), {"team-a": D("1.25"), "team-b": D("1.25"), "team-c": D("1.25")}),
        # fixed 50 / 30 / 20 % of 3.75: 1.875 / 1.125 / 0.75; team-d has no tokens but its agreed share
        (ProvisionedSplit("ptu", split="fixed", shares={"team-a": D(50), "team-b": D(30), "team-d": D(20)}),
         {"team-a": D("1.875"), "team-b": D("1.125"), "team-c": D(0), "team-d": D("0.75")}),
    ],
)
def test_ptu_even_and_fixed_splits(split: ProvisionedSplit, expected: dict[str, Decimal]) -> None:
    usage = [TokenUsage(H, "acct", "ptu", oid, "", 1, 100, 0, 0) for oid in ("oid-a", "oid-b", "oid-c")]
    hours = [ProvisionedHour(H, "acct", "ptu", 45, D("0.5"))]
    rules = AttributionRules(RULES.rules, provisioned=(split,))
    costs = {x.team: x.cost for x in attribute(BOOK, rules, [PTU], usage, provisioned_hours=hours).lines}
    assert costs == {**expected, "idle": D("3.75")}


def test_an_unused_ptu_hour_is_all_idle_and_an_unpriced_ptu_is_flagged() -> None:
    hours = [ProvisionedHour(H, "acct", "ptu")]
    (line,) = attribute(BOOK, RULES, [PTU], provisioned_hours=hours).lines
    assert (line.team, line.cost, line.unpriced) == ("idle", D("10.000000"), False)
    unpriced = PriceBook((_row("*", "ProvisionedManaged"),))
    usage = [TokenUsage(H, "acct", "ptu", "oid-a", "", 1, 100, 0, 0)]
    lines = attribute(unpriced, RULES, [PTU], usage, provisioned_hours=hours).lines
    assert [(x.team, x.cost, x.unpriced, x.prompt_tokens) for x in lines] == [("team-a", 0, True, 100)]


def test_usage_with_no_price_is_kept_at_zero_and_flagged() -> None:
    other = DeploymentInfo("acct", "nano", "gpt-9-nano", None, "GlobalStandard")
    usage = [TokenUsage(H, "acct", "nano", "oid-a", "", 2, 500, 0, 50)]
    (line,) = attribute(BOOK, RULES, [other], usage).lines
    assert (line.team, line.prompt_tokens, line.completion_tokens, line.cost, line.price_id, line.unpriced) == \
        ("team-a", 500, 50, 0, None, True)


def test_a_corrected_price_reprices_history_without_recollecting() -> None:
    usage = [TokenUsage(H, "acct", "shared", "oid-a", "", 1, 1_000_000, 0, 0)]
    before = attribute(BOOK, RULES, [SHARED], usage)
    corrected = PriceBook((_row("gpt-4o", "GlobalStandard", "2.00", "8.00"),
                           _row("gpt-4o", "GlobalStandard", "9.99", "9.99", effective=datetime(2026, 1, 1,
                                                                                              tzinfo=UTC))))
    after = attribute(corrected, RULES, [SHARED], usage)  # the same stored usage rows, the corrected book
    assert before.lines[0].cost == D("2.500000")  # 1,000,000 x 2.50 / 1e6
    assert after.lines[0].cost == D("2.000000")  # 1,000,000 x 2.00 / 1e6; the 2026 row is not yet effective


RULES_YAML = """\
rules:
  - apim_subscription: team-support
    team: support-bot
  - caller: 3b8f6a1e-5c2d-4e7f-9a0b-1c2d3e4f5a61
    team: search
  - deployment: gpt-4o
    account: contoso-aoai-eus
    team: platform
  - tag: cost-center
    value: CC-1040
    team: search
  - tag: team
  - owner: true
estimate_by: request_bytes
provisioned:
  - deployment: gpt-4o-ptu
    split: fixed
    shares: {support-bot: 60, search: 40}
"""


def test_rules_load_in_order(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_YAML, encoding="utf-8")
    rules = load_attribution_rules(path)
    assert [r.kind for r in rules.rules] == ["apim_subscription", "caller", "deployment", "tag", "tag", "owner"]
    assert rules.estimate_by == "request_bytes" and rules.provisioned[0].shares == {"support-bot": 60, "search": 40}
    tagged = DeploymentInfo("a", "d", "m", None, "Standard", tags={"team": "data-science"})
    from collector.cost.attribution import match
    assert match(rules, tagged, "", "") == ("data-science", "owner")


BAD_RULES = """\
rules:
  - caler: 3b8f6a1e
    team: search
  - apim_subscription: team-support
  - owner: true
    team: platform
  - deployment: gpt-4o
    team: unallocated
estimate_by: bytes
provisioned:
  - deployment: gpt-4o-ptu
    split: fixed
    shares: {support-bot: 60, search: 30}
"""


def test_bad_rules_report_every_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(BAD_RULES, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_attribution_rules(path)
    found = [(p.line, p.message, p.hint) for p in caught.value.problems]
    assert (2, "rules[0].caler: unknown key", "did you mean 'caller'?") in found
    assert any(line == 4 and "'team' is required" in msg for line, msg, _ in found)
    assert any(line == 5 and "owner: true" in hint + msg for line, msg, hint in found)
    assert any(line == 8 and "reserved" in msg for line, msg, _ in found)
    assert (9, "estimate_by: 'bytes' is not allowed", "expected one of: requests, request_bytes") in found
    assert any(line == 13 and "not 100" in msg for line, msg, _ in found)


def test_largest_remainder_is_exact() -> None:
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert largest_remainder(7, [0, 0]) == [4, 3]  # no weights: evenly
    assert largest_remainder(100, [D("0.1"), D("0.2"), D("0.7")]) == [10, 20, 70]


# -- property: per-team figures add up exactly to the deployment totals ------------------------------------------

_OIDS = ["oid-a", "oid-b", "oid-c", "", "stranger"]
_DEPS = [SHARED, PTU, DeploymentInfo("acct", "unpriced", "gpt-x", None, "Standard", owner_team="platform"),
         DeploymentInfo("acct", "odd", "gpt-4o", None, "GlobalStandard")]
_ODD_BOOK = PriceBook((*BOOK.rows, _row("gpt-4o", "GlobalStandard", "0.333333", "1.777777", "0.0123",
                                        effective=datetime(2025, 1, 1, tzinfo=UTC))))


@st.composite
def _usage(draw: st.DrawFn) -> TokenUsage:
    prompt = draw(st.integers(0, 10**9))
    return TokenUsage(draw(st.sampled_from([H, datetime(2024, 6, 1, tzinfo=UTC)])), "acct",
                      draw(st.sampled_from([d.name for d in _DEPS])), draw(st.sampled_from(_OIDS)), "",
                      draw(st.integers(0, 10**6)), prompt, draw(st.integers(0, prompt)), draw(st.integers(0, 10**9)))


@st.composite
def _rules(draw: st.DrawFn) -> AttributionRules:
    pool = [Rule("caller", oid, f"team-{oid[-1]}") for oid in _OIDS[:3]] + [Rule("owner", "", ""),
                                                                            Rule("deployment", "odd", "team-odd")]
    chosen = draw(st.lists(st.sampled_from(pool), max_size=5))
    split = draw(st.sampled_from([ProvisionedSplit("ptu", split="tokens"), ProvisionedSplit("ptu", split="even"),
                                  ProvisionedSplit("ptu", split="fixed", shares={"team-a": D("33.3"),
                                                                                  "team-z": D("66.7")})]))
    return AttributionRules(tuple(chosen), draw(st.sampled_from(["requests", "request_bytes"])), (split,))


@settings(max_examples=300, deadline=None)
@given(usage=st.lists(_usage(), max_size=12), rules=_rules(),
       platform=st.lists(st.tuples(st.sampled_from([d.name for d in _DEPS]), st.integers(0, 10**8),
                                   st.integers(0, 10**8), st.integers(0, 1000)), max_size=3),
       callers=st.lists(st.tuples(st.sampled_from(_OIDS), st.integers(0, 10**4), st.integers(0, 10**7)),
                        max_size=5),
       utilisation=st.one_of(st.none(), st.decimals(0, 1, places=4)), minutes=st.integers(0, 60))
def test_per_team_tokens_and_cost_add_up_exactly(
    usage: list[TokenUsage], rules: AttributionRules, platform: list[tuple[str, int, int, int]],
    callers: list[tuple[str, int, int]], utilisation: Decimal | None, minutes: int
) -> None:
    tokens = [DeploymentTokens(H, "acct", name, r, p + c, c, o) for name, p, c, o in
              [(n, p, p // 3, o) for n, p, _, o in platform] for r in [7]]
    requests = [CallerRequests(H, "acct", name, oid, n, b) for name in ("shared", "odd") for oid, n, b in callers]
    hours = [ProvisionedHour(H, "acct", "ptu", minutes, utilisation)]
    result = attribute(_ODD_BOOK, rules, _DEPS, usage, tokens, requests, hours)
    sums: dict[tuple[datetime, str, str], list[object]] = defaultdict(lambda: [0, 0, 0, 0, Decimal(0)])
    for line in result.lines:
        s = sums[(line.bucket, line.account, line.deployment)]
        for i, v in enumerate((line.requests, line.prompt_tokens, line.cached_tokens, line.completion_tokens,
                               line.cost)):
            s[i] += v  # type: ignore[operator]
        assert line.cost >= 0 and line.cost == line.cost.quantize(D("0.000001"))
        assert 0 <= line.cached_tokens <= line.prompt_tokens
    for total in result.totals:
        assert sums[(total.bucket, total.account, total.deployment)] == [
            total.requests, total.prompt_tokens, total.cached_tokens, total.completion_tokens, total.cost]
    # every usage row is accounted for, priced or not (platform totals only count where no caller usage exists)
    assert sum(t.prompt_tokens for t in result.totals) >= sum(u.prompt_tokens for u in usage)
