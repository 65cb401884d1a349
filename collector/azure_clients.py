"""Azure SDK clients set up in one place: credential, endpoint and token audience, CA bundle, retries, timeouts, and
the mapping of the SDKs' HTTP errors to ours.

Every module that owns an Azure SDK (Log Analytics, the Metrics API, Cognitive Services, storage, Cost Management,
the Retail Prices API, and `alerts`' ARM client) builds its client from a `Connection`, so a sovereign cloud, a
TLS-inspecting proxy or a test emulator is pointed at the same way everywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

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
from azure.identity import DefaultAzureCredential

from collector.errors import TerminalError, TransientError

T = TypeVar("T")


class ManagementClient(Protocol):
    """What an `azure-mgmt-*` client has that the pool needs."""

    def close(self) -> None: ...


C = TypeVar("C", bound=ManagementClient)

#: DefaultAzureCredential takes no `tenant_id`: each credential it chains takes its own tenant keyword.
_TENANT_KEYWORDS = ("workload_identity_tenant_id", "shared_cache_tenant_id", "visual_studio_code_tenant_id",
                    "interactive_browser_tenant_id")


class AzureSettings(Protocol):
    """What a source's settings say about reaching Azure (the settings' `_AzureSourceSettings` has all of it)."""

    @property
    def audience(self) -> str | None: ...
    @property
    def tenant_id(self) -> str | None: ...
    @property
    def client_id(self) -> str | None: ...
    @property
    def ca_bundle(self) -> Path | None: ...
    @property
    def timeout(self) -> timedelta: ...
    @property
    def retries(self) -> int: ...


@dataclass(frozen=True)
class Connection:
    """How one client reaches one Azure service."""

    endpoint: str
    audience: str | None = None  # the token audience; by default the endpoint's own
    ca_bundle: Path | str | None = None
    retries: int = 4
    read_timeout: float = 60.0
    connection_timeout: float = 30.0
    tenant_id: str | None = None
    client_id: str | None = None

    @classmethod
    def of(cls, settings: AzureSettings, endpoint: str) -> Connection:
        timeout = settings.timeout.total_seconds()
        return cls(endpoint, settings.audience, settings.ca_bundle, settings.retries, read_timeout=timeout,
                   connection_timeout=min(timeout, 30.0), tenant_id=settings.tenant_id, client_id=settings.client_id)

    @property
    def scope(self) -> str:
        """The scope a token is asked for."""
        return f"{(self.audience or self.endpoint).rstrip('/')}/.default"

    @property
    def verify(self) -> str | bool:
        """azure-core's `connection_verify`: the CA bundle's path, or True for the system's authorities."""
        return str(self.ca_bundle) if self.ca_bundle is not None else True

    def management_options(self, overrides: Mapping[str, Any] = {}, *,  # read only
                           before_each_attempt: Callable[[], object] | None = None) -> dict[str, Any]:
        """Keyword arguments of an `azure-mgmt-*` client. `before_each_attempt` runs once per request on the wire,
        retries included (a rate limit)."""
        options: dict[str, Any] = {
            "credential_scopes": [self.scope],
            "retry_total": self.retries,
            "connection_timeout": self.connection_timeout,
            "read_timeout": self.read_timeout,
        }
        if before_each_attempt is not None:
            attempt = before_each_attempt
            options["raw_request_hook"] = lambda _request: attempt()
        if self.ca_bundle is not None:
            options["connection_verify"] = str(self.ca_bundle)
        options.update(overrides)
        return options

    def credential(self) -> DefaultAzureCredential:
        """Managed identity in Azure, `az login` on a laptop; the settings may pin a client id and a tenant."""
        return default_credential(self.tenant_id, self.client_id)


class SubscriptionClients(Generic[C]):
    """One management client per subscription, made on first use with one shared credential; closes what it made.

    `make(credential, subscription_id, **options)` is the SDK client's constructor; a credential given by the caller
    stays the caller's to close.
    """

    def __init__(self, connection: Connection, make: Callable[..., C], credential: TokenCredential | None = None, *,
                 overrides: Mapping[str, Any] = {},  # read only
                 before_each_attempt: Callable[[], object] | None = None) -> None:
        self.connection = connection
        self._make = make
        self._credential = credential
        self._owns_credential = credential is None
        self._options = connection.management_options(overrides, before_each_attempt=before_each_attempt)
        self._clients: dict[str, C] = {}
        self._lock = threading.Lock()

    def get(self, subscription_id: str) -> C:
        with self._lock:
            client = self._clients.get(subscription_id)
            if client is None:
                if self._credential is None:
                    self._credential = self.connection.credential()
                client = self._clients[subscription_id] = self._make(
                    self._credential, subscription_id, base_url=self.connection.endpoint, **self._options)
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
            if self._owns_credential:
                close_credential(self._credential)
                self._credential = None


def default_credential(tenant_id: str | None = None, client_id: str | None = None) -> DefaultAzureCredential:
    """DefaultAzureCredential, with a user-assigned identity's client id and a tenant when given."""
    options: dict[str, Any] = {}
    if client_id:
        options["managed_identity_client_id"] = client_id
    if tenant_id:
        for keyword in _TENANT_KEYWORDS:
            options[keyword] = tenant_id
        options["additionally_allowed_tenants"] = [tenant_id]
    return DefaultAzureCredential(**options)


def close_credential(credential: TokenCredential | None) -> None:
    """Close a credential this package created (a caller's own credential is the caller's to close)."""
    close = getattr(credential, "close", None)
    if callable(close):
        close()


def error_message(e: HttpResponseError) -> str:
    """The service's own message of an SDK error (its `error.message`), else the SDK's."""
    error = getattr(e, "error", None)
    message = getattr(error, "message", None) if error is not None else None
    return str(message or e.message or e)


@dataclass(frozen=True)
class Service:
    """How an ARM-based service is named in our messages, and what to tell the user."""

    name: str  # "the Metrics API", "Azure Resource Manager"
    answer: str  # what a valid body is: "a metrics response"
    role: str  # the role the identity needs, as a hint for a 403
    again: str = "the next run tries again"


def call_arm(where: str, service: Service, connection: Connection, call: Callable[[], T], *, missing: str,
             timeout: timedelta | None = None) -> T:
    """Run one SDK call, mapping its failures to our transient and terminal errors; `missing` names what a 404
    means (an account's id)."""
    try:
        return call()
    except (DecodeError, DeserializationError) as e:
        raise TransientError(f"{where}: {service.name} answered a body that is not {service.answer} ({e}); "
                             f"{service.again}") from e
    except ClientAuthenticationError as e:
        raise TerminalError(f"{where}: authentication failed ({error_message(e)}); check the identity (managed "
                            "identity, `az login`, tenant_id/client_id in the settings)") from e
    except ResourceNotFoundError as e:
        raise TerminalError(f"{where}: ARM has no {missing} ({error_message(e)}); fix `accounts:` in the "
                            "settings") from e
    except HttpResponseError as e:
        raise http_error(where, e, service, connection.retries) from e
    except ServiceRequestError as e:
        raise TransientError(f"{where}: could not reach {service.name} at {connection.endpoint} ({e}); "
                             f"{service.again}") from e
    except ServiceResponseError as e:
        within = f" within the timeout ({timeout})" if timeout is not None else ""
        raise TransientError(f"{where}: no complete answer from {service.name}{within} after {connection.retries} "
                             f"retries ({e}); {service.again}") from e


def http_error(where: str, e: HttpResponseError, service: Service, retries: int) -> TransientError | TerminalError:
    """Our error for an HTTP failure the SDK raised after its own retries."""
    status = e.status_code
    code = getattr(getattr(e, "error", None), "code", None) or ""
    detail = f"HTTP {status}{' ' + code if code else ''}: {error_message(e)}"
    if status is not None and (status in (408, 429) or status >= 500):
        return TransientError(f"{where}: {detail} (still failing after {retries} retries); {service.again}")
    if status == 403:
        return TerminalError(f"{where}: {detail}; grant the collector's identity {service.role}")
    if status == 400:
        return TerminalError(f"{where}: {service.name} refused the request: {detail}")
    return TerminalError(f"{where}: {detail}")


@dataclass(frozen=True)
class AccountId:
    """An Azure OpenAI account's ARM id and the parts the collector needs from it."""

    resource_id: str
    subscription_id: str
    resource_group: str
    name: str

    @classmethod
    def parse(cls, resource_id: str) -> AccountId:
        parts = resource_id.strip("/").split("/")
        if len(parts) < 8 or parts[0].lower() != "subscriptions" or parts[-2].lower() != "accounts":
            raise TerminalError(
                f"{resource_id!r} is not an account's ARM id; expected /subscriptions/<sub>/resourceGroups/<rg>/"
                "providers/Microsoft.CognitiveServices/accounts/<name>")
        return cls("/" + "/".join(parts), parts[1], parts[3], parts[-1])

    @property
    def account(self) -> str:
        """The account as rollups name it: upper-cased, as Azure's logs give `Resource`."""
        return self.name.upper()
