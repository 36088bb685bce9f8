"""The public HTTP surface under hostile but validly signed input: malformed envelopes get a
400 (an unknown action a 200 ack), never a 5xx; a response_url outside Slack is never called;
a replayed click acts once. Real HTTP against a running relay and the stand-ins."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlencode

import pytest
import requests
from slack_payloads import (
    TEAM,
    click_home,
    click_message,
    form_body,
    home_opened,
    post,
    send,
    send_event,
    sign_in,
    signin_link,
    start_relay,
    submit_signin,
    wait_until,
)

from relay.slack import guard

PUT = "/api/v1/secret-access-requests$"


def new_request(sb) -> int:
    return sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment="rotate the keys")


def card_of(sb, who: str, request_id: int) -> dict:
    cards = [m for m in sb.slack.messages(sb[who].slack_id) if f"'value': '{request_id}'" in repr(m.get("blocks"))]
    assert len(cards) == 1, cards
    return cards[0]


class Tracebacks(logging.Handler):
    """Collects every log record that carries a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)


@pytest.fixture
def tracebacks():
    h = Tracebacks()
    logging.getLogger().addHandler(h)
    yield h
    logging.getLogger().removeHandler(h)


class Foreign:
    """A loopback HTTP server that is not Slack: records every request it gets."""

    def __init__(self) -> None:
        got = self.got = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                got.append((self.path, self.rfile.read(int(self.headers.get("Content-Length") or 0))))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T0/B0/steal"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def foreign():
    f = Foreign()
    yield f
    f.stop()


# ---------------------------------------------------------------------- no 5xx
def _hostile(sb, rid: int) -> dict[str, tuple[bytes, bool]]:
    """Named hostile requests (body, is_json), each validly signed when sent."""
    def click(**changes) -> dict:
        p = click_home(sb, "alice", "approve", rid)
        p.update(changes)
        return p

    def msg_click(**changes) -> dict:
        p = click_message(sb, "alice", "approve", rid, {"channel": "D0X", "ts": "1.2"}, ephemeral=False)
        p.update(changes)
        return p

    reason_view = {"id": "V0REASON", "callback_id": "ssrelay_reason", "private_metadata": "{}",
                   "state": {"values": {}}, "hash": "1.a"}
    event = home_opened(sb, "alice")
    out = {
        "channel as a string": msg_click(channel="x", actions=[{**click()["actions"][0], "value": "x"}]),
        "channel as a number": msg_click(channel=5),
        "message as a list": msg_click(message=[1]),
        "team as a number": click(team=1.5),
        "enterprise true": click(enterprise=True),
        "authorizations as a dict": click(authorizations={"a": 1}),
        "user.id as a list": click(user={"id": ["U1"]}),
        "container as a list": click(container=[1]),
        "action_ts as a number": {**click(), "actions": [{**click()["actions"][0], "action_ts": 1.5}]},
        "view without type": {"type": "view_submission", "user": {"id": "UALICE"}, "team": {"id": TEAM},
                              "view": reason_view},
        "private_metadata as a number": {"type": "view_submission", "user": {"id": "UALICE"},
                                         "team": {"id": TEAM}, "view": {**reason_view, "type": "modal",
                                                                        "private_metadata": 5}},
        "response_urls of numbers": {"type": "view_submission", "user": {"id": "UALICE"}, "team": {"id": TEAM},
                                     "view": {**reason_view, "type": "modal"}, "response_urls": [1]},
        "shortcut without callback_id": {"type": "shortcut", "user": {"id": "UALICE"}, "team": {"id": TEAM},
                                         "trigger_id": "1.2.3"},
    }
    bodies = {name: (form_body(p), False) for name, p in out.items()}
    bodies["event team_id as a list"] = (json.dumps({**event, "team_id": ["T1"]}).encode(), True)
    bodies["event without type"] = (json.dumps({**event, "event": {"user": "UALICE"}}).encode(), True)
    bodies["event user as a dict of lists"] = (json.dumps({**event, "event": {**event["event"],
                                                                               "user": {"id": [1]}}}).encode(), True)
    bodies["form body starting with { plus payload="] = (
        b"{" + urlencode({"payload": json.dumps(click())}).encode(), False)
    bodies["JSON nested past the recursion limit"] = (b"[" * 100000 + b"]" * 100000, True)
    bodies["url_verification without a challenge"] = (json.dumps({"type": "url_verification"}).encode(), True)
    return bodies


def test_validly_signed_malformed_payloads_get_400_and_no_traceback(sandbox, make_relay, tracebacks):
    # Test setup: a running relay, Alice signed in, one pending request.
    sb = sandbox
    rid = new_request(sb)
    relay = start_relay(make_relay, sb)
    sign_in(relay, sb, "alice")
    sb.ss.reset_calls()
    # Test execution: each hostile shape, validly signed.
    answers = {name: post(relay, body, json_body=is_json).status_code
               for name, (body, is_json) in _hostile(sb, rid).items()}
    relay.interactions.wait_idle()
    # Validating: a 400 for each (a string channel, as in events, is read as no channel: its
    # click is acked), nothing read or written in SS as Alice, no traceback logged.
    assert answers == {name: 200 if name == "channel as a string" else 400 for name in answers}
    assert [c for c in sb.ss.calls if c.user == "alice"] == []
    assert tracebacks.records == []


def test_unknown_action_shortcut_and_event_get_a_200_ack(sandbox, make_relay, tracebacks):
    sb = sandbox
    rid = new_request(sb)
    relay = start_relay(make_relay, sb)
    unknown = click_home(sb, "alice", "approve", rid)
    unknown["actions"][0]["action_id"] = "launch_missiles"
    assert send(relay, unknown).status_code == 200
    shortcut = {"type": "shortcut", "callback_id": "not_ours", "user": {"id": "UALICE"}, "team": {"id": TEAM},
                "trigger_id": "1.2.3"}
    assert send(relay, shortcut).status_code == 200
    event = home_opened(sb, "alice")
    event["event"]["type"] = "reaction_added"
    assert send_event(relay, event).status_code == 200
    assert send(relay, {"type": "dialog_submission", "callback_id": "x", "user": {"id": "UALICE"}}).status_code == 200
    assert tracebacks.records == []


def test_worker_side_values_out_of_range_are_refused_quietly(sandbox, make_relay, tracebacks):
    # Values that pass the envelope but not the workers' parsing: request ids past SQLite's
    # and SS's integers, metadata that is JSON but not an object, a Home hash of the wrong type.
    sb = sandbox
    relay = start_relay(make_relay, sb, APPROVALS_ASK_REASON="false")
    sign_in(relay, sb, "alice")
    sb.ss.reset_calls()
    for value in (str(2**64), "-1", "0", "1_000", " 12345678901 ", "١٢"):
        click = click_home(sb, "alice", "approve", 1)
        click["actions"][0]["value"] = value
        assert send(relay, click).status_code == 200, value
    for meta in (json.dumps({"action": "approve", "request_id": 2**64}), "[1, 2]", "5", "{bad json"):
        view = {"id": "V0REASON", "type": "modal", "callback_id": "ssrelay_reason", "private_metadata": meta,
                "state": {"values": {"reason": {"reason": {"type": "plain_text_input", "value": "ok"}}}}}
        body = {"type": "view_submission", "user": {"id": sb["alice"].slack_id, "team_id": TEAM},
                "team": {"id": TEAM}, "view": view}
        assert send(relay, body).status_code == 200, meta
    event = home_opened(sb, "alice")
    event["event"]["view"] = {"id": "V0HOME", "type": "home", "hash": "1.x"}
    event["event"]["view"]["private_metadata"] = ""
    event["team_id"] = "T" * 5000
    assert send_event(relay, event).status_code == 200
    relay.interactions.wait_idle()
    assert [c for c in sb.ss.calls if c.user == "alice" and "secret-access-requests" in c.path] == []
    assert tracebacks.records == []


def test_request_ids_are_digits_in_secret_servers_range():
    assert guard.request_id("42") == 42 and guard.request_id(" 7 ") == 7 and guard.request_id(2**31 - 1) == 2**31 - 1
    for bad in (str(2**64), 2**31, "0", 0, -3, "-3", "1_000", "٣", "4.0", 4.0, True, None, [], "", "0x10"):
        assert guard.request_id(bad) is None, bad


# ---------------------------------------------------------------------- response_url allow-list
def test_response_url_allow_list():
    api = "http://127.0.0.1:4567/api/"
    assert guard.response_url_allowed("https://hooks.slack.com/actions/T0/1/abc", api)
    assert guard.response_url_allowed("https://hooks.slack.com:443/actions/T0/1/abc", api)
    assert guard.response_url_allowed("http://127.0.0.1:4567/hooks/abc", api)
    for bad in ("http://hooks.slack.com/actions/T0/1/abc",            # not https
                "https://hooks.slack.com.evil.example/actions",       # another host
                "https://hooks.slack.com@evil.example/actions",       # userinfo trick
                "https://evil.example/?https://hooks.slack.com/",
                "https://hooks.slack.com:8443/actions",               # another port
                "http://127.0.0.1:4568/hooks/abc",                    # api_url's host, another port
                "https://127.0.0.1:4567/hooks/abc",                   # api_url's host, another scheme
                "https://hooks.slack.com\\@evil.example/", "javascript:alert(1)", "", None, 5):
        assert not guard.response_url_allowed(bad, api), bad


def test_a_foreign_response_url_is_never_called_and_the_person_gets_a_dm(sandbox, make_relay, foreign):
    # Test setup: Alice is signed in and has an ephemeral approval message.
    sb = sandbox
    rid = new_request(sb)
    relay = start_relay(make_relay, sb, SLACK_APPROVER_MESSAGES="ephemeral")
    sign_in(relay, sb, "alice")
    # Test execution: a signed click whose response_url points at another server.
    payload = click_message(sb, "alice", "approve", rid, {"channel": sb.slack.dm_channel(sb["alice"].slack_id),
                                                           "ts": "1700000000.000100"}, ephemeral=True)
    payload["response_url"] = foreign.url
    assert send(relay, payload).status_code == 200
    # Validating: the decision is made, Alice hears it by DM, the foreign server got nothing.
    dm = sb.slack.wait_for("chat.postMessage", lambda c: "You approved access to prod-db" in json.dumps(c.args))[0]
    assert dm.args["channel"] == sb["alice"].slack_id
    relay.interactions.wait_idle()
    assert len(sb.ss.calls_to(PUT, "PUT")) == 1
    assert foreign.got == []


def test_a_stored_foreign_response_url_is_not_used_after_sign_in(sandbox, make_relay, foreign):
    # Alice is signed out; her click carries a foreign response_url. The sign-in link comes by
    # DM, and after she signs in the completed action is reported by DM too.
    sb = sandbox
    rid = new_request(sb)
    relay = start_relay(make_relay, sb, SLACK_APPROVER_MESSAGES="ephemeral")
    payload = click_message(sb, "alice", "approve", rid, {"channel": sb.slack.dm_channel(sb["alice"].slack_id),
                                                           "ts": "1700000000.000100"}, ephemeral=True)
    payload["response_url"] = foreign.url
    send(relay, payload)
    prompt = sb.slack.wait_for("chat.postMessage", lambda c: "/signin?state=" in json.dumps(c.args))[0]
    state = unquote(signin_link(prompt.args.get("blocks")).split("state=", 1)[1])
    # A response_url stored before this defence existed is checked again when it is used.
    with relay.db.atomic():
        relay.db.execute("UPDATE signin_states SET pending_action = ?",
                         [json.dumps({"action": "approve", "request_id": rid, "reason": "",
                                      "source": {"kind": "ephemeral", "response_url": foreign.url,
                                                 "channel": "", "ts": ""}})])
    r = submit_signin(relay, state, "alice", sb["alice"].password)
    assert r.status_code == 200
    sb.slack.wait_for("chat.postMessage", lambda c: "You approved access to prod-db" in json.dumps(c.args))
    relay.interactions.wait_idle()
    assert len(sb.ss.calls_to(PUT, "PUT")) == 1
    assert foreign.got == []


# ---------------------------------------------------------------------- replayed clicks
def test_a_signed_approve_replayed_five_times_acts_once(sandbox, make_relay):
    # Test setup: Alice has a DM card and is signed in.
    sb = sandbox
    rid = new_request(sb)
    relay = start_relay(make_relay, sb, SLACK_APPROVER_MESSAGES="dm")
    sign_in(relay, sb, "alice")
    card = card_of(sb, "alice", rid)
    sb.ss.reset_calls()
    # Test execution: the same signed click arrives five times.
    body = form_body(click_message(sb, "alice", "approve", rid, card, ephemeral=False))
    answers = [post(relay, body) for _ in range(5)]
    sb.slack.wait_for("chat.update")
    relay.interactions.wait_idle()
    # Validating: the same answer each time; one live read, one write, one card update.
    assert {(a.status_code, a.text) for a in answers} == {(200, "")}
    reads = [c for c in sb.ss.calls if c.user == "alice" and c.method == "GET" and f"/{rid}" in c.path]
    assert len(reads) == 1
    assert len(sb.ss.calls_to(PUT, "PUT")) == 1
    assert len(sb.slack.calls_to("chat.update")) == 1


def test_a_signed_out_click_replayed_four_times_makes_one_sign_in_link(sandbox, make_relay):
    sb = sandbox
    rid = new_request(sb)
    relay = start_relay(make_relay, sb)
    before = len(sb.slack.calls_to("chat.postMessage"))
    body = form_body(click_home(sb, "alice", "approve", rid))
    answers = [post(relay, body) for _ in range(4)]
    sb.slack.wait_for("chat.postMessage", lambda c: "/signin?state=" in json.dumps(c.args))
    relay.interactions.wait_idle()
    assert {(a.status_code, a.text) for a in answers} == {(200, "")}
    states = relay.db.execute("SELECT COUNT(*) FROM signin_states WHERE slack_user = ? AND pending_action IS NOT NULL",
                              [sb["alice"].slack_id]).fetchone()[0]
    assert states == 1
    assert len(sb.slack.calls_to("chat.postMessage")) == before + 1


def test_two_clicks_are_two_clicks(sandbox, make_relay):
    # A second, genuine click (its own action_ts) is not a replay: Alice is told again.
    sb = sandbox
    rid = new_request(sb)
    relay = start_relay(make_relay, sb)
    first = click_home(sb, "alice", "approve", rid)
    second = click_home(sb, "alice", "approve", rid)
    second["actions"][0]["action_ts"] = first["actions"][0]["action_ts"] + "1"
    send(relay, first)
    send(relay, second)
    wait_until(lambda: len([c for c in sb.slack.calls_to("chat.postMessage")
                            if "/signin?state=" in json.dumps(c.args)]) == 2, what="two sign-in links")


def test_replay_key_names_team_user_action_time_and_container(sandbox):
    base = click_home(sandbox, "alice", "approve", 7)
    key = guard.click_key(base)
    assert key and key == guard.click_key(json.loads(json.dumps(base)))
    for change in ({"team": {"id": "T0OTHER"}}, {"user": {"id": "UBOB"}},
                   {"container": {"type": "view", "view_id": "V0OTHER"}},
                   {"actions": [{**base["actions"][0], "action_ts": "1.5"}]},
                   {"actions": [{**base["actions"][0], "action_id": "deny"}]}):
        assert guard.click_key({**base, **change}) != key, change
    assert guard.click_key({"type": "view_submission"}) is None


def test_seen_clicks_are_pruned_after_an_hour(sandbox, make_relay):
    from datetime import UTC, datetime, timedelta
    relay = make_relay()
    clicks = relay.interactions.seen
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    clicks.clock = lambda: now
    with clicks.db.atomic():
        clicks.db.execute("INSERT INTO seen_clicks (click_key, seen_at) VALUES (?, ?), (?, ?)",
                          ["ff-old", (now - timedelta(hours=2)).isoformat(),
                           "ff-recent", (now - timedelta(minutes=10)).isoformat()])
    assert clicks.first_click("ff-new")                    # most inserts leave the table alone
    assert clicks.first_click("00-prunes")                 # about one in 85 prunes it
    assert not clicks.first_click("ff-recent")             # a replay within the hour: not first
    kept = {r[0] for r in clicks.db.execute("SELECT click_key FROM seen_clicks").fetchall()}
    assert kept == {"ff-recent", "ff-new", "00-prunes"}


def test_the_http_loop_waits_for_sockets_instead_of_spinning(sandbox, make_relay, monkeypatch):
    import select as real_select
    import types

    from waitress import wasyncore

    # Test setup: every select() of waitress's loop is recorded with the time it may wait.
    waits: list[float] = []

    def recording_select(r, w, e, timeout=None):
        waits.append(timeout)
        return real_select.select(r, w, e, timeout)
    monkeypatch.setattr(wasyncore, "select", types.SimpleNamespace(select=recording_select, error=OSError))
    # Test execution: a running relay, idle and then answering a request.
    relay = start_relay(make_relay, sandbox)
    wait_until(lambda: len(waits) >= 3, 10, "the HTTP loop to tick")
    assert requests.get(f"http://127.0.0.1:{relay.port}/healthz", timeout=10).status_code == 200
    # Validating: each tick waits for a socket (a select that never waits spins a core).
    assert waits and min(waits) > 0, sorted(set(waits))
