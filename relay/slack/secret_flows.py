"""Secrets in Slack, the Slack side: the `secretsearch` shortcut, Launch, the launcher picker
and prompt, and Request access. The workflow is `relay.secrets.Secrets` (no Slack there);
the views are the pure builders of `relay.slack.search`.

The trigger window: a `trigger_id` is good for 3 seconds, once. Every modal is opened (or
pushed, from inside a modal) at once from the `fast` pool, before any SS call: the shortcut
opens the search input, Launch and Request access open a "One moment…" modal. SS work runs in
the worker pool afterwards and lands with `views.update` on the view Slack gave back.

Submissions are validated in the ack (`response_action: errors`); a valid one is answered with
`response_action: update` (a "Searching…" / "Launching…" view) and the result follows by
`views.update`, never sooner than `ACK_GRACE` after the ack so it cannot arrive before it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from .. import secret_steps as steps
from .. import secrets as sec
from ..errors import SlackError
from ..sessions import Sessions
from . import search as sv

log = logging.getLogger(__name__)

ACK_GRACE = 0.25       # seconds between a response_action ack and the views.update that follows
LAUNCH_PENDING = "launch"   # a sign-in state's pending action: offer Launch again after sign-in


def _int(value) -> int | None:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if 0 < n < 2**31 else None


def view_metadata(view: dict) -> dict:
    """A view's private_metadata as a dict (ours, but still read defensively)."""
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _state_value(view: dict, block: str, action: str) -> str:
    try:
        el = view["state"]["values"][block][action]
    except (KeyError, TypeError):
        return ""
    if not isinstance(el, dict):
        return ""
    if isinstance(el.get("selected_option"), dict):
        v = el["selected_option"].get("value")
    else:
        v = el.get("value")
    return v if isinstance(v, str) else ""


class SlackCalls(Protocol):
    """The Slack Web API client (`relay.slack` client): one method call, its data or SlackError."""

    def call(self, method: str, **kwargs: Any) -> dict: ...


@dataclass(frozen=True)
class SlackSide:
    """What the flows need from the Slack layer that hosts them, passed in at construction."""

    team: Callable[[str], str]            # a payload's team id, or the workspace's when it has none
    team_of: Callable[[dict], str]        # the team id in an interaction payload
    signin_url: Callable[[str], str]      # the sign-in page's link for a sign-in state
    submit: Callable[..., object]         # run fn(*args) on the worker pool (SS work)
    submit_fast: Callable[..., object]    # run fn(*args) on the modal pool (trigger-bound work)
    dm: Callable[[str, str, list], None]  # message a person (text, blocks)


def register(app, flows: SecretFlows) -> None:
    """The listeners (each acks at once; work goes to the pools)."""

    @app.shortcut(sv.SHORTCUT)
    def shortcut(ack, body):
        ack()
        flows.on_shortcut(body)

    @app.view(sv.SEARCH_CALLBACK)
    def search_submitted(ack, body, view):
        flows.on_search(ack, body, view)

    @app.action(sv.LAUNCH)
    def launch(ack, body, action):
        ack()
        flows.on_launch(body, action)

    @app.action(sv.LAUNCH_PICK)
    def pick(ack, body, action):
        ack()
        flows.on_pick(body, action)

    @app.action(sv.REQUEST_ACCESS)
    def request_access(ack, body, action):
        ack()
        flows.on_request_click(body, action)

    for url_button in (sv.LAUNCH_OPEN, sv.SECRET_OPEN):
        app.action(url_button)(lambda ack: ack())   # URL buttons: the browser does the work

    @app.view(sv.PROMPT_CALLBACK)
    def prompt_submitted(ack, body, view):
        flows.on_prompt(ack, body, view)

    @app.view(sv.REQUEST_CALLBACK)
    def request_submitted(ack, body, view):
        flows.on_request(ack, body, view)


@dataclass(frozen=True)
class _Asked:
    """Who a step is rendered for and in which modal (`form`: what a request form held)."""

    user: str
    team: str
    title: str
    text: str = ""
    form: dict = field(default_factory=dict)


class SecretFlows:
    def __init__(self, secrets: sec.Secrets, sessions: Sessions, slack: SlackCalls,
                 secret_url: Callable[[int], str], side: SlackSide):
        self.secrets = secrets
        self.sessions = sessions
        self.slack = slack
        self.secret_url = secret_url
        self.side = side

    # ------------------------------------------------------------------ Slack calls
    def _open(self, body: dict, view: dict) -> str | None:
        """views.open (or views.push from inside a modal) with the click's trigger; the view id."""
        trigger = body.get("trigger_id")
        if not isinstance(trigger, str) or not trigger:
            return None
        container: dict = body["container"] if isinstance(body.get("container"), dict) else {}
        source: dict = body["view"] if isinstance(body.get("view"), dict) else {}
        method = "views.push" if container.get("type") == "view" and source.get("type") == "modal" else "views.open"
        try:
            data = self.slack.call(method, trigger_id=trigger, view=view)
        except SlackError as exc:
            log.warning("could not open the modal", extra={"method": method, "error": exc.error})
            return None
        return (data.get("view") or {}).get("id")

    def _update(self, view_id: str | None, view: dict, *, acked_at: float | None = None) -> None:
        if not view_id:
            return
        if acked_at is not None:
            wait = acked_at + ACK_GRACE - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        try:
            self.slack.call("views.update", view_id=view_id, view=view)
        except SlackError as exc:
            log.warning("could not update the modal", extra={"error": exc.error})

    def _signin_modal(self, user: str, team: str, title: str, why: str, pending: dict | None = None) -> dict:
        state = self.sessions.new_state(self.side.team(team), user, pending)
        return sv.signin_modal(title, self.side.signin_url(state), why)

    def render(self, step: steps.Step, user: str, team: str, *, title: str, text: str = "",
               form: dict | None = None) -> dict:
        """The modal for a step of the workflow (one builder per kind of step)."""
        build = self._BUILDERS.get(type(step))
        asked = _Asked(user, team, title, text, form or {})
        if build is None:
            return sv.message_modal(title, "Something unexpected happened; nothing was changed.")
        return build(self, step, asked)

    def _sign_in(self, step: steps.SignIn, a: _Asked) -> dict:
        pending = {"action": LAUNCH_PENDING, "secret_id": step.secret_id} if (
            a.title == "Launch" and step.secret_id) else None
        return self._signin_modal(a.user, a.team, a.title, "Your Secret Server session has ended: sign in "
                                                           "again, then try once more.", pending)

    def _results(self, step: steps.Results, a: _Asked) -> dict:
        return sv.results_modal(a.text, step.secrets, self.secret_url)

    def _failed(self, step: steps.Failed, a: _Asked) -> dict:
        return sv.message_modal(a.title, f":warning: {sv.escape(step.detail)}", secret=step.secret,
                                secret_url=self.secret_url)

    def _nothing(self, step: steps.Nothing, a: _Asked) -> dict:
        return sv.nothing_modal(step.secret, step.secret.id, step.detail, self.secret_url,
                                offer_request=step.secret.requires_approval)

    def _choose(self, step: steps.Choose, a: _Asked) -> dict:
        return sv.launcher_picker(step.secret, step.launchers, self.secret_url)

    def _prompt(self, step: steps.Prompt, a: _Asked) -> dict:
        return sv.prompt_modal(step.secret, step.launcher, self.secret_url)

    def _prompt_invalid(self, step: steps.PromptInvalid, a: _Asked) -> dict:
        return sv.prompt_modal(step.secret, step.launcher, self.secret_url, error=step.error)

    def _launched(self, step: steps.Launched, a: _Asked) -> dict:
        return sv.launched_modal(step.secret, step.launcher, step.url, self.secret_url)

    def _handoff(self, step: steps.Handoff, a: _Asked) -> dict:
        return sv.handoff_modal(step.secret, step.launcher, step.url, self.secret_url)

    def _form(self, step: steps.Form, a: _Asked) -> dict:
        return sv.request_modal(step.secret.id, step.secret.name)

    def _not_needed(self, step: steps.NotNeeded, a: _Asked) -> dict:
        return sv.message_modal(a.title, "This secret does not need approval: open it in Secret Server.",
                                secret=step.secret, secret_url=self.secret_url)

    def _created(self, step: steps.Created, a: _Asked) -> dict:
        return sv.request_sent_modal(a.form.get("name") or step.request.secret_name, step.request.id)

    def _form_invalid(self, step: steps.FormInvalid, a: _Asked) -> dict:
        f = a.form
        return sv.request_modal(step.secret_id, f.get("name") or f"secret #{step.secret_id}",
                                needs_ticket=step.needs_ticket or bool(f.get("needs_ticket")),
                                errors=step.field_errors, comment=f.get("comment", ""),
                                ticket=f.get("ticket", ""))

    _BUILDERS: ClassVar[dict[type, Callable[[SecretFlows, Any, _Asked], dict]]] = {
        steps.SignIn: _sign_in, steps.Results: _results, steps.Failed: _failed, steps.Nothing: _nothing,
        steps.Choose: _choose, steps.Prompt: _prompt, steps.PromptInvalid: _prompt_invalid,
        steps.Launched: _launched, steps.Handoff: _handoff, steps.Form: _form, steps.NotNeeded: _not_needed,
        steps.Created: _created, steps.FormInvalid: _form_invalid,
    }

    # ------------------------------------------------------------------ search
    def on_shortcut(self, body: dict) -> None:
        user, team = body["user"]["id"], self.side.team_of(body)
        self.side.submit_fast(self._open_search, body, user, team)

    def _open_search(self, body: dict, user: str, team: str) -> None:
        # no SS call before views.open: the trigger lasts 3 seconds
        if self.sessions.has_session(user):
            view = sv.search_modal()
        else:
            view = self._signin_modal(user, team, "Search secrets",
                                      "Sign in to Secret Server to search the secrets you can see.")
        self._open(body, view)

    def on_search(self, ack, body: dict, view: dict) -> None:
        text = _state_value(view, sv.SEARCH_BLOCK, sv.SEARCH_INPUT).strip()
        error = sec.validate_search(text)
        if error:
            ack(response_action="errors", errors={sv.SEARCH_BLOCK: error})
            return
        ack(response_action="update", view=sv.searching_modal(text))
        acked = time.monotonic()
        user, team = body["user"]["id"], self.side.team_of(body)

        def work():
            step = self.secrets.search(user, text)
            self._update(view.get("id"), self.render(step, user, team, title="Search secrets", text=text),
                         acked_at=acked)
        self.side.submit(work)

    # ------------------------------------------------------------------ launch
    def on_launch(self, body: dict, action: dict) -> None:
        secret_id = _int(action.get("value"))
        if secret_id is None:
            log.warning("launch click without a secret id")
            return
        user, team = body["user"]["id"], self.side.team_of(body)
        self.side.submit_fast(self._start_launch, body, user, team, secret_id)

    def _start_launch(self, body: dict, user: str, team: str, secret_id: int) -> None:
        if not self.sessions.has_session(user):
            self._open(body, self._signin_modal(
                user, team, "Launch", "Sign in to Secret Server to launch this secret. You get the "
                                      "Launch button again right after.", {"action": LAUNCH_PENDING,
                                                                             "secret_id": secret_id}))
            return
        view_id = self._open(body, sv.loading_modal("Launch", "Asking Secret Server for the launchers…"))
        if view_id is None:
            return

        def work():
            step = self.secrets.launch_options(user, secret_id)
            self._update(view_id, self.render(step, user, team, title="Launch"))
        self.side.submit(work)

    def on_pick(self, body: dict, action: dict) -> None:
        sid, _, lid = str(action.get("value", "")).partition(":")
        secret_id, launcher_id = _int(sid), _int(lid)
        view_id = (body.get("view") or {}).get("id") if isinstance(body.get("view"), dict) else None
        if secret_id is None or launcher_id is None or not view_id:
            log.warning("launcher pick without ids")
            return
        user, team = body["user"]["id"], self.side.team_of(body)

        def work():
            step = self.secrets.launch(user, secret_id, launcher_id)
            self._update(view_id, self.render(step, user, team, title="Launch"))
        self.side.submit(work)

    def on_prompt(self, ack, body: dict, view: dict) -> None:
        meta = view_metadata(view)
        secret_id, launcher_id = _int(meta.get("secret_id")), _int(meta.get("launcher_id"))
        value = _state_value(view, sv.PROMPT_BLOCK, sv.PROMPT_INPUT).strip()
        error = sec.validate_prompt(value)
        if secret_id is None or launcher_id is None:
            error = error or "This form is out of date; click Launch again."
        if error:
            ack(response_action="errors", errors={sv.PROMPT_BLOCK: error})
            return
        ack(response_action="update", view=sv.loading_modal("Launch", "Launching…"))
        acked = time.monotonic()
        user, team = body["user"]["id"], self.side.team_of(body)

        def work():
            step = self.secrets.launch(user, secret_id, launcher_id, value)
            self._update(view.get("id"), self.render(step, user, team, title="Launch"), acked_at=acked)
        self.side.submit(work)

    # ------------------------------------------------------------------ request access
    def on_request_click(self, body: dict, action: dict) -> None:
        secret_id = _int(action.get("value"))
        if secret_id is None:
            return
        user, team = body["user"]["id"], self.side.team_of(body)
        self.side.submit_fast(self._start_request, body, user, team, secret_id)

    def _start_request(self, body: dict, user: str, team: str, secret_id: int) -> None:
        if not self.sessions.has_session(user):
            self._open(body, self._signin_modal(user, team, "Request access",
                                                "Sign in to Secret Server to ask for access."))
            return
        view_id = self._open(body, sv.loading_modal("Request access"))
        if view_id is None:
            return

        def work():
            step = self.secrets.access_form(user, secret_id)
            self._update(view_id, self.render(step, user, team, title="Request access"))
        self.side.submit(work)

    def on_request(self, ack, body: dict, view: dict) -> None:
        meta = view_metadata(view)
        secret_id = _int(meta.get("secret_id"))
        comment = _state_value(view, sv.COMMENT_BLOCK, sv.COMMENT_INPUT)
        ticket = _state_value(view, sv.TICKET_BLOCK, sv.TICKET_INPUT)
        errors = sec.validate_request(comment, ticket)
        if meta.get("needs_ticket") and not ticket.strip():
            errors.setdefault("ticket", "This secret needs a ticket number.")
        if secret_id is None:
            errors.setdefault("comment", "This form is out of date; click Request access again.")
        if errors:
            blocks = {"comment": sv.COMMENT_BLOCK, "ticket": sv.TICKET_BLOCK}
            ack(response_action="errors", errors={blocks[k]: v for k, v in errors.items()})
            return
        ack(response_action="update", view=sv.loading_modal("Request access", "Sending your request…"))
        acked = time.monotonic()
        user, team = body["user"]["id"], self.side.team_of(body)
        name = str(meta.get("name") or "")[:200]
        form = {"name": name, "comment": comment, "ticket": ticket, "needs_ticket": bool(meta.get("needs_ticket"))}

        def work():
            step = self.secrets.request_access(user, secret_id, comment, ticket)
            self._update(view.get("id"), self.render(step, user, team, title="Request access", form=form),
                         acked_at=acked)
        self.side.submit(work)

    # ------------------------------------------------------------------ after sign-in
    def after_signin(self, slack_user: str, pending: dict) -> bool:
        """A Launch click that needed a sign-in: offer the Launch button again (a new click
        brings a new trigger). True when `pending` was ours."""
        if pending.get("action") != LAUNCH_PENDING:
            return False
        secret_id = _int(pending.get("secret_id"))
        if secret_id is None:
            return True
        text = "You are signed in to Secret Server. Launch the secret you asked for:"
        blocks = [{"type": "section", "text": {"type": "mrkdwn",
                                               "text": f"{text} {sv.link(self.secret_url(secret_id), 'open its page')}"},
                   "accessory": sv.launch_button(secret_id)}]
        self.side.dm(slack_user, text, blocks)
        return True
