"""The daily cost table: equal to the attribution, re-priced when the price book changes, and budgets on top of it
(notified once through a real HTTP receiver)."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from collector.collection.run import Timing, backfill
from collector.cost.attribution import MICRO_USD, load_attribution_rules
from collector.cost.budgets import Budget, Budgets
from collector.cost.inventory import demo_inventory
from collector.cost.job import CostJob
from collector.cost.model import CostModel, attribute_range
from collector.cost.pricing import Override, load_price_book
from collector.cost.table import bring_costs_up_to_date, fingerprint, stale_days
from collector.cost.webhook import WebhookSender
from collector.rollups.specs import ROLLUPS
from collector.store.database import Store
from collector.workspace.engine import Workspace
from collector.workspace.generate import generate
from collector.workspace.source import WorkspaceSource

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
START = datetime(2026, 3, 2, tzinfo=UTC)
END = START + timedelta(days=2)
NOW = END + timedelta(hours=1)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("costjob") / "ws.duckdb"
    ws = Workspace(path)
    ws.create()
    generate(ws, start=START, end=END, seed=9)
    return path


@pytest.fixture
def collected(workspace: Path, store: Store) -> Store:
    timing = Timing(grain=timedelta(minutes=5), lag=timedelta(0), lookback=timedelta(0), max_window=timedelta(days=1))
    assert backfill(store, [WorkspaceSource("demo", workspace)], ROLLUPS, timing, START, END, END).ok
    return store


def _model() -> CostModel:
    book, rules = load_price_book(EXAMPLES / "demo-prices.yaml"), load_attribution_rules(EXAMPLES / "demo-teams.yaml")
    return CostModel(book, rules, demo_inventory().deployments())


def _per_team(store: Store) -> dict[str, int]:
    return {r["team"]: r["cost_micro_usd"] for r in store.read_cost_daily(START, END, by=("team",))}


def test_daily_cost_equals_the_attribution_and_is_repriced_when_the_book_changes(collected: Store) -> None:
    model = _model()
    assert stale_days(collected, model, START - timedelta(days=5), NOW) == [START, START + timedelta(days=1)]
    assert bring_costs_up_to_date(collected, model, NOW, recent=timedelta(hours=1), history=timedelta(days=30)) == 3
    assert stale_days(collected, model, START, NOW) == []
    lines = attribute_range(collected, model, START, END).lines
    expected: dict[str, Decimal] = {}
    for line in lines:
        expected[line.team] = expected.get(line.team, Decimal(0)) + line.cost
    assert {t: Decimal(v) * MICRO_USD for t, v in _per_team(collected).items()} == expected
    tokens = collected.read_cost_daily(START, END, by=("deployment",), where={"deployment": ["gpt-4o"]})
    assert [r["prompt_tokens"] for r in tokens] == [sum(x.prompt_tokens for x in lines if x.deployment == "gpt-4o")]

    # A negotiated 25 % off gpt-4o everywhere: nothing re-collected, the history is re-priced on the next pass.
    discounted = dataclasses.replace(model, book=dataclasses.replace(model.book, overrides=(
        *model.book.overrides, Override("book", "", "", "gpt-4o", "GlobalStandard", Decimal(25), {}, "deal"))))
    assert fingerprint(discounted) != fingerprint(model)
    assert stale_days(collected, discounted, START, NOW) == [START, START + timedelta(days=1)]
    before = collected.read_cost_daily(START, END, by=("deployment",), where={"deployment": ["gpt-4o"]})
    bring_costs_up_to_date(collected, discounted, NOW, recent=timedelta(hours=1), history=timedelta(days=30))
    after = collected.read_cost_daily(START, END, by=("deployment",), where={"deployment": ["gpt-4o"]})
    assert after[0]["prompt_tokens"] == before[0]["prompt_tokens"]
    # Cost is rounded to the micro-dollar per deployment hour, so 75 % holds to within a micro-dollar per hour.
    assert abs(after[0]["cost_micro_usd"] - before[0]["cost_micro_usd"] * 3 / 4) <= 48
    assert {r["price_id"] for r in collected.read_cost_daily(START, END, by=("price_id",),
                                                             where={"deployment": ["gpt-4o"]})} == {
        "gpt-4o/GlobalStandard/2024-01-01+book"}


class _Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret"


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    found = _Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


def test_after_pass_notifies_each_threshold_once_across_passes(collected: Store, receiver: _Receiver) -> None:
    # Two days of the demo's support team cost a few dollars: a $10 budget is past 50 %, a $1 one past 100 %.
    budgets = Budgets((Budget("team", "support-bot", Decimal(10), (50, 100)),
                       Budget("team", "search", Decimal(1000), (50,))))
    job = CostJob(_model(), budgets, WebhookSender(receiver.url, "slack", allow_http=True),
                  recent=timedelta(days=1), history=timedelta(days=30))
    line = job.after_pass(collected, NOW)
    assert "3 day(s) re-attributed" in line and "1 notification(s) sent" in line
    assert len(receiver.bodies) == 1 and "support-bot" in receiver.bodies[0]["text"]
    spent = Decimal(_per_team(collected)["support-bot"]) * MICRO_USD
    status = {s.budget.name: s for s in job.statuses(collected, NOW)}["support-bot"]
    assert status.spent == spent and status.crossed == tuple(t for t in (50, 100) if spent * 100 >= t * 10)
    job.after_pass(collected, NOW + timedelta(minutes=5))
    assert len(receiver.bodies) == 1  # remembered in the store: not sent again
