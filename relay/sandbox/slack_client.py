"""Slack's side of the wire, for the sandbox: the requests Slack itself would send to the relay
(signed `block_actions` clicks, `app_home_opened` events), and a person's walk through the
relay's real sign-in page. Used by `ssrelay demo --preview` and the tests.

Payload shapes follow Slack's interaction payloads
(https://docs.slack.dev/reference/interaction-payloads) (the same shapes as tests/slack_payloads.py).
Everything goes over real HTTP to the relay's `POST /slack/events`, signed with
`SignatureVerifier(signing_secret).generate_signature`, exactly as Slack signs.
"""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from slack_sdk.signature import SignatureVerifier

from . import scenario
from .slack import APP_ID, BOT_ID, BOT_USER_ID

LABELS = {"approve": "Approve", "deny": "Deny", "cancel_request": "Cancel request"}
_SIGNIN = re.compile(r"/signin\?state=([A-Za-z0-9_\-%]+)")
_STATE_FIELD = re.compile(r'name="state" value="([^"]*)"')


class SlackClient:
    """Sends what Slack would send, to a relay listening at `relay_url` (http://127.0.0.1:port)."""

    def __init__(self, sb: scenario.Sandbox, relay_url: str, *,
                 signing_secret: str = scenario.SIGNING_SECRET, timeout: float = 10.0):
        self.sb = sb
        self.relay_url = relay_url.rstrip("/")
        self.verifier = SignatureVerifier(signing_secret)
        self.timeout = timeout
        self.team = sb.slack.team_id

    # ------------------------------------------------------------------ transport
    def _post(self, body: bytes, content_type: str) -> requests.Response:
        ts = str(int(time.time()))
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts,
                   "X-Slack-Signature": self.verifier.generate_signature(timestamp=ts, body=body)}
        return requests.post(f"{self.relay_url}/slack/events", data=body, headers=headers, timeout=self.timeout)

    def send_interaction(self, payload: dict) -> requests.Response:
        """Interactivity: form-encoded `payload=<json>`, signed."""
        return self._post(urlencode({"payload": json.dumps(payload)}).encode(),
                          "application/x-www-form-urlencoded")

    def send_event(self, envelope: dict) -> requests.Response:
        return self._post(json.dumps(envelope).encode(), "application/json")

    # ------------------------------------------------------------------ payloads
    def _user(self, slack_id: str) -> dict:
        name = next((p.name for p in self.sb.people.values() if p.slack_id == slack_id), slack_id.lower())
        return {"id": slack_id, "username": name, "name": name, "team_id": self.team}

    def _action(self, action_id: str, value: str, block_id: str) -> dict:
        return {"action_id": action_id, "block_id": block_id,
                "text": {"type": "plain_text", "text": LABELS.get(action_id, action_id), "emoji": True},
                "value": value, "type": "button", "action_ts": f"{time.time():.6f}"}

    def click_message(self, slack_id: str, action_id: str, value: str, block_id: str, message: dict, *,
                      ephemeral: bool) -> dict:
        """block_actions on a DM card (`message` from `slack.messages()`) or an ephemeral message
        (from `slack.ephemerals()`, with a fresh response_url)."""
        channel, ts = message["channel"], message["ts"]
        payload: dict[str, Any] = {
            "type": "block_actions", "user": self._user(slack_id), "api_app_id": APP_ID,
            "token": "legacy-verification-token", "team": {"id": self.team, "domain": "sandbox"},
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": ephemeral},
            "trigger_id": self.sb.slack.new_trigger_id(slack_id), "enterprise": None,
            "is_enterprise_install": False, "channel": {"id": channel, "name": "directmessage"},
            "state": {"values": {}},
            "response_url": self.sb.slack.new_response_url(slack_id, channel, ts, ephemeral=ephemeral),
            "actions": [self._action(action_id, value, block_id)],
        }
        if not ephemeral:
            payload["message"] = {"bot_id": BOT_ID, "type": "message", "text": message.get("text", ""),
                                  "user": BOT_USER_ID, "ts": ts, "app_id": APP_ID,
                                  "blocks": message.get("blocks", [])}
        return payload

    def click_home(self, slack_id: str, action_id: str, value: str, block_id: str) -> dict:
        """block_actions on the Home tab: a view container, no response_url, no channel."""
        view = self.sb.slack.home_view(slack_id) or {"id": "V0NONE", "hash": "", "blocks": []}
        return {
            "type": "block_actions", "user": self._user(slack_id), "api_app_id": APP_ID,
            "token": "legacy-verification-token", "container": {"type": "view", "view_id": view["id"]},
            "trigger_id": self.sb.slack.new_trigger_id(slack_id), "team": {"id": self.team, "domain": "sandbox"},
            "enterprise": None, "is_enterprise_install": False,
            "view": {"id": view["id"], "team_id": self.team, "type": "home", "blocks": view.get("blocks", []),
                     "private_metadata": view.get("private_metadata", ""),
                     "callback_id": view.get("callback_id", ""), "state": {"values": {}},
                     "hash": view.get("hash"), "root_view_id": view["id"], "app_id": APP_ID,
                     "external_id": "", "app_installed_team_id": self.team, "bot_id": BOT_ID},
            "actions": [self._action(action_id, value, block_id)],
        }

    def home_opened(self, slack_id: str) -> dict:
        event: dict[str, Any] = {"type": "app_home_opened", "user": slack_id, "channel": self.sb.slack.dm_channel(slack_id),
                 "event_ts": f"{time.time():.6f}", "tab": "home"}
        view = self.sb.slack.home_view(slack_id)
        if view:
            event["view"] = view
        return {"token": "legacy-verification-token", "team_id": self.team, "api_app_id": APP_ID,
                "event": event, "type": "event_callback", "event_id": f"Ev{uuid.uuid4().hex[:12]}",
                "event_time": int(time.time()),
                "authorizations": [{"enterprise_id": None, "team_id": self.team, "user_id": BOT_USER_ID,
                                    "is_bot": True, "is_enterprise_install": False}],
                "is_ext_shared_channel": False, "event_context": "4-sandbox"}

    # ------------------------------------------------------------------ a person's actions
    def open_home(self, slack_id: str, *, timeout: float = 10.0) -> dict:
        """The person opens the app's Home tab; returns the view the relay published."""
        before = (self.sb.slack.home_view(slack_id) or {}).get("hash")
        resp = self.send_event(self.home_opened(slack_id))
        resp.raise_for_status()
        started = time.monotonic()
        while True:
            view = self.sb.slack.home_view(slack_id)
            if view and view.get("hash") != before:
                return view
            if view and time.monotonic() - started > 1.0:
                return view     # unchanged: the relay skips publishing an identical view
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"the relay published no Home tab for {slack_id}")
            time.sleep(0.05)

    def sign_in(self, person: scenario.Person, *, timeout: float = 10.0) -> None:
        """The person clicks "Sign in to Secret Server" on their Home tab and submits the relay's
        real sign-in form with their sandbox password."""
        view = self.open_home(person.slack_id, timeout=timeout)
        link = signin_link(view)
        if link is None:
            if "Signed in to Secret Server" in json.dumps(view):
                return
            raise RuntimeError(f"no sign-in link on {person.name}'s Home tab")
        # The link names http.public_url; the browser here reaches the relay at relay_url.
        parts = urlsplit(link)
        page = requests.get(f"{self.relay_url}{parts.path}?{parts.query}", timeout=self.timeout)
        found = _STATE_FIELD.search(page.text)
        if page.status_code != 200 or not found:
            raise RuntimeError(f"sign-in page for {person.name} answered {page.status_code}")
        done = requests.post(f"{self.relay_url}/signin", timeout=self.timeout,
                             data={"state": html.unescape(found.group(1)), "username": person.name,
                                   "password": person.password})
        if done.status_code != 200 or "Signed in" not in done.text:
            raise RuntimeError(f"sign-in of {person.name} failed ({done.status_code})")


def signin_link(view: dict | None) -> str | None:
    """The URL of the "Sign in to Secret Server" button of a Home view, if there is one."""
    for block in (view or {}).get("blocks", []):
        for el in [block.get("accessory") or {}, *block.get("elements", [])]:
            url = el.get("url") if isinstance(el, dict) else None
            if isinstance(url, str) and _SIGNIN.search(url):
                return url
    return None
