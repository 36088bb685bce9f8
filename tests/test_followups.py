"""Beyond Secret Server's own bot: the requester's confirmation, sensitive folders, cards that
answer an approver's questions, reminders. Stories through the relay's real clients against
the stand-ins, and the pure parts by equality."""

from __future__ import annotations

import json
from datetime import UTC

import pytest
from conftest import cycle
from slack_payloads import click_message, send, sign_in, start_relay, view_submission

MODES = ["ephemeral", "dm"]


def new_request(sb, secret="prod-db", **kw) -> int:
    return sb.ss.create_request(sb.secrets[secret], sb["rita"].ss_id, comment="rotate the keys",
                                ticket="INC-42", **kw)


def confirmations(sb, who="rita") -> list[dict]:
    return [m for m in sb.slack.messages(sb[who].slack_id) if "went to" in (m.get("text") or "")]


def buttons(message: dict) -> list[tuple[str, str]]:
    return [(e["action_id"], e.get("value") or e.get("url", "")) for b in message.get("blocks") or []
            if b["type"] == "actions" for e in b["elements"]]


# ---------------------------------------------------------------------- requester confirmation
@pytest.mark.parametrize("mode", MODES)
def test_the_requester_is_told_once_where_the_request_went(sandbox, make_relay, mode):
    # Test setup: Rita asks for prod-db; the group DB Approvers (Alice, Bob) reviews it.
    relay = make_relay(SLACK_APPROVER_MESSAGES=mode)
    rid = new_request(sandbox)
    # Test execution: three polls, and a restart on the same database.
    cycle(relay)
    cycle(relay)
    from relay.runtime import Relay
    again = Relay(relay.cfg)
    try:
        cycle(again)
    finally:
        again.stop()
        again.db.close()
    # Validating: one DM, naming who was asked, with Cancel request for this request.
    (told,) = confirmations(sandbox)
    assert told["text"] == "Your request for prod-db went to Alice Approver, Bob Approver (DB Approvers)"
    assert buttons(told) == [("cancel_request", str(rid))]
    assert confirmations(sandbox, "alice") == [] and confirmations(sandbox, "bob") == []


def test_a_relay_started_on_a_backlog_confirms_only_recent_requests(sandbox, make_relay):
    # Test setup: Rita asked for prod-db two hours ago and for wiki-admin a minute ago; the
    # relay starts now, on an empty database.
    from freezegun import freeze_time
    sb = sandbox
    with freeze_time(T0) as clock:
        old = new_request(sb)
        clock.move_to(at(119))
        recent = new_request(sb, "wiki-admin")
        clock.move_to(at(120))
        relay = make_relay()
        cycle(relay)
    # Validating: the recent request is confirmed; the old one is not, but its reviewers are asked.
    (told,) = confirmations(sb)
    assert buttons(told) == [("cancel_request", str(recent))]
    assert any(str(old) in json.dumps(m) for m in sb.slack.ephemerals(sb["alice"].slack_id))


def test_no_confirmation_when_switched_off(sandbox, make_relay):
    relay = make_relay(APPROVALS_CONFIRM_TO_REQUESTER="false")
    new_request(sandbox)
    cycle(relay)
    assert confirmations(sandbox) == []


def test_cancel_request_on_the_confirmation_cancels_as_the_requester(sandbox, make_relay):
    sb = sandbox
    rid = new_request(sb)
    relay = start_relay(make_relay, sb)
    sign_in(relay, sb, "rita")
    (told,) = confirmations(sb)
    send(relay, click_message(sb, "rita", "cancel_request", rid, told, ephemeral=False))
    update = sb.slack.wait_for("chat.update", lambda c: c.args.get("ts") == told["ts"])[0]
    assert sb.ss.get_request(rid)["status"] == "Canceled"
    (put,) = sb.ss.calls_to("/api/v1/secret-access-requests$", "PUT")
    assert put.user == "rita" and put.body["status"] == "Canceled"
    assert "actions" not in json.dumps([b["type"] for b in update.args["blocks"]])


# ---------------------------------------------------------------------- sensitive folders
@pytest.mark.parametrize("path,prefix,hit", [
    ("\\Production\\Databases", "\\Production", True),
    ("\\production\\databases", "\\PRODUCTION\\Databases", True),
    ("\\Production", "Production", True),
    ("\\Production-old\\DB", "\\Production", False),
    ("\\Prod\\DB", "\\Production", False),
    ("\\Staging\\Production", "\\Production", False),
    ("", "\\Production", False),
])
def test_sensitive_prefix_matches_whole_segments_ignoring_case(path, prefix, hit):
    from relay.routes import sensitive_folder
    assert sensitive_folder(path, [prefix]) is hit


@pytest.mark.parametrize("mode", MODES)
def test_cards_for_a_sensitive_folder_carry_a_banner(sandbox, make_relay, mode):
    relay = make_relay(SLACK_APPROVER_MESSAGES=mode, APPROVALS_SENSITIVE_FOLDERS='["\\\\production"]')
    new_request(sandbox)
    cycle(relay)
    method = "chat.postEphemeral" if mode == "ephemeral" else "chat.postMessage"
    cards = [c for c in sandbox.slack.calls_to(method) if '"approve"' in json.dumps(c.args.get("blocks"))]
    assert len(cards) == 2
    for c in cards:
        banner = c.args["blocks"][1]
        assert banner == {"type": "section", "text": {
            "type": "mrkdwn", "text": ":warning: *Sensitive folder:* \\Production\\Databases"}}


def test_no_banner_outside_the_sensitive_folders(sandbox, make_relay):
    relay = make_relay(APPROVALS_SENSITIVE_FOLDERS='["\\\\Finance"]')
    new_request(sandbox)
    cycle(relay)
    assert "Sensitive folder" not in json.dumps([c.args for c in sandbox.slack.calls_to("chat.postEphemeral")])


def test_approve_on_a_sensitive_request_asks_a_reason_before_writing(sandbox, make_relay):
    # Test setup: \Production is sensitive; ask_reason is off; Bob has a DM card and a session.
    sb = sandbox
    rid = new_request(sb)
    relay = start_relay(make_relay, sb, SLACK_APPROVER_MESSAGES="dm",
                        APPROVALS_SENSITIVE_FOLDERS='["\\\\Production"]')
    sign_in(relay, sb, "bob")
    card = next(m for m in sb.slack.messages(sb["bob"].slack_id) if f"'value': '{rid}'" in repr(m["blocks"]))
    # Test execution: Bob clicks Approve.
    send(relay, click_message(sb, "bob", "approve", rid, card, ephemeral=False))
    opened = sb.slack.wait_for("views.open")[0]
    view = dict(opened.args["view"], id="V0MODAL", hash="1.x")
    # Validating: a modal with the banner and a required reason; nothing written yet.
    assert view["blocks"][0]["text"]["text"] == ":warning: *Sensitive folder:* \\Production\\Databases"
    assert [b["optional"] for b in view["blocks"] if b["type"] == "input"] == [False]
    assert sb.ss.calls_to("/api/v1/secret-access-requests$", "PUT") == []
    r = send(relay, view_submission(sb, "bob", view, "  "))
    assert r.json()["response_action"] == "errors"
    assert sb.ss.calls_to("/api/v1/secret-access-requests$", "PUT") == []
    send(relay, view_submission(sb, "bob", view, "change window CHG-7"))
    sb.slack.wait_for("chat.update")
    (put,) = sb.ss.calls_to("/api/v1/secret-access-requests$", "PUT")
    assert put.user == "bob" and put.body["status"] == "Approved"
    assert put.body["responseComment"] == "change window CHG-7"


def test_approve_outside_the_sensitive_folders_writes_at_once(sandbox, make_relay):
    sb = sandbox
    rid = new_request(sb)
    relay = start_relay(make_relay, sb, SLACK_APPROVER_MESSAGES="dm", APPROVALS_SENSITIVE_FOLDERS='["\\\\Finance"]')
    sign_in(relay, sb, "bob")
    card = next(m for m in sb.slack.messages(sb["bob"].slack_id) if f"'value': '{rid}'" in repr(m["blocks"]))
    send(relay, click_message(sb, "bob", "approve", rid, card, ephemeral=False))
    sb.slack.wait_for("chat.update")
    assert sb.slack.calls_to("views.open") == []
    assert len(sb.ss.calls_to("/api/v1/secret-access-requests$", "PUT")) == 1


# ---------------------------------------------------------------------- cards at a glance
STEPS = [
    {"name": "Carol Lead", "group_id": 7, "is_user": True, "members": [[30, "Carol Lead"]]},
    {"name": "DB Approvers", "group_id": 8, "is_user": False,
     "members": [[31, "Alice"], [32, "Bob"], [33, "Dan"], [34, "Eve"], [35, "Fay"], [20, "Rita"]]},
]


def test_glance_says_when_where_and_why_this_reviewer_is_asked():
    from datetime import datetime, timedelta

    from relay.model import AccessRequest
    from relay.slack import cards
    now = datetime(2026, 11, 28, 10, 45, tzinfo=UTC)
    req = AccessRequest(id=5, secret_id=1005, secret_name="prod-db", folder_id=10, requester_id=20,
                        requester_username="rita", status="Pending", requested_at=now - timedelta(minutes=3))
    payload = {"folder_path": "\\Production\\DB", "reviewer_steps": STEPS}
    card = [{"type": "header"}, {"type": "section"}, {"type": "actions"}]
    assert cards.decorate_approval(card, req, payload, 32, now, sensitive_prefixes=("\\production",)) == [
        {"type": "header"},
        {"type": "section", "text": {"type": "mrkdwn", "text": ":warning: *Sensitive folder:* \\Production\\DB"}},
        {"type": "section"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            "Requested 3 min ago (<!date^1795862520^{date_short_pretty} {time}|2026-11-28 10:42 UTC>)"
            " · Folder \\Production\\DB · You are asked as a member of DB Approvers."}]},
        {"type": "actions"},
    ]
    assert cards.asked_as(STEPS, 30) == "You are a named reviewer of this request."
    assert cards.asked_as(STEPS, 99) == ""


def test_who_is_asked_names_a_few_and_counts_the_rest_never_the_requester():
    from relay.slack import cards
    assert cards.asked_line(STEPS, 20) == "Carol Lead, Alice, Bob (and 3 more in DB Approvers)"
    assert cards.asked_line(STEPS, 20, joiner="or anyone in") == "Carol Lead, Alice, Bob or anyone in DB Approvers"
    assert cards.asked_line(STEPS[1:], 20, limit=5) == "Alice, Bob, Dan, Eve, Fay (DB Approvers)"


@pytest.mark.parametrize("minutes,said", [(0, "just now"), (3, "3 min ago"), (59, "59 min ago"),
                                          (120, "2 h ago"), (47 * 60, "47 h ago"), (72 * 60, "3 days ago")])
def test_ago_in_an_approvers_words(minutes, said):
    from datetime import datetime, timedelta

    from relay.slack.cards import ago
    now = datetime(2026, 11, 28, 10, 45, tzinfo=UTC)
    assert ago(now - timedelta(minutes=minutes), now) == said


def test_each_reviewer_is_told_why_they_are_asked(sandbox, make_relay):
    # Test setup: the step names Alice herself and the group DB Approvers (Alice, Bob).
    sb = sandbox
    relay = make_relay(SLACK_APPROVER_MESSAGES="dm")
    sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, steps=[[sb["alice"].ss_id, sb.groups["approvers"]]])
    cycle(relay)

    def glance(who: str) -> str:
        (card,) = [m for m in sb.slack.messages(sb[who].slack_id) if '"approve"' in json.dumps(m["blocks"])]
        return next(b for b in card["blocks"] if b["type"] == "context")["elements"][0]["text"]
    assert glance("alice").endswith("· Folder \\Production\\Databases · You are a named reviewer of this request.")
    assert glance("bob").endswith("· Folder \\Production\\Databases · You are asked as a member of DB Approvers.")
    assert glance("bob").startswith("Requested just now (<!date^")
    (told,) = confirmations(sb)
    assert told["text"] == "Your request for prod-db went to Alice Approver, Bob Approver (DB Approvers)"


# ---------------------------------------------------------------------- reminders
def test_reminder_schedule_doubles_and_stops_after_three():
    from datetime import datetime, timedelta

    from relay.reminders import (
        ReminderPolicy,
        ReminderState,
        next_reminder_at,
        reminders_due,
    )
    t0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    policy = ReminderPolicy(after_minutes=30)

    def due(minutes: float, sent: int = 0, status: str = "Pending") -> list[int]:
        return reminders_due(ReminderState(t0, status, sent), t0 + timedelta(minutes=minutes), policy)
    assert due(29.9) == [] and due(30) == [1] and due(59, sent=1) == [] and due(60, sent=1) == [2]
    assert due(120, sent=2) == [3] and due(10_000, sent=3) == []
    assert due(125) == [1, 2, 3]                      # a relay that was away sees all three due
    assert due(60, status="Approved") == []
    assert reminders_due(ReminderState(t0), t0 + timedelta(days=9), ReminderPolicy(after_minutes=0)) == []
    assert next_reminder_at(ReminderState(t0, sent=1), policy) == t0 + timedelta(minutes=60)
    assert next_reminder_at(ReminderState(t0, sent=3), policy) is None
    half = ReminderPolicy(after_minutes=0.5)
    assert next_reminder_at(ReminderState(t0), half) == t0 + timedelta(seconds=30)


def reminders_to(sb, who: str) -> list[dict]:
    return [m for m in sb.slack.ephemerals(sb[who].slack_id) if "Reminder:" in (m.get("text") or "")]


T0 = "2026-11-30 09:00:00"


def at(minutes: float):
    from datetime import datetime, timedelta
    return datetime(2026, 11, 30, 9, 0, tzinfo=UTC) + timedelta(minutes=minutes)


def test_reviewers_are_reminded_at_30_60_and_120_minutes(sandbox, make_relay):
    from freezegun import freeze_time
    sb = sandbox
    with freeze_time(T0) as clock:
        # Test setup: Rita asks at 09:00; Alice and Bob are asked.
        relay = make_relay()
        rid = new_request(sb)
        cycle(relay)
        seen = []
        # Test execution: a poll at each of these minutes.
        for minute in (29, 30, 31, 59, 60, 119, 120, 240, 500):
            clock.move_to(at(minute))
            cycle(relay)
            seen.append((minute, len(reminders_to(sb, "alice")), len(reminders_to(sb, "bob"))))
    # Validating: one reminder each at 30, 60 and 120 minutes, none otherwise, never a fourth.
    assert seen == [(29, 0, 0), (30, 1, 1), (31, 1, 1), (59, 1, 1), (60, 2, 2), (119, 2, 2),
                    (120, 3, 3), (240, 3, 3), (500, 3, 3)]
    first, _, third = reminders_to(sb, "bob")
    assert first["text"] == (":alarm_clock: Reminder: Rita Requester's request for prod-db is still "
                             "waiting for a review (waiting 30 min)")
    assert "(waiting 2 h)" in third["text"]
    assert [("approve", str(rid)), ("deny", str(rid))] == buttons(first)[:2]
    assert reminders_to(sb, "rita") == []


def test_no_reminder_after_the_decision(sandbox, make_relay):
    from freezegun import freeze_time
    sb = sandbox
    with freeze_time(T0) as clock:
        relay = make_relay()
        rid = new_request(sb)
        cycle(relay)
        clock.move_to(at(30))
        cycle(relay)
        assert len(reminders_to(sb, "alice")) == 1
        # Bob approves in SS's web UI at 09:45.
        clock.move_to(at(45))
        sb.ss.approve(rid, sb["bob"].ss_id, "ok", expiration=at(600))
        for minute in (60, 120, 240):
            clock.move_to(at(minute))
            cycle(relay)
    assert len(reminders_to(sb, "alice")) == 1 and len(reminders_to(sb, "bob")) == 1
    assert relay.db.execute("SELECT COUNT(*) FROM reminders").fetchone()[0] == 0


def test_a_reminder_queued_before_the_decision_is_not_sent_after_it(sandbox, make_relay):
    from freezegun import freeze_time
    sb = sandbox
    with freeze_time(T0) as clock:
        relay = make_relay()
        rid = new_request(sb)
        cycle(relay)
        clock.move_to(at(30))
        sb.slack.fail("chat.postEphemeral", status=503, times=None)   # Slack is down at 09:30
        cycle(relay)
        sb.ss.deny(rid, sb["alice"].ss_id, "no")
        sb.slack.clear_faults()
        clock.move_to(at(40))
        cycle(relay)
        clock.move_to(at(41))
        cycle(relay)
    assert reminders_to(sb, "alice") == [] and reminders_to(sb, "bob") == []


def test_reminders_are_never_sent_twice_across_a_restart(sandbox, make_relay):
    from freezegun import freeze_time

    from relay.runtime import Relay
    sb = sandbox
    with freeze_time(T0) as clock:
        relay = make_relay()
        new_request(sb)
        cycle(relay)
        clock.move_to(at(30))
        cycle(relay)
        relay.stop()
        again = Relay(relay.cfg)
        try:
            for minute in (30, 31, 59):
                clock.move_to(at(minute))
                cycle(again)
            assert len(reminders_to(sb, "alice")) == 1
            clock.move_to(at(60))
            cycle(again)
            cycle(again)
        finally:
            again.stop()
            again.db.close()
    assert len(reminders_to(sb, "alice")) == 2 and len(reminders_to(sb, "bob")) == 2


@pytest.mark.parametrize("mode", MODES)
def test_a_relay_away_for_hours_sends_only_the_latest_reminder(sandbox, make_relay, mode):
    from freezegun import freeze_time
    sb = sandbox
    with freeze_time(T0) as clock:
        relay = make_relay(SLACK_APPROVER_MESSAGES=mode)
        rid = new_request(sb)
        cycle(relay)
        clock.move_to(at(180))
        cycle(relay)
        cycle(relay)
    if mode == "ephemeral":
        (only,) = reminders_to(sb, "alice")
    else:   # a fresh card replaces the first one: one card with buttons in the DM
        cards = [m for m in sb.slack.messages(sb["alice"].slack_id) if '"approve"' in json.dumps(m["blocks"])]
        (only,) = cards
        assert "Reminder:" in only["text"]
        assert relay.delivery.outbox.card(rid, sb["alice"].ss_id) == (only["channel"], only["ts"])
    assert "(waiting 3 h)" in only["text"]


def test_remind_after_zero_never_reminds(sandbox, make_relay):
    from freezegun import freeze_time
    sb = sandbox
    with freeze_time(T0) as clock:
        relay = make_relay(APPROVALS_REMIND_AFTER_MINUTES="0")
        new_request(sb)
        cycle(relay)
        clock.move_to(at(500))
        cycle(relay)
    assert reminders_to(sb, "alice") == []


@pytest.mark.parametrize("utc,tz,wait_h", [
    ("2026-11-30 19:59", "Europe/London", 0), ("2026-11-30 20:00", "Europe/London", 12),
    ("2026-11-30 07:30", "Europe/London", 0.5), ("2026-11-30 08:00", "Europe/London", 0),
    ("2026-11-30 12:00", "America/New_York", 1), ("2026-11-30 13:00", "America/New_York", 0),
    ("2026-11-30 02:00", "America/New_York", 11),
    ("2026-11-30 23:00", None, 0), ("2026-11-30 23:00", "Not/AZone", 0),
])
def test_quiet_hours_wait_for_eight_in_the_reviewers_zone(utc, tz, wait_h):
    from datetime import datetime

    from relay.reminders import quiet_wait
    now = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert quiet_wait(now, tz) == wait_h * 3600


def test_reminders_wait_out_the_night_and_only_the_latest_is_sent(sandbox, make_relay):
    from datetime import datetime, timedelta

    from freezegun import freeze_time
    sb = sandbox      # the stand-in's people are in Europe/London (UTC in November)
    t0 = datetime(2026, 11, 30, 19, 45, tzinfo=UTC)
    with freeze_time(t0) as clock:
        relay = make_relay()
        new_request(sb)
        cycle(relay)
        for minutes in (30, 60, 120, 600):      # 20:15, 20:45, 21:45, 05:45: all quiet
            clock.move_to(t0 + timedelta(minutes=minutes))
            cycle(relay)
        assert reminders_to(sb, "alice") == []
        clock.move_to(datetime(2026, 12, 1, 8, 0, 1, tzinfo=UTC))
        cycle(relay)
        cycle(relay)
    (only,) = reminders_to(sb, "alice")
    assert "(waiting 12 h)" in only["text"]
    assert len(reminders_to(sb, "bob")) == 1


def test_a_dm_reminder_whose_answer_was_lost_becomes_the_card_later_closed(sandbox, make_relay):
    from freezegun import freeze_time
    sb = sandbox

    def live_cards(who: str) -> list[dict]:
        return [m for m in sb.slack.messages(sb[who].slack_id)
                if any(b.get("type") == "actions" for b in m.get("blocks") or [])]

    with freeze_time(T0) as clock:
        # Test setup: DM cards at 09:00; at 09:30 Slack posts the first reminder card, then
        # drops the connection before answering.
        relay = make_relay(SLACK_APPROVER_MESSAGES="dm", APPROVALS_CONFIRM_TO_REQUESTER="false")
        rid = new_request(sb)
        cycle(relay)
        clock.move_to(at(30))
        sb.slack.fail("chat.postMessage", reset_after_accept=True, times=1)
        cycle(relay)
        (dropped,) = [c for c in sb.slack.calls_to("chat.postMessage") if not c.answered]
        owner = next(p for p in ("alice", "bob") if sb[p].slack_id == dropped.args["channel"])
        # Test execution: the reminder in doubt is looked for a minute later, then Bob approves.
        clock.move_to(at(31))
        cycle(relay)
        assert len(sb.slack.calls_to("conversations.history")) == 1
        assert len(live_cards(owner)) == 1, "the older card is removed: one card with buttons"
        sb.ss.approve(rid, sb["bob"].ss_id, "ok", expiration=at(600))
        clock.move_to(at(32))
        cycle(relay)
    # Validating: the reminder found in Slack is the card the decision rewrote; no card anywhere
    # keeps its buttons, and the lost reminder was never posted twice.
    for who in ("alice", "bob"):
        assert live_cards(who) == [], who
    (reminder,) = sb.slack.messages(sb[owner].slack_id)
    assert reminder["edited"] and "Approved by Bob Approver" in reminder["text"]
