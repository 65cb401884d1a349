"""MetricsSource through the real azure-mgmt-monitor client against the HTTPS Metrics API emulator."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from collector.collection.metrics import MetricsSource, plan_calls
from collector.collection.run import Timing, backfill, collect_once
from collector.config import MetricsSourceSettings
from collector.errors import TerminalError, TransientError
from collector.ratelimit import RateLimiter
from collector.rollups.specs import METRIC_SPLITS, PLATFORM_METRICS
from collector.rollups.windows import Window
from collector.store.database import Store
from collector.workspace.demo import DEMO_ORG
from collector.workspace.engine import Workspace
from collector.workspace.generate import generate
from collector.workspace.source import WorkspaceSource
from tests.emulators.metrics_api import API_VERSION, Fault, MetricsEmulator, add_deployments

END = datetime(2026, 1, 7, tzinfo=UTC)
NOW = END + timedelta(hours=1)
ACCOUNTS = [a.resource_id for a in DEMO_ORG.accounts]
TIMING = Timing(grain=timedelta(minutes=5), lag=timedelta(minutes=10), lookback=timedelta(hours=1),
                max_window=timedelta(hours=6))
SOURCE = "azure-metrics"
AUDIENCE = "https://management.azure.com"


class FakeCredential:
    """A TokenCredential of our own: hands out a fixed token and remembers the scopes asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("test-token", int(time.time()) + 3600)


def _workspace(path: Path, days: float) -> Path:
    workspace = Workspace(path)
    workspace.create()
    generate(workspace, start=END - timedelta(days=days), end=END, seed=11)
    workspace.close()
    return path


@pytest.fixture(scope="module")
def days_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _workspace(tmp_path_factory.mktemp("days") / "w.duckdb", 2)


@pytest.fixture(scope="module")
def hours_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _workspace(tmp_path_factory.mktemp("hours") / "w.duckdb", 3 / 24)


@pytest.fixture
def emulator(hours_workspace: Path, tmp_path: Path) -> Iterator[MetricsEmulator]:
    with MetricsEmulator(hours_workspace, tmp_path) as running:
        yield running


def _source(emulator: MetricsEmulator, credential: FakeCredential | None = None, retries: int = 3,
            **client_kwargs: Any) -> MetricsSource:
    settings = MetricsSourceSettings(
        name=SOURCE, kind="metrics", accounts=ACCOUNTS, endpoint=emulator.endpoint, audience=AUDIENCE,
        ca_bundle=emulator.ca_bundle, retries=retries)
    client_kwargs.setdefault("retry_backoff_factor", 0.01)
    return MetricsSource(settings, credential or FakeCredential(), **client_kwargs)


def _reference(workspace: Path, tmp_path: Path, since: datetime, until: datetime) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'reference.sqlite'}")
    embedded = WorkspaceSource(SOURCE, workspace)
    summary = backfill(store, [embedded], [PLATFORM_METRICS], TIMING, since, until, NOW)
    embedded.close()
    assert summary.ok, summary.line()
    return store


def test_the_metrics_api_run_stores_what_the_embedded_run_stores(days_workspace: Path, tmp_path: Path) -> None:
    since = END - timedelta(days=2)
    reference = _reference(days_workspace, tmp_path, since, END)
    credential = FakeCredential()
    store = Store.open(f"sqlite:///{tmp_path / 'api.sqlite'}")
    with MetricsEmulator(days_workspace, tmp_path) as emulator:
        source = _source(emulator, credential)
        summary = backfill(store, [source], [PLATFORM_METRICS], TIMING, since, END, NOW)
        source.close()
    assert summary.ok, summary.line()
    dump = dict(store.iter_dump())
    assert len(dump["platform_metrics_5m"]) > 10_000
    assert {row[4] for row in dump["platform_metrics_5m"]} >= {"AzureOpenAIRequests", "GeneratedTokens",
                                                            "AzureOpenAITimeToResponse"}
    assert list(store.iter_dump()) == list(reference.iter_dump())

    windows = 2 * 24 // 6
    calls = emulator.metric_requests()
    assert len(calls) == windows * len(ACCOUNTS) * len(plan_calls())
    assert {c.query["api-version"] for c in calls} == {API_VERSION}
    assert {c.query["interval"] for c in calls} == {"PT5M"}
    assert {c.query["aggregation"] for c in calls} == {"Total,Count,Minimum,Maximum"}
    assert {c.query["metricnamespace"] for c in calls} == {"Microsoft.CognitiveServices/accounts"}
    assert {c.query["top"] for c in calls} == {"5000"}  # the API's default is 10 series per metric
    assert {c.query["$filter"] for c in calls} == {"ModelDeploymentName eq '*' and StatusCode eq '*'",
                                                   "ModelDeploymentName eq '*'"}
    # Windows are fetched two at a time, so in no fixed order; each is asked for once per account and call.
    spans = sorted({c.query["timespan"] for c in calls})
    assert len(spans) == windows and spans[0] == "2026-01-05T00:00:00Z/2026-01-05T06:00:00Z"
    assert spans[-1] == "2026-01-06T18:00:00Z/2026-01-07T00:00:00Z"
    assert {c.authorization for c in calls} == {"Bearer test-token"}
    assert set(credential.scopes) == {(f"{AUDIENCE}/.default",)}


def _collect(source: MetricsSource, tmp_path: Path, name: str) -> tuple[Store, Any]:
    store = Store.open(f"sqlite:///{tmp_path / name}")
    summary = backfill(store, [source], [PLATFORM_METRICS], TIMING, END - timedelta(hours=3), END, NOW)
    return store, summary


def test_a_throttled_request_is_retried_after_retry_after(emulator: MetricsEmulator, hours_workspace: Path,
                                                          tmp_path: Path) -> None:
    reference = _reference(hours_workspace, tmp_path, END - timedelta(hours=3), END)
    emulator.inject(Fault(status=429, retry_after="0.3"))
    source = _source(emulator)
    started = time.monotonic()
    store, summary = _collect(source, tmp_path, "store.sqlite")
    assert summary.ok, summary.line()
    assert time.monotonic() - started >= 0.3
    assert [r.status for r in emulator.metric_requests()[:2]] == [429, 200]
    assert list(store.iter_dump()) == list(reference.iter_dump())


def test_exhausted_retries_leave_the_window_for_the_next_run(emulator: MetricsEmulator, hours_workspace: Path,
                                                             tmp_path: Path) -> None:
    reference = _reference(hours_workspace, tmp_path, END - timedelta(hours=3), END)
    last = "timespan=2026-01-06T23:00:00Z/"  # the last of three one-hour windows fails, retries included
    emulator.inject(Fault(status=503, match=last), times=3)
    source = _source(emulator, retries=2)
    timing = Timing(TIMING.grain, TIMING.lag, TIMING.lookback, max_window=timedelta(hours=1))
    store = Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    first = backfill(store, [source], [PLATFORM_METRICS], timing, END - timedelta(hours=3), END, NOW)

    assert not first.ok
    [failed] = first.failures()
    assert failed.transient
    assert failed.failed == Window(END - timedelta(hours=1), END)
    assert "HTTP 503" in failed.error and "contoso-aoai" in failed.error and "2026-01-06T23:00:00Z" in failed.error
    assert store.watermark(SOURCE, PLATFORM_METRICS.name) == END - timedelta(hours=1)
    assert sum(r.status == 503 for r in emulator.metric_requests()) == 3

    again = backfill(store, [source], [PLATFORM_METRICS], timing, END - timedelta(hours=3), END, NOW)
    assert again.ok, again.line()
    assert list(store.iter_dump()) == list(reference.iter_dump())


@pytest.mark.parametrize("body", [b'{"value": [{"name": ', b'{"value": "not a list"}', b"<html>gateway</html>"])
def test_a_malformed_body_is_transient(emulator: MetricsEmulator, body: bytes) -> None:
    emulator.inject(Fault(body=body))
    source = _source(emulator)
    with pytest.raises(TransientError, match="not a metrics response"):
        source.fetch(PLATFORM_METRICS, Window(END - timedelta(hours=1), END), TIMING.grain)
    source.close()


def test_an_unknown_metric_is_terminal_with_arms_message(emulator: MetricsEmulator) -> None:
    del emulator.metrics["RAIRejectedRequests"]  # a region without content-filter metrics
    source = _source(emulator)
    with pytest.raises(TerminalError, match=r"Failed to find metric configuration.*RAIRejectedRequests"):
        source.fetch(PLATFORM_METRICS, Window(END - timedelta(hours=1), END), TIMING.grain)
    assert [r.status for r in emulator.metric_requests()] == [200, 400]  # a 400 is not retried
    source.close()


@pytest.mark.parametrize(("fault", "error", "message"), [
    (Fault(status=403), TerminalError, "Monitoring Reader"),
    (Fault(status=500), TransientError, "HTTP 500"),
    (Fault(delay=1.5), TransientError, "no complete answer"),
])
def test_http_faults(emulator: MetricsEmulator, fault: Fault, error: type[Exception], message: str) -> None:
    emulator.inject(fault)
    source = _source(emulator, retries=0, read_timeout=0.5)
    with pytest.raises(error, match=message):
        source.fetch(PLATFORM_METRICS, Window(END - timedelta(hours=1), END), TIMING.grain)
    source.close()


def test_an_unknown_account_and_an_unreachable_endpoint(emulator: MetricsEmulator) -> None:
    missing = ACCOUNTS[0].replace("contoso-aoai-eus", "contoso-aoai-gone")
    settings = MetricsSourceSettings(name=SOURCE, kind="metrics", accounts=[missing], endpoint=emulator.endpoint,
                                     ca_bundle=emulator.ca_bundle, retries=0)
    window = Window(END - timedelta(hours=1), END)
    gone = MetricsSource(settings, FakeCredential())
    with pytest.raises(TerminalError, match=r"no account .*contoso-aoai-gone"):
        gone.fetch(PLATFORM_METRICS, window, TIMING.grain)
    gone.close()
    closed = settings.model_copy(update={"endpoint": "https://127.0.0.1:9", "accounts": ACCOUNTS})
    unreachable = MetricsSource(closed, FakeCredential())
    with pytest.raises(TransientError, match="could not reach"):
        unreachable.fetch(PLATFORM_METRICS, window, TIMING.grain)
    unreachable.close()


def test_queries_per_cycle_do_not_grow_with_deployments(hours_workspace: Path, tmp_path: Path) -> None:
    counts = {}
    for extra in (0, 50):
        path = tmp_path / f"w{extra}.duckdb"
        shutil.copy(hours_workspace, path)
        add_deployments(Workspace(path), extra, END - timedelta(hours=1), END)
        with MetricsEmulator(path, tmp_path) as emulator:
            source = _source(emulator)
            store = Store.open(f"sqlite:///{tmp_path / f's{extra}.sqlite'}")
            summary = collect_once(store, [source], [PLATFORM_METRICS], TIMING, END + TIMING.lag)
            source.close()
        assert summary.ok, summary.line()
        counts[extra] = len(emulator.metric_requests())
        deployments = {r["deployment"] for r in store.read(PLATFORM_METRICS)}
        assert len(deployments) == 7 + extra  # more than the API's default top of 10 series: `top` is sent
    assert counts[0] == counts[50] == len(ACCOUNTS) * len({s for s in METRIC_SPLITS.values()})


def test_every_attempt_goes_through_the_rate_limiter(emulator: MetricsEmulator) -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    emulator.inject(Fault(status=429, retry_after="0"))
    limiter = RateLimiter(2, clock=lambda: now[0], sleep=sleep)
    source = _source(emulator, limiter=limiter)
    source.fetch(PLATFORM_METRICS, Window(END - timedelta(hours=1), END), TIMING.grain)
    attempts = len(emulator.metric_requests())
    assert attempts == len(ACCOUNTS) * len(plan_calls()) + 1
    # Two at a time, then each further pair waits for the oldest to be 30 s old: every attempt took a slot.
    assert sum(slept) == pytest.approx(30.0 * ((attempts - 1) // 2))
    source.close()
