"""Settings: the typed models, the one YAML file, AOAI_OBS_* overrides, and every problem reported with file:line."""

from __future__ import annotations

import difflib
import os.path
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError, PydanticUndefined

from collector.errors import InputError, Problem
from collector.yamlfile import Loc, did_you_mean, dotted, read_located_yaml

CONFIG_ENV = "AOAI_OBS_CONFIG"
DEFAULT_FILE = "aoai-obs.yaml"
ENV_PREFIX = "AOAI_OBS_"
SECRET_HINT = "put it in AOAI_OBS_STORE__URL or use PGPASSWORD / a .pgpass file"
WEBHOOK_URL_HINT = "set the environment variable AOAI_OBS_BUDGETS__WEBHOOK_URL instead"
CONNECTION_STRING_HINT = ("set the environment variable AOAI_OBS_BILL__CONNECTION_STRING instead, or better, leave it "
                          "out and grant the collector's identity Storage Blob Data Reader")
HOUR = timedelta(hours=1)


# -- values ------------------------------------------------------------------------------------------------------

_SHORT = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_ISO = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", re.IGNORECASE)


class DurationError(InputError, ValueError):
    """A duration that does not parse. A ValueError too, so that pydantic reports it as a validation problem."""


def parse_duration(text: str) -> timedelta:
    """`30s`, `5m`, `1h`, `2d`, combinations such as `1h30m`, or ISO-8601 such as `PT5M`."""
    stripped = text.strip()
    match = _SHORT.fullmatch(stripped) or _ISO.fullmatch(stripped)
    if not stripped or match is None or not any(match.groups()) or stripped.upper() in ("P", "PT"):
        raise DurationError([], f"{text!r} is not a duration: write e.g. 30s, 5m, 1h, 2d or PT5M")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest form `parse_duration` reads back: 5m, 1h, 2d, 90s."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _to_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"{value!r} is not a duration: write it as a string such as 30s, 5m, 1h, 2d or PT5M")


def _no_bool(value: object) -> object:
    if isinstance(value, bool):  # YAML's `yes`/`true` would otherwise pass as 1
        raise ValueError(f"{value!r} is not a whole number")
    return value


def _source_name(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9-]+", value):
        raise ValueError(f"{value!r} is not a source name: use lowercase letters, digits and '-'")
    return value


def _base(info: ValidationInfo) -> Path | None:
    base = info.context.get("base") if isinstance(info.context, dict) else None
    return base if isinstance(base, Path) else None


def _config_path(value: Path, info: ValidationInfo) -> Path:
    if str(value) in ("", "."):
        raise ValueError("a path is required")
    base = _base(info)
    return value if base is None or value.is_absolute() else Path(os.path.normpath(base / value))


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"{value!r} is not a URL: write it whole, e.g. https://prices.azure.com/api/retail/prices")
    return value


def _redact(url: str) -> str:
    return re.sub(r"(://[^/:@]*):[^/@]*@", r"\1:***@", url)


def has_password(url: str) -> bool:
    """Whether a database URL carries a password, in its user part or as a `password=` query parameter."""
    try:
        parts = urlsplit(url)
        return parts.password is not None or "password" in {k.lower() for k in parse_qs(parts.query)}
    except ValueError:
        return False


def _store_url(value: str, info: ValidationInfo) -> str:
    backend = value.split("://", 1)[0].split("+", 1)[0] if "://" in value else ""
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"{_redact(value)!r} is not a supported store URL: use sqlite:///path/to/file.sqlite "
                         "or postgresql+psycopg://user@host/db")
    sqlite = re.fullmatch(r"(sqlite(?:\+\w+)?:///)([^?]*)(\?.*)?", value)
    base = _base(info)
    if sqlite is None or base is None:
        return value
    prefix, file, query = sqlite.groups()
    if not file or file == ":memory:" or file.startswith("file:") or Path(file).is_absolute():
        return value
    return f"{prefix}{os.path.normpath(base / file)}{query or ''}"


def _reserved(value: object) -> dict[str, Any] | list[Any]:
    if value is None:
        return {}
    if isinstance(value, dict | list):
        return value
    raise ValueError("this reserved section takes a mapping or a list")


def _violations(items: Sequence[tuple[Loc, str]]) -> PydanticCustomError:
    """A cross-field error that still names the offending keys, so each is reported at its own line."""
    return PydanticCustomError("cross_field", "{summary}", {"summary": "; ".join(m for _, m in items),
                                                            "violations": items})


Duration = Annotated[timedelta, BeforeValidator(_to_duration)]
Count = Annotated[int, BeforeValidator(_no_bool)]
ConfigPath = Annotated[Path, AfterValidator(_config_path)]
Reserved = Annotated[dict[str, Any] | list[Any], PlainValidator(_reserved)]
_RESERVED = "Reserved for a later release: accepted (a mapping or a list) and kept as raw data."

# -- models ------------------------------------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkspaceSourceSettings(_Section):
    """An embedded, Log-Analytics-shaped workspace file."""

    kind: Literal["workspace"] = Field(description="What the source is; `workspace` is the embedded workspace.")
    name: Annotated[str, AfterValidator(_source_name)] = Field(
        description="Lowercase letters, digits and `-`; unique; kept on every rollup row.")
    path: ConfigPath = Field(description="The workspace file (DuckDB); relative to the settings file's folder.")


class _AzureSourceSettings(_Section):
    """What every source reached through an Azure SDK shares: identity, endpoint, TLS and limits."""

    name: Annotated[str, AfterValidator(_source_name)] = Field(
        description="Lowercase letters, digits and `-`; unique; kept on every rollup row.")
    audience: str | None = Field(
        default=None, description="Token audience; by default the public cloud's for the endpoint's service. Set it "
                                  "for sovereign clouds or when the endpoint is a proxy.")
    tenant_id: str | None = Field(
        default=None, description="Entra tenant for DefaultAzureCredential; by default the credential's own.")
    client_id: str | None = Field(
        default=None, description="Client id of a user-assigned managed identity (or workload identity) to use.")
    ca_bundle: ConfigPath | None = Field(
        default=None, description="PEM file of certificate authorities to trust instead of the system's (a TLS-"
                                  "inspecting proxy); relative to the settings file's folder.")
    timeout: Duration = Field(
        default=timedelta(minutes=3), description="How long one request may take on the server before it is "
                                                  "abandoned (Log Analytics allows up to 10m).")
    requests_per_30s: Count = Field(
        default=180, ge=1, le=200, description="Client-side rate limit per source, under Azure's 200 requests per "
                                               "30 s per caller.")
    retries: Count = Field(
        default=4, ge=0, le=10, description="Retries of a throttled (429) or failed (5xx) request, with backoff "
                                            "honouring Retry-After, before the window is left for the next run.")


class LogAnalyticsSourceSettings(_AzureSourceSettings):
    """Log Analytics workspaces, queried with the KQL files through azure-monitor-query."""

    kind: Literal["log_analytics"] = Field(description="`log_analytics`: Log Analytics workspaces.")
    workspace_ids: list[str] = Field(
        min_length=1, description="Workspace (customer) ids, GUIDs; each query covers all of them.")
    endpoint: str = Field(
        default="https://api.loganalytics.io", description="Log Analytics query endpoint (sovereign clouds have "
                                                           "their own).")


class MetricsSourceSettings(_AzureSourceSettings):
    """Azure OpenAI accounts' platform metrics, read through the Azure Monitor Metrics API."""

    kind: Literal["metrics"] = Field(description="`metrics`: platform metrics of Azure OpenAI accounts.")
    accounts: list[str] = Field(
        min_length=1, description="ARM resource ids of the Azure OpenAI (Cognitive Services) accounts.")
    endpoint: str = Field(
        default="https://management.azure.com", description="Azure Resource Manager endpoint (sovereign clouds "
                                                            "have their own).")


SourceSettings = Annotated[
    Union[WorkspaceSourceSettings, LogAnalyticsSourceSettings, MetricsSourceSettings],  # noqa: UP007
    Field(discriminator="kind"),
]
_SOURCE_MODELS: tuple[type[_Section], ...] = get_args(get_args(SourceSettings)[0]) or (get_args(SourceSettings)[0],)
SOURCE_KINDS: dict[str, type[_Section]] = {
    get_args(m.model_fields["kind"].annotation)[0]: m for m in _SOURCE_MODELS
}


class RetentionSettings(_Section):
    five_minute_days: Count = Field(
        default=35, ge=2, description="Days the fine (grain-sized) rollups are kept; at least 2.")
    hourly_days: Count = Field(
        default=400, ge=2, description="Days the hourly rollups are kept; at least five_minute_days.")
    daily_days: Count = Field(
        default=0, description="Days the daily and weekly rollups (what views of weeks and months read) are kept; "
                               "at least hourly_days; 0 keeps them forever.")

    @model_validator(mode="after")
    def _hourly_outlive_fine(self) -> RetentionSettings:
        if self.hourly_days < self.five_minute_days:
            raise _violations([(("hourly_days",), f"store.retention.hourly_days ({self.hourly_days}) must be at "
                                                  f"least five_minute_days ({self.five_minute_days})")])
        if self.daily_days and self.daily_days < self.hourly_days:
            raise _violations([(("daily_days",), f"store.retention.daily_days ({self.daily_days}) must be 0 (forever) "
                                                 f"or at least hourly_days ({self.hourly_days})")])
        return self


class StoreSettings(_Section):
    url: Annotated[str, AfterValidator(_store_url)] = Field(
        default="sqlite:///.demo/aoai-obs.sqlite",
        description="SQLAlchemy URL of the rollup store: `sqlite:///file` (relative to the settings file's folder) "
                    "or `postgresql+psycopg://user@host/db`. No password in the file: set the variable instead.")
    retention: RetentionSettings = Field(default_factory=RetentionSettings)


class CollectorSettings(_Section):
    grain: Duration = Field(
        default=timedelta(minutes=5), description="Bucket size of the fine rollup tier; must divide 1h.")
    lag: Duration = Field(
        default=timedelta(minutes=10), description="Ingestion delay allowance: a window ends at most at now - lag.")
    lookback: Duration = Field(
        default=HOUR, description="Trailing range every run collects again, so late rows are caught; a multiple of "
                                  "grain.")
    max_window: Duration = Field(
        default=timedelta(hours=6), description="Largest range one query covers; a multiple of grain.")
    interval: Duration = Field(default=timedelta(minutes=5), description="How often `collect run` collects.")
    queries: list[str] = Field(
        default_factory=list, description="Names of the queries to run; empty runs all. From the environment: "
                                          "comma-separated.")
    metrics_port: Count = Field(
        default=0, ge=0, le=65535, description="Port of the Prometheus metrics endpoint of `collect run` (on "
                                               "127.0.0.1, path /metrics); 0 turns it off.")

    @model_validator(mode="after")
    def _fit_the_grain(self) -> CollectorSettings:
        grain, problems = self.grain, []
        if not grain or HOUR % grain:
            problems.append((("grain",), f"collector.grain ({format_duration(grain)}) must divide 1h evenly "
                                         "(e.g. 1m, 5m, 15m, 1h)"))
        else:
            for key in ("lookback", "max_window"):
                value: timedelta = getattr(self, key)
                if value < grain or value % grain:
                    problems.append(((key,), f"collector.{key} ({format_duration(value)}) must be a multiple of "
                                             f"grain ({format_duration(grain)})"))
        if not self.interval:
            problems.append((("interval",), "collector.interval must be longer than 0s"))
        if problems:
            raise _violations(problems)
        return self


class PricesSettings(_Section):
    book: ConfigPath | None = Field(
        default=None, description="Price book YAML (effective-dated prices per model, deployment type and region, "
                                  "with provenance and overrides); relative to the settings file's folder. Empty: "
                                  "the shipped default book (collector/cost/pricebook/default.yaml). `aoai-obs "
                                  "prices sync` writes Azure's list prices into this file unless given --out.")
    retail_endpoint: Annotated[str, AfterValidator(_http_url)] = Field(
        default="https://prices.azure.com/api/retail/prices",
        description="Azure Retail Prices API that `aoai-obs prices sync` reads (no sign-in); set it to reach the "
                    "API through a mirror or proxy.")
    ca_bundle: ConfigPath | None = Field(
        default=None, description="PEM file of certificate authorities to trust for the Retail Prices API instead "
                                  "of the system's (a TLS-inspecting proxy); relative to the settings file's folder.")


class InventorySettings(_Section):
    file: ConfigPath | None = Field(
        default=None, description="Deployments YAML (account, name, model, version, type, region, capacity, "
                                  "owner_team, tags per deployment); relative to the settings file's folder. An "
                                  "entry replaces what Azure or the demo says of that deployment. Empty: none.")
    from_azure: bool = Field(
        default=True, description="Read the deployments of every `metrics` source's accounts from Azure Resource "
                                  "Manager (same identity; Reader or Monitoring Reader on each account). No "
                                  "effect without a metrics source.")


class TeamsSettings(_Section):
    rules: ConfigPath | None = Field(
        default=None, description="Attribution rules YAML (APIM subscription, caller, deployment, tag or owner -> "
                                  "team, first match wins); relative to the settings file's folder. Empty: nothing "
                                  "is attributed and all cost is `unallocated`.")


def _webhook_url(value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
    if value is None or not value.get_secret_value().strip():
        return None  # an empty variable turns notifications off
    text = value.get_secret_value().strip()
    try:
        parts = urlsplit(text)
        ok = parts.scheme in ("https", "http") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:  # never echo the value: it is a credential
        raise ValueError("not a webhook URL: it must start with https:// and name a host")
    if parts.scheme == "http" and not info.data.get("webhook_allow_http"):
        raise ValueError("an http:// webhook URL sends its credential and every notification unencrypted: use "
                         "https://, or for a receiver on this machine or network set budgets.webhook_allow_http "
                         "(AOAI_OBS_BUDGETS__WEBHOOK_ALLOW_HTTP=true)")
    return SecretStr(text)


class BudgetsSettings(_Section):
    file: ConfigPath | None = Field(
        default=None, description="Budgets YAML (monthly USD per team or deployment, thresholds in percent); "
                                  "relative to the settings file's folder. Empty: no budgets.")
    webhook_format: Literal["slack", "teams"] = Field(
        default="slack", description="Body of budget notifications: `slack` (`{\"text\": ...}`, Slack incoming "
                                     "webhooks) or `teams` (an Adaptive Card message, Teams Workflows webhooks).")
    webhook_allow_http: bool = Field(
        default=False, description="Accept an `http://` `budgets.webhook_url` (a local receiver: the URL, a "
                                   "credential, and the notifications then travel unencrypted). Off: https only.")
    # After webhook_allow_http: a field's validator sees only the fields declared before it.
    webhook_url: Annotated[SecretStr | None, AfterValidator(_webhook_url)] = Field(
        default=None, description="Where a notification is POSTed once per budget threshold and month. A secret: "
                                  "set the variable, never the file. Empty: budgets are evaluated, nothing is "
                                  "sent.")


class ReportsSettings(_Section):
    folder: ConfigPath | None = Field(
        default=None, description="Folder the collector writes each month's report to (`aoai-report-YYYY-MM.html`, "
                                  "`.csv`, and `.pdf` when chromium is installed), once, when the collected data "
                                  "has passed the month's end; relative to the settings file's folder. Empty: no "
                                  "scheduled reports.")
    post_to_webhook: bool = Field(
        default=False, description="Also post a short summary naming the report's file to the budget webhook "
                                   "(`budgets.webhook_url`, in `budgets.webhook_format`).")


class BillSettings(_Section):
    source: str | None = Field(
        default=None, description="Where `aoai-obs bill import` reads Cost Management exports when no SOURCE is "
                                  "given: a folder, or a blob container URL `https://<account>.blob.core.windows.net/"
                                  "<container>[/<prefix>]` (read with DefaultAzureCredential: Storage Blob Data "
                                  "Reader on the container).")
    tenant_id: str | None = Field(
        default=None, description="Entra tenant for reading the container; by default the credential's own.")
    client_id: str | None = Field(
        default=None, description="Client id of a user-assigned managed identity to read the container with.")
    ca_bundle: ConfigPath | None = Field(
        default=None, description="PEM file of certificate authorities to trust for the storage account (a TLS-"
                                  "inspecting proxy); relative to the settings file's folder.")
    connection_string: SecretStr | None = Field(
        default=None, description="A storage connection string instead of an identity (a storage emulator such as "
                                  "Azurite, or an account key). A secret: set the variable, never the file.")


class DemoSettings(_Section):
    days: Count = Field(
        default=90, ge=1, description="Days of demo traffic the demo generates, ending at the current hour.")
    seed: Count = Field(
        default=7, description="Random seed of the demo generator: the same seed gives the same traffic.")


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as e:
        close = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "use an IANA name such as UTC or Europe/Paris"
        raise ValueError(f"{value!r} is not an IANA time zone: {hint}") from e
    return value


class DashboardsSettings(_Section):
    timezone: Annotated[str, AfterValidator(_time_zone)] = Field(
        default="UTC", description="IANA time zone the dashboards show times in (e.g. Europe/Paris); the store "
                                   "stays in UTC.")
    host: str = Field(
        default="127.0.0.1", description="Address `aoai-obs serve` listens on; 0.0.0.0 exposes the dashboards to "
                                         "the network, which has no login of its own.")
    port: Count = Field(default=8050, ge=1, le=65535, description="Port `aoai-obs serve` listens on.")


def _default_sources() -> list[SourceSettings]:
    return [WorkspaceSourceSettings(kind="workspace", name="demo", path=Path(".demo/workspace.duckdb"))]


class Settings(_Section):
    """Everything the collector, the dashboards and the report need, read once at the edge."""

    sources: list[SourceSettings] = Field(
        default_factory=_default_sources,
        description="Where telemetry comes from, one entry per source; the default is the demo workspace "
                    "`demo` at `.demo/workspace.duckdb`.")
    store: StoreSettings = Field(default_factory=StoreSettings)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    teams: TeamsSettings = Field(default_factory=TeamsSettings)
    prices: PricesSettings = Field(default_factory=PricesSettings)
    inventory: InventorySettings = Field(default_factory=InventorySettings)
    budgets: BudgetsSettings = Field(default_factory=BudgetsSettings)
    reports: ReportsSettings = Field(default_factory=ReportsSettings)
    bill: BillSettings = Field(default_factory=BillSettings)
    dashboards: DashboardsSettings = Field(default_factory=DashboardsSettings)
    alerts: Reserved = Field(default_factory=dict, description=_RESERVED)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[WorkspaceSourceSettings]) -> list[WorkspaceSourceSettings]:
        first: dict[str, int] = {}
        problems: list[tuple[Loc, str]] = []
        for i, source in enumerate(sources):
            if source.name in first:
                problems.append(((i, "name"), f"source name {source.name!r} is already used by "
                                              f"sources[{first[source.name]}]"))
            first.setdefault(source.name, i)
        if problems:
            raise _violations(problems)
        return sources


_FILE_ONLY = frozenset({"sources", "alerts"})

# -- reading -----------------------------------------------------------------------------------------------------


def find_config(explicit: Path | None, environ: Mapping[str, str], cwd: Path) -> Path | None:
    """The settings file: --config, else $AOAI_OBS_CONFIG, else ./aoai-obs.yaml if present, else none (defaults)."""
    if explicit is not None:
        return cwd / explicit
    if environ.get(CONFIG_ENV):
        return cwd / environ[CONFIG_ENV]
    default = cwd / DEFAULT_FILE
    return default if default.is_file() else None


def _summary(count: int, path: Path | None) -> str:
    return f"{count} problem(s) in the settings{f' ({path})' if path else ''}"


def _read_yaml(path: Path) -> tuple[Any, dict[Loc, int], list[Problem]]:
    return read_located_yaml(path, "settings file", summary=_summary(1, path),
                             not_found_hint=f"check --config and ${CONFIG_ENV}")


def _env_name(loc: Loc) -> str:
    return ENV_PREFIX + "__".join(str(p).upper() for p in loc)


def _env_overrides(environ: Mapping[str, str]) -> tuple[list[tuple[Loc, Any, str]], list[Problem]]:
    """AOAI_OBS_<SECTION>__<KEY> variables: a double underscore nests; variables without one are not settings."""
    known = [doc.env for doc in iter_setting_docs() if doc.env]
    overrides: list[tuple[Loc, Any, str]] = []
    problems: list[Problem] = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        loc: Loc = tuple(name[len(ENV_PREFIX):].lower().split("__"))
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            why = "names no setting"
            if loc[0] in _FILE_ONLY:
                why, close = f"cannot set {loc[0]}: it lives in the settings file only", []
            problems.append(Problem(None, None, f"environment variable {name} {why}",
                                    f"did you mean {close[0]}?" if close else ""))
            continue
        value: Any = environ[name]
        if get_origin(_field_at(loc).annotation) is list:
            value = [item.strip() for item in value.split(",") if item.strip()]
        overrides.append((loc, value, name))
    return overrides, problems


def _field_at(loc: Loc) -> Any:
    model: Any = Settings
    for part in loc[:-1]:
        model = model.model_fields[part].annotation
    return model.model_fields[loc[-1]]


def _apply(data: dict[str, Any], loc: Loc, value: Any) -> bool:
    node = data
    for part in map(str, loc[:-1]):
        if node.get(part) is None:
            node[part] = {}
        if not isinstance(node[part], dict):
            return False  # the file's own error about this section is reported instead
        node = node[part]
    node[str(loc[-1])] = value
    return True


def load_settings(path: Path | None, environ: Mapping[str, str]) -> Settings:
    """Read the settings file (or none: defaults), apply AOAI_OBS_* overrides, and validate everything.

    Raises one InputError listing every problem, each at the line of its key (or of the nearest parent given).
    """
    data: Any = {}
    lines: dict[Loc, int] = {}
    problems: list[Problem] = []
    if path is not None:
        data, lines, problems = _read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError([Problem(path, lines.get(()), f"the settings must be a mapping of sections, not a "
                                                       f"{_kind_of(data)}", "start with e.g. `store:` or `sources:`")],
                         _summary(1, path))
    budgets = data.get("budgets")
    if path is not None and isinstance(budgets, dict) and "webhook_url" in budgets:
        del budgets["webhook_url"]  # refused whatever it holds; never validated, so never echoed
        problems.append(Problem(path, lines.get(("budgets", "webhook_url")), "budgets.webhook_url is a credential; "
                                "settings files must not hold secrets", WEBHOOK_URL_HINT))
    bill = data.get("bill")
    if path is not None and isinstance(bill, dict) and "connection_string" in bill:
        del bill["connection_string"]  # refused whatever it holds; never validated, so never echoed
        problems.append(Problem(path, lines.get(("bill", "connection_string")), "bill.connection_string is a "
                                "credential; settings files must not hold secrets", CONNECTION_STRING_HINT))
    overrides, env_problems = _env_overrides(environ)
    origins = {loc: name for loc, value, name in overrides if _apply(data, loc, value)}
    url = data.get("store", {}).get("url") if isinstance(data.get("store"), dict) else None
    if path is not None and ("store", "url") not in origins and isinstance(url, str) and has_password(url):
        problems.append(Problem(path, lines.get(("store", "url")), "store.url contains a password; settings "
                                                                   "files must not hold secrets", SECRET_HINT))
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data, context={"base": path.parent if path is not None else None})
    except ValidationError as e:
        problems.extend(_problem(error, data, lines, origins, path) for error in _expand(e))
    problems.extend(env_problems)
    problems.sort(key=lambda p: (p.path is None, p.line or 0))
    if problems or settings is None:
        raise InputError(problems, _summary(len(problems), path))
    return settings


# -- problems ----------------------------------------------------------------------------------------------------


def _kind_of(value: object) -> str:
    kinds = {list: "list", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "value")


def _dotted(loc: Loc) -> str:
    return dotted(loc) or "the settings"


def _expand(error: ValidationError) -> Iterator[tuple[str, Loc, str, Any, dict[str, Any]]]:
    """Each pydantic error as (type, loc, message, input, ctx), with union tags dropped and cross-field checks split."""
    for e in error.errors():
        loc: Loc = tuple(e["loc"])
        if len(loc) > 2 and loc[0] == "sources" and isinstance(loc[1], int) and loc[2] in SOURCE_KINDS:
            loc = loc[:2] + loc[3:]
        ctx = e.get("ctx", {})
        if e["type"] == "cross_field":
            for rel, message in ctx["violations"]:
                yield "cross_field", (*loc, *rel), message, None, {}
        else:
            yield e["type"], loc, e["msg"].removeprefix("Value error, "), e["input"], ctx


def _model_at(loc: Loc, data: Any) -> type[BaseModel] | None:
    model: type[BaseModel] = Settings
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        data = data.get(part) if isinstance(data, dict) else None
        if part == "sources" and parts and isinstance(parts[0], int):
            index = int(parts.pop(0))
            entry = data[index] if isinstance(data, list) and index < len(data) else None
            found = SOURCE_KINDS.get(str(entry.get("kind"))) if isinstance(entry, dict) else None
            if found is None:
                return None
            model, data = found, entry
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            model = field.annotation
        else:
            return None
    return model


def _problem(error: tuple[str, Loc, str, Any, dict[str, Any]], data: Any, lines: dict[Loc, int],
             origins: dict[Loc, str], path: Path | None) -> Problem:
    kind, loc, message, value, ctx = error
    subject, hint = _dotted(loc), ""
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1], data)
        section = f" in {_dotted(loc[:-1])}" if loc[:-1] else ""
        message = f"unknown setting {loc[-1]!r}{section}"
        hint = did_you_mean(loc[-1], list(model.model_fields)) if model else ""
    elif kind == "missing":
        message = "required, but not given"
    elif kind == "union_tag_invalid":
        loc = (*loc, "kind")
        message = f"unknown source kind {ctx.get('tag')!r}"
        hint = did_you_mean(ctx.get("tag"), list(SOURCE_KINDS))
    elif kind == "union_tag_not_found":
        message, hint = "a source needs a `kind`", f"kinds: {', '.join(SOURCE_KINDS)}"
    elif kind in ("model_type", "model_attributes_type"):
        message = f"must be a mapping of settings, not a {_kind_of(value)}"
    elif kind not in ("cross_field", "value_error"):
        got = f" (got {value!r})" if isinstance(value, str | int | float | bool) and loc[-1:] != ("url",) else ""
        message = f"{message.replace('Input should', 'should')}{got}"
    if kind in ("extra_forbidden", "union_tag_invalid", "union_tag_not_found", "cross_field"):
        subject = ""  # these messages name what they are about
    for i in range(len(loc), 0, -1):
        if loc[:i] in origins:
            return Problem(None, None, f"environment variable {origins[loc[:i]]}: {message}", hint)
    line = next((lines[loc[:i]] for i in range(len(loc), -1, -1) if loc[:i] in lines), None)
    return Problem(path, line, f"{subject}: {message}" if subject else message, hint)


# -- documentation -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingDoc:
    """One leaf setting: its dotted path, type, default, help text and overriding variable (None: file only)."""

    path: str
    type: str
    default: str
    help: str
    env: str | None


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Annotated:
        return _type_name(get_args(annotation)[0])
    optional = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(optional) == 1:
        return f"{_type_name(optional[0])}, optional"
    if get_origin(annotation) is Literal:
        return " | ".join(f"`{a}`" for a in get_args(annotation))
    if get_origin(annotation) is list:
        item = get_args(annotation)[0]
        return f"list of {_type_name(item)}s" if item in (str, int) else "list of sources"
    names = {timedelta: "duration", int: "integer", str: "string", Path: "path", bool: "boolean",
             SecretStr: "secret string"}
    return names.get(annotation, "mapping or list")


def _default_text(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default_factory() if field.default is PydanticUndefined else field.default
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return "see description"
    return f"`{value}`" if value not in ([], {}) else f"`{value!r}`"


def _docs_of(model: type[BaseModel], prefix: Loc, env: bool) -> Iterator[SettingDoc]:
    for name, field in model.model_fields.items():
        loc = (*prefix, name)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _docs_of(field.annotation, loc, env)
            continue
        overridable = env and name not in _FILE_ONLY
        yield SettingDoc(_dotted(loc), _type_name(field.annotation), _default_text(field), field.description or "",
                         _env_name(loc) if overridable else None)
        if name == "sources":
            # Each kind's settings under its own name: `endpoint` means different things to different kinds.
            for kind, kind_model in SOURCE_KINDS.items():
                yield from _docs_of(kind_model, (f"sources[{kind}]",), env=False)


def iter_setting_docs() -> Iterator[SettingDoc]:
    """Every setting, generated from the models' field descriptions (the one place help text lives)."""
    return _docs_of(Settings, (), env=True)


def render_settings_markdown() -> str:
    """The settings table for README.md (its Configuration section)."""
    rows = ["| Setting | Type | Default | Environment variable | Description |", "|---|---|---|---|---|"]
    for doc in iter_setting_docs():
        env = f"`{doc.env}`" if doc.env else "-"
        help_text, type_text = doc.help.replace("|", "\\|"), doc.type.replace("|", "\\|")
        rows.append(f"| `{doc.path}` | {type_text} | {doc.default} | {env} | {help_text} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.stderr.write("usage: python -m collector.config --markdown\n")
        sys.exit(2)
    sys.stdout.write(render_settings_markdown())
