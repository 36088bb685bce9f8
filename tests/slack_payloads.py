"""Signed Slack requests shaped like Slack's real ones (reference §2), posted over real HTTP to
a running relay, and the sign-in walk a person does in their browser."""

from __future__ import annotations

import json
import re
import time
import uuid
from urllib.parse import urlencode

import requests

from waiting import wait_until  # noqa: F401  (re-exported for the stories)
from slack_sdk.signature import SignatureVerifier

from relay.sandbox import scenario

TEAM = "T0SANDBOX"


def sign(body: bytes, ts: int | str | None = None, secret: str = scenario.SIGNING_SECRET) -> dict:
    ts = str(int(time.time())) if ts is None else str(ts)
    sig = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig}


def form_body(payload: dict) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def post(relay, body: bytes, *, json_body: bool = False, headers: dict | None = None,
         path: str = "/slack/events", timeout: float = 10) -> requests.Response:
    h = {"Content-Type": "application/json" if json_body else "application/x-www-form-urlencoded"}
    h.update(sign(body) if headers is None else headers)
    return requests.post(f"http://127.0.0.1:{relay.port}{path}", data=body, headers=h, timeout=timeout)


def send(relay, payload: dict, **kw) -> requests.Response:
    """An interactivity payload (form-encoded `payload=`), signed."""
    return post(relay, form_body(payload), **kw)


def send_event(relay, envelope: dict, **kw) -> requests.Response:
    return post(relay, json.dumps(envelope).encode(), json_body=True, **kw)


def _action(action_id: str, request_id: int, block_id: str) -> dict:
    labels = {"approve": "Approve", "deny": "Deny", "cancel_request": "Cancel request"}
    return {"action_id": action_id, "block_id": block_id,
            "text": {"type": "plain_text", "text": labels.get(action_id, action_id), "emoji": True},
            "value": str(request_id), "type": "button", "action_ts": f"{time.time():.6f}"}


def _user(sb, who: str) -> dict:
    uid = sb[who].slack_id
    return {"id": uid, "username": who, "name": who, "team_id": TEAM}


def click_message(sb, who: str, action_id: str, request_id: int, message: dict, *, ephemeral: bool) -> dict:
    """block_actions from a message (a DM card, or an ephemeral message with its response_url)."""
    uid = sb[who].slack_id
    channel, ts = message["channel"], message["ts"]
    payload = {
        "type": "block_actions", "user": _user(sb, who), "api_app_id": "A0SANDBOX",
        "token": "legacy-verification-token", "team": {"id": TEAM, "domain": "sandbox"},
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": ephemeral},
        "trigger_id": sb.slack.new_trigger_id(uid), "enterprise": None, "is_enterprise_install": False,
        "channel": {"id": channel, "name": "directmessage"},
        "state": {"values": {}},
        "response_url": sb.slack.new_response_url(uid, channel, ts, ephemeral=ephemeral),
        "actions": [_action(action_id, request_id, f"request:{request_id}")],
    }
    if not ephemeral:
        payload["message"] = {"bot_id": "B0BOT", "type": "message", "text": message.get("text", ""),
                              "user": "U0BOT", "ts": ts, "app_id": "A0SANDBOX", "blocks": message.get("blocks", [])}
    return payload


def click_home(sb, who: str, action_id: str, request_id: int) -> dict:
    """block_actions from the Home tab: no response_url, no channel, a view container."""
    uid = sb[who].slack_id
    view = sb.slack.home_view(uid) or {"id": "V0NONE", "hash": "1.x", "blocks": []}
    return {
        "type": "block_actions", "user": _user(sb, who), "api_app_id": "A0SANDBOX",
        "token": "legacy-verification-token",
        "container": {"type": "view", "view_id": view["id"]},
        "trigger_id": sb.slack.new_trigger_id(uid), "team": {"id": TEAM, "domain": "sandbox"},
        "enterprise": None, "is_enterprise_install": False,
        "view": {"id": view["id"], "team_id": TEAM, "type": "home", "blocks": view.get("blocks", []),
                 "private_metadata": "", "callback_id": "ssrelay_home", "state": {"values": {}},
                 "hash": view.get("hash"), "root_view_id": view["id"], "app_id": "A0SANDBOX",
                 "external_id": "", "app_installed_team_id": TEAM, "bot_id": "B0BOT"},
        "actions": [_action(action_id, request_id, f"home:{request_id}")],
    }


def view_submission(sb, who: str, modal: dict, reason: str) -> dict:
    """view_submission of the reason modal as Slack sends it (values keyed by block/action id)."""
    return {
        "type": "view_submission", "team": {"id": TEAM, "domain": "sandbox"}, "user": _user(sb, who),
        "api_app_id": "A0SANDBOX", "token": "legacy-verification-token",
        "trigger_id": sb.slack.new_trigger_id(sb[who].slack_id),
        "view": {**modal, "state": {"values": {"reason": {"reason": {"type": "plain_text_input",
                                                                     "value": reason}}}}},
        "response_urls": [], "is_enterprise_install": False, "enterprise": None,
    }


def home_opened(sb, who: str, *, event_id: str | None = None) -> dict:
    uid = sb[who].slack_id
    event = {"type": "app_home_opened", "user": uid, "channel": sb.slack.dm_channel(uid),
             "event_ts": f"{time.time():.6f}", "tab": "home"}
    view = sb.slack.home_view(uid)
    if view:
        event["view"] = view
    return {"token": "legacy-verification-token", "team_id": TEAM, "api_app_id": "A0SANDBOX",
            "event": event, "type": "event_callback", "event_id": event_id or f"Ev{uuid.uuid4().hex[:10]}",
            "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": TEAM, "user_id": "U0BOT", "is_bot": True,
                                "is_enterprise_install": False}],
            "is_ext_shared_channel": False, "event_context": "4-sandbox"}


# ---------------------------------------------------------------------- sign-in
def signin_link(text_or_blocks) -> str:
    found = re.search(r"(https?://[^\s\"'|>]+/signin\?state=[A-Za-z0-9_\-%]+)", json.dumps(text_or_blocks))
    assert found, "no sign-in link"
    return found.group(1)


def local(relay, url: str) -> str:
    """The sign-in URL as the browser reaches the running relay (public_url is a placeholder)."""
    return f"http://127.0.0.1:{relay.port}/signin?" + url.split("?", 1)[1]


def submit_signin(relay, state: str, username: str, password: str, **extra) -> requests.Response:
    data = {"state": state, "username": username, "password": password, **extra}
    return requests.post(f"http://127.0.0.1:{relay.port}/signin", data=data, timeout=10)


def sign_in(relay, sb, who: str) -> None:
    """`who` signs in through the real form (state made as the Home tab makes it)."""
    state = relay.interactions.sessions.new_state(TEAM, sb[who].slack_id)
    r = submit_signin(relay, state, who, sb[who].password)
    assert r.status_code == 200 and "Signed in" in r.text, r.text[:500]
    assert relay.interactions.sessions.has_session(sb[who].slack_id)


def start_relay(make_relay, sb, **overrides):
    """A running relay (HTTP on a free port) after its first poll delivered everything due."""
    overrides.setdefault("POLL_INTERVAL_SECONDS", "3600")   # tests poll with poll_now()
    relay = make_relay(**overrides)
    relay.start()
    wait_until(lambda: relay.db.execute(
        "SELECT value FROM relay_state WHERE key = 'last_successful_poll'").fetchone(), 10, "the first poll")
    drain(relay)
    return relay


def drain(relay, timeout: float = 10) -> None:
    """Wait until the outbox has nothing pending or sending (the delivery thread works)."""
    def drained() -> bool:
        relay.delivery.wake.set()
        return not relay.db.execute(
            "SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')").fetchone()[0]
    wait_until(drained, timeout, "the outbox to drain")


def poll_now(relay) -> None:
    result = relay.poller.poll_once()
    assert result.ok, result.error
    drain(relay)


