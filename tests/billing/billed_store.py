"""A store of demo telemetry, collected and priced, with an imported Cost Management export made independently from
the raw logs and the price book, in which four discrepancies are planted (the reconciliation's and the Cost page's
tests share it).

The bill is built from the workspace's raw records (tokens per day, account and deployment, parsed here from the
JSON Azure logs) and the deployments' capacity, never from the collector's rollups or cost table.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from collector.billing.folders import FolderSource
from collector.billing.meters import parse_meter
from collector.collection.run import Timing, backfill
from collector.cost.attribution import DeploymentInfo, load_attribution_rules
from collector.cost.bill_import import import_bill
from collector.cost.model import CostModel
from collector.cost.pricing import MILLION, load_price_book, price_for
from collector.cost.table import apply_bill, refresh_costs
from collector.rollups.specs import ROLLUPS
from collector.store.database import Store
from collector.workspace.demo import DEMO_ORG
from collector.workspace.engine import Workspace
from collector.workspace.generate import generate
from collector.workspace.source import WorkspaceSource
from tests.billing.export_files import Meter, Usage, focus_rows, write_run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
START = datetime(2026, 3, 2, tzinfo=UTC)
DAYS = [(START + timedelta(days=i)).date() for i in range(5)]
END = START + timedelta(days=len(DAYS))
MARCH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
NOW = datetime(2026, 3, 9, 12, tzinfo=UTC)
REGION = {a.name: a.region for a in DEMO_ORG.accounts}
DEPLOYMENTS = tuple(DeploymentInfo(d.account, d.name, d.model, d.model_version, d.deployment_type, REGION[d.account],
                                   d.capacity, d.owner_team) for d in DEMO_ORG.deployments)
ACCOUNT_IDS = {a.name: a.resource_id for a in DEMO_ORG.accounts}

# The planted discrepancies.
DISCOUNTED = ("contoso-aoai-eus", "gpt-4o-mini", "output")  # billed 10% under the book
MISSING_DAY = DAYS[2]  # the export has no line at all that day, though its period covers it
UNLOGGED = "contoso-aoai-wus"  # billed, but sends no diagnostic logs
UNBILLED = ("contoso-aoai-swc", DAYS[4])  # telemetry that day, no bill line for that account

_TYPE_WORDS = {"GlobalStandard": "glbl", "DataZoneStandard": "Data Zone", "Standard": "regnl"}
_KIND_WORDS = {"input": "Inp", "cached_input": "cached Inp", "output": "Outp"}
_PTU = {"ProvisionedManaged": "Provisioned Managed Regional Unit",
        "GlobalProvisioned": "Provisioned Managed Global Unit"}


def meter_name(d: DeploymentInfo, kind: str) -> str:
    """The meter a deployment's tokens are billed on, spelled as Azure spells them (skuName + " Tokens")."""
    if d.deployment_type in _PTU:
        return _PTU[d.deployment_type]
    if d.model.startswith("text-embedding"):
        return f"{d.model}-regional Tokens"
    version = d.version[5:7] + d.version[8:10] if d.version and len(d.version) == 10 else ""
    words = [d.model.replace("-", " "), version, _KIND_WORDS[kind], _TYPE_WORDS[d.deployment_type], "Tokens"]
    return " ".join(w for w in words if w)


def _meter(d: DeploymentInfo, kind: str, unit_price: Decimal, block: int) -> Meter:
    name = meter_name(d, kind)
    key = parse_meter(name)
    assert key is not None and (key.model, key.deployment_type, key.kind) == (
        "*" if d.deployment_type in _PTU else d.model, d.deployment_type, "ptu_hour" if d.deployment_type in _PTU
        else kind), name
    return Meter(name, f"{abs(hash(name)) % 10**8:08d}-0000-4000-8000-000000000000", d.model, "1 Hour" if block == 1
                 else "1K", unit_price * block, block)


def _raw_tokens(workspace: Path) -> dict[tuple[date, str, str], list[int]]:
    """Prompt, cached and completion tokens per day, account and deployment, from the raw JSON records."""
    ws = Workspace(workspace)
    rows = ws.query('AzureDiagnostics | where Category in ("AzureOpenAIRequestUsage", "RequestResponse") '
                    "| project TimeGenerated, Category, Resource, CorrelationId, properties_s").rows
    deployment_of: dict[str, str] = {}
    usage = []
    for at, category, resource, correlation, properties in rows:
        p = json.loads(properties)
        if category == "RequestResponse":
            if p.get("modelDeploymentName"):
                deployment_of[correlation] = p["modelDeploymentName"]
        else:
            usage.append((at, resource, correlation, p))
    sums: dict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])

    def number(value: object) -> int:
        return int(value[0] if isinstance(value, list) else value)  # type: ignore[arg-type,index]

    for at, resource, correlation, p in usage:
        total = sums[(at.date(), resource.lower(), deployment_of[correlation])]
        total[0] += number(p["promptTokens"])
        total[1] += number(p.get("cachedTokens", 0))
        total[2] += number(p.get("generatedTokens", p.get("completionTokens", 0)))
    return sums


def _bill(workspace: Path, model: CostModel) -> list[Usage]:
    tokens = _raw_tokens(workspace)
    lines: dict[tuple[date, str, str], tuple[Meter, Decimal]] = {}

    def add(day: date, account: str, meter: Meter, quantity: Decimal) -> None:
        key = (day, account, meter.name)
        lines[key] = (meter, lines[key][1] + quantity if key in lines else quantity)

    for d in DEPLOYMENTS:
        for day in DAYS:
            at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
            price = price_for(model.book, d.model, d.version, d.deployment_type, d.region, at, account=d.account,
                              deployment=d.name)
            assert price is not None, d
            if price.provisioned:
                assert price.ptu_hour is not None
                add(day, d.account, _meter(d, "ptu_hour", price.ptu_hour, 1), Decimal(d.capacity * 24))
                continue
            prompt, cached, completion = tokens.get((day, d.account, d.name), [0, 0, 0])
            rates = {"input": price.input, "cached_input": price.cached_input or price.input, "output": price.output}
            for kind, count in (("input", prompt - cached), ("cached_input", cached), ("output", completion)):
                if count:
                    rate = rates[kind]
                    assert rate is not None
                    unit = rate / MILLION * (Decimal("0.9") if (d.account, d.model, kind) == DISCOUNTED else 1)
                    add(day, d.account, _meter(d, kind, unit, 1000), Decimal(count))
    bill = [Usage(day, ACCOUNT_IDS.get(account, ACCOUNT_IDS["contoso-aoai-eus"].replace(
        "contoso-aoai-eus", account)), meter, int(quantity)) for (day, account, _), (meter, quantity) in lines.items()]
    gpt4o = next(d for d in DEPLOYMENTS if d.name == "gpt-4o")
    for day in DAYS:  # an account with no diagnostic setting: billed, never seen in the logs
        bill.append(Usage(day, ACCOUNT_IDS["contoso-aoai-eus"].replace("contoso-aoai-eus", UNLOGGED),
                          _meter(gpt4o, "input", Decimal("0.0000025"), 1000), 3_000_000))
    return [u for u in bill if u.day != MISSING_DAY
            and not (u.account_id.endswith(UNBILLED[0]) and u.day == UNBILLED[1])]


@dataclass(frozen=True)
class BilledDemo:
    """What `build_billed_demo` left under its folder: the store with the bill, the same store before the import
    (the same telemetry, no bill), the workspace, and the cost model that priced both."""

    store: Path
    unbilled: Path
    workspace: Path
    model: CostModel

    @property
    def url(self) -> str:
        return f"sqlite:///{self.store}"


def demo_model(rules: Path = EXAMPLES / "demo-teams.yaml") -> CostModel:
    return CostModel(load_price_book(EXAMPLES / "demo-prices.yaml"), load_attribution_rules(rules), DEPLOYMENTS)


def build_billed_demo(root: Path, rules: Path = EXAMPLES / "demo-teams.yaml") -> BilledDemo:
    """Five days of demo traffic (DAYS) collected into `root`/store.sqlite and priced (with the demo's book and
    `rules`), then the export with the planted discrepancies imported and allocated to teams; `root`/unbilled.sqlite
    is the store before the import."""
    workspace = root / "ws.duckdb"
    ws = Workspace(workspace)
    ws.create()
    generate(ws, start=START, end=END, seed=11)
    store = Store.open(f"sqlite:///{root / 'store.sqlite'}")
    try:
        timing = Timing(grain=timedelta(minutes=5), lag=timedelta(0), lookback=timedelta(0),
                        max_window=timedelta(days=1))
        assert backfill(store, [WorkspaceSource("demo", workspace)], ROLLUPS, timing, START, END, END).ok
        model = demo_model(rules)
        exports = root / "exports"
        write_run(exports, list(focus_rows(_bill(workspace, model), others=0)), start=DAYS[0], end=DAYS[-1],
                  run_id="run-1", submitted=NOW, fmt="csv.gz")
        refresh_costs(store, model, START, END, NOW)
        store.close()  # every write in the file itself, none left in a write-ahead log, before the copy
        shutil.copy(root / "store.sqlite", root / "unbilled.sqlite")  # the same telemetry, no bill
        store = Store.open(f"sqlite:///{root / 'store.sqlite'}")
        import_bill(store, FolderSource(exports).files(), str(exports), NOW)
        apply_bill(store, model, START, END, NOW)
    finally:
        store.close()
    return BilledDemo(root / "store.sqlite", root / "unbilled.sqlite", workspace, model)


def config_file(root: Path, workspace: Path, store: str) -> Path:
    """Settings naming the workspace, one of the stores under `root` and the demo's price book and rules."""
    config = root / f"aoai-obs-{store}.yaml"
    config.write_text(f"sources:\n  - name: demo\n    kind: workspace\n    path: {workspace}\n"
                      f"store:\n  url: sqlite:///{root / store}\n"
                      f"prices:\n  book: {EXAMPLES / 'demo-prices.yaml'}\n"
                      f"teams:\n  rules: {EXAMPLES / 'demo-teams.yaml'}\n"
                      f"inventory:\n  from_azure: false\n")
    return config
