"""The click controller: what a person does in Slack (Approve / Deny / Cancel request, the
reason modal, Log off, opening the Home tab, finishing a sign-in), turned into work for the
worker pool and an Outcome rendered by `OutcomeRenderer`.

Every `on_*` method runs on the ack path (already acked, or acking right after): it only
reads the payload and submits work, never calls SS or waits on Slack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from .. import actions as act
from .. import followups, routes
from ..errors import SlackError
from ..sessions import SignInState
from ..store import snapshot
from ..store.handle import Store
from . import cards, followup_sender, guard, payloads, replies
from . import home as home_mod
from .blocks import APPROVE, DENY, escape
from .outcomes import HomeTab, OutcomeRenderer
from .people import SlackCalls
from .secret_flows import view_metadata

log = logging.getLogger(__name__)

ACTION_IDS = {APPROVE: act.APPROVE, DENY: act.DENY, home_mod.CANCEL_REQUEST: act.CANCEL}


class Work(Protocol):
    """The worker pools (`WorkerPool`)."""

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> object: ...

    def submit_fast(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> object: ...


class Sessions(Protocol):
    def log_off(self, slack_user: str) -> bool: ...


class Forget(Protocol):
    """Cached per-person secrets (`Secrets`), dropped when the session ends or starts."""

    def forget(self, slack_user: str) -> None: ...


class AfterSignIn(Protocol):
    """A secret flow that continues after a sign-in (`SecretFlows.after_signin`)."""

    def after_signin(self, slack_user: str, pending: dict) -> bool: ...


class ClickController:
    def __init__(self, db: Store, actions: act.Actions, sessions: Sessions, secrets: Forget,
                 flows: AfterSignIn, renderer: OutcomeRenderer, home: HomeTab, work: Work,
                 slack: SlackCalls, *, api_url: str, ask_reason: bool, sensitive_folders: tuple[str, ...]):
        self.db = db
        self.actions = actions
        self.sessions = sessions
        self.secrets = secrets
        self.flows = flows
        self.renderer = renderer
        self.home = home
        self.work = work
        self.slack = slack
        self.api_url = api_url
        self.ask_reason = ask_reason
        self.sensitive_folders = tuple(sensitive_folders)

    # ------------------------------------------------------------------ listeners (ack path)
    def on_click(self, body: dict, action: dict) -> None:
        """Approve / Deny / Cancel request: already acked; never block here."""
        user, team = body["user"]["id"], payloads.team_of(body)
        kind = ACTION_IDS[action["action_id"]]
        request_id = guard.request_id(action.get("value"))
        if request_id is None:
            log.warning("click without a request id", extra={"action_id": action.get("action_id")})
            return
        source = payloads.click_source(body, self.api_url)
        if source.get("kind") == "message" and followup_sender.is_channel_card(self.db, request_id, source):
            source["kind"] = "channel"   # a team channel's card: answers to the clicker stay private
        sensitive = self._sensitive_folder(request_id) if kind == act.APPROVE else ""
        if sensitive:   # Approve on a sensitive folder's request always asks why
            source["sensitive_folder"] = sensitive
        if (self.ask_reason or sensitive) and kind in (act.APPROVE, act.DENY):
            trigger = body.get("trigger_id")
            if isinstance(trigger, str) and trigger:
                self.work.submit_fast(self._open_reason_modal, trigger, kind, request_id, source)
                return
        self.work.submit(self.run_action, user, team, kind, request_id, "", source)

    def on_logoff(self, body: dict) -> None:
        user, team = body["user"]["id"], payloads.team_of(body)

        def work() -> None:
            self.sessions.log_off(user)
            self.secrets.forget(user)   # cached recent secrets end with the session
            self.home.publish(user, team, force=True)
        self.work.submit(work)

    def reason_error(self, view: dict) -> str:
        """Why the reason modal cannot be accepted as submitted, or ''."""
        meta = view_metadata(view)
        if meta.get("action") == act.DENY and not payloads.reason(view).strip():
            return "Say why the request is denied."
        given = (meta or {}).get("source")
        source = given if isinstance(given, dict) else {}
        if source.get("sensitive_folder") and not payloads.reason(view).strip():
            return "Say why access to a sensitive folder is approved."
        return ""

    def on_reason(self, body: dict, view: dict) -> None:
        meta = view_metadata(view)
        kind = meta.get("action")
        request_id = guard.request_id(meta.get("request_id"))
        if request_id is None or kind not in (act.APPROVE, act.DENY):
            log.warning("reason submitted without a request", extra={"callback_id": view.get("callback_id")})
            return
        source = guard.clean_source(meta.get("source"), self.api_url)
        self.work.submit(self.run_action, body["user"]["id"], payloads.team_of(body), kind, request_id,
                         payloads.reason(view)[:replies.REASON_LIMIT], source)

    def on_home_opened(self, body: dict, event: dict) -> None:
        user = guard.slack_id(event.get("user"))
        if event.get("tab", "home") != "home" or user is None:
            return
        found = event.get("view")
        view: dict = found if isinstance(found, dict) else {}

        def work() -> None:
            try:   # opening the tab is when recent secrets are fetched from SS
                self.home.publish(user, payloads.team_of(body), event_hash=guard.text(view.get("hash")) or None,
                                  fetch_recent=True)
            except SlackError as exc:   # e.g. an unknown user: Slack said no, nothing to retry
                log.warning("home tab not published", extra={"slack_user": user, "error": str(exc)})
        self.work.submit(work)

    def on_signed_in(self, state: SignInState, person: object) -> None:
        def work() -> None:
            self.secrets.forget(state.slack_user)   # a new session: nothing cached from the old one
            self.home.publish(state.slack_user, state.slack_team, force=True)
            pending = state.pending_action or {}
            if self.flows.after_signin(state.slack_user, pending):   # a Launch click that needed the sign-in
                return
            request_id = guard.request_id(pending.get("request_id"))
            if pending.get("action") in act.ACTIONS and request_id is not None:
                # the stored source is checked again: a response_url kept by an older relay
                # must pass the same allow-list as a fresh one
                self.run_action(state.slack_user, state.slack_team, pending["action"], request_id,
                                guard.text(pending.get("reason")),
                                guard.clean_source(pending.get("source"), self.api_url),
                                after_signin=True)
        self.work.submit(work)

    # ------------------------------------------------------------------ the work (after the ack)
    def run_action(self, user: str, team: str, kind: str, request_id: int, reason: str, source: dict,
                   *, after_signin: bool = False) -> act.Outcome:
        outcome = self.actions.perform(user, team, kind, request_id, reason=reason, remember=source)
        self.renderer.render(outcome, user, team, source, after_signin=after_signin)
        return outcome

    def _sensitive_folder(self, request_id: int) -> str:
        """The folder path when the request's secret is in one of approvals.sensitive_folders."""
        path = followups.pending_facts(self.db, request_id).get("folder_path") or ""   # type: ignore[arg-type]
        return path if routes.sensitive_folder(path, self.sensitive_folders) else ""

    def _open_reason_modal(self, trigger_id: str, kind: str, request_id: int, source: dict) -> None:
        found = snapshot.get_request(self.db, request_id)   # type: ignore[arg-type]
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
