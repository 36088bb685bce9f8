"""Sign-in guards as stories: a forwarded sign-in link links nothing, guessing is bounded (and
stays bounded across a restart), and the page never confirms a password to a guesser.
Browsers are `requests` against the running relay; Secret Server and Slack are the stand-ins."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from freezegun import freeze_time
from slack_payloads import (
    TEAM,
    click_home,
    home_opened,
    poll_now,
    send,
    send_event,
    sign_in,
    start_relay,
    submit_signin,
)
from waiting import wait_until

from relay.guesses import LimitScope, Refusal, refusal
from relay.identity import BindingReason, decide

TOKEN = "/oauth2/token"
PUT = "/api/v1/secret-access-requests$"
REFUSED = "Secret Server did not accept that username, password and domain."


def new_state(relay, sb, who: str) -> str:
    return relay.interactions.sessions.new_state(TEAM, sb[who].slack_id)


def logins(sb, username: str) -> list:
    """Password grants SS received for this username (any case)."""
    return [c for c in sb.ss.calls_to(TOKEN, "POST")
            if (c.body or {}).get("grant_type") == "password"
            and str(c.body.get("username", "")).lower() == username.lower()]


def links(relay) -> list[tuple]:
    return [tuple(r) for r in relay.db.execute("SELECT slack_user, ss_user_id FROM slack_links").fetchall()]


def writes_as(sb, username: str) -> list:
    """Everything SS was asked to change as this person (sign-in and log-off excluded)."""
    return [c for c in sb.ss.calls if c.user == username and c.method in ("POST", "PUT", "DELETE", "PATCH")
            and not c.path.startswith(("/oauth2/", "/api/v1/oauth-expiration"))]


def with_mallory(sb):
    sb.add_person("mallory", display_name="Mallory Mole")
    return sb


def request_for_alice(sb) -> int:
    """Rita asks for prod-db: Alice (and Bob) review it."""
    return sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment="rotate the keys")


# ---------------------------------------------------------------------- identity binding
def test_decide_links_only_accounts_with_the_same_email():
    assert decide("Alice@Example.com ", "alice@example.COM", required=True).verified
    assert decide("alice@example.com", "mallory@example.com", required=True).reason is BindingReason.MISMATCH
    assert not decide("", "", required=True).allowed                  # two missing e-mails prove nothing
    assert decide(None, "a@x", required=True).reason is BindingReason.NO_SS_EMAIL
    assert decide("a@x", "", required=True).reason is BindingReason.NO_SLACK_EMAIL
    off = decide("alice@example.com", "mallory@example.com", required=False)
    assert off.allowed and not off.verified


def test_mallorys_forwarded_link_signed_in_by_alice_links_nothing(sandbox, make_relay):
    # Test setup: Mallory forwards her own sign-in link to Alice; a request awaits Alice's review.
    sb = with_mallory(sandbox)
    rid = request_for_alice(sb)
    relay = start_relay(make_relay, sb, SLACK_APPROVER_MESSAGES="dm")
    forwarded = new_state(relay, sb, "mallory")
    # Test execution: Alice signs in with her own Secret Server password.
    r = submit_signin(relay, forwarded, "alice", sb["alice"].password)
    # Validating: refused, the page names both accounts and says what to do.
    assert r.status_code == 403
    assert "Not linked: these accounts may belong to two people" in r.text
    assert "You signed in to Secret Server as <strong>Alice Approver</strong> (alice)" in r.text
    assert "made for the Slack account <strong>Mallory Mole (@mallory)</strong>" in r.text
    assert "the two accounts have different e-mail addresses" in r.text
    assert "close this page" in r.text and "Nothing was linked" in r.text
    assert "<form" not in r.text
    assert links(relay) == [] and relay.db.execute("SELECT COUNT(*) FROM user_sessions").fetchone()[0] == 0
    # SS: one password grant, the e-mail read with the fresh token, and that token revoked.
    assert len(logins(sb, "alice")) == 1
    assert sb.ss.calls_to("/api/v1/users/current$", "GET")[-1].user == "alice"
    assert [c.user for c in sb.ss.calls_to("/api/v1/oauth-expiration", "POST")] == ["alice"]
    assert sb.ss.world.tokens == {} or all(t.user_id != sb["alice"].ss_id for t in sb.ss.world.tokens.values())
    # Later, Mallory clicks Approve on Alice's review from her Home tab: she must sign in.
    send(relay, click_home(sb, "mallory", "approve", rid))
    sb.slack.wait_for("chat.postMessage", lambda c: c.args.get("channel") == sb["mallory"].slack_id
                      and "sign in to Secret Server first" in c.args.get("text", ""))
    relay.interactions.wait_idle()
    assert writes_as(sb, "alice") == [] and sb.ss.calls_to(PUT, "PUT") == []
    assert sb.ss.get_request(rid)["status"] == "Pending"
    # Alice's approval card went to Alice's own Slack, none to Mallory's.
    card = "Rita Requester requests access to prod-db"
    assert [m["text"] for m in sb.slack.messages(sb["alice"].slack_id)].count(card) == 1
    assert card not in [m["text"] for m in sb.slack.messages(sb["mallory"].slack_id)]


def test_alices_link_signed_in_with_another_ss_account_links_nothing(sandbox, make_relay):
    # Test setup: Mallory has got hold of Alice's sign-in link.
    sb = with_mallory(sandbox)
    rid = request_for_alice(sb)
    relay = start_relay(make_relay, sb, SLACK_APPROVER_MESSAGES="dm")
    stolen = new_state(relay, sb, "alice")
    # Test execution: Mallory signs in with her own SS account, binding Alice's Slack to it.
    r = submit_signin(relay, stolen, "mallory", sb["mallory"].password)
    # Validating: refused and explained; Mallory's fresh token revoked; nothing linked.
    assert r.status_code == 403
    assert "You signed in to Secret Server as <strong>Mallory Mole</strong> (mallory)" in r.text
    assert "made for the Slack account <strong>Alice Approver (@alice)</strong>" in r.text
    assert links(relay) == []
    assert [c.user for c in sb.ss.calls_to("/api/v1/oauth-expiration", "POST")] == ["mallory"]
    # Alice's own click later asks her to sign in; nothing is written to SS as anyone.
    send(relay, click_home(sb, "alice", "approve", rid))
    sb.slack.wait_for("chat.postMessage", lambda c: c.args.get("channel") == sb["alice"].slack_id
                      and "sign in to Secret Server first" in c.args.get("text", ""))
    relay.interactions.wait_idle()
    assert writes_as(sb, "mallory") == [] and sb.ss.calls_to(PUT, "PUT") == []
    # Alice, with her own link and password, is linked at once (the refusal cost her nothing).
    assert "Signed in" in submit_signin(relay, new_state(relay, sb, "alice"), "alice", sb["alice"].password).text
    assert links(relay) == [(sb["alice"].slack_id, sb["alice"].ss_id)]
    row = relay.db.execute("SELECT email_verified_at FROM slack_links").fetchone()
    assert row[0] is not None


def test_a_link_made_without_the_check_is_checked_on_next_use(sandbox, make_relay, tmp_path):
    # Test setup: a relay with the check off links Mallory's Slack to Alice's SS account
    # through a forwarded link (the risk the README names), and Bob's Slack to his own.
    sb = with_mallory(sandbox)
    rid = request_for_alice(sb)
    db = str(tmp_path / "shared.db")
    old = start_relay(make_relay, sb, STORAGE_PATH=db, USERS_SIGNIN_REQUIRES_EMAIL_MATCH="false")
    assert "Signed in" in submit_signin(old, new_state(old, sb, "mallory"), "alice", sb["alice"].password).text
    sign_in(old, sb, "bob")
    assert sorted(links(old)) == sorted([(sb["mallory"].slack_id, sb["alice"].ss_id),
                                         (sb["bob"].slack_id, sb["bob"].ss_id)])
    assert old.db.execute("SELECT COUNT(*) FROM slack_links WHERE email_verified_at IS NULL").fetchone()[0] == 1
    old.stop()
    sb.ss.reset_calls()
    # Test execution: the relay runs again with the check on (the default); Mallory opens her
    # Home tab, then clicks Approve on Alice's review.
    relay = start_relay(make_relay, sb, STORAGE_PATH=db)
    send_event(relay, home_opened(sb, "mallory"))
    sb.slack.wait_for("views.publish", lambda c: c.args["user_id"] == sb["mallory"].slack_id
                      and "Sign in to Secret Server" in str(c.args))
    send(relay, click_home(sb, "mallory", "approve", rid))
    relay.interactions.wait_idle()
    # Validating: the link was removed and the session revoked; nothing written as Alice.
    assert links(relay) == [(sb["bob"].slack_id, sb["bob"].ss_id)]
    assert not relay.interactions.sessions.has_session(sb["mallory"].slack_id)
    assert "alice" in [c.user for c in sb.ss.calls_to("/api/v1/oauth-expiration", "POST")]
    assert writes_as(sb, "alice") == [] and sb.ss.calls_to(PUT, "PUT") == []
    assert rid not in [int(x) for x in _review_ids(sb.slack.home_view(sb["mallory"].slack_id))]
    # Bob's link (same e-mail on both sides) is proven on its first use and acts as Bob.
    send(relay, click_home(sb, "bob", "approve", rid))
    sb.slack.wait_for("views.publish", lambda c: "You approved access to prod-db" in str(c.args))
    (put,) = sb.ss.calls_to(PUT, "PUT")
    assert put.user == "bob"
    assert relay.db.execute("SELECT email_verified_at FROM slack_links WHERE slack_user = ?",
                            [sb["bob"].slack_id]).fetchone()[0] is not None


def test_a_link_made_without_the_check_gets_no_approval_cards_until_proven(sandbox, make_relay, tmp_path):
    # Test setup: as above, Mallory's Slack was linked to Alice's SS account while the check
    # was off, and Bob linked his own two accounts.
    sb = with_mallory(sandbox)
    db = str(tmp_path / "shared.db")
    old = start_relay(make_relay, sb, STORAGE_PATH=db, USERS_SIGNIN_REQUIRES_EMAIL_MATCH="false")
    assert "Signed in" in submit_signin(old, new_state(old, sb, "mallory"), "alice", sb["alice"].password).text
    sign_in(old, sb, "bob")
    old.stop()
    # Test execution: a new request for Alice and Bob to review; the relay runs with the check on.
    request_for_alice(sb)
    relay = start_relay(make_relay, sb, STORAGE_PATH=db, SLACK_APPROVER_MESSAGES="dm")
    poll_now(relay)        # (the shared database already records the first relay's poll)
    # Validating: Alice's card went to Alice (the e-mail match), not over the unproven link.
    card = "Rita Requester requests access to prod-db"
    assert [m["text"] for m in sb.slack.messages(sb["alice"].slack_id)] == [card]
    assert card not in [m["text"] for m in sb.slack.messages(sb["mallory"].slack_id)]
    # Bob's link proved itself (same e-mail both sides) and carried his card.
    assert [m["text"] for m in sb.slack.messages(sb["bob"].slack_id)] == [card]
    verified = relay_links_verified(db)      # Mallory's link: unproven, or removed once used
    assert verified[sb["bob"].slack_id] and not verified.get(sb["mallory"].slack_id, False)


def relay_links_verified(db: str) -> dict[str, bool]:
    import sqlite3
    with sqlite3.connect(db) as conn:
        return {u: v is not None for u, v in conn.execute("SELECT slack_user, email_verified_at FROM slack_links")}


def _review_ids(view: dict | None) -> list[str]:
    out = []
    for block in (view or {}).get("blocks", []):
        for el in block.get("elements", []) if isinstance(block.get("elements"), list) else []:
            if isinstance(el, dict) and el.get("action_id") in ("approve", "deny"):
                out.append(el.get("value"))
    return out


# ---------------------------------------------------------------------- guess limits
def test_the_sixth_attempt_on_a_link_is_429_without_calling_secret_server(sandbox, make_relay, caplog):
    sb = sandbox
    relay = start_relay(make_relay, sb)
    state = new_state(relay, sb, "alice")
    caplog.set_level(logging.INFO)
    for n in range(5):
        r = submit_signin(relay, state, "alice", f"guess-{n}")
        assert r.status_code == 200 and REFUSED in r.text
    assert len(logins(sb, "alice")) == 5
    # The sixth attempt, even with the right password, never reaches SS.
    r = submit_signin(relay, state, "alice", sb["alice"].password)
    assert r.status_code == 429
    assert "Too many failed sign-in attempts" in r.text and "Try again after" in r.text
    assert "This link cannot be used again" in r.text and "<form" not in r.text
    assert 800 < int(r.headers["Retry-After"]) <= 900
    assert len(logins(sb, "alice")) == 5 and links(relay) == []
    # Refused attempts do not count: the owner's fresh link signs in at once.
    r = submit_signin(relay, new_state(relay, sb, "alice"), "alice", sb["alice"].password)
    assert r.status_code == 200 and "Signed in" in r.text
    # Every failure was logged with who and why, never with the password.
    failed = [rec for rec in caplog.records if rec.getMessage() == "sign-in failed"]
    assert [(rec.slack_user, rec.ss_username, rec.reason) for rec in failed] == \
        [(sb["alice"].slack_id, "alice", "credentials_rejected")] * 5
    everything = " ".join(f"{rec.getMessage()} {rec.__dict__}" for rec in caplog.records)
    assert "guess-" not in everything and sb["alice"].password not in everything


def test_the_eleventh_attempt_of_a_slack_user_is_429_without_calling_secret_server(sandbox, make_relay):
    sb = sandbox
    relay = start_relay(make_relay, sb)
    for _ in range(2):                                # two links, five wrong passwords each
        state = new_state(relay, sb, "alice")
        for n in range(5):
            assert submit_signin(relay, state, f"user{n}", "wrong").status_code == 200
    assert len(sb.ss.calls_to(TOKEN, "POST")) - _relay_logins(sb) == 10
    r = submit_signin(relay, new_state(relay, sb, "alice"), "alice", sb["alice"].password)
    assert r.status_code == 429 and "paused for this Slack account" in r.text
    assert "This link cannot be used again" not in r.text
    assert logins(sb, "alice") == []


def test_the_eleventh_attempt_on_an_ss_username_is_429_without_calling_secret_server(sandbox, make_relay):
    sb = sandbox
    relay = start_relay(make_relay, sb)
    for who in ("bob", "rita"):                       # two Slack users guess Alice's password
        state = new_state(relay, sb, who)
        for n in range(5):
            assert submit_signin(relay, state, "alice", f"guess-{n}").status_code == 200
    assert len(logins(sb, "alice")) == 10
    r = submit_signin(relay, new_state(relay, sb, "alice"), "ALICE", sb["alice"].password)
    assert r.status_code == 429 and "paused for this Secret Server username" in r.text
    assert len(logins(sb, "alice")) == 10


def test_limits_survive_a_restart_and_lift_after_15_minutes(sandbox, make_relay, tmp_path):
    sb = sandbox
    db = str(tmp_path / "shared.db")
    first = make_relay(STORAGE_PATH=db)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def attempt(relay, state: str, username: str, password: str):
        body = urlencode({"state": state, "username": username, "password": password}).encode()
        status, headers, page = relay.interactions.signin.post({"ssrelay.body": body})
        return status, dict(headers), page.decode()

    with freeze_time(start) as clock:
        for _ in range(2):
            state = new_state(first, sb, "alice")
            for n in range(5):
                assert attempt(first, state, "alice", f"guess-{n}")[0] == 200
                clock.tick(timedelta(seconds=30))
        first.stop()
        assert len(logins(sb, "alice")) == 10
        # A new relay over the same database still refuses, naming when to retry.
        relay = make_relay(STORAGE_PATH=db)
        status, headers, page = attempt(relay, new_state(relay, sb, "alice"), "alice", sb["alice"].password)
        assert status == 429 and "Try again after <strong>09:15 UTC</strong>" in page
        assert headers["Retry-After"] == str(15 * 60 - 5 * 60)
        assert len(logins(sb, "alice")) == 10
        # Once the first failure is 15 minutes old, one more attempt reaches SS.
        clock.move_to(start + timedelta(minutes=15, seconds=1))
        status, _, page = attempt(relay, new_state(relay, sb, "alice"), "alice", sb["alice"].password)
        assert status == 200 and "Signed in" in page
        assert len(logins(sb, "alice")) == 11


def test_refusal_waits_for_the_oldest_failure_that_keeps_a_limit_reached():
    now = datetime(2026, 3, 2, 9, 20, tzinfo=UTC)
    times = [now - timedelta(minutes=m) for m in (20, 14, 10, 6, 4, 2)]   # 5 inside the window
    found = refusal({LimitScope.STATE: times, LimitScope.SLACK_USER: times}, now)
    assert found == Refusal(LimitScope.STATE, now - timedelta(minutes=14) + timedelta(minutes=15))
    assert refusal({LimitScope.STATE: times[2:]}, now) is None         # 4 inside the window


# ---------------------------------------------------------------------- no OTP oracle
def test_a_right_password_without_the_otp_answers_like_a_wrong_password(sandbox, make_relay, caplog):
    sb = sandbox
    sb.add_person("olga", display_name="Olga Otp", otp="123456")
    relay = start_relay(make_relay, sb)
    state = new_state(relay, sb, "olga")
    caplog.set_level(logging.INFO)
    right = submit_signin(relay, state, "olga", sb["olga"].password)
    wrong = submit_signin(relay, state, "olga", "not-her-password")
    assert right.status_code == wrong.status_code == 200
    assert right.text == wrong.text and REFUSED in right.text
    # the log tells them apart
    reasons = [rec.reason for rec in caplog.records if rec.getMessage() == "sign-in failed"]
    assert reasons == ["otp_missing", "credentials_rejected"]
    wrong_otp = submit_signin(relay, state, "olga", sb["olga"].password, otp="000000")
    assert wrong_otp.text == wrong.text
    r = submit_signin(relay, state, "olga", sb["olga"].password, otp="123456")
    assert "Signed in" in r.text


def _relay_logins(sb) -> int:
    return len([c for c in sb.ss.calls_to(TOKEN, "POST") if (c.body or {}).get("username") == "svc-slack-relay"
                or (c.body or {}).get("grant_type") == "refresh_token"])


def test_a_deleted_slack_profile_email_refuses_the_link(sandbox, make_relay):
    sb = sandbox
    relay = start_relay(make_relay, sb)
    sb.slack.add_user(sb["alice"].slack_id, email=None, name="alice", real_name="Alice Approver")
    r = submit_signin(relay, new_state(relay, sb, "alice"), "alice", sb["alice"].password)
    assert r.status_code == 403 and "Slack does not show an e-mail address" in r.text
    wait_until(lambda: sb.ss.calls_to("/api/v1/oauth-expiration", "POST"), 5, "the revoke")
    assert links(relay) == []


def test_slack_unreachable_at_sign_in_links_nothing_and_says_so(sandbox, make_relay):
    sb = sandbox
    relay = start_relay(make_relay, sb)
    state = new_state(relay, sb, "alice")
    relay.interactions.signin.get({"QUERY_STRING": f"state={state}"})    # the page's name lookup, cached
    sb.slack.fail("users.info", status=503, times=None)
    r = submit_signin(relay, state, "alice", sb["alice"].password)
    assert r.status_code == 503 and "Slack could not be reached to confirm your account" in r.text
    assert links(relay) == []
    assert [c.user for c in sb.ss.calls_to("/api/v1/oauth-expiration", "POST")] == ["alice"]
    # the link still works once Slack answers again
    sb.slack.clear_faults()
    assert "Signed in" in submit_signin(relay, state, "alice", sb["alice"].password).text
