"""Importing a storage-account archive of Azure OpenAI diagnostic logs into the embedded workspace."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from collector.errors import InputError
from collector.workspace.archive import BadRecord, ImportReport, import_archive, parse_line, parse_resource_id
from collector.workspace.engine import Workspace

#: A real RequestResponse record as Azure writes it to a storage account (shared/reference/azure-telemetry.md §2.1).
REAL_RECORD = (
    '{"Tenant":"eastus","callerIpAddress":"81.2.69.***","category":"RequestResponse","correlationId":'
    '"d427a391-2bc7-4f38-9cbc-6560600e0981","durationMs":1021,"event":"ShoeboxCallResult","location":"eastus",'
    '"operationName":"ChatCompletions_Create","properties":{"apiName":"Azure OpenAI API version 2023-07-01-preview",'
    '"requestTime":638515262815394150,"requestLength":128,"responseTime":638515262825606520,"responseLength":1411,'
    '"objectId":"","streamType":"Non-Streaming","modelDeploymentName":"gpt-chat-pilot","modelName":"gpt-35-turbo",'
    '"modelVersion":"0301"},"resourceId":"/SUBSCRIPTIONS/12CABCB4-86E8-404F-A3D2-1DC9982F45CA/RESOURCEGROUPS/'
    'OBS-OPENAI-SERVICE-RS/PROVIDERS/MICROSOFT.COGNITIVESERVICES/ACCOUNTS/OBS-OPENAI-TEST-01","resultSignature":'
    '"200","time":"2024-05-24T12:23:02.4350000Z"}'
)
RESOURCE_ID = json.loads(REAL_RECORD)["resourceId"]
HOUR = datetime(2024, 5, 24, 12, tzinfo=UTC)


def request_record(
    *, deployment: str = "gpt-chat-pilot", correlation: str = "d427a391-2bc7-4f38-9cbc-6560600e0981",
    time: str = "2024-05-24T12:23:02.4350000Z", properties_as_text: bool = False, **changes: Any,
) -> str:
    """The real record, with another deployment, correlation id or time, and `properties` as object or text."""
    record: dict[str, Any] = json.loads(REAL_RECORD)
    record["properties"]["modelDeploymentName"] = deployment
    record.update(correlationId=correlation, time=time, **changes)
    if properties_as_text:
        # As some pipelines write it: a JSON string, here with spaces that the import must compact.
        record["properties"] = json.dumps(record["properties"])
    return json.dumps(record, separators=(",", ":"))


def usage_record(*, correlation: str, prompt: int, cached: int, generated: int,
                 time: str = "2024-05-24T12:23:02.5120000Z") -> str:
    """An AzureOpenAIRequestUsage record, `properties` as a JSON string of single-element token arrays."""
    record = json.loads(REAL_RECORD)
    record.update(
        category="AzureOpenAIRequestUsage", event="ShoeboxAzureOpenAIRequestUsage", correlationId=correlation,
        time=time, durationMs=0,
        properties=json.dumps({"promptTokens": [prompt], "cachedTokens": [cached], "generatedTokens": [generated]}),
    )
    return json.dumps(record, separators=(",", ":"))


def write_blob(archive: Path, category: str, lines: list[str], *, hour: datetime = HOUR,
               resource_id: str = RESOURCE_ID) -> Path:
    """Write a PT1H.json where Azure's diagnostic settings put it in a storage account."""
    path = (archive / f"insights-logs-{category.lower()}" / f"resourceId={resource_id}"
            / f"y={hour:%Y}" / f"m={hour:%m}" / f"d={hour:%d}" / f"h={hour:%H}" / "m=00" / "PT1H.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def new_workspace(tmp_path: Path) -> Workspace:
    workspace = Workspace(tmp_path / "ws.duckdb")
    workspace.create()
    return workspace


def sql(workspace: Workspace, text: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(workspace.path), read_only=True)
    try:
        return con.execute(text).fetchall()
    finally:
        con.close()


def row_count(workspace: Workspace) -> int:
    return int(sql(workspace, 'SELECT count(*) FROM "AzureDiagnostics"')[0][0])


def two_deployment_archive(archive: Path) -> None:
    """3 requests on gpt-chat-pilot and 2 on gpt-4o-batch over two hours, each with its usage record."""
    calls = [("gpt-chat-pilot", 100, 0, 10), ("gpt-chat-pilot", 200, 50, 20), ("gpt-4o-batch", 1000, 0, 300)]
    later = [("gpt-chat-pilot", 300, 100, 30), ("gpt-4o-batch", 2000, 500, 400)]
    for hour, batch in ((HOUR, calls), (HOUR.replace(hour=13), later)):
        stamp = f"{hour:%Y-%m-%dT%H}:05:00.1234567Z"
        ids = [f"{hour:%H}-{i}" for i in range(len(batch))]
        write_blob(archive, "RequestResponse", [
            request_record(deployment=d, correlation=c, time=stamp, properties_as_text=i % 2 == 1)
            for i, ((d, *_), c) in enumerate(zip(batch, ids, strict=True))
        ], hour=hour)
        write_blob(archive, "AzureOpenAIRequestUsage", [
            usage_record(correlation=c, prompt=p, cached=k, generated=g, time=stamp)
            for (_, p, k, g), c in zip(batch, ids, strict=True)
        ], hour=hour)


def test_the_real_record_lands_in_the_columns_log_analytics_gives_it(tmp_path: Path) -> None:
    workspace = new_workspace(tmp_path)
    write_blob(tmp_path / "archive", "RequestResponse", [REAL_RECORD])

    report = import_archive(workspace, tmp_path / "archive")

    assert report == ImportReport(files_read=1, files_skipped=0, rows_imported={"RequestResponse": 1}, bad_lines=[])
    result = workspace.query("AzureDiagnostics")
    row = dict(zip(result.column_names(), result.rows[0], strict=True))
    assert row["TimeGenerated"] == datetime(2024, 5, 24, 12, 23, 2, 435000, tzinfo=UTC)
    assert row["ResourceId"] == RESOURCE_ID
    assert row["_ResourceId"] == RESOURCE_ID.lower()
    assert row["SubscriptionId"] == "12CABCB4-86E8-404F-A3D2-1DC9982F45CA"
    assert row["ResourceGroup"] == "OBS-OPENAI-SERVICE-RS"
    assert row["ResourceProvider"] == "MICROSOFT.COGNITIVESERVICES"
    assert row["ResourceType"] == "ACCOUNTS"
    assert row["Resource"] == "OBS-OPENAI-TEST-01"
    assert (row["Category"], row["OperationName"], row["ResultSignature"]) == (
        "RequestResponse", "ChatCompletions_Create", "200")
    assert row["DurationMs"] == 1021
    assert row["CallerIPAddress"] == "81.2.69.***"
    assert row["CorrelationId"] == "d427a391-2bc7-4f38-9cbc-6560600e0981"
    assert (row["location_s"], row["event_s"], row["Tenant_s"]) == ("eastus", "ShoeboxCallResult", "eastus")
    assert (row["SourceSystem"], row["Type"]) == ("Azure", "AzureDiagnostics")
    expected_properties = json.loads(REAL_RECORD)["properties"]
    assert row["properties_s"] == json.dumps(expected_properties, separators=(",", ":"))
    # Strings the record does not carry are '' in the table itself, not NULL turned into '' on the way out.
    stored = sql(workspace, 'SELECT "TenantId", "ResultType", "Level", "OperationVersion", "AdditionalFields" '
                            'FROM "AzureDiagnostics"')
    assert stored == [("", "", "", "", None)]


def test_properties_as_a_json_string_is_stored_like_the_object(tmp_path: Path) -> None:
    workspace = new_workspace(tmp_path)
    write_blob(tmp_path / "a", "RequestResponse", [
        request_record(correlation="as-object"), request_record(correlation="as-text", properties_as_text=True),
    ])

    import_archive(workspace, tmp_path / "a")

    rows = dict(sql(workspace, 'SELECT "CorrelationId", "properties_s" FROM "AzureDiagnostics"'))
    assert rows["as-text"] == rows["as-object"]
    assert ", " not in rows["as-text"] and '": ' not in rows["as-text"]
    # The 18-digit .NET ticks survive the round trip exactly.
    assert json.loads(rows["as-text"])["requestTime"] == 638515262815394150


@pytest.mark.parametrize("below", ["", "insights-logs-requestresponse", "one file"])
def test_resource_id_survives_whichever_folder_is_imported(tmp_path: Path, below: str) -> None:
    # The trap: the resourceId= folder looks like a hive partition, and DuckDB's read_json blanks the record's own.
    workspace = new_workspace(tmp_path)
    blob = write_blob(tmp_path / "archive", "RequestResponse", [REAL_RECORD])
    root = blob if below == "one file" else tmp_path / "archive" / below

    import_archive(workspace, root)

    assert sql(workspace, 'SELECT "ResourceId", "_ResourceId", "Resource", "SubscriptionId" FROM "AzureDiagnostics"') \
        == [(RESOURCE_ID, RESOURCE_ID.lower(), "OBS-OPENAI-TEST-01", "12CABCB4-86E8-404F-A3D2-1DC9982F45CA")]
    # Through the archive folder afterwards, the same blob is recognised as already imported.
    again = import_archive(workspace, tmp_path / "archive")
    assert (again.files_read, again.files_skipped, row_count(workspace)) == (0, 1, 1)


def test_kql_over_both_categories_gives_the_archived_numbers(tmp_path: Path) -> None:
    workspace = new_workspace(tmp_path)
    two_deployment_archive(tmp_path / "archive")

    report = import_archive(workspace, tmp_path / "archive")

    assert report.files_read == 4
    assert report.rows_imported == {"RequestResponse": 5, "AzureOpenAIRequestUsage": 5}
    per_deployment = workspace.query(
        'AzureDiagnostics | where Category == "RequestResponse" | extend p = parse_json(properties_s) '
        "| summarize requests = count() by deployment = tostring(p.modelDeploymentName) | order by deployment asc"
    )
    assert per_deployment.rows == [("gpt-4o-batch", 2), ("gpt-chat-pilot", 3)]
    tokens = workspace.query(
        'AzureDiagnostics | where Category == "AzureOpenAIRequestUsage" | extend u = parse_json(properties_s) '
        "| project CorrelationId, prompt = tolong(u.promptTokens[0]), cached = tolong(u.cachedTokens[0]) "
        '| join kind=inner (AzureDiagnostics | where Category == "RequestResponse" '
        "| project CorrelationId, deployment = tostring(parse_json(properties_s).modelDeploymentName)) "
        "on CorrelationId "
        "| summarize prompt = sum(prompt), uncached = sum(prompt - cached) by deployment | order by deployment asc"
    )
    assert tokens.rows == [("gpt-4o-batch", 3000, 2500), ("gpt-chat-pilot", 600, 450)]
    info = workspace.info()
    assert (info["start"], info["end"]) == ("2024-05-24T12:00:00+00:00", "2024-05-24T14:00:00+00:00")


def test_keys_are_matched_in_any_case_and_unknown_fields_are_kept(tmp_path: Path) -> None:
    workspace = new_workspace(tmp_path)
    record = json.loads(REAL_RECORD)
    record["callerIPAddress"] = record.pop("callerIpAddress")
    record["ResultSignature"] = record.pop("resultSignature")
    record["Category"] = record.pop("category")
    record.update(resultType="Succeeded", Level="Informational", identity={"claim": {"appid": "x"}})
    write_blob(tmp_path / "a", "RequestResponse", ["", json.dumps(record), "   "])

    report = import_archive(workspace, tmp_path / "a")

    assert report.rows_imported == {"RequestResponse": 1}
    assert sql(workspace, 'SELECT "CallerIPAddress", "ResultSignature", "Category", "ResultType", "Level", '
                          '"AdditionalFields"->>\'$.identity.claim.appid\' FROM "AzureDiagnostics"') == [
        ("81.2.69.***", "200", "RequestResponse", "Succeeded", "Informational", "x")]


def bad_archive(archive: Path) -> tuple[Path, Path]:
    """Two files with good and bad lines: 3 good + 2 bad, and 2 good + 3 bad."""
    first = write_blob(archive, "RequestResponse", [
        request_record(correlation="a1"),
        '{"time": "2024-05-24T12:00:00Z", "resourceId": ',  # line 2: cut short
        request_record(correlation="a2"),
        "[1, 2, 3]",  # line 4: not an object
        request_record(correlation="a3"),
    ])
    second = write_blob(archive, "AzureOpenAIRequestUsage", [
        json.dumps({k: v for k, v in json.loads(usage_record(correlation="b0", prompt=1, cached=0, generated=1))
                    .items() if k != "time"}),  # line 1: no time
        usage_record(correlation="b1", prompt=1, cached=0, generated=1),
        usage_record(correlation="b2", prompt=1, cached=0, generated=1, time="yesterday noon"),  # line 3
        usage_record(correlation="b3", prompt=1, cached=0, generated=1),
        request_record(correlation="b4", properties='{"apiName": "Azure OpenAI'),  # line 5: properties text cut
    ])
    return first, second


def test_every_bad_line_of_every_file_is_reported_and_nothing_is_imported(tmp_path: Path) -> None:
    workspace = new_workspace(tmp_path)
    first, second = bad_archive(tmp_path / "archive")

    with pytest.raises(InputError) as caught:
        import_archive(workspace, tmp_path / "archive")

    located = [(p.path, p.line) for p in caught.value.problems]
    assert sorted(located) == sorted([(first, 2), (first, 4), (second, 1), (second, 3), (second, 5)])
    messages = {(p.path, p.line): p.message for p in caught.value.problems}
    assert messages[(first, 2)].startswith("not JSON")
    assert "array" in messages[(first, 4)]
    assert "time" in messages[(second, 1)]
    assert "yesterday noon" in messages[(second, 3)]
    assert "properties" in messages[(second, 5)]
    assert "5 bad line(s) in 2 file(s)" in str(caught.value)
    assert f"{first}:2: not JSON" in str(caught.value)
    assert row_count(workspace) == 0
    assert workspace.info() == {}


def test_skip_bad_lines_imports_the_good_ones_and_returns_the_bad(tmp_path: Path) -> None:
    workspace = new_workspace(tmp_path)
    first, second = bad_archive(tmp_path / "archive")

    report = import_archive(workspace, tmp_path / "archive", skip_bad_lines=True)

    assert report.rows_imported == {"RequestResponse": 3, "AzureOpenAIRequestUsage": 2}
    assert sorted((p.path, p.line) for p in report.bad_lines) == sorted(
        [(first, 2), (first, 4), (second, 1), (second, 3), (second, 5)])
    assert sorted(r[0] for r in sql(workspace, 'SELECT "CorrelationId" FROM "AzureDiagnostics"')) == [
        "a1", "a2", "a3", "b1", "b3"]
    # The files are recorded as imported even with lines left out, so a second run does not double the good ones.
    assert import_archive(workspace, tmp_path / "archive", skip_bad_lines=True).files_skipped == 2
    assert row_count(workspace) == 5


def test_importing_the_same_archive_again_changes_nothing(tmp_path: Path) -> None:
    workspace = new_workspace(tmp_path)
    two_deployment_archive(tmp_path / "archive")
    import_archive(workspace, tmp_path / "archive")
    info = workspace.info()

    again = import_archive(workspace, tmp_path / "archive")

    assert again == ImportReport(files_read=0, files_skipped=4, rows_imported={}, bad_lines=[])
    assert row_count(workspace) == 10
    assert workspace.info() == info
    assert sum(k.startswith("import:insights-logs-") for k in info) == 4


def test_a_new_hour_is_imported_alongside_the_ones_already_there(tmp_path: Path) -> None:
    workspace = new_workspace(tmp_path)
    write_blob(tmp_path / "archive", "RequestResponse", [REAL_RECORD])
    import_archive(workspace, tmp_path / "archive")
    write_blob(tmp_path / "archive", "RequestResponse", [request_record(time="2024-05-24T09:59:59.9999999Z")],
               hour=HOUR.replace(hour=9))

    report = import_archive(workspace, tmp_path / "archive")

    assert (report.files_read, report.files_skipped, row_count(workspace)) == (1, 1, 2)
    info = workspace.info()
    assert (info["start"], info["end"]) == ("2024-05-24T09:00:00+00:00", "2024-05-24T13:00:00+00:00")


def test_a_file_changed_since_its_import_is_reported_and_nothing_is_imported(tmp_path: Path) -> None:
    workspace = new_workspace(tmp_path)
    blob = write_blob(tmp_path / "archive", "RequestResponse", [REAL_RECORD])
    import_archive(workspace, tmp_path / "archive")
    # Azure appends to the hour's blob until the hour ends: a later copy of the archive has more lines.
    write_blob(tmp_path / "archive", "RequestResponse", [REAL_RECORD, request_record(correlation="later")])
    write_blob(tmp_path / "archive", "RequestResponse", [REAL_RECORD], hour=HOUR.replace(hour=13))

    with pytest.raises(InputError) as caught:
        import_archive(workspace, tmp_path / "archive", skip_bad_lines=True)

    [problem] = caught.value.problems
    assert (problem.path, problem.line) == (blob, None)
    assert "imported before as insights-logs-requestresponse/resourceId=" in problem.message
    assert "with other content" in problem.message
    assert "it has grown" in problem.message
    assert "new workspace" in problem.hint
    assert row_count(workspace) == 1
    assert not any("h=13" in key for key in workspace.info())


def test_an_empty_folder_is_an_input_error(tmp_path: Path) -> None:
    workspace = new_workspace(tmp_path)
    (tmp_path / "empty").mkdir()

    with pytest.raises(InputError, match="nothing to import") as caught:
        import_archive(workspace, tmp_path / "empty")

    assert "PT1H.json" in caught.value.problems[0].message


@pytest.mark.parametrize(("resource_id", "expected"), [
    (RESOURCE_ID, ("12CABCB4-86E8-404F-A3D2-1DC9982F45CA", "OBS-OPENAI-SERVICE-RS", "MICROSOFT.COGNITIVESERVICES",
                   "ACCOUNTS", "OBS-OPENAI-TEST-01")),
    ("/subscriptions/abc/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/my-aoai",
     ("ABC", "RG", "MICROSOFT.COGNITIVESERVICES", "ACCOUNTS", "MY-AOAI")),
    ("/SUBSCRIPTIONS/ABC/RESOURCEGROUPS/PROVIDERS/PROVIDERS/MICROSOFT.WEB/SITES/APP/SLOTS/STAGING",
     ("ABC", "PROVIDERS", "MICROSOFT.WEB", "SLOTS", "STAGING")),
    ("/PROVIDERS/MICROSOFT.AADIAM", ("", "", "MICROSOFT.AADIAM", "", "")),
    ("not an arm id", ("", "", "", "", "")),
])
def test_resource_columns_are_parsed_from_the_id(resource_id: str, expected: tuple[str, ...]) -> None:
    columns = parse_resource_id(resource_id)

    assert (columns["SubscriptionId"], columns["ResourceGroup"], columns["ResourceProvider"],
            columns["ResourceType"], columns["Resource"]) == expected
    assert (columns["ResourceId"], columns["_ResourceId"]) == (resource_id.upper(), resource_id.lower())


@pytest.mark.parametrize(("time", "expected"), [
    ("2024-05-24T12:23:02.4350000Z", datetime(2024, 5, 24, 12, 23, 2, 435000, tzinfo=UTC)),
    ("2024-05-24T12:23:02.4350009Z", datetime(2024, 5, 24, 12, 23, 2, 435000, tzinfo=UTC)),
    ("2024-05-24T14:23:02+02:00", datetime(2024, 5, 24, 12, 23, 2, tzinfo=UTC)),
    ("2024-05-24T12:23:02", datetime(2024, 5, 24, 12, 23, 2, tzinfo=UTC)),
])
def test_times_become_utc(time: str, expected: datetime) -> None:
    [row] = parse_line(request_record(time=time))

    assert row["TimeGenerated"] == expected


@pytest.mark.parametrize(("duration", "expected"), [(1021, 1021), ("1021", 1021), (12.6, 13), (None, None)])
def test_duration_is_a_long_or_null(duration: Any, expected: int | None) -> None:
    [row] = parse_line(request_record(durationMs=duration))

    assert row["DurationMs"] == expected


@pytest.mark.parametrize(("change", "message"), [
    ({"durationMs": "slow"}, "durationMs"),
    ({"durationMs": True}, "durationMs"),
    ({"time": 1716553382}, "time"),
    ({"resourceId": ""}, "no resourceId"),
    ({"category": None, "time": None}, "no time, category"),
])
def test_records_that_cannot_become_rows(change: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRecord, match=message):
        parse_line(request_record(**change))


def test_an_event_hubs_envelope_of_records_gives_one_row_each() -> None:
    line = json.dumps({"records": [json.loads(request_record(correlation=c)) for c in ("x", "y")]})

    assert [row["CorrelationId"] for row in parse_line(line)] == ["x", "y"]
    with pytest.raises(BadRecord, match=r"records\[1\]: a JSON string"):
        parse_line(json.dumps({"records": [json.loads(REAL_RECORD), "oops"]}))


def test_windows_line_ends_a_byte_order_mark_and_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    blob = write_blob(tmp_path / "a", "RequestResponse", [])
    blob.write_bytes(b"\xef\xbb\xbf" + REAL_RECORD.encode() + b"\r\n\r\n" + b'{"time": "\xff"}\r\n')
    workspace = new_workspace(tmp_path)

    report = import_archive(workspace, tmp_path / "a", skip_bad_lines=True)

    assert report.rows_imported == {"RequestResponse": 1}
    assert [(p.line, p.message) for p in report.bad_lines] == [(3, "not UTF-8 text (byte 11 of the line)")]
