"""conversations.* methods (called under the stand-in's lock)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from ..args import _ApiError, _require, _truthy

if TYPE_CHECKING:
    from ..standin import SlackStandIn


def _conversations_open(s: SlackStandIn, args: dict) -> dict:
    users = args.get("users")
    if not users:
        channel = args.get("channel")
        if channel and channel in s._channels and s._channels[channel]["im_user"]:
            return {"no_op": True, "already_open": True, "channel": {"id": channel}}
        raise _ApiError("users_list_not_supplied" if not channel else "channel_not_found")
    ids = [u.strip() for u in str(users).split(",") if u.strip()]
    if len(ids) != 1:
        raise _ApiError("method_not_supported_for_channel_type")  # the sandbox has no group DMs
    uid = ids[0]
    if uid not in s._users:
        raise _ApiError("user_not_found")
    return {"channel": {"id": s._dm_target_locked(uid)}}


def _conversations_info(s: SlackStandIn, args: dict) -> dict:
    """Slack's conversation object (the fields the relay and operators read)."""
    cid = _require(args, "channel", "channel_not_found")
    ch = s._channels.get(cid)
    if ch is None:
        raise _ApiError("channel_not_found")
    im = ch["im_user"] is not None
    private = bool(ch.get("private"))
    needed = "im:read" if im else "groups:read" if private else "channels:read"
    if needed not in s.scopes:
        raise _ApiError("missing_scope", extra={"needed": needed, "provided": ",".join(s.scopes)})
    if im:
        return {"channel": {"id": cid, "is_im": True, "user": ch["im_user"], "is_archived": False,
                            "is_org_shared": False, "created": 1700000000}}
    return {"channel": {"id": cid, "name": ch.get("name") or cid.lower(), "is_channel": not private,
                        "is_group": private, "is_im": False, "is_mpim": False, "is_private": private,
                        "is_archived": False, "is_general": False, "is_shared": False,
                        "is_org_shared": False, "is_member": bool(ch.get("bot_member", True)),
                        "created": 1700000000, "creator": "U0ADMIN"}}


HISTORY_DEFAULT_LIMIT = 100


HISTORY_MAX_LIMIT = 999


def _conversations_history(s: SlackStandIn, args: dict) -> dict:
    """Messages of a conversation, newest first, between `oldest` and `latest` (exclusive unless
    `inclusive`), `limit` per page with a cursor. As in Slack, replies in a thread are not
    listed here (only their parent; conversations.replies lists a thread). Message `metadata`
    is returned only with `include_all_metadata` [U: Slack documents the flag, not what is
    shown without it]."""
    channel = _require(args, "channel", "channel_not_found")
    if channel not in s._channels:
        raise _ApiError("channel_not_found")
    listed = [m for m in reversed(list(s._messages.get(channel, {}).values()))
              if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
    return {**_history_page(args, listed), "pin_count": 0, "channel_actions_ts": None,
            "channel_actions_count": 0}


def _conversations_replies(s: SlackStandIn, args: dict) -> dict:
    """A thread: its parent message `ts` first, then the replies, oldest first, filtered and
    paged like conversations.history (`oldest`, `latest`, `inclusive`, `limit`, `cursor`,
    `include_all_metadata`). A `ts` that is no message: thread_not_found."""
    channel = _require(args, "channel", "channel_not_found")
    if channel not in s._channels:
        raise _ApiError("channel_not_found")
    ts = str(_require(args, "ts", "thread_not_found"))
    msgs = s._messages.get(channel, {})
    if ts not in msgs:
        raise _ApiError("thread_not_found")
    thread = [m for m in msgs.values() if m["ts"] == ts or m.get("thread_ts") == ts]
    return _history_page(args, thread)


def _history_page(args: dict, messages: list[dict]) -> dict:
    def stamp(name: str, default: float) -> float:
        v = args.get(name)
        if v is None or v == "":
            return default
        try:
            return float(v)
        except (TypeError, ValueError):
            raise _ApiError(f"invalid_ts_{name}") from None

    oldest, latest = stamp("oldest", 0.0), stamp("latest", float("inf"))
    inclusive = _truthy(args.get("inclusive"))
    try:
        limit = int(args.get("limit") or HISTORY_DEFAULT_LIMIT)
    except (TypeError, ValueError):
        raise _ApiError("invalid_limit") from None
    limit = max(1, min(HISTORY_MAX_LIMIT, limit))
    cursor = str(args.get("cursor") or "")
    try:
        start = int(cursor.removeprefix("next_ts:")) if cursor else 0
    except ValueError:
        raise _ApiError("invalid_cursor") from None
    with_meta = _truthy(args.get("include_all_metadata"))

    def within(ts: float) -> bool:
        if inclusive:
            return oldest <= ts <= latest
        return oldest < ts < latest

    found = [m for m in messages if within(float(m["ts"]))]
    page = found[start:start + limit]
    out = []
    for m in page:
        item = {k: copy.deepcopy(v) for k, v in m.items() if k not in ("channel", "metadata", "edited")}
        if m.get("edited"):
            item["edited"] = copy.deepcopy(m["edited"])
        if with_meta and m.get("metadata"):
            item["metadata"] = copy.deepcopy(m["metadata"])
        out.append(item)
    more = start + limit < len(found)
    return {"messages": out, "has_more": more,
            "response_metadata": {"next_cursor": f"next_ts:{start + limit}" if more else ""}}
