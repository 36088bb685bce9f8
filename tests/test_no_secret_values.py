"""No secret field value ever reaches Slack, and SS is never asked for one.

The SS stand-in's secrets carry field values (`secret_field_values()`). Every Slack call the
Slack stand-in records (Web API calls and response_url posts) and every ack body and log line
is swept for them, across the secrets flows (search, recent, launch, request access: their
modules sweep each test with the `no_secret_values` fixture) and, here, across the stories of
the events, interactions and Home tab suites, re-run under the sweep. No value-returning SS
endpoint (`/api/v1/secrets/{id}`, `/fields/`, `/restricted`) may ever be called.
"""

from __future__ import annotations

import pytest

import test_events
import test_home
import test_interactions
from relay.slack import search
from secret_payloads import (assert_no_secret_values, click_in_modal, relay_for_secrets, shortcut, submission,
                             submit, text, top_modal, updated)
from slack_payloads import click_home, click_message, home_opened, send, send_event, sign_in, wait_until
from conftest import cycle


def test_every_secrets_flow_is_swept(sandbox, make_relay, caplog):
    """One person does everything the secrets features offer; every byte sent to Slack is swept."""
    sb = sandbox
    viewers = [sb[n].ss_id for n in ("rita", "alice", "bob")]
    box = sb.ss.add_secret("prod-db-replica", viewers=viewers, fields={"password": "FIELD-VALUE-replica"},
                           launchers=[{"launcherId": 1, "launcherName": "RDP", "promptedField": True,
                                       "restrictedHosts": ["db-r1"]},
                                      {"launcherId": 2, "launcherName": "SSH", "promptedField": False,
                                       "restrictedHosts": []}])
    sb.ss.touch_recent(sb["rita"].ss_id, box)
    sb.ss.touch_recent(sb["rita"].ss_id, sb.secrets["prod-db"])
    relay = relay_for_secrets(make_relay, sb)
    acks: list[str] = []
    sign_in(relay, sb, "rita")
    # recent secrets on the Home tab
    send_event(relay, home_opened(sb, "rita"))
    wait_until(lambda: "prod-db-replica" in text(sb.slack.home_view(sb["rita"].slack_id)), what="recent")
    # search, then launch with a pick, then a prompted launcher
    send(relay, shortcut(sb, "rita"))
    sid = top_modal(sb, "rita")
    acks.append(text(submit(relay, submission(sb, "rita", sid, {(search.SEARCH_BLOCK, search.SEARCH_INPUT): "prod"}))))
    updated(sb, sid, lambda v: f"secret:{box}" in text(v))
    send(relay, click_in_modal(sb, "rita", sid, search.LAUNCH, str(box)))
    lid = top_modal(sb, "rita", method="views.push")
    updated(sb, lid, lambda v: search.LAUNCH_PICK in text(v))
    send(relay, click_in_modal(sb, "rita", lid, search.LAUNCH_PICK, f"{box}:2"))
    updated(sb, lid, lambda v: search.LAUNCH_LINK in text(v))
    send(relay, click_in_modal(sb, "rita", lid, search.LAUNCH_PICK, f"{box}:1"))
    updated(sb, lid, lambda v: v.get("callback_id") == search.PROMPT_CALLBACK)
    acks.append(text(submit(relay, submission(sb, "rita", lid, {(search.PROMPT_BLOCK, search.PROMPT_INPUT):
                                                                   ("select", "db-r1")}))))
    updated(sb, lid, lambda v: search.LAUNCH_LINK in text(v) and "RDP" in text(v))
    # request access to prod-db, the poll tells the approvers, Alice approves from her message
    send(relay, click_home(sb, "rita", search.REQUEST_ACCESS, sb.secrets["prod-db"]))
    fid = top_modal(sb, "rita", opened=2)
    updated(sb, fid, lambda v: v.get("callback_id") == search.REQUEST_CALLBACK)
    acks.append(text(submit(relay, submission(sb, "rita", fid, {
        (search.COMMENT_BLOCK, search.COMMENT_INPUT): "restore last night's backup"}))))
    updated(sb, fid, lambda v: "was sent" in text(v))
    cycle(relay)
    wait_until(lambda: sb.slack.ephemerals(sb["alice"].slack_id), what="Alice asked")
    sign_in(relay, sb, "alice")
    rid = max(sb.ss.world.requests)
    send(relay, click_home(sb, "alice", "approve", rid))
    sb.ss.wait_for(lambda c: c.method == "PUT" and c.user == "alice")
    cycle(relay)
    msg = wait_until(lambda: next((m for m in sb.slack.messages(sb["rita"].slack_id) if "approved" in m["text"]),
                                  None), what="Rita told")
    send(relay, click_message(sb, "rita", search.LAUNCH, sb.secrets["prod-db"], msg, ephemeral=False))
    wait_until(lambda: [c for c in sb.ss.calls_to(r"/launchers/secret\Z", "POST")
                        if c.body.get("secretId") == sb.secrets["prod-db"]], what="launch as Rita")
    wait_until(lambda: any(search.LAUNCH_LINK in text(c.args.get("view")) and "SQL Server" in text(c.args.get("view"))
                           for c in sb.slack.calls_to("views.update")), what="the launch link")
    # Validating: a real amount of traffic was swept, and none of it carries a value
    swept = assert_no_secret_values(sb, caplog.text, *acks)
    assert swept >= 20
    assert {"views.open", "views.push", "views.update", "views.publish", "chat.postMessage",
            "chat.postEphemeral"} <= {c.method for c in sb.slack.calls}


# the other suites' stories, re-run under the sweep (modules imported, so pytest does not
# collect their tests twice here)
STORIES = [
    (test_events.test_new_pending_request_asks_each_reviewer_once, {"mode": "dm"}),
    (test_events.test_approval_tells_the_requester_and_closes_cards, {"mode": "dm"}),
    (test_events.test_approval_tells_the_requester_and_closes_cards, {"mode": "ephemeral"}),
    (test_events.test_denial_tells_the_requester, {"mode": "ephemeral"}),
    (test_events.test_cancel_tells_the_reviewers_who_were_told, {"mode": "dm"}),
    (test_interactions.test_approve_from_a_dm_card_acts_as_the_reviewer_and_updates_the_card, {}),
    (test_interactions.test_deny_from_an_ephemeral_message_replaces_it_through_response_url, {}),
    (test_interactions.test_cancel_from_the_home_tab_acts_as_the_requester, {}),
    (test_interactions.test_click_without_a_session_signs_in_then_completes_the_action, {}),
    (test_interactions.test_ask_reason_opens_a_modal_and_uses_the_reason, {}),
    (test_home.test_app_home_opened_publishes_each_persons_view_and_skips_identical_ones, {}),
]


@pytest.mark.parametrize("story,kw", STORIES, ids=[f"{s.__module__}.{s.__name__}[{','.join(k.values())}]"
                                                   for s, k in STORIES])
def test_other_stories_send_no_secret_value(sandbox, make_relay, caplog, story, kw):
    story(sandbox, make_relay, **kw)
    assert assert_no_secret_values(sandbox, caplog.text) > 0
