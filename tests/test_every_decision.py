"""Every poll sees every decision, including those made faster than one poll interval, and a
restart never asks reviewers about a request that was decided while the relay was stopped.
Stories through the relay's real clients against the Secret Server and Slack stand-ins."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from conftest import cycle
from waiting import wait_until

from relay.runtime import Relay

LISTING = r"/api/v1/secret-access-requests$"


def outcomes(sb) -> list[dict]:
    """Rita's DMs about decisions (not the confirmation that her request went out)."""
    return [m for m in sb.slack.messages(sb["rita"].slack_id) if "went to" not in (m.get("text") or "")]


def texts(items) -> str:
    return "\n".join(repr(i.get("blocks")) + (i.get("text") or "") for i in items)


def asked_about(sb, rid: int) -> list:
    """Every approval message (ephemeral or DM card) Slack received for request `rid`."""
    return [c for c in sb.slack.calls_to("chat.postEphemeral") + sb.slack.calls_to("chat.postMessage")
            if f"'value': '{rid}'" in repr(c.args.get("blocks"))]


def quick_decision(sb, decide: str, comment: str, after: float = 0.0) -> int:
    """Rita asks for prod-db and a reviewer decides `after` seconds later, before anybody could
    have listed it: the stand-in's lock is held from creation to decision, so no poll sees it
    Pending (the pause is the story's, not a wait for the relay)."""
    with sb.ss.world.lock:
        rid = sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment="quick one")
        threading.Event().wait(after)
        if decide == "approve":
            sb.ss.approve(rid, sb["bob"].ss_id, comment,
                          expiration=datetime.now(UTC) + timedelta(hours=1))
        else:
            sb.ss.deny(rid, sb["alice"].ss_id, comment)
    return rid


@pytest.mark.parametrize("decide,word", [("approve", "approved by Bob Approver"),
                                         ("deny", "denied by Alice Approver")])
def test_a_request_decided_between_two_polls_reaches_its_requester_once(sandbox, make_relay, decide, word):
    # Test setup: the relay is running and has polled once.
    relay = make_relay()
    cycle(relay)
    # Test execution: a request is created and decided between two polls, then two more polls.
    rid = quick_decision(sandbox, decide, "quick answer")
    cycle(relay)
    cycle(relay)
    # Validating: Rita heard the outcome once; no reviewer was asked about a decided request.
    (told,) = outcomes(sandbox)
    assert word in texts([told]) and "quick answer" in texts([told])
    assert asked_about(sandbox, rid) == []


def test_the_decided_listing_reads_one_page_newest_first_in_steady_state(sandbox, make_relay):
    relay = make_relay()
    cycle(relay)
    for i in range(30):
        quick_decision(sandbox, "approve", f"old {i}")
    cycle(relay)
    sandbox.ss.reset_calls()
    cycle(relay)
    decided = [c for c in sandbox.ss.calls_to(LISTING, "GET") if c.query.get("filter.status") != "Pending"]
    assert sorted(c.query["filter.status"] for c in decided) == ["Approved", "Canceled", "Denied", "Expired"]
    assert all(c.query.get("sortBy[0].direction") == "desc" and c.query.get("skip") == "0" for c in decided)
    assert {c.query["filter.status"]: c.query["sortBy[0].name"] for c in decided} == {
        "Approved": "ResponseDate", "Denied": "ResponseDate", "Canceled": "ResponseDate",
        "Expired": "ExpirationDate"}


def test_quick_decisions_are_told_within_one_poll_interval(sandbox, tmp_path):
    # Test setup: a running relay polling every 2 s (its threads, its schedule).
    interval = 2.0
    relay = Relay(sandbox.config(str(tmp_path / "quick.db"), POLL_INTERVAL_SECONDS=str(interval)))
    polled = threading.Event()
    relay.poller.listeners.append(lambda result: result.ok and polled.set())
    relay.start(http=False)
    try:
        assert polled.wait(10), "first poll"
        # Test execution: five requests, each approved 0.1 s after it was created.
        ids = [quick_decision(sandbox, "approve", f"quick {i}", after=0.1) for i in range(5)]
        # Validating: every requester is told within one poll interval plus 5 s; no reviewer asked.
        wait_until(lambda: len(outcomes(sandbox)) >= 5, interval + 5,
                   "five approvals told")
    finally:
        relay.stop()
    told = texts(outcomes(sandbox))
    assert all(f"quick {i}" in told for i in range(5))
    assert len(outcomes(sandbox)) == 5
    assert all(asked_about(sandbox, rid) == [] for rid in ids)


@pytest.mark.parametrize("mode", ["ephemeral", "dm"])
def test_pending_then_expired_between_two_polls_tells_approved_then_ended(sandbox, make_relay, mode):
    # Test setup: the relay asked the reviewers about Rita's request.
    relay = make_relay(SLACK_APPROVER_MESSAGES=mode)
    rid = sandbox.ss.create_request(sandbox.secrets["prod-db"], sandbox["rita"].ss_id, comment="brief")
    cycle(relay)
    # Test execution: Bob approves for a moment and the access ends before the next poll.
    sandbox.ss.approve(rid, sandbox["bob"].ss_id, "five minutes only",
                       expiration=datetime.now(UTC) + timedelta(minutes=5))
    sandbox.ss.expire(rid)
    cycle(relay)
    cycle(relay)
    # Validating: Rita hears "approved", then "has ended", once each.
    told = outcomes(sandbox)
    assert len(told) == 2
    assert "approved by Bob Approver" in texts(told[:1]) and "five minutes only" in texts(told[:1])
    assert "has ended" in texts(told[1:])


def test_approved_and_expired_while_the_relay_was_stopped_is_told_after_restart(sandbox, make_relay):
    first = make_relay()
    cycle(first)
    first.stop()
    # While it was down: a request is created, approved, and its access ends.
    rid = sandbox.ss.create_request(sandbox.secrets["prod-db"], sandbox["rita"].ss_id, comment="overnight")
    sandbox.ss.approve(rid, sandbox["bob"].ss_id, "while you slept",
                       expiration=datetime.now(UTC) + timedelta(minutes=5))
    sandbox.ss.expire(rid)
    again = Relay(first.cfg)
    try:
        cycle(again)
        cycle(again)
    finally:
        again.stop()
    told = outcomes(sandbox)
    assert len(told) == 2
    assert "approved by Bob Approver" in texts(told[:1]) and "while you slept" in texts(told[:1])
    assert "has ended" in texts(told[1:])
    assert asked_about(sandbox, rid) == []


def test_restart_never_asks_about_a_request_decided_while_stopped(sandbox, tmp_path):
    db = str(tmp_path / "restart.db")
    # Test setup: the first relay polled but delivered nothing: asks about R are owed, and so
    # is Rita's "approved" about S (the outbox row after R's asks).
    first = Relay(sandbox.config(db))
    r = sandbox.ss.create_request(sandbox.secrets["prod-db"], sandbox["rita"].ss_id, comment="R")
    s = sandbox.ss.create_request(sandbox.secrets["wiki-admin"], sandbox["rita"].ss_id, comment="S")
    assert first.poller.poll_once().ok
    sandbox.ss.approve(s, sandbox["bob"].ss_id, "S is fine",
                       expiration=datetime.now(UTC) + timedelta(hours=1))
    assert first.poller.poll_once().ok
    first.stop()
    # While it was stopped, R is approved.
    sandbox.ss.approve(r, sandbox["alice"].ss_id, "R is fine",
                       expiration=datetime.now(UTC) + timedelta(hours=1))
    # Test execution: the relay starts again; its first poll is slow (SS hangs on the listing).
    released = threading.Event()
    sandbox.ss.fail(LISTING, hang=released, times=1)
    again = Relay(sandbox.config(db))
    looks = []                          # each time delivery asks the outbox what is due
    due = again.delivery.outbox.due
    again.delivery.outbox.due = lambda *a, **kw: looks.append(1) or due(*a, **kw)  # type: ignore[method-assign]
    again.start(http=False)
    try:
        # Delivery runs while the poll hangs: S's approval (owed, still true) goes out...
        wait_until(lambda: "S is fine" in texts(outcomes(sandbox)), 10,
                   "the owed approval of S")
        # ...but R's asks wait for a fresh look at Secret Server, without spinning the delivery
        # loop (it looks about once a second, not a hundred times).
        before = len(looks)
        threading.Event().wait(1.0)
        assert len(looks) - before <= 5
        assert asked_about(sandbox, r) == []
        released.set()
        wait_until(lambda: "R is fine" in texts(outcomes(sandbox)), 10,
                   "Rita told about R")
        wait_until(lambda: again.db.execute(
            "SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')").fetchone()[0] == 0, 10,
            "the outbox drained")
    finally:
        released.set()
        again.stop()
    # Validating: nobody was asked about R; Rita heard about each request once.
    assert asked_about(sandbox, r) == []
    assert len(outcomes(sandbox)) == 2


def test_a_request_decided_while_its_reviewers_are_read_is_not_asked_about(sandbox, make_relay):
    # Test setup: the relay has polled once; Rita asks for prod-db.
    relay = make_relay()
    cycle(relay)
    rid = sandbox.ss.create_request(sandbox.secrets["prod-db"], sandbox["rita"].ss_id, comment="fast")
    # Test execution: the poll lists it Pending; while it reads the reviewers, Bob approves.
    released = threading.Event()
    sandbox.ss.fail(r"/pending$", hang=released, times=1)
    poll = threading.Thread(target=relay.poller.poll_once)
    poll.start()
    try:
        sandbox.ss.wait_for(lambda c: c.path.endswith(f"/{rid}/pending"), timeout=10)
        sandbox.ss.approve(rid, sandbox["bob"].ss_id, "already done",
                           expiration=datetime.now(UTC) + timedelta(hours=1))
    finally:
        released.set()
        poll.join(10)
    while relay.delivery.deliver_due():
        pass
    # Validating: nobody is asked; Rita hears the approval once.
    assert asked_about(sandbox, rid) == []
    (told,) = outcomes(sandbox)
    assert "already done" in texts([told])
