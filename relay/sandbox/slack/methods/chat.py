"""chat.* methods (called under the stand-in's lock)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from ..args import _ApiError, _json_arg, _require
from ..blocks import _validate_blocks
from ..limits import APP_ID, BOT_ID, BOT_USER_ID, MESSAGE_MAX_BLOCKS, TEXT_TRUNCATE_AT

if TYPE_CHECKING:
    from ..standin import SlackStandIn


def _message_content(args: dict, *, required: bool = True) -> tuple[str, list, list[str]]:
    blocks = _json_arg(args, "blocks", "invalid_blocks_format")
    if blocks is not None:
        _validate_blocks(blocks, MESSAGE_MAX_BLOCKS, "blocks")
    text = args.get("text")
    if required and (text is None or text == "") and not blocks:
        raise _ApiError("no_text")
    text = "" if text is None else str(text)
    warnings = []
    if len(text) > TEXT_TRUNCATE_AT:
        text = text[:TEXT_TRUNCATE_AT]
        warnings.append("message_truncated")
    return text, blocks or [], warnings


def _with_warnings(body: dict, warnings: list[str]) -> dict:
    if warnings:
        body["warning"] = ",".join(warnings)
        body["response_metadata"] = {"warnings": warnings}
    return body


def _chat_post_message(s: SlackStandIn, args: dict) -> dict:
    channel = _require(args, "channel", "channel_not_found")
    if channel in s._users:
        cid = s._dm_target_locked(channel)
    elif channel in s._channels:
        cid = channel
        if not s._channels[cid].get("bot_member", True):
            raise _ApiError("not_in_channel")
    else:
        raise _ApiError("channel_not_found")
    text, blocks, warnings = _message_content(args)
    ts = s._new_ts()
    msg: dict[str, Any] = {
        "type": "message",
        "subtype": "bot_message",
        "ts": ts,
        "text": text,
        "blocks": blocks,
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "channel": cid,
        "edited": None,
    }
    if args.get("thread_ts"):
        msg["thread_ts"] = str(args["thread_ts"])
        parent = s._messages.get(cid, {}).get(msg["thread_ts"])
        if parent is not None:   # as Slack shows a thread's parent: its ts, count, latest reply
            parent["thread_ts"] = parent["ts"]
            parent["reply_count"] = parent.get("reply_count", 0) + 1
            parent["latest_reply"] = ts
    if args.get("metadata") is not None:
        msg["metadata"] = _message_metadata(args)
    s._messages.setdefault(cid, {})[ts] = msg
    return _with_warnings({"channel": cid, "ts": ts, "message": copy.deepcopy(msg)}, warnings)


def _message_metadata(args: dict) -> dict:
    """chat.postMessage `metadata`: a JSON object with `event_type` (string) and `event_payload`
    (object); stored with the message and returned by conversations.history with
    include_all_metadata."""
    meta = _json_arg(args, "metadata", "invalid_metadata_format")
    if not isinstance(meta, dict) or not isinstance(meta.get("event_type"), str) or not meta["event_type"]:
        raise _ApiError("invalid_metadata_format")
    payload = meta.get("event_payload", {})
    if not isinstance(payload, dict):
        raise _ApiError("invalid_metadata_format")
    return {"event_type": meta["event_type"], "event_payload": copy.deepcopy(payload)}


def _chat_post_ephemeral(s: SlackStandIn, args: dict) -> dict:
    channel = _require(args, "channel", "channel_not_found")
    uid = _require(args, "user", "user_not_in_channel")
    cid = s._resolve_channel_locked(channel)
    if cid is None:
        raise _ApiError("channel_not_found")
    if uid not in s._channels[cid]["members"]:
        raise _ApiError("user_not_in_channel")
    text, blocks, _ = _message_content(args)
    ts = s._new_ts()
    s._ephemerals.setdefault(uid, {})[ts] = {
        "type": "message",
        "ts": ts,
        "text": text,
        "blocks": blocks,
        "user": uid,
        "channel": cid,
    }
    return {"message_ts": ts}


def _find_message(s: SlackStandIn, args: dict) -> tuple[str, dict]:
    channel = _require(args, "channel", "channel_not_found")
    ts = _require(args, "ts", "message_not_found")
    if channel not in s._channels:  # strict, like Slack: the D id, not the user id
        raise _ApiError("channel_not_found")
    msg = s._messages.get(channel, {}).get(str(ts))
    if msg is None:  # includes ephemeral message_ts: "cannot be used with chat.update"
        raise _ApiError("message_not_found")
    return channel, msg


def _chat_update(s: SlackStandIn, args: dict) -> dict:
    channel, msg = _find_message(s, args)
    if msg.get("user") != BOT_USER_ID:
        raise _ApiError("cant_update_message")
    text, blocks, warnings = _message_content(args, required=False)
    if "text" in args or "blocks" in args:
        msg["text"] = text
        msg["blocks"] = blocks  # omitting blocks while giving text drops them [U]
    msg["edited"] = {"user": BOT_USER_ID, "ts": s._new_ts()}
    return _with_warnings(
        {"channel": channel, "ts": msg["ts"], "text": msg["text"], "message": copy.deepcopy(msg)}, warnings
    )


def _chat_delete(s: SlackStandIn, args: dict) -> dict:
    channel, msg = _find_message(s, args)
    if msg.get("user") != BOT_USER_ID:
        raise _ApiError("cant_delete_message")
    del s._messages[channel][msg["ts"]]
    return {"channel": channel, "ts": msg["ts"]}
