"""What a click does: Approve, Deny, Cancel request, as the person who clicked.

No Slack here (house rule 4): the Slack layer turns a click into `Actions.perform(...)` and
renders the `Outcome` it gets back.

Every action:
1. needs the clicker's own SS session (else: `SIGN_IN`, with a sign-in state that remembers
   the action so it is completed right after the sign-in);
2. claims the request in SQLite before anything is written, so a double click, or two
   reviewers clicking at once, make exactly one SS write (the other click waits for the claim
   and then explains what happened);
3. re-reads the request live, as the clicker;
4. decides: not Pending -> `STALE` (the current state; nothing written); the requester
   approving their own request, a clicker who is not a reviewer, or someone else cancelling ->
   `FORBIDDEN` (nothing written); else the PUT, as the clicker;
5. records the effect (`Outbox.record_sent`) so the poll does not tell the clicker again.

The snapshot is left to the poll: it sees Pending -> Approved and tells the requester.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from . import sync
from .errors import (
    AccessDenied,
    NotAReviewer,
    RequestNotPending,
    RequestRejected,
    SecretServerError,
    SessionExpired,
)
from .model import PENDING, AccessRequest
from .outbox import Outbox
from .sessions import NeedsSignIn, Sessions
from .store import snapshot

log = logging.getLogger(__name__)


class Action(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    CANCEL = "cancel"


APPROVE, DENY, CANCEL = Action.APPROVE, Action.DENY, Action.CANCEL
ACTIONS = tuple(Action)


class OutcomeKind(StrEnum):
    DONE = "done"              # SS took the decision
    STALE = "stale"            # the request is not Pending any more: nothing was written
    FORBIDDEN = "forbidden"    # this person may not do this: nothing was written
    SIGN_IN = "sign_in"        # no usable SS session: sign in first (the action is remembered)
    FAILED = "failed"          # SS could not be reached or refused for another reason


DONE, STALE, FORBIDDEN = OutcomeKind.DONE, OutcomeKind.STALE, OutcomeKind.FORBIDDEN
SIGN_IN, FAILED = OutcomeKind.SIGN_IN, OutcomeKind.FAILED

CLAIM_STALE_AFTER = timedelta(minutes=2)   # a claim older than this was left by a crash
CANNOT_REVIEW = "You cannot review this request."
ONLY_REQUESTER = "Only the requester can cancel this request."
BUSY = "Another click on this request is still being handled; try again."
UNREACHABLE = "Secret Server could not be reached. Nothing was changed; try again."
UNCONFIRMED = ("Secret Server did not confirm the change. Check the request in Secret Server "
               "before trying again.")


@dataclass(frozen=True)
class Outcome:
    """What a click did. `request` is set for DONE (as SS answered the write) and STALE (as
    SS shows it now); `signin_state` for SIGN_IN; `detail` (plain text) for FORBIDDEN and
    FAILED. Build one with the constructors below, which require what each kind carries."""

    kind: OutcomeKind
    action: Action
    request_id: int
    request: AccessRequest | None = None
    detail: str = ""
    signin_state: str | None = None
    clicker_ss_id: int | None = None
    context: dict[str, Any] = field(default_factory=dict)   # snapshot facts: folder_name, reviewers


@dataclass(frozen=True)
class Click:
    """One click, as the Slack layer hands it over, with the relay's facts about the request."""

    slack_user: str
    slack_team: str
    action: Action
    request_id: int
    reason: str = ""
    remember: dict[str, Any] = field(default_factory=dict)   # where the click came from
    context: dict[str, Any] = field(default_factory=dict)    # snapshot facts about the request

    def outcome(self, kind: OutcomeKind, me: int | None, request: AccessRequest | None = None,
                detail: str = "") -> Outcome:
        return Outcome(kind, self.action, self.request_id, request, detail, clicker_ss_id=me,
                       context=self.context)

    def done(self, me: int | None, request: AccessRequest) -> Outcome:
        return self.outcome(DONE, me, request)

    def stale(self, me: int | None, request: AccessRequest) -> Outcome:
        return self.outcome(STALE, me, request)

    def refused(self, kind: OutcomeKind, me: int | None, request: AccessRequest | None,
                detail: str) -> Outcome:
        """FORBIDDEN or FAILED: nothing was written, `detail` says why."""
        return self.outcome(kind, me, request, detail)

    def sign_in(self, me: int | None, state: str) -> Outcome:
        return Outcome(SIGN_IN, self.action, self.request_id, signin_state=state, clicker_ss_id=me,
                       context=self.context)


def _forbidden_detail(action: Action) -> str:
    return ONLY_REQUESTER if action == CANCEL else CANNOT_REVIEW


def refusal_before_write(action: Action, live: AccessRequest, me: int | None, claimed: bool,
                         may_review: Callable[[], bool]) -> tuple[OutcomeKind, str] | None:
    """Why nothing may be written for this click on the request as SS shows it now (`live`),
    as (kind, detail); None when the write may go ahead. `may_review` is asked last, only
    for an Approve / Deny by someone other than the requester."""
    if live.status != PENDING:
        return STALE, ""
    if not claimed:
        return FAILED, BUSY
    if action == CANCEL:
        return None if live.requester_id == me else (FORBIDDEN, ONLY_REQUESTER)
    if live.requester_id == me or not may_review():
        return FORBIDDEN, CANNOT_REVIEW
    return None


def after_rejection(exc: RequestRejected, action: Action, live: AccessRequest,
                    now_state: AccessRequest | None) -> tuple[OutcomeKind, AccessRequest, str]:
    """What a write SS refused means, as (kind, request to show, detail). `now_state` is the
    request re-read after the refusal (None when that failed): once it is not Pending, the
    click came too late whatever SS said."""
    if now_state is not None and now_state.status != PENDING:
        return STALE, now_state, ""
    if isinstance(exc, RequestNotPending):
        return STALE, now_state or live, ""
    if isinstance(exc, NotAReviewer):
        return FORBIDDEN, live, CANNOT_REVIEW
    said = str(exc).removeprefix("Secret Server: ")[:300]
    return FAILED, live, f"Secret Server refused: {said}"


def _now() -> datetime:
    return datetime.now(UTC)


class Actions:
    def __init__(self, db, sessions: Sessions, *, default_hours: float, claim_wait: float = 60.0,
                 clock: Callable[[], datetime] = _now):
        self.db = db
        self.sessions = sessions
        self.default_hours = default_hours
        self.claim_wait = claim_wait
        self.clock = clock
        self._released = threading.Condition()

    # ------------------------------------------------------------------ entry point
    def perform(self, slack_user: str, slack_team: str, action: str, request_id: int, *,
                reason: str = "", remember: dict | None = None) -> Outcome:
        """Do `action` on `request_id` as `slack_user`. `remember` is kept with a sign-in state
        when one is needed (where the click came from, to update it afterwards)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        click = Click(slack_user, slack_team, Action(action), int(request_id), reason,
                      remember or {}, self._context(int(request_id)))
        try:
            api = self.sessions.api_for(slack_user)
        except NeedsSignIn:
            return self._sign_in(click)
        me = self.sessions.ss_user_id(slack_user)
        claimed = self._claim(click.request_id, click.action, slack_user)
        outcome: Outcome | None = None
        try:
            outcome = self._act(api, me, click, claimed)
            return outcome
        finally:
            if claimed:
                self._finish_claim(click.request_id, outcome)

    # ------------------------------------------------------------------ steps
    def _act(self, api, me: int | None, click: Click, claimed: bool) -> Outcome:
        """Re-read as the clicker, decide, write, record."""
        live = self._read_live(api, me, click)
        if isinstance(live, Outcome):
            return live
        refused = refusal_before_write(click.action, live, me, claimed,
                                       lambda: self._may_review(me, live))
        if refused is not None:
            kind, detail = refused
            return click.stale(me, live) if kind == STALE else click.refused(kind, me, live, detail)
        result = self._write_as_clicker(api, me, click, live)
        if isinstance(result, Outcome):
            return result
        self._record_click(me, click, result)
        return click.done(me, result)

    def _read_live(self, api, me: int | None, click: Click) -> AccessRequest | Outcome:
        """The request as SS shows it to the clicker now, or the Outcome saying why not."""
        try:
            return api.get_request(click.request_id)
        except SessionExpired:
            self.sessions.expired(click.slack_user)
            return self._sign_in(click)
        except AccessDenied:
            return click.refused(FORBIDDEN, me, None, _forbidden_detail(click.action))
        except SecretServerError as exc:
            log.warning("live re-check failed", extra={"request_id": click.request_id,
                                                       "error": type(exc).__name__})
            return click.refused(FAILED, me, None, UNREACHABLE)

    def _write_as_clicker(self, api, me: int | None, click: Click,
                          live: AccessRequest) -> AccessRequest | Outcome:
        """The PUT, as the clicker: the request as SS answered it, or the Outcome of a refusal."""
        try:
            return self._write(api, click.action, live, click.reason, me)
        except SessionExpired:
            self.sessions.expired(click.slack_user)
            return self._sign_in(click)
        except AccessDenied:
            return click.refused(FORBIDDEN, me, live, _forbidden_detail(click.action))
        except RequestRejected as exc:
            kind, shown, detail = after_rejection(exc, click.action, live,
                                                  self._reread(api, click.request_id))
            return click.stale(me, shown) if kind == STALE else click.refused(kind, me, shown, detail)
        except SecretServerError as exc:
            log.warning("decision not confirmed by secret server",
                        extra={"request_id": click.request_id, "action": click.action,
                               "error": type(exc).__name__})
            return click.refused(FAILED, me, live, UNCONFIRMED)

    def _record_click(self, me: int | None, click: Click, result: AccessRequest) -> None:
        log.info("request decided from slack", extra={"request_id": click.request_id,
                                                      "action": click.action,
                                                      "slack_user": click.slack_user,
                                                      "status": result.status})
        if result.status != PENDING and click.action in (APPROVE, DENY) and me is not None \
                and click.remember.get("kind") == "message":
            # a click on the clicker's own DM card updates that card: the poll must not close it
            # again (a click from the Home tab leaves the card to the poll)
            Outbox(self.db).record_sent(click.request_id, sync.REVIEW_CLOSED, me, click.slack_user,
                                        {"by": "click", "action": str(click.action)})

    def _may_review(self, me: int | None, live: AccessRequest) -> bool:
        """Pre-check with the relay's view of the current step's reviewers. When the snapshot
        is of another step (or missing), SS decides (and refuses a non-reviewer)."""
        found = snapshot.get_request(self.db, live.id)
        if found is None or me is None:
            return True
        known, ctx = found
        if known.status != PENDING or known.review_status != live.review_status:
            return True
        return me in set(ctx.get("reviewers") or [])

    def _write(self, api, action: str, live: AccessRequest, reason: str, me: int | None) -> AccessRequest:
        name = self._name(me)
        if action == APPROVE:
            now = self.clock()
            start = live.start or now
            expiration = live.expiration or (max(start, now) + timedelta(hours=self.default_hours))
            comment = reason.strip() or f"Approved from Slack by {name}"
            return api.approve(live.id, start, expiration, comment)
        if action == DENY:
            return api.deny(live.id, reason.strip() or f"Denied from Slack by {name}")
        return api.cancel(live.id)

    def _reread(self, api, request_id: int) -> AccessRequest | None:
        try:
            return api.get_request(request_id)
        except SecretServerError:
            return None

    def _name(self, me: int | None) -> str:
        if me is not None:
            p = snapshot.get_person(self.db, me)
            if p is not None:
                return p.name
            row = self.db.execute("SELECT ss_username FROM slack_links WHERE ss_user_id = ?", [me]).fetchone()
            if row and row[0]:
                return row[0]
        return "a reviewer"

    def _sign_in(self, click: Click) -> Outcome:
        pending = {"action": str(click.action), "request_id": click.request_id,
                   "reason": click.reason, "source": click.remember}
        state = self.sessions.new_state(click.slack_team, click.slack_user, pending)
        return click.sign_in(self.sessions.ss_user_id(click.slack_user), state)

    def _context(self, request_id: int) -> dict:
        found = snapshot.get_request(self.db, request_id)
        if found is None:
            return {}
        req, ctx = found
        return {**ctx, "requester_name": self._requester_name(req)}

    def _requester_name(self, req: AccessRequest) -> str:
        p = snapshot.get_person(self.db, req.requester_id)
        return p.name if p else req.requester_username

    # ------------------------------------------------------------------ claims
    def _claim(self, request_id: int, action: str, slack_user: str) -> bool:
        """Take the request's claim; wait while another click holds it. False when the claim
        is a finished decision or the wait ran out (nothing may be written then)."""
        deadline = time.monotonic() + self.claim_wait
        while True:
            now = self.clock()
            with self.db.atomic():
                if self.db.execute(
                        "INSERT OR IGNORE INTO action_claims (request_id, action, slack_user, claimed_at) "
                        "VALUES (?, ?, ?, ?)", [request_id, action, slack_user, now.isoformat()]).rowcount == 1:
                    return True
                row = self.db.execute("SELECT state, claimed_at FROM action_claims WHERE request_id = ?",
                                      [request_id]).fetchone()
                if row is None:
                    continue
                if row[0] == "done":
                    return False
                if datetime.fromisoformat(row[1]) < now - CLAIM_STALE_AFTER:
                    taken = self.db.execute(
                        "UPDATE action_claims SET action = ?, slack_user = ?, claimed_at = ? "
                        "WHERE request_id = ? AND claimed_at = ? AND state = 'claimed'",
                        [action, slack_user, now.isoformat(), request_id, row[1]]).rowcount == 1
                    if taken:
                        log.warning("took over an abandoned claim", extra={"request_id": request_id})
                        return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._released:   # woken by a release in this process; polls for others
                self._released.wait(min(0.1, remaining))

    def _finish_claim(self, request_id: int, outcome: Outcome | None) -> None:
        with self.db.atomic():
            if outcome is not None and outcome.kind == DONE and outcome.request is not None \
                    and outcome.request.status != PENDING:
                self.db.execute("UPDATE action_claims SET state = 'done', result = ?, done_at = ? "
                                "WHERE request_id = ?",
                                [outcome.request.status, self.clock().isoformat(), request_id])
            else:   # nothing written, or a workflow step moved on: the next click may act
                self.db.execute("DELETE FROM action_claims WHERE request_id = ?", [request_id])
        with self._released:
            self._released.notify_all()
