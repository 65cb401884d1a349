"""A provisioned deployment that nothing charges, in a range with usage, is named (its utilisation was not
collected, so its hours cost nothing), and only then."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from collector.cost.attribution import Attribution, CostLine, DeploymentInfo
from collector.cost.model import uncharged_provisioned

HOUR = datetime(2026, 5, 1, 10, tzinfo=UTC)
DEPLOYMENTS = (
    DeploymentInfo("Acct-A", "chat", "gpt-4o", "2024-11-20", "GlobalStandard"),
    DeploymentInfo("Acct-A", "ptu", "gpt-4o", "2024-08-06", "ProvisionedManaged", capacity=50),
    DeploymentInfo("acct-b", "ptu", "gpt-4o", "2024-08-06", "GlobalProvisioned", capacity=15),
)


def _line(account: str, deployment: str, team: str, cost: str) -> CostLine:
    return CostLine(HOUR, account, deployment, team, "direct", 1, 10, 0, 5, Decimal(cost), "p", False)


def test_a_provisioned_deployment_nothing_charges_is_named() -> None:
    attribution = Attribution((_line("acct-a", "chat", "search", "0.10"), _line("acct-a", "ptu", "idle", "50")), ())
    assert uncharged_provisioned(DEPLOYMENTS, attribution) == ["acct-b/ptu"]


def test_charged_ones_and_empty_ranges_say_nothing() -> None:
    charged = Attribution((_line("acct-a", "ptu", "search", "12.5"), _line("acct-b", "ptu", "idle", "15")), ())
    assert uncharged_provisioned(DEPLOYMENTS, charged) == []
    assert uncharged_provisioned(DEPLOYMENTS, Attribution((), ())) == []
