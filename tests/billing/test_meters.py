"""The meter reader over real Azure OpenAI skuName / meterName spellings.

Where the names come from (public code that copies them from the Retail Prices API or from Cost Management exports):
- INFRACOST: infracost/infracost `internal/resources/azure/cognitive_deployment.go` (skuNames per model, version and
  deployment type, including the `Az-` embedding SKUs and the provisioned `Provisioned Managed ...` SKUs).
- SEED: a Retail Prices seed script (find_string id 70244836984) listing meterNames per deployment type, including
  Data Zone batch (`gpt 4o 1120 Batch Inp DZ Tokens`) and the GPT5 product's `... Inpt Glbl 1M Tokens`.
- CATALOG: a Python catalogue's test of "meter names copied verbatim from the Azure retail price API" (find_string
  id 68688449308): `5.4 pp inp Gl 1M Tokens`, `gpt-5-codex-ccchd-inp-glbl Tokens`, `Provisioned Managed Global Unit`.
- EASTUS2: a TypeScript test of "items from the Retail Prices API, eastus2" (find_string id 71582606803).
- PARSER: a meter-name parser's docstring of real meters in one region (find_string id 71604050403) and another's
  (id 53710279117): `gpt 4o mini dev ft cchd inpt glbl Tokens`, `o4-mini 0416 Batch Inp Data Zone`.
- BILL: azure-telemetry.md §9 (Cost Management meter names = skuName + " Tokens").
"""

from __future__ import annotations

import pytest

from collector.billing.meters import (
    DEPLOYMENT_TYPES,
    KINDS,
    PROVISIONED_TYPES,
    MeterKey,
    block_size,
    counts_hours,
    parse_meter,
    unmapped_reason,
    words_of,
)

GS, DZ, STD, GB, DZB = "GlobalStandard", "DataZoneStandard", "Standard", "GlobalBatch", "DataZoneBatch"
IN, CACHED, OUT = "input", "cached_input", "output"

MAPPED = [
    # BILL
    ("gpt 4o 1120 Inp glbl Tokens", MeterKey("gpt-4o", "2024-11-20", GS, IN)),
    ("gpt 4o 1120 cached Inp glbl Tokens", MeterKey("gpt-4o", "2024-11-20", GS, CACHED)),
    ("gpt 4o 1120 Outp glbl Tokens", MeterKey("gpt-4o", "2024-11-20", GS, OUT)),
    ("gpt-4o-mini-0718-Inp-glbl Tokens", MeterKey("gpt-4o-mini", "2024-07-18", GS, IN)),
    ("gpt 4.1 Inp Data Zone Tokens", MeterKey("gpt-4.1", None, DZ, IN)),
    # INFRACOST (skuNames: no " Tokens")
    ("gpt 4o 0513 Input global", MeterKey("gpt-4o", "2024-05-13", GS, IN)),
    ("gpt 4o 0513 Output regional", MeterKey("gpt-4o", "2024-05-13", STD, OUT)),
    ("gpt 4o 0513 Input Data Zone", MeterKey("gpt-4o", "2024-05-13", DZ, IN)),
    ("gpt 4o 0513 Batch Outp Data Zone", MeterKey("gpt-4o", "2024-05-13", DZB, OUT)),
    ("gpt-4o-0806-Inp-glbl", MeterKey("gpt-4o", "2024-08-06", GS, IN)),
    ("gpt-4o-0806-Outp-regnl", MeterKey("gpt-4o", "2024-08-06", STD, OUT)),
    ("gpt 4o 0806 cached Inp regnl", MeterKey("gpt-4o", "2024-08-06", STD, CACHED)),
    ("gpt-4o-0806-Batch-Inp-glbl", MeterKey("gpt-4o", "2024-08-06", GB, IN)),
    ("gpt 4o 1120 Batch Outp Data Zone", MeterKey("gpt-4o", "2024-11-20", DZB, OUT)),
    ("gpt 4o mini 0718 cached Inp Data Zone", MeterKey("gpt-4o-mini", "2024-07-18", DZ, CACHED)),
    ("gpt 4o mini0718 BatchOutp DataZone", MeterKey("gpt-4o-mini", "2024-07-18", DZB, OUT)),
    ("gpt-4o-mini-0718-Batch-Outp-glbl", MeterKey("gpt-4o-mini", "2024-07-18", GB, OUT)),
    ("gpt 4.5 0227 cached Inp DZone", MeterKey("gpt-4.5-preview", "2025-02-27", DZ, CACHED)),
    ("gpt 4.5 0227 Batch Inp glbl", MeterKey("gpt-4.5-preview", "2025-02-27", GB, IN)),
    ("o1 mini input glbl", MeterKey("o1-mini", None, GS, IN)),
    ("o1 mini cached input Data Zone", MeterKey("o1-mini", None, DZ, CACHED)),
    ("o1 1217 Outp regnl", MeterKey("o1", "2024-12-17", STD, OUT)),
    ("o1 1217 Batch Inp Data Zone", MeterKey("o1", "2024-12-17", DZB, IN)),
    ("o3 mini 0131 cached input glbl", MeterKey("o3-mini", "2025-01-31", GS, CACHED)),
    ("o3 mini 0131 output Data Zone", MeterKey("o3-mini", "2025-01-31", DZ, OUT)),
    ("Provisioned Managed Global", MeterKey("*", None, "GlobalProvisioned", "ptu_hour")),
    ("Provisioned Managed Data Zone", MeterKey("*", None, "DataZoneProvisioned", "ptu_hour")),
    ("Provisioned Managed Regional", MeterKey("*", None, "ProvisionedManaged", "ptu_hour")),
    # SEED (meterNames)
    ("gpt 4o 1120 Batch Inp DZ Tokens", MeterKey("gpt-4o", "2024-11-20", DZB, IN)),
    ("gpt 4.1 mini cached Inp DZone Tokens", MeterKey("gpt-4.1-mini", None, DZ, CACHED)),
    ("gpt 4.1 nano Outp regnl Tokens", MeterKey("gpt-4.1-nano", None, STD, OUT)),
    ("o3 0416 Inp Data Zone Tokens", MeterKey("o3", "2025-04-16", DZ, IN)),
    ("o4-mini 0416 cached Inp DataZone Tokens", MeterKey("o4-mini", "2025-04-16", DZ, CACHED)),
    ("GPT 5 Inpt Glbl 1M Tokens", MeterKey("gpt-5", None, GS, IN)),
    ("GPT 5 Mini outpt DZone 1M Tokens", MeterKey("gpt-5-mini", None, DZ, OUT)),
    ("GPT 5 Nano cchd Inpt Glbl 1M Tokens", MeterKey("gpt-5-nano", None, GS, CACHED)),
    ("GPT 5 Batch Inpt cchd Dzone 1M Tokens", MeterKey("gpt-5", None, DZB, CACHED)),
    ("text-embedding-3-large-glbl Tokens", MeterKey("text-embedding-3-large", None, GS, IN)),
    ("text embedding 3 small DZ Tokens", MeterKey("text-embedding-3-small", None, DZ, IN)),
    ("text-embedding-3-small-regional Tokens", MeterKey("text-embedding-3-small", None, STD, IN)),
    ("embedding-ada-datazone Tokens", MeterKey("text-embedding-ada-002", None, DZ, IN)),
    ("Provisioned Managed Data Zone Unit", MeterKey("*", None, "DataZoneProvisioned", "ptu_hour")),
    # CATALOG
    ("gpt 4.1 Inp regnl Tokens", MeterKey("gpt-4.1", None, STD, IN)),
    ("5.1 cd inp Dz 1M Tokens", MeterKey("gpt-5.1", None, DZ, CACHED)),
    ("gpt 5 pro out glbl Tokens", MeterKey("gpt-5-pro", None, GS, OUT)),
    ("gpt-5-codex-ccchd-inp-glbl Tokens", MeterKey("gpt-5-codex", None, GS, CACHED)),
    ("Provisioned Managed Global Unit", MeterKey("*", None, "GlobalProvisioned", "ptu_hour")),
    # EASTUS2 and PARSER
    ("5.4 mini cd Inp Gl", MeterKey("gpt-5.4-mini", None, GS, CACHED)),
    ("5.4 mini Batch Inp Gl", MeterKey("gpt-5.4-mini", None, GB, IN)),
    ("o3 0416 Outp glbl", MeterKey("o3", "2025-04-16", GS, OUT)),
    ("5.1 codex mini cd inp Gl 1M Tokens", MeterKey("gpt-5.1-codex-mini", None, GS, CACHED)),
    ("o4-mini 0416 Batch Inp Data Zone", MeterKey("o4-mini", "2025-04-16", DZB, IN)),
    # our own normalisation cases (spellings the brief names)
    ("GPT-4.1 Inp glbl", MeterKey("gpt-4.1", None, GS, IN)),
    ("gpt 4o Inp glbl", MeterKey("gpt-4o", None, GS, IN)),
]

UNMAPPED = [
    # (name, a word of the reason)
    ("Az-Text-Embedding-3-Large Tokens", "no deployment type"),  # BILL / INFRACOST: the name has no scope
    ("Az-Embeddings-Ada", "no deployment type"),  # INFRACOST
    ("gpt-35-turbo4K-Inp-glbl", "unknown model"),  # INFRACOST: the context size is in the model part
    ("gpt-4-turbo128K Inp-glbl", "unknown model"),  # INFRACOST
    ("computer-use-inpt-glbl", "unknown model"),  # INFRACOST
    ("R1 Inp glbl Tokens", "unknown model"),  # SEED: DeepSeek, not Azure OpenAI
    ("Llama 3.3 70B Inp glbl Tokens", "unknown model"),  # SEED
    ("chat-latest 08062026 inp Gl", "unknown model"),  # EASTUS2
    ("gpt-4o-aud-1217 Inp glbl", "audio"),  # EASTUS2
    ("gpt-4o-rt-txt-1217 cchd Inp glbl", "realtime"),  # INFRACOST
    ("gpt4o realtimePrvwAudInp DataZone", "realtime"),  # INFRACOST: words run together
    ("gpt 4o mini dev ft cchd inpt glbl Tokens", "fine-tuning"),  # PARSER
    ("o4 mini ft hosting Dz", "fine-tuning"),  # EASTUS2
    ("o4-mini-ft model grader output Tokens", "fine-tuning"),  # CATALOG
    ("5.4 pp inp Gl 1M Tokens", "priority"),  # CATALOG
    ("54 mini Inp Flex Gl", "flex"),  # EASTUS2
    ("5.4 longco inp Gl", "long-context"),  # EASTUS2
    ("6-sol ShortCo Cd Wr Std Gl", "cache-write"),  # EASTUS2
    ("Code-Interpreter-global", "tool"),  # EASTUS2
    ("Sora 2 pro glbl Second", "unknown model"),  # CATALOG
    ("gpt-transcribe Gl Unit", "transcription"),  # CATALOG
    ("Provisioned Managed Unit", "provisioned meter"),  # made up: a provisioned meter without a scope
    ("gpt 4o 1120 Batch Inp regnl Tokens", "regional"),  # made up: Azure sells no regional batch
    ("gpt 4o 1120 glbl Tokens", "no token kind"),  # made up: a chat model without a direction
    ("gpt 4o 1120 Inp glbl regnl Tokens", "two deployment types"),  # made up
    ("gpt 4o 1120 Inp extra glbl Tokens", "unknown word"),  # made up
    ("", "empty"),
]


@pytest.mark.parametrize(("name", "key"), MAPPED, ids=[n for n, _ in MAPPED])
def test_real_meter_names_map_to_model_version_type_and_kind(name: str, key: MeterKey) -> None:
    assert parse_meter(name) == key
    assert unmapped_reason(name) is None


@pytest.mark.parametrize(("name", "reason"), UNMAPPED, ids=[n or "empty" for n, _ in UNMAPPED])
def test_unmappable_names_come_back_none_with_a_reason(name: str, reason: str) -> None:
    assert parse_meter(name) is None
    why = unmapped_reason(name)
    assert why is not None and reason in why, why


def test_a_sku_name_and_its_meter_name_read_the_same() -> None:
    for name, key in MAPPED:
        if not name.endswith(" Tokens") and not name.endswith(" Unit"):
            suffix = " Unit" if name.startswith("Provisioned") else " Tokens"
            assert parse_meter(name + suffix) == key, name


def test_case_and_separators_do_not_matter() -> None:
    assert parse_meter("GPT-4O-MINI-0718-INP-GLBL TOKENS") == parse_meter("gpt 4o mini 0718 inp glbl tokens")
    assert words_of("gpt 4o mini0718 BatchOutp DataZone") == ["gpt", "4o", "mini", "0718", "batch", "outp", "data",
                                                               "zone"]


def test_a_version_no_source_pairs_keeps_its_short_form() -> None:
    key = parse_meter("gpt 4o 0901 Inp glbl Tokens")
    assert key is not None and key.version == "0901"


def test_every_mapped_key_uses_our_names() -> None:
    for _, key in MAPPED:
        assert key.deployment_type in DEPLOYMENT_TYPES and key.kind in KINDS
        assert (key.kind == "ptu_hour") == (key.deployment_type in PROVISIONED_TYPES) == (key.model == "*")


@pytest.mark.parametrize(("unit", "block", "hours"), [
    ("1K", 1_000, False), ("1M", 1_000_000, False), ("1 Hour", 1, True), ("1/Hour", 1, True),
    ("100 Hours", 100, True), ("10K", 10_000, False), ("1 Million", 1, False), ("1", 1, False),
])
def test_block_sizes_follow_the_finops_toolkit_pricing_units(unit: str, block: int, hours: bool) -> None:
    assert block_size(unit) == block
    assert counts_hours(unit) is hours


@pytest.mark.parametrize("unit", ["", "1.5K", "0K", "-1K"])
def test_a_unit_that_cannot_be_read_is_refused(unit: str) -> None:
    with pytest.raises(ValueError, match="unit of measure"):
        block_size(unit)
