"""Pure: Azure OpenAI meter names -> model, version, deployment type and token kind (or PTU-hour), and unit blocks.

One reader serves both sides of the bill: the Retail Prices API's `skuName` (`gpt 4o 1120 Inp glbl`) and `meterName`
(`gpt 4o 1120 Inp glbl Tokens`), and the Cost Management export's meter name, which is the same `skuName` + " Tokens"
(azure-telemetry.md §9). Azure spells these names inconsistently (spaces or hyphens, `Inp`/`Input`/`Inpt`,
`cached`/`cchd`/`cd`, `glbl`/`global`/`Gl`, `Data Zone`/`DZone`/`DZ`, words run together as in `mini0718` or
`BatchOutp`), so a name is split into words and each word must be one we know: a name with a word we do not know, a
meter that is not a per-token or per-PTU-hour price (audio, realtime, fine-tuning, priority processing, long
context, ...), or a name without a deployment type comes back unmapped, with the reason, never guessed.

Versions: a meter names a model version by month and day only (`1120`). Where public sources pair that short form
with the ARM model version of the same model (`KNOWN_VERSIONS`), it is given as ARM spells it (`2024-11-20`);
otherwise the short form is kept as it is, since the year cannot be read from the name.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: Our deployment types; "Standard" is regional standard and "ProvisionedManaged" regional provisioned, as ARM's
#: deployment SKU names are.
DEPLOYMENT_TYPES: tuple[str, ...] = (
    "GlobalStandard",
    "DataZoneStandard",
    "Standard",
    "GlobalBatch",
    "DataZoneBatch",
    "GlobalProvisioned",
    "DataZoneProvisioned",
    "ProvisionedManaged",
)
#: Billed per PTU per hour whatever the traffic, and the same for every model: their meters name no model.
PROVISIONED_TYPES: tuple[str, ...] = ("GlobalProvisioned", "DataZoneProvisioned", "ProvisionedManaged")
#: The token kinds a per-token meter charges, named as the price book's rates are (`collector.cost.pricing.RATE_KEYS`),
#: and the kind of a provisioned meter (PTU-hours).
INPUT, CACHED_INPUT, OUTPUT, PTU_HOUR = "input", "cached_input", "output", "ptu_hour"
TOKEN_KINDS: tuple[str, ...] = (INPUT, CACHED_INPUT, OUTPUT)
KINDS: tuple[str, ...] = (*TOKEN_KINDS, PTU_HOUR)
#: A provisioned meter ("Provisioned Managed Global Unit") is not per model: its model is this wildcard.
ANY_MODEL = "*"

#: (model, the meter's MMDD) -> the ARM model version. Pairs taken from public code that maps ARM versions to meter
#: names: infracost `internal/resources/azure/cognitive_deployment.go` (gpt-4o 0513/0806/1120, gpt-4o-mini 0718,
#: o1 1217, o3-mini 0131, gpt-4.5-preview 0227) and a Retail Prices seed script pairing o3 0416 and o4-mini
#: 0416 with 2025-04-16 (the versions ARM lists for those models, e.g. robertZaufall/Terraform-Azure-OpenAI).
KNOWN_VERSIONS: Mapping[tuple[str, str], str] = {
    ("gpt-4o", "0513"): "2024-05-13",
    ("gpt-4o", "0806"): "2024-08-06",
    ("gpt-4o", "1120"): "2024-11-20",
    ("gpt-4o-mini", "0718"): "2024-07-18",
    ("o1", "1217"): "2024-12-17",
    ("o3-mini", "0131"): "2025-01-31",
    ("o3", "0416"): "2025-04-16",
    ("o4-mini", "0416"): "2025-04-16",
    ("gpt-4.5-preview", "0227"): "2025-02-27",
}


@dataclass(frozen=True)
class MeterKey:
    """What a meter prices: `model` as Azure deployments name it ("*" for provisioned), `version` as ARM spells it
    (or the meter's raw MMDD when no source pairs it; None when the meter names no version), our deployment type,
    and the kind: input, cached_input, output or ptu_hour."""

    model: str
    version: str | None
    deployment_type: str
    kind: str


def is_provisioned(meter: MeterKey) -> bool:
    """Whether the meter charges PTU-hours (whatever the traffic) rather than tokens."""
    return meter.kind == PTU_HOUR


def meter_order(meter: MeterKey) -> tuple[str, str, str, int, str]:
    """A total order on meters (a version may be None): model, version, type, then kinds in `KINDS` order."""
    kind_rank = KINDS.index(meter.kind) if meter.kind in KINDS else len(KINDS)
    return meter.model, meter.version or "", meter.deployment_type, kind_rank, meter.kind


def describe(meter: MeterKey) -> str:
    """`gpt-4o 2024-11-20 GlobalStandard input`, for messages; a provisioned meter names no model."""
    model = "" if meter.model in ("", ANY_MODEL) else meter.model
    return " ".join(part for part in (model, meter.version or "", meter.deployment_type, meter.kind) if part)


def pair_versions(ours: Iterable[tuple[str, MeterKey]],
                  theirs: Iterable[tuple[str, MeterKey]]) -> dict[tuple[str, MeterKey], MeterKey]:
    """(account, our meter) -> their meter, where telemetry and the bill spell a version differently (or one side
    does not know it): when an account's model, type and kind has exactly one version on each side that the other
    lacks, they are the same meter. Accounts are compared lower-case."""
    def group(m: MeterKey) -> tuple[str, str, str]:
        return m.model, m.deployment_type, m.kind

    mine: dict[tuple[str, tuple[str, str, str]], set[MeterKey]] = defaultdict(set)
    other: dict[tuple[str, tuple[str, str, str]], set[MeterKey]] = defaultdict(set)
    for account, meter in ours:
        mine[(account.lower(), group(meter))].add(meter)
    for account, meter in theirs:
        other[(account.lower(), group(meter))].add(meter)
    renamed: dict[tuple[str, MeterKey], MeterKey] = {}
    for key, meters in mine.items():
        only_mine, only_theirs = meters - other.get(key, set()), other.get(key, set()) - meters
        if len(only_mine) == 1 and len(only_theirs) == 1:
            renamed[(key[0], next(iter(only_mine)))] = next(iter(only_theirs))
    return renamed


@dataclass(frozen=True)
class MeterReading:
    """A meter name read: its key, or None and why not."""

    name: str
    key: MeterKey | None
    reason: str = ""


_DEPLOYMENTS = {
    "glbl": "global", "global": "global", "gl": "global",
    "dz": "datazone", "dzone": "datazone", "dzn": "datazone", "datazone": "datazone",
    "regnl": "regional", "regional": "regional", "rgnl": "regional", "regn": "regional",
}
_KINDS = {
    "inp": "input", "input": "input", "inpt": "input",
    "outp": "output", "output": "output", "outpt": "output", "opt": "output", "out": "output",
}
_CACHED = frozenset({"cached", "cchd", "cched", "ccchd", "cd"})
#: Words that mark a meter that is not a per-token price of a deployment, and what they mean.
_NOT_TOKEN_PRICES = {
    "ft": "a fine-tuning meter", "finetune": "a fine-tuning meter", "finetuned": "a fine-tuning meter",
    "hosting": "a hosting meter (per hour)", "hstng": "a hosting meter (per hour)",
    "training": "a training meter", "trng": "a training meter", "grader": "a grader meter",
    "aud": "an audio meter", "audio": "an audio meter", "rt": "a realtime meter", "realtime": "a realtime meter",
    "pp": "a priority-processing meter", "flex": "a flex-processing meter",
    "longco": "a long-context meter", "shortco": "a context-band meter", "wr": "a cache-write meter",
    "img": "an image meter", "image": "an image meter", "transcribe": "a transcription meter",
    "interpreter": "a tool meter (code interpreter)", "search": "a tool meter (file search)",
}
#: Models whose meters have one rate, charged on input tokens: a price row for them has `input` and no `output`.
ONE_RATE_MODELS: tuple[str, ...] = ("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002")
#: Model families Azure OpenAI deploys; a model part outside these is not guessed at.
_MODEL = re.compile(
    r"gpt-(35-turbo|4|4o|4\.1|4\.5|5(\.\d+)?)(-(mini|nano|chat|pro|codex|turbo|preview|32k))*"
    r"|o[1-9](-(mini|pro))?"
    r"|text-embedding-(3-small|3-large|ada-002)"
)
_ALIASES = {"embedding-ada": "text-embedding-ada-002", "embeddings-ada": "text-embedding-ada-002",
            "gpt-4.5": "gpt-4.5-preview"}
_MMDD = re.compile(r"(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_LETTERS_THEN_DIGIT = re.compile(r"(?<=[A-Za-z]{2})(?=\d)")
_SEPARATORS = re.compile(r"[\s\-_]+")


def words_of(name: str) -> list[str]:
    """A meter name as lower-case words: separators are spaces, hyphens and underscores, and words run together
    are split where a lower-case letter meets a capital (`BatchOutp`) or letters meet digits (`mini0718`)."""
    spaced = _LETTERS_THEN_DIGIT.sub(" ", _CAMEL.sub(" ", name))
    return [w for w in _SEPARATORS.split(spaced.lower()) if w]


def _join_data_zone(words: list[str]) -> list[str]:
    out: list[str] = []
    for word in words:
        if word == "zone" and out and out[-1] == "data":
            out[-1] = "datazone"
        else:
            out.append(word)
    return out


def _provisioned(words: list[str], name: str) -> MeterReading:
    rest = [w for w in words[2:] if w != "unit"]
    types: dict[tuple[str, ...], str] = {("global",): "GlobalProvisioned", ("datazone",): "DataZoneProvisioned",
             ("regional",): "ProvisionedManaged"}
    dtype = types.get(tuple(rest))
    if dtype is None:
        return MeterReading(name, None, f"a provisioned meter for {' '.join(rest) or 'no scope'!r}, "
                                        "not Global, Data Zone or Regional")
    return MeterReading(name, MeterKey(ANY_MODEL, None, dtype, "ptu_hour"))


def _model_and_version(words: list[str]) -> tuple[str | None, str | None, str]:
    """The model (as Azure deployments name it) and version of the words before the first marker."""
    words = [w for w in words if w != "az"]  # the older meters' "Az-" prefix (Az-Text-Embedding-3-Large)
    if not words:
        return None, None, "the name gives no model"
    short = None
    if len(words) > 1 and _MMDD.fullmatch(words[-1]):
        short, words = words[-1], words[:-1]
    if re.fullmatch(r"\d+(\.\d+)?", words[0]):  # the GPT5 products name the model by its number: "5.4 mini"
        words = ["gpt", *words]
    if words[0].startswith("gpt") and words[0] != "gpt" and len(words[0]) > 3:
        words = ["gpt", words[0][3:], *words[1:]]
    model = "-".join(words)
    model = _ALIASES.get(model, model)
    if not _MODEL.fullmatch(model):
        return None, None, f"unknown model {model!r}"
    version = KNOWN_VERSIONS.get((model, short), short) if short else None
    return model, version, ""


def read_meter(name: str) -> MeterReading:
    """Read a Retail Prices `skuName`/`meterName` or a Cost Management meter name."""
    words = _join_data_zone(words_of(name))
    while words and words[-1] in ("tokens", "1m", "1k"):  # meterName = skuName + " Tokens"; GPT5's "1M Tokens"
        words = words[:-1]
    if not words:
        return MeterReading(name, None, "an empty meter name")
    if words[:2] == ["provisioned", "managed"]:
        return _provisioned(words, name)
    for word in words:
        if word in _NOT_TOKEN_PRICES:
            return MeterReading(name, None, f"{_NOT_TOKEN_PRICES[word]} ({word!r}), not a per-token price")
    first = next((i for i, w in enumerate(words)
                  if w in _DEPLOYMENTS or w in _KINDS or w in _CACHED or w == "batch"), len(words))
    model, version, why = _model_and_version(words[:first])
    if model is None:
        return MeterReading(name, None, why)
    deployments: set[str] = set()
    kinds: set[str] = set()
    cached = batch = False
    for word in words[first:]:
        if word in _DEPLOYMENTS:
            deployments.add(_DEPLOYMENTS[word])
        elif word in _KINDS:
            kinds.add(_KINDS[word])
        elif word in _CACHED:
            cached = True
        elif word == "batch":
            batch = True
        else:
            return MeterReading(name, None, f"unknown word {word!r} after the model name")
    if len(deployments) != 1:
        return MeterReading(name, None, "the name gives no deployment type (Global, Data Zone or Regional)"
                            if not deployments else f"the name gives two deployment types: {sorted(deployments)}")
    scope = deployments.pop()
    dtype = _deployment_type(scope, batch)
    if dtype is None:
        return MeterReading(name, None, "a batch meter for a regional deployment: Azure sells no such type")
    kind = _kind(kinds, cached, model)
    if kind is None:
        return MeterReading(name, None, "the name gives no token kind (input, cached input or output)"
                            if not kinds else f"the name gives two token kinds: {sorted(kinds)}")
    return MeterReading(name, MeterKey(model, version, dtype, kind))


def _deployment_type(scope: str, batch: bool) -> str | None:
    if batch:
        return {"global": "GlobalBatch", "datazone": "DataZoneBatch"}.get(scope)
    return {"global": "GlobalStandard", "datazone": "DataZoneStandard", "regional": "Standard"}[scope]


def _kind(kinds: set[str], cached: bool, model: str) -> str | None:
    if cached:
        return "cached_input" if kinds <= {"input"} else None
    if len(kinds) == 1:
        return kinds.pop()
    if not kinds and model in ONE_RATE_MODELS:
        return "input"  # an embedding meter has one undirected rate, charged on input tokens
    return None


def parse_meter(name: str) -> MeterKey | None:
    """The key of a meter name, or None when it cannot be mapped (`unmapped_reason` says why)."""
    return read_meter(name).key


def unmapped_reason(name: str) -> str | None:
    """Why a meter name cannot be mapped; None when it can."""
    reading = read_meter(name)
    return None if reading.key is not None else reading.reason


# -- units ---------------------------------------------------------------------------------------------------------

_UNIT = re.compile(r"\s*(\d+)?\s*(?:([KMB])(?![A-Za-z]))?\s*(.*?)\s*")
_SUFFIX = {"": 1, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}
_HOURS = frozenset({"hour", "hours", "/hour", "1 hour"})


def split_unit(unit_of_measure: str) -> tuple[int, str]:
    """A unit of measure as (block size, what is counted), per the FinOps toolkit's PricingUnits.csv
    (src/open-data): "1K" -> (1000, ""), "1M" -> (1000000, ""), "1 Hour" -> (1, "hour"), "1/Hour" -> (1, "/hour"),
    "100 Hours" -> (100, "hours"). Raises ValueError for a unit it cannot read."""
    match = _UNIT.fullmatch(unit_of_measure)
    rest = match.group(3) if match is not None else ""
    if match is None or (match.group(1) is None and not rest) or (rest and not re.match(r"[A-Za-z/]", rest)):
        raise ValueError(f"cannot read the unit of measure {unit_of_measure!r}")
    count = int(match.group(1) or 1) * _SUFFIX[match.group(2) or ""]
    if count <= 0:
        raise ValueError(f"the unit of measure {unit_of_measure!r} counts no units")
    return count, rest.lower()


def block_size(unit_of_measure: str) -> int:
    """How many units one price covers: "1K" -> 1000, "1M" -> 1_000_000, "1 Hour" -> 1."""
    return split_unit(unit_of_measure)[0]


def counts_hours(unit_of_measure: str) -> bool:
    """Whether the unit is hours (a PTU-hour meter) rather than a count (tokens)."""
    return split_unit(unit_of_measure)[1] in _HOURS


def counts_units(unit_of_measure: str) -> bool:
    """Whether the unit is a plain count ("1K", "1M", "1 Tokens"): what a token meter is priced by."""
    return split_unit(unit_of_measure)[1] in ("", "tokens", "units")
