"""Request access from Slack: the modal, the request created in SS as the requester, and the
approvers told by the normal poll."""

from __future__ import annotations

import pytest

from conftest import cycle
from relay.slack import search
from secret_payloads import (click_in_modal, relay_for_secrets, shortcut, submission, submit, text, top_modal,
                             updated)
from slack_payloads import click_home, send, sign_in, wait_until

CREATE = r"/api/v1/secret-access-requests\Z"
from secret_payloads import no_secret_values  # noqa: F401, E402  (the sweep fixture)

pytestmark = pytest.mark.usefixtures("no_secret_values")


def created_by(sb, who):
    return [c for c in sb.ss.calls_to(CREATE, "POST") if c.user == who]


def form(comment="", ticket=None) -> dict:
    values = {(search.COMMENT_BLOCK, search.COMMENT_INPUT): comment}
    if ticket is not None:
        values[(search.TICKET_BLOCK, search.TICKET_INPUT)] = ticket
    return values


def test_request_access_from_search_creates_it_as_the_user_and_the_poll_tells_approvers(sandbox, make_relay):
    sb = sandbox
    wiki = sb.secrets["wiki-admin"]
    relay = relay_for_secrets(make_relay, sb)
    sign_in(relay, sb, "rita")
    # Test execution: Rita searches, clicks Request access, explains, submits
    send(relay, shortcut(sb, "rita"))
    search_id = top_modal(sb, "rita")
    submit(relay, submission(sb, "rita", search_id, {(search.SEARCH_BLOCK, search.SEARCH_INPUT): "wiki"}))
    updated(sb, search_id, lambda v: search.REQUEST_ACCESS in text(v))
    send(relay, click_in_modal(sb, "rita", search_id, search.REQUEST_ACCESS, str(wiki)))
    form_id = top_modal(sb, "rita", method="views.push")
    view = updated(sb, form_id, lambda v: v.get("callback_id") == search.REQUEST_CALLBACK)
    assert "wiki-admin" in text(view)
    # an empty comment is refused in the ack, nothing is created
    ack = submit(relay, submission(sb, "rita", form_id, form("  ")))
    assert ack["response_action"] == "errors" and search.COMMENT_BLOCK in ack["errors"]
    assert created_by(sb, "rita") == []
    ack = submit(relay, submission(sb, "rita", form_id, form("update the on-call page", "")))
    assert ack["response_action"] == "update"
    done = updated(sb, form_id, lambda v: "was sent" in text(v))
    # Validating: SS got the request from Rita herself
    [call] = created_by(sb, "rita")
    assert call.body == {"secretId": wiki, "requestComment": "update the on-call page"}
    assert [c for c in sb.ss.calls_to(CREATE, "POST") if c.user != "rita"] == []
    rid = sb.ss.world.requests and max(sb.ss.world.requests)
    assert f"#{rid}" in text(done)
    # the normal poll tells the approvers
    sb.slack.reset()
    cycle(relay)
    asked = wait_until(lambda: {c.args["user"] for c in sb.slack.calls_to("chat.postEphemeral") if c.ok} >=
                       {sb["alice"].slack_id, sb["bob"].slack_id} and sb.slack.calls_to("chat.postEphemeral"),
                       what="approvers asked")
    assert all("update the on-call page" in text(c.args["blocks"]) for c in asked)
    assert sb["rita"].slack_id not in {c.args["user"] for c in asked}


def test_a_ticket_number_is_asked_for_where_ss_requires_one(sandbox, make_relay):
    sb = sandbox
    viewers = [sb[n].ss_id for n in ("rita", "alice", "bob")]
    sid = sb.ss.add_secret("payments-api", viewers=viewers, requires_approval=True, requires_ticket=True,
                           approvers=[sb.groups["approvers"]])
    relay = relay_for_secrets(make_relay, sb)
    sign_in(relay, sb, "rita")
    send(relay, click_home(sb, "rita", search.REQUEST_ACCESS, sid))
    form_id = top_modal(sb, "rita")
    updated(sb, form_id, lambda v: v.get("callback_id") == search.REQUEST_CALLBACK)
    submit(relay, submission(sb, "rita", form_id, form("deploy fix")))
    again = updated(sb, form_id, lambda v: "needs a ticket number" in text(v))
    ticket = next(b for b in again["blocks"] if b.get("block_id") == search.TICKET_BLOCK)
    assert ticket["optional"] is False
    comment = next(b for b in again["blocks"] if b.get("block_id") == search.COMMENT_BLOCK)
    assert comment["element"]["initial_value"] == "deploy fix"          # what she typed is kept
    # the form now requires the ticket in the ack
    ack = submit(relay, submission(sb, "rita", form_id, form("deploy fix", "")))
    assert ack["response_action"] == "errors" and search.TICKET_BLOCK in ack["errors"]
    submit(relay, submission(sb, "rita", form_id, form("deploy fix", "CHG-1234")))
    updated(sb, form_id, lambda v: "was sent" in text(v))
    assert created_by(sb, "rita")[-1].body == {"secretId": sid, "requestComment": "deploy fix",
                                               "ticketNumber": "CHG-1234"}


def test_request_access_needs_a_session_and_a_secret_that_needs_approval(sandbox, make_relay):
    sb = sandbox
    open_secret = sb.ss.add_secret("team-wiki", viewers=[sb["rita"].ss_id])
    relay = relay_for_secrets(make_relay, sb)
    # not signed in: the sign-in link, nothing asked of SS as Rita
    send(relay, click_home(sb, "rita", search.REQUEST_ACCESS, sb.secrets["wiki-admin"]))
    assert "/signin?state=" in text(sb.slack.modal(top_modal(sb, "rita")))
    assert [c for c in sb.ss.calls if c.user == "rita"] == []
    sign_in(relay, sb, "rita")
    send(relay, click_home(sb, "rita", search.REQUEST_ACCESS, open_secret))
    view = updated(sb, top_modal(sb, "rita", opened=2), lambda v: "does not need approval" in text(v))
    assert relay.cfg.secret_url(open_secret) in text(view)
    assert created_by(sb, "rita") == []
