"""`plan` and `diff` over several requests at once, each transition with its literal events.

Every test mixes requests so that skipping one (a `continue` turned into a `break`, a lost
`sorted`) changes the expected list. Plain data in, plain data out: no I/O.
"""

from __future__ import annotations

from dataclasses import replace as _replace
from datetime import UTC, datetime, timedelta

from relay.model import AccessRequest, request_to_dict
from relay.sync import (
    Diff,
    Event,
    Known,
    Observation,
    Plan,
    Policy,
    decision_window,
    diff,
    plan,
)

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
ALICE, BOB, CAROL, DAVE = 11, 12, 13, 14
RITA, SAM = 20, 21          # requesters
DM = Policy(reviewer_cards=True)


def req(rid: int, status: str = "Pending", requester: int = RITA, **kw) -> AccessRequest:
    base: dict = {"id": rid, "secret_id": 1000 + rid, "secret_name": f"db-{rid}", "folder_id": 10,
                  "requester_id": requester, "requester_username": f"user-{requester}", "status": status,
                  "comment": "deploy"}
    base.update(kw)
    return AccessRequest(**base)


def replace(r: AccessRequest, **changes) -> AccessRequest:
    """The request as SS would show it after `changes` (its fingerprint derived anew)."""
    return _replace(r, fingerprint="", **changes)


def ev(r: AccessRequest, kind: str, recipient: int, **ctx: str) -> Event:
    return Event(r.id, kind, recipient, {"request": request_to_dict(r), **ctx})


# -- plan ------------------------------------------------------------------------------------

def test_plan_sorts_each_kind_of_read_across_many_requests():
    p1, p2, p3 = req(1), req(2), req(3)
    approved_over = req(4, "Approved", expiration=NOW)                       # exactly at its end
    approved_later = req(5, "Approved", expiration=NOW + timedelta(seconds=1))
    approved_open = req(6, "Approved")                                        # no end known
    approved_relisted = req(7, "Approved", expiration=NOW - timedelta(hours=1))
    denied = req(8, "Denied")
    p9 = req(9)
    known = {9: Known.of(p9), 3: Known.of(p3), 2: Known.of(p2), 1: Known.of(p1),
             4: Known.of(approved_over), 5: Known.of(approved_later), 6: Known.of(approved_open),
             7: Known.of(approved_relisted), 8: Known.of(denied)}
    listing = {12: "x", 7: "y", 3: "changed", 2: p2.fingerprint, 10: "z", 8: "w"}
    assert plan(known, listing, NOW) == Plan(new=(7, 8, 10, 12), moved=(3,), vanished=(1, 9), expiring=(4,))


def test_plan_reads_reviewers_for_new_then_moved_and_requests_for_vanished_then_expiring():
    p = Plan(new=(5, 1), moved=(3,), vanished=(9,), expiring=(2, 4))
    assert p.reviewer_reads == (5, 1, 3)
    assert p.request_reads == (9, 2, 4)
    assert Plan() == Plan((), (), (), ())


def test_known_of_keeps_what_the_diff_needs():
    r = req(1, "Approved", expiration=NOW, review_status="Step 2 of 2")
    assert Known.of(r, frozenset({ALICE})) == ("Approved", r.fingerprint, RITA, NOW, frozenset({ALICE}))
    assert Known.of(r) == ("Approved", r.fingerprint, RITA, NOW, frozenset())


# -- new and moved pending requests -------------------------------------------------------------

def test_several_new_requests_ask_their_reviewers_in_request_order_never_the_requester():
    # Rita asks for 1 and 3, Sam for 2; Sam reviews Rita's requests and is a reviewer of his own.
    r1, r2, r3 = req(1), req(2, requester=SAM), req(3)
    obs = Observation(now=NOW, pending={3: r3, 1: r1, 2: r2},
                      reviewers={1: (BOB, SAM, ALICE, BOB), 2: (SAM, ALICE), 3: (RITA, CAROL)},
                      context={2: {"folder_name": "DBs", "requester_name": "Sam"}})
    out = diff({}, obs, told={})
    assert out == Diff(
        upserts=[(r1, (ALICE, BOB, SAM)), (r2, (ALICE, SAM)), (r3, (CAROL, RITA))],
        events=[ev(r1, "approval_requested", ALICE), ev(r1, "approval_requested", BOB),
                ev(r1, "approval_requested", SAM),
                ev(r2, "approval_requested", ALICE, folder_name="DBs", requester_name="Sam"),
                ev(r3, "approval_requested", CAROL)])


def test_unchanged_and_unread_requests_do_not_stop_the_ones_after_them():
    same, unread, moved_before, moved_after, fresh = req(1), req(2), req(3), req(3, review_status="Step 2"), req(4)
    known = {1: Known.of(same, frozenset({ALICE})), 3: Known.of(moved_before, frozenset({ALICE}))}
    # 1's reviewers were read too (say, a full re-read), but its record did not change: not news.
    obs = Observation(now=NOW, pending={1: same, 2: unread, 3: moved_after, 4: fresh},
                      reviewers={1: (ALICE, CAROL), 3: (ALICE, BOB), 4: (CAROL,)})
    out = diff(known, obs, told={1: frozenset({ALICE}), 3: frozenset({ALICE}), 4: frozenset({DAVE})})
    assert out == Diff(upserts=[(moved_after, (ALICE, BOB)), (fresh, (CAROL,))],
                       events=[ev(moved_after, "approval_requested", BOB),
                               ev(fresh, "approval_requested", CAROL)])


def test_a_step_moving_on_closes_the_cards_of_reviewers_it_left_behind():
    # 1 moved from Alice and Bob to Bob and Carol; 2 moved from Dave to Carol; 3 is new (a
    # reviewer told before it was first seen is not "left behind"). With DM cards only.
    b1, a1 = req(1), req(1, review_status="Step 2")
    b2, a2 = req(2), req(2, review_status="Step 2")
    r3 = req(3)
    known = {1: Known.of(b1, frozenset({ALICE, BOB})), 2: Known.of(b2, frozenset({DAVE}))}
    obs = Observation(now=NOW, pending={1: a1, 2: a2, 3: r3},
                      reviewers={1: (CAROL, BOB), 2: (CAROL,), 3: (CAROL,)})
    told = {1: frozenset({ALICE, BOB}), 2: frozenset({DAVE}), 3: frozenset({DAVE})}
    assert diff(known, obs, told=told, policy=DM).events == [
        ev(a1, "approval_requested", CAROL), ev(a1, "step_passed", ALICE),
        ev(a2, "approval_requested", CAROL), ev(a2, "step_passed", DAVE),
        ev(r3, "approval_requested", CAROL)]
    assert [e.kind for e in diff(known, obs, told=told).events] == ["approval_requested"] * 3


def test_a_request_pending_again_after_a_decision_is_asked_anew():
    # known as Approved, now in the Pending listing with the same record: not "unchanged"
    r = req(1)
    known = {1: Known(status="Approved", fingerprint=r.fingerprint, requester_id=RITA)}
    out = diff(known, Observation(now=NOW, pending={1: r}, reviewers={1: (ALICE,)}), told={})
    assert out.events == [ev(r, "approval_requested", ALICE)]


def test_reviewers_told_for_one_request_are_asked_for_another():
    r1, r2 = req(1), req(2)
    out = diff({}, Observation(now=NOW, pending={1: r1, 2: r2}, reviewers={1: (ALICE,), 2: (ALICE,)}),
               told={1: frozenset({ALICE})})
    assert out.events == [ev(r2, "approval_requested", ALICE)]


# -- requests read individually ---------------------------------------------------------------

def test_each_transition_of_a_poll_with_many_requests():
    # Test setup: eight requests the snapshot watches, read individually this poll.
    p = {i: req(i, review_status="Step 1 of 1") for i in range(1, 9)}
    approved = req(9, "Approved", expiration=NOW + timedelta(hours=1))
    known = {i: Known.of(r, frozenset({ALICE, BOB})) for i, r in p.items()}
    known[9] = Known.of(approved, frozenset({CAROL}))
    told = {i: frozenset({BOB, ALICE}) for i in p}
    canceled = replace(p[2], status="Canceled")
    app = replace(p[3], status="Approved", decided_by="Alice", decided_at=NOW, expiration=NOW + timedelta(hours=8))
    denied = replace(p[4], status="Denied", decided_by="Bob", response_comment="no")
    expired = replace(p[5], status="Expired", decided_by="Alice", expiration=NOW - timedelta(minutes=1))
    raced = replace(p[6], review_status="Step 2 of 2")       # still Pending, moved on: stored, nobody told
    resolved = {10: req(10, "Canceled"),                      # not in the snapshot: ignored
                1: None, 2: canceled, 3: app, 4: denied, 5: expired, 6: raced, 7: p[7], 8: p[8],
                9: replace(approved, review_status="touched")}
    obs = Observation(now=NOW, pending={}, resolved=resolved)
    # Test execution and validation, in DM mode (reviewer cards follow the request).
    assert diff(known, obs, told, DM) == Diff(
        upserts=[(canceled, (ALICE, BOB)), (app, (ALICE, BOB)), (denied, (ALICE, BOB)),
                 (expired, (ALICE, BOB)), (raced, (ALICE, BOB)),
                 (resolved[9], (CAROL,))],
        gone=[1],
        events=[ev(canceled, "canceled", ALICE), ev(canceled, "canceled", BOB),
                ev(app, "approved", RITA), ev(app, "review_closed", ALICE), ev(app, "review_closed", BOB),
                ev(denied, "denied", RITA), ev(denied, "review_closed", ALICE), ev(denied, "review_closed", BOB),
                ev(expired, "approved", RITA), ev(expired, "expired", RITA), ev(expired, "review_closed", ALICE),
                ev(expired, "review_closed", BOB)],
        settled=[1, 2, 3, 4, 5])
    # Ephemeral mode: the reviewers' cards are not updated; cancel still tells them.
    eph = diff(known, obs, told, Policy())
    assert eph.events == [ev(canceled, "canceled", ALICE), ev(canceled, "canceled", BOB),
                          ev(app, "approved", RITA), ev(denied, "denied", RITA), ev(expired, "approved", RITA),
                          ev(expired, "expired", RITA)]
    assert eph.settled == [1, 2, 3, 4, 5]


def test_pending_to_expired_between_two_polls():
    # Approved and over between two polls: the requester hears both, in order.
    r = req(1)
    expired = replace(r, status="Expired", decided_by="Alice", expiration=NOW - timedelta(minutes=5))
    known = {1: Known.of(r, frozenset({ALICE}))}
    obs = Observation(now=NOW, pending={}, resolved={1: expired})
    told = {1: frozenset({ALICE, CAROL})}
    assert diff(known, obs, told) == Diff(upserts=[(expired, (ALICE,))],
                                          events=[ev(expired, "approved", RITA), ev(expired, "expired", RITA)],
                                          settled=[1])
    assert diff(known, obs, told, Policy(notify_expiry=False)) == Diff(
        upserts=[(expired, (ALICE,))], events=[ev(expired, "approved", RITA)], settled=[1])
    assert diff(known, obs, told, Policy(reviewer_cards=True, notify_expiry=False)) == Diff(
        upserts=[(expired, (ALICE,))],
        events=[ev(expired, "approved", RITA), ev(expired, "review_closed", ALICE),
                ev(expired, "review_closed", CAROL)], settled=[1])


def test_pending_to_approved_with_a_window_already_over_is_stored_as_expired():
    r = req(1)
    approved = replace(r, status="Approved", decided_by="Alice", expiration=NOW)
    stored = _replace(approved, status="Expired")
    out = diff({1: Known.of(r, frozenset({ALICE}))}, Observation(now=NOW, pending={}, resolved={1: approved}),
               told={1: frozenset({ALICE})}, policy=DM)
    assert out == Diff(upserts=[(stored, (ALICE,))],
                       events=[ev(stored, "approved", RITA), ev(stored, "expired", RITA),
                               ev(stored, "review_closed", ALICE)], settled=[1])
    assert out.upserts[0][0].status == "Expired"


def test_still_pending_when_read_individually_is_stored_only_if_it_moved():
    r1, r2, r3 = req(1), req(2), req(3)
    moved = replace(r2, review_status="Step 2 of 2")
    denied = replace(r3, status="Denied")
    known = {i: Known.of(r, frozenset({BOB})) for i, r in ((1, r1), (2, r2), (3, r3))}
    out = diff(known, Observation(now=NOW, pending={}, resolved={1: r1, 2: moved, 3: denied}), told={})
    assert out == Diff(upserts=[(moved, (BOB,)), (denied, (BOB,))], events=[ev(denied, "denied", RITA)],
                       settled=[3])


def test_pending_to_canceled_tells_every_told_reviewer_and_nobody_else():
    r = req(1, requester=SAM)
    other = req(2)
    known = {1: Known.of(r, frozenset({ALICE, BOB, CAROL, DAVE})), 2: Known.of(other, frozenset({ALICE}))}
    canceled = replace(r, status="Canceled")
    out = diff(known, Observation(now=NOW, pending={}, resolved={1: canceled, 2: other}),
               told={1: frozenset({DAVE, BOB, ALICE}), 2: frozenset({CAROL})}, policy=DM)
    assert out == Diff(upserts=[(canceled, (ALICE, BOB, CAROL, DAVE))],
                       events=[ev(canceled, "canceled", ALICE), ev(canceled, "canceled", BOB),
                               ev(canceled, "canceled", DAVE)],
                       settled=[1])


def test_cancel_before_anyone_was_told_settles_quietly():
    r = req(1)
    canceled = replace(r, status="Canceled")
    out = diff({1: Known.of(r, frozenset({ALICE}))}, Observation(now=NOW, pending={}, resolved={1: canceled}),
               told={})
    assert out == Diff(upserts=[(canceled, (ALICE,))], settled=[1])


def test_approved_to_denied_tells_the_requester():
    approved = req(1, "Approved", decided_by="Alice", expiration=NOW + timedelta(hours=2))
    denied = replace(approved, status="Denied", decided_by="Bob", response_comment="revoked")
    known = {1: Known.of(approved, frozenset({ALICE, BOB}))}
    out = diff(known, Observation(now=NOW, pending={}, resolved={1: denied}), told={1: frozenset({ALICE})},
               policy=DM)
    assert out == Diff(upserts=[(denied, (ALICE, BOB))], events=[ev(denied, "denied", RITA)])


def test_approved_access_ending_in_several_ways():
    # 1: SS says Expired; 2: SS still says Approved but the window is over (exactly now);
    # 3: Approved, window still open, record changed; 4: Approved and unchanged; 5: Canceled.
    a = {i: req(i, "Approved", expiration=NOW + timedelta(hours=1)) for i in (3, 4, 5)}
    a[1] = req(1, "Approved", expiration=NOW - timedelta(hours=1))
    a[2] = req(2, "Approved", requester=SAM, expiration=NOW)
    known = {i: Known.of(r, frozenset({ALICE})) for i, r in a.items()}
    resolved = {1: replace(a[1], status="Expired"), 2: a[2], 3: replace(a[3], review_status="x"), 4: a[4],
                5: replace(a[5], status="Canceled")}
    out = diff(known, Observation(now=NOW, pending={}, resolved=resolved), told={i: frozenset({ALICE}) for i in a},
               policy=DM)
    ended2 = replace(a[2], status="Expired")
    assert out == Diff(upserts=[(resolved[1], (ALICE,)), (ended2, (ALICE,)), (resolved[3], (ALICE,)),
                                (resolved[5], (ALICE,))],
                       events=[ev(resolved[1], "expired", RITA), ev(ended2, "expired", SAM)])
    quiet = diff(known, Observation(now=NOW, pending={}, resolved=resolved), told={}, policy=Policy(notify_expiry=False))
    assert quiet.events == [] and len(quiet.upserts) == 4


def test_unknown_and_still_pending_requests_do_not_stop_the_ones_after_them():
    r1, r2, r3 = req(1), req(2), req(3)
    known = {2: Known.of(r2), 3: Known.of(r3)}
    denied = replace(r3, status="Denied")
    out = diff(known, Observation(now=NOW, pending={}, resolved={1: replace(r1, status="Denied"), 2: r2,
                                                                  3: denied}), told={})
    assert out == Diff(upserts=[(denied, ())], events=[ev(denied, "denied", RITA)], settled=[3])


def test_unreadable_requests_do_not_stop_the_ones_after_them():
    r1, r2 = req(1), req(2)
    approved = replace(r2, status="Approved")
    out = diff({1: Known.of(r1), 2: Known.of(r2)}, Observation(now=NOW, pending={}, resolved={2: approved, 1: None}),
               told={})
    assert out == Diff(upserts=[(approved, ())], gone=[1], events=[ev(approved, "approved", RITA)], settled=[1, 2])


def test_context_goes_with_each_request_s_events():
    r1, r2 = req(1), req(2)
    d1, d2 = replace(r1, status="Denied"), replace(r2, status="Denied")
    out = diff({1: Known.of(r1), 2: Known.of(r2)},
               Observation(now=NOW, pending={}, resolved={1: d1, 2: d2}, context={2: {"folder_name": "DBs"}}),
               told={})
    assert out.events == [ev(d1, "denied", RITA), ev(d2, "denied", RITA, folder_name="DBs")]


# -- decided before any poll saw them -----------------------------------------------------------

def test_decided_requests_never_seen_tell_their_requesters_of_news_only():
    listed_pending = req(1)
    approved, denied, canceled, watched = (req(2, "Approved", requester=SAM), req(3, "Denied"), req(4, "Canceled"),
                                           req(5, "Approved"))
    decided = {5: watched, 4: canceled, 3: denied, 2: approved, 1: replace(listed_pending, status="Denied")}
    obs = Observation(now=NOW, pending={1: listed_pending}, reviewers={1: (ALICE,)}, decided=decided)
    out = diff({5: Known.of(watched)}, obs, told={})
    assert out == Diff(upserts=[(listed_pending, (ALICE,)), (approved, ()), (denied, ()), (canceled, ())],
                       events=[ev(listed_pending, "approval_requested", ALICE), ev(approved, "approved", SAM),
                               ev(denied, "denied", RITA)])


def test_decided_requests_skip_what_the_whole_listing_holds():
    # Only request 2 was parsed this poll, but 1 is in the listing too: not news.
    approved1, approved3 = req(1, "Approved"), req(3, "Approved")
    obs = Observation(now=NOW, pending={}, listed={1, 2}, decided={1: approved1, 3: approved3})
    assert diff({}, obs, told={}) == Diff(upserts=[(approved3, ())], events=[ev(approved3, "approved", RITA)])


def test_an_ended_approval_never_seen_is_news_only_if_approved_within_the_window():
    since = NOW - timedelta(minutes=15)
    inside = req(1, "Expired", decided_at=since, expiration=NOW - timedelta(minutes=1))
    before = req(2, "Expired", decided_at=since - timedelta(seconds=1), expiration=NOW - timedelta(minutes=1))
    undated = req(3, "Expired", expiration=NOW - timedelta(minutes=1))
    over = req(4, "Approved", requester=SAM, decided_at=since, expiration=NOW)
    obs = Observation(now=NOW, pending={}, decided={1: inside, 2: before, 3: undated, 4: over}, since=since)
    stored4 = _replace(over, status="Expired")
    assert diff({}, obs, told={}) == Diff(
        upserts=[(inside, ()), (before, ()), (undated, ()), (stored4, ())],
        events=[ev(inside, "approved", RITA), ev(inside, "expired", RITA),
                ev(stored4, "approved", SAM), ev(stored4, "expired", SAM)])
    # with no window (first poll after a fresh start), any dated approval counts
    assert diff({}, Observation(now=NOW, pending={}, decided={2: before, 3: undated}), told={},
                policy=Policy(notify_expiry=False)).events == [ev(before, "approved", RITA)]


# -- decision window -------------------------------------------------------------------------

def test_decision_window_boundaries():
    assert decision_window(None, NOW, 24) is None
    assert decision_window(NOW, NOW, 0) == NOW - timedelta(minutes=5)             # clock margin
    assert decision_window(NOW - timedelta(hours=1), NOW, 0) == NOW - timedelta(minutes=10)   # steady floor
    assert decision_window(NOW - timedelta(minutes=14), NOW, 0.1) == NOW - timedelta(minutes=10)
    assert decision_window(NOW - timedelta(minutes=25), NOW, 0.5) == NOW - timedelta(minutes=30)
    assert decision_window(NOW - timedelta(minutes=26), NOW, 0.5) == NOW - timedelta(minutes=30)
    assert decision_window(NOW - timedelta(minutes=24), NOW, 0.5) == NOW - timedelta(minutes=29)
    assert decision_window(NOW - timedelta(days=5), NOW, 24) == NOW - timedelta(hours=24)
