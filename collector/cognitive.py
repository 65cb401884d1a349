"""The Cognitive Services management API: the only importer of azure.mgmt.cognitiveservices; accounts' deployments.

For each account a metrics source names (`accounts:`, ARM ids; no other setting), it reads the account (`GET
.../Microsoft.CognitiveServices/accounts/{name}`: its location and tags) and lists its deployments (`GET
.../accounts/{name}/deployments`, paged by `nextLink`), with the api-version azure-mgmt-cognitiveservices 14.x sends
(2025-09-01). A deployment gives `properties.model.name`/`version`, `sku.name` (mapped to our deployment types by
`collector.inventory.AZURE_SKUS`), `sku.capacity` (K TPM, or PTUs for provisioned SKUs) and its own `tags`, which
are laid over the account's tags (a deployment's tag wins over the account's of the same name).

Reading deployments takes `Microsoft.CognitiveServices/accounts/deployments/read` on the account. Reader and Monitoring
Reader (what the metrics source already needs) grant it through `*/read`; Cognitive Services Usages Reader does not
(it holds only `Microsoft.CognitiveServices/locations/usages/read`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    DecodeError,
    DeserializationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from azure.mgmt.cognitiveservices.models import Deployment

from collector.attribution import DeploymentInfo
from collector.config import MetricsSourceSettings
from collector.errors import TerminalError, TransientError
from collector.inventory import Inventory, InventoryProblem, deployment_type_of_sku, unknown_sku_message
from collector.metrics import AccountId, _client_options, _default_credential, _message
from collector.ratelimit import RateLimiter

log = logging.getLogger(__name__)
T = TypeVar("T")

ROLE = ("Reader (or Monitoring Reader) on the account: either grants Microsoft.CognitiveServices/accounts/"
        "deployments/read; Cognitive Services Usages Reader does not")


@dataclass(frozen=True)
class AccountRef:
    """An account's ARM id with the parts ARM's account and deployment paths take."""

    resource_id: str
    subscription_id: str
    resource_group: str
    name: str

    @classmethod
    def parse(cls, resource_id: str) -> AccountRef:
        parsed = AccountId.parse(resource_id)  # the metrics source's check, and its message
        return cls(parsed.resource_id, parsed.subscription_id, parsed.resource_id.strip("/").split("/")[3],
                   parsed.name)


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
        self.accounts = [AccountRef.parse(a) for a in settings.accounts]
        self.limiter = limiter or RateLimiter(settings.requests_per_30s)
        self._credential = credential
        self._owns_credential = credential is None
        self._client_kwargs = client_kwargs
        self._clients: dict[str, CognitiveServicesManagementClient] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> DeploymentReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
            if self._owns_credential and self._credential is not None:
                close = getattr(self._credential, "close", None)
                if close is not None:
                    close()
                self._credential = None

    def read(self) -> Inventory:
        """Every deployment of every account; a SKU we cannot type is kept (type "") and reported in `problems`."""
        found: list[DeploymentInfo] = []
        problems: list[InventoryProblem] = []
        for account in self.accounts:
            client = self._client(account.subscription_id)
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

    def _call(self, where: str, account: AccountRef, call: Callable[[], T]) -> T:
        try:
            return call()
        except (DecodeError, DeserializationError) as e:
            raise TransientError(f"{where}: ARM answered a body that is not a Cognitive Services response ({e}); "
                                 "try again later") from e
        except ClientAuthenticationError as e:
            raise TerminalError(f"{where}: authentication failed ({_message(e)}); check the identity (managed "
                                "identity, `az login`, tenant_id/client_id in the settings)") from e
        except ResourceNotFoundError as e:
            raise TerminalError(f"{where}: ARM has no account {account.resource_id} ({_message(e)}); fix "
                                "`accounts:` in the settings") from e
        except HttpResponseError as e:
            raise _http_error(where, e, self.settings.retries) from e
        except ServiceRequestError as e:
            raise TransientError(f"{where}: could not reach Azure Resource Manager at {self.settings.endpoint} "
                                 f"({e}); try again later") from e
        except ServiceResponseError as e:
            raise TransientError(f"{where}: no complete answer from Azure Resource Manager within the timeout "
                                 f"({self.settings.timeout}) after {self.settings.retries} retries ({e}); try again "
                                 "later") from e

    def _client(self, subscription_id: str) -> CognitiveServicesManagementClient:
        with self._lock:
            client = self._clients.get(subscription_id)
            if client is None:
                if self._credential is None:
                    self._credential = _default_credential(self.settings)
                client = self._clients[subscription_id] = CognitiveServicesManagementClient(
                    self._credential, subscription_id, base_url=self.settings.endpoint,
                    **_client_options(self.settings, self.limiter, self._client_kwargs))
            return client


def _list_deployments(client: CognitiveServicesManagementClient, account: AccountRef) -> list[Deployment]:
    # Pages are fetched while iterating, so an error on a later page surfaces here, inside the caller's mapping.
    return list(client.deployments.list(account.resource_group, account.name))


def read_deployments(settings: MetricsSourceSettings, credential: TokenCredential | None = None,
                     **client_kwargs: Any) -> Inventory:
    """The deployments of a metrics source's accounts, as an inventory."""
    with DeploymentReader(settings, credential, **client_kwargs) as reader:
        return reader.read()


def _http_error(where: str, e: HttpResponseError, retries: int) -> TransientError | TerminalError:
    status = e.status_code
    code = getattr(getattr(e, "error", None), "code", None) or ""
    detail = f"HTTP {status}{' ' + code if code else ''}: {_message(e)}"
    if status is not None and (status in (408, 429) or status >= 500):
        return TransientError(f"{where}: {detail} (still failing after {retries} retries); try again later")
    if status == 403:
        return TerminalError(f"{where}: {detail}; grant the collector's identity {ROLE}")
    if status == 400:
        return TerminalError(f"{where}: Azure Resource Manager refused the request: {detail}")
    return TerminalError(f"{where}: {detail}")
