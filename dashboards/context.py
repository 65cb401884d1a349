"""What every page reads from: the store, the settings, the deployment inventory and the clock, built once by
`create_app` and passed to each page (nothing is read at import time)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from collector.config import Settings
from collector.cost.attribution import DeploymentInfo
from collector.store.database import Store


class DeploymentLookup(Protocol):
    """The deployment inventory as pages need it (`collector.cost.inventory.Inventory` is one)."""

    def get(self, account: str, deployment: str) -> DeploymentInfo | None: ...

    def deployments(self) -> tuple[DeploymentInfo, ...]: ...


class NoInventory:
    """No inventory: capacities and owners are unknown, and the pages say so."""

    def get(self, account: str, deployment: str) -> DeploymentInfo | None:
        return None

    def deployments(self) -> tuple[DeploymentInfo, ...]:
        return ()


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Context:
    store: Store
    settings: Settings
    inventory: DeploymentLookup
    now: Callable[[], datetime] = utcnow

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.dashboards.timezone)

    @property
    def fine_since(self) -> datetime:
        """The oldest time the fine tier still holds, by its retention."""
        return self.now() - timedelta(days=self.settings.store.retention.five_minute_days)

    @property
    def stale_after(self) -> timedelta:
        """How old the newest data of a job may be before the freshness banner warns: the collector's lag, three
        collection intervals, and one grain (a window closes only at a grain boundary)."""
        c = self.settings.collector
        return c.lag + 3 * c.interval + c.grain
