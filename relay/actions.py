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
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from . import sync
from .errors import AccessDenied, RequestRejected, SecretServerError, SessionExpired
from .model import PENDING, AccessRequest
from .outbox import Outbox
from .sessions import NeedsSignIn, Sessions
from .store import snapshot

log = logging.getLogger(__name__)

APPROVE = "approve"
DENY = "deny"
CANCEL = "cancel"
ACTIONS = (APPROVE, DENY, CANCEL)

# Outcome kinds
DONE = "done"              # SS took the decision
STALE = "stale"            # the request is not Pending any more: nothing was written
FORBIDDEN = "forbidden"    # this person may not do this: nothing was written
SIGN_IN = "sign_in"        # no usable SS session: sign in first (the action is remembered)
FAILED = "failed"          # SS could not be reached or refused for another reason

CLAIM_STALE_AFTER = timedelta(minutes=2)   # a claim older than this was left by a crash
CANNOT_REVIEW = "You cannot review this request."
ONLY_REQUESTER = "Only the requester can cancel this request."


@dataclass(frozen=True)
class Outcome:
    kind: str
    action: str
    request_id: int
    request: AccessRequest | None = None     # as SS showed it last (after the write when DONE)
    detail: str = ""                         # plain text: why (FORBIDDEN, FAILED)
    signin_state: str | None = None          # SIGN_IN: the raw state for the sign-in link
    clicker_ss_id: int | None = None
    context: dict = field(default_factory=dict)   # snapshot facts: folder_name, reviewers


def _now() -> datetime:
    return datetime.now(timezone.utc)


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
        request_id = int(request_id)
        ctx = self._context(request_id)
        try:
            api = self.sessions.api_for(slack_user)
        except NeedsSignIn:
            return self._sign_in(slack_user, slack_team, action, request_id, reason, remember, ctx)
        me = self.sessions.ss_user_id(slack_user)
        claimed = self._claim(request_id, action, slack_user)
        outcome: Outcome | None = None
        try:
            outcome = self._act(api, me, slack_user, slack_team, action, request_id, reason, remember,
                                ctx, claimed)
            return outcome
        finally:
            if claimed:
                self._finish_claim(request_id, outcome)

    # ------------------------------------------------------------------ steps
    def _act(self, api, me, slack_user, slack_team, action, request_id, reason, remember, ctx,
             claimed: bool) -> Outcome:
        def out(kind: str, request: AccessRequest | None = None, detail: str = "") -> Outcome:
            return Outcome(kind, action, request_id, request, detail, clicker_ss_id=me, context=ctx)

        try:
            live = api.get_request(request_id)
        except SessionExpired:
            self.sessions.expired(slack_user)
            return self._sign_in(slack_user, slack_team, action, request_id, reason, remember, ctx)
        except AccessDenied:
            return out(FORBIDDEN, detail=CANNOT_REVIEW if action != CANCEL else ONLY_REQUESTER)
        except SecretServerError as exc:
            log.warning("live re-check failed", extra={"request_id": request_id, "error": type(exc).__name__})
            return out(FAILED, detail="Secret Server could not be reached. Nothing was changed; try again.")
        if live.status != PENDING:
            return out(STALE, live)
        if not claimed:
            return out(FAILED, live, "Another click on this request is still being handled; try again.")
        if action == CANCEL:
            if live.requester_id != me:
                return out(FORBIDDEN, live, ONLY_REQUESTER)
        else:
            if live.requester_id == me or not self._may_review(me, live):
                return out(FORBIDDEN, live, CANNOT_REVIEW)
        try:
            result = self._write(api, action, live, reason, me)
        except SessionExpired:
            self.sessions.expired(slack_user)
            return self._sign_in(slack_user, slack_team, action, request_id, reason, remember, ctx)
        except AccessDenied:
            return out(FORBIDDEN, live, CANNOT_REVIEW if action != CANCEL else ONLY_REQUESTER)
        except RequestRejected as exc:
            now_state = self._reread(api, request_id)
            if now_state is not None and now_state.status != PENDING:
                return out(STALE, now_state)
            said = f"{exc.error_code} {exc}".lower()
            if "notpending" in said or "no longer pending" in said:
                return out(STALE, now_state or live)
            if "cannot review" in said or "not allowed" in said or "permission" in said:
                return out(FORBIDDEN, live, CANNOT_REVIEW)
            return out(FAILED, live, f"Secret Server refused: {str(exc).removeprefix('Secret Server: ')[:300]}")
        except SecretServerError as exc:
            log.warning("decision not confirmed by secret server",
                        extra={"request_id": request_id, "action": action, "error": type(exc).__name__})
            return out(FAILED, live, "Secret Server did not confirm the change. Check the request "
                                     "in Secret Server before trying again.")
        log.info("request decided from slack", extra={"request_id": request_id, "action": action,
                                                      "slack_user": slack_user, "status": result.status})
        if result.status != PENDING and action in (APPROVE, DENY) and me is not None \
                and (remember or {}).get("kind") == "message":
            # a click on the clicker's own DM card updates that card: the poll must not close it
            # again (a click from the Home tab leaves the card to the poll)
            Outbox(self.db).record_sent(request_id, sync.REVIEW_CLOSED, me, slack_user,
                                        {"by": "click", "action": action})
        return out(DONE, result)

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

    def _sign_in(self, slack_user, slack_team, action, request_id, reason, remember, ctx) -> Outcome:
        pending = {"action": action, "request_id": request_id, "reason": reason, "source": remember or {}}
        state = self.sessions.new_state(slack_team, slack_user, pending)
        return Outcome(SIGN_IN, action, request_id, signin_state=state,
                       clicker_ss_id=self.sessions.ss_user_id(slack_user), context=ctx)

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
