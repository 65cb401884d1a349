"""The named things rules refer to: Azure OpenAI accounts, their model deployments, and action groups."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from alerts.yamlfile import Loc, YamlFile, did_you_mean, dotted

# ARM ids are case-insensitive (reference §5: ARM "may change casing of ids").
ACCOUNT_ID = re.compile(r"/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.CognitiveServices/"
                        r"accounts/([^/]+)", re.IGNORECASE)
ACTION_GROUP_ID = re.compile(r"/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Insights/"
                             r"actionGroups/([^/]+)", re.IGNORECASE)
_REGION = re.compile(r"[a-z0-9]+")

ACCOUNT_KEYS = ("id", "region")
DEPLOYMENT_KEYS = ("account", "deployment_name", "tpm", "ptu")
ACTION_GROUP_KEYS = ("id", "webhook_properties")


@dataclass(frozen=True)
class Account:
    """An Azure OpenAI account (a Microsoft.CognitiveServices/accounts resource) that rules can name as a scope."""

    name: str
    resource_id: str
    subscription_id: str
    resource_group: str
    region: str | None
    origin: str


@dataclass(frozen=True)
class Deployment:
    """A model deployment in an account; `tpm` (standard) or `ptu` (provisioned) says what capacity it has."""

    key: str
    account: str
    deployment_name: str
    tpm: int | None
    ptu: int | None
    origin: str


@dataclass(frozen=True)
class ActionGroup:
    """An action group rules can name, with the custom webhook properties sent with each alert."""

    name: str
    resource_id: str
    webhook_properties: tuple[tuple[str, str], ...]
    origin: str


@dataclass
class Inventory:
    """Accounts, deployments and action groups from all files, each name defined once."""

    accounts: dict[str, Account] = field(default_factory=dict)
    deployments: dict[str, Deployment] = field(default_factory=dict)
    action_groups: dict[str, ActionGroup] = field(default_factory=dict)


class _Named(Protocol):
    @property
    def origin(self) -> str: ...


T = TypeVar("T", bound=_Named)


def _read_section(files: list[YamlFile], section: str, what: str,
                  read: Callable[[YamlFile, Loc, str, object], T | None]) -> dict[str, tuple[T, YamlFile, Loc]]:
    """One section from every file; a name defined twice is reported at the second place, naming the first."""
    table: dict[str, tuple[T, YamlFile, Loc]] = {}
    for file in files:
        if not isinstance(file.data, dict) or file.data.get(section) is None:
            continue
        for name, value in (file.mapping((section,), file.data[section]) or {}).items():
            loc = (section, name)
            item = read(file, loc, name, value)
            if item is None:
                continue
            if name in table:
                file.problem(loc, f"{what} {name!r} is defined twice (also at {table[name][0].origin})",
                             "keep one definition")
            else:
                table[name] = (item, file, loc)
    return table


def _account(file: YamlFile, loc: Loc, name: str, value: object) -> Account | None:
    body = {"id": value} if isinstance(value, str) else file.mapping(loc, value, ACCOUNT_KEYS)
    if body is None:
        return None
    if "id" not in body:
        file.problem(loc, f"account {name!r} needs an id", "id: /subscriptions/<sub>/resourceGroups/<rg>/providers/"
                                                           "Microsoft.CognitiveServices/accounts/<name>")
        return None
    id_loc = loc if isinstance(value, str) else (*loc, "id")
    resource_id = file.text(id_loc, body["id"])
    match = ACCOUNT_ID.fullmatch(resource_id) if resource_id else None
    if resource_id and match is None:
        file.problem(id_loc, f"account {name!r}: {resource_id!r} is not the ARM id of an Azure OpenAI account",
                     "expected /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.CognitiveServices/"
                     "accounts/<name>")
    region = None
    if "region" in body:
        region = file.text((*loc, "region"), body["region"])
        if region is not None and not _REGION.fullmatch(region.lower()):
            file.problem((*loc, "region"), f"region {region!r} is not an Azure region name",
                         "e.g. eastus, swedencentral")
    if resource_id is None or match is None:
        return None
    return Account(name, resource_id, match[1].lower(), match[2].lower(), region.lower() if region else None,
                   file.where(loc))


def _deployment(file: YamlFile, loc: Loc, key: str, value: object) -> Deployment | None:
    body = {"account": value} if isinstance(value, str) else file.mapping(loc, value, DEPLOYMENT_KEYS)
    if body is None:
        return None
    if "account" not in body:
        file.problem(loc, f"deployment {key!r} needs an account", "account: <a name under accounts:>")
        return None
    account = file.text(loc if isinstance(value, str) else (*loc, "account"), body["account"])
    name = file.text((*loc, "deployment_name"), body["deployment_name"]) if "deployment_name" in body else key
    tpm = file.whole((*loc, "tpm"), body["tpm"], 1) if "tpm" in body else None
    ptu = file.whole((*loc, "ptu"), body["ptu"], 1) if "ptu" in body else None
    if "tpm" in body and "ptu" in body:
        file.problem(loc, f"deployment {key!r} gives both tpm and ptu",
                     "tpm is the tokens-per-minute quota of a standard deployment, ptu the units of a provisioned one")
    if account is None or name is None:
        return None
    return Deployment(key, account, name, tpm, ptu, file.where(loc))


def _action_group(file: YamlFile, loc: Loc, name: str, value: object) -> ActionGroup | None:
    body = {"id": value} if isinstance(value, str) else file.mapping(loc, value, ACTION_GROUP_KEYS)
    if body is None:
        return None
    if "id" not in body:
        file.problem(loc, f"action group {name!r} needs an id")
        return None
    id_loc = loc if isinstance(value, str) else (*loc, "id")
    resource_id = file.text(id_loc, body["id"])
    if resource_id and not ACTION_GROUP_ID.fullmatch(resource_id):
        file.problem(id_loc, f"action group {name!r}: {resource_id!r} is not the ARM id of an action group",
                     "expected /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Insights/"
                     "actionGroups/<name>")
        return None
    props: list[tuple[str, str]] = []
    if "webhook_properties" in body:
        mapping = file.mapping((*loc, "webhook_properties"), body["webhook_properties"]) or {}
        for key, item in mapping.items():
            text = file.text((*loc, "webhook_properties", key), item)
            if text is not None:
                props.append((key, text))
    return ActionGroup(name, resource_id, tuple(sorted(props)), file.where(loc)) if resource_id else None


def read_inventory(files: list[YamlFile]) -> Inventory:
    """Collect every file's accounts, deployments and action groups; deployments must name known accounts."""
    accounts = _read_section(files, "accounts", "account", _account)
    deployments = _read_section(files, "deployments", "deployment", _deployment)
    action_groups = _read_section(files, "action_groups", "action group", _action_group)
    inventory = Inventory({k: v[0] for k, v in accounts.items()}, {}, {k: v[0] for k, v in action_groups.items()})
    for key, (deployment, file, loc) in deployments.items():
        if deployment.account in inventory.accounts:
            inventory.deployments[key] = deployment
        else:
            file.problem((*loc, "account"), f"{dotted(loc)}: unknown account {deployment.account!r}",
                         did_you_mean(deployment.account, inventory.accounts))
    return inventory
