"""From what Secret Server shows to who must be told what: pure functions, no I/O.

`plan()` says what to read individually after a listing (only what changed), `diff()` turns
the snapshot plus the observation into snapshot updates and events. Sync never imports Slack:
recipients are SS user ids; mapping them to Slack happens at delivery.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
    decided: Mapping[int, AccessRequest] = field(default_factory=dict)   # decided in the window, never seen by the snapshot
    since: datetime | None = None                        # start of the decision window
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

    `told[request_id]` holds the reviewers who may have seen its approval message: sent, in
    flight, or interrupted in flight.
    """
    out = _Builder(obs, told, policy)
    for rid in sorted(obs.pending):
        req = obs.pending[rid]
        k = known.get(rid)
        if k is not None and k.status == PENDING and k.fingerprint == req.fingerprint:
            continue
        reviewers = obs.reviewers.get(rid)
        if reviewers is None:          # not read this cycle (cannot happen when plan() was followed)
            continue
        out.diff.upserts.append((req, tuple(sorted(set(reviewers)))))
        out.ask(req, reviewers)

    for rid in sorted(obs.resolved):
        k = known.get(rid)
        if k is None:
            continue
        now_is = obs.resolved[rid]
        if now_is is None:
            out.diff.gone.append(rid)
            out.diff.settled.append(rid)
        elif k.status == PENDING:
            out.pending_resolved(now_is, k)
        elif k.status == APPROVED:
            out.approved_resolved(now_is, k)

    listed = obs.pending.keys() if obs.listed is None else obs.listed
    for rid in sorted(obs.decided):
        if rid not in known and rid not in listed:
            out.decided_unseen(obs.decided[rid])
    return out.diff


class _Builder:
    """Collects one diff: one method per transition."""

    def __init__(self, obs: Observation, told: Mapping[int, frozenset[int]], policy: Policy):
        self.obs, self.told, self.policy = obs, told, policy
        self.diff = Diff()

    def payload(self, req: AccessRequest) -> dict:
        return {"request": request_to_dict(req), **self.obs.context.get(req.id, {})}

    def tell(self, req: AccessRequest, kind: str, recipient: int) -> None:
        self.diff.events.append(Event(req.id, kind, recipient, self.payload(req)))

    def ask(self, req: AccessRequest, reviewers: tuple[int, ...]) -> None:
        already = self.told.get(req.id, frozenset())
        for uid in sorted(set(reviewers)):
            if uid != req.requester_id and uid not in already:
                self.tell(req, APPROVAL_REQUESTED, uid)

    def close(self, req: AccessRequest, requester_kinds: tuple[str, ...], reviewer_kind: str | None) -> None:
        """A request left Pending: unsent asks are moot, the requester and the reviewers who
        may have seen an ask hear what happened."""
        self.diff.settled.append(req.id)
        for kind in requester_kinds:
            self.tell(req, kind, req.requester_id)
        if reviewer_kind:
            for uid in sorted(self.told.get(req.id, frozenset())):
                self.tell(req, reviewer_kind, uid)

    def outcome(self, req: AccessRequest) -> tuple[AccessRequest, tuple[str, ...]]:
        """What the requester hears about a decision first seen now, and the request as it is
        to be stored. An approval whose window is already over (SS says Expired, or Approved
        with a past expirationDate) is told as "approved", then "has ended"."""
        ended: tuple[str, ...] = (EXPIRED_NOTICE,) if self.policy.notify_expiry else ()
        if req.status == APPROVED and _ended(req, self.obs.now):
            return _with_status(req, EXPIRED), (APPROVED_NOTICE, *ended)
        if req.status == APPROVED:
            return req, (APPROVED_NOTICE,)
        if req.status == EXPIRED:
            return req, (APPROVED_NOTICE, *ended)
        if req.status == DENIED:
            return req, (DENIED_NOTICE,)
        return req, ()

    def pending_resolved(self, req: AccessRequest, k: Known) -> None:
        if req.status == PENDING:
            if req.fingerprint != k.fingerprint:
                self.diff.upserts.append((req, tuple(sorted(k.reviewers))))
            return                     # the listing raced with a change; next cycle sees it
        stored, kinds = self.outcome(req)
        self.diff.upserts.append((stored, tuple(sorted(k.reviewers))))
        if req.status == CANCELED:
            self.close(stored, (), CANCELED_NOTICE)
        else:
            self.close(stored, kinds, REVIEW_CLOSED if self.policy.reviewer_cards else None)

    def approved_resolved(self, req: AccessRequest, k: Known) -> None:
        reviewers = tuple(sorted(k.reviewers))
        if req.status == APPROVED and not _ended(req, self.obs.now):
            if req.fingerprint != k.fingerprint:
                self.diff.upserts.append((req, reviewers))
            return
        if req.status in (EXPIRED, APPROVED):
            ended = req if req.status == EXPIRED else _with_status(req, EXPIRED)
            self.diff.upserts.append((ended, reviewers))
            if self.policy.notify_expiry:
                self.tell(ended, EXPIRED_NOTICE, req.requester_id)
        elif req.status == DENIED:
            self.diff.upserts.append((req, reviewers))
            self.tell(req, DENIED_NOTICE, req.requester_id)
        else:
            self.diff.upserts.append((req, reviewers))

    def decided_unseen(self, req: AccessRequest) -> None:
        """A request decided before any poll saw it Pending: its requester hears the outcome
        once; nobody is asked. An ended approval is news only when the approval itself falls
        in the decision window (older ones were over before the relay could have told them)."""
        stored, kinds = self.outcome(req)
        if req.status == EXPIRED and not self._approved_in_window(req):
            kinds = ()
        self.diff.upserts.append((stored, ()))
        for kind in kinds:
            self.tell(stored, kind, req.requester_id)

    def _approved_in_window(self, req: AccessRequest) -> bool:
        since = self.obs.since
        return req.decided_at is not None and (since is None or req.decided_at >= since)


# A running relay always looks back at least this far, whatever `poll.catch_up_hours` says:
# decisions made since the previous poll are news, not catch-up.
STEADY_WINDOW = timedelta(minutes=10)
# SS and the relay read different clocks: look back this much before the last successful poll.
CLOCK_MARGIN = timedelta(minutes=5)


def decision_window(last_success: datetime | None, now: datetime, catch_up_hours: float) -> datetime | None:
    """Since when decisions are news: the last successful poll (less a margin for clock skew),
    but after downtime never further back than `catch_up_hours` (nor less than
    STEADY_WINDOW). None on a fresh database: old decisions are not news."""
    if last_success is None:
        return None
    floor = now - max(timedelta(hours=catch_up_hours), STEADY_WINDOW)
    return max(last_success - CLOCK_MARGIN, floor)


def _ended(req: AccessRequest, now: datetime) -> bool:
    return req.expiration is not None and req.expiration <= now


def _with_status(req: AccessRequest, status: str) -> AccessRequest:
    return replace(req, status=status)
