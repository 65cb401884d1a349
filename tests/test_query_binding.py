"""The two ways a window is bound give the same answer: the `let` prelude (Azure, `aoai-obs query`) and the
parameters the embedded source uses to cache translations."""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path

import pytest

from collector.rollups.kql import bind_window, load_queries
from collector.rollups.specs import ROLLUPS
from collector.rollups.windows import Window
from collector.workspace.engine import MetricsRequest
from collector.workspace.source import TIMESPAN_PAD, WorkspaceSource
from tests.test_collect_golden import ARM_ID, at, build_workspace

GRAIN = timedelta(minutes=5)
WINDOW = Window(at(10, 0), at(10, 15))


@pytest.mark.parametrize("query", load_queries(), ids=lambda q: q.name)
def test_prelude_and_parameters_agree(query: object, tmp_path: Path) -> None:
    workspace = build_workspace(tmp_path / "w.duckdb")
    source = WorkspaceSource("golden", workspace.path)
    spec = next(s for s in ROLLUPS if s.name == query.name)  # type: ignore[attr-defined]

    by_parameters = source.fetch(spec, WINDOW, GRAIN)
    by_prelude = workspace.query(bind_window(query, WINDOW.start, WINDOW.end, GRAIN),  # type: ignore[arg-type]
                                 (WINDOW.start - TIMESPAN_PAD, WINDOW.end + TIMESPAN_PAD))

    assert by_parameters.columns == by_prelude.columns
    assert sorted(by_parameters.rows) == sorted(by_prelude.rows)
    assert by_prelude.rows, "the golden workspace should give every query something to count"


def test_every_query_file_has_a_rollup_and_every_kql_rollup_a_file() -> None:
    assert {q.name for q in load_queries()} == {s.name for s in ROLLUPS if s.kind == "kql"}


@pytest.mark.parametrize("query", load_queries(), ids=lambda q: q.name)
def test_queries_take_their_window_from_the_collector(query: object) -> None:
    code = [line for line in query.text.splitlines() if not line.strip().startswith("//")]  # type: ignore[attr-defined]
    text = "\n".join(code)
    assert "ago(" not in text and "now(" not in text
    assert "WindowStart" in text and "WindowEnd" in text and "Grain" in text


def test_a_workspace_answers_each_window_and_timespan_afresh(tmp_path: Path) -> None:
    """A workspace reuses a text's translation, its columns and (for one timespan) its views from one query to the
    next; each answer must still be the one a workspace opened for that query alone gives."""
    build_workspace(tmp_path / "w.duckdb")
    kql = ("AzureDiagnostics | where TimeGenerated >= WindowStart and TimeGenerated < WindowEnd "
           "| summarize Requests = count() by Category")
    wide = (at(9, 0), at(11, 0))
    asked = [  # (window, timespan): windows that differ, then a timespan narrower than the window, then again
        (Window(at(10, 0), at(10, 5)), wide),
        (Window(at(10, 5), at(10, 10)), wide),
        (Window(at(9, 0), at(11, 0)), (at(10, 0), at(10, 4))),
        (Window(at(9, 0), at(11, 0)), wide),
        (Window(at(10, 0), at(10, 5)), wide),
    ]
    reused = WorkspaceSource("reused", tmp_path / "w.duckdb").workspace
    answers = []
    for window, timespan in asked:
        parameters = {"WindowStart": window.start, "WindowEnd": window.end}
        fresh = WorkspaceSource("fresh", tmp_path / "w.duckdb").workspace
        alone = fresh.query(kql, timespan, parameters)
        fresh.close()
        again = reused.query(kql, timespan, parameters)
        assert again.columns == alone.columns
        assert sorted(again.rows) == sorted(alone.rows)
        answers.append(dict(again.rows))
    # The hand-built rows: RequestResponse at 10:00:10, 10:01, 10:02, 10:04:59, then 10:05, 10:07, 10:07:30 and
    # usage rows at 10:00:11, 10:01:01, 10:07:01, 10:08; 10:15 and 09:59:59 lie outside the first two windows.
    assert answers[0] == {"RequestResponse": 4, "AzureOpenAIRequestUsage": 2}
    assert answers[1] == {"RequestResponse": 3, "AzureOpenAIRequestUsage": 2}
    assert answers[2] == {"RequestResponse": 3, "AzureOpenAIRequestUsage": 2}  # the timespan cuts 10:04:59
    assert answers[3] == {"RequestResponse": 9, "AzureOpenAIRequestUsage": 4}
    assert answers[4] == answers[0]


def test_datetimes_come_back_aware_in_utc_wherever_they_stand(tmp_path: Path) -> None:
    """DuckDB hands datetimes over naive (in UTC); the workspace makes them aware, in any column, null or not, the
    first time a text runs and when its cached form runs again; the metrics answer's bucket starts too."""
    workspace = build_workspace(tmp_path / "w.duckdb")
    kql = ("AzureDiagnostics | where TimeGenerated >= WindowStart and TimeGenerated < WindowEnd "
           "| summarize First = min(TimeGenerated), Requests = count(), Last = max(TimeGenerated) "
           "by Bucket = bin(TimeGenerated, 5m), Category | extend Never = datetime(null)")
    window = {"WindowStart": at(10, 0), "WindowEnd": at(10, 10)}
    first = workspace.query(kql, (at(9, 0), at(11, 0)), window)
    again = workspace.query(kql, (at(9, 0), at(11, 0)), window)
    assert [c.name for c in first.columns] == ["Bucket", "Category", "First", "Requests", "Last", "Never"]
    assert again.columns == first.columns
    # A summarize has no row order (DuckDB's hash aggregation may give another one each run): compare by key.
    assert sorted(again.rows, key=lambda r: (r[0], r[1])) == sorted(first.rows, key=lambda r: (r[0], r[1]))
    by_key = {(row[0], row[1]): row for row in first.rows}
    assert by_key[(at(10, 0), "RequestResponse")][2:5] == (at(10, 0, 10), 4, at(10, 4, 59))
    assert by_key[(at(10, 5), "RequestResponse")][2:5] == (at(10, 5), 3, at(10, 7, 30))
    for row in first.rows:
        assert all(row[i].tzinfo is UTC for i in (0, 2, 4))
        assert row[5] is None

    (series,) = workspace.metrics([MetricsRequest(ARM_ID, ("AzureOpenAIRequests",), at(10, 0), at(10, 10),
                                                  GRAIN)])
    assert series.points and all(p.timestamp.tzinfo is UTC for p in series.points)
