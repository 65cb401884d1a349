"""LogAnalyticsSource through the real azure-monitor-query client against the HTTPS emulator: the same rollups as the
embedded workspace, and every fault of the query API handled (retried, split, or left for the next run)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from collector.collection.loganalytics import LogAnalyticsSource
from collector.collection.run import Timing, backfill
from collector.config import LogAnalyticsSourceSettings
from collector.errors import QueryError, TerminalError, TransientError
from collector.ratelimit import RateLimiter
from collector.rollups.kql import packaged_query_dir
from collector.rollups.specs import REQUESTS, ROLLUPS, RollupSpec
from collector.rollups.windows import Window
from collector.store.database import Store
from collector.workspace.engine import Workspace
from collector.workspace.generate import generate
from collector.workspace.source import WorkspaceSource
from tests.emulators.loganalytics_api import (
    LogAnalyticsEmulator,
    RecordedRequest,
    forbidden,
    malformed,
    no_content,
    parse_timespan,
    partial_error,
    server_error,
    slow,
    stalled,
    throttled,
)
from tests.test_ratelimit import FakeTime

WORKSPACE_ID = "9a1b6c2d-0000-4000-8000-00000000d3e0"
EMPTY_WORKSPACE_ID = "9a1b6c2d-0000-4000-8000-0000000e4471"
DAY0 = datetime(2025, 3, 3, tzinfo=UTC)
DAYS = 3
NOW = DAY0 + timedelta(days=DAYS + 1)
KQL_JOBS = [s for s in ROLLUPS if s.kind == "kql"]
GRAIN = timedelta(minutes=5)
#: Hour-long windows for the fault tests, where a few windows of one job are enough.
TIMING = Timing(grain=GRAIN, lag=timedelta(minutes=10), lookback=timedelta(hours=1), max_window=timedelta(hours=1))
SINCE, UNTIL = DAY0 + timedelta(hours=9), DAY0 + timedelta(hours=12)


class FakeCredential:
    """Our own stand-in for azure-identity: a fixed token, and the scopes it was asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("emulator-token", int(time.time()) + 3600)


@pytest.fixture(scope="module")
def demo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    workspace = Workspace(path)
    workspace.create()
    generate(workspace, start=DAY0, end=DAY0 + timedelta(days=DAYS), seed=11)
    empty = path.with_name("empty.duckdb")
    Workspace(empty).create()
    return path


@pytest.fixture
def emulator(demo_path: Path, tmp_path: Path) -> Iterator[LogAnalyticsEmulator]:
    served = LogAnalyticsEmulator({WORKSPACE_ID: demo_path, EMPTY_WORKSPACE_ID: demo_path.with_name("empty.duckdb")},
                                  now=lambda: NOW)
    with served.running(tmp_path) as running:
        yield running


def settings(emulator: LogAnalyticsEmulator, **overrides: Any) -> LogAnalyticsSourceSettings:
    values: dict[str, Any] = {"kind": "log_analytics", "name": "demo", "workspace_ids": [WORKSPACE_ID],
                              "endpoint": emulator.url, "ca_bundle": emulator.ca_bundle, "retries": 2}
    return LogAnalyticsSourceSettings(**(values | overrides))


def source(emulator: LogAnalyticsEmulator, credential: FakeCredential | None = None, **overrides: Any
           ) -> LogAnalyticsSource:
    """The product source, configured only by settings, with a fast retry backoff and a short response grace."""
    query_dir = overrides.pop("query_dir", None)
    return LogAnalyticsSource(settings(emulator, **overrides), credential or FakeCredential(), query_dir=query_dir,
                              retry_backoff_factor=0.01, retry_backoff_max=0.05,
                              response_grace=timedelta(seconds=0.5))


def open_store(path: Path) -> Store:
    return Store.open(f"sqlite:///{path}")


def reference_dump(demo_path: Path, tmp_path: Path, specs: list[RollupSpec], timing: Timing, since: datetime,
                   until: datetime) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """What the embedded workspace source stores for the same jobs and range: the fault-free run."""
    store = open_store(tmp_path / "reference.sqlite")
    embedded = WorkspaceSource("demo", demo_path)
    try:
        summary = backfill(store, [embedded], specs, timing, since, until, NOW)
        assert summary.ok, summary.line()
        return list(store.iter_dump())
    finally:
        embedded.close()
        store.close()


def job_window(job: str, start: datetime) -> Any:
    def matches(request: RecordedRequest) -> bool:
        return request.job == job and request.window_start == start
    return matches


# -- end to end ---------------------------------------------------------------------------------------------------


def test_the_sdk_through_the_emulator_stores_what_the_embedded_workspace_stores(
    demo_path: Path, emulator: LogAnalyticsEmulator, tmp_path: Path
) -> None:
    timing = Timing(grain=GRAIN, lag=timedelta(minutes=10), lookback=timedelta(hours=1),
                    max_window=timedelta(hours=12))
    end = DAY0 + timedelta(days=DAYS)
    expected = reference_dump(demo_path, tmp_path, KQL_JOBS, timing, DAY0, end)
    credential = FakeCredential()
    azure = source(emulator, credential)
    store = open_store(tmp_path / "azure.sqlite")

    summary = backfill(store, [azure], KQL_JOBS, timing, DAY0, end, NOW)
    azure.close()

    assert summary.ok, summary.line()
    assert list(store.iter_dump()) == expected
    assert sum(len(rows) for _, rows in expected) > 10_000
    # One request per job and window, each with a bearer token for the public audience, the window padded by the
    # same 15 minutes as the embedded source, and the server timeout in the Prefer header.
    queries = emulator.queries()
    assert len(queries) == len(KQL_JOBS) * DAYS * 2
    assert f"with {len(queries)} query(ies)" in summary.line()
    assert {q.headers["authorization"] for q in queries} == {"Bearer emulator-token"}
    assert set(credential.scopes) == {("https://api.loganalytics.io/.default",)}
    assert {q.headers["prefer"] for q in queries} == {"wait=180"}
    first = queries[0]
    assert first.path == f"/v1/workspaces/{WORKSPACE_ID}/query"
    assert first.body["timespan"] == "2025-03-02T23:45:00.000Z/2025-03-03T12:15:00.000Z"
    assert first.body["workspaces"] is None
    assert first.query.startswith("let WindowStart = datetime(2025-03-03T00:00:00Z);\n")


def test_several_workspaces_go_in_one_query(demo_path: Path, emulator: LogAnalyticsEmulator, tmp_path: Path) -> None:
    expected = reference_dump(demo_path, tmp_path, [REQUESTS], TIMING, SINCE, UNTIL)
    azure = source(emulator, workspace_ids=[WORKSPACE_ID, EMPTY_WORKSPACE_ID], audience="https://api.loganalytics.us")
    credential = azure._credential
    store = open_store(tmp_path / "azure.sqlite")

    summary = backfill(store, [azure], [REQUESTS], TIMING, SINCE, UNTIL, NOW)

    assert summary.ok, summary.line()
    assert list(store.iter_dump()) == expected
    assert [q.body["workspaces"] for q in emulator.queries()] == [[EMPTY_WORKSPACE_ID]] * 3
    assert isinstance(credential, FakeCredential)
    assert set(credential.scopes) == {("https://api.loganalytics.us/.default",)}


# -- faults through the real SDK ------------------------------------------------------------------------------------


def run_requests_job(emulator: LogAnalyticsEmulator, tmp_path: Path, name: str = "azure", **overrides: Any
                     ) -> tuple[Store, Any]:
    store = open_store(tmp_path / f"{name}.sqlite")
    azure = source(emulator, **overrides)
    summary = backfill(store, [azure], [REQUESTS], TIMING, SINCE, UNTIL, NOW)
    azure.close()
    return store, summary


def test_a_429_is_retried_after_its_retry_after(demo_path: Path, emulator: LogAnalyticsEmulator,
                                                 tmp_path: Path) -> None:
    expected = reference_dump(demo_path, tmp_path, [REQUESTS], TIMING, SINCE, UNTIL)
    emulator.inject(throttled(retry_after="1"))
    started = time.monotonic()

    store, summary = run_requests_job(emulator, tmp_path)

    assert summary.ok, summary.line()
    assert time.monotonic() - started >= 1.0  # the SDK waited as told, not its own (tiny) test backoff
    assert len(emulator.queries()) == 3 + 1
    assert list(store.iter_dump()) == expected


@pytest.mark.parametrize("status", [500, 503, 504])
def test_a_5xx_is_retried(status: int, demo_path: Path, emulator: LogAnalyticsEmulator, tmp_path: Path) -> None:
    expected = reference_dump(demo_path, tmp_path, [REQUESTS], TIMING, SINCE, UNTIL)
    emulator.inject(server_error(status))

    store, summary = run_requests_job(emulator, tmp_path)

    assert summary.ok, summary.line()
    assert len(emulator.queries()) == 3 + 1
    assert list(store.iter_dump()) == expected


def test_retries_exhausted_leave_the_window_for_the_next_run(demo_path: Path, emulator: LogAnalyticsEmulator,
                                                             tmp_path: Path) -> None:
    expected = reference_dump(demo_path, tmp_path, [REQUESTS], TIMING, SINCE, UNTIL)
    broken = SINCE + timedelta(hours=1)
    emulator.inject(*[throttled(retry_after="0", when=job_window(REQUESTS.name, broken))] * 3)

    store, first = run_requests_job(emulator, tmp_path, retries=2)

    assert not first.ok
    [failed] = first.failures()
    assert failed.failed == Window(broken, broken + timedelta(hours=1)) and failed.transient
    assert "HTTP 429" in failed.error and "Retry-After 0 s" in failed.error
    assert f"demo/{REQUESTS.name} window {failed.failed}" in failed.error
    assert f"missing: demo/{REQUESTS.name} from {broken.isoformat()}" in first.line()
    assert store.watermark("demo", REQUESTS.name) == broken
    assert max(r["bucket_start"] for r in store.read(REQUESTS)) < broken

    azure = source(emulator)  # the next run, the service healthy again
    second = backfill(store, [azure], [REQUESTS], TIMING, SINCE, UNTIL, NOW)

    assert second.ok, second.line()
    assert list(store.iter_dump()) == expected


def test_a_partial_error_splits_the_window(demo_path: Path, emulator: LogAnalyticsEmulator, tmp_path: Path) -> None:
    expected = reference_dump(demo_path, tmp_path, [REQUESTS], TIMING, SINCE, UNTIL)
    emulator.inject(partial_error(when=job_window(REQUESTS.name, SINCE)))

    store, summary = run_requests_job(emulator, tmp_path)

    assert summary.ok, summary.line()
    [outcome] = summary.outcomes
    assert (outcome.splits, outcome.queries) == (1, 3 + 2)
    asked = [(q.window_start, q.window_end) for q in emulator.queries()]
    assert {(SINCE, SINCE + timedelta(minutes=30)), (SINCE + timedelta(minutes=30), SINCE + timedelta(hours=1))} <= \
        set(asked[1:])  # the lookahead may ask for the next window before the halves
    assert list(store.iter_dump()) == expected


def test_a_backfill_over_the_row_limit_completes_by_splitting(demo_path: Path, emulator: LogAnalyticsEmulator,
                                                              tmp_path: Path) -> None:
    timing = Timing(grain=GRAIN, lag=timedelta(minutes=10), lookback=timedelta(hours=1), max_window=timedelta(hours=6))
    since, until = DAY0 + timedelta(hours=6), DAY0 + timedelta(hours=12)
    expected = reference_dump(demo_path, tmp_path, [REQUESTS], timing, since, until)
    emulator.max_rows = 40  # well over one 5-minute bucket's rows, well under an hour's
    store = open_store(tmp_path / "azure.sqlite")

    summary = backfill(store, [source(emulator)], [REQUESTS], timing, since, until, NOW)

    assert summary.ok, summary.line()
    [outcome] = summary.outcomes
    queries = len(emulator.queries())
    assert outcome.splits > 2 and outcome.queries == queries
    assert f"with {queries} query(ies), {outcome.splits} window(s) split in halves" in summary.line()
    assert list(store.iter_dump()) == expected


def test_a_204_is_no_data(demo_path: Path, emulator: LogAnalyticsEmulator, tmp_path: Path) -> None:
    # Before the demo traffic starts the workspace is empty: the service may then answer 204, which crashes the SDK.
    since, until = DAY0 - timedelta(hours=1), DAY0 + timedelta(hours=1)
    expected = reference_dump(demo_path, tmp_path, [REQUESTS], TIMING, since, until)
    emulator.inject(no_content(when=job_window(REQUESTS.name, since)))
    store = open_store(tmp_path / "azure.sqlite")

    summary = backfill(store, [source(emulator)], [REQUESTS], TIMING, since, until, NOW)

    assert summary.ok, summary.line()
    assert store.watermark("demo", REQUESTS.name) == until
    assert list(store.iter_dump()) == expected


def fetch_first_window(azure: LogAnalyticsSource, spec: RollupSpec = REQUESTS) -> Any:
    return azure.fetch(spec, Window(SINCE, SINCE + timedelta(hours=1)), GRAIN)


def test_a_malformed_body_is_transient(emulator: LogAnalyticsEmulator) -> None:
    emulator.inject(malformed())

    with pytest.raises(TransientError, match=r"demo/requests_by_status window .*200"):
        fetch_first_window(source(emulator, retries=0))

    assert fetch_first_window(source(emulator)).rows  # the next try gets the answer


def test_a_query_the_service_refuses_is_a_query_error(emulator: LogAnalyticsEmulator, tmp_path: Path) -> None:
    queries = tmp_path / "queries"
    shutil.copytree(packaged_query_dir(), queries, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    broken = queries / "requests_by_status.kql"
    broken.write_text(broken.read_text().replace("summarize", "summarise", 1))

    with pytest.raises(QueryError, match="refused the query") as raised:
        fetch_first_window(source(emulator, query_dir=queries))

    assert isinstance(raised.value, TerminalError)
    assert "BadArgumentError" in str(raised.value) and "expecting" in str(raised.value)  # the engine's own words
    assert len(emulator.queries()) == 1  # a 400 is not retried


def test_a_query_past_the_server_timeout_is_transient(emulator: LogAnalyticsEmulator) -> None:
    emulator.inject(slow(5))
    azure = source(emulator, retries=0, timeout="1s")

    with pytest.raises(TransientError, match="HTTP 504"):
        fetch_first_window(azure)

    assert emulator.queries()[0].headers["prefer"] == "wait=1"


def test_no_answer_within_the_client_timeout_is_transient(emulator: LogAnalyticsEmulator) -> None:
    emulator.inject(stalled(5))
    started = time.monotonic()

    with pytest.raises(TransientError, match="no answer from Log Analytics within 2 s"):
        fetch_first_window(source(emulator, timeout="1s"))

    assert time.monotonic() - started < 4  # the server timeout (1 s) plus the grace (0.5 s), not the stall


@pytest.mark.parametrize(("fault", "workspace", "expected"), [
    (forbidden(), WORKSPACE_ID, "Log Analytics Reader"),
    (None, "00000000-0000-0000-0000-000000000404", "knows no such workspace"),
])
def test_access_and_unknown_workspaces_are_terminal(fault: Any, workspace: str, expected: str,
                                                    emulator: LogAnalyticsEmulator) -> None:
    if fault is not None:
        emulator.inject(fault)

    with pytest.raises(TerminalError, match=expected) as raised:
        fetch_first_window(source(emulator, workspace_ids=[workspace]))

    assert not isinstance(raised.value, TransientError)


def test_an_unreachable_endpoint_is_transient(emulator: LogAnalyticsEmulator) -> None:
    closed = source(emulator, endpoint="https://127.0.0.1:9", retries=0)

    with pytest.raises(TransientError, match="cannot reach"):
        fetch_first_window(closed)


def test_plain_http_is_refused_before_any_token_is_sent(emulator: LogAnalyticsEmulator) -> None:
    with pytest.raises(TerminalError, match="https"):
        source(emulator, endpoint=emulator.url.replace("https://", "http://"))


# -- the rate limiter -----------------------------------------------------------------------------------------------


def test_every_attempt_of_the_sdk_goes_through_the_rate_limiter(emulator: LogAnalyticsEmulator) -> None:
    fake = FakeTime()
    emulator.inject(server_error(503))
    azure = LogAnalyticsSource(settings(emulator, requests_per_30s=1), FakeCredential(),
                               limiter=RateLimiter(1, clock=fake.clock, sleep=fake.sleep),
                               retry_backoff_factor=0.01, retry_backoff_max=0.05)

    fetch_first_window(azure)
    fetch_first_window(azure)

    assert len(emulator.queries()) == 3  # the first fetch was retried once
    assert fake.sleeps == [30, 30]


# -- the emulator itself --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("timespan", "expected"), [
    ("2025-03-03T00:00:00.000Z/2025-03-03T06:00:00.000Z", (DAY0, DAY0 + timedelta(hours=6))),
    ("2025-03-03T00:00:00Z/PT5400.0S", (DAY0, DAY0 + timedelta(minutes=90))),
    ("PT3600.0S", (NOW - timedelta(hours=1), NOW)),
    ("P1D/2025-03-04T00:00:00.0000000Z", (DAY0, DAY0 + timedelta(days=1))),
    (None, None),
])
def test_the_emulator_reads_the_timespans_the_sdk_sends(timespan: str | None, expected: Any) -> None:
    assert parse_timespan(timespan, NOW) == expected


def test_the_emulator_answers_in_the_wire_format(emulator: LogAnalyticsEmulator) -> None:
    fetch_first_window(source(emulator))
    # Ask again, raw, to see the bytes the SDK parsed.
    answer = emulator.handle("POST", f"/v1/workspaces/{WORKSPACE_ID}/query",
                             {"authorization": "Bearer t", "prefer": "wait=10"},
                             json.dumps({"query": "AzureDiagnostics | take 1 | project TimeGenerated, "
                                                  "DurationMs, properties_s",
                                         "timespan": "2025-03-03T09:00:00Z/PT3600S"}).encode())
    body = json.loads(answer.body)
    [table] = body["tables"]
    assert table["name"] == "PrimaryResult"
    assert [c["type"] for c in table["columns"]] == ["datetime", "long", "string"]
    [(when, duration, props)] = table["rows"]
    assert when.startswith("2025-03-03T09:") and when.endswith("Z")
    assert len(when) == len("2025-03-03T09:00:00.0000000Z")  # seven fractional digits, as Azure sends
    assert isinstance(duration, int) and isinstance(json.loads(props), dict)
    assert emulator.handle("POST", "/v1/workspaces/x/query", {}, b"{}").status == 401


def test_the_emulator_answers_a_batch_as_the_sdk_expects(emulator: LogAnalyticsEmulator) -> None:
    # The source sends one query per request (see its docstring); the $batch path is kept faithful for the SDK's
    # query_batch all the same: parts answered out of order, each with its own status.
    from azure.monitor.query import (
        LogsBatchQuery,
        LogsQueryClient,
        LogsQueryError,
        LogsQueryPartialResult,
        LogsQueryResult,
    )

    emulator.inject(throttled(when=lambda r: "take 2" in r.query), partial_error(when=lambda r: "take 3" in r.query))
    client = LogsQueryClient(FakeCredential(), endpoint=emulator.url, audience="https://api.loganalytics.io",
                             connection_verify=str(emulator.ca_bundle))
    span = (DAY0, DAY0 + timedelta(hours=1))
    with client:
        results = client.query_batch([LogsBatchQuery(WORKSPACE_ID, f"AzureDiagnostics | take {n}", timespan=span)
                                      for n in (1, 2, 3)])

    ok, throttled_part, partial = results
    assert isinstance(ok, LogsQueryResult) and [len(t.rows) for t in ok.tables] == [1]
    assert isinstance(throttled_part, LogsQueryError) and throttled_part.code == "ThrottledError"
    assert isinstance(partial, LogsQueryPartialResult) and len(partial.partial_data[0].rows) == 3
    assert [r.path for r in emulator.requests] == ["/v1/$batch"] + [f"/v1/workspaces/{WORKSPACE_ID}/query"] * 3
