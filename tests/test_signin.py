"""The sign-in page, as a browser uses it, against the running relay and the SS stand-in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from freezegun import freeze_time

from relay.errors import ConfigError
from slack_payloads import TEAM, start_relay, submit_signin


def new_state(relay, sb, who: str) -> str:
    return relay.interactions.sessions.new_state(TEAM, sb[who].slack_id)


def get_page(relay, state: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{relay.port}/signin", params={"state": state}, timeout=10)


def test_sign_in_links_the_person_and_stores_only_encrypted_tokens(sandbox, make_relay, tmp_path):
    sb = sandbox
    relay = start_relay(make_relay, sb)
    state = new_state(relay, sb, "alice")
    page = get_page(relay, state)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "<script" not in page.text and "http" not in page.text.split("<body>", 1)[1]   # no external assets
    assert '<label for="password">' in page.text
    r = submit_signin(relay, state, "alice", sb["alice"].password)
    assert r.status_code == 200 and "Alice Approver" in r.text
    row = relay.db.execute("SELECT slack_user, slack_team, ss_user_id, ss_username FROM slack_links").fetchone()
    assert tuple(row) == (sb["alice"].slack_id, TEAM, sb["alice"].ss_id, "alice")
    # the Home tab is republished, signed in
    sb.slack.wait_for("views.publish", lambda c: "Log off" in str(c.args))
    # the password went to SS once, with the password grant
    (login,) = [c for c in sb.ss.calls_to("/oauth2/token") if c.body.get("username") == "alice"]
    assert login.body["grant_type"] == "password" and login.body["password"] == "***"
    # nothing in the database file is a token or the password in plain text
    relay.db.execute("PRAGMA wal_checkpoint(FULL)")
    raw = b"".join(p.read_bytes() for p in Path(relay.cfg.storage.path).parent.glob("relay*.db*"))
    tokens = sb.ss.issued_tokens()
    assert tokens
    for t in tokens:
        assert t.encode() not in raw
    assert sb["alice"].password.encode() not in raw
    # and the state hash is stored, not the state
    assert state.encode() not in raw


def test_wrong_password_shows_the_form_again_and_keeps_the_state(sandbox, make_relay):
    sb = sandbox
    relay = start_relay(make_relay, sb)
    state = new_state(relay, sb, "alice")
    r = submit_signin(relay, state, "alice", "not-her-password")
    assert r.status_code == 200
    assert "did not accept that username, password and domain" in r.text
    assert 'value="alice"' in r.text and "not-her-password" not in r.text
    assert not relay.interactions.sessions.has_session(sb["alice"].slack_id)
    r = submit_signin(relay, state, "alice", sb["alice"].password)
    assert r.status_code == 200 and "Signed in" in r.text


def test_otp_required_then_given(sandbox, make_relay):
    sb = sandbox
    sb.add_person("olga", display_name="Olga Otp", otp="123456")
    relay = start_relay(make_relay, sb)
    state = new_state(relay, sb, "olga")
    r = submit_signin(relay, state, "olga", sb["olga"].password)
    assert r.status_code == 200 and "enter the current code as well" in r.text
    r = submit_signin(relay, state, "olga", sb["olga"].password, otp="123456")
    assert "Signed in" in r.text
    assert [c for c in sb.ss.calls_to("/oauth2/token") if c.body.get("username") == "olga"][-1].status == 200


def test_a_used_state_is_a_400_page(sandbox, make_relay):
    sb = sandbox
    relay = start_relay(make_relay, sb)
    state = new_state(relay, sb, "alice")
    assert "Signed in" in submit_signin(relay, state, "alice", sb["alice"].password).text
    assert get_page(relay, state).status_code == 400
    r = submit_signin(relay, state, "bob", sb["bob"].password)
    assert r.status_code == 400 and "<form" not in r.text
    assert relay.db.execute("SELECT COUNT(*) FROM slack_links").fetchone()[0] == 1


def test_an_unknown_state_is_a_400_page(sandbox, make_relay):
    relay = start_relay(make_relay, sandbox)
    for state in ("", "made-up", "x" * 5000):
        r = get_page(relay, state)
        assert r.status_code == 400 and "<form" not in r.text
        assert r.headers["Cache-Control"] == "no-store"
    r = submit_signin(relay, "made-up", "alice", sandbox["alice"].password)
    assert r.status_code == 400
    assert [c for c in sandbox.ss.calls_to("/oauth2/token") if c.body.get("username") == "alice"] == []


def test_an_expired_state_is_a_400_page(sandbox, make_relay):
    sb = sandbox
    relay = start_relay(make_relay, sb)
    start = datetime.now(timezone.utc)
    with freeze_time(start) as frozen:
        state = new_state(relay, sb, "alice")
        frozen.move_to(start + timedelta(minutes=9, seconds=59))
        assert relay.interactions.signin.get({"QUERY_STRING": f"state={state}"})[0] == 200
        frozen.move_to(start + timedelta(minutes=10, seconds=1))
        status, headers, body = relay.interactions.signin.get({"QUERY_STRING": f"state={state}"})
        assert status == 400 and b"<form" not in body
        environ = {"ssrelay.body": f"state={state}&username=alice&password=x".encode()}
        assert relay.interactions.signin.post(environ)[0] == 400
    assert [c for c in sb.ss.calls_to("/oauth2/token") if c.body.get("username") == "alice"] == []


def test_echoed_values_are_html_escaped(sandbox, make_relay):
    sb = sandbox
    relay = start_relay(make_relay, sb)
    state = new_state(relay, sb, "alice")
    evil = '"><script>alert(1)</script>'
    r = submit_signin(relay, state, evil, "x", domain="<b>dom</b>")
    assert r.status_code == 200
    assert "<script>alert(1)</script>" not in r.text and "<b>dom</b>" not in r.text
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert "&lt;b&gt;dom&lt;/b&gt;" in r.text


def test_log_off_revokes_the_session_in_secret_server(sandbox, make_relay):
    from slack_payloads import click_home, send, sign_in
    sb = sandbox
    relay = start_relay(make_relay, sb)
    sign_in(relay, sb, "alice")
    sb.slack.wait_for("views.publish", lambda c: "Log off" in str(c.args))
    send(relay, click_home(sb, "alice", "logoff", 0))
    sb.slack.wait_for("views.publish", lambda c: "Sign in to Secret Server" in str(c.args))
    assert sb.ss.calls_to("/api/v1/oauth-expiration", "POST")[-1].user == "alice"
    assert not relay.interactions.sessions.has_session(sb["alice"].slack_id)
    assert relay.db.execute("SELECT COUNT(*) FROM user_sessions").fetchone()[0] == 0


def test_starting_without_an_encryption_key_is_a_clear_error(sandbox, tmp_path):
    from relay.runtime import Relay
    cfg = sandbox.config(str(tmp_path / "nokey.db"), STORAGE_ENCRYPTION_KEY="")
    with pytest.raises(ConfigError) as err:
        Relay(cfg)
    assert "storage.encryption_key" in str(err.value) and "ssrelay keygen" in str(err.value)


def test_the_page_names_the_slack_account_being_linked(sandbox, make_relay):
    sb = sandbox
    relay = start_relay(make_relay, sb)
    page = get_page(relay, new_state(relay, sb, "alice"))
    assert "This links your Secret Server account to the Slack account <strong>Alice Approver (@alice)</strong>" in page.text


def test_a_forwarded_link_cannot_take_over_an_account_linked_elsewhere(sandbox, make_relay):
    # Alice is signed in from her own Slack account; Mallory (Bob's Slack account here) forwards
    # her his own sign-in link, and she types her password into it. Even with the e-mail check
    # off (it alone refuses this), a link is never moved.
    sb = sandbox
    relay = start_relay(make_relay, sb, USERS_SIGNIN_REQUIRES_EMAIL_MATCH="false")
    assert submit_signin(relay, new_state(relay, sb, "alice"), "alice", sb["alice"].password).status_code == 200
    forwarded = new_state(relay, sb, "bob")
    r = submit_signin(relay, forwarded, "alice", sb["alice"].password)
    assert r.status_code == 409 and "already linked to another Slack account" in r.text
    rows = relay.db.execute("SELECT slack_user, ss_user_id FROM slack_links").fetchall()
    assert [tuple(x) for x in rows] == [(sb["alice"].slack_id, sb["alice"].ss_id)]
    assert relay.interactions.sessions.ss_user_id(sb["bob"].slack_id) is None
    # the token SS issued for the refused sign-in was revoked
    assert sb.ss.calls_to("/api/v1/oauth-expiration", "POST")
