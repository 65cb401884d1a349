"""What Azure allows: the Azure OpenAI metric catalogue, alert windows and frequencies, and rule limits.

Sources are named per fact. "reference §n" is shared/reference/azure-telemetry.md, which cites Microsoft's
"Supported metrics for Microsoft.CognitiveServices/accounts" page and the ARM spec metricAlert_API.json
(api-version 2018-03-01). Facts that neither holds are marked "not in the reference" with where they come from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

# reference §3 heading: every Azure OpenAI platform metric lives in this namespace.
NAMESPACE = "Microsoft.CognitiveServices/accounts"
# ARM resource type of the scope of every rule; same string as the namespace (reference §5, targetResourceType).
RESOURCE_TYPE = NAMESPACE

# metricAlert_API.json, MultiMetricCriteria.timeAggregation enum.
AGGREGATIONS = ("Average", "Count", "Minimum", "Maximum", "Total")
# metricAlert_API.json, MetricCriteria.operator enum (static thresholds).
STATIC_OPERATORS = ("Equals", "GreaterThan", "GreaterThanOrEqual", "LessThan", "LessThanOrEqual")
# metricAlert_API.json, DynamicMetricCriteria.operator enum: a different, smaller set.
DYNAMIC_OPERATORS = ("GreaterThan", "LessThan", "GreaterOrLessThan")
# metricAlert_API.json, DynamicMetricCriteria.alertSensitivity enum.
SENSITIVITIES = ("Low", "Medium", "High")
# metricAlert_API.json, MetricDimension.operator description: "Only 'Include' and 'Exclude' are supported".
DIMENSION_OPERATORS = ("Include", "Exclude")
# metricAlert_API.json, MetricAlertProperties.severity: "Alert severity {0, 1, 2, 3, 4}".
SEVERITIES = range(0, 5)

# Not in the reference (the ARM spec only says "format: duration"): Microsoft's metricAlerts ARM template reference
# and the portal list these values; ARM refuses others. evaluationFrequency must not exceed windowSize.
FREQUENCIES = ("PT1M", "PT5M", "PT15M", "PT30M", "PT1H")
WINDOWS = ("PT1M", "PT5M", "PT15M", "PT30M", "PT1H", "PT6H", "PT12H", "PT24H")

# reference §3, "Limits [doc]": metric alert rules per subscription.
MAX_RULES_PER_SUBSCRIPTION = 5000

# Not in the reference: Azure resource naming rules for Microsoft.Insights/metricAlerts (learn.microsoft.com,
# "Naming rules and restrictions for Azure resources"): 1-260 characters, none of *#&+:<>?@%{}\/ or control
# characters, and no trailing space or period.
MAX_RULE_NAME_LENGTH = 260
FORBIDDEN_NAME_CHARACTERS = frozenset('*#&+:<>?@%{}\\/')

_MIN_MAX_AVG = ("Average", "Minimum", "Maximum")
_MODEL = ("Region", "ModelDeploymentName", "ModelName", "ModelVersion")
_TOKENS = ("ApiName", "ModelDeploymentName", "FeatureName", "UsageChannel", "Region", "ModelVersion")
_RAI = ("Region", "ModelDeploymentName", "ModelName", "ModelVersion", "ApiName", "TextType", "Category")


@dataclass(frozen=True)
class Metric:
    """One Azure OpenAI platform metric: unit, the aggregations Azure defines for it, its dimensions."""

    name: str
    unit: str
    aggregations: tuple[str, ...]
    dimensions: tuple[str, ...]
    counts_tokens: bool = False

    @property
    def default_aggregation(self) -> str:
        """Total for counters, Average for gauges (percent, latency, rates): what a rule means when it says none."""
        return "Total" if "Total" in self.aggregations and self.unit == "Count" else "Average"


# reference §3, the metric table [doc]. Percent and latency metrics take Average/Minimum/Maximum only (§8).
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("AzureOpenAIRequests", "Count", ("Total",),
           ("ApiName", "OperationName", "Region", "StreamType", "ModelDeploymentName", "ModelName", "ModelVersion",
            "StatusCode", "IsSpillover", "ServiceTierRequest", "ServiceTierResponse")),
    Metric("ProcessedPromptTokens", "Count", ("Total",), _TOKENS, counts_tokens=True),
    Metric("GeneratedTokens", "Count", ("Total",), _TOKENS, counts_tokens=True),
    Metric("TokenTransaction", "Count", ("Total",), _TOKENS, counts_tokens=True),
    Metric("ActiveTokens", "Count", ("Minimum", "Maximum", "Average", "Total"), _MODEL),
    Metric("AzureOpenAIContextTokensCacheMatchRate", "Percent", _MIN_MAX_AVG, _MODEL),
    Metric("AzureOpenAIProvisionedManagedUtilizationV2", "Percent", _MIN_MAX_AVG,
           ("Region", "StreamType", "ModelDeploymentName", "ModelName", "ModelVersion")),
    Metric("AzureOpenAITimeToResponse", "MilliSeconds", _MIN_MAX_AVG,
           ("ApiName", "OperationName", "Region", "StreamType", "ModelDeploymentName", "ModelName", "ModelVersion",
            "StatusCode")),
    Metric("AzureOpenAITTLTInMS", "MilliSeconds", _MIN_MAX_AVG, _MODEL),
    Metric("AzureOpenAINormalizedTTFTInMS", "MilliSeconds", _MIN_MAX_AVG, _MODEL),
    Metric("AzureOpenAINormalizedTBTInMS", "MilliSeconds", _MIN_MAX_AVG, _MODEL),
    # reference §3 gives "Count" as its unit; it is a rate, so it takes Min/Max/Avg like the gauges.
    Metric("AzureOpenAITokenPerSecond", "Count", _MIN_MAX_AVG, _MODEL),
    Metric("RAIRejectedRequests", "Count", ("Total",), _RAI),
    Metric("RAIHarmfulRequests", "Count", ("Total",), (*_RAI, "Severity")),
    Metric("RAITotalRequests", "Count", ("Total",), ("Region", "ModelDeploymentName", "ModelName", "ModelVersion",
                                                     "ApiName")),
)}

# reference §3: legacy Cognitive Services metrics are documented as "do not use for Azure OpenAI", and names such
# as AzureOpenAIThrottledRequests do not exist. A rule naming one gets this advice instead of a bare "unknown".
LEGACY_METRICS: dict[str, str] = {
    "TotalCalls": "use AzureOpenAIRequests",
    "BlockedCalls": "use AzureOpenAIRequests with dimensions: {StatusCode: ['429']}",
    "Ratelimit": "use AzureOpenAIRequests with dimensions: {StatusCode: ['429']}",
    "ClientErrors": "use AzureOpenAIRequests with dimensions: {StatusCode: ['400', '401', '403', '404', '429']}",
    "Latency": "use AzureOpenAITimeToResponse (first token) or AzureOpenAITTLTInMS (last byte)",
    "AzureOpenAIThrottledRequests": "use AzureOpenAIRequests with dimensions: {StatusCode: ['429']}",
}


def lookup_metric(name: str) -> Metric | None:
    """The catalogue entry for a metric name; Azure matches metric names case-insensitively."""
    folded = name.casefold()
    return next((m for m in METRICS.values() if m.name.casefold() == folded), None)


def canonical_dimension(metric: Metric | None, name: str) -> str | None:
    """A dimension's catalogue spelling, matched case-insensitively (the metrics API returns them lower-cased)."""
    if metric is None:
        return None
    folded = name.casefold()
    return next((d for d in metric.dimensions if d.casefold() == folded), None)


def parse_iso_duration(text: str) -> timedelta | None:
    """PT5M, PT1H, PT24H, P1D (the SDK's spelling of 24 hours) and the like; None when it is not one."""
    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", text.strip().upper())
    if match is None or not any(match.groups()):
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_iso_duration(value: timedelta) -> str:
    """The spelling Azure lists in its allowed values: whole hours as PTnH (so PT24H, not P1D), else PTnM or PTnS."""
    seconds = int(value.total_seconds())
    if seconds and seconds % 3600 == 0:
        return f"PT{seconds // 3600}H"
    if seconds and seconds % 60 == 0:
        return f"PT{seconds // 60}M"
    return f"PT{seconds}S"


def duration_minutes(text: str) -> float:
    """Minutes in an ISO-8601 duration that is known to be valid (one from WINDOWS or FREQUENCIES)."""
    value = parse_iso_duration(text)
    if value is None:
        raise ValueError(f"{text!r} is not an ISO-8601 duration")
    return value.total_seconds() / 60


def canonical_duration(text: str) -> str:
    """One spelling per duration, so that P1D from the SDK and PT24H from YAML compare equal; junk is kept as is."""
    value = parse_iso_duration(text)
    return text if value is None else format_iso_duration(value)

# Tags. Ours: the tag that marks a rule as managed by this tool; rules without it are never touched. Azure's: the
# portal and ARM add `hidden-link:<resource id>` tags to rules (reference §5), which are not the user's to diff.
OWNERSHIP_TAG_KEY = "managed-by"
OWNERSHIP_TAG_VALUE = "aoai-observatory"
SYSTEM_TAG_PREFIXES = ("hidden-link:",)


def is_system_tag(key: str) -> bool:
    """A tag that a diff ignores: ours (ownership is decided separately) or one that Azure adds by itself."""
    folded = key.casefold()
    return folded == OWNERSHIP_TAG_KEY or folded.startswith(SYSTEM_TAG_PREFIXES)


# Stacks: the ownership tag's value names the stack a rule belongs to, `aoai-observatory/<stack>`. The default stack
# writes the bare value, which is also what the release before stacks wrote, so its rules are the default stack's and
# a copy of that release still treats them as its own, while it sees named stacks' rules as not its own.
# ARM limits (learn.microsoft.com, azure-resource-manager/management/tag-resources, "Limitations"): a tag value has at
# most 256 characters; tag names are case-insensitive, values case-sensitive; non-English characters can break
# consumers of the tags. Our stricter rule: lowercase ASCII letters, digits, `-`, `_`, `.`, at most 63 characters, so
# the value (17 + 63 characters) is far inside the limit and reads the same whatever casing a tool shows.
DEFAULT_STACK = "default"
STACK_SEPARATOR = "/"
STACK_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
STACK_NAME_MAX = 63
TAG_VALUE_MAX = 256


def stack_problem(name: str) -> str | None:
    """Why `name` cannot be a stack name, or None when it can."""
    if not name:
        return "a stack name cannot be empty"
    if len(name) > STACK_NAME_MAX:
        return f"a stack name has at most {STACK_NAME_MAX} characters, not {len(name)}"
    if STACK_NAME.fullmatch(name) is None:
        hint = " (lowercase it)" if STACK_NAME.fullmatch(name.lower()) else ""
        return ("a stack name is lowercase letters, digits, '-', '_' and '.', starting with a letter or digit"
                f"{hint}: {name!r}")
    return None


def ownership_value(stack: str) -> str:
    """The ownership tag's value for a stack: the bare value for the default stack, `aoai-observatory/<stack>`."""
    return OWNERSHIP_TAG_VALUE if stack == DEFAULT_STACK else f"{OWNERSHIP_TAG_VALUE}{STACK_SEPARATOR}{stack}"


def stack_of_tags(tags: object) -> str | None:
    """The stack a rule with these ARM tags belongs to, or None when no copy of this tool manages it. Tag names are
    case-insensitive in ARM; values are compared case-insensitively too, as the release before stacks did."""
    if not isinstance(tags, dict):
        return None
    for key, value in tags.items():
        if str(key).casefold() != OWNERSHIP_TAG_KEY:
            continue
        folded = str(value).casefold()
        if folded == OWNERSHIP_TAG_VALUE:
            return DEFAULT_STACK
        prefix = OWNERSHIP_TAG_VALUE + STACK_SEPARATOR
        if folded.startswith(prefix) and len(folded) > len(prefix):
            return folded[len(prefix):]
    return None
