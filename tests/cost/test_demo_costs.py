"""End to end: a day of demo traffic, collected into the store, priced and attributed, equals the ground truth
computed from the raw logs (per team, to the token), and the cost adds up to the deployments' totals (to the cent).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from collector.collection.run import Timing, backfill
from collector.cost.attribution import IDLE, DeploymentInfo, load_attribution_rules
from collector.cost.model import CostModel, attribute_range
from collector.cost.pricing import load_price_book
from collector.rollups.specs import ROLLUPS
from collector.store.database import Store
from collector.workspace.demo import DEMO_ORG
from collector.workspace.engine import Workspace
from collector.workspace.generate import generate
from collector.workspace.source import WorkspaceSource

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
START = datetime(2026, 3, 3, tzinfo=UTC)  # a Tuesday: the 429 storm's day
END = START + timedelta(days=1)
REGION = {a.name: a.region for a in DEMO_ORG.accounts}
DEPLOYMENTS = tuple(
    DeploymentInfo(d.account, d.name, d.model, d.model_version, d.deployment_type, REGION[d.account], d.capacity,
                   d.owner_team)
    for d in DEMO_ORG.deployments
)

# Tokens per caller identity and per APIM subscription, straight from the raw logs (not from the rollups). The demo
# writes usage records in both shapes: arrays with generatedTokens, plain numbers with completionTokens.
ENTRA_TRUTH = """
AzureDiagnostics
| where Category == "AzureOpenAIRequestUsage"
| extend u = parse_json(properties_s)
| project CorrelationId, Tokens = coalesce(tolong(u.promptTokens[0]), tolong(u.promptTokens))
    + coalesce(tolong(u.generatedTokens[0]), tolong(u.completionTokens))
| join kind=inner (
    AzureDiagnostics | where Category == "RequestResponse"
    | extend p = parse_json(properties_s)
    | where isnotempty(tostring(p.modelDeploymentName))
    | summarize arg_max(TimeGenerated, properties_s) by CorrelationId
    | extend p = parse_json(properties_s)
    | project CorrelationId, Caller = tostring(p.objectId), Deployment = tostring(p.modelDeploymentName)
  ) on CorrelationId
| summarize Tokens = sum(Tokens) by Caller, Deployment
"""
APIM_TRUTH = """
ApiManagementGatewayLlmLog
| join kind=inner (ApiManagementGatewayLogs | project CorrelationId, ApimSubscriptionId) on CorrelationId
| summarize Tokens = sum(tolong(PromptTokens) + tolong(CompletionTokens)) by ApimSubscriptionId
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "ws.duckdb"
    ws = Workspace(path)
    ws.create()
    generate(ws, start=START, end=END, seed=5)
    return path


def _truth(path: Path) -> dict[str, int]:
    ws = Workspace(path)
    callers = {c.object_id: c.team for c in DEMO_ORG.callers if c.object_id}
    subs = {c.apim_subscription_id: c.team for c in DEMO_ORG.callers if c.apim_subscription_id}
    owners = {d.name: d.owner_team for d in DEMO_ORG.deployments}
    truth: dict[str, int] = defaultdict(int)
    for caller, deployment, tokens in ws.query(ENTRA_TRUTH).rows:
        if caller == DEMO_ORG.apim.managed_identity_object_id:
            continue  # counted per subscription below
        truth[callers[caller] if caller else owners[deployment]] += tokens  # "": an API key, the owner's
    for sub, tokens in ws.query(APIM_TRUTH).rows:
        truth[subs[sub]] += tokens
    return dict(truth)


def test_demo_day_attributed_per_team_equals_the_raw_logs(workspace: Path, store: Store) -> None:
    timing = Timing(grain=timedelta(minutes=5), lag=timedelta(0), lookback=timedelta(0), max_window=timedelta(days=1))
    assert backfill(store, [WorkspaceSource("demo", workspace)], ROLLUPS, timing, START, END, END).ok
    book, rules = load_price_book(EXAMPLES / "demo-prices.yaml"), load_attribution_rules(EXAMPLES / "demo-teams.yaml")
    model = CostModel(book, rules, DEPLOYMENTS)

    result = attribute_range(store, model, START, END)

    tokens: dict[str, int] = defaultdict(int)
    for line in result.lines:
        tokens[line.team] += line.prompt_tokens + line.completion_tokens
    idle = tokens.pop(IDLE, 0)
    assert idle == 0  # idle capacity is cost, never tokens
    assert tokens == _truth(workspace)
    # Every figure adds up to its deployment hour, to the micro-dollar; nothing is unpriced with the demo book.
    per_key: dict[tuple[datetime, str, str], Decimal] = defaultdict(Decimal)
    for line in result.lines:
        per_key[(line.bucket, line.account, line.deployment)] += line.cost
    assert per_key == {(t.bucket, t.account, t.deployment): t.cost for t in result.totals}
    assert not [t for t in result.totals if t.unpriced]
    # The PTU deployment is charged 50 PTU x $1.00 for each of the day's 24 hours, used share plus idle.
    ptu = sum((t.cost for t in result.totals if t.deployment == "gpt-4o-ptu"), Decimal(0))
    assert ptu == Decimal("1200.00")
    assert any(line.team == IDLE and line.cost > 0 for line in result.lines)
