"""From what Secret Server shows to who must be told what: pure functions, no I/O.

`plan()` says what to read individually after a listing (only what changed), `diff()` turns
the snapshot plus the observation into snapshot updates and events. Sync never imports Slack:
recipients are SS user ids; mapping them to Slack happens at delivery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import AbstractSet, Mapping, NamedTuple

from .model import (APPROVED, CANCELED, DENIED, EXPIRED, PENDING, AccessRequest,
                    request_to_dict)

# Event kinds (the `event` column of the outbox).
APPROVAL_REQUESTED = "approval_requested"   # to a reviewer: Approve / Deny
CANCELED_NOTICE = "canceled"                 # to a reviewer who was told
APPROVED_NOTICE = "approved"                 # to the requester
DENIED_NOTICE = "denied"                     # to the requester
REVIEW_CLOSED = "review_closed"              # to a reviewer's DM card: final state, no buttons
EXPIRED_NOTICE = "expired"                   # to the requester: access has ended


class Known(NamedTuple):
    """What the snapshot holds for one request: just enough to diff. A NamedTuple, since a
    no-change poll loads thousands of them."""

    status: str
    fingerprint: str
    requester_id: int
    expiration: datetime | None = None
    reviewers: frozenset[int] = frozenset()

    @classmethod
    def of(cls, req: AccessRequest, reviewers: frozenset[int] = frozenset()) -> "Known":
        return cls(req.status, req.fingerprint, req.requester_id, req.expiration, reviewers)


@dataclass(frozen=True)
class Plan:
    """What to read individually after a listing: O(changes), never O(all)."""

    new: tuple[int, ...] = ()        # in the listing, not (pending) in the snapshot: read reviewers
    moved: tuple[int, ...] = ()      # pending in both, listing record changed: re-read reviewers
    vanished: tuple[int, ...] = ()   # pending in the snapshot, not in the listing: read it
    expiring: tuple[int, ...] = ()   # approved, window passed: read it to confirm the end

    @property
    def reviewer_reads(self) -> tuple[int, ...]:
        return self.new + self.moved

    @property
    def request_reads(self) -> tuple[int, ...]:
        return self.vanished + self.expiring


@dataclass(frozen=True)
class Observation:
    """One poll's view of Secret Server, complete or not at all."""

    now: datetime
    pending: Mapping[int, AccessRequest]                 # Pending requests, parsed: at least the plan's reviewer_reads
    listed: AbstractSet[int] | None = None               # ids of the whole Pending listing (default: pending's keys)
    reviewers: Mapping[int, tuple[int, ...]] = field(default_factory=dict)  # current step, for plan.reviewer_reads
    resolved: Mapping[int, AccessRequest | None] = field(default_factory=dict)  # plan.request_reads; None = unreadable
    decided_while_away: Mapping[int, AccessRequest] = field(default_factory=dict)  # catch-up listing
    context: Mapping[int, dict] = field(default_factory=dict)  # per request: folder_name, requester_name


@dataclass(frozen=True)
class Event:
    request_id: int
    kind: str
    recipient: int          # SS user id
    payload: dict


@dataclass(frozen=True)
class Policy:
    reviewer_cards: bool = False     # DM mode: reviewers' cards follow the request to its end
    notify_expiry: bool = True


@dataclass
class Diff:
    upserts: list[tuple[AccessRequest, tuple[int, ...]]] = field(default_factory=list)
    gone: list[int] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    settled: list[int] = field(default_factory=list)  # requests whose unsent approval messages are moot


def plan(known: Mapping[int, Known], listing: Mapping[int, str], now: datetime) -> Plan:
    """`listing` maps each listed Pending request id to its fingerprint."""
    new, moved, vanished, expiring = [], [], [], []
    for rid, fingerprint in listing.items():
        k = known.get(rid)
        if k is None or k.status != PENDING:
            new.append(rid)
        elif k.fingerprint != fingerprint:
            moved.append(rid)
    for rid, k in known.items():
        if k.status == PENDING and rid not in listing:
            vanished.append(rid)
        elif (k.status == APPROVED and k.expiration is not None
              and k.expiration <= now and rid not in listing):
            expiring.append(rid)
    return Plan(tuple(sorted(new)), tuple(sorted(moved)), tuple(sorted(vanished)), tuple(sorted(expiring)))


def diff(known: Mapping[int, Known], obs: Observation, told: Mapping[int, frozenset[int]],
         policy: Policy = Policy()) -> Diff:
    """Snapshot + observation -> what to store and whom to tell.

    `told[request_id]` holds the reviewers whose approval message was sent or is being sent.
    """
    out = Diff()

    def payload(req: AccessRequest) -> dict:
        return {"request": request_to_dict(req), **obs.context.get(req.id, {})}

    def ask(req: AccessRequest, reviewers: tuple[int, ...]) -> None:
        already = told.get(req.id, frozenset())
        for uid in sorted(set(reviewers)):
            if uid != req.requester_id and uid not in already:
                out.events.append(Event(req.id, APPROVAL_REQUESTED, uid, payload(req)))

    def close(req: AccessRequest, requester_kind: str | None, reviewer_kind: str | None) -> None:
        out.settled.append(req.id)
        if requester_kind:
            out.events.append(Event(req.id, requester_kind, req.requester_id, payload(req)))
        if reviewer_kind:
            for uid in sorted(told.get(req.id, frozenset())):
                out.events.append(Event(req.id, reviewer_kind, uid, payload(req)))

    for rid in sorted(obs.pending):
        req = obs.pending[rid]
        k = known.get(rid)
        if k is not None and k.status == PENDING and k.fingerprint == req.fingerprint:
            continue
        reviewers = obs.reviewers.get(rid)
        if reviewers is None:          # not read this cycle (cannot happen when plan() was followed)
            continue
        out.upserts.append((req, tuple(sorted(set(reviewers)))))
        ask(req, reviewers)

    for rid in sorted(obs.resolved):
        k = known.get(rid)
        if k is None:
            continue
        req = obs.resolved[rid]
        if req is None:
            out.gone.append(rid)
            out.settled.append(rid)
            continue
        before = k.status
        reviewers = tuple(sorted(k.reviewers))
        if req.status == before and not (before == APPROVED and _ended(req, obs.now)):
            if req.fingerprint != k.fingerprint:
                out.upserts.append((req, reviewers))
            continue
        if before == PENDING:
            if req.status == PENDING:
                continue               # listing raced with a change; next cycle sees it
            out.upserts.append((req, reviewers))
            if req.status == CANCELED:
                close(req, None, CANCELED_NOTICE)
            elif req.status == APPROVED:
                close(req, APPROVED_NOTICE, REVIEW_CLOSED if policy.reviewer_cards else None)
            elif req.status == DENIED:
                close(req, DENIED_NOTICE, REVIEW_CLOSED if policy.reviewer_cards else None)
            elif req.status == EXPIRED:   # approved and over between two polls
                close(req, EXPIRED_NOTICE if policy.notify_expiry else None,
                      REVIEW_CLOSED if policy.reviewer_cards else None)
        elif before == APPROVED:
            if req.status in (EXPIRED, APPROVED):
                ended = req if req.status == EXPIRED else _with_status(req, EXPIRED)
                out.upserts.append((ended, reviewers))
                if policy.notify_expiry:
                    out.events.append(Event(rid, EXPIRED_NOTICE, req.requester_id, payload(ended)))
            elif req.status == DENIED:
                out.upserts.append((req, reviewers))
                out.events.append(Event(rid, DENIED_NOTICE, req.requester_id, payload(req)))
            else:
                out.upserts.append((req, reviewers))

    listed = obs.pending.keys() if obs.listed is None else obs.listed
    for rid in sorted(obs.decided_while_away):
        if rid in known or rid in listed:
            continue
        req = obs.decided_while_away[rid]
        out.upserts.append((req, ()))
        kind = {APPROVED: APPROVED_NOTICE, DENIED: DENIED_NOTICE}.get(req.status)
        if kind:
            out.events.append(Event(rid, kind, req.requester_id, payload(req)))
    return out


def catch_up_window(last_success: datetime | None, now: datetime, hours: float) -> datetime | None:
    """Since when decisions made while the relay was away are still news (None: do not look)."""
    if last_success is None or hours <= 0:
        return None
    return max(last_success - timedelta(minutes=5), now - timedelta(hours=hours))


def _ended(req: AccessRequest, now: datetime) -> bool:
    return req.expiration is not None and req.expiration <= now


def _with_status(req: AccessRequest, status: str) -> AccessRequest:
    from dataclasses import replace
    return replace(req, status=status)
