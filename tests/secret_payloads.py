"""Slack payloads for the secrets flows (shortcut, clicks inside modals, modal submissions),
shaped like Slack's (reference §2), and a relay set up for them."""

from __future__ import annotations

import json
import re
import time

import pytest

from relay.sandbox import scenario
from slack_payloads import TEAM, _user, send, start_relay, wait_until

# views.* unpaced in tests (the pacer spaces a method's calls by its tier rate)
RATES = json.dumps({m: 6000 for m in (
    "chat.postMessage", "chat.postEphemeral", "chat.update", "conversations.open", "users.lookupByEmail",
    "views.publish", "views.open", "views.update", "views.push")})


# SS endpoints that return secret field values: the relay must never call them
VALUE_ENDPOINTS = re.compile(r"^/api/v\d+/secrets/\d+/?$|/fields(/|$)|/restricted(/|$)|/secrets/\d+/(file|attachment)",
                             re.IGNORECASE)


def assert_no_secret_values(sb, *extra_texts: str) -> int:
    """Every Slack call the stand-in recorded (Web API and response_url posts), and any extra
    text (ack bodies, logs), is free of the SS stand-in's secret field values; SS was never
    asked for a value. Returns how many Slack calls were swept."""
    values = sb.ss.secret_field_values()
    assert values, "the sandbox has secret field values to look for"
    calls = sb.slack.calls
    for call in calls:
        blob = json.dumps(call.args, ensure_ascii=False, default=str)
        for v in values:
            assert v not in blob, f"secret field value sent to Slack in {call.method}"
    for t in extra_texts:
        for v in values:
            assert v not in t, "secret field value in an ack or a log line"
    bad = [f"{c.method} {c.path}" for c in sb.ss.calls if VALUE_ENDPOINTS.search(c.path)]
    assert bad == [], f"value-returning SS endpoints called: {bad}"
    return len(calls)


@pytest.fixture
def no_secret_values(sandbox, caplog):
    """Use in a module (pytestmark) to sweep every test's Slack traffic and logs afterwards."""
    yield
    assert_no_secret_values(sandbox, caplog.text)


def relay_for_secrets(make_relay, sb, **overrides):
    relay = start_relay(make_relay, sb, SLACK_RATE_LIMITS=RATES, **overrides)
    relay.people_ss.retry_seconds = 0.3          # "SS down" answers within the test's patience
    return relay


def shortcut(sb, who: str, *, ttl: float = 3.0) -> dict:
    return {"type": "shortcut", "token": "legacy-verification-token", "action_ts": f"{time.time():.6f}",
            "team": {"id": TEAM, "domain": "sandbox"}, "user": _user(sb, who), "is_enterprise_install": False,
            "enterprise": None, "callback_id": "secretsearch",
            "trigger_id": sb.slack.new_trigger_id(sb[who].slack_id, ttl=ttl)}


def _state(values: dict) -> dict:
    """{(block, action): value | ("select", value)} -> Slack's state.values."""
    out: dict = {}
    for (block, action), value in values.items():
        if isinstance(value, tuple) and value[0] == "select":
            el = {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": value[1]},
                                                               "value": value[1]}}
        else:
            el = {"type": "plain_text_input", "value": value}
        out.setdefault(block, {})[action] = el
    return {"values": out}


def submission(sb, who: str, view_id: str, values: dict) -> dict:
    """view_submission of the modal `view_id` as the stand-in holds it, with `values` typed in."""
    modal = sb.slack.modal(view_id)
    assert modal is not None, f"no modal {view_id}"
    view = {**modal, "state": _state(values)}
    return {"type": "view_submission", "team": {"id": TEAM, "domain": "sandbox"}, "user": _user(sb, who),
            "api_app_id": "A0SANDBOX", "token": "legacy-verification-token",
            "trigger_id": sb.slack.new_trigger_id(sb[who].slack_id), "view": view, "response_urls": [],
            "is_enterprise_install": False, "enterprise": None}


def click_in_modal(sb, who: str, view_id: str, action_id: str, value: str) -> dict:
    """block_actions from a button inside a modal (views.push territory)."""
    modal = sb.slack.modal(view_id)
    assert modal is not None, f"no modal {view_id}"
    uid = sb[who].slack_id
    return {"type": "block_actions", "user": _user(sb, who), "api_app_id": "A0SANDBOX",
            "token": "legacy-verification-token", "container": {"type": "view", "view_id": view_id},
            "trigger_id": sb.slack.new_trigger_id(uid, view_id=view_id), "team": {"id": TEAM, "domain": "sandbox"},
            "enterprise": None, "is_enterprise_install": False, "view": {**modal, "state": {"values": {}}},
            "actions": [{"action_id": action_id, "block_id": "b", "value": value, "type": "button",
                         "text": {"type": "plain_text", "text": action_id}, "action_ts": f"{time.time():.6f}"}]}


def top_modal(sb, who: str, *, opened: int = 1, method: str = "views.open") -> str:
    """Once `opened` successful calls of `method` were seen: the id of the modal on top of
    `who`'s newest modal stack (what they are looking at)."""
    sb.slack.wait_for(method, lambda c: c.ok, count=opened)
    with sb.slack._lock:
        root = sb.slack._user_stacks[sb[who].slack_id][-1]
        return sb.slack._stacks[root][-1]


def updated(sb, view_id: str, predicate=lambda view: True, timeout: float = 10) -> dict:
    """Wait until the modal was updated (views.update) into a view satisfying `predicate`."""
    sb.slack.wait_for("views.update", lambda c: c.args.get("view_id") == view_id and c.ok
                      and predicate(c.args["view"]), timeout=timeout)
    return sb.slack.modal(view_id)


def text(view) -> str:
    return json.dumps(view, ensure_ascii=False)


def submit(relay, payload: dict) -> dict:
    """Post a view_submission; the ack's JSON body ({} for a plain ack)."""
    r = send(relay, payload)
    assert r.status_code == 200, r.text
    return r.json() if r.text.strip() else {}


__all__ = ["relay_for_secrets", "shortcut", "submission", "click_in_modal", "top_modal", "updated", "text",
           "submit", "wait_until", "scenario"]
