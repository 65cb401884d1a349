"""The deployment inventory: the file (golden, located problems, fuzz), the demo organisation, merging, lookups."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.config import MetricsSourceSettings, load_settings
from collector.cost.attribution import DeploymentInfo
from collector.cost.inventories import build_inventory
from collector.cost.inventory import (
    AZURE_SKUS,
    Inventory,
    InventoryProblem,
    demo_inventory,
    deployment_type_of_sku,
    load_inventory_file,
    merge,
)
from collector.cost.pricing import DEPLOYMENT_TYPES, PROVISIONED_TYPES
from collector.errors import InputError
from collector.workspace.demo import DEMO_ORG

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "inventory.yaml"


def write(tmp_path: Path, text: str, name: str = "deployments.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _get(inventory: Inventory, account: str, name: str) -> DeploymentInfo:
    found = inventory.get(account, name)
    assert found is not None, (account, name)
    return found


# -- the file ----------------------------------------------------------------------------------------------------

GOLDEN = """\
deployments:
  - account: Contoso-AOAI-EUS
    name: chat
    model: gpt-4o
    version: 2024-11-20
    type: GlobalStandard
    region: eastus
    capacity: 450
    owner_team: platform
    tags: {cost-center: CC-0900, tier: 2}
  - account: contoso-aoai-swc
    name: embed
    model: text-embedding-3-small
    version: 1
    type: Standard
  - account: contoso-aoai-swc
    name: ptu
    model: gpt-4.1
    type: DataZoneProvisionedManaged
    capacity: 15
"""


def test_a_deployments_file_reads_as_written(tmp_path: Path) -> None:
    inventory = load_inventory_file(write(tmp_path, GOLDEN))
    assert inventory.deployments() == (
        DeploymentInfo("contoso-aoai-eus", "chat", "gpt-4o", "2024-11-20", "GlobalStandard", "eastus", 450,
                       "platform", {"cost-center": "CC-0900", "tier": "2"}),
        DeploymentInfo("contoso-aoai-swc", "embed", "text-embedding-3-small", "1", "Standard", None, 0, "", {}),
        DeploymentInfo("contoso-aoai-swc", "ptu", "gpt-4.1", None, "DataZoneProvisioned", None, 15, "", {}),
    )
    assert inventory.problems == ()


def test_the_example_file_describes_the_demo_deployments() -> None:
    inventory = load_inventory_file(EXAMPLE)
    assert len(inventory) == 2
    assert any(d.deployment_type in PROVISIONED_TYPES and d.tags for d in inventory.deployments())
    for entry in inventory.deployments():
        demo = DEMO_ORG.deployment(entry.account, entry.name)
        assert (entry.model, entry.version, entry.deployment_type, entry.capacity, entry.owner_team) == (
            demo.model, demo.model_version, demo.deployment_type, demo.capacity, demo.owner_team)
        assert entry.region == DEMO_ORG.account(entry.account).region


BAD = """\
deployments:
  - account: /subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/aoai
    name: a
    modle: gpt-4o
    type: GlobalStandrd
  - account: aoai
    name: b
    model: gpt-4o
    type: ProvisionedManaged
    region: East US
  - account: aoai
    name: c
    model: gpt-4o
    type: DeveloperTier
    capacity: lots
    tags:
      team: [a, b]
  - account: AOAI
    name: d
    model: gpt-4o
    type: Standard
  - account: aoai
    name: d
    model: gpt-4o
    type: Standard
  - account: aoai
    model: gpt-4o
    type: Standard
  - just text
"""


def test_every_problem_is_reported_at_once_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    with pytest.raises(InputError) as caught:
        load_inventory_file(path)
    found = [(p.line, p.message, p.hint) for p in caught.value.problems]
    assert all(p.path == path for p in caught.value.problems)
    assert (2, "deployments[0].account: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/"
               "accounts/aoai' is not an account name", "write the last part of the ARM id: 'aoai'") in found
    assert (4, "deployments[0].modle: unknown key", "did you mean 'model'?") in found
    assert (2, "deployments[0]: 'model' is required", "") in found
    assert (5, "deployments[0].type: 'GlobalStandrd' is not allowed", "did you mean 'GlobalStandard'?") in found
    assert (6, "deployments[1].capacity: a provisioned deployment needs its capacity in PTUs",
            "write e.g. `capacity: 50`") in found
    assert (10, "deployments[1].region: 'East US' is not an ARM location", "write 'eastus'") in found
    assert any(line == 14 and "'DeveloperTier' has no deployment type in the price book" in message
               for line, message, _ in found)
    assert (15, "deployments[2].capacity: 'lots' is not a whole number of thousands of tokens per minute (K TPM)",
            "") in found
    assert (17, "deployments[2].tags.team: tag values are text, not ['a', 'b']", "quote the value") in found
    assert (22, "deployments[4]: deployment 'd' on account 'aoai' is already given at deployments[3]",
            "keep one of them") in found
    assert (26, "deployments[5]: 'name' is required", "") in found
    assert (29, "deployments[6]: must be a mapping", "") in found
    assert [line for line, _, _ in found] == sorted(line for line, _, _ in found)
    assert "problem(s) in the deployments file" in str(caught.value)


@pytest.mark.parametrize(("text", "line", "message"), [
    ("- account: a\n", 1, "must be a mapping"),
    ("deployment: []\n", 1, "deployment: unknown key"),
    ("deployments: {a: 1}\n", 1, "deployments: must be a list of deployments"),
    ("deployments:\n  - account: a\n    name: x\n    model: m\n    type: GlobalStandard\n    capacity: -1\n", 6,
     "deployments[0].capacity: -1 is not a whole number"),
    ("deployments:\n  - {account: a1, name: x, model: m, type: GlobalProvisioned, capacity: 0}\n", 2,
     "deployments[0].capacity: a provisioned deployment has at least 1 PTU"),
    ("deployments:\n  - {account: a1, name: x, model: m, type: Standard}\n  - {account: a1, name: x, model: m, "
     "type: Standard\n", 4, "invalid YAML"),
])
def test_shapes_that_are_refused(tmp_path: Path, text: str, line: int, message: str) -> None:
    with pytest.raises(InputError) as caught:
        load_inventory_file(write(tmp_path, text))
    assert any(p.line == line and message in p.message for p in caught.value.problems), caught.value.problems


def test_a_missing_file_is_one_problem(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_inventory_file(tmp_path / "nope.yaml")
    assert [p.message for p in caught.value.problems] == ["deployments file not found"]


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=6),
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "account": st.sampled_from(["aoai", "AOAI", "a", "x/y", "ok-account"]),
    "name": st.sampled_from(["gpt-4o", "d", ""]),
    "model": st.sampled_from(["gpt-4o", "o4-mini"]),
    "version": st.sampled_from(["2024-11-20", "1"]),
    "type": st.sampled_from([*DEPLOYMENT_TYPES, *AZURE_SKUS, "DeveloperTier", "Global", "standard"]),
    "region": st.sampled_from(["eastus", "East US", "swedencentral"]),
    "capacity": st.integers(-1, 2000),
    "owner_team": st.sampled_from(["platform", ""]),
    "tags": st.dictionaries(st.sampled_from(["team", "cost-center"]), st.one_of(st.text(max_size=4), JUNK),
                            max_size=2),
    "modle": st.just("x"),
}
ENTRY = st.fixed_dictionaries({}, optional={k: st.one_of(v, JUNK) for k, v in VALUES.items()})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.one_of(st.lists(st.one_of(ENTRY, JUNK), max_size=4), JUNK))
def test_generated_files_never_crash(tmp_path: Path, entries: Any) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump({"deployments": entries}), encoding="utf-8")
    try:
        inventory = load_inventory_file(path)
    except InputError as e:
        assert e.problems and all(p.path == path and p.line is not None and p.message for p in e.problems)
    else:
        for entry in inventory.deployments():
            assert entry.account == entry.account.lower() and entry.deployment_type in DEPLOYMENT_TYPES
            assert entry.capacity > 0 or entry.deployment_type not in PROVISIONED_TYPES


# -- SKUs, the demo organisation, lookups and merging --------------------------------------------------------------


def test_every_price_book_type_has_its_azure_sku() -> None:
    assert set(AZURE_SKUS.values()) == set(DEPLOYMENT_TYPES)
    assert deployment_type_of_sku("globalprovisionedmanaged") == "GlobalProvisioned"
    assert deployment_type_of_sku("datazonebatch") == "DataZoneBatch"
    assert deployment_type_of_sku("DeveloperTier") is None


def test_the_demo_inventory_is_the_demo_organisation() -> None:
    inventory = demo_inventory()
    assert len(inventory) == len(DEMO_ORG.deployments)
    for d in DEMO_ORG.deployments:
        entry = inventory.get(d.account.upper(), d.name)
        assert entry == DeploymentInfo(d.account, d.name, d.model, d.model_version, d.deployment_type,
                                       DEMO_ORG.account(d.account).region, d.capacity, d.owner_team, {})
    assert [(d.account, d.name) for d in inventory.deployments()] == sorted(
        (d.account, d.name) for d in DEMO_ORG.deployments)


def test_lookups_ignore_the_case_of_the_account_only() -> None:
    inventory = Inventory.of([DeploymentInfo("Contoso-AOAI-EUS", "GPT-4o", "gpt-4o", None, "GlobalStandard")])
    assert inventory.get("CONTOSO-AOAI-EUS", "GPT-4o") is not None
    assert inventory.get("contoso-aoai-eus", "GPT-4o") == DeploymentInfo("contoso-aoai-eus", "GPT-4o", "gpt-4o", None,
                                                                         "GlobalStandard")
    assert inventory.get("contoso-aoai-eus", "gpt-4o") is None
    assert ("CONTOSO-aoai-eus", "GPT-4o") in inventory and ("x",) not in inventory


def _dep(name: str, capacity: int, account: str = "aoai") -> DeploymentInfo:
    return DeploymentInfo(account, name, "gpt-4o", None, "GlobalStandard", capacity=capacity)


def test_a_later_source_replaces_an_earlier_ones_deployment_whole() -> None:
    demo = Inventory.of([_dep("a", 1), _dep("b", 1)])
    azure = Inventory.of([_dep("b", 2), DeploymentInfo("AOAI", "c", "gpt-4o", None, "", capacity=2)],
                         [InventoryProblem("AOAI", "c", "unknown Azure SKU 'Weird'")])
    file = Inventory.of([DeploymentInfo("aoai", "b", "gpt-4o", "1", "Standard", "eastus", 3, "team", {"t": "v"})])
    merged = merge(demo, azure, file)
    assert [(d.name, d.capacity) for d in merged.deployments()] == [("a", 1), ("b", 3), ("c", 2)]
    assert merged.get("aoai", "b") == file.get("aoai", "b")
    assert [str(p) for p in merged.problems] == ["deployment c on account aoai: unknown Azure SKU 'Weird'"]
    fixed = merge(merged, Inventory.of([DeploymentInfo("aoai", "c", "gpt-4o", None, "GlobalBatch")]))
    assert fixed.problems == () and fixed.get("AOAI", "c") is not None
    assert merge() == Inventory()


# -- from the settings -------------------------------------------------------------------------------------------

ACCOUNT = "/subscriptions/00000000-0000-0000-0000-000000000002/resourceGroups/ai/providers/" \
          "Microsoft.CognitiveServices/accounts/contoso-aoai-eus"


def _settings(tmp_path: Path, inventory: str, env: dict[str, str] | None = None) -> Any:
    write(tmp_path, GOLDEN)
    return load_settings(write(tmp_path, f"""\
        sources:
          - {{name: demo, kind: workspace, path: w.duckdb}}
          - {{name: prod, kind: metrics, accounts: ["{ACCOUNT}"]}}
        {inventory}
        """, "aoai-obs.yaml"), env or {})


def test_the_inventory_the_settings_describe(tmp_path: Path) -> None:
    asked: list[str] = []

    def azure(source: MetricsSourceSettings) -> Inventory:
        asked.append(source.name)
        return Inventory.of([DeploymentInfo("contoso-aoai-eus", "gpt-4o", "gpt-4o", "2024-11-20", "GlobalStandard",
                                            "eastus", 999, "", {"from": "azure"}),
                             DeploymentInfo("contoso-aoai-eus", "chat", "gpt-4o", None, "Standard", capacity=1)])

    settings = _settings(tmp_path, "inventory:\n          file: deployments.yaml")
    assert settings.inventory.file == tmp_path / "deployments.yaml" and settings.inventory.from_azure
    inventory = build_inventory(settings, azure)
    assert asked == ["prod"]
    assert len(inventory) == len(DEMO_ORG.deployments) + 3  # the file's three, one of which Azure also lists
    assert _get(inventory, "CONTOSO-AOAI-EUS", "gpt-4o").capacity == 999
    assert _get(inventory, "contoso-aoai-eus", "chat").capacity == 450
    assert inventory.get("contoso-aoai-swc", "gpt-4.1") == demo_inventory().get("contoso-aoai-swc", "gpt-4.1")


def test_from_azure_off_reads_nothing_from_azure(tmp_path: Path) -> None:
    def azure(source: MetricsSourceSettings) -> Inventory:
        raise AssertionError("Azure was asked")

    settings = _settings(tmp_path, "", {"AOAI_OBS_INVENTORY__FROM_AZURE": "false"})
    assert settings.inventory.file is None and not settings.inventory.from_azure
    assert build_inventory(settings, azure) == demo_inventory()


def test_a_workspace_of_imported_archives_does_not_get_the_demo_deployments(tmp_path: Path) -> None:
    from collector.workspace.engine import Workspace

    Workspace(tmp_path / "w.duckdb").create()  # no generator: what `workspace import` leaves
    settings = _settings(tmp_path, "", {"AOAI_OBS_INVENTORY__FROM_AZURE": "false"})
    assert len(build_inventory(settings)) == 0


def test_inventory_settings_problems_are_located(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        _settings(tmp_path, "inventory:\n          from_azur: false")
    [problem] = caught.value.problems
    assert (problem.line, problem.message, problem.hint) == (
        5, "unknown setting 'from_azur' in inventory", "did you mean 'from_azure'?")
