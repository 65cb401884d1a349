"""The demo traffic generator: turns the demo organisation into every view Azure gives of the same requests.

Design, so that later code can rely on it:

- Each (hour, deployment) draws from its own generator, `numpy.random.default_rng([seed, hour, k])`, where `hour`
  counts hours since 1970 and `k` is the deployment's index. Generating [a, b) then [b, c) therefore writes exactly
  the rows that [a, c) writes in one go.
- A request's `TimeGenerated` is when its response ended; it always falls in the generated range, and so do its
  gateway rows (the gateway adds milliseconds, and events stop half a second before the hour ends). Per-minute
  metrics are bucketed on that same time, so a minute's metric rows come from one hour's requests.
- One request = one `AzureDiagnostics` RequestResponse row (plus a nearly empty twin on accounts with
  `duplicate_request_rows`), an `AzureOpenAIRequestUsage` row when it succeeded, and for APIM callers one
  `ApiManagementGatewayLogs` row and, when it succeeded, one `ApiManagementGatewayLlmLog` header row (plus a
  continuation row with `DeploymentName == ''` when the prompt exceeds 3,000 tokens). All of them share the request's
  `CorrelationId`: the demo assumes the gateway's id is the backend's `apim-request-id`, which real tenants do not
  guarantee.
- The `AzureOpenAIRequestUsage` record is undocumented and public queries read it in two shapes, so the demo writes
  both: most rows carry single-element arrays (`promptTokens`, `cachedTokens`, `generatedTokens`), a share
  (`PLAIN_USAGE_SIXTEENTHS` / 16) plain numbers with `completionTokens` for the output. Which row gets which follows
  from the request's random GUID bits that the version nibble overwrites: deterministic by seed, and no extra draw,
  so every other figure of a dataset is unchanged by it.
- Metrics aggregate exactly the logged requests. Token metrics and `AzureOpenAITimeToResponse` /
  `AzureOpenAITTLTInMS` count successful (200) requests only; `AzureOpenAITTLTInMS` equals their `DurationMs`.
  `RAIRejectedRequests` counts the content-filter blocks, a subset of the 400s. PTU utilisation is reported every
  minute: (uncached prompt + 4 x completion tokens) / (PTUs x 2,500 tokens per minute), capped at 100 %.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd

from collector.errors import InputError, Problem, TerminalError
from collector.workspace.demo import DEMO_ORG, Caller, Deployment, Organisation
from collector.workspace.engine import Workspace, set_info

log = logging.getLogger(__name__)

GENERATOR: Final = "aoai-observatory demo generator 1"
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

_HOUR_US: Final = 3_600_000_000
_LAST_EVENT_US: Final = _HOUR_US - 500_000  # events end half a second before the hour: gateway rows stay inside
_TICKS_AT_EPOCH: Final = 621_355_968_000_000_000  # .NET ticks (100 ns since 0001-01-01) at 1970-01-01
_HEX_DIGITS: Final = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_GUID_DIGITS: Final = np.array([*range(0, 8), *range(9, 13), *range(14, 18), *range(19, 23), *range(24, 36)])
_P_429: Final = 0.003
_P_5XX: Final = 0.002
_P_VALIDATION_400: Final = 0.003
#: gpt-4o input tokens per minute per PTU; an output token counts as 4 input tokens.
_PTU_TOKENS_PER_MINUTE: Final = 2500
#: Usage rows in the plain-number shape, in sixteenths (drawn from the 4 random bits a GUID's version nibble hides).
PLAIN_USAGE_SIXTEENTHS: Final = 4

# Hourly shapes by local hour, scaled to a mean of 1, and weekend factors, per caller schedule.
_BUSINESS = np.array([0.10, 0.08, 0.07, 0.07, 0.08, 0.15, 0.35, 0.70, 1.20, 1.60, 1.70, 1.60,
                      1.30, 1.50, 1.60, 1.50, 1.20, 0.80, 0.50, 0.40, 0.30, 0.25, 0.20, 0.15])
_ALWAYS = np.array([0.75, 0.70, 0.68, 0.68, 0.70, 0.78, 0.90, 1.05, 1.20, 1.28, 1.30, 1.30,
                    1.28, 1.28, 1.28, 1.25, 1.20, 1.10, 1.02, 0.95, 0.90, 0.85, 0.80, 0.77])
_NIGHTLY = np.array([2.5, 3.5, 4.0, 4.0, 3.0, 1.5, 0.4, 0.2, 0.1, 0.1, 0.1, 0.1,
                     0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.3, 0.5, 1.0, 1.8])
SHAPES: Final[dict[str, Floats]] = {
    "business": _BUSINESS / _BUSINESS.mean(),
    "always": _ALWAYS / _ALWAYS.mean(),
    "nightly": _NIGHTLY / _NIGHTLY.mean(),
}
WEEKEND_FACTOR: Final = {"business": 0.25, "always": 0.85, "nightly": 1.0}


@dataclass(frozen=True)
class GenerateSummary:
    """What one `generate` call appended: requests simulated and rows written per table."""

    requests: int
    rows: dict[str, int]


def generate(
    workspace: Workspace, *, start: datetime, end: datetime, seed: int, org: Organisation = DEMO_ORG
) -> GenerateSummary:
    """Append the demo telemetry of [start, end) to `workspace` in one transaction.

    `start` and `end` are timezone-aware UTC, on the hour. A workspace already holding demo data accepts only the
    same seed and a range that continues it (starts at its end), so appended traffic never overlaps or leaves a gap.
    """
    requests = simulate_requests(org, start=start, end=end, seed=seed)
    tables = _dimension_frames(org)
    with workspace.writer() as con:
        con.begin()
        try:
            info = _check_continuation(con, start, end, seed)
            con.register("demo_requests", requests)
            for name, frame in tables.items():
                con.register(name, frame)
            rows: dict[str, int] = {}
            for table, sql in _insert_statements(org.workspace_id, start, end):
                result = con.execute(sql).fetchone()
                inserted = int(result[0]) if result else 0
                if table:
                    rows[table] = rows.get(table, 0) + inserted
            set_info(con, {
                "generator": GENERATOR,
                "seed": str(seed),
                "start": info.get("start", start.isoformat()),
                "end": end.isoformat(),
            })
            con.commit()
        except BaseException:
            con.rollback()
            raise
    summary = GenerateSummary(len(requests), rows)
    log.info("generated %d demo requests for [%s, %s): %s", summary.requests, start, end, rows)
    return summary


def simulate_requests(org: Organisation, *, start: datetime, end: datetime, seed: int) -> pd.DataFrame:
    """Every request of [start, end), one row each, with the facts all telemetry views are derived from."""
    _check_arguments(start, end, seed, org)
    callers = {c.name: i for i, c in enumerate(org.callers)}
    zones = {a.name: ZoneInfo(a.timezone) for a in org.accounts}
    first = int(start.timestamp()) // 3600
    last = int(end.timestamp()) // 3600
    chunks: list[dict[str, npt.NDArray[np.generic]]] = []
    for hour in range(first, last):
        moment = datetime.fromtimestamp(hour * 3600, UTC)
        for k, dep in enumerate(org.deployments):
            local = moment.astimezone(zones[dep.account])
            chunk = _hour_of_deployment(org, dep, k, callers, moment, local, seed, hour)
            if len(chunk["offset_us"]):
                chunks.append(chunk)
    if not chunks:
        return pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in _REQUEST_COLUMNS.items()})
    data = {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
    # The high nibble of byte 6 is random but overwritten by the GUID version: a choice invisible in the id itself.
    data["plain_usage"] = (data["corr"][:, 6] >> 4) < PLAIN_USAGE_SIXTEENTHS
    data["corr"] = _uuid4_strings(data["corr"])
    time_us = data["offset_us"]
    resp_ticks = time_us * 10 + _TICKS_AT_EPOCH
    frame = pd.DataFrame({
        "time": pd.to_datetime(time_us, unit="us", utc=True),
        **{name: values for name, values in data.items() if name not in ("offset_us", "sub_ms_ticks")},
        "apim_time": pd.to_datetime(time_us + data["apim_ms"] * 1000, unit="us", utc=True),
        "resp_ticks": resp_ticks,
        "req_ticks": resp_ticks - data["duration_ms"] * 10_000 - data["sub_ms_ticks"],
    })
    return frame


#: The columns of `simulate_requests`' frame: one row per request.
_REQUEST_COLUMNS: Final = {
    "time": "datetime64[us, UTC]", "dep": "int64", "caller": "int64", "corr": "str",
    "status": "int64", "rai": "bool", "rai_cat": "int64", "stream": "bool", "duration_ms": "int64",
    "ttft_ms": "int64", "prompt": "int64", "cached": "int64", "completion": "int64", "req_len": "int64",
    "resp_len": "int64", "apim_ms": "int64", "client_octet": "int64", "plain_usage": "bool",
    "apim_time": "datetime64[us, UTC]", "resp_ticks": "int64", "req_ticks": "int64",
}


def _hour_of_deployment(
    org: Organisation, dep: Deployment, k: int, callers: dict[str, int], moment: datetime, local: datetime,
    seed: int, hour: int,
) -> dict[str, npt.NDArray[np.generic]]:
    """The requests one deployment serves in one hour. Draw order is fixed: changing it changes every dataset."""
    rng = np.random.default_rng([seed, hour, k])
    weights = sum(s.weight for s in dep.callers)
    who: list[Caller] = []
    lams: list[float] = []
    for share in dep.callers:
        caller = org.caller(share.caller)
        who.append(caller)
        lams.append(_hourly_rate(dep.weekday_requests * share.weight / weights, caller, local))
    storm = next((s for s in org.storms if s.account == dep.account and s.deployment == dep.name
                  and s.covers(moment.weekday(), moment.hour)), None)
    if storm is not None:
        who.append(org.caller(storm.caller))
        lams.append(storm.extra_requests_per_hour)
    counts = rng.poisson(np.array(lams))
    n = int(counts.sum())
    caller_pos = rng.permutation(np.repeat(np.arange(len(who)), counts))
    offset_us = np.sort(rng.integers(0, _LAST_EVENT_US, n)) + hour * _HOUR_US
    chat = dep.operation == "chat"

    stream_share = np.array([c.streaming_share for c in who])[caller_pos]
    stream = (rng.random(n) < stream_share) & chat
    rai_rate = np.array([c.content_filter_rate for c in who])[caller_pos] * chat
    p429 = storm.throttled_share if storm is not None else _P_429
    u = rng.random(n)
    server_error = np.where(rng.random(n) < 0.7, 500, 503)
    c1, c2, c3 = p429, p429 + _P_5XX, p429 + _P_5XX + _P_VALIDATION_400
    rai = (u >= c3) & (u < c3 + rai_rate)
    status = np.select([u < c1, u < c2, u < c3, rai], [429, server_error, 400, 400], 200)
    rai_cat = rng.integers(0, 4, n)

    tp = dep.tokens
    prompt = _lognormal_ints(rng, tp.prompt_median, tp.prompt_sigma, tp.prompt_range, n)
    completion = (_lognormal_ints(rng, tp.completion_median, tp.completion_sigma, tp.completion_range, n)
                  if tp.completion_median > 0 else np.zeros(n, dtype=np.int64))
    cacheable = (rng.random(n) < tp.cached_share) & (prompt >= 1024)
    blocks = rng.integers(0, np.maximum(prompt - 1024, 0) // 128 + 1)
    cached = np.where(cacheable, 1024 + 128 * blocks, 0)

    lp = dep.latency
    first = rng.lognormal(np.log(lp.first_token_median_ms), lp.first_token_sigma, n) + prompt / lp.prompt_tokens_per_ms
    speed = lp.tokens_per_second * rng.lognormal(0.0, 0.15, n) if lp.tokens_per_second > 0 else np.ones(n)
    last = first + (completion / speed * 1000.0 if lp.tokens_per_second > 0 else 0.0)
    error_ms = np.select(
        [status == 429, rai, status == 400],
        [rng.lognormal(np.log(12), 0.5, n), rng.lognormal(np.log(180), 0.4, n) + prompt / lp.prompt_tokens_per_ms,
         rng.lognormal(np.log(40), 0.5, n)],
        rng.lognormal(np.log(4000), 0.8, n),
    )
    duration_ms = np.maximum(np.rint(np.where(status == 200, last, error_ms)), 1).astype(np.int64)
    ttft_ms = np.where(stream, np.maximum(np.rint(first), 1).astype(np.int64), duration_ms)

    req_len = (prompt * 4 + rng.integers(120, 400, n)).astype(np.int64)
    if chat:
        body = np.where(stream, completion * 180 + 600, completion * 4 + 450)
    else:
        body = 19_000 * np.maximum(prompt // 500, 1) + 200
    resp_len = np.where(status == 200, body, rng.integers(180, 700, n)).astype(np.int64)
    apim_ms = np.clip(np.rint(rng.lognormal(np.log(9), 0.4, n)), 1, 300).astype(np.int64)
    client_octet = rng.integers(1, 255, n)
    sub_ms_ticks = rng.integers(0, 10_000, n)
    corr = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16)
    caller_idx = np.array([callers[c.name] for c in who], dtype=np.int64)[caller_pos]
    return {
        "offset_us": offset_us.astype(np.int64), "dep": np.full(n, k, dtype=np.int64), "caller": caller_idx,
        "corr": corr, "status": status.astype(np.int64), "rai": rai, "rai_cat": rai_cat.astype(np.int64),
        "stream": stream, "duration_ms": duration_ms, "ttft_ms": ttft_ms.astype(np.int64),
        "prompt": prompt, "cached": cached.astype(np.int64), "completion": completion, "req_len": req_len,
        "resp_len": resp_len, "apim_ms": apim_ms, "client_octet": client_octet.astype(np.int64),
        "sub_ms_ticks": sub_ms_ticks.astype(np.int64),
    }


def _uuid4_strings(raw: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """Version-4 GUID text of each row of 16 random bytes (vectorised: this runs for every request)."""
    octets = raw.astype(np.uint8)
    octets[:, 6] = (octets[:, 6] & 0x0F) | 0x40
    octets[:, 8] = (octets[:, 8] & 0x3F) | 0x80
    nibbles = np.stack([octets >> 4, octets & 0x0F], axis=2).reshape(len(octets), 32)
    text = np.full((len(octets), 36), ord("-"), dtype=np.uint8)
    text[:, _GUID_DIGITS] = _HEX_DIGITS[nibbles]
    return text.view("S36").ravel().astype("U36").astype(object)


def _hourly_rate(weekday_daily: float, caller: Caller, local: datetime) -> float:
    factor = WEEKEND_FACTOR[caller.schedule] if local.weekday() >= 5 else 1.0
    return weekday_daily / 24.0 * float(SHAPES[caller.schedule][local.hour]) * factor


def _lognormal_ints(
    rng: np.random.Generator, median: float, sigma: float, bounds: tuple[int, int], n: int
) -> Ints:
    values = rng.lognormal(np.log(median), sigma, n)
    return np.clip(np.rint(values), bounds[0], bounds[1]).astype(np.int64)


def _dimension_frames(org: Organisation) -> dict[str, pd.DataFrame]:
    """The organisation as small tables the SQL joins requests to (strings live here, not per request)."""
    accounts = {a.name: a for a in org.accounts}
    deps = []
    for k, dep in enumerate(org.deployments):
        acc = accounts[dep.account]
        chat = dep.operation == "chat"
        path = "chat/completions" if chat else "embeddings"
        deps.append({
            "dep": k, "d_name": dep.name, "d_model": dep.model, "d_version": dep.model_version,
            "d_response_model": dep.response_model,
            "d_operation": "ChatCompletions_Create" if chat else "Embeddings_Create",
            "d_apim_operation": "ChatCompletions_Create" if chat else "embeddings_create",
            "d_path": f"/openai/deployments/{dep.name}/{path}",
            "d_ptu": dep.capacity if dep.is_provisioned else 0,
            "a_rid": acc.resource_id, "a_rid_upper": acc.resource_id.upper(), "a_rid_lower": acc.resource_id.lower(),
            "a_name_upper": acc.name.upper(), "a_sub_upper": acc.subscription_id.upper(),
            "a_rg_upper": acc.resource_group.upper(), "a_region": acc.region, "a_dup": acc.duplicate_request_rows,
            "a_host": f"https://{acc.name}.openai.azure.com",
        })
    callers = []
    for i, c in enumerate(org.callers):
        via_apim = c.auth == "apim"
        callers.append({
            "caller": i, "c_is_apim": via_apim, "c_apim_sub": c.apim_subscription_id, "c_api_version": c.api_version,
            "c_api_name": f"Azure OpenAI API version {c.api_version}",
            "c_object_id": org.apim.managed_identity_object_id if via_apim else c.object_id,
            "c_backend_ip": org.apim.outbound_ip_prefix if via_apim else c.ip_prefix,
            "c_client_ip": c.ip_prefix,
        })
    gateway = pd.DataFrame([{
        "g_rid_lower": org.apim.resource_id.lower(), "g_sub": org.apim.subscription_id,
        "g_region": org.apim.region, "g_host": f"https://{org.apim.name}.azure-api.net",
    }])
    return {"demo_deployments": pd.DataFrame(deps), "demo_callers": pd.DataFrame(callers), "demo_apim": gateway}


def _check_arguments(start: datetime, end: datetime, seed: int, org: Organisation) -> None:
    problems = [Problem(None, None, p, "fix the organisation definition") for p in org.problems()]
    for label, moment in (("start", start), ("end", end)):
        if moment.tzinfo is None or moment.utcoffset() != timedelta(0):
            problems.append(Problem(None, None, f"{label} {moment.isoformat()} is not timezone-aware UTC",
                                    "pass e.g. datetime(2025, 1, 1, tzinfo=UTC)"))
        elif moment.minute or moment.second or moment.microsecond:
            problems.append(Problem(None, None, f"{label} {moment.isoformat()} is not on the hour",
                                    f"use {moment.replace(minute=0, second=0, microsecond=0).isoformat()}"))
    if not problems and start >= end:
        problems.append(Problem(None, None, f"empty range: start {start.isoformat()} is not before end "
                                f"{end.isoformat()}", "pass an end after the start"))
    if seed < 0:
        problems.append(Problem(None, None, f"seed {seed} is negative", "pass a seed of 0 or more"))
    if problems:
        raise InputError(problems, "cannot generate demo traffic")


def _check_continuation(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, seed: int) -> dict[str, str]:
    rows = con.execute('SELECT "Key", "Value" FROM "_WorkspaceInfo"').fetchall()
    info = {str(k): str(v) for k, v in rows}
    if "generator" not in info:
        return {}
    if info.get("seed") != str(seed):
        raise TerminalError(f"the workspace holds demo data of seed {info.get('seed')}, not {seed}: appending "
                            "another seed would break reproducibility; generate into a new workspace")
    recorded_end = datetime.fromisoformat(info["end"])
    if start != recorded_end:
        raise TerminalError(
            f"the workspace holds demo data for [{info['start']}, {info['end']}); a new range must start at its "
            f"end ({recorded_end.isoformat()}), not at {start.isoformat()}, so rows are neither doubled nor missing"
        )
    return info


def _insert_statements(workspace_id: str, start: datetime, end: datetime) -> list[tuple[str, str]]:
    """(table, SQL) pairs that write every view from `demo_requests`; table '' marks a helper statement."""
    ws = workspace_id.replace("'", "''")
    stream_type = "CASE WHEN stream THEN 'Streaming' ELSE 'Non-Streaming' END"
    props = (
        "json_object('apiName', c_api_name, 'requestTime', req_ticks, 'requestLength', {rl}, "
        "'responseTime', resp_ticks, 'responseLength', {sl}, 'objectId', {oid}, 'streamType', {st}, "
        "'modelDeploymentName', {dn}, 'modelName', {mn}, 'modelVersion', {mv})::VARCHAR"
    )
    full = props.format(rl="req_len", sl="resp_len", oid="c_object_id", st=stream_type, dn="d_name",
                        mn="d_model", mv="d_version")
    empty = props.format(rl="0", sl="0", oid="''", st="''", dn="''", mn="''", mv="''")
    diag_cols = (
        '"TenantId", "TimeGenerated", "SourceSystem", "Type", "ResourceId", "_ResourceId", "SubscriptionId", '
        '"ResourceGroup", "ResourceProvider", "Resource", "ResourceType", "Category", "OperationName", '
        '"ResultSignature", "DurationMs", "CallerIPAddress", "CorrelationId", "properties_s", "location_s", '
        '"event_s", "Tenant_s"'
    )
    diag_head = (
        f"'{ws}', time, 'Azure', 'AzureDiagnostics', a_rid_upper, a_rid_lower, a_sub_upper, a_rg_upper, "
        "'MICROSOFT.COGNITIVESERVICES', a_name_upper, 'ACCOUNTS'"
    )
    request_row = (
        f"{diag_head}, 'RequestResponse', d_operation, status::VARCHAR, duration_ms, c_backend_ip || '.***', "
        "corr, {props}, a_region, 'ShoeboxCallResult', a_region"
    )
    usage_props = (
        "CASE WHEN plain_usage "
        "THEN '{\"promptTokens\":' || prompt || ',\"cachedTokens\":' || cached || ',\"completionTokens\":' "
        "|| completion || '}' "
        "ELSE '{\"promptTokens\":[' || prompt || '],\"cachedTokens\":[' || cached || '],\"generatedTokens\":[' "
        "|| completion || ']}' END"
    )
    llm_cols = (
        '"TenantId", "TimeGenerated", "CorrelationId", "DeploymentName", "ModelName", "ApiVersion", '
        '"OperationName", "PromptTokens", "CompletionTokens", "TotalTokens", "IsStreamCompletion", "RequestId", '
        '"SequenceNumber", "Region", "SourceSystem", "Type", "_ResourceId", "_SubscriptionId"'
    )
    llm = "g_region, 'Azure', 'ApiManagementGatewayLlmLog', g_rid_lower, g_sub"
    first = f"TIMESTAMPTZ '{start.isoformat()}'"
    last = f"TIMESTAMPTZ '{end.isoformat()}' - INTERVAL 1 minute"
    dep_dims = "'ModelDeploymentName', d_name, 'ModelName', d_model, 'ModelVersion', d_version, 'Region', a_region"
    token_dims = "json_object('ModelDeploymentName', d_name, 'ModelVersion', d_version, 'Region', a_region, " \
        "'ApiName', c_api_name)"
    def token_metric(name: str, value: str) -> str:
        return (f"SELECT minute, a_rid, '{name}', 'Count', {token_dims}, sum({value}), count(*), min({value}), "
                f"max({value}) FROM ok GROUP BY ALL")
    return [
        ("", "CREATE OR REPLACE TEMP VIEW demo_req AS SELECT * FROM demo_requests JOIN demo_deployments "
             "USING (dep) JOIN demo_callers USING (caller) CROSS JOIN demo_apim"),
        ("AzureDiagnostics", f'INSERT INTO "AzureDiagnostics" ({diag_cols}) SELECT '
         f"{request_row.format(props=full)} FROM demo_req ORDER BY time, corr"),
        # The nearly empty twin some tenants get; queries must skip it by filtering on the deployment.
        ("AzureDiagnostics", f'INSERT INTO "AzureDiagnostics" ({diag_cols}) SELECT '
         f"{request_row.format(props=empty)} FROM demo_req WHERE a_dup ORDER BY time, corr"),
        ("AzureDiagnostics", f'INSERT INTO "AzureDiagnostics" ({diag_cols}) SELECT {diag_head}, '
         "'AzureOpenAIRequestUsage', d_operation, '', NULL, '', corr, "
         f"{usage_props}, a_region, 'ShoeboxAzureOpenAIRequestUsage', a_region "
         "FROM demo_req WHERE status = 200 ORDER BY time, corr"),
        ("ApiManagementGatewayLogs", 'INSERT INTO "ApiManagementGatewayLogs" ("TenantId", "TimeGenerated", '
         '"CorrelationId", "ApimSubscriptionId", "ApiId", "ApiRevision", "OperationId", "ProductId", "BackendId", '
         '"Method", "Url", "ResponseCode", "BackendResponseCode", "TotalTime", "BackendTime", "ClientTime", '
         '"CacheTime", "CallerIpAddress", "IsRequestSuccess", "RequestSize", "ResponseSize", "Cache", '
         '"LastErrorReason", "Region", "Category", "ClientProtocol", "ClientTlsVersion", "BackendMethod", '
         '"BackendProtocol", "BackendUrl", "SourceSystem", "Type", "_ResourceId", "_SubscriptionId") SELECT '
         f"'{ws}', apim_time, corr, c_apim_sub, 'azure-openai', '1', d_apim_operation, 'aoai-internal', "
         "lower(a_name_upper), 'POST', g_host || d_path || '?api-version=' || c_api_version, status, status, "
         "duration_ms + apim_ms, duration_ms, apim_ms // 3, 0, c_client_ip || '.' || client_octet, "
         "status < 400, req_len, resp_len, 'none', '', "
         "g_region, 'GatewayLogs', 'HTTP/1.1', '1.2', 'POST', 'HTTP/1.1', "
         "a_host || d_path || '?api-version=' || c_api_version, "
         "'Azure', 'ApiManagementGatewayLogs', g_rid_lower, g_sub "
         "FROM demo_req WHERE c_is_apim ORDER BY apim_time, corr"),
        ("ApiManagementGatewayLlmLog", f'INSERT INTO "ApiManagementGatewayLlmLog" ({llm_cols}) SELECT '
         f"'{ws}', apim_time, corr, d_name, d_response_model, c_api_version, d_operation, prompt, completion, "
         f"prompt + completion, stream, corr, 0, {llm} "
         "FROM demo_req WHERE c_is_apim AND status = 200 ORDER BY apim_time, corr"),
        # Long prompts split the logged messages over a second row that carries no deployment and no tokens.
        ("ApiManagementGatewayLlmLog", f'INSERT INTO "ApiManagementGatewayLlmLog" ({llm_cols}) SELECT '
         f"'{ws}', apim_time, corr, '', '', c_api_version, d_operation, NULL, NULL, NULL, stream, corr, 1, {llm} "
         "FROM demo_req WHERE c_is_apim AND status = 200 AND prompt > 3000 ORDER BY apim_time, corr"),
        ("", "DROP TABLE IF EXISTS demo_metrics"),
        ("", f"""CREATE TEMP TABLE demo_metrics AS
            WITH q AS (SELECT *, date_trunc('minute', time) AS minute, {stream_type} AS stream_type FROM demo_req),
            ok AS (SELECT * FROM q WHERE status = 200)
            SELECT minute, a_rid, 'AzureOpenAIRequests' AS metric, 'Count' AS unit,
                   json_object({dep_dims}, 'StatusCode', status::VARCHAR, 'StreamType', stream_type,
                               'OperationName', d_operation, 'ApiName', c_api_name) AS dims,
                   count(*)::DOUBLE AS total, count(*)::DOUBLE AS cnt, 1.0::DOUBLE AS mn, 1.0::DOUBLE AS mx
            FROM q GROUP BY ALL
            UNION ALL {token_metric('ProcessedPromptTokens', 'prompt')}
            UNION ALL {token_metric('GeneratedTokens', 'completion')}
            UNION ALL {token_metric('TokenTransaction', 'prompt + completion')}
            UNION ALL SELECT minute, a_rid, 'RAIRejectedRequests', 'Count',
                   json_object({dep_dims}, 'ApiName', c_api_name, 'TextType', 'Prompt',
                               'Category', ['Hate', 'Sexual', 'Violence', 'SelfHarm'][rai_cat + 1]),
                   count(*), count(*), 1, 1
            FROM q WHERE rai GROUP BY ALL
            UNION ALL SELECT minute, a_rid, 'AzureOpenAITimeToResponse', 'MilliSeconds',
                   json_object({dep_dims}, 'StatusCode', status::VARCHAR, 'StreamType', stream_type,
                               'OperationName', d_operation, 'ApiName', c_api_name),
                   sum(ttft_ms), count(*), min(ttft_ms), max(ttft_ms)
            FROM ok GROUP BY ALL
            UNION ALL SELECT minute, a_rid, 'AzureOpenAITTLTInMS', 'MilliSeconds', json_object({dep_dims}),
                   sum(duration_ms), count(*), min(duration_ms), max(duration_ms)
            FROM ok GROUP BY ALL
            UNION ALL SELECT minute, a_rid, 'AzureOpenAIProvisionedManagedUtilizationV2', 'Percent', dims,
                   pct, 1, pct, pct
            FROM (SELECT m.minute, d.a_rid,
                         json_object('ModelDeploymentName', d.d_name, 'ModelName', d.d_model,
                                     'ModelVersion', d.d_version, 'Region', d.a_region) AS dims,
                         round(least(100.0, 100.0 * coalesce(l.load, 0)
                                     / (d.d_ptu * {_PTU_TOKENS_PER_MINUTE})), 2) AS pct
                  FROM (SELECT unnest(generate_series({first}, {last}, INTERVAL 1 minute)) AS minute) m
                  CROSS JOIN demo_deployments d
                  LEFT JOIN (SELECT minute, dep, sum(prompt - cached) + 4 * sum(completion) AS load
                             FROM ok GROUP BY minute, dep) l ON l.minute = m.minute AND l.dep = d.dep
                  WHERE d.d_ptu > 0)"""),
        ("_PlatformMetrics", 'INSERT INTO "_PlatformMetrics" SELECT minute, a_rid, metric, dims::JSON, total, cnt, '
         "mn, mx FROM demo_metrics ORDER BY minute, a_rid, metric, dims::VARCHAR"),
        ("AzureMetrics", 'INSERT INTO "AzureMetrics" ("TenantId", "SourceSystem", "TimeGenerated", "ResourceId", '
         '"_ResourceId", "SubscriptionId", "ResourceGroup", "ResourceProvider", "Resource", "MetricName", "Total", '
         '"Count", "Maximum", "Minimum", "Average", "TimeGrain", "UnitName", "Type") '
         f"SELECT '{ws}', 'Azure', minute, upper(a_rid), lower(a_rid), a_sub_upper, a_rg_upper, "
         "'MICROSOFT.COGNITIVESERVICES', a_name_upper, metric, sum(total), sum(cnt), max(mx), min(mn), "
         "sum(total) / sum(cnt), 'PT1M', unit, 'AzureMetrics' FROM demo_metrics JOIN (SELECT DISTINCT a_rid, "
         "a_sub_upper, a_rg_upper, a_name_upper FROM demo_deployments) USING (a_rid) "
         "GROUP BY minute, a_rid, a_sub_upper, a_rg_upper, a_name_upper, metric, unit ORDER BY minute, a_rid, metric"),
    ]
