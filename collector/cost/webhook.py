"""Webhook delivery: the only module that POSTs notifications (Slack incoming webhooks, Microsoft Teams).

Bodies, by `budgets.webhook_format`:

- `slack`: `{"text": "..."}` in Slack's mrkdwn (`*bold*`, `&`, `<`, `>` escaped). Slack's incoming webhooks take a
  JSON body whose `text` is the message and answer 200 `ok` (docs.slack.dev, "Sending messages using incoming
  webhooks"; the Java SDK guide's curl example posts `{"text":"Hello, World!"}`).
- `teams`: a message with one Adaptive Card attachment,
  `{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
  "contentUrl": null, "content": {"type": "AdaptiveCard", "version": "1.2", "body": [...]}}]}` (Microsoft Teams
  platform docs, "Create and send messages" / "Send Adaptive Cards using an Incoming Webhook": `type` must be
  `message`, `attachments` holds the cards, `contentType` the Adaptive Card type, `content` the card). That is what
  a Teams Workflows webhook ("When a Teams webhook request is received" / "Post to a channel when a webhook request
  is received") expects: Workflows take Adaptive Cards only, not the old MessageCard format (same page, "Known
  issues"); the retired Office 365 "Incoming Webhook" connector accepted the same body as well as `{"text": ...}`.
  Workflows answer 202 Accepted. The card uses TextBlock and FactSet only (Adaptive Cards 1.0 elements).

Any 2xx is delivered. Anything else, a refused connection or a timeout raises TransientError: the caller leaves
the notification unrecorded and the next pass retries. Redirects are not followed (a webhook URL is a credential;
it is not handed to wherever a 3xx points).

A webhook URL is a secret: its path (Slack) or query (`sig=` on Teams Workflows) is the credential. Messages and
logs name only the scheme and host.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from collector.errors import TerminalError, TransientError

log = logging.getLogger(__name__)

WebhookFormat = Literal["slack", "teams"]
FORMATS: tuple[WebhookFormat, ...] = ("slack", "teams")
DEFAULT_TIMEOUT = 10.0
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
_ANSWER_CHARS = 200


class Notice(Protocol):
    """What a notification says (collector.cost.budgets.Alert is one)."""

    @property
    def title(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def facts(self) -> Sequence[tuple[str, str]]: ...


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(notice: Notice) -> dict[str, Any]:
    lines = [f"*{_slack_escape(notice.title)}*", _slack_escape(notice.text)]
    lines += [f"• {_slack_escape(name)}: {_slack_escape(value)}" for name, value in notice.facts]
    return {"text": "\n".join(lines)}


def teams_body(notice: Notice) -> dict[str, Any]:
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.2",
        "body": [
            {"type": "TextBlock", "text": notice.title, "weight": "Bolder", "size": "Medium", "wrap": True},
            {"type": "TextBlock", "text": notice.text, "wrap": True},
            {"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in notice.facts]},
        ],
    }
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}


def body_for(notice: Notice, webhook_format: WebhookFormat) -> dict[str, Any]:
    return teams_body(notice) if webhook_format == "teams" else slack_body(notice)


def where(url: str) -> str:
    """The part of a webhook URL that may be shown: scheme and host (and port)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "an unparsable URL"
    return f"{parts.scheme}://{host}{port}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx then surfaces as an HTTPError: not delivered


class WebhookSender:
    """POSTs notices to one webhook URL as JSON in Slack's or Teams' shape; call it with a notice. The URL must be
    https unless `allow_http` (`budgets.webhook_allow_http`: a local receiver)."""

    def __init__(self, url: str, webhook_format: WebhookFormat = "slack", *, allow_http: bool = False,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        if webhook_format not in FORMATS:
            raise TerminalError(f"unknown webhook format {webhook_format!r}: use one of {', '.join(FORMATS)}")
        scheme = urlsplit(url).scheme if "://" in url else ""
        if scheme not in ("http", "https"):
            raise TerminalError(f"the webhook URL ({where(url)}) must start with https://")
        if scheme == "http" and not allow_http:
            raise TerminalError(f"the webhook URL ({where(url)}) is http://: its credential and the notifications "
                                "would travel unencrypted; use https://, or set budgets.webhook_allow_http for a "
                                "local receiver")
        self._url, self.format, self.timeout = url, webhook_format, timeout
        self.where = where(url)
        self._opener = urllib.request.build_opener(_NoRedirects)

    def __repr__(self) -> str:
        return f"WebhookSender({self.where}, {self.format!r})"

    def __call__(self, notice: Notice) -> None:
        self.post(body_for(notice, self.format))

    def post(self, body: dict[str, Any]) -> None:
        """Deliver one JSON body; TransientError unless the receiver answers 2xx."""
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self._url, data=data, method="POST",
                                         headers={"Content-Type": "application/json; charset=utf-8"})
        what = f"the {self.format} webhook at {self.where}"
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
                answer = response.read(_ANSWER_CHARS).decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            try:
                answer = e.read(_ANSWER_CHARS).decode("utf-8", "replace").strip()
            except OSError:
                answer = ""
            finally:
                e.close()
            said = f": {answer}" if answer else ""
            raise TransientError(f"{what} answered HTTP {e.code} {e.reason}{said}; {_hint(e.code)}") from e
        except urllib.error.URLError as e:
            raise TransientError(f"cannot reach {what}: {e.reason}; is the receiver up and the host right? "
                                 "The next pass retries") from e
        except TimeoutError as e:
            raise TransientError(f"{what} did not answer within {self.timeout:g}s; the next pass retries") from e
        except OSError as e:  # reset or closed mid-answer
            raise TransientError(f"the connection to {what} failed: {e}; the next pass retries") from e
        if not 200 <= status < 300:
            raise TransientError(f"{what} answered HTTP {status}: {answer.strip()}; the next pass retries")
        log.debug("%s answered HTTP %d", what, status)


def _hint(code: int) -> str:
    if code in (400, 422):
        return "the receiver refused the body: check budgets.webhook_format (slack or teams); the next pass retries"
    if code in (401, 403, 404, 410):
        return ("the URL is wrong, revoked or expired: set a current one in AOAI_OBS_BUDGETS__WEBHOOK_URL; "
                "the next pass retries")
    if 300 <= code < 400:
        return "redirects are not followed: set the final URL in AOAI_OBS_BUDGETS__WEBHOOK_URL"
    return "the next pass retries"
