"""The one module of `alerts` that talks to Azure: metric alert rules through azure-mgmt-monitor's `metric_alerts`.

`MetricAlertsClient` lists the rules of a scope in one call (api-version 2018-03-01 has no paging) and returns each
as the ARM JSON dict `model.essence_from_arm` reads (the SDK model serialised back to the wire shape, read-only
fields kept); it PUTs a rule from `model.to_arm_body` (turned into the SDK's `MetricAlertResource`, which the SDK
serialises back to that same body) and deletes rules. SDK errors become this package's `ArmError`s (`from e`):
429/5xx/network after the client's retries -> `ArmTransientError`; 400 -> `ArmRejectedError` with ARM's message and
the rule; 401/403 -> `ArmPermissionError` naming the role (Monitoring Contributor on the scope).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from azure.core import exceptions as sdk
from azure.core.credentials import TokenCredential
from azure.mgmt.monitor import MonitorManagementClient
from azure.mgmt.monitor.models import MetricAlertResource

from alerts.errors import ArmError, ArmPermissionError, ArmRejectedError, ArmTransientError
from collector.azure_clients import Connection, SubscriptionClients, error_message

ENDPOINT = "https://management.azure.com"
ROLE = "Monitoring Contributor"
RETRIES = 3
_SDK_ERRORS = (sdk.AzureError, sdk.DeserializationError)


class MetricAlertsClient:
    """Metric alert rules of one or more subscriptions, through the real SDK; one SDK client per subscription."""

    def __init__(self, credential: TokenCredential | None = None, *, endpoint: str = ENDPOINT,
                 audience: str | None = None, ca_bundle: Path | str | None = None, retries: int = RETRIES,
                 **client_kwargs: Any) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.retries = retries
        self._clients = SubscriptionClients(Connection(self.endpoint, audience, ca_bundle, retries),
                                            MonitorManagementClient, credential, overrides=client_kwargs)

    def __enter__(self) -> MetricAlertsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._clients.close()

    def list_rules(self, subscription_id: str, resource_group: str | None = None) -> list[dict[str, Any]]:
        """Every metric alert rule of a subscription (or one of its resource groups), one list call, as ARM JSON."""
        client = self._clients.get(subscription_id)
        scope = _scope(subscription_id, resource_group)
        try:
            if resource_group is None:
                items = list(client.metric_alerts.list_by_subscription())
            else:
                items = list(client.metric_alerts.list_by_resource_group(resource_group))
            return [dict(item.serialize(keep_readonly=True)) for item in items]
        except _SDK_ERRORS as e:
            raise _mapped(e, f"listing the metric alert rules of {scope}", scope, self) from e

    def put_rule(self, subscription_id: str, resource_group: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create or overwrite one rule with `body` (a `model.to_arm_body`); returns what ARM answered, as ARM JSON."""
        client = self._clients.get(subscription_id)
        resource = MetricAlertResource.deserialize(body)
        try:
            answer = client.metric_alerts.create_or_update(resource_group, name, resource)
            return dict(answer.serialize(keep_readonly=True))
        except _SDK_ERRORS as e:
            raise _mapped(e, f"writing rule {name!r} in {_scope(subscription_id, resource_group)}",
                          _scope(subscription_id, resource_group), self) from e

    def delete_rule(self, subscription_id: str, resource_group: str, name: str) -> None:
        """Delete one rule; a rule already gone is not an error (a re-run after an interrupted apply)."""
        client = self._clients.get(subscription_id)
        try:
            client.metric_alerts.delete(resource_group, name)
        except sdk.ResourceNotFoundError:
            return
        except _SDK_ERRORS as e:
            raise _mapped(e, f"deleting rule {name!r} in {_scope(subscription_id, resource_group)}",
                          _scope(subscription_id, resource_group), self) from e


def _scope(subscription_id: str, resource_group: str | None) -> str:
    return (f"/subscriptions/{subscription_id}" if resource_group is None
            else f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}")


def _mapped(e: Exception, where: str, scope: str, client: MetricAlertsClient) -> ArmError:
    """The ArmError for an exception of the SDK."""
    if isinstance(e, (sdk.DecodeError, sdk.DeserializationError)):
        return ArmTransientError(f"{where}: ARM answered a body that is not a metric alert ({e}); try again")
    if isinstance(e, sdk.ClientAuthenticationError) and e.status_code is None:
        return ArmPermissionError(f"{where}: could not get a token ({e}); check the identity (`az login`, "
                                  "managed identity)")
    if isinstance(e, sdk.HttpResponseError):
        status = e.status_code
        code = getattr(getattr(e, "error", None), "code", None) or ""
        detail = f"HTTP {status}{' ' + code if code else ''}: {error_message(e)}"
        if status is not None and (status in (408, 429) or status >= 500):
            return ArmTransientError(f"{where}: {detail} (still failing after {client.retries} retries); "
                                     "run again later: apply converges from wherever it stopped")
        if status in (401, 403):
            return ArmPermissionError(f"{where}: {detail}; grant the identity the {ROLE} role on {scope}")
        if status == 400:
            return ArmRejectedError(f"{where}: ARM refused it: {detail}")
        return ArmError(f"{where}: {detail}")
    if isinstance(e, sdk.ServiceRequestError):
        return ArmTransientError(f"{where}: could not reach ARM at {client.endpoint} ({e}); try again")
    if isinstance(e, sdk.ServiceResponseError):
        return ArmTransientError(f"{where}: no complete answer from ARM at {client.endpoint} after "
                                 f"{client.retries} retries ({e}); try again")
    return ArmError(f"{where}: {type(e).__name__}: {e}")
