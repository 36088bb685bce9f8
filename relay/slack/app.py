"""Slack interactions: one slack_bolt `App` for clicks, the reason modal, `app_home_opened`
and the secret flows, served over HTTP (`endpoint.SlackEndpoint` on the WebApp router) or
Socket Mode (`SocketMode`).

The 3-second rule: every listener acks at once and hands the work (SS calls, Slack updates)
to the worker pools (`workers.WorkerPool`); Bolt runs with `process_before_response=True`, so
a request's HTTP response (or Socket Mode ack) is sent as soon as the listener returned, never
after any SS call. Bolt's own thread pool is not used: a slow SS cannot starve the acks.

Events API retries are dropped by `event_id` (persisted in `seen_events`), and replayed
clicks by their `guard.click_key` (persisted in `seen_clicks`); a Socket Mode envelope passes
the same shape check as an HTTP request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.socket_mode.internals import run_bolt_app, send_response
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.socket_mode.response import SocketModeResponse

from ..config import SlackSection
from ..secrets import Secrets
from ..sessions import Sessions
from ..store.seen import SeenDeliveries
from ..web.signin import SignInPages
from . import guard, replies, secret_flows
from . import home as home_mod
from .blocks import OPEN_IN_SS
from .clicks import ACTION_IDS, ClickController
from .endpoint import SlackEndpoint
from .home_publisher import HomePublisher
from .workers import WorkerPool

log = logging.getLogger(__name__)


def build_app(slack: SlackSection, clicks: ClickController, seen: SeenDeliveries,
              flows: secret_flows.SecretFlows) -> App:
    """The Bolt app and its listeners (built from config, never at import time)."""
    bot_token = slack.bot_token.value
    # the bot token comes from `authorize` (no auth.test on the ack path); the client's base_url
    # also points Socket Mode's apps.connections.open at the configured API
    client = WebClient(base_url=slack.api_url, timeout=10, retry_handlers=[])

    def authorize(enterprise_id: Any, team_id: Any, user_id: Any) -> AuthorizeResult:
        # single workspace: no auth.test on the ack path
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id,
                               bot_token=bot_token)

    app = App(client=client, authorize=authorize, signing_secret=slack.signing_secret.value or "unused",
              process_before_response=True, token_verification_enabled=False,
              request_verification_enabled=slack.mode == "http",
              logger=logging.getLogger("slack_bolt.relay"))
    _drop_repeats(app, seen)

    def decision(ack: Callable[..., Any], body: dict, action: dict) -> None:
        ack()
        clicks.on_click(body, action)

    for action_id in ACTION_IDS:
        app.action(action_id)(decision)
    app.action(OPEN_IN_SS)(lambda ack: ack())       # URL button: the browser does the work
    app.action(home_mod.SIGNIN)(lambda ack: ack())  # a URL button: the browser opens the link

    @app.action(home_mod.LOGOFF)
    def logoff(ack: Callable[..., Any], body: dict) -> None:
        ack()
        clicks.on_logoff(body)

    @app.view(replies.REASON_CALLBACK)
    def reason_submitted(ack: Callable[..., Any], body: dict, view: dict) -> None:
        error = clicks.reason_error(view)
        if error:
            ack(response_action="errors", errors={replies.REASON_BLOCK: error})
            return
        ack()
        clicks.on_reason(body, view)

    @app.event("app_home_opened")
    def home_opened(body: dict, event: dict) -> None:
        clicks.on_home_opened(body, event)

    secret_flows.register(app, flows)   # the search shortcut, Launch, Request access
    # A request no listener matches is acked by the caller (SlackEndpoint turns Bolt's 404 into
    # a 200) and logged there in one line; Bolt's own multi-line suggestion is not wanted.
    app._handle_unmatched_requests = lambda req, resp: resp   # type: ignore[method-assign]
    return app


def _drop_repeats(app: App, seen: SeenDeliveries) -> None:
    """Middleware acking (and ignoring) an Events API retry or a replayed click."""

    @app.middleware
    def drop_event_retries(body: Any, next: Callable[[], BoltResponse]) -> BoltResponse:
        if isinstance(body, dict) and body.get("type") == "event_callback":
            event_id = body.get("event_id")
            if isinstance(event_id, str) and event_id and not seen.first_delivery(event_id):
                log.info("event delivered again: ignored", extra={"event_id": event_id})
                return BoltResponse(status=200, body="")
        return next()

    @app.middleware
    def drop_replayed_clicks(body: Any, next: Callable[[], BoltResponse]) -> BoltResponse:
        key = guard.click_key(body) if isinstance(body, dict) else None
        if key is not None and not seen.first_click(key):
            log.info("click delivered again: ignored")
            return BoltResponse(status=200, body="")
        return next()


class SocketMode:
    """The Socket Mode client (slack.mode = "socket"), its listener behind the shape check."""

    def __init__(self, app: App, app_token: str):
        self.app = app
        self.app_token = app_token
        self._handler: SocketModeHandler | None = None

    def start(self) -> None:
        self._handler = handler = SocketModeHandler(self.app, app_token=self.app_token,
                                                    logger=logging.getLogger("slack_sdk.socket_mode.relay"))
        listeners = handler.client.socket_mode_request_listeners
        listeners[:] = [guarded(self._handle) if fn == handler.handle else fn for fn in listeners]
        handler.connect()
        log.info("socket mode connected")

    def _handle(self, client: Any, req: Any) -> None:
        """Bolt's Socket Mode handling, except that an envelope no listener matches is acked
        (Bolt sends nothing for its 404, so Slack would redeliver an event and show the person
        an error for an interaction), as the HTTP endpoint acks it."""
        start = time.time()
        resp = run_bolt_app(self.app, req)
        if resp.status == 404:
            log.info("slack request without a listener: acknowledged", extra={"type": req.type})
            client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        send_response(client, req, resp, start)

    def stop(self) -> None:
        handler, self._handler = self._handler, None
        if handler is not None:
            try:
                handler.close()
            except Exception:
                log.exception("closing socket mode")


def guarded(handle: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """The Socket Mode listener behind the same shape check as HTTP: a malformed envelope
    is acked (Slack would redeliver it otherwise) and never reaches Bolt."""

    def check_then_handle(client: Any, req: Any) -> None:
        if req.type in ("interactive", "events_api"):
            try:
                guard.check_envelope(req.payload)
            except guard.Malformed as exc:
                log.warning("malformed slack request", extra={"error": str(exc)[:200]})
                client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
                return
        handle(client, req)
    return check_then_handle


@dataclass
class Interactions:
    """The Slack side of the relay, as `runtime` assembled it: what starts and stops with it,
    and the parts tests and operators look at."""

    sessions: Sessions
    secrets: Secrets
    signin: SignInPages
    home: HomePublisher
    workers: WorkerPool
    seen: SeenDeliveries
    clicks: ClickController
    endpoint: SlackEndpoint
    socket: SocketMode | None = None

    def start(self) -> None:
        if self.socket is not None:
            self.socket.start()

    def stop(self) -> None:
        if self.socket is not None:
            self.socket.stop()
        self.workers.shutdown()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no submitted work is queued or running (tests, orderly stops)."""
        return self.workers.wait_idle(timeout)
