"""Properties of `diff` over generated polls (hypothesis): what holds for every snapshot and
every observation, not just the stories in test_sync*.py.

A poll is modelled as `plan()` would shape it: ids in the Pending listing, ids read
individually (known to the snapshot, not listed) and decided requests (unknown to the
snapshot) are disjoint.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from relay.model import APPROVED, PENDING, STATUSES, AccessRequest
from relay.sync import APPROVAL_REQUESTED, Diff, Event, Known, Observation, Policy, diff

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
PEOPLE = (11, 12, 13, 20, 21)            # 20 and 21 also request
EXPIRATIONS = (None, NOW - timedelta(hours=1), NOW, NOW + timedelta(hours=1))
# Derandomized and small: the core unit tests stay under 5 s and mutation runs are repeatable.
DECIDED_AT = (None, NOW - timedelta(hours=1), NOW - timedelta(minutes=10))
FAST = settings(max_examples=25, deadline=None, derandomize=True, database=None)


@st.composite
def requests(draw, rid: int, statuses=STATUSES) -> AccessRequest:
    return AccessRequest(
        id=rid, secret_id=1000 + rid, secret_name=f"db-{rid}", folder_id=10,
        requester_id=draw(st.sampled_from((20, 21))), requester_username="rita",
        status=draw(st.sampled_from(statuses)), review_status=draw(st.sampled_from(("", "Step 1", "Step 2"))),
        decided_by=draw(st.sampled_from(("", "Alice"))), expiration=draw(st.sampled_from(EXPIRATIONS)),
        decided_at=draw(st.sampled_from(DECIDED_AT)))


@st.composite
def polls(draw) -> tuple[dict[int, Known], Observation, dict[int, frozenset[int]]]:
    known: dict[int, Known] = {}
    pending: dict[int, AccessRequest] = {}
    reviewers: dict[int, tuple[int, ...]] = {}
    resolved: dict[int, AccessRequest | None] = {}
    decided: dict[int, AccessRequest] = {}
    told: dict[int, frozenset[int]] = {}
    people = st.lists(st.sampled_from(PEOPLE), max_size=4).map(tuple)
    for rid in range(1, draw(st.integers(1, 8)) + 1):
        role = draw(st.sampled_from(("listed", "resolved", "decided")))
        if role == "listed":
            now = draw(requests(rid, (PENDING,)))
            pending[rid] = now
            if draw(st.booleans()):
                before = draw(st.sampled_from((now, draw(requests(rid, (PENDING, APPROVED))))))
                known[rid] = Known.of(before, frozenset(draw(people)))
            if draw(st.integers(0, 4)):          # mostly read; sometimes not (plan not followed)
                reviewers[rid] = draw(people)
        elif role == "resolved":
            before = draw(requests(rid, (PENDING, APPROVED)))
            known[rid] = Known.of(before, frozenset(draw(people)))
            resolved[rid] = draw(st.one_of(st.none(), st.just(before), requests(rid)))
        else:
            decided[rid] = draw(requests(rid, ("Approved", "Denied", "Canceled", "Expired")))
        if draw(st.booleans()):
            told[rid] = frozenset(draw(people))
    obs = Observation(now=NOW, pending=pending, reviewers=reviewers, resolved=resolved,
                      decided=decided, since=draw(st.sampled_from((None, NOW - timedelta(minutes=30)))))
    return known, obs, told


policies = st.builds(Policy, reviewer_cards=st.booleans(), notify_expiry=st.booleans())


def apply(known: dict[int, Known], told: dict[int, frozenset[int]], out: Diff):
    """What the next poll would load after `out` was recorded (as store/snapshot.py does):
    the snapshot keeps watching Pending and Approved requests that are not gone; approval
    messages become "told"; every upserted id is seen (so not news as a decided request)."""
    known = dict(known)
    for req, revs in out.upserts:
        if req.status in (PENDING, APPROVED):
            known[req.id] = Known.of(req, frozenset(revs))
        else:
            known.pop(req.id, None)
    for rid in out.gone:
        known.pop(rid, None)
    told = {k: set(v) for k, v in told.items()}
    for e in out.events:
        if e.kind == APPROVAL_REQUESTED:
            told.setdefault(e.request_id, set()).add(e.recipient)
    seen = {req.id for req, _ in out.upserts}
    return known, {k: frozenset(v) for k, v in told.items()}, seen


def keys(events: list[Event]) -> list[tuple[int, str, int]]:
    return [(e.request_id, e.kind, e.recipient) for e in events]


def shuffled(d: dict, rnd: random.Random) -> dict:
    items = list(d.items())
    rnd.shuffle(items)
    return dict(items)


@FAST
@given(polls(), policies)
def test_recording_a_diff_then_diffing_the_same_observation_tells_nobody(poll, policy):
    known, obs, told = poll
    first = diff(known, obs, told, policy)
    known2, told2, seen = apply(known, told, first)
    again = Observation(now=obs.now, pending=obs.pending, reviewers=obs.reviewers, resolved=obs.resolved,
                        since=obs.since,
                        decided={k: v for k, v in obs.decided.items() if k not in seen})
    second = diff(known2, again, told2, policy)
    assert second.events == []
    assert second.gone == []


@FAST
@given(polls(), policies, st.randoms(use_true_random=False))
def test_events_do_not_depend_on_the_order_requests_arrive_in(poll, policy, rnd):
    known, obs, told = poll
    mixed = Observation(
        now=obs.now, pending=shuffled(dict(obs.pending), rnd),
        reviewers={k: tuple(rnd.sample(v, len(v))) for k, v in shuffled(dict(obs.reviewers), rnd).items()},
        resolved=shuffled(dict(obs.resolved), rnd), decided=shuffled(dict(obs.decided), rnd), since=obs.since)
    assert diff(shuffled(known, rnd), mixed, shuffled(told, rnd), policy) == diff(known, obs, told, policy)


@FAST
@given(polls(), policies)
def test_events_are_a_function_of_each_request_s_own_change(poll, policy):
    known, obs, told = poll
    whole = diff(known, obs, told, policy)
    ids = set(known) | set(obs.pending) | set(obs.resolved) | set(obs.decided)
    alone: list[Event] = []
    for rid in sorted(ids):
        one = Observation(
            now=obs.now, pending={k: v for k, v in obs.pending.items() if k == rid},
            listed=set(obs.pending),
            reviewers={k: v for k, v in obs.reviewers.items() if k == rid},
            resolved={k: v for k, v in obs.resolved.items() if k == rid},
            decided={k: v for k, v in obs.decided.items() if k == rid}, since=obs.since)
        alone += diff({k: v for k, v in known.items() if k == rid}, one,
                      {k: v for k, v in told.items() if k == rid}, policy).events
    assert sorted(keys(whole.events)) == sorted(keys(alone))
    assert sorted(whole.events, key=lambda e: (e.request_id, e.kind, e.recipient)) == \
        sorted(alone, key=lambda e: (e.request_id, e.kind, e.recipient))


@FAST
@given(polls(), policies)
def test_event_keys_are_unique_and_nobody_is_asked_to_review_their_own_request(poll, policy):
    known, obs, told = poll
    out = diff(known, obs, told, policy)
    assert len(set(keys(out.events))) == len(out.events)     # the outbox's (request, event, recipient)
    requester = {r.id: r.requester_id for r in obs.pending.values()}
    for e in out.events:
        if e.kind == APPROVAL_REQUESTED:
            assert e.recipient != requester[e.request_id]
            assert e.recipient not in told.get(e.request_id, frozenset())
