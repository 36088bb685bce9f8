"""What the relay adds to each poll beyond Secret Server's own workflow: the requester's
confirmation when a new request is seen, per-reviewer "why you are asked" facts on approval
messages, and reminders to reviewers of a request still pending.

Runs inside the poll's transaction (`on_poll`): the events it adds are written with the
snapshot by `record_poll` (INSERT OR IGNORE on the outbox key, so each is sent once, across
restarts too). Reminder bookkeeping lives in the `reminders` table; a poll with nothing due
costs one probe of its `next_reminder_at` index.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from . import sync
from .model import PENDING, AccessRequest, Person, StepReviewer, request_to_dict
from .reminders import (
    ReminderPolicy,
    ReminderState,
    event_name,
    next_reminder_at,
    reminders_due,
)
from .routes import ChannelRoute, route_for
from .store import snapshot

REQUESTER_CONFIRMATION = "requester_confirmation"   # to the requester: "went to ..." + Cancel
CHANNEL_CARD = "channel_card"          # to a routed request's team channel: the card, Approve / Deny
CHANNEL_CLOSED = "channel_closed"      # the channel card in its final state, and a thread reply
CHANNEL = 0                            # the recipient of channel events: the route's channel
CHANNEL_STEP_PREFIX = "channel_step_"  # the channel card rewritten for the workflow's next step
REMINDER_PREFIX = "reminder_"
# A confirmation is news only shortly after asking: a request the relay first sees older than
# this (a relay started on a backlog, or back after a long stop) gets none; its reviewers are
# still asked.
CONFIRM_WITHIN = timedelta(hours=1)
# What a reminder repeats from the poll's context (the snapshot holds the request itself).
_KEPT = ("folder_name", "folder_path", "requester_name", "reviewer_steps", "channel", "personal", "step")


def describe_steps(steps: Iterable[StepReviewer], members: Mapping[int, tuple[Person, ...]],
                   exclude: int | None = None) -> list[dict]:
    """The current step's reviewers as plain data: a named reviewer or a group, with members."""
    return [{"name": s.display_name, "group_id": s.group_id, "is_user": s.is_user,
             "members": [[p.id, p.name] for p in members.get(s.group_id, ()) if p.id != exclude]}
            for s in steps]


@dataclass(frozen=True)
class FollowupPolicy:
    confirm_to_requester: bool = True
    reminders: ReminderPolicy = field(default_factory=ReminderPolicy)
    routes: tuple[ChannelRoute, ...] = ()


def is_channel_step(event: str) -> bool:
    return event.startswith(CHANNEL_STEP_PREFIX)


def is_reminder(event: str) -> bool:
    return event.startswith(REMINDER_PREFIX)


class Followups:
    def __init__(self, policy: FollowupPolicy):
        self.policy = policy

    def on_poll(self, db: sqlite_utils.Database, known: Mapping[int, sync.Known], obs: sync.Observation,
                diff: sync.Diff, now: datetime) -> None:
        """Add this poll's follow-up events to `diff` and keep the reminder schedule. Call
        inside the poll's transaction, before the diff is recorded."""
        self._annotate(diff)
        for req, _ in diff.upserts:
            before = known.get(req.id)
            ctx = obs.context.get(req.id, {})
            route = route_for(ctx.get("folder_path") or "", self.policy.routes) if req.status == PENDING else None
            if route is not None:
                ctx = {**ctx, "channel": route.channel, "personal": route.personal}
                if not route.personal:   # the channel card asks; reviewers are not told one by one
                    diff.events[:] = [ev for ev in diff.events
                                      if not (ev.request_id == req.id and ev.kind == sync.APPROVAL_REQUESTED)]
            if req.status == PENDING and (before is None or before.status != PENDING):
                self._new_request(db, req, ctx, diff, now)
            elif req.status == PENDING and route is not None:
                self._moved(db, req, ctx, diff)
            elif req.status != PENDING:
                facts = pending_facts(db, req.id)
                if facts.get("channel") and before is not None and before.status == PENDING:
                    diff.events.append(sync.Event(req.id, CHANNEL_CLOSED, CHANNEL,
                                                  {"request": request_to_dict(req), **facts,
                                                   **obs.context.get(req.id, {})}))
                self._settled(db, req.id, now)
        for rid in diff.settled:
            self._settled(db, rid, now)
        self._due_reminders(db, diff, now)

    # -- new requests ------------------------------------------------------------------------
    def _new_request(self, db, req: AccessRequest, ctx: Mapping[str, Any], diff: sync.Diff, now: datetime) -> None:
        if ctx.get("channel"):
            diff.events.append(sync.Event(req.id, CHANNEL_CARD, CHANNEL, {"request": request_to_dict(req), **ctx}))
        if self.policy.confirm_to_requester and (req.requested_at is None or now - req.requested_at <= CONFIRM_WITHIN):
            diff.events.append(sync.Event(req.id, REQUESTER_CONFIRMATION, req.requester_id,
                                          {"request": request_to_dict(req), **ctx}))
        state = ReminderState(req.requested_at or now)
        # Reminders already past when the relay first sees the request (a relay starting on a
        # backlog) are skipped: the approval message itself is the news.
        state = replace(state, sent=len(reminders_due(state, now, self.policy.reminders)))
        nxt = next_reminder_at(state, self.policy.reminders)
        kept = {k: ctx[k] for k in _KEPT if k in ctx}
        db.execute("INSERT INTO reminders (request_id, requested_at, sent, next_reminder_at, context) "
                   "VALUES (?, ?, ?, ?, ?) ON CONFLICT(request_id) DO UPDATE SET "
                   "next_reminder_at = excluded.next_reminder_at, context = excluded.context",
                   [req.id, state.requested_at.isoformat(), state.sent, nxt.isoformat() if nxt else None,
                    json.dumps(kept, sort_keys=True)])

    def _moved(self, db, req: AccessRequest, ctx: Mapping[str, Any], diff: sync.Diff) -> None:
        """A routed request still pending whose current step's reviewers changed: the workflow
        moved on. The channel card is rewritten to ask the new step's reviewers (its number
        counts the steps the relay has seen), and reminders name them from now on."""
        facts = pending_facts(db, req.id)
        if not facts or "reviewer_steps" not in ctx or facts.get("reviewer_steps") == ctx["reviewer_steps"]:
            return          # another change (a comment, a date), or nothing to compare with
        step = int(facts.get("step") or 1) + 1
        kept = {**facts, **{k: ctx[k] for k in _KEPT if k in ctx}, "step": step}
        db.execute("UPDATE reminders SET context = ? WHERE request_id = ?", [json.dumps(kept, sort_keys=True), req.id])
        diff.events.append(sync.Event(req.id, f"{CHANNEL_STEP_PREFIX}{step}", CHANNEL,
                                      {"request": request_to_dict(req), **ctx, "step": step}))

    def _settled(self, db, request_id: int, now: datetime) -> None:
        """Decided, canceled or gone: no reminder from now on, not even one already queued, and
        no confirmation or channel card still waiting to go out (they would offer stale buttons)."""
        db.execute("DELETE FROM reminders WHERE request_id = ?", [request_id])
        db.execute("UPDATE outbox SET state = 'superseded', finished_at = ?, last_error = ? "
                   "WHERE request_id = ? AND (event LIKE ? OR event IN (?, ?)) AND state = 'pending' "
                   "AND uncertain_since IS NULL",     # one in doubt is looked for first (delivery)
                   [now.isoformat(), "request no longer pending", request_id, REMINDER_PREFIX + "%",
                    REQUESTER_CONFIRMATION, CHANNEL_CARD])

    # -- per-reviewer facts ------------------------------------------------------------------
    @staticmethod
    def _annotate(diff: sync.Diff) -> None:
        """Approval messages say why this reviewer is asked: the recipient is in the payload."""
        diff.events[:] = [replace(ev, payload={**ev.payload, "recipient": ev.recipient})
                          if ev.kind == sync.APPROVAL_REQUESTED else ev for ev in diff.events]

    # -- reminders ---------------------------------------------------------------------------
    def _due_reminders(self, db, diff: sync.Diff, now: datetime) -> None:
        rows = db.execute("SELECT request_id, requested_at, sent, context FROM reminders "
                          "WHERE next_reminder_at IS NOT NULL AND next_reminder_at <= ?",
                          [now.isoformat()]).fetchall()
        for rid, requested_at, sent, context in rows:
            found = snapshot.get_request(db, rid)
            status = found[0].status if found else "gone"
            gone = db.execute("SELECT gone FROM access_requests WHERE id = ?", [rid]).fetchone()
            if gone and gone[0]:
                status = "gone"
            state = ReminderState(datetime.fromisoformat(requested_at), status, sent)
            due = reminders_due(state, now, self.policy.reminders)
            if not due or found is None:
                self._settled(db, rid, now) if status != PENDING else None
                continue
            number = due[-1]          # after a long pause, only the latest reminder is news
            req = found[0]
            ctx = json.loads(context)
            # An older reminder still waiting (quiet hours, a Slack outage) is no news any more.
            db.execute("UPDATE outbox SET state = 'superseded', finished_at = ?, last_error = ? "
                       "WHERE request_id = ? AND event LIKE ? AND state = 'pending'",
                       [now.isoformat(), "a later reminder replaces it", rid, REMINDER_PREFIX + "%"])
            recipients = sorted(self._told(db, rid)) + ([CHANNEL] if ctx.get("channel") else [])
            for uid in recipients:
                diff.events.append(sync.Event(rid, event_name(number), uid, {
                    "request": request_to_dict(req), **ctx, "reminder": number, "recipient": uid}))
            after = replace(state, sent=number)
            nxt = next_reminder_at(after, self.policy.reminders)
            db.execute("UPDATE reminders SET sent = ?, next_reminder_at = ? WHERE request_id = ?",
                       [number, nxt.isoformat() if nxt else None, rid])

    @staticmethod
    def _told(db, request_id: int) -> frozenset[int]:
        """Reviewers of the current step who were asked (and not since replaced by a step)."""
        told = snapshot.told(db, [request_id]).get(request_id, frozenset())
        found = snapshot.get_request(db, request_id)
        current = set(found[1].get("reviewers") or []) if found else set()
        return frozenset(u for u in told if u in current)


def pending_facts(db: Any, request_id: int) -> dict:
    """What the poll saw of a request still pending (folder_path, requester_name,
    reviewer_steps); empty once it is decided or when the relay has not seen it."""
    row = db.execute("SELECT context FROM reminders WHERE request_id = ?", [request_id]).fetchone()
    return json.loads(row[0]) if row else {}
