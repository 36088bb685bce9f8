"""The one place that talks to Slack's Web API: builds the WebClient from config (never at
import time), paces each method at its tier rate, and turns Slack's answers into error types.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from ..errors import SlackPermanentError, SlackRateLimited, SlackUnavailable

log = logging.getLogger(__name__)

# Calls per minute per method, from Slack's published tiers (docs.slack.dev/apis/web-api/rate-limits):
# Tier 3 = 50+/min, Tier 4 = 100+/min; chat.postMessage is "special": about 1 per second per
# channel with a workspace budget of several hundred per minute. `slack.rate_limits` overrides.
DEFAULT_RATES: dict[str, float] = {
    "chat.postMessage": 60,
    "chat.postEphemeral": 100,
    "chat.update": 50,
    "chat.delete": 50,
    "conversations.open": 50,
    "users.lookupByEmail": 50,
    "users.info": 100,
    "views.publish": 100,
    "views.open": 100,
    "views.update": 100,
    "views.push": 100,
    "auth.test": 100,
}

# Methods bound to a trigger_id, valid 3 s from a person's click: spacing them would let a few
# simultaneous shortcut users miss their window. Their tier (100+/min) absorbs such bursts.
UNPACED = frozenset({"views.open", "views.push"})

# ok:false errors that retrying cannot fix: the notification is dead-lettered with the reason.
PERMANENT_ERRORS = frozenset({
    "user_not_found", "users_not_found", "channel_not_found", "invalid_blocks", "invalid_blocks_format",
    "not_in_channel", "user_not_in_channel", "messages_tab_disabled", "message_not_found",
    "cant_update_message", "msg_too_long", "no_text", "invalid_arguments", "cannot_dm_bot",
    "is_archived", "user_disabled", "edit_window_closed", "too_many_attachments", "invalid_trigger_id",
    "expired_trigger_id", "exchanged_trigger_id", "view_too_large", "not_found", "hash_conflict",
    "push_limit_reached", "duplicate_external_id",
})
# Everything else (invalid_auth, internal_error, fatal_error, service_unavailable...) is retried:
# an expired token or a Slack incident is fixed by time or by the operator, not by dropping mail.


class Pacer:
    """Spaces calls of each method evenly at its rate, and holds a method back after a 429."""

    def __init__(self, rates: dict[str, float] | None = None, *,
                 clock: Callable[[], float] = time.monotonic, stop: threading.Event | None = None):
        self.rates = {**DEFAULT_RATES, **(rates or {})}
        self._clock = clock
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = stop or threading.Event()

    def interval(self, method: str) -> float:
        return 60.0 / self.rates.get(method, 50.0)

    def reserve(self, method: str) -> float:
        """Book the next slot for `method`; returns how long to wait for it."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(method, now))
            self._next[method] = slot + self.interval(method)
            return slot - now

    def wait(self, method: str) -> None:
        if method in UNPACED:
            return
        delay = self.reserve(method)
        if delay > 0:
            self._stop.wait(delay)

    def hold(self, method: str, seconds: float) -> None:
        """Slack said 429 with Retry-After: no call of this method before then."""
        with self._lock:
            self._next[method] = max(self._next.get(method, 0.0), self._clock() + seconds)


def make_client(api_url: str, token: str, *, timeout: float = 10.0) -> WebClient:
    # Our own retry/backoff handles failures: no blocking sleeps inside slack_sdk.
    return WebClient(token=token, base_url=api_url, timeout=timeout, retry_handlers=[])


class SlackApi:
    """Paced Web API calls with typed errors. `call()` returns the response data dict."""

    def __init__(self, client: WebClient, pacer: Pacer | None = None):
        self.client = client
        self.pacer = pacer or Pacer()
        self.on_rate_limited: Callable[[str], None] = lambda method: None

    def call(self, method: str, **params: Any) -> dict:
        self.pacer.wait(method)
        try:
            if method.startswith(("chat.", "views.")):
                resp = self.client.api_call(method, json=params)
            else:   # read methods take form parameters, as slack_sdk's own helpers send them
                resp = self.client.api_call(method, params=params)
            return dict(resp.data) if isinstance(resp.data, dict) else {}
        except SlackApiError as exc:
            status = exc.response.status_code
            error = exc.response.get("error", "") if isinstance(exc.response.data, dict) else ""
            if status == 429:
                retry = _retry_after(exc.response.headers)
                self.pacer.hold(method, retry)
                self.on_rate_limited(method)
                raise SlackRateLimited(method, retry) from None
            if status >= 500:
                raise SlackUnavailable(method, f"HTTP {status}") from None
            if error in PERMANENT_ERRORS:
                raise SlackPermanentError(method, error) from None
            raise SlackUnavailable(method, error or f"HTTP {status}") from None
        except (SlackClientError, OSError) as exc:
            raise SlackUnavailable(method, type(exc).__name__) from None


def _retry_after(headers: Any) -> float:
    for k, v in (headers or {}).items():
        if k.lower() == "retry-after":
            v = v[0] if isinstance(v, list) else v
            try:
                return max(1.0, float(v))
            except (TypeError, ValueError):
                break
    return 1.0
