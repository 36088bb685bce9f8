"""`ssrelay manifest`: the Slack app manifest for the configured mode, as YAML.

Pure: `build(mode, public_url)` returns the manifest as data, `to_yaml(data)` renders it.
The YAML is written here rather than with PyYAML: the structure is small and fixed (maps,
lists of scalars, one list of maps), the output is deterministic and stays readable, and the
relay gains no run-time dependency for it. The tests parse the text back with PyYAML and
compare it to `build(...)`.

What is in it (reference/slack-platform.md §7):
- a bot user, always online; the Home tab and the Messages tab (read-only: the relay does
  not read what people type to it);
- the global shortcut `secretsearch` ("Search secrets");
- the bot event `app_home_opened`, and interactivity;
- exactly the bot scopes the relay calls methods with (`BOT_SCOPES`), no more;
- HTTP mode: events and interactivity at `{http.public_url}/slack/events`;
  Socket Mode: no request URLs, `socket_mode_enabled: true`.
"""

from __future__ import annotations

import json
import re
from typing import Any

APP_NAME = "Secret Server Relay"
BOT_NAME = "ssrelay"
DESCRIPTION = "Approve and deny Secret Server access requests, search secrets."
LONG_DESCRIPTION = (
    "ssrelay relays Delinea Secret Server's access-request workflow into Slack. Approvers get "
    "an Approve / Deny message the moment someone asks for a secret, requesters hear the "
    "outcome, and the Home tab lists your pending requests and the ones waiting for your "
    "review. Approve, Deny and Cancel run as you, with your own Secret Server session; the "
    "relay never reads secret values.")
SHORTCUT_CALLBACK_ID = "secretsearch"
BOT_EVENTS = ("app_home_opened",)
# chat.postMessage / postEphemeral / update: chat:write; conversations.open: im:write;
# users.info: users:read; users.lookupByEmail: users:read.email; the global shortcut: commands;
# conversations.history in the app's DMs (finding a message whose answer was lost): im:history.
BOT_SCOPES = ("chat:write", "im:write", "im:history", "users:read", "users:read.email", "commands")
# With [[channels]] routes, `ssrelay check` asks conversations.info whether the bot is in each
# routed channel: channels:read; a channel card or thread reply whose answer was lost is looked
# up with conversations.history / conversations.replies: channels:history (a private channel
# also needs groups:read and groups:history, added by hand).
CHANNEL_SCOPES = ("channels:read", "channels:history")
# The app-level token (Socket Mode) is created in the app's settings, not by the manifest.
APP_TOKEN_SCOPE = "connections:write"
EVENTS_PATH = "/slack/events"


def request_url(public_url: str) -> str:
    return public_url.rstrip("/") + EVENTS_PATH


def build(mode: str, public_url: str, *, channels: bool = False) -> dict[str, Any]:
    """The manifest for `mode` ("http" or "socket") as plain data."""
    if mode not in ("http", "socket"):
        raise ValueError(f"mode must be 'http' or 'socket', not {mode!r}")
    events: dict[str, Any] = {"bot_events": list(BOT_EVENTS)}
    interactivity: dict[str, Any] = {"is_enabled": True}
    if mode == "http":
        events = {"request_url": request_url(public_url), **events}
        interactivity["request_url"] = request_url(public_url)
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": APP_NAME,
            "description": DESCRIPTION,
            "long_description": LONG_DESCRIPTION,
            "background_color": "#1d3b5a",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": True,
            },
            "bot_user": {"display_name": BOT_NAME, "always_online": True},
            "shortcuts": [{
                "name": "Search secrets",
                "type": "global",
                "callback_id": SHORTCUT_CALLBACK_ID,
                "description": "Find a secret you can see in Secret Server",
            }],
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES) + (list(CHANNEL_SCOPES) if channels else [])}},
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": mode == "socket",
            "token_rotation_enabled": False,
        },
    }


# ---------------------------------------------------------------------- YAML
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _RESERVED:
        return s
    return json.dumps(s, ensure_ascii=False)   # a JSON string is a valid YAML double-quoted scalar


def _emit(value: Any, indent: int, out: list[str]) -> None:
    pad = "  " * indent
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{_scalar(k)}:")
                _emit(v, indent + 1, out)
            elif isinstance(v, (dict, list)):
                out.append(f"{pad}{_scalar(k)}: {'{}' if isinstance(v, dict) else '[]'}")
            else:
                out.append(f"{pad}{_scalar(k)}: {_scalar(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                lines: list[str] = []
                _emit(item, indent + 1, lines)
                first = lines[0][len(pad) + 2:]
                out.append(f"{pad}- {first}")
                out.extend(lines[1:])
            else:
                out.append(f"{pad}- {_scalar(item)}")
    else:
        out.append(pad + _scalar(value))


def to_yaml(data: dict[str, Any]) -> str:
    out: list[str] = []
    _emit(data, 0, out)
    return "\n".join(out) + "\n"


def render(mode: str, public_url: str, *, channels: bool = False) -> str:
    """The text `ssrelay manifest` prints: a comment saying what to do with it, then YAML."""
    head = [f"# Slack app manifest for ssrelay ({'HTTP mode' if mode == 'http' else 'Socket Mode'}).",
            "# api.slack.com/apps -> Create New App -> From an app manifest -> paste this -> Install to Workspace.",
            "# Then: Bot User OAuth Token (xoxb-...) -> SSRELAY_SLACK_BOT_TOKEN"]
    if mode == "http":
        head.append("#       Basic Information > Signing Secret -> SSRELAY_SLACK_SIGNING_SECRET")
    else:
        head.append(f"#       Basic Information > App-Level Tokens > Generate ({APP_TOKEN_SCOPE}) "
                    "-> SSRELAY_SLACK_APP_TOKEN (xapp-...)")
    return "\n".join(head) + "\n" + to_yaml(build(mode, public_url, channels=channels))
