"""The stand-in itself: lifecycle, Web API dispatch (auth, rate limits, scopes) and response URLs."""

from __future__ import annotations

import copy
import json
import logging
import math
import secrets
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from .args import _ApiError, _redacted, _truthy
from .blocks import _validate_blocks
from .faults import DropConnection, FaultInjection, _Fault
from .http import _Handler
from .limits import BOT_ID, BOT_USER_ID, MESSAGE_MAX_BLOCKS, RESPONSE_URL_MAX_USES, RESPONSE_URL_TTL, TEXT_TRUNCATE_AT
from .methods import _METHODS, _scope_needed

log = logging.getLogger(__name__)


class SlackStandIn(FaultInjection):
    """Slack Web API stand-in on ``http://host:port/api/`` (see the package docstring)."""

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
        if fault is not None and fault.reset_after_accept:   # done, then the answer is lost
            raise DropConnection(f"response_url {hook_id}")
        return status, result
