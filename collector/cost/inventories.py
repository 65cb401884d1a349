"""Builds the deployment inventory the settings describe: the demo organisation, Azure, then the user's file."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from collector.config import MetricsSourceSettings, Settings, WorkspaceSourceSettings
from collector.cost.attribution import DeploymentInfo
from collector.cost.cognitive import read_deployments
from collector.cost.inventory import Inventory, demo_inventory, load_inventory_file, merge
from collector.workspace.demo import DEMO_ORG
from collector.workspace.engine import Workspace

#: Reads one metrics source's accounts' deployments from Azure (`collector.cost.cognitive.read_deployments`).
AzureReader = Callable[[MetricsSourceSettings], Inventory]


def build_inventory(settings: Settings, read_azure: AzureReader | None = None) -> Inventory:
    """Every source of deployments the settings name, merged so that a later one wins per deployment:

    1. the demo organisation, when a `workspace` source holds generated demo traffic, or has no file yet (the demo
       is about to generate it); a workspace of imported Azure archives does not get the demo's deployments;
    2. Azure, when `inventory.from_azure` is on: the deployments of each `metrics` source's accounts;
    3. `inventory.file`, so that the user's own entries correct or extend the others.

    `read_azure` replaces the Azure call (tests); by default `collector.cost.cognitive.read_deployments` is imported
    only when a metrics source asks for it.
    """
    parts: list[Inventory] = []
    if any(_holds_demo_traffic(s) for s in settings.sources if isinstance(s, WorkspaceSourceSettings)):
        parts.append(demo_inventory())
    metrics = [s for s in settings.sources if isinstance(s, MetricsSourceSettings)]
    if settings.inventory.from_azure and metrics:
        if read_azure is None:
            read_azure = read_deployments
        parts.extend(read_azure(source) for source in metrics)
    if settings.inventory.file is not None:
        parts.append(load_inventory_file(settings.inventory.file))
    return merge(*parts)


def _holds_demo_traffic(source: WorkspaceSourceSettings) -> bool:
    workspace = Workspace(source.path)
    return not workspace.exists() or "generator" in workspace.info()


def resource_ids(settings: Settings, deployments: Iterable[DeploymentInfo]) -> dict[tuple[str, str], str]:
    """(account, deployment) -> the deployment's ARM id, for FOCUS ResourceId, where the settings know the
    account's id: the metrics sources' accounts and, for the embedded workspace, the demo organisation's."""
    accounts: dict[str, str] = {}
    for source in settings.sources:
        if source.kind == "metrics":
            accounts.update({rid.rstrip("/").rsplit("/", 1)[-1].lower(): rid.rstrip("/") for rid in source.accounts})
        elif source.kind == "workspace":
            accounts.update({a.name.lower(): a.resource_id for a in DEMO_ORG.accounts})
    return {(d.account, d.name): f"{accounts[d.account]}/deployments/{d.name}"
            for d in deployments if d.account in accounts}
