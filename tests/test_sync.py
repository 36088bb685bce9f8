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


def test_decided_while_away_tells_the_requester_only():
    approved = req(rid=7, status="Approved", decided_by="Alice", decided_at=NOW - timedelta(hours=1))
    out = diff({}, Observation(now=NOW, pending={}, decided_while_away={7: approved}), told={})
    assert [(e.kind, e.recipient) for e in out.events] == [("approved", REQUESTER)]


def test_still_pending_when_read_individually_is_left_alone():
    r = req()
    out = diff({1: Known.of(r)}, Observation(now=NOW, pending={}, resolved={1: r}), told={})
    assert out.events == [] and out.upserts == []


def test_catch_up_window_is_bounded():
    assert sync.catch_up_window(None, NOW, 24) is None
    assert sync.catch_up_window(NOW - timedelta(days=5), NOW, 24) == NOW - timedelta(hours=24)
    assert sync.catch_up_window(NOW - timedelta(hours=1), NOW, 24) == NOW - timedelta(hours=1, minutes=5)
