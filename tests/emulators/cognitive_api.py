"""An HTTPS emulator of the Cognitive Services management API (ARM): accounts and their model deployments.

Serves, over HTTPS (`tests.emulators.tls`), with per-request fault injection (status + Retry-After, malformed body)
and a log of the requests it saw:

- `GET /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{account}`
- `GET .../accounts/{account}/deployments` (paged: `value` and an absolute `nextLink` carrying `$skiptoken`)
- `GET .../accounts/{account}/deployments/{deployment}`

Wire format from the REST API specification in Azure/azure-rest-api-specs (`specification/cognitiveservices/
resource-manager/Microsoft.CognitiveServices/stable/2025-09-01/examples/GetAccount.json`, `GetDeployment.json`,
`2024-10-01/examples/ListDeployments.json`, and `CognitiveServices.Management/Deployment.tsp`: `sku` and `tags` on the
deployment envelope) and from azure-mgmt-cognitiveservices 14.1.0, which sends api-version 2025-09-01 and follows
`nextLink` with its own api-version. Paths are matched case-insensitively, as ARM does. `rateLimits` follow Azure's
documented quota rule (6 requests per minute per 1,000 TPM: `capacity` requests per 10 s, `capacity * 1000` tokens
per 60 s); errors are ARM's `{"error": {"code", "message"}}` (`tests.emulators.arm_errors`).
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from collector.workspace.demo import DEMO_ORG, Organisation
from tests.emulators.arm_errors import FAULT_CODES, ArmError, arm_error_body
from tests.emulators.tls import ServedOverHttps, send_json

API_VERSION = "2025-09-01"
PROVIDER = "Microsoft.CognitiveServices"


@dataclass(frozen=True)
class EmulatedDeployment:
    """A deployment as ARM stores it: `sku` is Azure's SKU name (GlobalProvisionedManaged, DataZoneBatch, ...)."""

    name: str
    model: str
    version: str | None
    sku: str | None
    capacity: int | None
    tags: dict[str, str] | None = None
    model_format: str = "OpenAI"
    provisioning_state: str = "Succeeded"


@dataclass
class EmulatedAccount:
    subscription_id: str
    resource_group: str
    name: str
    location: str
    tags: dict[str, str] = field(default_factory=dict)
    kind: str = "OpenAI"
    deployments: list[EmulatedDeployment] = field(default_factory=list)

    @property
    def resource_id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}/providers/{PROVIDER}"
                f"/accounts/{self.name}")


@dataclass
class Fault:
    """What to answer instead of the real thing, for one request."""

    status: int = 200  # not 200: answer this status with an ARM error body
    retry_after: str | None = None
    body: bytes | None = None  # answer 200 with this body (a malformed one, say)
    match: str = ""  # only requests whose `METHOD path?query` (decoded) contains this text


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    authorization: str
    status: int


def demo_accounts(org: Organisation = DEMO_ORG) -> list[EmulatedAccount]:
    """The demo organisation's accounts and deployments as ARM would hold them. The demo's deployment types are
    all spelt as Azure's SKU names are (GlobalStandard, DataZoneStandard, Standard, ProvisionedManaged)."""
    accounts = []
    for account in org.accounts:
        deployments = [EmulatedDeployment(d.name, d.model, d.model_version, d.deployment_type, d.capacity)
                       for d in org.deployments if d.account == account.name]
        accounts.append(EmulatedAccount(account.subscription_id, account.resource_group, account.name,
                                        account.region, deployments=deployments))
    return accounts


@dataclass
class CognitiveEmulator(ServedOverHttps):
    """The emulator; use as a context manager. `endpoint` and `ca_bundle` are what a metrics source's settings take."""

    directory: Path
    accounts: list[EmulatedAccount] = field(default_factory=demo_accounts)
    page_size: int = 100
    faults: list[Fault] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return self.url

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Apply `fault` to the next `times` requests it matches, before any fault injected later."""
        with self._lock:
            self.faults.extend([fault] * times)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)



    # -- request handling --------------------------------------------------------------------------------------

    def _take_fault(self, text: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self.faults):
                if fault.match in text:
                    return self.faults.pop(i)
        return None

    def answer(self, method: str, raw_path: str, authorization: str) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(raw_path)
        path = unquote(split.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        fault = self._take_fault(f"{method} {path}?{unquote(split.query)}")
        status, headers, body = self._answer(method, path, query, authorization, fault)
        with self._lock:
            self.requests.append(RecordedRequest(method, path, query, authorization, status))
        return status, headers, body

    def _answer(self, method: str, path: str, query: dict[str, str], authorization: str,
                fault: Fault | None) -> tuple[int, dict[str, str], bytes]:
        if fault is not None:
            if fault.status != 200:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                return fault.status, headers, arm_error_body(FAULT_CODES.get(fault.status, "Error"),
                                                             _fault_message(fault.status, path))
            if fault.body is not None:
                return 200, {}, fault.body
        try:
            if not authorization.startswith("Bearer "):
                raise ArmError(401, "AuthenticationFailed",
                               "Authentication failed. The 'Authorization' header is missing.")
            if method != "GET":
                raise ArmError(405, "MethodNotAllowed", f"The method {method} is not served by this emulator.")
            if query.get("api-version") != API_VERSION:
                raise ArmError(400, "InvalidApiVersionParameter",
                               f"The api-version '{query.get('api-version')}' is invalid. The supported versions "
                               f"include '{API_VERSION}'.")
            return 200, {}, json.dumps(self._route(path, query)).encode()
        except ArmError as e:
            return e.status, {}, arm_error_body(e.code, e.message)

    def _route(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        lowered = [p.lower() for p in parts]
        shape = ["subscriptions", None, "resourcegroups", None, "providers", PROVIDER.lower(), "accounts", None]
        if len(parts) < 8 or any(want is not None and got != want for want, got in zip(shape, lowered, strict=False)):
            raise ArmError(404, "PathNotFound", f"The path {path} is not served by this emulator.")
        account = self._account(parts[1], parts[3], parts[7])
        rest = lowered[8:]
        if not rest:
            return _account_json(account)
        if rest == ["deployments"]:
            return self._page(account, query)
        if len(rest) == 2 and rest[0] == "deployments":
            found = next((d for d in account.deployments if d.name.lower() == rest[1]), None)
            if found is None:
                raise ArmError(404, "DeploymentNotFound", f"The specified deployment '{parts[9]}' does not exist.")
            return _deployment_json(account, found)
        raise ArmError(404, "PathNotFound", f"The path {path} is not served by this emulator.")

    def _account(self, subscription: str, group: str, name: str) -> EmulatedAccount:
        for account in self.accounts:
            if (account.subscription_id.lower(), account.resource_group.lower(), account.name.lower()) == (
                    subscription.lower(), group.lower(), name.lower()):
                return account
        raise ArmError(404, "ResourceNotFound", f"The Resource '{PROVIDER}/accounts/{name}' under resource group "
                                                f"'{group}' was not found. For more details please go to "
                                                "https://aka.ms/ARMResourceNotFoundFix")

    def _page(self, account: EmulatedAccount, query: dict[str, str]) -> dict[str, Any]:
        token = query.get("$skiptoken", "0")
        if not token.isdigit():
            raise ArmError(400, "InvalidSkipToken", f"The $skiptoken '{token}' is invalid.")
        start = int(token)
        page = account.deployments[start:start + self.page_size]
        body: dict[str, Any] = {"value": [_deployment_json(account, d) for d in page]}
        if start + self.page_size < len(account.deployments):
            body["nextLink"] = (f"{self.endpoint}{account.resource_id}/deployments?api-version={API_VERSION}"
                                f"&$skiptoken={start + self.page_size}")
        return body


def _fault_message(status: int, path: str) -> str:
    if status == 403:
        action = f"{PROVIDER}/accounts/deployments/read" if "/deployments" in path.lower() else \
            f"{PROVIDER}/accounts/read"
        return (f"The client 'collector@contoso.example' with object id '00000000-0000-0000-0000-00000000c011' does "
                f"not have authorization to perform action '{action}' over scope '{path}' or the scope is invalid. "
                "If access was recently granted, please refresh your credentials.")
    return f"injected {status}"


def _account_json(account: EmulatedAccount) -> dict[str, Any]:
    return {
        "id": account.resource_id,
        "name": account.name,
        "type": f"{PROVIDER}/accounts",
        "etag": '"0b00b1e5-0000-0000-0000-000000000000"',
        "location": account.location,
        "kind": account.kind,
        "sku": {"name": "S0"},
        "tags": account.tags,
        "properties": {
            "endpoint": f"https://{account.name}.openai.azure.com/",
            "customSubDomainName": account.name,
            "provisioningState": "Succeeded",
            "publicNetworkAccess": "Enabled",
        },
    }


def _deployment_json(account: EmulatedAccount, d: EmulatedDeployment) -> dict[str, Any]:
    model: dict[str, Any] = {"format": d.model_format, "name": d.model}
    if d.version is not None:
        model["version"] = d.version
    properties: dict[str, Any] = {"model": model, "provisioningState": d.provisioning_state,
                                  "versionUpgradeOption": "OnceNewDefaultVersionAvailable",
                                  "raiPolicyName": "Microsoft.DefaultV2"}
    body: dict[str, Any] = {
        "id": f"{account.resource_id}/deployments/{d.name}",
        "name": d.name,
        "type": f"{PROVIDER}/accounts/deployments",
        "systemData": {"createdBy": "ops@contoso.example", "createdByType": "User",
                       "createdAt": "2025-01-06T10:00:00.0000000Z", "lastModifiedBy": "ops@contoso.example",
                       "lastModifiedByType": "User", "lastModifiedAt": "2025-01-06T10:00:00.0000000Z"},
        "etag": '"d3p10yed-0000-0000-0000-000000000000"',
        "properties": properties,
    }
    if d.sku is not None:
        body["sku"] = {"name": d.sku, **({"capacity": d.capacity} if d.capacity is not None else {})}
        if d.capacity:
            properties["currentCapacity"] = d.capacity
            properties["rateLimits"] = [{"key": "request", "renewalPeriod": 10.0, "count": float(d.capacity)},
                                        {"key": "token", "renewalPeriod": 60.0, "count": float(d.capacity * 1000)}]
    if d.tags is not None:
        body["tags"] = d.tags
    return body


def _handler(emulator: CognitiveEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body leave in two writes; without this, Nagle and the client's delayed ACK add 40 ms each.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:
            status, headers, body = emulator.answer("GET", self.path, self.headers.get("Authorization", ""))
            send_json(self, status, headers, body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
