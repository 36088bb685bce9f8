"""Slack interactions: one slack_bolt `App` for clicks, the reason modal and `app_home_opened`,
served over HTTP (the WebApp router) or Socket Mode, plus the Home tab publisher and the
sign-in routes.

The 3-second rule: every listener acks at once and hands the work (SS calls, Slack updates)
to a worker pool; Bolt runs with `process_before_response=True`, so a request's HTTP response
(or Socket Mode ack) is sent as soon as the listener returned, never after any SS call.
Bolt's own thread pool is not used: a slow SS cannot starve the acks.

HTTP requests are signature-checked here before Bolt sees them (401 for a bad or missing
signature, a timestamp more than 5 minutes off, or a non-numeric one), then checked for shape
by `guard` (400 for a malformed payload, so neither Bolt's extractors nor a listener ever read
one); Bolt checks the signature again (defence in depth). A signed request no listener handles
gets a 200 ack. Events API retries are dropped by `event_id` (persisted in `seen_events`), and
replayed clicks by their `guard.click_key` (persisted in `seen_clicks`). A `response_url` is
posted to only when `guard.response_url_allowed`; otherwise the person gets a DM.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from .. import actions as act
from .. import followups, routes
from .. import secrets as secrets_mod   # secrets in Slack (issue 4)
from ..errors import RelayError, SlackError, SlackPermanentError, SlackRateLimited, SlackUnavailable
from ..identity import EmailBinding
from ..model import PENDING, AccessRequest
from ..outbox import Outbox
from ..sessions import Sessions, SignInState
from ..store import snapshot
from ..store.local import ThreadLocalDb
from ..web.app import json_response
from ..web.signin import SignInPages
from . import cards, followup_sender, guard, replies
from . import home as home_mod
from . import secret_flows   # secrets in Slack (issue 4)
from .blocks import APPROVE, DENY, OPEN_IN_SS, escape
from .directory import Directory
from .home_retry import PublishRetries

if TYPE_CHECKING:
    from ..runtime import Relay

log = logging.getLogger(__name__)

SLACK_PATHS = ("/slack/events", "/api/v1/slack/event", "/api/v1/slack/interaction")
MAX_CLOCK_SKEW = 300                     # seconds, Slack's replay window
SIGNIN_LINK_REFRESH = timedelta(minutes=5)   # republish a signed-out Home so its link stays usable
SEEN_EVENTS_KEEP = timedelta(days=2)
SEEN_CLICKS_KEEP = timedelta(hours=1)   # well past the 5-minute signature window
ACTION_IDS = {APPROVE: act.APPROVE, DENY: act.DENY, home_mod.CANCEL_REQUEST: act.CANCEL}


def _now() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------------- the Bolt app
def build_app(cfg, handlers: "Interactions") -> App:
    """The Bolt app and its listeners (built from config, never at import time)."""
    bot_token = cfg.slack.bot_token.value
    # the bot token comes from `authorize` (no auth.test on the ack path); the client's base_url
    # also points Socket Mode's apps.connections.open at the configured API
    client = WebClient(base_url=cfg.slack.api_url, timeout=10, retry_handlers=[])

    def authorize(enterprise_id, team_id, user_id):
        # single workspace: no auth.test on the ack path
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id,
                               bot_token=bot_token)

    app = App(client=client, authorize=authorize, signing_secret=cfg.slack.signing_secret.value or "unused",
              process_before_response=True, token_verification_enabled=False,
              request_verification_enabled=cfg.slack.mode == "http",
              logger=logging.getLogger("slack_bolt.relay"))

    @app.middleware
    def drop_event_retries(body, next):
        if isinstance(body, dict) and body.get("type") == "event_callback":
            event_id = body.get("event_id")
            if isinstance(event_id, str) and event_id and not handlers.first_delivery(event_id):
                log.info("event delivered again: ignored", extra={"event_id": event_id})
                return BoltResponse(status=200, body="")
        return next()

    @app.middleware
    def drop_replayed_clicks(body, next):
        key = guard.click_key(body) if isinstance(body, dict) else None
        if key is not None and not handlers.first_click(key):
            log.info("click delivered again: ignored")
            return BoltResponse(status=200, body="")
        return next()

    def decision(ack, body, action):
        ack()
        handlers.on_click(body, action)

    for action_id in ACTION_IDS:
        app.action(action_id)(decision)
    app.action(OPEN_IN_SS)(lambda ack: ack())       # URL button: the browser does the work

    @app.action(home_mod.SIGNIN)
    def signin_link(ack):
        ack()   # a URL button: the browser opens the link, nothing to do here

    @app.action(home_mod.LOGOFF)
    def logoff(ack, body):
        ack()
        handlers.on_logoff(body)

    @app.view(replies.REASON_CALLBACK)
    def reason_submitted(ack, body, view):
        error = handlers.reason_error(view)
        if error:
            ack(response_action="errors", errors={replies.REASON_BLOCK: error})
            return
        ack()
        handlers.on_reason(body, view)

    @app.event("app_home_opened")
    def home_opened(body, event):
        handlers.on_home_opened(body, event)

    secret_flows.register(app, handlers)   # secrets in Slack (issue 4): shortcut, Launch, Request access
    # A request no listener matches is acked by the caller (handle_http turns Bolt's 404 into a
    # 200) and logged there in one line; Bolt's own multi-line suggestion is not wanted.
    app._handle_unmatched_requests = lambda req, resp: resp   # type: ignore[method-assign]
    return app


# ---------------------------------------------------------------------- the interactions layer
class Interactions:
    """Everything a person does in Slack, wired to the relay's parts."""

    def __init__(self, relay: "Relay", *, workers: int = 16):
        cfg = relay.cfg
        self.cfg = cfg
        self.relay = relay
        if str(cfg.storage.path) == ":memory:":
            self.db = relay.db
        else:
            self.db = ThreadLocalDb(cfg.storage.path)
        self.sessions = Sessions(self.db, relay.people_ss, cfg.storage.encryption_key.value,
                                 identity=EmailBinding(relay.slack, required=cfg.users.signin_requires_email_match))
        self.actions = act.Actions(self.db, self.sessions,
                                   default_hours=cfg.approvals.default_duration_hours)
        self.slack = relay.slack
        self.directory = Directory(self.db, relay.slack, match_by_email=cfg.users.match_by_email,
                                   cache_ttl=timedelta(hours=cfg.users.email_cache_hours))
        self.public_url = cfg.http.public_url.rstrip("/")
        self.signing_secret = cfg.slack.signing_secret.value
        self._names: dict[str, str] = {}
        self._idle = threading.Condition()
        self._in_flight = 0
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ssrelay-click")
        self.fast = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ssrelay-modal")
        # ---- secrets in Slack (issue 4): search, recent secrets, launch, request access
        self.secrets = secrets_mod.Secrets(self.sessions)
        self.secret_flows = secret_flows.SecretFlows(
            self.secrets, self.sessions, self.slack, cfg.secret_url,
            secret_flows.SlackSide(team=self._team, team_of=self._team_of, signin_url=self.signin_url,
                                   submit=self._submit, submit_fast=self._submit_fast, dm=self._dm))
        # ---- end secrets in Slack
        self.app = build_app(cfg, self)
        self.signin = SignInPages(self.sessions, relay.people_ss, self.on_signed_in,
                                  slack_name=self.slack_display_name)
        self._home_locks: dict[str, threading.Lock] = {}
        self._home_locks_lock = threading.Lock()
        self.home_retries = PublishRetries(self.publish_home, stop=relay.stop_event)
        self._team_id = ""
        self._emails: dict[str, str] = {}    # slack user -> e-mail (users.info), for the Home tab
        self.home_published = 0
        self.home_skipped = 0
        self._socket = None
        self.clock = _now

    # ------------------------------------------------------------------ wiring
    def install(self) -> None:
        web = self.relay.web
        for path in SLACK_PATHS:
            web.route("POST", path, self.handle_http)
        web.route("GET", "/signin", self.signin.get)
        web.route("POST", "/signin", self.signin.post)
        self.relay.poller.listeners.append(self.after_poll)
        # secrets in Slack (issue 4): Launch on the requester's "approved" message, checked as them
        self.relay.delivery.launchable = self.secrets.launchable

    def start(self) -> None:
        if self.cfg.slack.mode == "socket":
            from slack_bolt.adapter.socket_mode import SocketModeHandler
            self._socket = handler = SocketModeHandler(self.app, app_token=self.cfg.slack.app_token.value,
                                                       logger=logging.getLogger("slack_sdk.socket_mode.relay"))
            listeners = handler.client.socket_mode_request_listeners
            listeners[:] = [self._guarded(handler.handle) if fn == handler.handle else fn for fn in listeners]
            handler.connect()
            log.info("socket mode connected")

    @staticmethod
    def _guarded(handle):
        """The Socket Mode listener behind the same shape check as HTTP: a malformed envelope
        is acked (Slack would redeliver it otherwise) and never reaches Bolt."""
        from slack_sdk.socket_mode.response import SocketModeResponse

        def guarded(client, req) -> None:
            if req.type in ("interactive", "events_api"):
                try:
                    guard.check_envelope(req.payload)
                except guard.Malformed as exc:
                    log.warning("malformed slack request", extra={"error": str(exc)[:200]})
                    client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
                    return
            handle(client, req)
        return guarded

    def stop(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            except Exception:
                log.exception("closing socket mode")
            self._socket = None
        self.fast.shutdown(wait=True, cancel_futures=True)
        self.pool.shutdown(wait=True, cancel_futures=True)
        if isinstance(self.db, ThreadLocalDb):
            self.db.close()

    def _submit_fast(self, fn, *args, **kwargs):
        """Modal work bound to a trigger (views.open within 3 s): its own small pool, logged
        like any other work."""
        return self._submit(fn, *args, _pool=self.fast, **kwargs)

    def _submit(self, fn, *args, _pool=None, **kwargs):
        def run():
            try:
                fn(*args, **kwargs)
            except RelayError as exc:   # SS or Slack said no (e.g. to an unknown user): one line
                log.warning("interaction work failed", extra={"work": getattr(fn, "__name__", "?"),
                                                              "error": str(exc)[:200]})
            except Exception:
                log.exception("interaction work failed", extra={"work": getattr(fn, "__name__", "?")})
            finally:
                with self._idle:
                    self._in_flight -= 1
                    self._idle.notify_all()
        with self._idle:
            self._in_flight += 1
        try:
            return (_pool or self.pool).submit(run)
        except RuntimeError:   # shutting down
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()
            log.warning("interaction dropped: the relay is stopping")
            return None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no submitted work is queued or running (tests, orderly stops)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    # ------------------------------------------------------------------ HTTP
    def verify(self, environ: dict, body: bytes) -> bool:
        ts = (environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or "").strip()
        sig = (environ.get("HTTP_X_SLACK_SIGNATURE") or "").strip()
        if not ts or not sig or not ts.isascii() or not ts.isdigit() or len(ts) > 12:
            return False
        if abs(time.time() - int(ts)) > MAX_CLOCK_SKEW:
            return False
        # Slack's v0 signature over the raw bytes, so a signed body that is not UTF-8 is still
        # recognised as signed (and then refused as malformed, 400)
        expected = "v0=" + hmac.new(self.signing_secret.encode(), b"v0:" + ts.encode() + b":" + body,
                                    hashlib.sha256).hexdigest()
        return sig.isascii() and hmac.compare_digest(expected, sig)

    def handle_http(self, environ: dict):
        body: bytes = environ.get("ssrelay.body", b"")
        if not self.verify(environ, body):
            return json_response(401, {"error": "invalid request"})
        ctype = environ.get("CONTENT_TYPE")
        try:
            payload = guard.parse_body(body, ctype)
            if payload is None:   # Slack's ssl_check probe
                return 200, [("Content-Type", "text/plain")], b""
            guard.check_envelope(payload)
        except guard.Malformed as exc:
            log.warning("malformed slack request", extra={"error": str(exc)[:200]})
            return json_response(400, {"error": "malformed request"})
        headers: dict[str, str | Sequence[str]] = {}
        for k, v in environ.items():
            if k.startswith("HTTP_") and isinstance(v, str):
                headers[k[5:].replace("_", "-").lower()] = [v]
        # Bolt reads the body as the guard did: JSON for application/json, else the form
        headers["content-type"] = ["application/json" if guard.media_type(ctype) == "application/json"
                                   else "application/x-www-form-urlencoded"]
        req = BoltRequest(body=body.decode("utf-8"), query=environ.get("QUERY_STRING", ""), headers=headers)
        resp = self.app.dispatch(req)
        if resp.status == 404:   # signed, well-formed, but nothing of ours: ack it, as Slack expects
            log.info("slack request without a listener: acknowledged",
                     extra={"type": payload.get("type")})
            return 200, [("Content-Type", "text/plain")], b""
        out_headers = [(k, v) for k, v in resp.first_headers().items() if k.lower() != "content-length"]
        data = resp.body.encode("utf-8") if isinstance(resp.body, str) else (resp.body or b"")
        return resp.status, out_headers, data

    def first_delivery(self, event_id: str) -> bool:
        now = self.clock()
        with self.db.atomic():
            first = self.db.execute("INSERT OR IGNORE INTO seen_events (event_id, seen_at) VALUES (?, ?)",
                                    [event_id[:200], now.isoformat()]).rowcount == 1
            if first and hash(event_id) % 100 == 0:
                self.db.execute("DELETE FROM seen_events WHERE seen_at < ?",
                                [(now - SEEN_EVENTS_KEEP).isoformat()])
        return first

    def first_click(self, key: str) -> bool:
        """True the first time this click is seen (by any thread or relay on this database)."""
        now = self.clock()
        with self.db.atomic():
            first = self.db.execute("INSERT OR IGNORE INTO seen_clicks (click_key, seen_at) VALUES (?, ?)",
                                    [key, now.isoformat()]).rowcount == 1
            if first and int(key[:2], 16) < 3:   # about one insert in 85 prunes the old ones
                self.db.execute("DELETE FROM seen_clicks WHERE seen_at < ?",
                                [(now - SEEN_CLICKS_KEEP).isoformat()])
        return first

    # ------------------------------------------------------------------ listeners (ack path)
    def on_click(self, body: dict, action: dict) -> None:
        """Approve / Deny / Cancel request: already acked; never block here."""
        user, team = body["user"]["id"], self._team_of(body)
        kind = ACTION_IDS[action["action_id"]]
        request_id = guard.request_id(action.get("value"))
        if request_id is None:
            log.warning("click without a request id", extra={"action_id": action.get("action_id")})
            return
        source = self._source(body)
        if source.get("kind") == "message" and followup_sender.is_channel_card(self.db, request_id, source):
            source["kind"] = "channel"   # a team channel's card: answers to the clicker stay private
        sensitive = self._sensitive_folder(request_id) if kind == act.APPROVE else ""
        if sensitive:   # Approve on a sensitive folder's request always asks why
            source["sensitive_folder"] = sensitive
        if (self.cfg.approvals.ask_reason or sensitive) and kind in (act.APPROVE, act.DENY):
            trigger = body.get("trigger_id")
            if isinstance(trigger, str) and trigger:
                self._submit_fast(self._open_reason_modal, trigger, kind, request_id, source)
                return
        self._submit(self.run_action, user, team, kind, request_id, "", source)

    def on_logoff(self, body: dict) -> None:
        user, team = body["user"]["id"], self._team_of(body)

        def work():
            self.sessions.log_off(user)
            self.secrets.forget(user)   # secrets in Slack (issue 4): the cache ends with the session
            self.publish_home(user, team, force=True)
        self._submit(work)

    def reason_error(self, view: dict) -> str:
        meta = self._metadata(view)
        if meta.get("action") == act.DENY and not self._reason(view).strip():
            return "Say why the request is denied."
        given = (meta or {}).get("source")
        source = given if isinstance(given, dict) else {}
        if source.get("sensitive_folder") and not self._reason(view).strip():
            return "Say why access to a sensitive folder is approved."
        return ""

    def on_reason(self, body: dict, view: dict) -> None:
        meta = self._metadata(view)
        kind = meta.get("action")
        request_id = guard.request_id(meta.get("request_id"))
        if request_id is None or kind not in (act.APPROVE, act.DENY):
            log.warning("reason submitted without a request", extra={"callback_id": view.get("callback_id")})
            return
        source = guard.clean_source(meta.get("source"), self.cfg.slack.api_url)
        self._submit(self.run_action, body["user"]["id"], self._team_of(body), kind, request_id,
                     self._reason(view)[:replies.REASON_LIMIT], source)

    def on_home_opened(self, body: dict, event: dict) -> None:
        user = guard.slack_id(event.get("user"))
        if event.get("tab", "home") != "home" or user is None:
            return
        found = event.get("view")
        view: dict = found if isinstance(found, dict) else {}

        def work():
            try:
                self.publish_home(user, self._team_of(body), event_hash=guard.text(view.get("hash")) or None,
                                  fetch_recent=True)   # issue 4: recent secrets
            except SlackError as exc:   # e.g. an unknown user: Slack said no, nothing to retry
                log.warning("home tab not published", extra={"slack_user": user, "error": str(exc)})
        self._submit(work)

    def on_signed_in(self, state: SignInState, person) -> None:
        def work():
            self.secrets.forget(state.slack_user)   # secrets in Slack (issue 4): a new session
            self.publish_home(state.slack_user, state.slack_team, force=True)
            pending = state.pending_action or {}
            if self.secret_flows.after_signin(state.slack_user, pending):   # issue 4: a Launch click
                return
            request_id = guard.request_id(pending.get("request_id"))
            if pending.get("action") in act.ACTIONS and request_id is not None:
                # the stored source is checked again: a response_url kept by an older relay
                # must pass the same allow-list as a fresh one
                self.run_action(state.slack_user, state.slack_team, pending["action"], request_id,
                                guard.text(pending.get("reason")),
                                guard.clean_source(pending.get("source"), self.cfg.slack.api_url),
                                after_signin=True)
        self._submit(work)

    # ------------------------------------------------------------------ payload helpers
    @staticmethod
    def _team_of(body: dict) -> str:
        team = body.get("team")
        if isinstance(team, dict) and isinstance(team.get("id"), str):
            return team["id"][:64]
        user = body.get("user")
        if isinstance(user, dict) and isinstance(user.get("team_id"), str):
            return user["team_id"][:64]
        return guard.text(body.get("team_id"))[:64]

    def _source(self, body: dict) -> dict:
        """Where the click happened, to update it in place afterwards (only an allowed
        response_url is kept)."""
        def obj(value) -> dict:
            return value if isinstance(value, dict) else {}
        container = obj(body.get("container"))
        if container.get("type") == "view":
            return {"kind": "home"}
        return guard.clean_source({
            "kind": "ephemeral" if container.get("is_ephemeral") is True else "message",
            "response_url": body.get("response_url"),
            "channel": guard.text(container.get("channel_id")) or guard.text(obj(body.get("channel")).get("id")),
            "ts": guard.text(container.get("message_ts")) or guard.text(obj(body.get("message")).get("ts")),
        }, self.cfg.slack.api_url)

    _metadata = staticmethod(secret_flows.view_metadata)

    @staticmethod
    def _reason(view: dict) -> str:
        try:
            value = view["state"]["values"][replies.REASON_BLOCK][replies.REASON_INPUT].get("value")
        except (KeyError, TypeError, AttributeError):
            return ""
        return value if isinstance(value, str) else ""

    def _sensitive_folder(self, request_id: int) -> str:
        """The folder path when the request's secret is in one of approvals.sensitive_folders."""
        path = followups.pending_facts(self.db, request_id).get("folder_path") or ""
        return path if routes.sensitive_folder(path, self.cfg.approvals.sensitive_folders) else ""

    def _open_reason_modal(self, trigger_id: str, kind: str, request_id: int, source: dict) -> None:
        found = snapshot.get_request(self.db, request_id)
        summary = ""
        if found:
            req, _ = found
            summary = f"*{escape(req.secret_name)}*, requested by {escape(req.requester_username)}"
            if req.comment:
                summary += f"\n> {escape(req.comment)[:500]}"
        view = replies.reason_modal(kind, request_id, summary, {"source": source})
        if source.get("sensitive_folder"):
            view = cards.require_reason(view, source["sensitive_folder"])
        try:
            self.slack.call("views.open", trigger_id=trigger_id, view=view)
        except SlackError as exc:
            log.warning("could not open the reason modal", extra={"error": str(exc)})

    # ------------------------------------------------------------------ the work (after the ack)
    def signin_url(self, state: str) -> str:
        return f"{self.public_url}/signin?state={quote(state)}"

    def run_action(self, user: str, team: str, kind: str, request_id: int, reason: str, source: dict,
                   *, after_signin: bool = False) -> act.Outcome:
        outcome = self.actions.perform(user, team, kind, request_id, reason=reason, remember=source)
        self.render(outcome, user, team, source, after_signin=after_signin)
        return outcome

    def render(self, o: act.Outcome, user: str, team: str, source: dict, *, after_signin: bool = False) -> None:
        kind = source.get("kind")
        if o.kind == act.SIGN_IN:
            text, blocks = replies.signin_prompt(self.signin_url(o.signin_state), o.action)
            self._respond_or_dm(user, source, text, blocks, replace=False)
            return
        decided = o.kind in (act.DONE, act.STALE) and o.request is not None
        if kind == "channel":
            # The card is everyone's: the clicker hears privately; the card itself is closed
            # (edited in place, one thread reply) through the outbox.
            text, blocks = replies.notice(o)
            self._respond_or_dm(user, source, text, blocks, replace=False)
            final = o.request if decided and o.request is not None and o.request.status != PENDING else None
            if final is not None and followup_sender.queue_channel_close(self.db, final, o.context, self.clock()):
                self.relay.delivery.wake.set()
        elif kind == "home":
            self.publish_home(user, team, force=True, notice=replies.outcome_line(o),
                              override={o.request_id: o.request} if o.request else None)
        elif decided and o.request.status != PENDING:
            text, blocks = replies.updated_card(o, secret_url=self.cfg.secret_url(o.request.secret_id),
                                                default_hours=self.cfg.approvals.default_duration_hours)
            if kind == "message" and source.get("channel") and source.get("ts"):
                try:
                    self.slack.call("chat.update", channel=source["channel"], ts=source["ts"], text=text,
                                    blocks=blocks)
                    if o.clicker_ss_id is not None:
                        Outbox(self.db).close_card(o.request_id, o.clicker_ss_id)
                except SlackError as exc:
                    log.warning("could not update the card", extra={"error": str(exc)})
                    if source.get("response_url"):
                        self._respond_or_dm(user, source, text, blocks, replace=True)
            elif source.get("response_url") or not after_signin:   # after a sign-in the DM below tells it
                self._respond_or_dm(user, source, text, blocks, replace=True)
        else:
            text, blocks = replies.notice(o)
            self._respond_or_dm(user, source, text, blocks, replace=False)
        if after_signin:
            text, blocks = replies.completed_after_signin(o)
            self._dm(user, text, blocks)
        if kind != "home" and o.kind == act.DONE:
            self.publish_home(user, team, override={o.request_id: o.request} if o.request else None,
                              only_if_published=True)

    def _respond_or_dm(self, user: str, source: dict, text: str, blocks: list, *, replace: bool) -> None:
        """Answer through the click's response_url when Slack gave an allowed one, else by DM."""
        url = source.get("response_url")
        if url and guard.response_url_allowed(url, self.cfg.slack.api_url):
            self._respond(url, text, blocks, replace=replace)
        else:
            if url:
                log.warning("response_url outside Slack: answered by DM instead", extra={"slack_user": user})
            self._dm(user, text, blocks)

    def _respond(self, url: str, text: str, blocks: list, *, replace: bool) -> None:
        body = {"text": text, "blocks": blocks, "response_type": "ephemeral", "replace_original": replace}
        try:
            resp = WebhookClient(url, timeout=10).send_dict(body)
            if resp.status_code != 200:
                log.warning("response_url refused the update", extra={"status": resp.status_code,
                                                                       "error": (resp.body or "")[:100]})
        except Exception as exc:   # network errors of the webhook client
            log.warning("response_url not reachable", extra={"error": type(exc).__name__})

    def _dm(self, user: str, text: str, blocks: list) -> None:
        try:
            self.slack.call("chat.postMessage", channel=user, text=text, blocks=blocks)
        except SlackError as exc:
            log.warning("could not message the user", extra={"error": str(exc)})

    # ------------------------------------------------------------------ Home tab
    def _team(self, team: str) -> str:
        if team:
            return team
        if not self._team_id:
            try:
                self._team_id = self.slack.call("auth.test").get("team_id") or ""
            except SlackError:
                pass
        return self._team_id

    def slack_display_name(self, slack_user: str) -> str:
        """How the sign-in page names the Slack account being linked (users.info, cached)."""
        name = self._names.get(slack_user)
        if name is None:
            try:
                user = self.slack.call("users.info", user=slack_user).get("user") or {}
                profile = user.get("profile") or {}
                name = profile.get("real_name") or user.get("real_name") or user.get("name") or ""
                handle = profile.get("display_name") or user.get("name") or ""
                if handle and handle != name:
                    name = f"{name} (@{handle})" if name else f"@{handle}"
            except SlackError:
                return slack_user
            self._names[slack_user] = name
        return name or slack_user

    def ss_user_for(self, slack_user: str) -> int | None:
        """The SS user behind a Slack user: the sign-in link, else the e-mail match."""
        linked = self.sessions.ss_user_id(slack_user)
        if linked is not None:
            return linked
        if not self.cfg.users.match_by_email:
            return None
        fresh = (_now() - timedelta(hours=self.cfg.users.email_cache_hours)).isoformat()
        row = self.db.execute(
            "SELECT p.id FROM people p JOIN slack_directory d ON lower(p.email) = d.email "
            "WHERE d.slack_user = ? AND d.looked_up_at > ? ORDER BY p.fetched_at DESC LIMIT 1",
            [slack_user, fresh]).fetchone()
        if row:
            return row[0]
        email = self._emails.get(slack_user)
        if email is None:   # users.info once per person and process (never on the ack path)
            try:
                user = self.slack.call("users.info", user=slack_user).get("user") or {}
                email = "" if user.get("deleted") or user.get("is_bot") else \
                    ((user.get("profile") or {}).get("email") or "").strip().lower()
            except SlackError:
                return None
            self._emails[slack_user] = email
        if not email:
            return None
        row = self.db.execute("SELECT id FROM people WHERE lower(email) = ? ORDER BY fetched_at DESC LIMIT 1",
                              [email]).fetchone()
        return row[0] if row else None

    def home_data(self, slack_user: str, *, override: dict[int, AccessRequest] | None = None,
                  notice: str = "", fetch_recent: bool = False) -> home_mod.HomeData:
        ss_id = self.ss_user_for(slack_user)
        # secrets in Slack (issue 4): read before has_session (an expired session is dropped here)
        recent = self.secrets.recent(slack_user, fetch=fetch_recent)
        signed_in = self.sessions.has_session(slack_user)
        row = self.db.execute("SELECT ss_username FROM slack_links WHERE slack_user = ?", [slack_user]).fetchone()
        username = row[0] if row else ""
        mine: list[home_mod.HomeItem] = []
        review: list[home_mod.HomeItem] = []
        if ss_id is not None:
            gone = {rid for rid, r in (override or {}).items() if r is not None and r.status != PENDING}
            mine_ids = [r[0] for r in self.db.execute(
                "SELECT id FROM access_requests WHERE requester_id = ? AND status = ? AND gone = 0 ORDER BY id",
                [ss_id, PENDING]).fetchall()]
            review_ids = [r[0] for r in self.db.execute(
                "SELECT id FROM access_requests WHERE status = ? AND gone = 0 AND requester_id != ? "
                "AND EXISTS (SELECT 1 FROM json_each(access_requests.reviewers) WHERE value = ?) ORDER BY id",
                [PENDING, ss_id, ss_id]).fetchall()]
            for ids, into in ((mine_ids, mine), (review_ids, review)):
                for rid in ids:
                    if rid in gone:
                        continue
                    found = snapshot.get_request(self.db, rid)
                    if found is None:
                        continue
                    req, ctx = found
                    person = snapshot.get_person(self.db, req.requester_id)
                    into.append(home_mod.HomeItem(req, {"folder_name": ctx.get("folder_name", ""),
                                                        "requester_name": person.name if person else
                                                        req.requester_username}))
        return home_mod.HomeData(signed_in=signed_in, ss_username=username, my_pending=tuple(mine),
                                 to_review=tuple(review), notice=notice,
                                 recent=recent.secrets if signed_in else None,
                                 recent_note=recent.note if signed_in else "")   # issue 4

    def _render_home(self, data: home_mod.HomeData, signin_url: str) -> dict:
        return home_mod.home_view(data, signin_url=signin_url, secret_url=self.cfg.secret_url,
                                  default_hours=self.cfg.approvals.default_duration_hours,
                                  more_url=self.cfg.secret_server.base_url,
                                  request_url=self.cfg.request_url)

    def _home_lock(self, user: str) -> threading.Lock:
        with self._home_locks_lock:
            return self._home_locks.setdefault(user, threading.Lock())

    def publish_home(self, slack_user: str, team: str = "", *, event_hash: str | None = None,
                     force: bool = False, override: dict | None = None, notice: str = "",
                     only_if_published: bool = False, fetch_recent: bool = False) -> bool:
        """Publish the Home tab unless it would be identical to the last one published.
        Returns True when views.publish was called."""
        with self._home_lock(slack_user):
            last = self.db.execute("SELECT view_hash, signed_in, published_at, slack_team FROM home_views "
                                   "WHERE slack_user = ?", [slack_user]).fetchone()
            if only_if_published and last is None:
                return False
            team = team or (last[3] if last else "")
            data = self.home_data(slack_user, override=override, notice=notice,
                                  fetch_recent=fetch_recent)   # issue 4: recent secrets
            digest = home_mod.view_hash(self._render_home(data, home_mod.SIGNIN_PLACEHOLDER))
            now = self.clock()
            if not force and last is not None and last[0] == digest and (
                    data.signed_in or now - datetime.fromisoformat(last[2]) < SIGNIN_LINK_REFRESH):
                self.home_skipped += 1
                return False
            view = self._view_with_link(data, team, slack_user)
            params: dict[str, Any] = {"user_id": slack_user, "view": view}
            if event_hash:
                params["hash"] = event_hash
            try:
                try:
                    self.slack.call("views.publish", **params)
                except SlackPermanentError as exc:
                    if exc.error != "hash_conflict":
                        raise
                    log.info("home tab changed meanwhile: re-rendering", extra={"slack_user": slack_user})
                    data = self.home_data(slack_user, override=override, notice=notice)
                    digest = home_mod.view_hash(self._render_home(data, home_mod.SIGNIN_PLACEHOLDER))
                    self.slack.call("views.publish", user_id=slack_user,
                                    view=self._view_with_link(data, team, slack_user))
            except (SlackRateLimited, SlackUnavailable) as exc:   # time fixes it: publish again later
                self.home_retries.failed(slack_user, exc)
                return False
            self.home_retries.succeeded(slack_user)
            with self.db.atomic():
                self.db.execute(
                    "INSERT INTO home_views (slack_user, slack_team, view_hash, signed_in, published_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(slack_user) DO UPDATE SET slack_team=excluded.slack_team, "
                    "view_hash=excluded.view_hash, signed_in=excluded.signed_in, published_at=excluded.published_at",
                    [slack_user, team or "", digest, int(data.signed_in), now.isoformat()])
            self.home_published += 1
            return True

    def _view_with_link(self, data: home_mod.HomeData, team: str, slack_user: str) -> dict:
        if data.signed_in:
            return self._render_home(data, home_mod.SIGNIN_PLACEHOLDER)
        state = self.sessions.new_state(self._team(team), slack_user)
        return self._render_home(data, self.signin_url(state))

    def after_poll(self, result) -> None:
        """Poll listener: republish the Home tabs of people the change concerns (only those who
        have a Home tab published; identical views are skipped)."""
        changed = set(getattr(result, "changed", ()) or ())
        if result.ok and changed:
            self._submit(self._republish_concerned, changed)

    def _republish_concerned(self, changed: set[int]) -> None:
        users = [r[0] for r in self.db.execute("SELECT slack_user FROM home_views").fetchall()]
        for u in users:
            if self.ss_user_for(u) in changed:
                self._submit(self.publish_home, u)
