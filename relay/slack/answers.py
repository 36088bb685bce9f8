"""Answering the person who clicked: through the click's `response_url` when Slack gave an
allowed one (`guard.response_url_allowed`), otherwise by direct message."""

from __future__ import annotations

import logging

from slack_sdk.webhook import WebhookClient

from ..errors import SlackError
from . import guard
from .people import SlackCalls

log = logging.getLogger(__name__)


class Answers:
    def __init__(self, slack: SlackCalls, *, api_url: str):
        self.slack = slack
        self.api_url = api_url

    def respond_or_dm(self, user: str, source: dict, text: str, blocks: list, *, replace: bool) -> None:
        """Answer through the click's response_url when Slack gave an allowed one, else by DM."""
        url = source.get("response_url")
        if url and guard.response_url_allowed(url, self.api_url):
            self.respond(url, text, blocks, replace=replace)
        else:
            if url:
                log.warning("response_url outside Slack: answered by DM instead", extra={"slack_user": user})
            self.dm(user, text, blocks)

    def respond(self, url: str, text: str, blocks: list, *, replace: bool) -> None:
        body = {"text": text, "blocks": blocks, "response_type": "ephemeral", "replace_original": replace}
        try:
            # No retry inside slack_sdk: a connection reset after Slack took the answer would
            # show it twice (slack_sdk retries a reset once by default).
            resp = WebhookClient(url, timeout=10, retry_handlers=[]).send_dict(body)
            if resp.status_code != 200:
                log.warning("response_url refused the update", extra={"status": resp.status_code,
                                                                       "error": (resp.body or "")[:100]})
        except Exception as exc:   # network errors of the webhook client
            log.warning("response_url not reachable", extra={"error": type(exc).__name__})

    def dm(self, user: str, text: str, blocks: list) -> None:
        try:
            self.slack.call("chat.postMessage", channel=user, text=text, blocks=blocks)
        except SlackError as exc:
            log.warning("could not message the user", extra={"error": str(exc)})
