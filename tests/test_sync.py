"""The diff, told as stories over plain data: no I/O, no Slack, no Secret Server."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from relay import sync
from relay.model import AccessRequest
from relay.sync import Known, Observation, Policy, diff, plan

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
ALICE, BOB, CAROL, REQUESTER = 11, 12, 13, 20


def req(rid=1, status="Pending", **kw) -> AccessRequest:
    base = dict(id=rid, secret_id=1000 + rid, secret_name=f"db-{rid}", folder_id=10, requester_id=REQUESTER,
                requester_username="rita", status=status, comment="deploy")
    base.update(kw)
    return AccessRequest(**base)


def test_new_pending_request_asks_every_reviewer_but_never_the_requester():
    r = req()
    obs = Observation(now=NOW, pending={1: r}, reviewers={1: (ALICE, BOB, REQUESTER)})
    out = diff({}, obs, told={})
    assert [(e.kind, e.recipient) for e in out.events] == [
        ("approval_requested", ALICE), ("approval_requested", BOB)]
    assert out.upserts == [(r, (ALICE, BOB, REQUESTER))]


def test_unchanged_listing_plans_no_reads_and_diffs_to_nothing():
    r = req()
    known = {1: Known.of(r, frozenset({ALICE}))}
    p = plan(known, {1: r.fingerprint}, NOW)
    assert p.reviewer_reads == () and p.request_reads == ()
    out = diff(known, Observation(now=NOW, pending={1: r}), told={1: frozenset({ALICE})})
    assert out.events == [] and out.upserts == []


def test_step_change_asks_only_reviewers_not_told_yet():
    before = req(review_status="Step 1 of 2")
    after = req(review_status="Step 2 of 2")
    known = {1: Known.of(before, frozenset({ALICE}))}
    p = plan(known, {1: after.fingerprint}, NOW)
    assert p.moved == (1,)
    out = diff(known, Observation(now=NOW, pending={1: after}, reviewers={1: (ALICE, CAROL)}),
               told={1: frozenset({ALICE})})
    assert [(e.kind, e.recipient) for e in out.events] == [("approval_requested", CAROL)]


def test_cancel_tells_only_reviewers_who_were_told_and_settles_unsent_asks():
    r = req()
    known = {1: Known.of(r, frozenset({ALICE, BOB}))}
    p = plan(known, {}, NOW)
    assert p.vanished == (1,)
    canceled = replace(r, status="Canceled")
    out = diff(known, Observation(now=NOW, pending={}, resolved={1: canceled}), told={1: frozenset({ALICE})})
    assert [(e.kind, e.recipient) for e in out.events] == [("canceled", ALICE)]
    assert out.settled == [1]


def test_approval_tells_the_requester_and_closes_cards_in_dm_mode_only():
    r = req()
    known = {1: Known.of(r, frozenset({ALICE, BOB}))}
    approved = replace(r, status="Approved", decided_by="Alice", decided_at=NOW, expiration=NOW + timedelta(hours=8))
    obs = Observation(now=NOW, pending={}, resolved={1: approved})
    told = {1: frozenset({ALICE, BOB})}
    dm = diff(known, obs, told, Policy(reviewer_cards=True))
    assert [(e.kind, e.recipient) for e in dm.events] == [
        ("approved", REQUESTER), ("review_closed", ALICE), ("review_closed", BOB)]
    eph = diff(known, obs, told, Policy(reviewer_cards=False))
    assert [(e.kind, e.recipient) for e in eph.events] == [("approved", REQUESTER)]


def test_denial_tells_the_requester():
    r = req()
    denied = replace(r, status="Denied", decided_by="Bob", response_comment="not today")
    out = diff({1: Known.of(r)}, Observation(now=NOW, pending={}, resolved={1: denied}), told={})
    assert [(e.kind, e.recipient) for e in out.events] == [("denied", REQUESTER)]
    assert out.events[0].payload["request"]["response_comment"] == "not today"


def test_approved_access_is_watched_until_it_expires():
    approved = req(status="Approved", expiration=NOW - timedelta(minutes=1))
    known = {1: Known.of(approved)}
    p = plan(known, {}, NOW)
    assert p.expiring == (1,)
    out = diff(known, Observation(now=NOW, pending={}, resolved={1: replace(approved, status="Expired")}), told={})
    assert [(e.kind, e.recipient) for e in out.events] == [("expired", REQUESTER)]
    assert out.upserts[0][0].status == "Expired"
    quiet = diff(known, Observation(now=NOW, pending={}, resolved={1: replace(approved, status="Expired")}),
                 told={}, policy=Policy(notify_expiry=False))
    assert quiet.events == []


def test_approved_not_yet_expired_is_not_read():
    approved = req(status="Approved", expiration=NOW + timedelta(hours=1))
    assert plan({1: Known.of(approved)}, {}, NOW).request_reads == ()


def test_unreadable_request_is_marked_gone_and_nobody_is_told():
    r = req()
    out = diff({1: Known.of(r, frozenset({ALICE}))}, Observation(now=NOW, pending={}, resolved={1: None}),
               told={1: frozenset({ALICE})})
    assert out.gone == [1] and out.events == []


def test_decided_before_any_poll_saw_it_tells_the_requester_only():
    approved = req(rid=7, status="Approved", decided_by="Alice", decided_at=NOW - timedelta(minutes=1),
                   expiration=NOW + timedelta(hours=1))
    denied = req(rid=8, status="Denied", decided_by="Bob", decided_at=NOW - timedelta(minutes=1))
    canceled = req(rid=9, status="Canceled")
    out = diff({}, Observation(now=NOW, pending={}, decided={7: approved, 8: denied, 9: canceled},
                               since=NOW - timedelta(minutes=6)), told={})
    assert [(e.request_id, e.kind, e.recipient) for e in out.events] == [
        (7, "approved", REQUESTER), (8, "denied", REQUESTER)]
    assert out.upserts == [(approved, ()), (denied, ()), (canceled, ())]
    assert out.settled == []


def test_a_decided_request_still_in_the_pending_listing_or_the_snapshot_is_not_told_twice():
    approved = req(rid=7, status="Approved", decided_at=NOW, expiration=NOW + timedelta(hours=1))
    listed = diff({}, Observation(now=NOW, pending={}, listed={7}, decided={7: approved}), told={})
    known = diff({7: Known.of(approved)}, Observation(now=NOW, pending={}, decided={7: approved}), told={})
    assert listed.events == [] and known.events == []


def test_pending_to_expired_between_two_polls_tells_approved_then_ended():
    r = req()
    known = {1: Known.of(r, frozenset({ALICE}))}
    expired = replace(r, status="Expired", decided_by="Bob", decided_at=NOW - timedelta(minutes=3),
                      expiration=NOW - timedelta(minutes=1))
    obs = Observation(now=NOW, pending={}, resolved={1: expired})
    out = diff(known, obs, told={1: frozenset({ALICE})}, policy=Policy(reviewer_cards=True))
    assert [(e.kind, e.recipient, e.payload["request"]["status"]) for e in out.events] == [
        ("approved", REQUESTER, "Expired"), ("expired", REQUESTER, "Expired"), ("review_closed", ALICE, "Expired")]
    assert out.upserts == [(expired, (ALICE,))] and out.settled == [1]
    quiet = diff(known, obs, told={}, policy=Policy(notify_expiry=False))
    assert [(e.kind, e.recipient) for e in quiet.events] == [("approved", REQUESTER)]


def test_pending_to_approved_with_a_window_already_over_is_stored_as_ended():
    r = req()
    over = replace(r, status="Approved", decided_by="Bob", decided_at=NOW - timedelta(minutes=3),
                   expiration=NOW - timedelta(seconds=1))
    out = diff({1: Known.of(r)}, Observation(now=NOW, pending={}, resolved={1: over}), told={})
    assert [(e.kind, e.recipient) for e in out.events] == [("approved", REQUESTER), ("expired", REQUESTER)]
    assert [(u.status, revs) for u, revs in out.upserts] == [("Expired", ())]
    assert plan({1: Known.of(out.upserts[0][0])}, {}, NOW).request_reads == ()


def test_approved_and_expired_before_any_poll_saw_it_is_told_when_the_approval_is_in_the_window():
    since = NOW - timedelta(minutes=20)
    recent = req(rid=7, status="Expired", decided_by="Bob", decided_at=NOW - timedelta(minutes=10),
                 expiration=NOW - timedelta(minutes=5))
    old = req(rid=8, status="Expired", decided_by="Bob", decided_at=NOW - timedelta(hours=3),
              expiration=NOW - timedelta(minutes=5))
    out = diff({}, Observation(now=NOW, pending={}, decided={7: recent, 8: old}, since=since), told={})
    assert [(e.request_id, e.kind, e.recipient) for e in out.events] == [
        (7, "approved", REQUESTER), (7, "expired", REQUESTER)]
    assert [u.id for u, _ in out.upserts] == [7, 8]


def test_an_approval_re_decided_as_denied_tells_the_requester():
    approved = req(status="Approved", decided_at=NOW - timedelta(minutes=9), expiration=NOW + timedelta(hours=1))
    denied = replace(approved, status="Denied", decided_at=NOW - timedelta(minutes=1), response_comment="no after all")
    out = diff({1: Known.of(approved)}, Observation(now=NOW, pending={}, resolved={1: denied}), told={})
    assert [(e.kind, e.recipient) for e in out.events] == [("denied", REQUESTER)]


def test_still_pending_when_read_individually_is_left_alone():
    r = req()
    out = diff({1: Known.of(r)}, Observation(now=NOW, pending={}, resolved={1: r}), told={})
    assert out.events == [] and out.upserts == []


def test_decision_window_reaches_back_to_the_last_poll_bounded_by_catch_up():
    assert sync.decision_window(None, NOW, 24) is None
    # steady state: since the last poll, less the clock margin
    assert sync.decision_window(NOW - timedelta(seconds=15), NOW, 24) == NOW - timedelta(minutes=5, seconds=15)
    # after downtime: never further back than catch_up_hours
    assert sync.decision_window(NOW - timedelta(days=5), NOW, 24) == NOW - timedelta(hours=24)
    assert sync.decision_window(NOW - timedelta(hours=1), NOW, 24) == NOW - timedelta(hours=1, minutes=5)
    # catch-up switched off: a running relay still sees the decisions since its last poll
    assert sync.decision_window(NOW - timedelta(seconds=15), NOW, 0) == NOW - timedelta(minutes=5, seconds=15)
    assert sync.decision_window(NOW - timedelta(hours=3), NOW, 0) == NOW - timedelta(minutes=10)
