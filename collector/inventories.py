"""Builds the deployment inventory the settings describe: the demo organisation, Azure, then the user's file."""

from __future__ import annotations

from collections.abc import Callable

from collector.config import MetricsSourceSettings, Settings, WorkspaceSourceSettings
from collector.inventory import Inventory, demo_inventory, load_inventory_file, merge

#: Reads one metrics source's accounts' deployments from Azure (`collector.cognitive.read_deployments`).
AzureReader = Callable[[MetricsSourceSettings], Inventory]


def build_inventory(settings: Settings, read_azure: AzureReader | None = None) -> Inventory:
    """Every source of deployments the settings name, merged so that a later one wins per deployment:

    1. the demo organisation, when a `workspace` source holds generated demo traffic, or has no file yet (the demo
       is about to generate it); a workspace of imported Azure archives does not get the demo's deployments;
    2. Azure, when `inventory.from_azure` is on: the deployments of each `metrics` source's accounts;
    3. `inventory.file`, so that the user's own entries correct or extend the others.

    `read_azure` replaces the Azure call (tests); by default `collector.cognitive.read_deployments` is imported
    only when a metrics source asks for it.
    """
    parts: list[Inventory] = []
    if any(_holds_demo_traffic(s) for s in settings.sources if isinstance(s, WorkspaceSourceSettings)):
        parts.append(demo_inventory())
    metrics = [s for s in settings.sources if isinstance(s, MetricsSourceSettings)]
    if settings.inventory.from_azure and metrics:
        if read_azure is None:
            from collector.cognitive import read_deployments

            read_azure = read_deployments
        parts.extend(read_azure(source) for source in metrics)
    if settings.inventory.file is not None:
        parts.append(load_inventory_file(settings.inventory.file))
    return merge(*parts)


def _holds_demo_traffic(source: WorkspaceSourceSettings) -> bool:
    from collector.workspace.engine import Workspace

    workspace = Workspace(source.path)
    return not workspace.exists() or "generator" in workspace.info()
