"""The shape of a Slack request, checked once before anything reads it, and the other rules
of the public HTTP surface that are decisions rather than I/O.

* `parse_body` turns a signed body into the payload exactly one way (JSON for
  `application/json`, else the form field `payload`), refusing bodies that Bolt would read
  differently (a form body that starts with `{`).
* `check_envelope` refuses any payload whose fields the relay or Bolt's extractors would trip
  over (`team: 1.5`, `enterprise: true`, `authorizations: {...}`, a view without `type`,
  `channel: 5`...): such a request gets a 400 and never reaches Bolt or a listener.
* `request_id` reads an SS id from a button value or view metadata: digits only, in SS's
  int32 range, so no id can overflow SQLite's or SS's integers.
* `click_key` names a click (team, user, action, `action_ts`, container): a replay of the
  same signed click has the same key and acts at most once.
* `response_url_allowed` is the outbound allow-list for `response_url`.
* `clean_source` keeps only the well-typed parts of where a click came from.

Pure functions: no I/O, no logging; the interactions layer decides what to do with the answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

SLACK_HOOKS_HOST = "hooks.slack.com"
MAX_SS_ID = 2**31 - 1            # SS ids are int32
_ID_DIGITS = re.compile(r"[0-9]{1,10}")
_SLACK_ID = re.compile(r"[A-Z][A-Z0-9]{1,31}")
_NONE = type(None)
_OPT_STR = (str, _NONE)
_OPT_BOOL = (bool, _NONE)
_OPT_DICT = (dict, _NONE)

# Fields Bolt and the relay read as a string or as an object carrying string ids.
_REFS = ("team", "enterprise", "user", "channel")
_REF_IDS = ("id", "team_id", "enterprise_id", "name", "domain", "username")
# Fields read as strings (when present).
_STRINGS = ("type", "team_id", "enterprise_id", "user_id", "channel_id", "api_app_id", "trigger_id",
            "response_url", "event_id", "callback_id", "thread_ts", "ts", "user_team", "tab",
            "context_team_id", "context_enterprise_id", "function_execution_id", "bot_access_token",
            "action_id", "block_id", "subtype", "channel_type")
_OBJECTS = ("event", "view", "container", "state", "message", "previous_message", "item",
            "assistant_thread", "function_data", "function", "workflow_step")
_FLAGS = ("is_enterprise_install", "is_ext_shared_channel")
_USER_KINDS = ("block_actions", "view_submission", "view_closed", "shortcut", "message_action")
_VIEW_KINDS = ("view_submission", "view_closed")


class Malformed(ValueError):
    """A signed Slack request whose body or payload has a shape nothing may read: a 400."""


# ---------------------------------------------------------------------- the body
def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_body(body: bytes, content_type: str | None) -> dict | None:
    """The payload of a signed Slack request; None for Slack's `ssl_check` probe.
    Raises Malformed for anything else that is not one JSON object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("body is not UTF-8") from None
    if media_type(content_type) == "application/json":
        raw = text
    else:
        if text.lstrip().startswith("{"):
            raise Malformed("form body that reads as JSON")
        form = parse_qs(text, keep_blank_values=True)
        if "payload" not in form:
            if form.get("ssl_check"):
                return None
            raise Malformed("form without payload")
        raw = form["payload"][-1]
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        raise Malformed("payload is not JSON") from None
    if not isinstance(payload, dict):
        raise Malformed("payload is not an object")
    return payload


# ---------------------------------------------------------------------- the envelope
def _fail(where: str, key: str, value: Any) -> Malformed:
    return Malformed(f"{where}{key} is {type(value).__name__}")


def _refs(obj: dict, where: str) -> None:
    """team, enterprise, user, channel: a string id, or an object carrying string ids."""
    for key in _REFS:
        v = obj.get(key)
        if isinstance(v, dict):
            for k in _REF_IDS:
                if not isinstance(v.get(k), _OPT_STR):
                    raise _fail(f"{where}{key}.", k, v.get(k))
        elif not isinstance(v, _OPT_STR):
            raise _fail(where, key, v)


def _scalars(obj: dict, where: str) -> None:
    """The fields read as strings or flags when present, and those that must be objects."""
    for keys, types in ((_STRINGS, _OPT_STR), (_FLAGS, _OPT_BOOL)):
        for key in keys:
            if not isinstance(obj.get(key), types):
                raise _fail(where, key, obj.get(key))
    for key in _OBJECTS:   # Bolt tests these with `key in body`: present means an object
        if key in obj and not isinstance(obj[key], dict):
            raise _fail(where, key, obj[key])


def _authorizations(obj: dict, where: str, *, nested: bool) -> None:
    """`authorizations`: a list of objects, each with the common fields (only at the top)."""
    auths = obj.get("authorizations")
    if auths is None:
        return
    if not nested or not isinstance(auths, list) or not all(isinstance(a, dict) for a in auths):
        raise _fail(where, "authorizations", auths)
    for i, a in enumerate(auths):
        _common(a, f"{where}authorizations[{i}].", nested=False)


def _common(obj: dict, where: str, *, nested: bool = True) -> None:
    """The fields Bolt's extractors and the relay read from the payload, the event, and each
    authorization, message or item."""
    _refs(obj, where)
    _scalars(obj, where)
    _authorizations(obj, where, nested=nested)
    if nested:
        for key in ("event", "message", "previous_message", "item", "assistant_thread"):
            if isinstance(obj.get(key), dict):
                _common(obj[key], f"{where}{key}.", nested=key == "event")


def _view(view: dict, where: str, *, submitted: bool) -> None:
    for key in ("id", "type", "callback_id", "private_metadata", "hash", "team_id",
                "app_installed_team_id", "root_view_id", "previous_view_id", "external_id"):
        if not isinstance(view.get(key), _OPT_STR):
            raise _fail(where, key, view.get(key))
    if not isinstance(view.get("state"), _OPT_DICT):
        raise _fail(where, "state", view.get("state"))
    if isinstance(view.get("state"), dict) and not isinstance(view["state"].get("values"), _OPT_DICT):
        raise _fail(where, "state.values", view["state"].get("values"))
    if submitted:
        for key in ("id", "type", "callback_id"):
            if not isinstance(view.get(key), str):
                raise Malformed(f"{where}{key} missing")


def _response_urls(payload: dict) -> None:
    rurls = payload.get("response_urls")
    # Bolt reads the first of them and cannot log about more than one: one at most
    if "response_urls" in payload and not (isinstance(rurls, list) and len(rurls) <= 1 and all(
            isinstance(u, dict) and isinstance(u.get("response_url"), _OPT_STR) for u in rurls)):
        raise _fail("", "response_urls", rurls)


def _user(payload: dict, kind: str) -> None:
    if kind in _USER_KINDS:
        user = payload.get("user")
        if not isinstance(user, dict) or slack_id(user.get("id")) is None:
            raise Malformed("payload without a user id")


def _payload_view(payload: dict, kind: str) -> None:
    if isinstance(payload.get("view"), dict):
        _view(payload["view"], "view.", submitted=kind in _VIEW_KINDS)
    elif kind in _VIEW_KINDS:
        raise Malformed(f"{kind} without view")


def _actions(payload: dict, kind: str) -> None:
    """block_actions and interactive_message: a non-empty list of actions (block actions each
    with an action_id), and a well-typed container."""
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions:
        raise Malformed(f"{kind} without actions")
    for i, a in enumerate(actions):
        if not isinstance(a, dict) or (kind == "block_actions" and not isinstance(a.get("action_id"), str)):
            raise Malformed(f"actions[{i}] without action_id")
        for key in ("block_id", "action_ts", "type"):
            if not isinstance(a.get(key), _OPT_STR):
                raise _fail(f"actions[{i}].", key, a.get(key))
    _container(payload.get("container"))


def _container(container: Any) -> None:
    if not isinstance(container, dict):
        return
    for key in ("type", "channel_id", "message_ts", "view_id"):
        if not isinstance(container.get(key), _OPT_STR):
            raise _fail("container.", key, container.get(key))
    if not isinstance(container.get("is_ephemeral"), _OPT_BOOL):
        raise _fail("container.", "is_ephemeral", container.get("is_ephemeral"))


def _callback_id(payload: dict, kind: str) -> None:
    if not isinstance(payload.get("callback_id"), str):
        raise Malformed(f"{kind} without callback_id")


def _event(payload: dict, kind: str) -> None:
    event = payload.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise Malformed("event_callback without event.type")
    if isinstance(event.get("view"), dict):
        _view(event["view"], "event.view.", submitted=False)
    elif event.get("view") is not None:
        raise _fail("event.", "view", event.get("view"))


def _challenge(payload: dict, kind: str) -> None:
    if not isinstance(payload.get("challenge"), str):
        raise Malformed("url_verification without challenge")


# What each kind of payload must carry beyond the common fields, its user and its view.
_BY_KIND: dict[str, Callable[[dict, str], None]] = {
    "block_actions": _actions,
    "interactive_message": _actions,
    "shortcut": _callback_id,
    "message_action": _callback_id,
    "event_callback": _event,
    "url_verification": _challenge,
}


def check_envelope(payload: Any) -> None:
    """Raise Malformed unless every field the relay or Bolt reads has the type Slack sends."""
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise Malformed("payload is not an object with a type")
    kind = payload["type"]
    _common(payload, "")
    _response_urls(payload)
    _user(payload, kind)
    _payload_view(payload, kind)
    by_kind = _BY_KIND.get(kind)
    if by_kind is not None:
        by_kind(payload, kind)


# ---------------------------------------------------------------------- values
def request_id(value: Any) -> int | None:
    """An SS id from a button value or metadata (digits, 1..2**31-1); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        n = value
    elif isinstance(value, str) and _ID_DIGITS.fullmatch(value.strip()):
        n = int(value.strip())
    else:
        return None
    return n if 0 < n <= MAX_SS_ID else None


def slack_id(value: Any) -> str | None:
    """A Slack user, team or channel id (`U0123ABC`): capitals and digits; None otherwise."""
    return value if isinstance(value, str) and _SLACK_ID.fullmatch(value) else None


def text(value: Any) -> str:
    """A string field, or "" when the payload carried anything else."""
    return value if isinstance(value, str) else ""


def click_key(payload: dict) -> str | None:
    """What identifies one click: a replay of the same signed click has the same key.
    None for anything that is not a click."""
    if payload.get("type") != "block_actions":
        return None
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return None
    action = actions[0]
    team = payload.get("team")
    user = payload.get("user")
    found = payload.get("container")
    container: dict = found if isinstance(found, dict) else {}
    parts = [text(team.get("id")) if isinstance(team, dict) else text(team),
             text(user.get("id")) if isinstance(user, dict) else text(user),
             text(action.get("action_id")), text(action.get("block_id")), text(action.get("action_ts")),
             {k: container.get(k) for k in sorted(container) if isinstance(container.get(k), (str, bool))}]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------- outbound
def _origin(url: str) -> tuple[str, str, int] | None:
    if not isinstance(url, str) or not url.isascii() or any(c in url for c in "\\ \t\r\n"):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def response_url_allowed(url: Any, api_url: str) -> bool:
    """True for a `response_url` the relay may POST to: under https://hooks.slack.com/, or on
    the scheme, host and port of `slack.api_url` (a proxy, or the sandbox)."""
    origin = _origin(url)
    if origin is None or not urlsplit(url).path.startswith("/"):
        return False
    return origin == ("https", SLACK_HOOKS_HOST, 443) or origin == _origin(api_url)


SOURCE_KINDS = ("home", "message", "ephemeral")


def clean_source(source: Any, api_url: str) -> dict:
    """Where a click came from (to update it in place afterwards), with only well-typed parts
    and only an allowed response_url. Applied to fresh clicks and to stored ones."""
    if not isinstance(source, dict) or source.get("kind") not in SOURCE_KINDS:
        return {}
    if source["kind"] == "home":
        return {"kind": "home"}
    url = text(source.get("response_url"))
    return {"kind": source["kind"], "response_url": url if response_url_allowed(url, api_url) else "",
            "channel": text(source.get("channel")), "ts": text(source.get("ts"))}
