"""Beyond Secret Server's own bot: the requester's confirmation, sensitive folders, cards that
answer an approver's questions, reminders. Stories through the relay's real clients against
the stand-ins, and the pure parts by equality."""

from __future__ import annotations

import json

import pytest
from conftest import cycle
from slack_payloads import click_message, send, sign_in, start_relay

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
