"""Beyond Secret Server's own bot: the requester's confirmation, sensitive folders, cards that
answer an approver's questions, reminders. Stories through the relay's real clients against
the stand-ins, and the pure parts by equality."""

from __future__ import annotations

import json

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
    return [(e["action_id"], e["value"]) for b in message.get("blocks") or [] if b["type"] == "actions"
            for e in b["elements"]]


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
    # Validating: one DM, naming who was asked, with Cancel request for this request.
    (told,) = confirmations(sandbox)
    assert told["text"] == "Your request for prod-db went to Alice Approver, Bob Approver (DB Approvers)"
    assert buttons(told) == [("cancel_request", str(rid))]
    assert confirmations(sandbox, "alice") == [] and confirmations(sandbox, "bob") == []


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
