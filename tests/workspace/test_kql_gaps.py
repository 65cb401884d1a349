"""The KQL constructs the translator lacked (issue 15), over a workspace of five rows whose answers are worked out
by hand from those rows; and the refusals Azure makes, said as KQL messages, never a traceback."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.errors import QueryError
from collector.workspace.engine import Column, ResultTable, Workspace, insert_rows
from collector.workspace.result_format import as_csv, as_json, as_table, format_timespan


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 1, 1, hour, minute, tzinfo=UTC)


#: (TimeGenerated, Resource, ResultSignature, DurationMs, OperationName, AdditionalFields)
ROWS: list[tuple[Any, ...]] = [
    (at(10, 0), "ACCT-A", "200", 100, "ChatCompletions_Create", json.dumps({"a": 1, "b": "x"})),
    (at(10, 5), "acct-b", "429", 5, "ChatCompletions_Create", json.dumps({"a": 2, "c": True})),
    (at(10, 10), "ACCT-C", "200", 300, "Embeddings_Create", json.dumps({"a": 3})),
    (at(11, 0), "ACCT-A", "500", 40, "ChatCompletions_Create", None),
    # A row with no status, as tenants get: a number compared with this column must not reach DuckDB's cast.
    (at(11, 30), "ACCT-B", "", 7, "ChatCompletions_Create", None),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = Workspace(tmp_path_factory.mktemp("gaps") / "w.duckdb")
    ws.create()
    with ws.writer() as con:
        insert_rows(con, "AzureDiagnostics", ["TimeGenerated", "Resource", "ResultSignature", "DurationMs",
                                              "OperationName", "AdditionalFields"], ROWS)
    return ws


def resources(workspace: Workspace, where: str) -> list[str]:
    result = workspace.query(f"AzureDiagnostics | where {where} | order by TimeGenerated asc | project Resource")
    return [r[0] for r in result.rows]


def expected(keep: Any) -> list[str]:
    return [r[1] for r in ROWS if keep(r[1])]


@pytest.mark.parametrize(("where", "keep"), [
    # The Azure OpenAI Insights workbook's shape: a comma-separated parameter split into a dynamic array.
    ('Resource in~ (split("acct-a,ACCT-B", ","))', lambda r: r.lower() in ("acct-a", "acct-b")),
    ('Resource in (split("ACCT-A,acct-b", ","))', lambda r: r in ("ACCT-A", "acct-b")),
    ('Resource !in (split("ACCT-A,acct-b", ","))', lambda r: r not in ("ACCT-A", "acct-b")),
    ('Resource !in~ (split("acct-a,acct-b", ","))', lambda r: r.lower() not in ("acct-a", "acct-b")),
    ('Resource in~ (split(tolower("ACCT-C"), ","))', lambda r: r == "ACCT-C"),
    # Terms: "ACCT-C" holds the terms "ACCT" and "C"; "acct-b" has no term "c".
    ('Resource has_any (split("c,zzz", ","))', lambda r: r == "ACCT-C"),
    ('Resource has_any (split("ACCT,zzz", ","))', lambda r: True),
    ('Resource in ("split", "ACCT-C")', lambda r: r == "ACCT-C"),  # a list of scalars stays one
])
def test_set_operators_over_a_split_array(workspace: Workspace, where: str, keep: Any) -> None:
    assert resources(workspace, where) == expected(keep)


def test_a_let_bound_split_array_is_a_set_too(workspace: Workspace) -> None:
    result = workspace.query('let wanted = split("ACCT-C,acct-b", ",");\n'
                             "AzureDiagnostics | where Resource in (wanted) | order by TimeGenerated asc "
                             "| project Resource")
    assert [r[0] for r in result.rows] == ["acct-b", "ACCT-C"]


def test_text_inside_strings_and_comments_is_left_alone(workspace: Workspace) -> None:
    result = workspace.query('// Resource in~ (split("x", ","))\n'
                             'print s = "Resource in~ (split(\\"x\\", \\",\\"))", t = strcat("maxif(", ")")')
    assert result.rows == [('Resource in~ (split("x", ","))', "maxif()")]


def test_maxif_minif_countif_sumif_by_group(workspace: Workspace) -> None:
    result = workspace.query('AzureDiagnostics | summarize maxif(DurationMs, ResultSignature != "200"), '
                             'low = minif(DurationMs, ResultSignature != "200"), '
                             'n = countif(ResultSignature != "200"), '
                             'total = sumif(DurationMs, ResultSignature != "200") by Resource')
    assert result.column_names() == ["Resource", "maxif_DurationMs", "low", "n", "total"]
    assert [c.type for c in result.columns] == ["string", "long", "long", "long", "long"]
    by_hand: dict[str, list[int]] = {}
    for row in ROWS:
        by_hand.setdefault(row[1], [])
        if row[2] != "200":
            by_hand[row[1]].append(row[3])
    want = {r: (max(v, default=None), min(v, default=None), len(v), sum(v)) for r, v in by_hand.items()}
    assert {row[0]: row[1:] for row in result.rows} == want


def nearest_rank(values: list[int], percent: float) -> int:
    """Kusto's nearest-rank percentile (percentiles-aggregation-function page): the value at rank ceil(P/100 * N)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1]


def test_percentile_percentiles_and_percentiles_array_are_nearest_rank(workspace: Workspace) -> None:
    result = workspace.query("AzureDiagnostics | summarize percentile(DurationMs, 21), percentiles(DurationMs, 20, 50, "
                             "95), arr = percentiles_array(DurationMs, 50, 100), "
                             "arr2 = percentiles_array(DurationMs, dynamic([0, 60]))")
    assert result.column_names() == ["percentile_DurationMs_21", "percentile_DurationMs_20",
                                     "percentile_DurationMs_50", "percentile_DurationMs_95", "arr", "arr2"]
    durations = [r[3] for r in ROWS]
    (row,) = result.rows
    assert list(row[:4]) == [nearest_rank(durations, p) for p in (21, 20, 50, 95)]
    assert json.loads(row[4]) == [nearest_rank(durations, 50), nearest_rank(durations, 100)]
    assert json.loads(row[5]) == [nearest_rank(durations, 0), nearest_rank(durations, 60)]


def test_scalar_functions_over_aggregates_in_summarize(workspace: Workspace) -> None:
    result = workspace.query("AzureDiagnostics | summarize m = round(avg(DurationMs) / 3.0, 2), "
                             "s = tostring(max(DurationMs)) by OperationName | order by OperationName asc")
    chat = [r[3] for r in ROWS if r[4] == "ChatCompletions_Create"]
    assert result.rows == [("ChatCompletions_Create", round(sum(chat) / len(chat) / 3, 2), str(max(chat))),
                           ("Embeddings_Create", 100.0, "300")]


@pytest.mark.parametrize(("kql", "message"), [
    ("AzureDiagnostics | where Foo == 1", "'Foo' is not a column of AzureDiagnostics"),
    ("AzureDiagnostics | project Resourc", "did you mean 'Resource'?"),
    # Azure refuses the comparison (microsoft/BCTech#24: "Cannot compare values of types string and long").
    ("AzureDiagnostics | where ResultSignature == 429", "Cannot compare values of types string and long"),
    ("AzureDiagnostics | where 1.5 < ResultSignature", "Cannot compare values of types string and real"),
    # Names are case-sensitive in Kusto; DuckDB would resolve this one.
    ("azurediagnostics | count", "did you mean 'AzureDiagnostics'?"),
    # Beyond what the text shows: the engine's cast fails on the empty status while rows are produced.
    ("AzureDiagnostics | extend S = ResultSignature | where S == 429", "the value '' cannot be converted"),
])
def test_a_bad_query_is_a_kql_message_naming_what_is_wrong(workspace: Workspace, kql: str, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        workspace.query(kql)
    assert message in str(caught.value)
    assert "Binder Error" not in str(caught.value)


def test_an_explicit_cast_makes_the_comparison_valid(workspace: Workspace) -> None:
    assert resources(workspace, "toint(ResultSignature) == 429") == ["acct-b"]
    rows = workspace.query('AzureDiagnostics | extend ResultSignature = toint(ResultSignature) '
                           '| where ResultSignature == 429 | project Resource').rows
    assert rows == [("acct-b",)]


@pytest.mark.parametrize(("value", "text"), [
    (timedelta(days=2), "2.00:00:00"),
    (timedelta(seconds=90), "00:01:30"),
    (-timedelta(days=1, hours=2, minutes=3, seconds=4.5), "-1.02:03:04.5000000"),
    (timedelta(microseconds=1), "00:00:00.0000010"),
    (timedelta(0), "00:00:00"),
])
def test_timespans_print_as_kusto_prints_them(value: timedelta, text: str) -> None:
    assert format_timespan(value) == text


def test_every_type_in_every_format(workspace: Workspace) -> None:
    result = workspace.query('print t = 2d, neg = -1h, b = true, f = false, r = 1.0, r2 = 0.5, '
                             'd = dynamic({"a": [1, 2]}), n = long(null), s = "x"')
    assert [c.type for c in result.columns] == ["timespan", "timespan", "bool", "bool", "real", "real", "dynamic",
                                                "long", "string"]
    printed = ["2.00:00:00", "-01:00:00", "true", "false", "1", "0.5", '{"a":[1,2]}', "", "x"]
    assert list(csv.reader(io.StringIO(as_csv(result))))[1] == printed
    assert as_table(result).splitlines()[2].split() == [p for p in printed if p]
    (table,) = json.loads(as_json(result))["tables"]
    assert table["rows"] == [["2.00:00:00", "-01:00:00", True, False, 1.0, 0.5, '{"a":[1,2]}', None, "x"]]


def test_a_timespan_column_from_a_table_renders_as_json(workspace: Workspace) -> None:
    result = workspace.query("AzureDiagnostics | summarize span = max(TimeGenerated) - min(TimeGenerated)")
    (table,) = json.loads(as_json(result))["tables"]
    assert table["columns"] == [{"name": "span", "type": "timespan"}]
    assert table["rows"] == [[format_timespan(max(r[0] for r in ROWS) - min(r[0] for r in ROWS))]]
    assert table["rows"] == [["01:30:00"]]


def test_dynamic_values_print_as_compact_json(workspace: Workspace) -> None:
    result = workspace.query("AzureDiagnostics | where isnotnull(AdditionalFields) | order by TimeGenerated asc "
                             "| project AdditionalFields")
    want = [json.dumps(json.loads(r[5]), separators=(",", ":")) for r in ROWS if r[5] is not None]
    assert [row[0] for row in list(csv.reader(io.StringIO(as_csv(result))))[1:]] == want


def test_non_finite_reals_are_named_in_json() -> None:
    result = ResultTable((Column("r", "real"),), [(math.inf,), (-math.inf,), (math.nan,)])
    (table,) = json.loads(as_json(result))["tables"]
    assert table["rows"] == [["Infinity"], ["-Infinity"], ["NaN"]]
    assert as_csv(result).splitlines()[1:] == ["Infinity", "-Infinity", "NaN"]


CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.kql"))


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_the_corpus_runs_or_fails_as_its_header_says(workspace: Workspace, path: Path) -> None:
    """Each query of the corpus says in its first line whether it runs offline; a gap closed (or reopened) shows."""
    text = path.read_text(encoding="utf-8")
    status = text.splitlines()[0].removeprefix("// status:").strip()
    if status == "runs":
        assert workspace.query(text).rows, "the five rows should give every corpus query something"
    else:
        with pytest.raises(QueryError, match="unsupported KQL construct"):
            workspace.query(text)
