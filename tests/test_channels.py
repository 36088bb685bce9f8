"""Team channels with threads: a routed request gets one card in its team's channel; what
happens next goes to the card's thread, and the card is edited in place to its final state
wherever the decision was made. Stories through the real clients and the stand-ins."""

from __future__ import annotations

import json
from datetime import UTC

import pytest
from conftest import cycle
from slack_payloads import (
    click_message,
    poll_now,
    send,
    sign_in,
    start_relay,
    wait_until,
)

TEAM_CHANNEL = "C0DBTEAM"
ROUTE = json.dumps([{"folder": "\\Production", "channel": TEAM_CHANNEL}])
PERSONAL_ROUTE = json.dumps([{"folder": "\\Production", "channel": TEAM_CHANNEL, "personal": True}])
PUT = "/api/v1/secret-access-requests$"


@pytest.fixture
def team(sandbox):
    """The DB team's channel (the bot is in it), and Zed, who is in it but reviews nothing."""
    sandbox.add_person("zed", display_name="Zed Bystander")
    sandbox.slack.add_channel(TEAM_CHANNEL, name="db-team",
                              members=[sandbox[p].slack_id for p in ("rita", "alice", "bob", "zed")])
    return sandbox


def new_request(sb, secret="prod-db") -> int:
    return sb.ss.create_request(sb.secrets[secret], sb["rita"].ss_id, comment="rotate the keys", ticket="INC-42")


def channel_cards(sb) -> list[dict]:
    return [m for m in sb.slack.messages(TEAM_CHANNEL) if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]


def has_buttons(message: dict) -> bool:
    return any(b["type"] == "actions" for b in message["blocks"])


def replies(sb, card: dict) -> list[str]:
    return [m["text"] for m in sb.slack.thread(TEAM_CHANNEL, card["ts"])]


def personal_asks(sb, who: str) -> list[dict]:
    pool = sb.slack.ephemerals(sb[who].slack_id) + sb.slack.messages(sb[who].slack_id)
    return [m for m in pool if '"approve"' in json.dumps(m.get("blocks"))]


def test_a_routed_request_posts_one_card_to_the_channel(team, make_relay):
    sb = team
    relay = make_relay(CHANNELS=ROUTE)
    rid = new_request(sb)
    cycle(relay)
    cycle(relay)
    (card,) = channel_cards(sb)
    flat = json.dumps(card["blocks"])
    for fact in ("prod-db", "Databases", "Rita Requester", "rotate the keys", "INC-42",
                 "Asked: Alice Approver, Bob Approver or anyone in DB Approvers"):
        assert fact in flat, fact
    assert [(e["action_id"], e.get("value")) for b in card["blocks"] if b["type"] == "actions"
            for e in b["elements"]][:2] == [("approve", str(rid)), ("deny", str(rid))]
    # Not personal: reviewers are not told one by one.
    assert personal_asks(sb, "alice") == [] and personal_asks(sb, "bob") == []


@pytest.mark.parametrize("decision,reply", [
    ("approve", ":white_check_mark: Bob Approver approved: go ahead"),
    ("deny", ":x: Bob Approver denied: go ahead"),
    ("cancel", ":no_entry_sign: Rita Requester canceled"),
])
def test_a_decision_in_secret_servers_ui_closes_the_card_and_replies_once(team, make_relay, decision, reply):
    sb = team
    relay = make_relay(CHANNELS=ROUTE)
    rid = new_request(sb)
    cycle(relay)
    if decision == "cancel":
        sb.ss.cancel(rid)
    else:
        getattr(sb.ss, decision)(rid, sb["bob"].ss_id, "go ahead")
    cycle(relay)
    cycle(relay)
    (card,) = channel_cards(sb)
    assert not has_buttons(card) and card["edited"]
    assert replies(sb, card) == [reply]


def test_approve_on_the_channel_card_acts_as_the_clicker_and_closes_the_card(team, make_relay):
    sb = team
    rid = new_request(sb)
    relay = start_relay(make_relay, sb, CHANNELS=ROUTE)
    sign_in(relay, sb, "bob")
    (card,) = channel_cards(sb)
    send(relay, click_message(sb, "bob", "approve", rid, card, ephemeral=False))
    wait_until(lambda: replies(sb, card), 10, "the thread reply")
    (put,) = sb.ss.calls_to(PUT, "PUT")
    assert put.user == "bob" and put.body["status"] == "Approved"
    (card,) = channel_cards(sb)
    assert not has_buttons(card)
    assert replies(sb, card) == [":white_check_mark: Bob Approver approved: Approved from Slack by Bob Approver"]
    told = [r["body"] for r in sb.slack.responses() if r["user"] == sb["bob"].slack_id]
    assert told and told[-1]["response_type"] == "ephemeral" and told[-1]["replace_original"] is False
    assert "You approved access to prod-db" in told[-1]["text"]
    poll_now(relay)
    poll_now(relay)
    assert len(replies(sb, card)) == 1, "the poll does not reply again"


def test_a_non_reviewer_is_told_privately_and_nothing_is_written(team, make_relay):
    sb = team
    rid = new_request(sb)
    relay = start_relay(make_relay, sb, CHANNELS=ROUTE)
    sign_in(relay, sb, "zed")
    (card,) = channel_cards(sb)
    send(relay, click_message(sb, "zed", "approve", rid, card, ephemeral=False))
    wait_until(lambda: [r for r in sb.slack.responses() if r["user"] == sb["zed"].slack_id], 10, "an answer")
    (answer,) = [r["body"] for r in sb.slack.responses() if r["user"] == sb["zed"].slack_id]
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
    assert "You cannot review this request" in answer["text"]
    assert sb.ss.calls_to(PUT, "PUT") == []
    (after,) = channel_cards(sb)
    assert has_buttons(after) and not after["edited"] and replies(sb, after) == []


def test_personal_route_also_asks_reviewers_and_a_dm_decision_closes_the_channel_card(team, make_relay):
    sb = team
    rid = new_request(sb)
    relay = start_relay(make_relay, sb, CHANNELS=PERSONAL_ROUTE, SLACK_APPROVER_MESSAGES="dm")
    sign_in(relay, sb, "alice")
    (mine,) = personal_asks(sb, "alice")
    assert len(personal_asks(sb, "bob")) == 1
    send(relay, click_message(sb, "alice", "approve", rid, mine, ephemeral=False))
    sb.slack.wait_for("chat.update", lambda c: c.args.get("ts") == mine["ts"])
    poll_now(relay)
    poll_now(relay)
    (card,) = channel_cards(sb)
    assert not has_buttons(card)
    assert replies(sb, card) == [":white_check_mark: Alice Approver approved: Approved from Slack by Alice Approver"]


def test_unrouted_requests_behave_as_without_channels(team, make_relay):
    sb = team
    relay = make_relay(CHANNELS=json.dumps([{"folder": "\\Finance", "channel": TEAM_CHANNEL}]))
    new_request(sb)
    cycle(relay)
    assert sb.slack.messages(TEAM_CHANNEL) == []
    assert len(personal_asks(sb, "alice")) == 1 and len(personal_asks(sb, "bob")) == 1


def test_reminders_of_a_routed_request_go_to_the_cards_thread(team, make_relay):
    from datetime import datetime, timedelta

    from freezegun import freeze_time
    sb = team
    t0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    with freeze_time(t0) as clock:
        relay = make_relay(CHANNELS=ROUTE)
        new_request(sb)
        cycle(relay)
        clock.move_to(t0 + timedelta(minutes=30))
        cycle(relay)
        cycle(relay)
    (card,) = channel_cards(sb)
    assert replies(sb, card) == [(":alarm_clock: Reminder: still waiting for a review (waiting 30 min). "
                                 "Asked: Alice Approver, Bob Approver or anyone in DB Approvers")]
    assert personal_asks(sb, "alice") == []


def test_channel_routes_are_validated_with_the_key_named(sandbox, tmp_path):
    from relay.errors import ConfigError
    with pytest.raises(ConfigError, match=r"channels\[0\]\.channel: a channel id"):
        sandbox.config(str(tmp_path / "x.db"), CHANNELS=json.dumps([{"folder": "\\P", "channel": "#db-team"}]))
    with pytest.raises(ConfigError, match=r"channels\[0\]\.folder"):
        sandbox.config(str(tmp_path / "x.db"), CHANNELS=json.dumps([{"channel": "C1"}]))


# ---------------------------------------------------------------------- ssrelay check
def check_lines(sb, tmp_path, routes) -> list:
    from relay import checks
    from relay.store import db as store
    path = str(tmp_path / "c.db")
    store.migrate(store.open_db(path))
    return checks.run_checks(sb.config(path, CHANNELS=json.dumps(routes)))


def test_check_confirms_the_bot_is_in_each_routed_channel(team, tmp_path):
    sb = team
    sb.slack.scopes = (*sb.slack.scopes, "channels:read")
    results = check_lines(sb, tmp_path, [{"folder": "\\Production", "channel": TEAM_CHANNEL}])
    (line,) = [c for c in results if c.name == f"slack channel {TEAM_CHANNEL}"]
    assert line.ok and line.detail == "the bot is in #db-team (requests under \\Production)"
    assert [c.args["channel"] for c in sb.slack.calls_to("conversations.info")] == [TEAM_CHANNEL]


def test_check_fails_when_the_bot_was_not_invited(team, tmp_path):
    sb = team
    sb.slack.scopes = (*sb.slack.scopes, "channels:read")
    sb.slack.add_channel("C0FINANCE", name="finance", bot_member=False)
    results = check_lines(sb, tmp_path, [{"folder": "\\Production", "channel": TEAM_CHANNEL},
                                         {"folder": "\\Finance", "channel": "C0FINANCE"},
                                         {"folder": "\\HR", "channel": "C0NOSUCH"}])
    by_name = {c.name: c for c in results}
    assert by_name[f"slack channel {TEAM_CHANNEL}"].ok
    finance = by_name["slack channel C0FINANCE"]
    assert not finance.ok and "the bot is not a member of #finance" in finance.line()
    assert "/invite" in finance.line()
    assert "no such channel" in by_name["slack channel C0NOSUCH"].line()


def test_check_names_the_missing_scope(team, tmp_path):
    results = check_lines(team, tmp_path, [{"folder": "\\Production", "channel": TEAM_CHANNEL}])
    (line,) = [c for c in results if c.name == f"slack channel {TEAM_CHANNEL}"]
    assert not line.ok and "lacks channels:read" in line.line()


def test_manifest_adds_channels_read_only_when_channels_are_routed(tmp_path):
    from relay import manifest
    assert "channels:read" not in manifest.build("socket", "https://relay.example.com")["oauth_config"]["scopes"]["bot"]
    assert "channels:history" not in manifest.build("socket", "https://relay.example.com")["oauth_config"]["scopes"]["bot"]
    assert manifest.build("socket", "https://relay.example.com", channels=True)["oauth_config"]["scopes"]["bot"][-2:] \
        == ["channels:read", "channels:history"]
    from relay.config import has_channels
    toml = tmp_path / "ssrelay.toml"
    toml.write_text("[[channels]]\nfolder = '\\Production'\nchannel = \"C0123456789\"\n", encoding="utf-8")
    assert has_channels(str(toml), environ={}) is True
    toml.write_text("[slack]\nmode = \"socket\"\n", encoding="utf-8")
    assert has_channels(str(toml), environ={}) is False


def test_check_wants_channels_read_only_with_routes():
    from relay import checks
    from relay.manifest import BOT_SCOPES
    base = set(BOT_SCOPES)
    assert checks.scopes_check(base).ok
    assert not checks.scopes_check(base, channels=True).ok
    assert not checks.scopes_check(base | {"channels:read"}, channels=True).ok   # lookups need history
    assert checks.scopes_check(base | {"channels:read", "channels:history"}, channels=True).ok


def later(relay, seconds: float = 10.0) -> None:
    """Let the delivery's clock run ahead, past the wait before a row in doubt is retried."""
    from datetime import timedelta
    start = relay.delivery.clock()
    relay.delivery.clock = lambda: start + timedelta(seconds=seconds)


def test_a_channel_card_whose_answer_was_lost_is_found_not_posted_again(team, make_relay):
    # Test setup: Slack accepts the channel card, then drops the connection.
    sb = team
    sb.slack.scopes = (*sb.slack.scopes, "channels:read", "channels:history")
    relay = make_relay(CHANNELS=ROUTE, APPROVALS_CONFIRM_TO_REQUESTER="false")   # the card is the only post
    sb.slack.fail("chat.postMessage", reset_after_accept=True, times=1)
    rid = new_request(sb)
    # Test execution: the poll delivers; the card in doubt is retried after the wait.
    cycle(relay)
    (dropped,) = [c for c in sb.slack.calls_to("chat.postMessage") if not c.answered]
    assert dropped.args["channel"] == TEAM_CHANNEL
    later(relay)
    while relay.delivery.deliver_due():
        pass
    # Validating: one card, found by its key in the channel's history and kept for edits.
    (card,) = channel_cards(sb)
    (lookup,) = sb.slack.calls_to("conversations.history")
    assert lookup.ok and lookup.args["channel"] == TEAM_CHANNEL
    assert relay.db.execute("SELECT state, last_error FROM outbox WHERE event = 'channel_card'").fetchone() \
        == ("sent", "found in Slack after an unanswered call")
    sb.ss.approve(rid, sb["bob"].ss_id, "go ahead")
    cycle(relay)
    (card,) = channel_cards(sb)
    assert not has_buttons(card) and card["edited"]
    assert replies(sb, card) == [":white_check_mark: Bob Approver approved: go ahead"]


def test_a_thread_reply_whose_answer_was_lost_is_found_not_posted_again(team, make_relay):
    sb = team
    sb.slack.scopes = (*sb.slack.scopes, "channels:read", "channels:history")
    relay = make_relay(CHANNELS=ROUTE, APPROVALS_CONFIRM_TO_REQUESTER="false")
    rid = new_request(sb)
    cycle(relay)
    (card,) = channel_cards(sb)
    # The closing reply in the thread and the requester's "denied" are accepted, then their
    # answers are lost.
    sb.slack.fail("chat.postMessage", reset_after_accept=True, times=2)
    sb.ss.deny(rid, sb["bob"].ss_id, "not today")
    cycle(relay)
    assert [c.args.get("thread_ts") for c in sb.slack.calls_to("chat.postMessage") if not c.answered] \
        .count(card["ts"]) == 1
    later(relay)
    while relay.delivery.deliver_due():
        pass
    assert replies(sb, card) == [":x: Bob Approver denied: not today"]
    (lookup,) = sb.slack.calls_to("conversations.replies")
    assert lookup.ok and (lookup.args["channel"], lookup.args["ts"]) == (TEAM_CHANNEL, card["ts"])
    assert relay.db.execute("SELECT state FROM cards WHERE request_id = ? AND recipient = 0",
                            [rid]).fetchone() == ("closed",)
    assert len(sb.slack.messages(sb["rita"].slack_id)) == 1


def test_the_next_workflow_step_rewrites_the_channel_card_to_ask_its_reviewers(team, make_relay):
    # Test setup: two steps, DB Leads (Alice) first, then Security (Bob); the relay's account
    # is in both groups, as it must be to list the request.
    sb = team
    leads = sb.ss.add_group("DB Leads", [sb["alice"].ss_id, sb.relay_ss_id])
    security = sb.ss.add_group("Security", [sb["bob"].ss_id, sb.relay_ss_id])
    relay = make_relay(CHANNELS=ROUTE, APPROVALS_CONFIRM_TO_REQUESTER="false")
    rid = sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment="rotate the keys",
                               steps=[[leads], [security]])
    cycle(relay)
    cycle(relay)
    (card,) = channel_cards(sb)
    assert "Asked: Alice Approver or anyone in DB Leads" in json.dumps(card["blocks"]) and not card["edited"]
    # Test execution: the first step is approved in SS; the workflow moves on.
    sb.ss.advance_step(rid)
    cycle(relay)
    cycle(relay)
    # Validating: the same card, edited in place, names the second step's reviewer, buttons kept.
    (after,) = channel_cards(sb)
    flat = json.dumps(after["blocks"], ensure_ascii=False)
    assert after["ts"] == card["ts"] and after["edited"] and has_buttons(after)
    assert "Step 1 approved, waiting for step 2 · Asked: Bob Approver or anyone in Security" in flat
    assert "Alice Approver" not in flat and "DB Leads" not in flat
    assert replies(sb, after) == []
    assert len(sb.slack.calls_to("chat.update")) == 1
    # Nobody is asked personally on a non-personal route, and reminders name the new reviewers.
    assert personal_asks(sb, "bob") == []
    ctx = json.loads(relay.db.execute("SELECT context FROM reminders WHERE request_id = ?", [rid]).fetchone()[0])
    assert [s["name"] for s in ctx["reviewer_steps"]] == ["Security"] and ctx["step"] == 2
