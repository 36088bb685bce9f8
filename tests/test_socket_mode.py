"""Socket Mode: the same listeners over a loopback WebSocket that speaks Slack's envelopes."""

from __future__ import annotations

import time

import pytest

from relay.sandbox.socket_mode import SocketModeStandIn
from slack_payloads import click_home, home_opened, sign_in, start_relay


@pytest.fixture
def socket_mode(sandbox):
    sm = SocketModeStandIn().start()
    sandbox.slack.attach_socket_mode(sm)
    try:
        yield sm
    finally:
        sm.stop()


def test_approve_over_socket_mode_with_a_reconnect(sandbox, make_relay, socket_mode):
    sb, sm = sandbox, socket_mode
    first = sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment="one")
    second = sb.ss.create_request(sb.secrets["wiki-admin"], sb["rita"].ss_id, comment="two")
    relay = start_relay(make_relay, sb, SLACK_MODE="socket")
    sm.wait_for_connection()
    sign_in(relay, sb, "alice")          # the sign-in page is still served over HTTP
    # Alice approves from her Home tab: the envelope is acked at once, the work follows.
    t0 = time.monotonic()
    env = sm.send_interactive(click_home(sb, "alice", "approve", first))
    ack = sm.wait_for_ack(env)
    assert time.monotonic() - t0 < 3.0
    assert ack["envelope_id"] == env
    put = sb.ss.wait_for(lambda c: c.method == "PUT" and c.status == 200)
    assert put.user == "alice" and put.body["status"] == "Approved"
    sb.slack.wait_for("views.publish", lambda c: "You approved access to prod-db" in str(c.args))
    # Slack asks the client to reconnect; it does, and the next click works.
    assert sm.disconnect("refresh_requested") == 1
    sm.wait_for_connection(timeout=10, total=2)
    env = sm.send_interactive(click_home(sb, "alice", "deny", second))
    sm.wait_for_ack(env)
    sb.ss.wait_for(lambda c: c.method == "PUT" and c.body.get("status") == "Denied" and c.status == 200)
    assert sb.ss.get_request(second)["status"] == "Denied"
    # Events arrive as events_api envelopes; a retry (same event_id) is handled once.
    sb.slack.reset()
    event = home_opened(sb, "bob", event_id="Ev0SOCKET1")
    sm.wait_for_ack(sm.send_events_api(event))
    sm.wait_for_ack(sm.send_events_api(event, retry_attempt=1, retry_reason="timeout"))
    sb.slack.wait_for("views.publish", lambda c: c.args["user_id"] == sb["bob"].slack_id)
    assert relay.interactions.wait_idle(timeout=10)
    assert len([c for c in sb.slack.calls_to("views.publish") if c.args["user_id"] == sb["bob"].slack_id]) == 1
    alice_home = sb.slack.home_view(sb["alice"].slack_id)
    assert "You denied access to wiki-admin" in str(alice_home) and "Log off" in str(alice_home)


def test_a_malformed_envelope_over_socket_mode_is_acked_and_nothing_breaks(sandbox, make_relay, socket_mode):
    # The same shape check as over HTTP: Bolt never reads a malformed payload; Slack gets its
    # ack (so it does not redeliver), the log gets one warning line, the next click works.
    import logging

    from test_http_surface import Tracebacks
    sb, sm = sandbox, socket_mode
    rid = sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment="one")
    relay = start_relay(make_relay, sb, SLACK_MODE="socket")
    sm.wait_for_connection()
    sign_in(relay, sb, "alice")
    caught = Tracebacks()
    logging.getLogger().addHandler(caught)
    try:
        for bad in ({"team": 1.5}, {"enterprise": True}, {"authorizations": {"a": 1}}, {"message": [1]}):
            env = sm.send_interactive({**click_home(sb, "alice", "approve", rid), **bad})
            assert sm.wait_for_ack(env)["envelope_id"] == env
        env = sm.send_interactive(click_home(sb, "alice", "approve", rid))
        sm.wait_for_ack(env)
        put = sb.ss.wait_for(lambda c: c.method == "PUT" and c.status == 200)
        assert put.user == "alice"
        assert relay.interactions.wait_idle(timeout=10)
    finally:
        logging.getLogger().removeHandler(caught)
    assert caught.records == []
    assert len(sb.ss.calls_to("/api/v1/secret-access-requests$", "PUT")) == 1


def test_an_envelope_no_listener_handles_is_acked_over_socket_mode(sandbox, make_relay, socket_mode):
    # An event the app does not listen to, and a click on a button that is not the relay's:
    # Slack gets its ack (it would redeliver the event, and show the person an error), as
    # the HTTP endpoint acks them, and nothing is done.
    sb, sm = sandbox, socket_mode
    rid = sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment="one")
    start_relay(make_relay, sb, SLACK_MODE="socket")
    sm.wait_for_connection()
    event = home_opened(sb, "bob")
    event["event"] = {"type": "app_mention", "user": sb["bob"].slack_id, "text": "<@U0BOT> hi",
                      "channel": "C0DBTEAM", "ts": "1700000000.000100", "event_ts": "1700000000.000100"}
    env = sm.send_events_api(event)
    assert sm.wait_for_ack(env)["envelope_id"] == env
    env = sm.send_interactive(click_home(sb, "alice", "someone_elses_button", rid))
    assert sm.wait_for_ack(env)["envelope_id"] == env
    assert sb.ss.calls_to("/api/v1/secret-access-requests$", "PUT") == []
