"""Budget notifications over real HTTP to local receivers (healthy, failing then recovering, down), remembered in the
real store across a restart; Slack and Teams bodies; the webhook URL's secret never shows in logs or errors."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from collector.config import load_settings
from collector.cost.budget_alerts import notify_budgets
from collector.cost.budgets import Alert, Budget, Budgets
from collector.cost.webhook import WebhookSender, where
from collector.errors import InputError, TerminalError, TransientError
from collector.rollups.months import Period
from collector.store.database import Store

D = Decimal
APRIL = Period(datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC))
SECRET = "/services/T0SECRET/B0SECRET/xoxSECRETtoken"  # what a Slack webhook's path looks like: a credential
QUERY_SECRET = "?api-version=1&sp=%2Ftriggers&sig=SIGSECRET"  # Teams Workflows carry it in the query
BUDGETS = Budgets((Budget("team", "marketing", D(1200), (50, 80, 100)),
                   Budget("deployment", "gpt-4o-ptu", D(5000), (90, 100), "contoso-aoai-eus")))


class Receiver:
    """A local webhook receiver on 127.0.0.1 that records every POST and answers with the next scripted status."""

    def __init__(self, statuses: list[int] | None = None, default: int = 200) -> None:
        self.statuses, self.default = list(statuses or []), default
        self.requests: list[tuple[str, int, dict[str, Any]]] = []  # (path, status answered, body)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                receiver.requests.append((self.path, status, body))
                answer = b"ok" if status < 300 else b"upstream broke"
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def delivered(self) -> list[dict[str, Any]]:
        return [body for _, status, body in self.requests if 200 <= status < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def down_url() -> str:
    """A URL where nothing listens: connection refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def thresholds_of(body: dict[str, Any]) -> str:
    return str(body["text"].split("passed ")[1].split(":")[0])


def run(store: Any, sender: WebhookSender, marketing: str, ptu: str = "0", day: int = 15) -> Any:
    as_of = APRIL.start + timedelta(days=day)
    spend = {("team", "marketing"): D(marketing), ("deployment", "contoso-aoai-eus", "gpt-4o-ptu"): D(ptu)}
    return notify_budgets(store, BUDGETS, APRIL, spend, as_of, sender, now=as_of + timedelta(minutes=7))


# -- delivery, once per threshold per period ---------------------------------------------------------------------


def test_once_per_threshold_per_period_across_passes_and_a_restart(store_url: str, receiver: Receiver) -> None:
    sender = WebhookSender(receiver.url + SECRET, "slack", allow_http=True)
    store = Store.open(store_url)
    run(store, sender, "650")  # 54 %: 50 due
    run(store, sender, "700")  # still 58 %: nothing new
    run(store, sender, "1000", ptu="4600")  # 83 %: 80; the PTU deployment at 92 %: 90
    store.close()
    store = Store.open(store_url)  # a restart: what was sent is remembered
    run(store, sender, "1000", ptu="4600")
    result = run(store, sender, "1500", ptu="4700", day=20)  # 125 %: 100 due; the PTU at 94 %: nothing new
    assert [(p, b["text"].split("\n")[0], thresholds_of(b)) for p, _, b in receiver.requests] == [
        (SECRET, "*Budget team:marketing: 54.17 % used in 2025-04*", "50 %"),
        (SECRET, "*Budget team:marketing: 83.33 % used in 2025-04*", "80 %"),
        (SECRET, "*Budget deployment:contoso-aoai-eus/gpt-4o-ptu: 92.00 % used in 2025-04*", "90 %"),
        (SECRET, "*Budget team:marketing: 125.00 % used in 2025-04*", "100 %"),
    ]
    assert result.summary() == "budgets: 2 checked, 1 at or over 100 %, 1 notification(s) sent"
    assert store.notified_thresholds("team:marketing", APRIL.start) == {50, 80, 100}
    assert store.notified_thresholds("deployment:contoso-aoai-eus/gpt-4o-ptu", APRIL.start) == {90}
    assert store.notified_thresholds("team:marketing", APRIL.end) == set()
    store.close()


def test_a_failing_receiver_is_retried_until_it_recovers(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    failing = Receiver(statuses=[500, 503])
    try:
        sender = WebhookSender(failing.url + SECRET + QUERY_SECRET, "teams", allow_http=True)
        with caplog.at_level(logging.DEBUG):
            first = run(store, sender, "1000", ptu="4600")  # both budgets due; the first answer is 500
            assert [a.budget_id for a in first.pending] == ["team:marketing", "deployment:contoso-aoai-eus/gpt-4o-ptu"]
            assert first.error.startswith(f"the teams webhook at {failing.url} answered HTTP 500")
            assert store.notified_thresholds("team:marketing", APRIL.start) == set()
            second = run(store, sender, "1000", ptu="4600")  # 503: still nothing recorded
            assert second.pending and not second.sent
            third = run(store, sender, "1000", ptu="4600")  # recovered: both delivered
            assert [(a.budget_id, a.thresholds) for a in third.sent] == [
                ("team:marketing", (50, 80)), ("deployment:contoso-aoai-eus/gpt-4o-ptu", (90,))]
            assert not run(store, sender, "1100", ptu="4700").sent
        assert [s for _, s, _ in failing.requests] == [500, 503, 200, 200]
        assert len(failing.delivered) == 2
        assert "answered HTTP 500 Internal Server Error: upstream broke" in caplog.text
        assert "SECRET" not in caplog.text and "SECRET" not in first.error + second.error
    finally:
        failing.close()


def test_a_receiver_that_is_down_leaves_it_for_the_next_pass(store: Store, receiver: Receiver,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    url = down_url()
    with caplog.at_level(logging.DEBUG):
        result = run(store, WebhookSender(url + SECRET, "slack", allow_http=True), "700")
    assert result.error.startswith(f"cannot reach the slack webhook at {url}: ")
    assert "Connection refused" in result.error
    assert store.notified_thresholds("team:marketing", APRIL.start) == set()
    assert "SECRET" not in caplog.text + result.error
    back = WebhookSender(receiver.url + SECRET, "slack", allow_http=True)  # back up (here: at a new address)
    run(store, back, "700")
    run(store, back, "700")
    assert [thresholds_of(b) for b in receiver.delivered] == ["50 %"]


def test_errors_name_only_scheme_and_host() -> None:
    failing = Receiver(default=404)
    try:
        sender = WebhookSender(failing.url + SECRET + QUERY_SECRET, "slack", allow_http=True)
        with pytest.raises(TransientError) as caught:
            sender.post({"text": "x"})
        message = str(caught.value)
        assert message.startswith(f"the slack webhook at {failing.url} answered HTTP 404")
        assert "AOAI_OBS_BUDGETS__WEBHOOK_URL" in message
        assert "SECRET" not in message + repr(sender)
    finally:
        failing.close()
    assert where("https://hooks.slack.com" + SECRET) == "https://hooks.slack.com"
    assert where("https://x.environment.api.powerplatform.com:443/workflows/1" + QUERY_SECRET) == (
        "https://x.environment.api.powerplatform.com:443")


def test_redirects_are_not_followed() -> None:
    moved = Receiver(default=302)
    try:
        with pytest.raises(TransientError, match=r"answered HTTP 302 .*redirects are not followed"):
            WebhookSender(moved.url + SECRET, allow_http=True).post({"text": "x"})
        assert len(moved.requests) == 1
    finally:
        moved.close()


# -- bodies ------------------------------------------------------------------------------------------------------

ALERT = Alert("team:r&d", APRIL.start, (80,), "Budget team:r&d: 81.00 % used in 2025-04", "passed 80 % <soon>",
              (("Spent", "$810.00"), ("Month-end forecast", "too early in the month to tell")))


def test_slack_body(receiver: Receiver) -> None:
    WebhookSender(receiver.url + SECRET, "slack", allow_http=True)(ALERT)
    assert receiver.delivered == [{"text": "*Budget team:r&amp;d: 81.00 % used in 2025-04*\npassed 80 % &lt;soon&gt;\n"
                                           "• Spent: $810.00\n• Month-end forecast: too early in the month to tell"}]


def test_teams_body(receiver: Receiver) -> None:
    WebhookSender(receiver.url + SECRET, "teams", allow_http=True)(ALERT)
    assert receiver.delivered == [{
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": None,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.2",
                "body": [
                    {"type": "TextBlock", "text": "Budget team:r&d: 81.00 % used in 2025-04", "weight": "Bolder",
                     "size": "Medium", "wrap": True},
                    {"type": "TextBlock", "text": "passed 80 % <soon>", "wrap": True},
                    {"type": "FactSet", "facts": [{"title": "Spent", "value": "$810.00"},
                                                  {"title": "Month-end forecast",
                                                   "value": "too early in the month to tell"}]},
                ],
            },
        }],
    }]


# -- settings ----------------------------------------------------------------------------------------------------


def test_the_webhook_url_comes_from_the_environment_only(tmp_path: Path) -> None:
    path = tmp_path / "aoai-obs.yaml"
    path.write_text("budgets:\n  file: budgets.yaml\n  webhook_format: teams\n", encoding="utf-8")
    url = "https://hooks.slack.com" + SECRET
    settings = load_settings(path, {"AOAI_OBS_BUDGETS__WEBHOOK_URL": url})
    assert settings.budgets.file == tmp_path / "budgets.yaml"
    assert settings.budgets.webhook_format == "teams"
    assert settings.budgets.webhook_url is not None and settings.budgets.webhook_url.get_secret_value() == url
    assert "SECRET" not in repr(settings)
    assert load_settings(path, {"AOAI_OBS_BUDGETS__WEBHOOK_URL": ""}).budgets.webhook_url is None

    path.write_text("budgets:\n  file: budgets.yaml\n  webhook_url: https://hooks.slack.com/services/T/B/SECRET\n",
                    encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_settings(path, {})
    (problem,) = caught.value.problems
    assert (problem.path, problem.line) == (path, 3)
    assert problem.message == "budgets.webhook_url is a credential; settings files must not hold secrets"
    assert problem.hint == "set the environment variable AOAI_OBS_BUDGETS__WEBHOOK_URL instead"
    assert "SECRET" not in str(caught.value)


@pytest.mark.parametrize("value", ["hooks.slack.com" + SECRET, "ftp://host" + SECRET, "https://" + SECRET])
def test_a_bad_webhook_url_is_refused_without_echoing_it(value: str) -> None:
    with pytest.raises(InputError) as caught:
        load_settings(None, {"AOAI_OBS_BUDGETS__WEBHOOK_URL": value})
    (problem,) = caught.value.problems
    assert problem.message == ("environment variable AOAI_OBS_BUDGETS__WEBHOOK_URL: not a webhook URL: it must start "
                               "with https:// and name a host")
    assert "SECRET" not in str(caught.value)


def test_an_http_webhook_url_is_refused_unless_the_setting_allows_it(tmp_path: Path) -> None:
    url = "http://127.0.0.1:8080" + SECRET
    with pytest.raises(InputError) as caught:
        load_settings(None, {"AOAI_OBS_BUDGETS__WEBHOOK_URL": url})
    (problem,) = caught.value.problems
    assert problem.message.startswith("environment variable AOAI_OBS_BUDGETS__WEBHOOK_URL: an http:// webhook URL "
                                      "sends its credential and every notification unencrypted: use https://")
    assert "AOAI_OBS_BUDGETS__WEBHOOK_ALLOW_HTTP=true" in problem.message
    assert "SECRET" not in str(caught.value)

    path = tmp_path / "aoai-obs.yaml"  # the file may allow it (it holds no secret); the URL stays in the environment
    path.write_text("budgets:\n  webhook_allow_http: true\n", encoding="utf-8")
    for settings in (load_settings(path, {"AOAI_OBS_BUDGETS__WEBHOOK_URL": url}),
                     load_settings(None, {"AOAI_OBS_BUDGETS__WEBHOOK_URL": url,
                                          "AOAI_OBS_BUDGETS__WEBHOOK_ALLOW_HTTP": "true"})):
        assert settings.budgets.webhook_allow_http
        assert settings.budgets.webhook_url is not None and settings.budgets.webhook_url.get_secret_value() == url
    https = "https://hooks.slack.com" + SECRET
    assert load_settings(None, {"AOAI_OBS_BUDGETS__WEBHOOK_URL": https}).budgets.webhook_allow_http is False

    with pytest.raises(TerminalError) as refused:
        WebhookSender(url, "slack")
    assert str(refused.value).startswith("the webhook URL (http://127.0.0.1:8080) is http://")
    assert "budgets.webhook_allow_http" in str(refused.value) and "SECRET" not in str(refused.value)
    assert WebhookSender(url, "slack", allow_http=True).where == "http://127.0.0.1:8080"


def test_a_bad_webhook_format_gets_a_fix(tmp_path: Path) -> None:
    path = tmp_path / "aoai-obs.yaml"
    path.write_text("budgets:\n  webhook_format: msteams\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_settings(path, {})
    (problem,) = caught.value.problems
    assert problem.line == 2 and "budgets.webhook_format: should be 'slack' or 'teams'" in problem.message
