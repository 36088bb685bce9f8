"""The stand-in's data and locks: directory, messages, views, triggers, recorded calls."""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .args import _ApiError
from .limits import BOT_USER_ID, TRIGGER_TTL

if TYPE_CHECKING:  # faults.py builds on this module
    from .faults import _Bucket, _Fault


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


class StandInState:
    """Everything the stand-in knows, guarded by one re-entrant lock (``_lock``/``_cond``)."""

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

    def attach_socket_mode(self, socket_mode) -> None:
        """Let ``apps.connections.open`` hand out ``socket_mode.url``."""
        with self._lock:
            self._socket_mode = socket_mode

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
