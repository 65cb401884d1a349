"""Deployments from Azure: the real azure-mgmt-cognitiveservices client against the HTTPS ARM emulator."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from collector.config import MetricsSourceSettings, load_settings
from collector.cost.attribution import DeploymentInfo
from collector.cost.cognitive import DeploymentReader, read_deployments
from collector.cost.inventories import build_inventory
from collector.cost.inventory import Inventory, demo_inventory
from collector.errors import TerminalError, TransientError
from collector.workspace.demo import DEMO_ORG
from tests.emulators.cognitive_api import (
    API_VERSION,
    CognitiveEmulator,
    EmulatedAccount,
    EmulatedDeployment,
    Fault,
    demo_accounts,
)

AUDIENCE = "https://management.azure.com"
SUB = "00000000-0000-0000-0000-0000000000aa"


class FakeCredential:
    """A TokenCredential of our own: a fixed token, and the scopes asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("test-token", int(time.time()) + 3600)


def _get(inventory: Inventory, account: str, name: str) -> DeploymentInfo:
    found = inventory.get(account, name)
    assert found is not None, (account, name)
    return found


def _accounts() -> list[EmulatedAccount]:
    """The demo's two accounts, tagged, plus a third with every provisioned SKU and SKUs we cannot price."""
    accounts = demo_accounts()
    accounts[0].tags = {"cost-center": "CC-0900", "env": "prod"}
    accounts[0].deployments[0] = EmulatedDeployment("gpt-4o", "gpt-4o", "2024-11-20", "GlobalStandard", 450,
                                                    tags={"env": "shared", "team": "platform"})
    extra = EmulatedAccount(SUB, "rg-ai", "Contoso-AOAI-Extra", "westeurope", tags={"team": "data-science"},
                            kind="AIServices", deployments=[
        EmulatedDeployment("gpt-4o-gptu", "gpt-4o", "2024-11-20", "GlobalProvisionedManaged", 15),
        EmulatedDeployment("gpt-4.1-dzptu", "gpt-4.1", "2025-04-14", "DataZoneProvisionedManaged", 30,
                           tags={"team": "search"}),
        EmulatedDeployment("gpt-4o-batch", "gpt-4o", "2024-11-20", "GlobalBatch", 50),
        EmulatedDeployment("gpt-4.1-dzbatch", "gpt-4.1", "2025-04-14", "DataZoneBatch", 50),
        EmulatedDeployment("ft-dev", "gpt-4.1-mini.ft-abc", None, "DeveloperTier", 50),
        EmulatedDeployment("future", "gpt-9", "2027-01-01", "QuantumStandard", 1),
        EmulatedDeployment("bare", "gpt-4o", "2024-11-20", None, None),
    ])
    return [*accounts, extra]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[CognitiveEmulator]:
    with CognitiveEmulator(tmp_path, _accounts(), page_size=2) as running:
        yield running


def _settings(emulator: CognitiveEmulator, retries: int = 3, accounts: list[str] | None = None
              ) -> MetricsSourceSettings:
    return MetricsSourceSettings(
        name="prod", kind="metrics", accounts=accounts or [a.resource_id for a in emulator.accounts],
        endpoint=emulator.endpoint, audience=AUDIENCE, ca_bundle=emulator.ca_bundle, retries=retries)


def _read(emulator: CognitiveEmulator, credential: FakeCredential | None = None, **kwargs: Any) -> Any:
    settings = _settings(emulator, **kwargs)
    return read_deployments(settings, credential or FakeCredential(), retry_backoff_factor=0.01)


def test_every_deployment_of_every_account_through_the_pages(emulator: CognitiveEmulator) -> None:
    credential = FakeCredential()
    inventory = _read(emulator, credential)

    assert len(inventory) == len(DEMO_ORG.deployments) + 7
    demo = demo_inventory()
    for d in DEMO_ORG.deployments:  # what Azure says of the demo's deployments is what the demo organisation says
        expected = demo.get(d.account, d.name)
        assert expected is not None
        found = inventory.get(d.account.upper(), d.name)
        assert found is not None and found.owner_team == ""
        assert (found.model, found.version, found.deployment_type, found.region, found.capacity) == (
            expected.model, expected.version, expected.deployment_type, expected.region, expected.capacity)
    # A deployment's tags are laid over its account's.
    assert _get(inventory, "contoso-aoai-eus", "gpt-4o").tags == {
        "cost-center": "CC-0900", "env": "shared", "team": "platform"}
    assert _get(inventory, "contoso-aoai-eus", "o4-mini").tags == {
        "cost-center": "CC-0900", "env": "prod"}
    assert inventory.get("contoso-aoai-extra", "gpt-4o-gptu") == DeploymentInfo(
        "contoso-aoai-extra", "gpt-4o-gptu", "gpt-4o", "2024-11-20", "GlobalProvisioned", "westeurope", 15, "",
        {"team": "data-science"})
    assert inventory.get("Contoso-AOAI-Extra", "gpt-4.1-dzptu") == DeploymentInfo(
        "contoso-aoai-extra", "gpt-4.1-dzptu", "gpt-4.1", "2025-04-14", "DataZoneProvisioned", "westeurope", 30, "",
        {"team": "search"})
    assert _get(inventory, "contoso-aoai-extra", "gpt-4o-batch").deployment_type == "GlobalBatch"

    # Two requests per account and one per further page (2 deployments a page); api-version and token as Azure's.
    pages = [-(-len(a.deployments) // 2) for a in emulator.accounts]
    assert len(emulator.requests) == sum(1 + p for p in pages)
    assert {r.status for r in emulator.requests} == {200}
    assert {r.query["api-version"] for r in emulator.requests} == {API_VERSION}
    assert sum("$skiptoken" in r.query for r in emulator.requests) == sum(p - 1 for p in pages)
    assert {r.authorization for r in emulator.requests} == {"Bearer test-token"}
    assert set(credential.scopes) == {(f"{AUDIENCE}/.default",)}


def test_a_sku_without_a_price_book_type_is_kept_and_reported(emulator: CognitiveEmulator) -> None:
    inventory = _read(emulator)
    problems = {p.deployment: p.message for p in inventory.problems}
    assert set(problems) == {"ft-dev", "future", "bare"}
    dz_batch = inventory.get("contoso-aoai-extra", "gpt-4.1-dzbatch")
    assert dz_batch is not None and dz_batch.deployment_type == "DataZoneBatch"  # the price book has the type
    assert "'DeveloperTier' has no deployment type in the price book" in problems["ft-dev"]
    assert problems["future"].startswith("unknown Azure SKU 'QuantumStandard' (known: GlobalStandard, ")
    assert problems["bare"] == "ARM gave no SKU; its usage is flagged unpriced"
    assert {p.account for p in inventory.problems} == {"contoso-aoai-extra"}
    future = inventory.get("contoso-aoai-extra", "future")
    assert future is not None and (future.deployment_type, future.capacity, future.model) == ("", 1, "gpt-9")
    assert _get(inventory, "contoso-aoai-extra", "ft-dev").version is None


def test_a_throttled_request_is_retried_after_retry_after(emulator: CognitiveEmulator) -> None:
    emulator.inject(Fault(status=429, retry_after="0.3", match="/deployments"))
    started = time.monotonic()
    inventory = _read(emulator)
    assert time.monotonic() - started >= 0.3
    assert len(inventory) == len(DEMO_ORG.deployments) + 7
    assert [r.status for r in emulator.requests][:3] == [200, 429, 200]


def test_a_throttled_later_page_is_retried_too(emulator: CognitiveEmulator) -> None:
    emulator.inject(Fault(status=503, retry_after="0", match="$skiptoken=2"))
    assert len(_read(emulator)) == len(DEMO_ORG.deployments) + 7
    assert 503 in [r.status for r in emulator.requests]


def test_forbidden_names_the_role_that_reads_deployments(emulator: CognitiveEmulator) -> None:
    emulator.inject(Fault(status=403, match="/deployments"))
    with pytest.raises(TerminalError) as caught:
        _read(emulator)
    message = str(caught.value)
    assert "deployments of metrics source prod: account contoso-aoai-eus: HTTP 403 AuthorizationFailed" in message
    assert "'Microsoft.CognitiveServices/accounts/deployments/read'" in message  # ARM's own words
    assert "grant the collector's identity Reader (or Monitoring Reader) on the account" in message
    assert "Cognitive Services Usages Reader does not" in message
    assert [r.status for r in emulator.requests] == [200, 403]  # not retried


@pytest.mark.parametrize(("fault", "error", "message"), [
    (Fault(status=500), TransientError, "HTTP 500 InternalServerError: injected 500 (still failing after 1 retries)"),
    (Fault(status=429), TransientError, "HTTP 429 TooManyRequests"),
    (Fault(status=401), TerminalError, "authentication failed (injected 401); check the identity"),
    (Fault(status=400), TerminalError, "Azure Resource Manager refused the request: HTTP 400 BadRequest"),
    (Fault(body=b"<html>gateway</html>"), TransientError, "not a Cognitive Services response"),
])
def test_faults(emulator: CognitiveEmulator, fault: Fault, error: type[Exception], message: str) -> None:
    emulator.inject(fault, times=2)
    with pytest.raises(error, match=re.escape(message)):
        _read(emulator, retries=1)


def test_an_unknown_account_and_an_unreachable_endpoint(emulator: CognitiveEmulator) -> None:
    missing = f"/subscriptions/{SUB}/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/gone"
    with pytest.raises(TerminalError, match=re.escape(f"ARM has no account {missing} (The Resource 'Microsoft."
                                                      "CognitiveServices/accounts/gone' under resource group 'rg-ai' "
                                                      "was not found")):
        _read(emulator, accounts=[missing])
    settings = _settings(emulator, retries=0).model_copy(update={"endpoint": "https://127.0.0.1:9"})
    with pytest.raises(TransientError, match=re.escape("could not reach Azure Resource Manager at https://127.0.0.1:9")):
        read_deployments(settings, FakeCredential())


def test_a_bad_account_id_is_refused_before_any_call(emulator: CognitiveEmulator) -> None:
    with pytest.raises(TerminalError, match="is not an account's ARM id"):
        DeploymentReader(_settings(emulator, accounts=["contoso-aoai-eus"]), FakeCredential())
    assert emulator.requests == []


def test_the_settings_inventory_with_azure_and_a_file(emulator: CognitiveEmulator, tmp_path: Path) -> None:
    (tmp_path / "deployments.yaml").write_text(
        "deployments:\n  - {account: contoso-aoai-extra, name: gpt-4.1-dzbatch, model: gpt-4.1, type: GlobalBatch,"
        " owner_team: search}\n", encoding="utf-8")
    (tmp_path / "aoai-obs.yaml").write_text(
        f"sources:\n  - name: prod\n    kind: metrics\n    endpoint: {emulator.endpoint}\n    audience: {AUDIENCE}\n"
        f"    ca_bundle: {emulator.ca_bundle}\n    accounts:\n"
        + "".join(f"      - {a.resource_id}\n" for a in emulator.accounts)
        + "inventory:\n  file: deployments.yaml\n", encoding="utf-8")
    settings = load_settings(tmp_path / "aoai-obs.yaml", {})
    inventory = build_inventory(settings, lambda s: read_deployments(s, FakeCredential(),
                                                                     retry_backoff_factor=0.01))
    assert len(inventory) == len(DEMO_ORG.deployments) + 7  # no workspace source: no demo organisation
    assert inventory.get("CONTOSO-AOAI-EXTRA", "gpt-4.1-dzbatch") == DeploymentInfo(
        "contoso-aoai-extra", "gpt-4.1-dzbatch", "gpt-4.1", None, "GlobalBatch", None, 0, "search", {})
    assert {p.deployment for p in inventory.problems} == {"ft-dev", "future", "bare"}  # the file fixed one
