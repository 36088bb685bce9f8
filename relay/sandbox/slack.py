"""A loopback stand-in for Slack's Web API, spoken over real HTTP.

The relay's real clients (``slack_sdk.WebClient(base_url=standin.api_url)``,
``slack_sdk.webhook.WebhookClient(response_url)``, the Socket Mode client via
``apps.connections.open``) talk to it exactly as they talk to Slack: same
methods, same JSON shapes, same error strings, same HTTP statuses (200 with
``ok: false`` for API errors, 429 + ``Retry-After`` for rate limits).

Facts come from ``/work/shared/reference/slack-platform.md`` and the method
pages it cites (slack-ruby/slack-api-ref ``docs.slack.dev/methods/*.json``).
Where Slack's behaviour is not documented, the choice is named ``[U]`` in a
comment.

Usage::

    with SlackStandIn() as slack:
        slack.add_user("U0ALICE", email="alice@example.com", real_name="Alice")
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        client.chat_postMessage(channel="U0ALICE", text="hi")
        slack.wait_for("chat.postMessage")
        assert slack.messages("U0ALICE")[0]["text"] == "hi"

Everything is guarded by one lock; test threads and the server's request
threads may call any method at any time. Tokens are never logged or recorded.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
import secrets
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, urlsplit

__all__ = ["Call", "SlackStandIn"]

log = logging.getLogger(__name__)

# Limits (reference §3, §4, §9).
TEXT_TRUNCATE_AT = 40_000  # chat.postMessage: longer text is truncated, warning message_truncated
MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
SECTION_FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
ACTION_ID_MAX = 255
BLOCK_ID_MAX = 255
ACTIONS_ELEMENTS_MAX = 25
CONTEXT_ELEMENTS_MAX = 10
VIEW_TITLE_MAX = 24
PRIVATE_METADATA_MAX = 3000
CALLBACK_ID_MAX = 255
VIEW_MAX_BYTES = 250 * 1024
TRIGGER_TTL = 3.0  # "expire in three seconds", single use
RESPONSE_URL_TTL = 30 * 60.0  # "up to 5 times within 30 minutes"
RESPONSE_URL_MAX_USES = 5
PUSH_LIMIT = 3  # views.push: "Currently the limit is 3"

BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0SANDBOX"

# Bot-token scope each method needs (reference §5 table). Methods not listed need none.
METHOD_SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "conversations.open": "im:write",
    "conversations.history": "im:history",  # for a DM; channels:history / groups:history otherwise
    "conversations.replies": "im:history",  # likewise
    "users.info": "users:read",
    "users.lookupByEmail": "users:read.email",
    # conversations.info needs the read scope of the channel's type (checked in the method).
}

_TRIGGER_RE = re.compile(r"^\d+\.\d+\.[0-9a-zA-Z]+$")


@dataclass
class Call:
    """One request the stand-in received.

    Recorded when the request arrives (``done`` False, ``status`` 0, ``ok`` None)
    and completed in place before the HTTP response is written. ``args`` never
    contains the token; ``blocks``/``view`` sent as JSON strings are decoded.
    ``method`` is the Web API method, or ``"response_url"`` for POSTs to a
    response URL.
    """

    method: str
    args: dict
    ok: bool | None
    error: str | None
    status: int
    at: float
    done: bool = False
    answered: bool = True  # False: the stand-in dropped the connection instead of answering


class _Fault:
    def __init__(self, *, error, status, retry_after, times, hang, delay, reset_after_accept=False,
                 answer_delay=None):
        self.error = error
        self.status = status
        self.retry_after = retry_after
        self.remaining = times  # None: forever
        self.hang = hang
        self.delay = delay
        self.reset_after_accept = reset_after_accept
        self.answer_delay = answer_delay


class DropConnection(Exception):
    """Raised to the HTTP handler: close the connection without writing an answer."""


class _Bucket:
    def __init__(self, per_minute: float, burst: float | None, now: float):
        self.rate = per_minute / 60.0
        self.capacity = float(burst) if burst is not None else max(1.0, self.rate)
        self.tokens = self.capacity
        self.updated = now

    def take(self, now: float) -> float:
        """Take one token; return 0 on success, else seconds until one is available."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        if self.rate <= 0:
            return 60.0
        return (1.0 - self.tokens) / self.rate


class _ApiError(Exception):
    def __init__(self, error: str, *, messages: list[str] | None = None, extra: dict | None = None):
        super().__init__(error)
        self.error = error
        self.messages = messages
        self.extra = extra or {}


def _truthy(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if v is None:
        return False
    return str(v).strip().lower() in ("1", "true", "yes", "on")


def _text_of(obj: Any) -> str | None:
    """The string of a text object ({"type":..,"text":..}) or a bare string."""
    if isinstance(obj, dict):
        t = obj.get("text")
        return t if isinstance(t, str) else None
    if isinstance(obj, str):
        return obj
    return None


class SlackStandIn:
    """Slack Web API stand-in on ``http://host:port/api/`` (see module docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_token: str = "xoxb-sandbox",
        team_id: str = "T0SANDBOX",
        scopes: Iterable[str] = ("chat:write", "im:write", "im:history", "users:read", "users:read.email",
                                 "commands"),
        *,
        app_token: str = "xapp-1-sandbox",
        clock: Callable[[], float] = time.monotonic,
    ):
        self.host = host
        self._port = port
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.scopes = tuple(scopes)
        self.clock = clock
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._socket_mode = None
        self._token_revoked = False
        self._counter = 0
        self._last_ts_micros = 0
        self._users: dict[str, dict] = {}
        self._dm_of_user: dict[str, str] = {}
        self._channels: dict[str, dict] = {}  # id -> {"members": set, "im_user": uid|None}
        self._faults: dict[str, deque[_Fault]] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._reset_state()
        self._calls: list[Call] = []
        self._response_log: list[dict] = []
        self.add_user(BOT_USER_ID, name="ssrelay", real_name="ssrelay", is_bot=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "SlackStandIn":
        if self._server is not None:
            return self
        standin = self

        class Handler(_Handler):
            pass

        Handler.standin = standin
        self._stopping.clear()
        self._server = ThreadingHTTPServer((self.host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="slack-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def refuse_connections(self) -> None:
        """Stop listening (callers get "connection refused"); state and recordings stay.
        `accept_connections()` listens again on the same port."""
        port = self.port
        self.stop()
        self._port = port

    def accept_connections(self) -> None:
        self.start()

    def __enter__(self) -> "SlackStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("SlackStandIn is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def api_url(self) -> str:
        """Web API base for ``WebClient(base_url=...)``; ends with a slash."""
        return f"{self.base_url}api/"

    def __repr__(self) -> str:  # never shows tokens
        state = f"port={self._server.server_address[1]}" if self._server else "stopped"
        return f"<SlackStandIn {state} team={self.team_id}>"

    # ------------------------------------------------------------------ directory

    def add_user(
        self,
        user_id: str,
        *,
        email: str | None = None,
        name: str | None = None,
        real_name: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
    ) -> dict:
        """Add (or replace) a workspace member; returns the users.info ``user`` object."""
        name = name or user_id.lower()
        real_name = real_name or name
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": real_name,
            "deleted": deleted,
            "is_bot": is_bot,
            "is_app_user": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "tz": "Europe/London",
            "profile": {
                "real_name": real_name,
                "display_name": name,
                "email": email,
                "team": self.team_id,
            },
        }
        if email is None:
            del user["profile"]["email"]
        with self._lock:
            self._users[user_id] = user
            self._dm_channel_locked(user_id)
        return copy.deepcopy(user)

    def add_channel(self, channel_id: str, *, members: Iterable[str] = (), name: str | None = None,
                    bot_member: bool = True, private: bool = False) -> None:
        """A public (C…) or private channel with these human members; the bot is in it unless
        `bot_member` is False (then posting answers not_in_channel, as Slack does)."""
        with self._lock:
            self._channels[channel_id] = {"members": set(members), "im_user": None,
                                          "name": name or channel_id.lower(), "bot_member": bot_member,
                                          "private": private}
            self._messages.setdefault(channel_id, {})

    def dm_channel(self, user_id: str) -> str:
        """The ``D…`` id of the app's DM with this user (stable)."""
        with self._lock:
            return self._dm_channel_locked(user_id)

    def _dm_channel_locked(self, user_id: str) -> str:
        dm = self._dm_of_user.get(user_id)
        if dm is None:
            dm = f"D0SB{len(self._dm_of_user) + 1:06d}"
            self._dm_of_user[user_id] = dm
            self._channels[dm] = {"members": {user_id}, "im_user": user_id}
        return dm

    def revoke_token(self) -> None:
        """From now on the bot token answers ``token_revoked`` (a token-expiry fault)."""
        with self._lock:
            self._token_revoked = True

    def attach_socket_mode(self, socket_mode) -> None:
        """Let ``apps.connections.open`` hand out ``socket_mode.url``."""
        with self._lock:
            self._socket_mode = socket_mode

    # ------------------------------------------------------------------ test inputs

    def new_trigger_id(self, user_id: str, *, ttl: float = TRIGGER_TTL, view_id: str | None = None) -> str:
        """A trigger id as found in an interaction payload: valid ``ttl`` seconds, single use.

        ``view_id``: the modal the interaction happened in (needed by ``views.push``).
        A ``ttl`` <= 0 gives an already-expired trigger (expired once clock() >= issued + ttl).
        """
        with self._lock:
            n = self._next()
            tid = f"{n}.{int(time.time())}.{secrets.token_hex(8)}"
            self._triggers[tid] = {
                "user": user_id,
                "expires": self.clock() + ttl,
                "used": False,
                "view_id": view_id,
            }
            return tid

    def new_response_url(
        self,
        user_id: str,
        channel_id: str,
        message_ts: str | None = None,
        ephemeral: bool = True,
        *,
        ttl: float = RESPONSE_URL_TTL,
        max_uses: int = RESPONSE_URL_MAX_USES,
    ) -> str:
        """A response_url for an interaction by ``user_id`` on a message in ``channel_id``.

        ``message_ts``: the source message (an ephemeral ``message_ts`` when
        ``ephemeral``), the one ``replace_original``/``delete_original`` act on.
        """
        with self._lock:
            hook_id = secrets.token_urlsafe(12)
            self._hooks[hook_id] = {
                "id": hook_id,
                "user": user_id,
                "channel": channel_id,
                "message_ts": message_ts,
                "ephemeral": ephemeral,
                "expires": self.clock() + ttl,
                "uses": 0,
                "max_uses": max_uses,
            }
        return f"{self.base_url}hooks/{hook_id}"

    def set_rate_limit(self, method: str, per_minute: float, burst: float | None = None) -> None:
        """Token bucket for ``method``: capacity ``burst`` (default max(1, per_minute/60)),
        refilled at per_minute/60 tokens a second. Over budget: 429 + Retry-After."""
        with self._lock:
            self._buckets[method] = _Bucket(per_minute, burst, self.clock())

    def clear_rate_limit(self, method: str) -> None:
        with self._lock:
            self._buckets.pop(method, None)

    def fail(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        times: int | None = 1,
        hang: threading.Event | None = None,
        delay: float | None = None,
        reset_after_accept: bool = False,
        answer_delay: float | None = None,
    ) -> None:
        """Inject a fault into the next ``times`` calls of ``method`` (None: every call).

        - ``reset_after_accept``: the call is served normally (a message is posted), then the
          connection is closed without an answer: the client cannot know it took effect.
        - ``answer_delay``: the call is served normally at once, the answer is written that many
          seconds later (a slow answer: the effect exists before the client hears of it).

        - ``error``: HTTP 200 ``{"ok": false, "error": error}`` (or with ``status``).
        - ``status``: that HTTP status, body ``{"ok": false, "error": error or "internal_error"}``.
        - ``retry_after`` (or ``status=429``): 429 ``ratelimited`` with ``Retry-After``.
        - ``hang``: the call is recorded, then waits until the Event is set (or the
          stand-in stops); ``delay``: waits that many seconds. Without an outcome
          above, the call then proceeds normally (the effect happens late).
        """
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        with self._lock:
            self._faults.setdefault(method, deque()).append(
                _Fault(error=error, status=status, retry_after=retry_after, times=times, hang=hang, delay=delay,
                       reset_after_accept=reset_after_accept, answer_delay=answer_delay)
            )

    # ------------------------------------------------------------------ recordings

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def wait_for(
        self,
        method: str | None = None,
        predicate: Callable[[Call], bool] | None = None,
        count: int = 1,
        timeout: float = 5.0,
        *,
        in_flight: bool = False,
    ) -> list[Call]:
        """Block until ``count`` matching calls exist; return all matching calls.

        By default only completed calls count (their effects are visible in
        ``messages()`` etc.). ``in_flight=True`` also counts calls still being
        served, e.g. held by ``fail(hang=...)``.
        """

        def matching() -> list[Call]:
            return [
                c
                for c in self._calls
                if (method is None or c.method == method)
                and (in_flight or c.done)
                and (predicate is None or predicate(c))
            ]

        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = matching()
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = ", ".join(
                        f"{c.method}({'ok' if c.ok else c.error or ('…' if not c.done else c.status)})"
                        for c in self._calls[-20:]
                    )
                    raise TimeoutError(
                        f"waited {timeout}s for {count} call(s) to {method or 'any method'}"
                        f"{' matching predicate' if predicate else ''}; found {len(found)}; "
                        f"{len(self._calls)} call(s) seen, last: [{seen}]"
                    )
                self._cond.wait(remaining)

    def count_429(self) -> int:
        with self._lock:
            return sum(1 for c in self._calls if c.status == 429)

    def clear_faults(self) -> None:
        """Forget injected faults (recorded calls and state stay)."""
        with self._lock:
            self._faults.clear()

    def reset(self, *, state: bool = False) -> None:
        """Forget recorded calls and responses; with ``state=True`` also messages,
        views, triggers, response URLs, faults and rate limits (users stay)."""
        with self._lock:
            self._calls.clear()
            self._response_log.clear()
            if state:
                self._reset_state()
                self._faults.clear()
                self._buckets.clear()
                self._token_revoked = False

    def _reset_state(self) -> None:
        self._messages: dict[str, dict[str, dict]] = {}  # channel -> ts -> message (insertion ordered)
        self._ephemerals: dict[str, dict[str, dict]] = {}  # user -> ts -> message
        self._home: dict[str, str] = {}  # user -> view id
        self._views: dict[str, dict] = {}  # view id -> view
        self._view_owner: dict[str, str] = {}  # view id -> user
        self._external_ids: dict[str, str] = {}  # external id -> view id
        self._stacks: dict[str, list[str]] = {}  # root view id -> [view ids]
        self._user_stacks: dict[str, list[str]] = {}  # user -> [root ids], newest last
        self._triggers: dict[str, dict] = {}
        self._hooks: dict[str, dict] = {}
        for cid in self._channels:
            self._messages.setdefault(cid, {})

    # ------------------------------------------------------------------ state views

    def messages(self, channel_or_user: str) -> list[dict]:
        """Live (not deleted) messages of a channel, oldest first; a ``U…``/``W…`` id
        means that user's app DM. Dicts: ts, text, blocks, user (author), channel, edited."""
        with self._lock:
            cid = self._resolve_channel_locked(channel_or_user) or channel_or_user
            return [copy.deepcopy(m) for m in self._messages.get(cid, {}).values()]

    def thread(self, channel: str, ts: str) -> list[dict]:
        """The replies in the thread of message `ts` (not the parent), oldest first."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._messages.get(channel, {}).values()
                    if m.get("thread_ts") == ts and m["ts"] != ts]

    def ephemerals(self, user_id: str) -> list[dict]:
        """Live ephemeral messages shown to ``user_id`` (ts, text, blocks, user, channel)."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._ephemerals.get(user_id, {}).values()]

    def home_view(self, user_id: str) -> dict | None:
        with self._lock:
            vid = self._home.get(user_id)
            return copy.deepcopy(self._views[vid]) if vid else None

    def modal(self, view_id: str) -> dict | None:
        with self._lock:
            v = self._views.get(view_id)
            return copy.deepcopy(v) if v and v.get("type") == "modal" else None

    def responses(self, response_url_id: str | None = None) -> list[dict]:
        """POSTs received on response URLs (all, or those of one id / full URL).
        Dicts: id, user, channel, body, status, result, at."""
        hook_id = response_url_id.rstrip("/").rsplit("/", 1)[-1] if response_url_id else None
        with self._lock:
            return [copy.deepcopy(r) for r in self._response_log if hook_id is None or r["id"] == hook_id]

    # ------------------------------------------------------------------ dispatch

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def _new_ts(self) -> str:
        micros = max(self._last_ts_micros + 1, int(time.time() * 1_000_000))
        self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _record(self, method: str, args: dict) -> Call:
        call = Call(method=method, args=args, ok=None, error=None, status=0, at=self.clock())
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()
        return call

    def _finish(self, call: Call, status: int, body: Any) -> None:
        with self._cond:
            call.status = status
            if isinstance(body, dict):
                call.ok = bool(body.get("ok"))
                call.error = body.get("error")
            else:
                call.ok = 200 <= status < 300
                call.error = None if call.ok else str(body)
            call.done = True
            self._cond.notify_all()

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            q = self._faults.get(method)
            if not q:
                return None
            fault = q[0]
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    q.popleft()
            return fault

    def _wait_fault(self, fault: _Fault) -> None:
        if fault.hang is not None:
            while not fault.hang.wait(0.05):
                if self._stopping.is_set():
                    break
        if fault.delay:
            self._stopping.wait(fault.delay)

    def _fault_outcome(self, fault: _Fault) -> tuple[int, dict, dict] | None:
        if fault.status == 429 or fault.retry_after is not None:
            ra = max(1, int(math.ceil(fault.retry_after or 1)))
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(ra)}
        if fault.status is not None:
            return fault.status, {"ok": False, "error": fault.error or "internal_error"}, {}
        if fault.error is not None:
            return 200, {"ok": False, "error": fault.error}, {}
        return None

    def handle_api(self, method: str, args: dict, token: str | None) -> tuple[int, dict, dict]:
        """Serve one Web API call: (HTTP status, JSON body, extra headers). Records it.
        Raises DropConnection when an injected fault says the answer is never written."""
        call = self._record(method, _redacted(args))
        status, body = 200, {"ok": False, "error": "internal_error"}
        headers: dict[str, str] = {}
        fault = self._take_fault(method)
        try:
            status, body, headers = self._serve(method, args, token, fault)
        except _ApiError as e:
            status, body = 200, {"ok": False, "error": e.error, **e.extra}
            if e.messages:
                body["response_metadata"] = {"messages": e.messages}
        except Exception:  # a stand-in bug must still answer and be visible
            log.exception("slack stand-in failed serving %s", method)
            status, body = 500, {"ok": False, "error": "internal_error"}
        if fault is not None and fault.reset_after_accept:
            call.answered = False
            self._finish(call, status, body)
            raise DropConnection(method)
        if fault is not None and fault.answer_delay:
            self._stopping.wait(fault.answer_delay)
        self._finish(call, status, body)
        return status, body, headers

    def _serve(self, method: str, args: dict, token: str | None,
               fault: _Fault | None = None) -> tuple[int, dict, dict]:
        if fault is not None:
            self._wait_fault(fault)
            outcome = self._fault_outcome(fault)
            if outcome is not None:
                return outcome
        self._authenticate(method, token)
        with self._lock:
            bucket = self._buckets.get(method)
            wait = bucket.take(self.clock()) if bucket else 0.0
        if wait > 0:
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(max(1, math.ceil(wait)))}
        handler = _METHODS.get(method)
        if handler is None:
            raise _ApiError("unknown_method")
        needed = _scope_needed(self, method, args)
        if needed and needed not in self.scopes:
            raise _ApiError("missing_scope", extra={"needed": needed, "provided": ",".join(self.scopes)})
        with self._lock:
            body = handler(self, args)
        return 200, {"ok": True, **body}, {}

    def _authenticate(self, method: str, token: str | None) -> None:
        if not token:
            raise _ApiError("not_authed")
        if method == "apps.connections.open":
            if token == self.app_token:
                return
            if token.startswith("xapp-"):
                raise _ApiError("invalid_auth")
            raise _ApiError("not_allowed_token_type")
        if token == self.app_token:
            raise _ApiError("not_allowed_token_type")
        if token != self.bot_token:
            raise _ApiError("invalid_auth")
        if self._token_revoked:
            raise _ApiError("token_revoked")

    # ------------------------------------------------------------------ helpers used by methods

    def _resolve_channel_locked(self, channel: str | None) -> str | None:
        """A channel id, or the DM id for a user id; None if unknown."""
        if not channel:
            return None
        if channel in self._channels:
            return channel
        if channel in self._users:
            return self._dm_channel_locked(channel)
        return None

    def _dm_target_locked(self, user_id: str) -> str:
        user = self._users.get(user_id)
        if user is None:
            raise _ApiError("channel_not_found")
        if user["deleted"]:
            raise _ApiError("user_disabled")  # [U] conversations.open's string; postMessage's undocumented
        if user["is_bot"]:
            raise _ApiError("cannot_dm_bot")  # [U] widely reported, not on the method page
        return self._dm_channel_locked(user_id)

    def _hook_result(self, hook_id: str, body: dict) -> tuple[int, str]:
        with self._lock:
            hook = self._hooks.get(hook_id)
            if hook is None:
                return 404, "no_service"
            if self.clock() >= hook["expires"]:
                return 404, "expired_url"  # [U] string; 404 per Slack's webhook errors
            if hook["uses"] >= hook["max_uses"]:
                return 404, "used_url"  # [U] string
            hook["uses"] += 1
            return self._apply_response_locked(hook, body)

    def _apply_response_locked(self, hook: dict, body: dict) -> tuple[int, str]:
        text = body.get("text")
        blocks = body.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return 400, "invalid_blocks"
        if blocks is not None:
            try:
                _validate_blocks(blocks, MESSAGE_MAX_BLOCKS, "blocks")
            except _ApiError as e:
                return 400, e.error
        user, channel, src_ts = hook["user"], hook["channel"], hook["message_ts"]
        has_content = text is not None or blocks is not None

        def source() -> dict | None:
            if src_ts is None:
                return None
            if hook["ephemeral"]:
                return self._ephemerals.get(user, {}).get(src_ts)
            cid = self._resolve_channel_locked(channel)
            return self._messages.get(cid, {}).get(src_ts) if cid else None

        if _truthy(body.get("delete_original")):
            src = source()
            if src is not None:
                if hook["ephemeral"]:
                    self._ephemerals[user].pop(src_ts, None)
                else:
                    self._messages[src["channel"]].pop(src_ts, None)
            if not has_content:
                return 200, "ok"
        elif _truthy(body.get("replace_original")):
            src = source()
            if src is not None:
                if body.get("response_type") == "in_channel" and hook["ephemeral"]:
                    # "A message's type cannot be changed from ephemeral to in_channel" [C D-IX]
                    return 400, "invalid_payload"  # [U] string
                src["text"] = (text or "")[:TEXT_TRUNCATE_AT]
                src["blocks"] = blocks or []
                src["edited"] = {"user": BOT_USER_ID, "ts": self._new_ts()}
                return 200, "ok"
            # no source message known: falls through to posting a new one
        if not has_content:
            return 400, "no_text"
        msg: dict[str, Any] = {
            "type": "message",
            "ts": self._new_ts(),
            "text": (text or "")[:TEXT_TRUNCATE_AT],
            "blocks": blocks or [],
            "user": user if body.get("response_type") != "in_channel" else BOT_USER_ID,
            "channel": self._resolve_channel_locked(channel) or channel,
        }
        if body.get("response_type") == "in_channel":
            msg["bot_id"] = BOT_ID
            self._messages.setdefault(msg["channel"], {})[msg["ts"]] = msg
        else:
            self._ephemerals.setdefault(user, {})[msg["ts"]] = msg
        return 200, "ok"

    def handle_hook(self, hook_id: str, body: dict) -> tuple[int, str]:
        call = self._record("response_url", dict(body, _hook_id=hook_id))
        fault = self._take_fault("response_url")
        outcome = None
        if fault is not None:
            self._wait_fault(fault)
            if fault.status is not None or fault.retry_after is not None:
                outcome = (fault.status or 429, fault.error or "internal_error")
            elif fault.error is not None:
                outcome = (404, fault.error)
        status, result = outcome or self._hook_result(hook_id, body)
        with self._lock:
            hook = self._hooks.get(hook_id) or {}
            self._response_log.append(
                {
                    "id": hook_id,
                    "user": hook.get("user"),
                    "channel": hook.get("channel"),
                    "body": copy.deepcopy(body),
                    "status": status,
                    "result": result,
                    "at": self.clock(),
                }
            )
        with self._cond:
            call.status, call.ok, call.done = status, status == 200, True
            call.error = None if status == 200 else result
            self._cond.notify_all()
        return status, result


# ---------------------------------------------------------------------- argument helpers


def _redacted(args: dict) -> dict:
    out = {k: v for k, v in args.items() if k != "token"}
    for key in ("blocks", "view"):
        if isinstance(out.get(key), str):
            try:
                out[key] = json.loads(out[key])
            except ValueError:
                pass
    return out


def _require(args: dict, name: str, error: str = "invalid_arguments") -> Any:
    v = args.get(name)
    if v is None or v == "":
        raise _ApiError(error, messages=[f"[ERROR] missing required field: {name}"])
    return v


def _json_arg(args: dict, name: str, error: str) -> Any:
    v = args.get(name)
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            raise _ApiError(error, messages=[f"[ERROR] {name} is not valid JSON"]) from None
    return v


def _err(error: str, msg: str, pointer: str) -> _ApiError:
    return _ApiError(error, messages=[f"[ERROR] {msg} [json-pointer:{pointer}]"])


def _validate_blocks(blocks: Any, max_blocks: int, pointer: str, error: str = "invalid_blocks") -> None:
    """Block Kit limits of reference §9; raises ``error`` with Slack-style messages."""
    if not isinstance(blocks, list):
        raise _err("invalid_blocks_format" if error == "invalid_blocks" else error, "must be an array", f"/{pointer}")
    if len(blocks) > max_blocks:
        raise _err(error, f"no more than {max_blocks} items allowed", f"/{pointer}")

    def max_len(value: Any, limit: int, where: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            raise _err(error, f"must be less than {limit + 1} characters", where)

    def check_button(el: dict, where: str) -> None:
        max_len(_text_of(el.get("text")), BUTTON_TEXT_MAX, f"{where}/text/text")
        max_len(el.get("value"), BUTTON_VALUE_MAX, f"{where}/value")
        max_len(el.get("action_id"), ACTION_ID_MAX, f"{where}/action_id")

    def check_element(el: Any, where: str) -> None:
        if not isinstance(el, dict) or not isinstance(el.get("type"), str):
            raise _err(error, "missing required field: type", where)
        if el["type"] == "button":
            check_button(el, where)
        else:
            max_len(el.get("action_id"), ACTION_ID_MAX, f"{where}/action_id")

    for i, block in enumerate(blocks):
        where = f"/{pointer}/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str) or not block.get("type"):
            raise _err(error, "missing required field: type", where)
        max_len(block.get("block_id"), BLOCK_ID_MAX, f"{where}/block_id")
        kind = block["type"]
        if kind == "section":
            text = _text_of(block.get("text"))
            fields = block.get("fields")
            if text is None and not fields:
                raise _err(error, "must provide text or fields", where)
            max_len(text, SECTION_TEXT_MAX, f"{where}/text/text")
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > SECTION_FIELDS_MAX:
                    raise _err(error, f"no more than {SECTION_FIELDS_MAX} items allowed", f"{where}/fields")
                for j, f in enumerate(fields):
                    max_len(_text_of(f), SECTION_FIELD_TEXT_MAX, f"{where}/fields/{j}/text")
            if block.get("accessory") is not None:
                check_element(block["accessory"], f"{where}/accessory")
        elif kind == "header":
            text = _text_of(block.get("text"))
            if text is None:
                raise _err(error, "missing required field: text", where)
            max_len(text, HEADER_TEXT_MAX, f"{where}/text/text")
        elif kind == "actions":
            els = block.get("elements")
            if not isinstance(els, list) or not els:
                raise _err(error, "missing required field: elements", where)
            if len(els) > ACTIONS_ELEMENTS_MAX:
                raise _err(error, f"no more than {ACTIONS_ELEMENTS_MAX} items allowed", f"{where}/elements")
            for j, el in enumerate(els):
                check_element(el, f"{where}/elements/{j}")
        elif kind == "context":
            els = block.get("elements")
            if not isinstance(els, list) or not els:
                raise _err(error, "missing required field: elements", where)
            if len(els) > CONTEXT_ELEMENTS_MAX:
                raise _err(error, f"no more than {CONTEXT_ELEMENTS_MAX} items allowed", f"{where}/elements")
        elif kind == "input":
            if block.get("label") is None or block.get("element") is None:
                raise _err(error, "missing required field: label/element", where)
            max_len(_text_of(block.get("label")), 2000, f"{where}/label/text")
            check_element(block["element"], f"{where}/element")


def _message_content(args: dict, *, required: bool = True) -> tuple[str, list, list[str]]:
    blocks = _json_arg(args, "blocks", "invalid_blocks_format")
    if blocks is not None:
        _validate_blocks(blocks, MESSAGE_MAX_BLOCKS, "blocks")
    text = args.get("text")
    if required and (text is None or text == "") and not blocks:
        raise _ApiError("no_text")
    text = "" if text is None else str(text)
    warnings = []
    if len(text) > TEXT_TRUNCATE_AT:
        text = text[:TEXT_TRUNCATE_AT]
        warnings.append("message_truncated")
    return text, blocks or [], warnings


def _with_warnings(body: dict, warnings: list[str]) -> dict:
    if warnings:
        body["warning"] = ",".join(warnings)
        body["response_metadata"] = {"warnings": warnings}
    return body


# ---------------------------------------------------------------------- methods (called under the lock)


def _auth_test(s: SlackStandIn, args: dict) -> dict:
    return {
        "url": "https://sandbox.slack.com/",
        "team": "Sandbox",
        "user": "ssrelay",
        "team_id": s.team_id,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


def _users_info(s: SlackStandIn, args: dict) -> dict:
    uid = _require(args, "user", "user_not_found")
    user = s._users.get(uid)
    if user is None:
        raise _ApiError("user_not_found")
    return {"user": copy.deepcopy(user)}


def _users_lookup_by_email(s: SlackStandIn, args: dict) -> dict:
    email = str(_require(args, "email", "invalid_email")).strip().lower()
    for user in s._users.values():
        if (user["profile"].get("email") or "").lower() == email:
            return {"user": copy.deepcopy(user)}
    raise _ApiError("users_not_found")


def _conversations_open(s: SlackStandIn, args: dict) -> dict:
    users = args.get("users")
    if not users:
        channel = args.get("channel")
        if channel and channel in s._channels and s._channels[channel]["im_user"]:
            return {"no_op": True, "already_open": True, "channel": {"id": channel}}
        raise _ApiError("users_list_not_supplied" if not channel else "channel_not_found")
    ids = [u.strip() for u in str(users).split(",") if u.strip()]
    if len(ids) != 1:
        raise _ApiError("method_not_supported_for_channel_type")  # the sandbox has no group DMs
    uid = ids[0]
    if uid not in s._users:
        raise _ApiError("user_not_found")
    return {"channel": {"id": s._dm_target_locked(uid)}}


def _conversations_info(s: SlackStandIn, args: dict) -> dict:
    """Slack's conversation object (the fields the relay and operators read)."""
    cid = _require(args, "channel", "channel_not_found")
    ch = s._channels.get(cid)
    if ch is None:
        raise _ApiError("channel_not_found")
    im = ch["im_user"] is not None
    private = bool(ch.get("private"))
    needed = "im:read" if im else "groups:read" if private else "channels:read"
    if needed not in s.scopes:
        raise _ApiError("missing_scope", extra={"needed": needed, "provided": ",".join(s.scopes)})
    if im:
        return {"channel": {"id": cid, "is_im": True, "user": ch["im_user"], "is_archived": False,
                            "is_org_shared": False, "created": 1700000000}}
    return {"channel": {"id": cid, "name": ch.get("name") or cid.lower(), "is_channel": not private,
                        "is_group": private, "is_im": False, "is_mpim": False, "is_private": private,
                        "is_archived": False, "is_general": False, "is_shared": False,
                        "is_org_shared": False, "is_member": bool(ch.get("bot_member", True)),
                        "created": 1700000000, "creator": "U0ADMIN"}}


def _chat_post_message(s: SlackStandIn, args: dict) -> dict:
    channel = _require(args, "channel", "channel_not_found")
    if channel in s._users:
        cid = s._dm_target_locked(channel)
    elif channel in s._channels:
        cid = channel
        if not s._channels[cid].get("bot_member", True):
            raise _ApiError("not_in_channel")
    else:
        raise _ApiError("channel_not_found")
    text, blocks, warnings = _message_content(args)
    ts = s._new_ts()
    msg: dict[str, Any] = {
        "type": "message",
        "subtype": "bot_message",
        "ts": ts,
        "text": text,
        "blocks": blocks,
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "channel": cid,
        "edited": None,
    }
    if args.get("thread_ts"):
        msg["thread_ts"] = str(args["thread_ts"])
        parent = s._messages.get(cid, {}).get(msg["thread_ts"])
        if parent is not None:   # as Slack shows a thread's parent: its ts, count, latest reply
            parent["thread_ts"] = parent["ts"]
            parent["reply_count"] = parent.get("reply_count", 0) + 1
            parent["latest_reply"] = ts
    if args.get("metadata") is not None:
        msg["metadata"] = _message_metadata(args)
    s._messages.setdefault(cid, {})[ts] = msg
    return _with_warnings({"channel": cid, "ts": ts, "message": copy.deepcopy(msg)}, warnings)


def _message_metadata(args: dict) -> dict:
    """chat.postMessage `metadata`: a JSON object with `event_type` (string) and `event_payload`
    (object); stored with the message and returned by conversations.history with
    include_all_metadata."""
    meta = _json_arg(args, "metadata", "invalid_metadata_format")
    if not isinstance(meta, dict) or not isinstance(meta.get("event_type"), str) or not meta["event_type"]:
        raise _ApiError("invalid_metadata_format")
    payload = meta.get("event_payload", {})
    if not isinstance(payload, dict):
        raise _ApiError("invalid_metadata_format")
    return {"event_type": meta["event_type"], "event_payload": copy.deepcopy(payload)}


HISTORY_DEFAULT_LIMIT = 100
HISTORY_MAX_LIMIT = 999


def _conversations_history(s: SlackStandIn, args: dict) -> dict:
    """Messages of a conversation, newest first, between `oldest` and `latest` (exclusive unless
    `inclusive`), `limit` per page with a cursor. As in Slack, replies in a thread are not
    listed here (only their parent; conversations.replies lists a thread). Message `metadata`
    is returned only with `include_all_metadata` [U: Slack documents the flag, not what is
    shown without it]."""
    channel = _require(args, "channel", "channel_not_found")
    if channel not in s._channels:
        raise _ApiError("channel_not_found")
    listed = [m for m in reversed(list(s._messages.get(channel, {}).values()))
              if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
    return {**_history_page(args, listed), "pin_count": 0, "channel_actions_ts": None,
            "channel_actions_count": 0}


def _conversations_replies(s: SlackStandIn, args: dict) -> dict:
    """A thread: its parent message `ts` first, then the replies, oldest first, filtered and
    paged like conversations.history (`oldest`, `latest`, `inclusive`, `limit`, `cursor`,
    `include_all_metadata`). A `ts` that is no message: thread_not_found."""
    channel = _require(args, "channel", "channel_not_found")
    if channel not in s._channels:
        raise _ApiError("channel_not_found")
    ts = str(_require(args, "ts", "thread_not_found"))
    msgs = s._messages.get(channel, {})
    if ts not in msgs:
        raise _ApiError("thread_not_found")
    thread = [m for m in msgs.values() if m["ts"] == ts or m.get("thread_ts") == ts]
    return _history_page(args, thread)


def _history_page(args: dict, messages: list[dict]) -> dict:
    def stamp(name: str, default: float) -> float:
        v = args.get(name)
        if v is None or v == "":
            return default
        try:
            return float(v)
        except (TypeError, ValueError):
            raise _ApiError(f"invalid_ts_{name}") from None

    oldest, latest = stamp("oldest", 0.0), stamp("latest", float("inf"))
    inclusive = _truthy(args.get("inclusive"))
    try:
        limit = int(args.get("limit") or HISTORY_DEFAULT_LIMIT)
    except (TypeError, ValueError):
        raise _ApiError("invalid_limit") from None
    limit = max(1, min(HISTORY_MAX_LIMIT, limit))
    cursor = str(args.get("cursor") or "")
    try:
        start = int(cursor.removeprefix("next_ts:")) if cursor else 0
    except ValueError:
        raise _ApiError("invalid_cursor") from None
    with_meta = _truthy(args.get("include_all_metadata"))

    def within(ts: float) -> bool:
        if inclusive:
            return oldest <= ts <= latest
        return oldest < ts < latest

    found = [m for m in messages if within(float(m["ts"]))]
    page = found[start:start + limit]
    out = []
    for m in page:
        item = {k: copy.deepcopy(v) for k, v in m.items() if k not in ("channel", "metadata", "edited")}
        if m.get("edited"):
            item["edited"] = copy.deepcopy(m["edited"])
        if with_meta and m.get("metadata"):
            item["metadata"] = copy.deepcopy(m["metadata"])
        out.append(item)
    more = start + limit < len(found)
    return {"messages": out, "has_more": more,
            "response_metadata": {"next_cursor": f"next_ts:{start + limit}" if more else ""}}


def _scope_needed(s: SlackStandIn, method: str, args: dict) -> str | None:
    if method in ("conversations.history", "conversations.replies"):
        ch = s._channels.get(str(args.get("channel") or ""))
        if ch is not None and not ch["im_user"]:
            return "groups:history" if ch.get("private") else "channels:history"
    return METHOD_SCOPES.get(method)


def _chat_post_ephemeral(s: SlackStandIn, args: dict) -> dict:
    channel = _require(args, "channel", "channel_not_found")
    uid = _require(args, "user", "user_not_in_channel")
    cid = s._resolve_channel_locked(channel)
    if cid is None:
        raise _ApiError("channel_not_found")
    if uid not in s._channels[cid]["members"]:
        raise _ApiError("user_not_in_channel")
    text, blocks, _ = _message_content(args)
    ts = s._new_ts()
    s._ephemerals.setdefault(uid, {})[ts] = {
        "type": "message",
        "ts": ts,
        "text": text,
        "blocks": blocks,
        "user": uid,
        "channel": cid,
    }
    return {"message_ts": ts}


def _find_message(s: SlackStandIn, args: dict) -> tuple[str, dict]:
    channel = _require(args, "channel", "channel_not_found")
    ts = _require(args, "ts", "message_not_found")
    if channel not in s._channels:  # strict, like Slack: the D id, not the user id
        raise _ApiError("channel_not_found")
    msg = s._messages.get(channel, {}).get(str(ts))
    if msg is None:  # includes ephemeral message_ts: "cannot be used with chat.update"
        raise _ApiError("message_not_found")
    return channel, msg


def _chat_update(s: SlackStandIn, args: dict) -> dict:
    channel, msg = _find_message(s, args)
    if msg.get("user") != BOT_USER_ID:
        raise _ApiError("cant_update_message")
    text, blocks, warnings = _message_content(args, required=False)
    if "text" in args or "blocks" in args:
        msg["text"] = text
        msg["blocks"] = blocks  # omitting blocks while giving text drops them [U reference §3]
    msg["edited"] = {"user": BOT_USER_ID, "ts": s._new_ts()}
    return _with_warnings(
        {"channel": channel, "ts": msg["ts"], "text": msg["text"], "message": copy.deepcopy(msg)}, warnings
    )


def _chat_delete(s: SlackStandIn, args: dict) -> dict:
    channel, msg = _find_message(s, args)
    if msg.get("user") != BOT_USER_ID:
        raise _ApiError("cant_delete_message")
    del s._messages[channel][msg["ts"]]
    return {"channel": channel, "ts": msg["ts"]}


def _apps_connections_open(s: SlackStandIn, args: dict) -> dict:
    if s._socket_mode is None:
        # [U] real Slack has no "Socket Mode off" string for this method
        raise _ApiError("internal_error", messages=["sandbox: no Socket Mode stand-in attached"])
    return {"url": s._socket_mode.url}


def _check_view(view: Any, *, kind: str) -> dict:
    if not isinstance(view, dict):
        raise _ApiError("invalid_arguments", messages=["[ERROR] missing required field: view"])
    if len(json.dumps(view)) > VIEW_MAX_BYTES:
        raise _ApiError("view_too_large")
    if view.get("type") != kind:
        raise _err("invalid_arguments", f"must be '{kind}'", "/view/type")
    _validate_blocks(view.get("blocks"), VIEW_MAX_BLOCKS, "view/blocks", error="invalid_arguments")
    pm = view.get("private_metadata")
    if isinstance(pm, str) and len(pm) > PRIVATE_METADATA_MAX:
        raise _err("invalid_arguments", f"must be less than {PRIVATE_METADATA_MAX + 1} characters",
                   "/view/private_metadata")
    cb = view.get("callback_id")
    if isinstance(cb, str) and len(cb) > CALLBACK_ID_MAX:
        raise _err("invalid_arguments", f"must be less than {CALLBACK_ID_MAX + 1} characters", "/view/callback_id")
    if kind == "modal":
        title = _text_of(view.get("title"))
        if title is None:
            raise _err("invalid_arguments", "missing required field: title", "/view/title")
        for key in ("title", "submit", "close"):
            t = _text_of(view.get(key))
            if t is not None and len(t) > VIEW_TITLE_MAX:
                raise _err("invalid_arguments", f"must be less than {VIEW_TITLE_MAX + 1} characters",
                           f"/view/{key}/text")
        if view.get("submit") is None and any(b.get("type") == "input" for b in view["blocks"]):
            raise _err("invalid_arguments", "must provide submit when input blocks are present", "/view/submit")
    return view


def _store_view(s: SlackStandIn, view: dict, *, user: str, view_id: str | None, root_id: str | None,
                previous_id: str | None) -> dict:
    external_id = view.get("external_id") or ""
    vid = view_id or f"V0SB{s._next():06d}"
    if external_id:
        owner = s._external_ids.get(external_id)
        if owner is not None and owner != vid:
            raise _ApiError("duplicate_external_id")
    old = s._views.get(vid)
    if old and old.get("external_id") and old["external_id"] != external_id:
        s._external_ids.pop(old["external_id"], None)
    if external_id:
        s._external_ids[external_id] = vid
    stored = {
        "id": vid,
        "team_id": s.team_id,
        "type": view["type"],
        "title": view.get("title"),
        "submit": view.get("submit"),
        "close": view.get("close"),
        "blocks": copy.deepcopy(view.get("blocks") or []),
        "private_metadata": view.get("private_metadata") or "",
        "callback_id": view.get("callback_id") or "",
        "external_id": external_id,
        "state": {"values": {}},
        "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
        "clear_on_close": bool(view.get("clear_on_close", False)),
        "notify_on_close": bool(view.get("notify_on_close", False)),
        "root_view_id": root_id or vid,
        "previous_view_id": previous_id,
        "app_id": APP_ID,
        "app_installed_team_id": s.team_id,
        "bot_id": BOT_ID,
    }
    s._views[vid] = stored
    s._view_owner[vid] = user
    return copy.deepcopy(stored)


def _views_publish(s: SlackStandIn, args: dict) -> dict:
    uid = _require(args, "user_id")
    if uid not in s._users:
        raise _ApiError("invalid_arguments", messages=["invalid `user_id`"])
    view = _check_view(_json_arg(args, "view", "invalid_arguments"), kind="home")
    current_id = s._home.get(uid)
    given_hash = args.get("hash")
    if given_hash:
        current_hash = s._views[current_id]["hash"] if current_id else None
        if given_hash != current_hash:
            raise _ApiError("hash_conflict")
    stored = _store_view(s, view, user=uid, view_id=current_id, root_id=None, previous_id=None)
    s._home[uid] = stored["id"]
    return {"view": stored}


def _use_trigger(s: SlackStandIn, args: dict) -> dict:
    tid = args.get("trigger_id") or args.get("interactivity_pointer")
    if not tid or not _TRIGGER_RE.match(str(tid)):
        raise _ApiError("invalid_trigger_id")
    trig = s._triggers.get(str(tid))
    if trig is None:
        raise _ApiError("invalid_trigger_id")
    if trig["used"]:
        raise _ApiError("exchanged_trigger_id")
    if s.clock() >= trig["expires"]:
        raise _ApiError("expired_trigger_id")
    trig["used"] = True
    return trig


def _views_open(s: SlackStandIn, args: dict) -> dict:
    view = _check_view(_json_arg(args, "view", "invalid_arguments"), kind="modal")
    trig = _use_trigger(s, args)
    stored = _store_view(s, view, user=trig["user"], view_id=None, root_id=None, previous_id=None)
    s._stacks[stored["id"]] = [stored["id"]]
    s._user_stacks.setdefault(trig["user"], []).append(stored["id"])
    return {"view": stored}


def _views_push(s: SlackStandIn, args: dict) -> dict:
    view = _check_view(_json_arg(args, "view", "invalid_arguments"), kind="modal")
    trig = _use_trigger(s, args)
    if trig["view_id"]:
        root = s._views.get(trig["view_id"], {}).get("root_view_id")
    else:
        stack = s._user_stacks.get(trig["user"])
        root = stack[-1] if stack else None
    stack = s._stacks.get(root) if root else None
    if not stack:
        raise _ApiError("not_found")
    if len(stack) >= PUSH_LIMIT:
        raise _ApiError("push_limit_reached")
    stored = _store_view(s, view, user=trig["user"], view_id=None, root_id=root, previous_id=stack[-1])
    stack.append(stored["id"])
    return {"view": stored}


def _views_update(s: SlackStandIn, args: dict) -> dict:
    vid = args.get("view_id")
    if not vid and args.get("external_id"):
        vid = s._external_ids.get(args["external_id"])
    if not vid and not args.get("external_id"):
        raise _ApiError("invalid_arguments", messages=["[ERROR] either view_id or external_id is required"])
    current = s._views.get(vid) if vid else None
    if current is None or vid is None:
        raise _ApiError("not_found")
    raw = _json_arg(args, "view", "invalid_arguments")
    view = _check_view(raw, kind=current["type"]) if isinstance(raw, dict) else _check_view(raw, kind="modal")
    if args.get("hash") and args["hash"] != current["hash"]:
        raise _ApiError("hash_conflict")
    if "external_id" not in view and current.get("external_id"):
        view = dict(view, external_id=current["external_id"])
    stored = _store_view(s, view, user=s._view_owner[vid], view_id=vid, root_id=current["root_view_id"],
                         previous_id=current["previous_view_id"])
    return {"view": stored}


_METHODS: dict[str, Callable[[SlackStandIn, dict], dict]] = {
    "auth.test": _auth_test,
    "users.info": _users_info,
    "users.lookupByEmail": _users_lookup_by_email,
    "conversations.open": _conversations_open,
    "conversations.history": _conversations_history,
    "conversations.replies": _conversations_replies,
    "conversations.info": _conversations_info,
    "chat.postMessage": _chat_post_message,
    "chat.postEphemeral": _chat_post_ephemeral,
    "chat.update": _chat_update,
    "chat.delete": _chat_delete,
    "views.publish": _views_publish,
    "views.open": _views_open,
    "views.push": _views_push,
    "views.update": _views_update,
    "apps.connections.open": _apps_connections_open,
}


# ---------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    standin: SlackStandIn
    server_version = "SlackStandIn/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # request lines carry no token (tokens travel in headers/bodies), but stay quiet anyway
        log.debug("slack stand-in: %s", self.path.split("?", 1)[0])

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _route(self) -> None:
        parts = urlsplit(self.path)
        raw = self._read_body()
        ctype = (self.headers.get("Content-Type") or "").lower()
        try:
            if parts.path.startswith("/api/"):
                method = parts.path[len("/api/"):].strip("/")
                args = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                if raw:
                    if "json" in ctype:
                        body = json.loads(raw.decode("utf-8"))
                        if not isinstance(body, dict):
                            raise ValueError("JSON body must be an object")
                        args.update(body)
                    else:
                        form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
                        args.update({k: v[-1] for k, v in form.items()})
                token = None
                auth = self.headers.get("Authorization") or ""
                if auth.lower().startswith("bearer "):
                    token = auth[7:].strip()
                if not token and isinstance(args.get("token"), str):
                    token = args["token"]
                try:
                    status, body, headers = self.standin.handle_api(method, args, token)
                except DropConnection:
                    self._drop()
                    return
                self._send(status, json.dumps(body).encode(), "application/json; charset=utf-8", headers)
            elif parts.path.startswith("/hooks/") and self.command == "POST":
                hook_id = parts.path[len("/hooks/"):].strip("/")
                if "json" in ctype:
                    body = json.loads(raw.decode("utf-8") or "{}")
                else:  # legacy form-encoded webhook: payload=<json>
                    form = parse_qs(raw.decode("utf-8"))
                    body = json.loads(form.get("payload", ["{}"])[-1])
                if not isinstance(body, dict):
                    raise ValueError("payload must be a JSON object")
                status, text = self.standin.handle_hook(hook_id, body)
                self._send(status, text.encode(), "text/html", {})
            else:
                self._send(404, b"Not Found", "text/plain", {})
        except (ValueError, UnicodeDecodeError):
            if parts.path.startswith("/hooks/"):
                self._send(400, b"invalid_payload", "text/html", {})
            else:
                self._send(200, b'{"ok": false, "error": "invalid_json"}', "application/json", {})

    def _drop(self) -> None:
        """Close the connection with a TCP reset and no answer (SO_LINGER 0)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _send(self, status: int, payload: bytes, ctype: str, headers: dict) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-oauth-scopes", ",".join(self.standin.scopes))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            self.close_connection = True
