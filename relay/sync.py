"""From what Secret Server shows to who must be told what: pure functions, no I/O.

`plan()` says what to read individually after a listing (only what changed), `diff()` turns
the snapshot plus the observation into snapshot updates and events. Sync never imports Slack:
recipients are SS user ids; mapping them to Slack happens at delivery.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from .model import (
    APPROVED,
    CANCELED,
    DENIED,
    EXPIRED,
    PENDING,
    AccessRequest,
    RequestStatus,
    request_to_dict,
)


class EventKind(StrEnum):
    """Who is told what: the `event` column of the outbox (each member is its stored string)."""

    APPROVAL_REQUESTED = "approval_requested"   # to a reviewer: Approve / Deny
    CANCELED = "canceled"                       # to a reviewer who was told
    APPROVED = "approved"                       # to the requester
    DENIED = "denied"                           # to the requester
    REVIEW_CLOSED = "review_closed"             # to a reviewer's DM card: final state, no buttons
    EXPIRED = "expired"                         # to the requester: access has ended
    STEP_PASSED = "step_passed"                 # to a reviewer's DM card: the workflow moved past them


APPROVAL_REQUESTED = EventKind.APPROVAL_REQUESTED
CANCELED_NOTICE = EventKind.CANCELED
APPROVED_NOTICE = EventKind.APPROVED
DENIED_NOTICE = EventKind.DENIED
REVIEW_CLOSED = EventKind.REVIEW_CLOSED
EXPIRED_NOTICE = EventKind.EXPIRED
STEP_PASSED = EventKind.STEP_PASSED

# What an event carries: the request as a JSON-safe dict, plus its context (folder and
# requester names).
Payload = dict[str, Any]


class Known(NamedTuple):
    """What the snapshot holds for one request: just enough to diff. A NamedTuple, since a
    no-change poll loads thousands of them."""

    status: RequestStatus
    fingerprint: str
    requester_id: int
    expiration: datetime | None = None
    reviewers: frozenset[int] = frozenset()

    @classmethod
    def of(cls, req: AccessRequest, reviewers: frozenset[int] = frozenset()) -> Known:
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
    context: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)  # per request: folder_name, requester_name


@dataclass(frozen=True)
class Event:
    request_id: int
    kind: EventKind | str   # a follow-up's own kinds (relay.followups) are plain strings
    recipient: int          # SS user id
    payload: Payload


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
    new: list[int] = []
    moved: list[int] = []
    for rid, fingerprint in listing.items():
        k = known.get(rid)
        if k is None or k.status != PENDING:
            new.append(rid)
        elif k.fingerprint != fingerprint:
            moved.append(rid)
    vanished = [rid for rid, k in known.items() if k.status == PENDING and rid not in listing]
    expiring = [rid for rid, k in known.items() if _expiring(k, now) and rid not in listing]
    return Plan(tuple(sorted(new)), tuple(sorted(moved)), tuple(sorted(vanished)), tuple(sorted(expiring)))


def _expiring(k: Known, now: datetime) -> bool:
    """An approval whose window has passed: read it to confirm the end."""
    return k.status == APPROVED and k.expiration is not None and k.expiration <= now


def diff(known: Mapping[int, Known], obs: Observation, told: Mapping[int, frozenset[int]],
         policy: Policy = Policy()) -> Diff:
    """Snapshot + observation -> what to store and whom to tell.

    `told[request_id]` holds the reviewers who may have seen its approval message: sent, in
    flight, or interrupted in flight. Requests are taken in id order within each part of the
    observation: the listing, the requests read one by one, the decided listing.
    """
    out = _Builder(obs, told, policy)
    for rid in sorted(obs.pending):
        out.listed(rid, obs.pending[rid], known.get(rid))
    for rid in sorted(obs.resolved):
        k = known.get(rid)
        if k is not None:
            out.resolved(rid, obs.resolved[rid], k)
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

    # Helpers shared by the transitions.

    def payload(self, req: AccessRequest) -> Payload:
        return {"request": request_to_dict(req), **self.obs.context.get(req.id, {})}

    def tell(self, req: AccessRequest, kind: EventKind, recipient: int) -> None:
        self.diff.events.append(Event(req.id, kind, recipient, self.payload(req)))

    def store(self, req: AccessRequest, reviewers: AbstractSet[int] | tuple[int, ...]) -> None:
        self.diff.upserts.append((req, tuple(sorted(set(reviewers)))))

    def ask(self, req: AccessRequest, reviewers: tuple[int, ...]) -> None:
        already = self.told.get(req.id, frozenset())
        for uid in sorted(set(reviewers)):
            if uid != req.requester_id and uid not in already:
                self.tell(req, APPROVAL_REQUESTED, uid)

    def close(self, req: AccessRequest, requester_kinds: tuple[EventKind, ...],
              reviewer_kind: EventKind | None) -> None:
        """A request left Pending: unsent asks are moot, the requester and the reviewers who
        may have seen an ask hear what happened."""
        self.diff.settled.append(req.id)
        for kind in requester_kinds:
            self.tell(req, kind, req.requester_id)
        if reviewer_kind:
            for uid in sorted(self.told.get(req.id, frozenset())):
                self.tell(req, reviewer_kind, uid)

    def outcome(self, req: AccessRequest) -> tuple[AccessRequest, tuple[EventKind, ...]]:
        """What the requester hears about a decision first seen now, and the request as it is
        to be stored. An approval whose window is already over (SS says Expired, or Approved
        with a past expirationDate) is told as "approved", then "has ended"."""
        ended: tuple[EventKind, ...] = (EXPIRED_NOTICE,) if self.policy.notify_expiry else ()
        if req.status == APPROVED and _ended(req, self.obs.now):
            return _with_status(req, EXPIRED), (APPROVED_NOTICE, *ended)
        if req.status == APPROVED:
            return req, (APPROVED_NOTICE,)
        if req.status == EXPIRED:
            return req, (APPROVED_NOTICE, *ended)
        if req.status == DENIED:
            return req, (DENIED_NOTICE,)
        return req, ()

    # In the Pending listing.

    def listed(self, rid: int, req: AccessRequest, k: Known | None) -> None:
        """A request in the Pending listing: new to the relay, or its step moved on, or
        unchanged (nothing to do)."""
        if k is not None and k.status == PENDING and k.fingerprint == req.fingerprint:
            return
        reviewers = self.obs.reviewers.get(rid)
        if reviewers is None:          # not read this cycle (cannot happen when plan() was followed)
            return
        self.new_or_moved(req, reviewers)
        if k is not None and k.status == PENDING:
            self.step_passed(req, reviewers)

    def step_passed(self, req: AccessRequest, reviewers: tuple[int, ...]) -> None:
        """Still Pending, and the current step's reviewers changed: the workflow moved on.
        Reviewers asked before who are not reviewers of this step have their DM cards closed
        (when the policy keeps cards): their buttons no longer apply. A person asked once is
        not asked again at a later step (one ask per person per request); the Home tab still
        lists the request for them."""
        if not self.policy.reviewer_cards:
            return
        for uid in sorted(self.told.get(req.id, frozenset()) - set(reviewers)):
            self.tell(req, STEP_PASSED, uid)

    def new_or_moved(self, req: AccessRequest, reviewers: tuple[int, ...]) -> None:
        """First seen Pending (or Pending again), or still Pending with a changed listing
        record (a workflow step advanced): both store the current step and ask its reviewers
        who were not asked yet (`told`), so one transition serves both."""
        self.store(req, reviewers)
        self.ask(req, reviewers)

    # Watched requests read one by one (left the Pending listing, or an approval ending).

    def resolved(self, rid: int, req: AccessRequest | None, k: Known) -> None:
        if req is None:
            self.vanished(rid)
        elif k.status == PENDING:
            self.left_pending(req, k)
        elif k.status == APPROVED:
            self.approval_changed(req, k)

    def vanished(self, rid: int) -> None:
        """Out of the listing and unreadable (deleted, or hidden from the relay account): no
        longer watched, and its unsent asks are moot."""
        self.diff.gone.append(rid)
        self.diff.settled.append(rid)

    def left_pending(self, req: AccessRequest, k: Known) -> None:
        if req.status == PENDING:
            self.still_pending(req, k)
        elif req.status == CANCELED:
            self.canceled(req, k)
        else:
            self.decided(req, k)

    def still_pending(self, req: AccessRequest, k: Known) -> None:
        """Out of the listing but Pending when read: the listing raced with a change; the next
        cycle sees it. Only a changed record is stored."""
        if req.fingerprint != k.fingerprint:
            self.store(req, k.reviewers)

    def canceled(self, req: AccessRequest, k: Known) -> None:
        """The requester withdrew: the reviewers who may have seen the ask are told."""
        self.store(req, k.reviewers)
        self.close(req, (), CANCELED_NOTICE)

    def decided(self, req: AccessRequest, k: Known) -> None:
        """Approved, denied (or already over) while the relay watched it Pending: the
        requester hears the outcome; reviewers' DM cards close when the policy keeps them."""
        stored, kinds = self.outcome(req)
        self.store(stored, k.reviewers)
        self.close(stored, kinds, REVIEW_CLOSED if self.policy.reviewer_cards else None)

    def approval_changed(self, req: AccessRequest, k: Known) -> None:
        if req.status == APPROVED and not _ended(req, self.obs.now):
            self.still_approved(req, k)
        elif req.status in (EXPIRED, APPROVED):
            self.expired(req, k)
        elif req.status == DENIED:
            self.decided_away(req, k)
        else:
            self.store(req, k.reviewers)

    def still_approved(self, req: AccessRequest, k: Known) -> None:
        """The window is still open: only a changed record is stored."""
        if req.fingerprint != k.fingerprint:
            self.store(req, k.reviewers)

    def expired(self, req: AccessRequest, k: Known) -> None:
        """SS says Expired, or Approved with a past expiration: stored as Expired, and the
        requester hears that access has ended."""
        ended = req if req.status == EXPIRED else _with_status(req, EXPIRED)
        self.store(ended, k.reviewers)
        if self.policy.notify_expiry:
            self.tell(ended, EXPIRED_NOTICE, req.requester_id)

    def decided_away(self, req: AccessRequest, k: Known) -> None:
        """An approval turned into a denial: the requester hears it."""
        self.store(req, k.reviewers)
        self.tell(req, DENIED_NOTICE, req.requester_id)

    # Only in the decided listing.

    def decided_unseen(self, req: AccessRequest) -> None:
        """A request decided before any poll saw it Pending: its requester hears the outcome
        once; nobody is asked. An ended approval is news only when the approval itself falls
        in the decision window (older ones were over before the relay could have told them)."""
        stored, kinds = self.outcome(req)
        if req.status == EXPIRED and not self._approved_in_window(req):
            kinds = ()
        self.store(stored, ())
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


def _with_status(req: AccessRequest, status: RequestStatus) -> AccessRequest:
    return replace(req, status=status)
