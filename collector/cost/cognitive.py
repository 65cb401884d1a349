"""The Cognitive Services management API: the only importer of azure.mgmt.cognitiveservices; accounts' deployments.

For each account a metrics source names (`accounts:`, ARM ids; no other setting), it reads the account (`GET
.../Microsoft.CognitiveServices/accounts/{name}`: its location and tags) and lists its deployments (`GET
.../accounts/{name}/deployments`, paged by `nextLink`), with the api-version azure-mgmt-cognitiveservices 14.x sends
(2025-09-01). A deployment gives `properties.model.name`/`version`, `sku.name` (mapped to our deployment types by
`collector.cost.inventory.AZURE_SKUS`), `sku.capacity` (K TPM, or PTUs for provisioned SKUs) and its own `tags`, which
are laid over the account's tags (a deployment's tag wins over the account's of the same name).

Reading deployments takes `Microsoft.CognitiveServices/accounts/deployments/read` on the account. Reader and Monitoring
Reader (what the metrics source already needs) grant it through `*/read`; Cognitive Services Usages Reader does not
(it holds only `Microsoft.CognitiveServices/locations/usages/read`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from azure.mgmt.cognitiveservices.models import Deployment

from collector.azure_clients import AccountId, Connection, Service, SubscriptionClients, call_arm
from collector.config import MetricsSourceSettings
from collector.cost.attribution import DeploymentInfo
from collector.cost.inventory import Inventory, InventoryProblem, deployment_type_of_sku, unknown_sku_message
from collector.ratelimit import RateLimiter

log = logging.getLogger(__name__)
T = TypeVar("T")

ROLE = ("Reader (or Monitoring Reader) on the account: either grants Microsoft.CognitiveServices/accounts/"
        "deployments/read; Cognitive Services Usages Reader does not")
SERVICE = Service("Azure Resource Manager", "a Cognitive Services response", ROLE, again="try again later")


def deployment_info(account: str, region: str | None, account_tags: Mapping[str, str] | None,
                    deployment: Deployment) -> tuple[DeploymentInfo, InventoryProblem | None]:
    """One ARM deployment (the SDK's `Deployment`) as the inventory keeps it, and the problem with it, if any."""
    name = str(deployment.name)
    properties = deployment.properties
    model = properties.model if properties is not None else None
    sku = deployment.sku
    problem: InventoryProblem | None = None
    if sku is None or not sku.name:
        dtype, capacity = "", 0
        problem = InventoryProblem(account.lower(), name, "ARM gave no SKU; its usage is flagged unpriced")
    else:
        dtype = deployment_type_of_sku(sku.name) or ""
        capacity = int(sku.capacity or 0)
        if not dtype:
            problem = InventoryProblem(account.lower(), name, unknown_sku_message(sku.name))
    tags = {**(account_tags or {}), **(deployment.tags or {})}
    info = DeploymentInfo(account.lower(), name, (model.name if model else None) or "",
                          (model.version if model else None) or None, dtype, region.lower() if region else None,
                          capacity, "", tags)
    return info, problem


class DeploymentReader:
    """Reads the deployments of a metrics source's accounts from Azure Resource Manager."""

    def __init__(self, settings: MetricsSourceSettings, credential: TokenCredential | None = None, *,
                 limiter: RateLimiter | None = None, **client_kwargs: Any) -> None:
        self.settings = settings
        self.accounts = [AccountId.parse(a) for a in settings.accounts]
        self.limiter = limiter or RateLimiter(settings.requests_per_30s)
        self.connection = Connection.of(settings, settings.endpoint)
        self._clients = SubscriptionClients(self.connection, CognitiveServicesManagementClient, credential,
                                            overrides=client_kwargs, before_each_attempt=self.limiter.acquire)

    def __enter__(self) -> DeploymentReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._clients.close()

    def read(self) -> Inventory:
        """Every deployment of every account; a SKU we cannot type is kept (type "") and reported in `problems`."""
        found: list[DeploymentInfo] = []
        problems: list[InventoryProblem] = []
        for account in self.accounts:
            client = self._clients.get(account.subscription_id)
            where = f"deployments of metrics source {self.settings.name}: account {account.name}"
            arm_account = self._call(where, account, partial(client.accounts.get, account.resource_group,
                                                             account.name))
            deployments = self._call(where, account, partial(_list_deployments, client, account))
            for deployment in deployments:
                info, problem = deployment_info(account.name, arm_account.location, arm_account.tags, deployment)
                found.append(info)
                if problem is not None:
                    log.warning("%s", problem)
                    problems.append(problem)
        log.info("read %d deployment(s) of %d account(s) from Azure", len(found), len(self.accounts))
        return Inventory.of(found, problems)

    def _call(self, where: str, account: AccountId, call: Callable[[], T]) -> T:
        return call_arm(where, SERVICE, self.connection, call, missing=f"account {account.resource_id}",
                        timeout=self.settings.timeout)


def _list_deployments(client: CognitiveServicesManagementClient, account: AccountId) -> list[Deployment]:
    # Pages are fetched while iterating, so an error on a later page surfaces here, inside the caller's mapping.
    return list(client.deployments.list(account.resource_group, account.name))


def read_deployments(settings: MetricsSourceSettings, credential: TokenCredential | None = None,
                     **client_kwargs: Any) -> Inventory:
    """The deployments of a metrics source's accounts, as an inventory."""
    with DeploymentReader(settings, credential, **client_kwargs) as reader:
        return reader.read()
