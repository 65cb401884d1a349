"""Pure: the deployment inventory: each deployment's account, region, model, version, type, capacity, owner and tags.

Three sources fill it, merged in this order, a later one replacing an earlier one's record of the same deployment
whole (`merge`): the embedded workspace's demo organisation (`demo_inventory`), Azure (`collector/cost/cognitive.py`,
the deployments of the metrics sources' accounts), then the user's file (`load_inventory_file`), so a file entry
corrects or extends what Azure says. Writing a deployment in the file means writing all of it.

Conventions every source follows:

- `account` is the account's name in lower case. Rollups carry it upper-cased (AzureDiagnostics' `Resource`), the
  demo organisation and ARM lower-case; `Inventory.get` is case-insensitive on the account. Deployment names are
  kept as given.
- `deployment_type` is one of `collector.cost.pricing.DEPLOYMENT_TYPES`; Azure's SKU names map to them through
  `AZURE_SKUS` (`GlobalProvisionedManaged` is our `GlobalProvisioned`). A real SKU the price book has no type for
  (`UNPRICED_SKUS`) or an unknown one keeps its deployment, with type "", and is reported in `Inventory.problems`.
- `capacity` is PTUs for provisioned types and thousands of tokens per minute (K TPM) for the others: the unit of
  Azure's own `sku.capacity`, so `capacity: 450` on a Global Standard deployment is 450,000 TPM.
- `region` is the ARM location of the account (`eastus`, `swedencentral`), lower case without spaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from collector.cost.attribution import DeploymentInfo
from collector.cost.pricing import DEPLOYMENT_TYPES, PROVISIONED_TYPES
from collector.workspace.demo import DEMO_ORG, Organisation
from collector.yamlfile import Loc, Located, read_located_yaml

#: Azure's deployment SKU names (`sku.name` of Microsoft.CognitiveServices/accounts/deployments) -> our types.
AZURE_SKUS: Mapping[str, str] = {
    "GlobalStandard": "GlobalStandard",
    "DataZoneStandard": "DataZoneStandard",
    "Standard": "Standard",
    "GlobalBatch": "GlobalBatch",
    "DataZoneBatch": "DataZoneBatch",
    "GlobalProvisionedManaged": "GlobalProvisioned",
    "DataZoneProvisionedManaged": "DataZoneProvisioned",
    "ProvisionedManaged": "ProvisionedManaged",
}
#: Real Azure SKUs the price book has no deployment type for yet.
UNPRICED_SKUS: tuple[str, ...] = ("DeveloperTier",)
FIELDS = ("account", "name", "model", "version", "type", "region", "capacity", "owner_team", "tags")
REQUIRED = ("account", "name", "model", "type")
#: Azure's rule for account names (the SDK checks it too).
_ACCOUNT = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{1,63}")
_REGION = re.compile(r"[a-z0-9]+")

Key = tuple[str, str]


def deployment_type_of_sku(sku: str) -> str | None:
    """Our deployment type for an Azure SKU name (case-insensitive), or None when the price book has none."""
    return next((ours for name, ours in AZURE_SKUS.items() if name.lower() == sku.lower()), None)


def unknown_sku_message(sku: str) -> str:
    """Why a SKU has no type, and what to do: named the same wherever a SKU comes from (Azure or the file)."""
    if sku in UNPRICED_SKUS:
        return (f"Azure SKU {sku!r} has no deployment type in the price book (collector/cost/pricing.py) yet; its "
                "usage is flagged unpriced")
    return (f"unknown Azure SKU {sku!r} (known: {', '.join([*AZURE_SKUS, *UNPRICED_SKUS])}); its usage is flagged "
            "unpriced")


@dataclass(frozen=True)
class InventoryProblem:
    """Something a source could not map for one deployment (an unknown SKU); the deployment is kept regardless."""

    account: str
    deployment: str
    message: str

    def __str__(self) -> str:
        return f"deployment {self.deployment} on account {self.account}: {self.message}"


def _normalised(info: DeploymentInfo) -> DeploymentInfo:
    return replace(info, account=info.account.lower(), tags=dict(info.tags))


@dataclass(frozen=True)
class Inventory:
    """Deployments keyed by (lower-case account, deployment name), and the problems met while building them.

    Build one with `Inventory.of(...)`, which lower-cases the accounts; a later record of the same deployment
    replaces an earlier one.
    """

    entries: Mapping[Key, DeploymentInfo] = field(default_factory=dict)
    problems: tuple[InventoryProblem, ...] = ()

    @classmethod
    def of(cls, deployments: Iterable[DeploymentInfo], problems: Iterable[InventoryProblem] = ()) -> Inventory:
        entries: dict[Key, DeploymentInfo] = {}
        for info in deployments:
            info = _normalised(info)
            entries[(info.account, info.name)] = info
        return cls(entries, tuple(replace(p, account=p.account.lower()) for p in problems))

    def get(self, account: str, deployment: str) -> DeploymentInfo | None:
        """The deployment, whatever the case of `account` (rollups say `CONTOSO-AOAI-EUS`, ARM `contoso-aoai-eus`)."""
        return self.entries.get((account.lower(), deployment))

    def deployments(self) -> tuple[DeploymentInfo, ...]:
        """Every deployment, sorted by account and name."""
        return tuple(self.entries[key] for key in sorted(self.entries))

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key)
                and (key[0].lower(), key[1]) in self.entries)


def merge(*inventories: Inventory) -> Inventory:
    """One inventory from several, a later one replacing an earlier one's record of a deployment whole (so the
    file, merged last, wins over Azure). A problem about a deployment that a later source replaced is dropped."""
    entries: dict[Key, DeploymentInfo] = {}
    problems: list[InventoryProblem] = []
    for inventory in inventories:
        problems = [p for p in problems if (p.account, p.deployment) not in inventory.entries]
        entries.update(inventory.entries)
        problems.extend(inventory.problems)
    return Inventory(entries, tuple(problems))


# -- the demo organisation ---------------------------------------------------------------------------------------


def demo_inventory(org: Organisation = DEMO_ORG) -> Inventory:
    """The demo organisation's deployments, as the embedded workspace's traffic has them (no tags: Contoso's
    ownership lives in `owner_team`)."""
    regions = {a.name: a.region for a in org.accounts}
    return Inventory.of(
        DeploymentInfo(d.account, d.name, d.model, d.model_version, d.deployment_type, regions.get(d.account),
                       d.capacity, d.owner_team, {})
        for d in org.deployments)


# -- the file ----------------------------------------------------------------------------------------------------


def _optional_text(at: Located, value: Any, loc: Loc) -> str | None:
    if value is None:
        return None
    if isinstance(value, date):  # YAML reads an unquoted 2024-11-20 as a date
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool):  # version: 1
        return str(value)
    return at.text(value, loc)


def _deployment_type(at: Located, value: Any, loc: Loc) -> str | None:
    if isinstance(value, str) and value in DEPLOYMENT_TYPES:
        return value
    if isinstance(value, str) and (ours := deployment_type_of_sku(value)) is not None:
        return ours  # Azure's SKU name, as `az cognitiveservices account deployment list` shows it
    if isinstance(value, str) and value in UNPRICED_SKUS:
        at.add(loc, unknown_sku_message(value), "leave the deployment out until the price book has the type")
        return None
    return at.choice(value, loc, DEPLOYMENT_TYPES)


def _tags(at: Located, value: Any, loc: Loc) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        at.add(loc, "must be a mapping of tag name to value")
        return {}
    tags: dict[str, str] = {}
    for name, tag in value.items():
        if isinstance(tag, str) or (isinstance(tag, int) and not isinstance(tag, bool)):
            tags[str(name)] = str(tag)
        else:
            at.add((*loc, str(name)), f"tag values are text, not {tag!r}", "quote the value")
    return tags


def _capacity(at: Located, value: Any, loc: Loc, provisioned: bool) -> int | None:
    if value is None:
        if provisioned:
            at.add(loc, "a provisioned deployment needs its capacity in PTUs", "write e.g. `capacity: 50`")
            return None
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        unit = "PTUs" if provisioned else "thousands of tokens per minute (K TPM)"
        at.add(loc, f"{value!r} is not a whole number of {unit}")
        return None
    if provisioned and value == 0:
        at.add(loc, "a provisioned deployment has at least 1 PTU")
        return None
    return value


def _account(at: Located, value: Any, loc: Loc) -> str | None:
    text = at.text(value, loc)
    if text is None:
        return None
    if "/" in text:
        last = text.rstrip("/").rsplit("/", 1)[-1]
        at.add(loc, f"{text!r} is not an account name", f"write the last part of the ARM id: {last!r}")
        return None
    if not _ACCOUNT.fullmatch(text):
        at.add(loc, f"{text!r} is not an account name (2 to 64 letters, digits, '_', '.', '-')")
        return None
    return text.lower()


def _region(at: Located, value: Any, loc: Loc) -> str | None:
    text = _optional_text(at, value, loc)
    if text is None or _REGION.fullmatch(text):
        return text
    at.add(loc, f"{text!r} is not an ARM location", f"write {text.lower().replace(' ', '')!r}")
    return None


def _entry(at: Located, raw: Any, loc: Loc) -> DeploymentInfo | None:
    entry = at.mapping(raw, loc, FIELDS, REQUIRED)
    if not entry:
        return None
    before = len(at.problems)
    account = _account(at, entry["account"], (*loc, "account")) if "account" in entry else None
    name = at.text(entry["name"], (*loc, "name")) if "name" in entry else None
    model = at.text(entry["model"], (*loc, "model")) if "model" in entry else None
    dtype = _deployment_type(at, entry["type"], (*loc, "type")) if "type" in entry else None
    version = _optional_text(at, entry.get("version"), (*loc, "version"))
    region = _region(at, entry.get("region"), (*loc, "region"))
    capacity = _capacity(at, entry.get("capacity"), (*loc, "capacity"), dtype in PROVISIONED_TYPES)
    owner = _optional_text(at, entry.get("owner_team"), (*loc, "owner_team"))
    tags = _tags(at, entry.get("tags"), (*loc, "tags"))
    if len(at.problems) > before or account is None or name is None or model is None or dtype is None \
            or capacity is None:
        return None
    return DeploymentInfo(account, name, model, version, dtype, region, capacity, owner or "", tags)


def load_inventory_file(path: Path) -> Inventory:
    """Read and check a deployments file; every problem in it is reported at once, with its line.

    The file is a mapping with one key, `deployments`: a list of entries with `account`, `name`, `model`, `type`
    (required), `version`, `region`, `capacity`, `owner_team` and `tags`. See examples/inventory.yaml.
    """
    data, lines, problems = read_located_yaml(path, "deployments file")
    at = Located(path, lines, problems)
    top = at.mapping(data, (), ("deployments",), ("deployments",))
    raw = top.get("deployments") or []
    if not isinstance(raw, list):
        at.add(("deployments",), "must be a list of deployments")
        raw = []
    found: list[DeploymentInfo] = []
    first: dict[Key, int] = {}
    for i, item in enumerate(raw):
        info = _entry(at, item, ("deployments", i))
        if info is None:
            continue
        key = (info.account, info.name)
        if key in first:
            at.add(("deployments", i), f"deployment {info.name!r} on account {info.account!r} is already given at "
                                       f"deployments[{first[key]}]", "keep one of them")
            continue
        first[key] = i
        found.append(info)
    at.raise_if_any("deployments file")
    return Inventory.of(found)
