"""The demo organisation: Contoso's Azure OpenAI accounts, deployments, teams and callers, as pure data.

This is the ground truth the demo generator (`generate.py`) turns into telemetry, and what tests and the cost model
can check attribution against. Nothing here does I/O.

Identity, as the telemetry shows it:

- an Entra caller appears in `AzureDiagnostics` with its own object id in `properties_s.objectId`;
- an API-key caller appears with `objectId == ""` (the logs cannot say who it is);
- an APIM caller appears in `ApiManagementGatewayLogs` with its `ApimSubscriptionId`, and in `AzureDiagnostics` with
  the object id of the gateway's managed identity (the gateway authenticates to the backend, not the caller).

Throttling: `STORMS` lists the 429 storms. The one storm of the demo hits `gpt-4o` on `contoso-aoai-eus` every
Tuesday from 14:00 to 17:00 UTC (marketing's weekly campaign batch): extra requests, more than half of them 429.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

DeploymentType = Literal["GlobalStandard", "DataZoneStandard", "Standard", "ProvisionedManaged"]
Operation = Literal["chat", "embeddings"]
AuthKind = Literal["entra", "apim", "api-key"]
#: business: office hours of the account's region, low at night and at weekends; always: round the clock, a mild
#: day/night swing; nightly: batch jobs that run at night, local time.
Schedule = Literal["business", "always", "nightly"]


@dataclass(frozen=True)
class Account:
    """An Azure OpenAI (Cognitive Services) account."""

    name: str
    region: str  # ARM location, e.g. "eastus"
    timezone: str  # IANA zone of the region's business hours
    subscription_id: str  # lower-case GUID, as in ARM
    resource_group: str
    #: Some tenants get a second, nearly empty RequestResponse row per call (azure-telemetry.md §2.1).
    duplicate_request_rows: bool = False

    @property
    def resource_id(self) -> str:
        """The ARM id as ARM spells it (what the Metrics API and ARM take)."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.CognitiveServices/accounts/{self.name}"
        )


@dataclass(frozen=True)
class TokenProfile:
    """Lognormal token counts of one deployment's successful calls, clipped to a range."""

    prompt_median: float
    prompt_sigma: float
    prompt_range: tuple[int, int]
    completion_median: float = 0.0  # 0: embeddings, no completion
    completion_sigma: float = 0.0
    completion_range: tuple[int, int] = (0, 0)
    #: Share of calls whose prompt prefix is served from the cache (only prompts of 1,024 tokens or more).
    cached_share: float = 0.0


@dataclass(frozen=True)
class LatencyProfile:
    """Latency of one deployment: time to first token (lognormal) and output speed."""

    first_token_median_ms: float
    first_token_sigma: float
    tokens_per_second: float  # output speed; embeddings have no output
    prompt_tokens_per_ms: float = 5.0  # prompt processing speed


@dataclass(frozen=True)
class CallerShare:
    """One caller of a deployment and its weight in the deployment's weekday volume."""

    caller: str
    weight: float


@dataclass(frozen=True)
class Deployment:
    """A model deployment on an account."""

    name: str
    account: str
    model: str
    model_version: str
    deployment_type: DeploymentType
    #: Thousands of tokens per minute for standard types; PTUs for provisioned.
    capacity: int
    owner_team: str
    operation: Operation
    #: Expected requests on a weekday, all callers together, before storms.
    weekday_requests: float
    callers: tuple[CallerShare, ...]
    tokens: TokenProfile
    latency: LatencyProfile

    @property
    def is_provisioned(self) -> bool:
        return self.deployment_type == "ProvisionedManaged"

    @property
    def response_model(self) -> str:
        """The model id in response bodies (and so in APIM's `ModelName`): chat models carry their version."""
        return self.model if self.operation == "embeddings" else f"{self.model}-{self.model_version}"


@dataclass(frozen=True)
class Team:
    name: str
    display_name: str
    cost_center: str


@dataclass(frozen=True)
class Caller:
    """An application calling Azure OpenAI, owned by a team."""

    name: str  # Entra app name, APIM subscription display name or script name
    team: str
    auth: AuthKind
    object_id: str  # Entra object id; "" for API-key and APIM callers
    apim_subscription_id: str  # APIM subscription id; "" unless auth == "apim"
    ip_prefix: str  # first three octets of the caller's public address
    api_version: str
    schedule: Schedule
    streaming_share: float  # share of chat calls made with stream=true
    content_filter_rate: float  # share of chat calls blocked by the content filter (HTTP 400)


@dataclass(frozen=True)
class ApimGateway:
    """The API Management gateway fronting some deployments."""

    name: str
    region: str  # display name, as in the gateway logs' Region column
    subscription_id: str
    resource_group: str
    managed_identity_object_id: str  # the objectId Azure OpenAI logs for calls through the gateway
    outbound_ip_prefix: str

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ApiManagement/service/{self.name}"
        )


@dataclass(frozen=True)
class ThrottleStorm:
    """A recurring 429 storm: extra load on one deployment at a fixed weekly slot (UTC)."""

    account: str
    deployment: str
    weekday: int  # Monday == 0
    start_hour_utc: int
    hours: int
    caller: str  # who sends the extra load
    extra_requests_per_hour: float
    throttled_share: float  # share of all the deployment's calls answered 429 during the storm

    def covers(self, weekday: int, hour_utc: int) -> bool:
        return weekday == self.weekday and self.start_hour_utc <= hour_utc < self.start_hour_utc + self.hours


@dataclass(frozen=True)
class Organisation:
    name: str
    tenant_id: str  # Entra tenant
    workspace_id: str  # Log Analytics workspace: the `TenantId` column of every Log Analytics row
    accounts: tuple[Account, ...]
    deployments: tuple[Deployment, ...]
    teams: tuple[Team, ...]
    callers: tuple[Caller, ...]
    apim: ApimGateway
    storms: tuple[ThrottleStorm, ...]

    def account(self, name: str) -> Account:
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(f"no account {name!r} in {self.name}; accounts: {[a.name for a in self.accounts]}")

    def caller(self, name: str) -> Caller:
        for caller in self.callers:
            if caller.name == name:
                return caller
        raise KeyError(f"no caller {name!r} in {self.name}; callers: {[c.name for c in self.callers]}")

    def deployment(self, account: str, name: str) -> Deployment:
        for deployment in self.deployments:
            if deployment.account == account and deployment.name == name:
                return deployment
        raise KeyError(f"no deployment {name!r} on account {account!r} in {self.name}")

    def problems(self) -> list[str]:
        """Every broken reference in the organisation (empty when it is consistent)."""
        found: list[str] = []
        teams = {t.name for t in self.teams}
        accounts = {a.name for a in self.accounts}
        callers = {c.name: c for c in self.callers}
        for caller in self.callers:
            if caller.team not in teams:
                found.append(f"caller {caller.name}: unknown team {caller.team!r}")
            if (caller.auth == "apim") != bool(caller.apim_subscription_id):
                found.append(f"caller {caller.name}: an APIM subscription id exactly when auth is 'apim'")
            if (caller.auth == "entra") != bool(caller.object_id):
                found.append(f"caller {caller.name}: an object id exactly when auth is 'entra'")
        for dep in self.deployments:
            if dep.account not in accounts:
                found.append(f"deployment {dep.name}: unknown account {dep.account!r}")
            if dep.owner_team not in teams:
                found.append(f"deployment {dep.name}: unknown owner team {dep.owner_team!r}")
            found.extend(
                f"deployment {dep.name}: unknown caller {share.caller!r}"
                for share in dep.callers
                if share.caller not in callers
            )
        keys = [(d.account, d.name) for d in self.deployments]
        if len(set(keys)) != len(keys):
            found.append("two deployments share an account and a name")
        for storm in self.storms:
            if (storm.account, storm.deployment) not in keys:
                found.append(f"storm on unknown deployment {storm.account}/{storm.deployment}")
            if storm.caller not in callers:
                found.append(f"storm: unknown caller {storm.caller!r}")
        return found


_SUB: Final = "6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5"
_API_GA: Final = "2024-10-21"

_CHAT_TOKENS: Final = TokenProfile(900, 0.7, (200, 4000), 220, 0.6, (50, 800), cached_share=0.25)

ACCOUNTS: Final = (
    Account("contoso-aoai-eus", "eastus", "America/New_York", _SUB, "rg-ai-prod-eus"),
    Account("contoso-aoai-swc", "swedencentral", "Europe/Stockholm", _SUB, "rg-ai-prod-swc",
            duplicate_request_rows=True),
)

TEAMS: Final = (
    Team("search", "Enterprise Search", "CC-1040"),
    Team("support-bot", "Customer Support Assistant", "CC-2210"),
    Team("marketing", "Marketing Content", "CC-3105"),
    Team("data-science", "Data Science", "CC-4420"),
    Team("platform", "AI Platform", "CC-0900"),
)

CALLERS: Final = (
    Caller("search-indexer", "search", "entra", "3b8f6a1e-5c2d-4e7f-9a0b-1c2d3e4f5a61", "", "20.121.44",
           _API_GA, "always", 0.0, 0.0),
    Caller("search-api", "search", "entra", "7d2e9c4b-1a3f-4b5c-8d6e-2f3a4b5c6d72", "", "20.121.45",
           _API_GA, "business", 0.0, 0.001),
    Caller("support-assistant", "support-bot", "apim", "", "team-support", "52.170.12",
           _API_GA, "always", 0.85, 0.006),
    Caller("marketing-studio", "marketing", "apim", "", "team-marketing", "40.76.201",
           _API_GA, "business", 0.2, 0.015),
    Caller("marketing-campaigns", "marketing", "apim", "", "team-marketing-batch", "40.76.202",
           _API_GA, "business", 0.0, 0.01),
    Caller("ds-notebooks", "data-science", "entra", "a41c7e2f-6b8d-4c9e-a0f1-3b4c5d6e7f83", "", "81.2.69",
           "2025-01-01-preview", "business", 0.5, 0.003),
    Caller("ds-batch-eval", "data-science", "entra", "c59d8f3a-7c9e-4dae-b1f2-4c5d6e7f8094", "", "81.2.70",
           "2025-01-01-preview", "nightly", 0.0, 0.002),
    Caller("platform-evals", "platform", "entra", "e6fa9b4c-8daf-4ebf-82a3-5d6e7f8091a5", "", "13.82.10",
           _API_GA, "business", 0.3, 0.002),
    # A script still using an account key: its calls log objectId "" and nothing says who made them.
    Caller("legacy-report-script", "marketing", "api-key", "", "", "198.51.100", "2023-05-15", "business",
           0.0, 0.004),
)

DEPLOYMENTS: Final = (
    Deployment("gpt-4o", "contoso-aoai-eus", "gpt-4o", "2024-11-20", "GlobalStandard", 450, "platform", "chat",
               1100,
               (CallerShare("support-assistant", 0.35), CallerShare("marketing-studio", 0.25),
                CallerShare("ds-notebooks", 0.2), CallerShare("legacy-report-script", 0.1),
                CallerShare("platform-evals", 0.1)),
               _CHAT_TOKENS, LatencyProfile(450, 0.45, 55)),
    Deployment("gpt-4o-mini", "contoso-aoai-eus", "gpt-4o-mini", "2024-07-18", "GlobalStandard", 1000,
               "support-bot", "chat", 1500,
               (CallerShare("support-assistant", 0.6), CallerShare("search-api", 0.3),
                CallerShare("platform-evals", 0.1)),
               TokenProfile(700, 0.7, (200, 4000), 180, 0.6, (50, 800), cached_share=0.3),
               LatencyProfile(300, 0.4, 95)),
    Deployment("gpt-4o-ptu", "contoso-aoai-eus", "gpt-4o", "2024-08-06", "ProvisionedManaged", 50,
               "support-bot", "chat", 900,
               (CallerShare("support-assistant", 1.0),),
               TokenProfile(2200, 0.45, (400, 4000), 320, 0.5, (50, 800), cached_share=0.5),
               LatencyProfile(300, 0.25, 80)),
    Deployment("text-embedding-3-small", "contoso-aoai-eus", "text-embedding-3-small", "1", "Standard", 350,
               "search", "embeddings", 1200,
               (CallerShare("search-indexer", 0.7), CallerShare("search-api", 0.3)),
               TokenProfile(350, 1.0, (5, 8000)),
               LatencyProfile(75, 0.35, 0.0, prompt_tokens_per_ms=80.0)),
    Deployment("o4-mini", "contoso-aoai-eus", "o4-mini", "2025-04-16", "GlobalStandard", 200, "data-science",
               "chat", 250,
               (CallerShare("ds-notebooks", 0.6), CallerShare("ds-batch-eval", 0.4)),
               # completion includes reasoning tokens, hence longer than the other chat models
               TokenProfile(1200, 0.6, (200, 4000), 900, 0.7, (100, 3000), cached_share=0.15),
               LatencyProfile(2500, 0.6, 110)),
    Deployment("gpt-4.1", "contoso-aoai-swc", "gpt-4.1", "2025-04-14", "DataZoneStandard", 300, "data-science",
               "chat", 600,
               (CallerShare("marketing-studio", 0.5), CallerShare("ds-notebooks", 0.3),
                CallerShare("ds-batch-eval", 0.2)),
               _CHAT_TOKENS, LatencyProfile(500, 0.45, 60)),
    Deployment("gpt-4.1-mini", "contoso-aoai-swc", "gpt-4.1-mini", "2025-04-14", "GlobalStandard", 500,
               "platform", "chat", 800,
               (CallerShare("support-assistant", 0.4), CallerShare("platform-evals", 0.3),
                CallerShare("search-api", 0.3)),
               TokenProfile(800, 0.7, (200, 4000), 200, 0.6, (50, 800), cached_share=0.25),
               LatencyProfile(320, 0.4, 90)),
)

DEMO_ORG: Final = Organisation(
    name="Contoso",
    tenant_id="5e3a1c9d-2b4f-4e6a-8c7d-9f0a1b2c3d4e",
    workspace_id="0b1c2d3e-4f50-4617-8a9b-0c1d2e3f4a5b",
    accounts=ACCOUNTS,
    deployments=DEPLOYMENTS,
    teams=TEAMS,
    callers=CALLERS,
    apim=ApimGateway("contoso-apim", "East US", _SUB, "rg-ai-gateway", "9f0e1d2c-3b4a-4596-8778-695a4b3c2d1e",
                     "20.102.33"),
    storms=(ThrottleStorm("contoso-aoai-eus", "gpt-4o", weekday=1, start_hour_utc=14, hours=3,
                          caller="marketing-campaigns", extra_requests_per_hour=250, throttled_share=0.55),),
)
