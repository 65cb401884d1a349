"""The demo generator: deterministic, appendable hour by hour, and every view of one request agrees."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from collector.errors import InputError, TerminalError
from collector.workspace.demo import DEMO_ORG
from collector.workspace.engine import MetricsRequest, Workspace
from collector.workspace.generate import GENERATOR, PLAIN_USAGE_SIXTEENTHS, generate
from collector.workspace.schema import LOG_TABLES, METRICS_TABLE

MONDAY = datetime(2025, 3, 3, tzinfo=UTC)  # the storm is on Tuesday 2025-03-04, 14:00-17:00 UTC
TABLES = [*LOG_TABLES, METRICS_TABLE]
TICKS_AT_EPOCH = 621_355_968_000_000_000
DEPLOYMENT = "json_extract_string(properties_s, '$.modelDeploymentName')"
#: A usage row's tokens in either shape the generator writes (single-element arrays, or plain numbers with
#: `completionTokens`), read in SQL and not through the query under test.
PROMPT = ("CAST(coalesce(json_extract({t}.properties_s, '$.promptTokens[0]'), "
          "json_extract({t}.properties_s, '$.promptTokens')) AS BIGINT)")
GENERATED = ("CAST(coalesce(json_extract({t}.properties_s, '$.generatedTokens[0]'), "
             "json_extract({t}.properties_s, '$.completionTokens')) AS BIGINT)")


def _new(path: Path) -> Workspace:
    ws = Workspace(path)
    ws.create()
    return ws


@pytest.fixture(scope="module")
def three_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "ws.duckdb"
    generate(_new(path), start=MONDAY, end=MONDAY + timedelta(days=3), seed=11)
    return path


@pytest.fixture()
def con(three_days: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(three_days), read_only=True)
    connection.execute("SET TimeZone='UTC'")
    yield connection
    connection.close()


def _contents(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with duckdb.connect(str(path), read_only=True) as c:
        return {t: c.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in [*TABLES, "_WorkspaceInfo"]}


def _pairs(con: duckdb.DuckDBPyConnection, sql: str) -> dict[tuple[Any, ...], float]:
    return {tuple(row[:-1]): float(row[-1]) for row in con.execute(sql).fetchall()}


# --- the organisation ------------------------------------------------------------------------------------------


def test_the_demo_organisation_meets_the_minimums() -> None:
    org = DEMO_ORG
    assert org.problems() == []
    assert len(org.accounts) >= 2 and len({a.region for a in org.accounts}) >= 2
    assert len(org.deployments) >= 6
    types = {d.deployment_type for d in org.deployments}
    assert {"GlobalStandard", "DataZoneStandard", "ProvisionedManaged"} <= types
    assert {d.operation for d in org.deployments} == {"chat", "embeddings"}
    assert len(org.teams) >= 5
    assert {c.auth for c in org.callers} == {"entra", "apim", "api-key"}
    assert all(c.object_id == "" for c in org.callers if c.auth != "entra")
    assert all(sum(s.weight for s in d.callers) > 0 for d in org.deployments)
    ptu = [d for d in org.deployments if d.is_provisioned]
    assert ptu and all(d.capacity >= 15 for d in ptu)
    assert org.account("contoso-aoai-eus").resource_id == (
        "/subscriptions/6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5/resourceGroups/rg-ai-prod-eus"
        "/providers/Microsoft.CognitiveServices/accounts/contoso-aoai-eus"
    )


# --- determinism and appending -----------------------------------------------------------------------------------


def test_the_same_seed_writes_the_same_rows_and_another_seed_does_not(tmp_path: Path) -> None:
    start, end = MONDAY + timedelta(hours=9), MONDAY + timedelta(hours=13)
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        generate(_new(tmp_path / f"{name}.duckdb"), start=start, end=end, seed=seed)
    a, b, c = (_contents(tmp_path / f"{n}.duckdb") for n in "abc")
    assert a == b
    assert a["AzureDiagnostics"] and a["AzureDiagnostics"] != c["AzureDiagnostics"]


def test_two_appended_ranges_equal_one_range(tmp_path: Path) -> None:
    a, b, c = MONDAY + timedelta(hours=20), MONDAY + timedelta(hours=27), MONDAY + timedelta(hours=31)
    split = _new(tmp_path / "split.duckdb")
    first = generate(split, start=a, end=b, seed=3)
    second = generate(split, start=b, end=c, seed=3)
    whole = generate(_new(tmp_path / "whole.duckdb"), start=a, end=c, seed=3)
    assert _contents(tmp_path / "split.duckdb") == _contents(tmp_path / "whole.duckdb")
    assert first.requests + second.requests == whole.requests
    assert {t: first.rows[t] + second.rows[t] for t in whole.rows} == whole.rows
    assert split.info() == {"generator": GENERATOR, "seed": "3", "start": a.isoformat(), "end": c.isoformat()}


def test_appending_refuses_overlaps_gaps_and_another_seed(tmp_path: Path) -> None:
    ws = _new(tmp_path / "ws.duckdb")
    generate(ws, start=MONDAY, end=MONDAY + timedelta(hours=2), seed=1)
    with pytest.raises(TerminalError, match="must start at its end"):
        generate(ws, start=MONDAY + timedelta(hours=1), end=MONDAY + timedelta(hours=3), seed=1)
    with pytest.raises(TerminalError, match="must start at its end"):
        generate(ws, start=MONDAY + timedelta(hours=3), end=MONDAY + timedelta(hours=4), seed=1)
    with pytest.raises(TerminalError, match="seed 1, not 2"):
        generate(ws, start=MONDAY + timedelta(hours=2), end=MONDAY + timedelta(hours=3), seed=2)
    assert ws.info()["end"] == (MONDAY + timedelta(hours=2)).isoformat()


@pytest.mark.parametrize(("start", "end", "seed", "message"), [
    (datetime(2025, 3, 3), datetime(2025, 3, 4), 1, "not timezone-aware UTC"),
    (MONDAY + timedelta(minutes=30), MONDAY + timedelta(hours=2), 1, "not on the hour"),
    (MONDAY, MONDAY, 1, "empty range"),
    (MONDAY, MONDAY + timedelta(hours=1), -1, "negative"),
])
def test_bad_arguments_are_refused_with_a_fix(
    tmp_path: Path, start: datetime, end: datetime, seed: int, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        generate(_new(tmp_path / "ws.duckdb"), start=start, end=end, seed=seed)


# --- all views of one event agree ----------------------------------------------------------------------------------


def test_volume_is_moderate_and_every_row_falls_in_the_range(con: duckdb.DuckDBPyConnection) -> None:
    per_day = con.execute(
        f"SELECT count(*) / 3 FROM AzureDiagnostics WHERE Category = 'RequestResponse' AND {DEPLOYMENT} <> ''"
    ).fetchone()
    assert per_day is not None and 3000 <= per_day[0] <= 8000
    for table in TABLES:
        low, high = con.execute(f'SELECT min("TimeGenerated"), max("TimeGenerated") FROM "{table}"').fetchone() or ()
        assert low >= MONDAY and high < MONDAY + timedelta(days=3), table


def test_request_counts_in_logs_equal_the_requests_metric(con: duckdb.DuckDBPyConnection) -> None:
    logs = _pairs(con, f"""
        SELECT lower(ResourceId), {DEPLOYMENT}, ResultSignature, date_trunc('hour', TimeGenerated), count(*)
        FROM AzureDiagnostics WHERE Category = 'RequestResponse' AND {DEPLOYMENT} <> '' GROUP BY ALL""")
    metrics = _pairs(con, """
        SELECT lower(ResourceId), Dimensions->>'ModelDeploymentName', Dimensions->>'StatusCode',
               date_trunc('hour', TimeGenerated), sum(Total)
        FROM _PlatformMetrics WHERE MetricName = 'AzureOpenAIRequests' GROUP BY ALL""")
    assert logs == metrics
    assert {k[2] for k in logs} >= {"200", "400", "429", "500"}


def test_tokens_in_usage_logs_equal_the_token_metrics(con: duckdb.DuckDBPyConnection) -> None:
    usage = con.execute(f"""
        WITH u AS (
            SELECT CorrelationId, TimeGenerated, lower(ResourceId) AS rid,
                   {PROMPT.format(t="d")} AS p, {GENERATED.format(t="d")} AS g
            FROM AzureDiagnostics d WHERE Category = 'AzureOpenAIRequestUsage'),
        r AS (SELECT CorrelationId, {DEPLOYMENT} AS dep FROM AzureDiagnostics
              WHERE Category = 'RequestResponse' AND {DEPLOYMENT} <> '')
        SELECT rid, dep, date_trunc('hour', TimeGenerated), sum(p), sum(g), sum(p + g)
        FROM u JOIN r USING (CorrelationId) GROUP BY ALL""").fetchall()
    assert usage
    for column, metric in ((3, "ProcessedPromptTokens"), (4, "GeneratedTokens"), (5, "TokenTransaction")):
        metrics = _pairs(con, f"""
            SELECT lower(ResourceId), Dimensions->>'ModelDeploymentName', date_trunc('hour', TimeGenerated),
                   sum(Total)
            FROM _PlatformMetrics WHERE MetricName = '{metric}' GROUP BY ALL""")
        assert metrics == {tuple(row[:3]): float(row[column]) for row in usage}, metric
    dims = con.execute(
        "SELECT DISTINCT json_keys(Dimensions) FROM _PlatformMetrics WHERE MetricName = 'TokenTransaction'"
    ).fetchall()
    assert [sorted(d[0]) for d in dims] == [["ApiName", "ModelDeploymentName", "ModelVersion", "Region"]]


def test_apim_logs_agree_with_the_backend_logs(con: duckdb.DuckDBPyConnection) -> None:
    header_vs_usage = con.execute(f"""
        SELECT count(*), count(u.CorrelationId),
               count(*) FILTER (WHERE l.PromptTokens = {PROMPT.format(t="u")}
                                  AND l.CompletionTokens = {GENERATED.format(t="u")}
                                  AND l.TotalTokens = l.PromptTokens + l.CompletionTokens)
        FROM ApiManagementGatewayLlmLog l
        LEFT JOIN AzureDiagnostics u ON u.CorrelationId = l.CorrelationId AND u.Category = 'AzureOpenAIRequestUsage'
        WHERE l.DeploymentName <> ''""").fetchone()
    assert header_vs_usage is not None and header_vs_usage[0] > 0
    assert header_vs_usage[0] == header_vs_usage[1] == header_vs_usage[2]
    continuation = con.execute(
        "SELECT count(*), count(PromptTokens) FROM ApiManagementGatewayLlmLog WHERE SequenceNumber > 0"
    ).fetchone()
    assert continuation is not None and continuation[0] > 0 and continuation[1] == 0
    mi = DEMO_ORG.apim.managed_identity_object_id
    gateway = con.execute(f"""
        SELECT count(*), count(d.CorrelationId), count(*) FILTER (WHERE d.ResultSignature = g.ResponseCode::VARCHAR
                                                                 AND d.DurationMs = g.BackendTime),
               (SELECT count(*) FROM AzureDiagnostics WHERE Category = 'RequestResponse'
                AND json_extract_string(properties_s, '$.objectId') = '{mi}')
        FROM ApiManagementGatewayLogs g LEFT JOIN AzureDiagnostics d
          ON d.CorrelationId = g.CorrelationId AND d.Category = 'RequestResponse' AND {DEPLOYMENT} <> ''
    """).fetchone()
    assert gateway is not None and gateway[0] == gateway[1] == gateway[2] == gateway[3] > 0


def test_content_filter_blocks_are_some_of_the_400s(con: duckdb.DuckDBPyConnection) -> None:
    rai = _pairs(con, """
        SELECT Dimensions->>'ModelDeploymentName', date_trunc('hour', TimeGenerated), sum(Total)
        FROM _PlatformMetrics WHERE MetricName = 'RAIRejectedRequests' GROUP BY ALL""")
    bad = _pairs(con, f"""
        SELECT {DEPLOYMENT}, date_trunc('hour', TimeGenerated), count(*) FROM AzureDiagnostics
        WHERE Category = 'RequestResponse' AND ResultSignature = '400' AND {DEPLOYMENT} <> '' GROUP BY ALL""")
    assert rai and all(n <= bad.get(key, 0) for key, n in rai.items())
    assert sum(rai.values()) < sum(bad.values())  # validation errors are 400s too: logs alone cannot tell


def test_latency_metrics_aggregate_the_logged_durations(con: duckdb.DuckDBPyConnection) -> None:
    logs = con.execute(f"""
        SELECT {DEPLOYMENT}, count(*), sum(DurationMs), min(DurationMs), max(DurationMs) FROM AzureDiagnostics
        WHERE Category = 'RequestResponse' AND ResultSignature = '200' AND {DEPLOYMENT} <> ''
        GROUP BY ALL ORDER BY 1""").fetchall()
    metric = con.execute("""
        SELECT Dimensions->>'ModelDeploymentName', sum(Count)::BIGINT, sum(Total)::BIGINT, min(Minimum)::BIGINT,
               max(Maximum)::BIGINT
        FROM _PlatformMetrics WHERE MetricName = 'AzureOpenAITTLTInMS' GROUP BY ALL ORDER BY 1""").fetchall()
    assert logs == metric
    medians = dict(con.execute(f"""
        SELECT {DEPLOYMENT}, median(DurationMs) FROM AzureDiagnostics
        WHERE Category = 'RequestResponse' AND ResultSignature = '200' AND {DEPLOYMENT} <> '' GROUP BY ALL
    """).fetchall())
    assert 50 <= medians["text-embedding-3-small"] <= 150
    assert medians["gpt-4o-mini"] < medians["gpt-4o"] < medians["o4-mini"]


def test_azure_metrics_are_the_dimensional_metrics_summed_per_account_and_minute(
    con: duckdb.DuckDBPyConnection,
) -> None:
    flat = _pairs(con, """
        SELECT lower(ResourceId), MetricName, sum(Total) FROM AzureMetrics GROUP BY ALL""")
    dimensional = _pairs(con, """
        SELECT lower(ResourceId), MetricName, sum(Total) FROM _PlatformMetrics GROUP BY ALL""")
    assert flat == dimensional
    shape = con.execute("""
        SELECT count(*), count(DISTINCT (ResourceId, MetricName, TimeGenerated)),
               bool_and(TimeGrain = 'PT1M' AND ResourceId = upper(ResourceId) AND _ResourceId = lower(ResourceId)
                        AND abs(Average - Total / Count) < 1e-9)
        FROM AzureMetrics""").fetchone()
    assert shape is not None and shape[0] == shape[1] and shape[2]
    minutes = con.execute("""
        SELECT count(*), max(Maximum) FROM _PlatformMetrics
        WHERE MetricName = 'AzureOpenAIProvisionedManagedUtilizationV2'""").fetchone()
    assert minutes is not None and minutes[0] == 3 * 24 * 60 and 0 < minutes[1] <= 100


def test_the_429_storm_hits_gpt_4o_on_tuesday_afternoons(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(f"""
        SELECT (dayofweek(TimeGenerated) = 2 AND hour(TimeGenerated) BETWEEN 14 AND 16) AS storm,
               avg((ResultSignature = '429')::INT)
        FROM AzureDiagnostics
        WHERE Category = 'RequestResponse' AND {DEPLOYMENT} = 'gpt-4o' GROUP BY ALL""").fetchall()
    share = dict(rows)
    assert share[True] > 0.4 and share[False] < 0.02


def test_rows_follow_azure_formats(con: duckdb.DuckDBPyConnection) -> None:
    row = con.execute(f"""
        SELECT Resource, ResourceId, _ResourceId, CallerIPAddress, event_s, location_s, Tenant_s, properties_s,
               epoch_us(TimeGenerated), DurationMs, ResultSignature
        FROM AzureDiagnostics WHERE Category = 'RequestResponse' AND {DEPLOYMENT} = 'gpt-4.1' LIMIT 1""").fetchone()
    assert row is not None
    resource, rid, lower_rid, ip, event, location, tenant, props_text, time_us, duration, status = row
    assert resource == "CONTOSO-AOAI-SWC" and rid == rid.upper() and lower_rid == rid.lower()
    assert ip.endswith(".***") and ip.count(".") == 3
    assert (event, location, tenant) == ("ShoeboxCallResult", "swedencentral", "swedencentral")
    props = json.loads(props_text)
    assert list(props) == ["apiName", "requestTime", "requestLength", "responseTime", "responseLength", "objectId",
                           "streamType", "modelDeploymentName", "modelName", "modelVersion"]
    assert props["apiName"].startswith("Azure OpenAI API version ")
    assert props["responseTime"] == time_us * 10 + TICKS_AT_EPOCH
    assert (props["responseTime"] - props["requestTime"]) // 10_000 == duration
    assert props["streamType"] in ("Streaming", "Non-Streaming") and status.isdigit()
    usage = con.execute(
        "SELECT properties_s, event_s FROM AzureDiagnostics WHERE Category = 'AzureOpenAIRequestUsage'"
    ).fetchall()
    assert {event for _, event in usage} == {"ShoeboxAzureOpenAIRequestUsage"}
    shapes: Counter[str] = Counter()
    for text, _ in usage:
        tokens = json.loads(text)
        if "generatedTokens" in tokens:  # single-element arrays, as most published records show
            assert list(tokens) == ["promptTokens", "cachedTokens", "generatedTokens"]
            assert all(isinstance(v, list) and len(v) == 1 for v in tokens.values())
            prompt, cached, _ = (v[0] for v in tokens.values())
            shapes["arrays"] += 1
        else:  # plain numbers, completions named completionTokens
            assert list(tokens) == ["promptTokens", "cachedTokens", "completionTokens"]
            prompt, cached, _ = tokens.values()
            shapes["numbers"] += 1
        assert all(type(v) is int for v in (prompt, cached)) and cached <= prompt
    plain = PLAIN_USAGE_SIXTEENTHS / 16
    assert abs(shapes["numbers"] / len(usage) - plain) < 0.02, shapes
    key_auth = con.execute(f"""
        SELECT count(*) FROM AzureDiagnostics WHERE Category = 'RequestResponse' AND {DEPLOYMENT} <> ''
        AND json_extract_string(properties_s, '$.objectId') = ''""").fetchone()
    assert key_auth is not None and key_auth[0] > 0


def test_no_string_is_null_and_key_columns_are_filled(con: duckdb.DuckDBPyConnection) -> None:
    for table, columns in LOG_TABLES.items():
        strings = [c for c, kql in columns.items() if kql == "string"]
        nulls = " + ".join(f'count(*) FILTER (WHERE "{c}" IS NULL)' for c in strings)
        assert con.execute(f'SELECT {nulls} FROM "{table}"').fetchone() == (0,), table
        empty = con.execute(
            f'SELECT count(*) FROM "{table}" WHERE "TenantId" = \'\' OR "CorrelationId" = \'\' OR "Type" = \'\''
            if "CorrelationId" in columns else f'SELECT count(*) FROM "{table}" WHERE "ResourceId" = \'\''
        ).fetchone()
        assert empty == (0,), table


# --- through the engine ----------------------------------------------------------------------------------------------


def test_kql_and_metric_questions_run_over_the_generated_data(three_days: Path) -> None:
    ws = Workspace(three_days)
    result = ws.query('AzureDiagnostics | where Category == "RequestResponse" '
                      "| summarize count() by ResultSignature")
    counts = {row[0]: row[1] for row in result.rows}
    assert {"200", "400", "429"} <= set(counts) and counts["200"] > sum(counts.values()) * 0.9
    tokens = ws.query('ApiManagementGatewayLlmLog | where DeploymentName != "" '
                      "| join kind=leftouter ApiManagementGatewayLogs on CorrelationId "
                      "| summarize T = sum(TotalTokens) by ApimSubscriptionId, DeploymentName")
    assert {row[0] for row in tokens.rows} >= {"team-support", "team-marketing"}
    account = DEMO_ORG.account("contoso-aoai-eus")
    series = ws.metrics([MetricsRequest(account.resource_id, ("AzureOpenAIRequests",), MONDAY + timedelta(days=1),
                                        MONDAY + timedelta(days=2), timedelta(hours=1),
                                        ("ModelDeploymentName", "StatusCode"), {"StatusCode": ("429",)})])
    storm = {p.timestamp.hour: p.total for s in series if s.dimensions[0][1] == "gpt-4o" for p in s.points}
    assert min(storm[h] for h in (14, 15, 16)) > 50
