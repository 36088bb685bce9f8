"""The one place that talks to Slack's Web API: builds the WebClient from config (never at
import time), paces each method at its tier rate, and turns Slack's answers into error types.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from ..errors import (
    SlackOutcomeUnknown,
    SlackPermanentError,
    SlackRateLimited,
    SlackStopping,
    SlackUnavailable,
)

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


# Share of each budget to pace at. Spacing a call one interval after the previous call's answer
# (see `Pacer.answered`) already keeps any two calls at least one interval apart where Slack
# takes their tokens, so no headroom is needed: each round trip is itself the margin, and
# pacing lower would only waste budget. (A pacer spacing calls from when they leave would need
# headroom for the trips' jitter, and on loopback that jitter is larger than 3% of a 10 ms
# interval: bench/bench_delivery.py --jitter.)
HEADROOM = 1.0


class Pacer:
    """One token bucket per method, refilled at HEADROOM x its rate, holding one token.

    Each method's calls are spaced from when the previous one's answer came back (see
    `answered`), not from the slot it was booked for: a thread that wakes late or a call that
    travels slowly does not make the next call early (a bucket anchored on booked slots would
    let it catch up and burst past Slack's budget, and one anchored on a guess of when Slack
    took the token is beaten by a trip slower than the guess). One call per method is in
    flight at a time, whichever lane makes it (with two, neither's answer would bound when
    Slack took the other's token); other methods are never held up. A 429 holds
    the method back for Retry-After."""

    def __init__(self, rates: dict[str, float] | None = None, *,
                 clock: Callable[[], float] = time.monotonic, stop: threading.Event | None = None,
                 headroom: float = HEADROOM):
        self.rates = {**DEFAULT_RATES, **(rates or {})}
        self.headroom = headroom
        self._clock = clock
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()
        self._method_locks: dict[str, threading.Lock] = {}
        self._stop = stop or threading.Event()

    def interval(self, method: str) -> float:
        return 60.0 / (self.rates.get(method, 50.0) * self.headroom)

    def _method_lock(self, method: str) -> threading.Lock:
        with self._lock:
            return self._method_locks.setdefault(method, threading.Lock())

    def wait(self, method: str) -> float | None:
        """Block until `method` may be called and take its token; returns the time the call
        leaves (None when stopping). One call per method is in flight at a time: the caller
        must report its answer with `answered()`, which lets the next one go."""
        if method in UNPACED:
            return self._clock()
        lock = self._method_lock(method)
        while not lock.acquire(timeout=0.2):     # another call of this method is in flight
            if self._stop.is_set():
                return None
        while True:
            with self._lock:
                delay = self._next.get(method, 0.0) - self._clock()
            if delay <= 0:
                break
            if self._stop.wait(delay):
                lock.release()
                return None
        now = self._clock()
        with self._lock:
            self._next[method] = now + self.interval(method)
        return now

    def answered(self, method: str, sent_at: float) -> None:
        """The call that left at `sent_at` has its answer (or failed). Slack took its token
        somewhere between `sent_at` and now; the next call leaves at least one interval after
        now, so it reaches Slack one interval after the token was taken however the two trips
        were split between going there and coming back (a one-token bucket never says 429)."""
        if method in UNPACED:
            return
        now = self._clock()
        with self._lock:
            self._next[method] = max(self._next.get(method, 0.0), now + self.interval(method))
        self._method_lock(method).release()

    def hold(self, method: str, seconds: float) -> None:
        """Slack said 429 with Retry-After: no call of this method before then."""
        with self._lock:
            self._next[method] = max(self._next.get(method, 0.0), self._clock() + seconds)


# Slack answers in well under a second; this long a wait only cuts off a hung connection. A
# slow answer is still an answer: a shorter timeout would call a call that succeeded a
# failure. A post that times out is looked up, never blindly repeated (slack/delivery.py).
CALL_TIMEOUT_SECONDS = 30

# Calls that create something each time they are made: when their answer is lost, they are
# reported as SlackOutcomeUnknown, not as a failure to retry.
NOT_REPEATABLE = frozenset({"chat.postMessage", "chat.postEphemeral"})


def make_client(api_url: str, token: str, *, timeout: int = CALL_TIMEOUT_SECONDS) -> WebClient:
    # Our own retry/backoff handles failures: no blocking sleeps inside slack_sdk.
    return WebClient(token=token, base_url=api_url, timeout=timeout, retry_handlers=[])


class SlackApi:
    """Paced Web API calls with typed errors. `call()` returns the response data dict."""

    def __init__(self, client: WebClient, pacer: Pacer | None = None):
        self.client = client
        self.pacer = pacer or Pacer()
        self.on_rate_limited: Callable[[str], None] = lambda method: None
        self.stopping = threading.Event()    # set: no new call leaves (a stop never bursts a batch out)

    def call(self, method: str, **params: Any) -> dict:
        if self.stopping.is_set():
            raise SlackStopping(method)
        sent_at = self.pacer.wait(method)
        if sent_at is None:
            raise SlackStopping(method)
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
        except (SlackClientError, URLError) as exc:
            # urllib wraps what fails while connecting or sending: the request never arrived
            raise SlackUnavailable(method, type(exc).__name__) from None
        except (OSError, HTTPException) as exc:
            # the request was sent, the answer never came (reset, timeout, empty reply)
            if method in NOT_REPEATABLE:
                raise SlackOutcomeUnknown(method, f"no answer ({type(exc).__name__})") from None
            raise SlackUnavailable(method, type(exc).__name__) from None
        finally:
            self.pacer.answered(method, sent_at)


def _retry_after(headers: Any) -> float:
    for k, v in (headers or {}).items():
        if k.lower() == "retry-after":
            v = v[0] if isinstance(v, list) else v
            try:
                return max(1.0, float(v))
            except (TypeError, ValueError):
                break
    return 1.0
