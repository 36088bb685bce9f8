"""Every row of the design's events table, in both message modes, told as stories through
the relay's real clients against the Secret Server and Slack stand-ins over HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from conftest import cycle

MODES = ["ephemeral", "dm"]


def texts(items) -> str:
    return "\n".join(repr(i.get("blocks")) + (i.get("text") or "") for i in items)


def approval_messages(sb, person: str, mode: str) -> list[dict]:
    """What a reviewer has received that carries Approve / Deny."""
    pool = sb.slack.ephemerals(sb[person].slack_id) if mode == "ephemeral" else sb.slack.messages(sb[person].slack_id)
    return [m for m in pool if any(b.get("type") == "actions" and any(e.get("action_id") == "approve"
                                                                        for e in b["elements"])
                                   for b in m.get("blocks") or [])]


def requester_news(sb, person: str = "rita") -> list[dict]:
    """The requester's DMs apart from the confirmation that the request went out."""
    return [m for m in sb.slack.messages(sb[person].slack_id) if "went to" not in (m.get("text") or "")]


def new_request(sb, comment="rotate the keys", **kw) -> int:
    return sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment=comment, ticket="INC-42", **kw)


@pytest.mark.parametrize("mode", MODES)
def test_new_pending_request_asks_each_reviewer_once(sandbox, make_relay, mode):
    # Test setup: Rita asks for prod-db; Alice and Bob approve for its group.
    relay = make_relay(SLACK_APPROVER_MESSAGES=mode)
    rid = new_request(sandbox)
    # Test execution: two polls.
    cycle(relay)
    cycle(relay)
    # Validating: Alice and Bob each got exactly one approval message; Rita none.
    for who in ("alice", "bob"):
        msgs = approval_messages(sandbox, who, mode)
        assert len(msgs) == 1, who
        body = texts(msgs)
        for fact in ("prod-db", "Databases", "Rita Requester", "rotate the keys", "INC-42"):
            assert fact in body, (who, fact)
        assert f"'value': '{rid}'" in body
        # anyone who cannot sign in from Slack can act in Secret Server itself
        [buttons] = [b["elements"] for b in msgs[0]["blocks"] if b["type"] == "actions"]
        assert [(e["action_id"], e.get("url")) for e in buttons][2:] == [
            ("open_in_ss", relay.cfg.secret_url(sandbox.secrets["prod-db"]))]
    assert approval_messages(sandbox, "rita", mode) == []
    method = "chat.postEphemeral" if mode == "ephemeral" else "chat.postMessage"
    assert len([c for c in sandbox.slack.calls_to(method) if c.args.get("channel") != sandbox["rita"].slack_id]) == 2


@pytest.mark.parametrize("mode", MODES)
def test_next_workflow_step_asks_its_new_reviewers(sandbox, make_relay, mode):
    # Test setup: a two-step workflow: Alice reviews step 1, Bob step 2.
    g1 = sandbox.ss.add_group("Team leads", [sandbox["alice"].ss_id, sandbox.relay_ss_id])
    g2 = sandbox.ss.add_group("Security", [sandbox["bob"].ss_id, sandbox.relay_ss_id])
    relay = make_relay(SLACK_APPROVER_MESSAGES=mode)
    rid = new_request(sandbox, steps=[[g1], [g2]])
    cycle(relay)
    assert len(approval_messages(sandbox, "alice", mode)) == 1
    assert approval_messages(sandbox, "bob", mode) == []
    # Test execution: Alice approves step 1 in the SS web UI.
    sandbox.ss.approve(rid, sandbox["alice"].ss_id, "step one ok")
    cycle(relay)
    # Validating: Bob is asked now; Alice is not asked again. Her DM card (one can be
    # edited; an ephemeral message cannot) loses its buttons and says why.
    assert len(approval_messages(sandbox, "bob", mode)) == 1
    if mode == "ephemeral":
        assert len(approval_messages(sandbox, "alice", mode)) == 1
    else:
        (card,) = sandbox.slack.messages(sandbox["alice"].slack_id)
        assert card["edited"] and all(b["type"] != "actions" for b in card["blocks"])
        assert "No longer waiting for you: the request moved on to other reviewers" in texts([card])
    # Bob approves step 2: both DM cards end in the outcome, still in place; nothing else
    # reaches Alice.
    ephemerals_before = sandbox.slack.ephemerals(sandbox["alice"].slack_id)
    sandbox.ss.approve(rid, sandbox["bob"].ss_id, "step two ok")
    cycle(relay)
    assert sandbox.slack.ephemerals(sandbox["alice"].slack_id) == ephemerals_before
    if mode == "dm":
        (card,) = sandbox.slack.messages(sandbox["alice"].slack_id)
        assert "Approved by Bob Approver" in texts([card]) and all(b["type"] != "actions" for b in card["blocks"])
        (bobs,) = sandbox.slack.messages(sandbox["bob"].slack_id)
        assert "Approved by Bob Approver" in texts([bobs])


@pytest.mark.parametrize("mode", MODES)
def test_cancel_tells_the_reviewers_who_were_told(sandbox, make_relay, mode):
    relay = make_relay(SLACK_APPROVER_MESSAGES=mode)
    rid = new_request(sandbox)
    cycle(relay)
    # Test execution: Rita cancels in SS.
    sandbox.ss.cancel(rid)
    cycle(relay)
    for who in ("alice", "bob"):
        uid = sandbox[who].slack_id
        if mode == "ephemeral":
            notices = [m for m in sandbox.slack.ephemerals(uid) if "canceled the request" in texts([m])]
            assert len(notices) == 1
            assert "Rita Requester canceled the request for" in texts(notices)
        else:
            (card,) = sandbox.slack.messages(uid)        # the card itself, rewritten in place
            assert all(b["type"] != "actions" for b in card["blocks"]), "buttons must be gone"
            assert "Canceled by Rita Requester" in texts([card])
    assert requester_news(sandbox) == []


@pytest.mark.parametrize("mode", MODES)
def test_approval_tells_the_requester_and_closes_cards(sandbox, make_relay, mode):
    relay = make_relay(SLACK_APPROVER_MESSAGES=mode)
    rid = new_request(sandbox)
    cycle(relay)
    sandbox.ss.approve(rid, sandbox["bob"].ss_id, "go ahead",
                       expiration=datetime.now(timezone.utc) + timedelta(hours=4))
    cycle(relay)
    (told,) = requester_news(sandbox)
    assert "approved by Bob Approver" in texts([told]) and "go ahead" in texts([told])
    assert "Access window" in texts([told])
    if mode == "dm":
        for who in ("alice", "bob"):
            (card,) = sandbox.slack.messages(sandbox[who].slack_id)
            assert all(b["type"] != "actions" for b in card["blocks"])
            assert "Approved by Bob Approver at" in texts([card])
    else:
        assert sandbox.slack.calls_to("chat.update") == []
    cycle(relay)
    assert len(requester_news(sandbox)) == 1, "told once"


@pytest.mark.parametrize("mode", MODES)
def test_denial_tells_the_requester(sandbox, make_relay, mode):
    relay = make_relay(SLACK_APPROVER_MESSAGES=mode)
    rid = new_request(sandbox)
    cycle(relay)
    sandbox.ss.deny(rid, sandbox["alice"].ss_id, "use the replica")
    cycle(relay)
    (told,) = requester_news(sandbox)
    assert "denied by Alice Approver" in texts([told]) and "use the replica" in texts([told])
    if mode == "dm":
        (card,) = sandbox.slack.messages(sandbox["bob"].slack_id)
        assert "Denied by Alice Approver at" in texts([card])


def approve_then_expire(sandbox, relay) -> list[dict]:
    """Bob approves Rita's request for an hour; two hours later SS has expired it.
    Returns the 'has ended' messages Rita got."""
    rid = new_request(sandbox)
    cycle(relay)
    sandbox.ss.approve(rid, sandbox["bob"].ss_id, "ok", expiration=datetime.now(timezone.utc) + timedelta(hours=1))
    cycle(relay)
    sandbox.ss.expire(rid)
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    relay.poller.clock = relay.delivery.clock = lambda: later
    cycle(relay)
    cycle(relay)
    return [m for m in requester_news(sandbox) if "has ended" in texts([m])]


@pytest.mark.parametrize("mode", MODES)
def test_expiry_of_approved_access_tells_the_requester(sandbox, make_relay, mode):
    ended = approve_then_expire(sandbox, make_relay(SLACK_APPROVER_MESSAGES=mode))
    assert len(ended) == 1


def test_expiry_notice_can_be_switched_off(sandbox, make_relay):
    assert approve_then_expire(sandbox, make_relay(APPROVALS_NOTIFY_EXPIRY="false")) == []


@pytest.mark.parametrize("mode", MODES)
def test_unreadable_request_is_marked_gone_and_nobody_hears(sandbox, make_relay, mode):
    relay = make_relay(SLACK_APPROVER_MESSAGES=mode)
    rid = new_request(sandbox)
    cycle(relay)
    before = len(sandbox.slack.calls)
    sandbox.ss.remove(rid)
    cycle(relay)
    assert [c.method for c in sandbox.slack.calls[before:]] == []
    assert relay.db.execute("SELECT gone FROM access_requests WHERE id = ?", [rid]).fetchone()[0] == 1
