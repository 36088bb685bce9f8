"""Property: no validly signed Slack request, however malformed, gets a 5xx, logs a traceback,
or makes Secret Server write anything its signed-in, authorised sender could not.

Thousands of signed requests of every kind (clicks on each of our buttons and on others, view
submissions and closes, shortcuts, events, url_verification, ssl_check, unknown types), built
from Slack's shapes and then mutated (fields replaced by hostile values, removed, added, bodies
encoded oddly), go over real HTTP to one running relay against the stand-ins."""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import logging
import os
import time
from urllib.parse import unquote_plus, urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_payloads import (
    TEAM,
    click_home,
    form_body,
    poll_now,
    sign,
    sign_in,
    start_relay,
)
from test_http_surface import Foreign, Tracebacks

from relay.sandbox import scenario
from relay.slack import search as sv

SERIAL = itertools.count()
EXAMPLES = int(os.environ.get("SSRELAY_FUZZ_EXAMPLES", "500"))   # fewer while developing
PER_EXAMPLE = 10                 # EXAMPLES * PER_EXAMPLE signed requests in all
ACTION_IDS = ["approve", "deny", "cancel_request", "signin", "logoff", sv.LAUNCH, sv.LAUNCH_PICK,
              sv.REQUEST_ACCESS, sv.LAUNCH_OPEN, sv.SECRET_OPEN, "launch_missiles", ""]
CALLBACKS = ["ssrelay_reason", sv.SEARCH_CALLBACK, sv.PROMPT_CALLBACK, sv.REQUEST_CALLBACK, "not_ours", ""]
HOSTILE = [None, True, False, 0, -1, 2**31, 2**64, -2**70, 1.5, float("inf"), "", "x", "{bad json", "T" * 300,
           "U\x00", "١٢", "[" * 1500 + "]" * 1500, [], [1], ["U1"], [None, {}], {}, {"id": 1}, {"id": ["x"]},
           {"type": None}, {"a": {"b": [None]}}, [{"id": 2**64}], {"team_id": []}, {"response_url": 5}]
BOLT_KEYS = ["team", "enterprise", "authorizations", "channel", "message", "user", "view", "container",
             "response_urls", "event", "team_id", "enterprise_id", "user_id", "is_ext_shared_channel",
             "is_enterprise_install", "function_execution_id", "previous_message", "command", "callback_id",
             "actions", "trigger_id", "response_url", "type", "private_metadata", "state", "hash", "action_id"]
ENCODINGS = ["form"] * 5 + ["json"] * 3 + ["brace_form", "json_as_form", "form_as_json", "ssl_check", "garbage",
                                          "two_payloads"]
CHOICE_BYTES = 40


class Choices:
    """Every choice of one request, read from bytes hypothesis draws (one draw per request keeps
    thousands of requests fast; hypothesis still shrinks the bytes towards the first options)."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def number(self, below: int) -> int:
        byte = self.data[self.at % len(self.data)] if self.data else 0
        self.at += 1
        return byte % below

    def pick(self, options):
        return options[self.number(len(options))]

    def hostile(self):
        if self.number(4) == 0:     # an integer of any size, positive or negative
            return int.from_bytes(self.data[self.at:self.at + 9] or b"\0", "big", signed=True)
        return copy.deepcopy(self.pick(HOSTILE))


def base_payload(c: Choices, world: dict) -> dict:
    """One payload shaped as Slack sends it, with ids from this world."""
    user = {"id": c.pick(world["users"]), "team_id": TEAM, "username": "x"}
    team = {"id": TEAM, "domain": "sandbox"}
    value = c.pick(world["values"])
    kind = c.pick(["click_home", "click_message", "view_submission", "view_closed", "shortcut", "message_action",
                   "event", "url_verification", "unknown"])
    ts = f"{time.time():.6f}{next(SERIAL)}"      # every click its own (not a replay)
    if kind in ("click_home", "click_message"):
        action = {"action_id": c.pick(ACTION_IDS), "block_id": "b", "value": value, "type": "button",
                  "action_ts": ts}
        p = {"type": "block_actions", "user": user, "team": team, "api_app_id": "A0SANDBOX",
             "trigger_id": "1.2.3", "actions": [action], "enterprise": None, "is_enterprise_install": False}
        if kind == "click_home":
            p["container"] = {"type": "view", "view_id": "V0HOME"}
            p["view"] = {"id": "V0HOME", "type": c.pick(["home", "modal"]), "team_id": TEAM,
                         "private_metadata": c.pick(world["metadata"]), "hash": "1.x", "callback_id": "",
                         "state": {"values": {}}}
        else:
            p["container"] = {"type": "message", "message_ts": "1700000000.000100", "channel_id": "D0X",
                              "is_ephemeral": c.pick([True, False])}
            p["channel"] = {"id": "D0X", "name": "directmessage"}
            p["message"] = {"ts": "1700000000.000100", "text": "card"}
            p["response_url"] = c.pick(world["response_urls"])
        return p
    if kind in ("view_submission", "view_closed"):
        return {"type": kind, "user": user, "team": team, "trigger_id": "1.2.3",
                "view": {"id": "V0MODAL", "type": "modal", "callback_id": c.pick(CALLBACKS),
                         "private_metadata": c.pick(world["metadata"]), "hash": "1.y",
                         "state": {"values": copy.deepcopy(c.pick(world["states"]))}},
                "response_urls": []}
    if kind in ("shortcut", "message_action"):
        return {"type": kind, "user": user, "team": team, "trigger_id": "1.2.3", "action_ts": ts,
                "callback_id": c.pick([sv.SHORTCUT, "not_ours"])}
    if kind == "event":
        event = {"type": c.pick(["app_home_opened", "message", "reaction_added"]), "user": user["id"],
                 "channel": "D0X", "tab": c.pick(["home", "messages"]), "event_ts": ts}
        return {"type": "event_callback", "team_id": TEAM, "api_app_id": "A0SANDBOX", "event": event,
                "event_id": f"Ev{ts}", "event_time": 1,
                "authorizations": [{"enterprise_id": None, "team_id": TEAM, "user_id": "U0BOT", "is_bot": True}]}
    if kind == "url_verification":
        return {"type": "url_verification", "challenge": "c" * 10, "token": "t"}
    return {"type": c.pick(["block_suggestion", "dialog_submission", "interactive_message", "x"]),
            "user": user, "team": team, "callback_id": "x", "action_id": "x"}


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _parent(obj, path):
    for step in path[:-1]:
        obj = obj[step]
    return obj


def build_request(data: bytes, world: dict) -> tuple[bytes, str]:
    """A body and content type: a Slack payload, perhaps mutated (fields replaced by hostile
    values, removed, added), perhaps oddly encoded."""
    c = Choices(data)
    payload = base_payload(c, world)
    for _ in range(c.pick([0, 0, 1, 1, 1, 2, 3])):
        paths = [p for p in _paths(payload) if p]
        op = c.pick(["replace", "replace", "delete", "add"])
        if op == "add" or not paths:
            payload[c.pick(BOLT_KEYS)] = c.hostile()
            continue
        path = paths[(c.number(256) * 256 + c.number(256)) % len(paths)]
        parent = _parent(payload, path)
        if op == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = c.hostile()
    text = json.dumps(payload)
    form = urlencode({"payload": text}).encode()
    encoding = c.pick(ENCODINGS)
    if encoding == "form":
        return form, "application/x-www-form-urlencoded"
    if encoding == "json":
        return text.encode(), "application/json"
    if encoding == "brace_form":
        return b"{" + form, "application/x-www-form-urlencoded"
    if encoding == "json_as_form":
        return text.encode(), "application/x-www-form-urlencoded"
    if encoding == "form_as_json":
        return form, "Application/JSON; charset=utf-8"
    if encoding == "ssl_check":
        return b"ssl_check=1&token=x&" + form, "application/x-www-form-urlencoded"
    if encoding == "two_payloads":
        return form + b"&payload=" + c.pick([b"%5B%5D", b"1", b"%7B%7D"]), "application/x-www-form-urlencoded"
    return data, c.pick(["application/json", "text/plain", ""])     # raw bytes, perhaps not UTF-8


def signed_request(world: dict):
    return st.binary(min_size=CHOICE_BYTES, max_size=CHOICE_BYTES).map(lambda data: build_request(data, world))


PUT = "/api/v1/secret-access-requests"


def signed(body: bytes) -> dict:
    """Slack's v0 signature over the raw bytes (also for bodies that are not UTF-8)."""
    ts = str(int(time.time()))
    digest = hmac.new(scenario.SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest.hexdigest()}


def test_no_signed_request_gets_a_5xx_or_writes_beyond_its_sender(sandbox, make_relay, tracebacks):
    # Test setup: one relay; Alice (a reviewer) and Rita (a requester) are signed in, Bob is
    # not; two pending requests of Rita's; a foreign server stands by as a response_url.
    sb = sandbox
    mine = sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment="rotate")
    other = sb.ss.create_request(sb.secrets["wiki-admin"], sb["rita"].ss_id, comment="wiki")
    relay = start_relay(make_relay, sb, SLACK_APPROVER_MESSAGES="dm")
    sign_in(relay, sb, "alice")
    sign_in(relay, sb, "rita")
    foreign = Foreign()
    hooks = sb.slack.new_response_url(sb["alice"].slack_id, "D0X", "1700000000.000100", max_uses=10**6,
                                      ttl=3600)
    secret = sb.secrets["prod-db"]
    world = {
        "users": [sb[n].slack_id for n in ("alice", "bob", "rita")] + ["UMALLORY"],
        "values": [str(mine), str(other), "999", "x", "", str(2**64), f"{secret}:7", f"{secret}", "-1"],
        "metadata": ["", "{}", "5", "[1]", "{bad", "[" * 1500 + "]" * 1500,
                     json.dumps({"action": "approve", "request_id": mine}),
                     json.dumps({"action": "deny", "request_id": 2**64, "source": {"kind": "message",
                                                                                   "channel": ["x"]}}),
                     json.dumps({"secret_id": secret, "launcher_id": 7}),
                     json.dumps({"secret_id": "x", "needs_ticket": [1]})],
        "states": [{}, {"reason": {"reason": {"type": "plain_text_input", "value": "ok"}}},
                   {"query": {"text": {"value": "prod"}}}, {"reason": []}, {"prompt": {"value": {"a": 1}}}],
        "response_urls": [hooks, foreign.url, "", "javascript:alert(1)"],
    }
    session = requests.Session()
    url = f"http://127.0.0.1:{relay.port}/slack/events"
    sent: list[tuple[int, bytes]] = []
    http_time: list[float] = []
    sb.ss.reset_calls()
    started = time.monotonic()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(signed_request(world), min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
    def no_5xx(batch):
        for body, content_type in batch:
            t0 = time.perf_counter()
            r = session.post(url, data=body, headers={"Content-Type": content_type, **signed(body)}, timeout=10)
            sent.append((r.status_code, body))
            http_time.append(time.perf_counter() - t0)
            # validly signed: never a 5xx, and never a 401 (the signature is right, whatever the body)
            assert r.status_code < 500 and r.status_code != 401, \
                (r.status_code, content_type, unquote_plus(body.decode("utf-8", "replace"))[:3000])

    try:
        # Test execution: the signed requests, over real HTTP.
        no_5xx()
        fuzz_seconds = time.monotonic() - started
        assert relay.interactions.wait_idle(60), "the relay's workers did not finish"
        # Validating: the relay is healthy, and still acts on a genuine click.
        assert session.get(f"http://127.0.0.1:{relay.port}/healthz", timeout=5).status_code == 200
        writes = [c for c in sb.ss.calls if c.method in ("PUT", "POST", "DELETE", "PATCH")
                  and not c.path.endswith("/oauth2/token")]
        # every write is a signed-in person's own business: a reviewer deciding, the requester
        # cancelling or asking; nothing as Bob (signed out) or anyone unknown
        for c in writes:
            assert c.user in ("alice", "rita"), c
            if c.path.endswith(PUT) and c.method == "PUT":
                status = (c.body or {}).get("status")
                assert (c.user, status) in {("alice", "Approved"), ("alice", "Denied"), ("rita", "Canceled")}, c
        assert len([c for c in writes if c.method == "PUT" and c.status == 200]) <= 2   # each request once
        assert foreign.got == []
        sign_in(relay, sb, "alice")     # a fuzzed Log off click may have signed her out
        fresh = sb.ss.create_request(sb.secrets["wiki-admin"], sb["rita"].ss_id, comment="after the storm")
        poll_now(relay)
        body = form_body(click_home(sb, "alice", "approve", fresh))
        r = session.post(url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded",
                                                  **sign(body)}, timeout=10)
        assert r.status_code == 200
        sb.ss.wait_for(lambda c: c.method == "PUT" and c.user == "alice" and (c.body or {}).get(
            "secretAccessRequestId") == fresh, timeout=10)
        assert tracebacks.records == [], (logging.Formatter().format(tracebacks.records[0])[-2500:],
                                          {k: getattr(tracebacks.records[0], k, None)
                                           for k in ("where", "error", "failures")})
    finally:
        foreign.stop()
        session.close()
    codes = {code for code, _ in sent}
    print(f"fuzz: {len(sent)} requests in {fuzz_seconds:.1f}s ({sum(http_time):.1f}s in HTTP), statuses {codes}")
    assert len(sent) >= 5000
    assert codes == {200, 400}      # both answers were exercised, and only they


@pytest.fixture
def tracebacks():
    h = Tracebacks()
    logging.getLogger().addHandler(h)
    yield h
    logging.getLogger().removeHandler(h)
