"""Delivery under Slack faults: answers lost after Slack accepted a post, slow answers, one
method hanging while the others flow, pacing that never meets a 429. Stories against the
Slack stand-in over real HTTP."""

from __future__ import annotations

import itertools
from contextlib import contextmanager
import json
import threading
from datetime import timedelta

from conftest import cycle
from waiting import wait_until

from relay.slack.api import Pacer, make_client


def new_request(sb, comment="rotate the keys") -> int:
    return sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment=comment, ticket="INC-42")


def cards(sb, person: str) -> list[dict]:
    return [m for m in sb.slack.messages(sb[person].slack_id)
            if any(b.get("type") == "actions" for b in m.get("blocks") or [])]


def later(relay, seconds: float = 10.0) -> None:
    """Let the delivery's clock run ahead, past the wait before a row in doubt is retried."""
    start = relay.delivery.clock()
    relay.delivery.clock = lambda: start + timedelta(seconds=seconds)


@contextmanager
def delivering(relay, release: threading.Event):
    """The relay's delivery loop, running in a thread; on the way out the Slack calls held
    by `release` are let go and the loop is stopped."""
    stop = threading.Event()
    worker = threading.Thread(target=relay.delivery.run, args=(stop,), daemon=True)
    worker.start()
    try:
        yield
    finally:
        release.set()
        stop.set()
        relay.delivery.wake.set()
        worker.join(10)


def a_card_whose_answer_is_lost(sandbox, make_relay):
    """DM cards for a new request; Slack accepts Alice's or Bob's card, then drops the
    connection. Returns the relay, the request and the call whose answer was lost."""
    relay = make_relay(SLACK_APPROVER_MESSAGES="dm", APPROVALS_CONFIRM_TO_REQUESTER="false")  # reviewers only
    sandbox.slack.fail("chat.postMessage", reset_after_accept=True, times=1)
    rid = new_request(sandbox)
    cycle(relay)
    (dropped,) = [c for c in sandbox.slack.calls_to("chat.postMessage") if not c.answered]
    return relay, rid, dropped


def test_a_card_accepted_by_slack_whose_answer_was_lost_is_found_not_posted_again(sandbox, make_relay):
    relay, rid, dropped = a_card_whose_answer_is_lost(sandbox, make_relay)
    # Test execution: the card in doubt is retried after the wait.
    later(relay)
    while relay.delivery.deliver_due():
        pass
    # Validating: each reviewer has exactly one card; the lost one was looked up by its key.
    for who in ("alice", "bob"):
        assert len(cards(sandbox, who)) == 1, who
    (lookup,) = sandbox.slack.calls_to("conversations.history")
    assert lookup.ok and lookup.args["include_all_metadata"] in (True, "true", "1")
    assert dropped.args["metadata"]["event_type"] == "ssrelay_notification"
    rows = relay.db.execute("SELECT recipient, state, last_error FROM outbox ORDER BY recipient").fetchall()
    assert [r[1] for r in rows] == ["sent", "sent"]
    assert "found in Slack after an unanswered call" in [r[2] for r in rows]
    # The card found is the one later rewritten in place: approval closes it, no new message.
    sandbox.ss.approve(rid, sandbox["alice"].ss_id)
    cycle(relay)
    for who in ("alice", "bob"):
        msgs = sandbox.slack.messages(sandbox[who].slack_id)
        assert len(msgs) == 1 and msgs[0]["edited"], who


def test_a_card_in_doubt_when_the_request_is_decided_is_found_and_closed(sandbox, make_relay):
    relay, rid, dropped = a_card_whose_answer_is_lost(sandbox, make_relay)
    # Test execution: Bob approves in SS before the card in doubt is looked for.
    sandbox.ss.approve(rid, sandbox["bob"].ss_id)
    relay.poller.poll_once()
    later(relay)
    while relay.delivery.deliver_due():
        pass
    # Validating: the card is found (not posted again) and closed like the other one.
    owner = next(p for p in ("alice", "bob") if sandbox[p].slack_id == dropped.args["channel"])
    (card,) = sandbox.slack.messages(sandbox[owner].slack_id)
    assert card["edited"] and "Approved by Bob Approver" in card["text"]
    assert all(b["type"] != "actions" for b in card["blocks"])


def test_a_card_in_doubt_not_in_slack_is_dropped_once_the_request_is_decided(sandbox, make_relay):
    # Test setup: DM cards; the relay waits 1 s for an answer; Slack holds the first card,
    # then refuses it (503): the relay cannot tell, and nothing was posted.
    relay = make_relay(SLACK_APPROVER_MESSAGES="dm", APPROVALS_CONFIRM_TO_REQUESTER="false")  # reviewers only
    relay.slack.client = make_client(sandbox.slack.api_url, sandbox.slack.bot_token, timeout=1)
    release = threading.Event()
    sandbox.slack.fail("chat.postMessage", hang=release, status=503, times=1)
    rid = new_request(sandbox)
    try:
        cycle(relay)
    finally:
        release.set()
    refused = sandbox.slack.wait_for("chat.postMessage", lambda c: c.status == 503, timeout=10)[0]
    owner = next(p for p in ("alice", "bob") if sandbox[p].slack_id == refused.args["channel"])
    # Test execution: Bob approves in SS; the card in doubt is looked for after the wait.
    sandbox.ss.approve(rid, sandbox["bob"].ss_id)
    relay.poller.poll_once()
    later(relay)
    while relay.delivery.deliver_due():
        pass
    # Validating: looked for, not found, and not posted for a decided request.
    assert sandbox.slack.messages(sandbox[owner].slack_id) == []
    assert sandbox.slack.calls_to("conversations.history")
    row = relay.db.execute("SELECT state, last_error FROM outbox WHERE event = 'approval_requested' "
                           "AND recipient = ?", [sandbox[owner].ss_id]).fetchone()
    assert tuple(row) == ("superseded", "request no longer pending; not found in Slack")


def test_a_slow_answer_after_the_client_gave_up_is_found_not_posted_again(sandbox, make_relay):
    # Test setup: the relay waits 1 s for an answer; Slack posts at once but answers after 2 s.
    relay = make_relay(SLACK_APPROVER_MESSAGES="dm", APPROVALS_CONFIRM_TO_REQUESTER="false")  # reviewers only
    relay.slack.client = make_client(sandbox.slack.api_url, sandbox.slack.bot_token, timeout=1)
    sandbox.slack.fail("chat.postMessage", answer_delay=2.0, times=1)
    new_request(sandbox)
    cycle(relay)
    later(relay)
    while relay.delivery.deliver_due():
        pass
    for who in ("alice", "bob"):
        assert len(cards(sandbox, who)) == 1, who
    assert relay.db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'sent'").fetchone()[0] == 2


def test_an_ephemeral_ask_whose_answer_was_lost_is_not_repeated(sandbox, make_relay):
    # Ephemeral messages cannot be looked up: on a lost answer the ask counts as sent (at most once).
    relay = make_relay(SLACK_APPROVER_MESSAGES="ephemeral")
    sandbox.slack.fail("chat.postEphemeral", reset_after_accept=True, times=1)
    new_request(sandbox)
    cycle(relay)
    later(relay)
    while relay.delivery.deliver_due():
        pass
    for who in ("alice", "bob"):
        assert len(sandbox.slack.ephemerals(sandbox[who].slack_id)) == 1, who
    assert len(sandbox.slack.calls_to("chat.postEphemeral")) == 2
    notes = [r[0] for r in relay.db.execute("SELECT last_error FROM outbox WHERE state = 'sent'")]
    assert any(n and "cannot be looked up" in n for n in notes)


def test_the_default_client_waits_longer_than_a_slow_slack_takes(sandbox, make_relay):
    # A 2-second answer is an answer: one post, recorded as sent, nothing looked up.
    relay = make_relay(SLACK_APPROVER_MESSAGES="dm", APPROVALS_CONFIRM_TO_REQUESTER="false")  # reviewers only
    sandbox.slack.fail("chat.postMessage", answer_delay=2.0, times=1)
    new_request(sandbox)
    cycle(relay)
    assert len(sandbox.slack.calls_to("chat.postMessage")) == 2
    assert sandbox.slack.calls_to("conversations.history") == []
    assert relay.db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'sent'").fetchone()[0] == 2


def test_a_hanging_method_does_not_hold_up_the_others(sandbox, make_relay):
    # Test setup: ephemeral asks; the requester's "approved" message (chat.postMessage, the only
    # one: no confirmation) hangs.
    relay = make_relay(SLACK_APPROVER_MESSAGES="ephemeral", APPROVALS_CONFIRM_TO_REQUESTER="false")
    release = threading.Event()
    with delivering(relay, release):
        first = new_request(sandbox, "first")
        relay.poller.poll_once()
        relay.delivery.wake.set()
        sandbox.slack.wait_for("chat.postEphemeral", count=2, timeout=10)
        sandbox.slack.fail("chat.postMessage", hang=release, times=1)
        sandbox.ss.approve(first, sandbox["alice"].ss_id)
        relay.poller.poll_once()
        relay.delivery.wake.set()
        sandbox.slack.wait_for("chat.postMessage", in_flight=True, timeout=10)
        # Test execution: a second request while the outcome message hangs.
        new_request(sandbox, "second")
        relay.poller.poll_once()
        relay.delivery.wake.set()
        # Validating: its asks go out while chat.postMessage is still held.
        sandbox.slack.wait_for("chat.postEphemeral", count=4, timeout=10)
        assert not release.is_set() and not sandbox.slack.calls_to("chat.postMessage")[0].done
    wait_until(lambda: sandbox.slack.calls_to("chat.postMessage")[0].done, 10, "the held call")


def test_posts_in_doubt_are_looked_for_without_holding_up_new_messages(sandbox, make_relay):
    # Test setup: DM cards; Slack posts both cards of a first request and drops both answers;
    # looking for them (conversations.history) then hangs.
    relay = make_relay(SLACK_APPROVER_MESSAGES="dm", APPROVALS_CONFIRM_TO_REQUESTER="false")
    relay.delivery.unsure_retry_seconds = 0.0
    sandbox.slack.fail("chat.postMessage", reset_after_accept=True, times=2)
    release = threading.Event()
    sandbox.slack.fail("conversations.history", hang=release, times=None)
    new_request(sandbox, "first")
    relay.poller.poll_once()
    with delivering(relay, release):
        sandbox.slack.wait_for("conversations.history", in_flight=True, timeout=10)
        # Test execution: a second request while the lookup hangs.
        second = new_request(sandbox, "second")
        relay.poller.poll_once()
        relay.delivery.wake.set()
        # Validating: its cards go out while the lookup is still held.
        posted = sandbox.slack.wait_for("chat.postMessage", lambda c: c.ok is True and "second" in json.dumps(c.args),
                                        count=2, timeout=10)
        assert sorted(c.args["metadata"]["event_payload"]["key"] for c in posted) == sorted(
            f"{second}/approval_requested/{sandbox[p].ss_id}" for p in ("alice", "bob"))
        assert not release.is_set() and not sandbox.slack.calls_to("conversations.history")[0].done


def test_a_lane_readies_its_next_message_while_slack_answers_the_last(sandbox, make_relay):
    # Test setup: ephemeral asks to Alice and Bob; Slack holds the answer to the first one.
    relay = make_relay(SLACK_APPROVER_MESSAGES="ephemeral", APPROVALS_CONFIRM_TO_REQUESTER="false")
    release = threading.Event()
    sandbox.slack.fail("chat.postEphemeral", hang=release, times=1)
    with delivering(relay, release):
        # Test execution: the poll finds the request; the first ask goes out and hangs.
        new_request(sandbox)
        relay.poller.poll_once()
        relay.delivery.wake.set()
        sandbox.slack.wait_for("chat.postEphemeral", in_flight=True, timeout=10)

        # Validating: the second ask is claimed and waits its turn (its database work is done
        # before the pacer lets it go), and still only one call of the method is in flight.
        def claimed() -> int:
            return relay.db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'sending'").fetchone()[0]
        wait_until(lambda: claimed() == 2, 10, "both asks claimed while the first call is in flight")
        assert len(sandbox.slack.calls_to("chat.postEphemeral")) == 1
        release.set()
        sandbox.slack.wait_for("chat.postEphemeral", predicate=lambda c: c.ok is True, count=2, timeout=10)


def test_no_cancel_notice_to_a_reviewer_whose_ask_failed_and_was_dropped(sandbox, make_relay):
    # Test setup: ephemeral asks to Alice and Bob; the first goes out, Slack holds the second,
    # then answers 503.
    relay = make_relay(SLACK_APPROVER_MESSAGES="ephemeral", APPROVALS_CONFIRM_TO_REQUESTER="false")
    rid = new_request(sandbox)
    relay.poller.poll_once()
    assert relay.delivery.deliver_due(limit=1) == 1
    release = threading.Event()
    sandbox.slack.fail("chat.postEphemeral", hang=release, status=503, times=1)
    sending = threading.Thread(target=relay.delivery.deliver_due, daemon=True)
    sending.start()
    try:
        held = sandbox.slack.wait_for("chat.postEphemeral", count=2, in_flight=True, timeout=10)[1]
        assert not held.done
        # Test execution: Rita cancels while that ask is in flight; the poll sees it.
        sandbox.ss.cancel(rid)
        relay.poller.poll_once()
    finally:
        release.set()
        sending.join(10)
    later(relay, 600)          # past the failed ask's retry: it is dropped as moot when claimed
    while relay.delivery.deliver_due():
        pass
    # Validating: the reviewer whose ask never went out hears nothing; the other one is told.
    unasked = next(p for p in ("alice", "bob") if held.args["user"] == sandbox[p].slack_id)
    asked = "bob" if unasked == "alice" else "alice"
    assert sandbox.slack.ephemerals(sandbox[unasked].slack_id) == []
    told = [m.get("text") or "" for m in sandbox.slack.ephemerals(sandbox[asked].slack_id)]
    assert len(told) == 2 and "canceled the request" in told[1]
    rows = relay.db.execute("SELECT state, last_error FROM outbox WHERE event = 'canceled' AND recipient = ?",
                            [sandbox[unasked].ss_id]).fetchall()
    assert [tuple(r) for r in rows] == [("sent", "the approval message never went out")]


class FakeTime:
    """A clock and a stop event whose wait() moves the clock, `late` seconds past what was asked
    (a thread that wakes late)."""

    def __init__(self, late: float = 0.0):
        self.now = 0.0
        self.late = late

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.now += seconds + self.late
        return False


def test_pacing_spaces_calls_from_when_each_actually_left():
    # One call a second: a call that left late never lets the next one go early.
    fake = FakeTime(late=0.3)
    pacer = Pacer({"chat.postMessage": 60}, clock=fake, stop=fake)    # type: ignore[arg-type]
    left = []
    for _ in range(4):
        sent = pacer.wait("chat.postMessage")
        assert sent is not None
        left.append(fake.now)
        fake.now += 0.05                                 # the answer comes 50 ms later
        pacer.answered("chat.postMessage", sent)
    gaps = [b - a for a, b in itertools.pairwise(left)]
    assert all(g >= 60 / 60 + 0.05 for g in gaps), gaps   # the interval after each answer
    # Another method is not held up by this one.
    before = fake.now
    assert pacer.wait("chat.update") == before


def test_pacing_never_lets_a_one_token_bucket_see_two_calls_closer_than_the_interval():
    # Slack takes each call's token somewhere between when it left and when its answer came
    # back. Every trip takes 0.1 s; most split it evenly, then one spends all of it going
    # there and the next none: its token is taken right as it leaves.
    fake = FakeTime()
    pacer = Pacer({"chat.postMessage": 60}, clock=fake, stop=fake)    # type: ignore[arg-type]
    taken = []
    for there in [0.05] * 6 + [0.1, 0.0, 0.1, 0.0]:
        sent = pacer.wait("chat.postMessage")
        assert sent is not None
        taken.append(sent + there)
        fake.now = sent + 0.1
        pacer.answered("chat.postMessage", sent)
    gaps = [b - a for a, b in itertools.pairwise(taken)]
    assert min(gaps) >= 60 / 60, gaps                  # a one-token bucket at 60/min never says 429


def test_a_429_holds_the_method_back_for_retry_after():
    fake = FakeTime()
    pacer = Pacer({"chat.postMessage": 60}, clock=fake, stop=fake)    # type: ignore[arg-type]
    pacer.answered("chat.postMessage", pacer.wait("chat.postMessage") or 0.0)
    pacer.hold("chat.postMessage", 7.0)
    pacer.wait("chat.postMessage")
    assert fake.now == 7.0


def test_readiness_names_deliveries_failing_too_long_and_a_notification_owed_too_long(sandbox, make_relay):
    # Test setup: Slack answers 503 to every ephemeral post.
    relay = make_relay(SLACK_UNREADY_AFTER_FAILING_SECONDS="300", SLACK_UNREADY_AFTER_PENDING_SECONDS="900",
                       APPROVALS_CONFIRM_TO_REQUESTER="false")  # reviewers only
    sandbox.slack.fail("chat.postEphemeral", status=503, times=None)
    new_request(sandbox)
    cycle(relay)
    start = relay.delivery.clock()
    relay.delivery.refresh_health()
    # Validating: healthy until the limits pass, then the reason is named, from memory only.
    assert relay.delivery.health_problem(start + timedelta(seconds=299)) is None
    problem = relay.delivery.health_problem(start + timedelta(seconds=301))
    assert problem and problem.startswith("Slack deliveries failing for 301s (limit 300s)") and "503" in problem
    relay.delivery._note_success()          # a delivery went through: only the age of what is owed remains
    assert relay.delivery.health_problem(start + timedelta(seconds=899)) is None
    assert "oldest pending notification is 90" in relay.delivery.health_problem(start + timedelta(seconds=905))
    relay.delivery.clock = lambda: start + timedelta(seconds=905)
    ok, problems = relay.readiness()
    assert not ok and any(p.startswith("oldest pending notification") for p in problems)


def test_an_answer_through_response_url_whose_answer_was_lost_is_not_sent_again(sandbox):
    from relay.slack.answers import Answers
    # Test setup: Alice clicked an ephemeral message; Slack takes the answer to the click's
    # response_url, then drops the connection before saying so.
    sb = sandbox
    url = sb.slack.new_response_url(sb["alice"].slack_id, "D0ALICE", "1700000000.000100", ephemeral=True)
    sb.slack.fail("response_url", reset_after_accept=True, times=1)
    # Test execution: the relay answers her beside the message (replace_original false).
    Answers(slack=None, api_url=sb.slack.base_url).respond(  # type: ignore[arg-type]
        url, "Request 7 is already approved", [], replace=False)
    # Validating: the answer reached Slack once; a lost answer is not a reason to repeat it.
    assert [c.args["text"] for c in sb.slack.calls_to("response_url")] == ["Request 7 is already approved"]
