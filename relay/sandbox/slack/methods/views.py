"""views.* methods: Home tab and modals, trigger ids (called under the stand-in's lock)."""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

from ..args import _ApiError, _err, _json_arg, _require, _text_of
from ..blocks import _validate_blocks
from ..limits import (
    APP_ID,
    BOT_ID,
    CALLBACK_ID_MAX,
    PRIVATE_METADATA_MAX,
    PUSH_LIMIT,
    VIEW_MAX_BLOCKS,
    VIEW_MAX_BYTES,
    VIEW_TITLE_MAX,
)

if TYPE_CHECKING:
    from ..standin import SlackStandIn


_TRIGGER_RE = re.compile(r"^\d+\.\d+\.[0-9a-zA-Z]+$")


def _check_view(view: Any, *, kind: str) -> dict:
    if not isinstance(view, dict):
        raise _ApiError("invalid_arguments", messages=["[ERROR] missing required field: view"])
    if len(json.dumps(view)) > VIEW_MAX_BYTES:
        raise _ApiError("view_too_large")
    if view.get("type") != kind:
        raise _err("invalid_arguments", f"must be '{kind}'", "/view/type")
    _validate_blocks(view.get("blocks"), VIEW_MAX_BLOCKS, "view/blocks", error="invalid_arguments")
    pm = view.get("private_metadata")
    if isinstance(pm, str) and len(pm) > PRIVATE_METADATA_MAX:
        raise _err("invalid_arguments", f"must be less than {PRIVATE_METADATA_MAX + 1} characters",
                   "/view/private_metadata")
    cb = view.get("callback_id")
    if isinstance(cb, str) and len(cb) > CALLBACK_ID_MAX:
        raise _err("invalid_arguments", f"must be less than {CALLBACK_ID_MAX + 1} characters", "/view/callback_id")
    if kind == "modal":
        title = _text_of(view.get("title"))
        if title is None:
            raise _err("invalid_arguments", "missing required field: title", "/view/title")
        for key in ("title", "submit", "close"):
            t = _text_of(view.get(key))
            if t is not None and len(t) > VIEW_TITLE_MAX:
                raise _err("invalid_arguments", f"must be less than {VIEW_TITLE_MAX + 1} characters",
                           f"/view/{key}/text")
        if view.get("submit") is None and any(b.get("type") == "input" for b in view["blocks"]):
            raise _err("invalid_arguments", "must provide submit when input blocks are present", "/view/submit")
    return view


def _store_view(s: SlackStandIn, view: dict, *, user: str, view_id: str | None, root_id: str | None,
                previous_id: str | None) -> dict:
    external_id = view.get("external_id") or ""
    vid = view_id or f"V0SB{s._next():06d}"
    if external_id:
        owner = s._external_ids.get(external_id)
        if owner is not None and owner != vid:
            raise _ApiError("duplicate_external_id")
    old = s._views.get(vid)
    if old and old.get("external_id") and old["external_id"] != external_id:
        s._external_ids.pop(old["external_id"], None)
    if external_id:
        s._external_ids[external_id] = vid
    stored = {
        "id": vid,
        "team_id": s.team_id,
        "type": view["type"],
        "title": view.get("title"),
        "submit": view.get("submit"),
        "close": view.get("close"),
        "blocks": copy.deepcopy(view.get("blocks") or []),
        "private_metadata": view.get("private_metadata") or "",
        "callback_id": view.get("callback_id") or "",
        "external_id": external_id,
        "state": {"values": {}},
        "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
        "clear_on_close": bool(view.get("clear_on_close", False)),
        "notify_on_close": bool(view.get("notify_on_close", False)),
        "root_view_id": root_id or vid,
        "previous_view_id": previous_id,
        "app_id": APP_ID,
        "app_installed_team_id": s.team_id,
        "bot_id": BOT_ID,
    }
    s._views[vid] = stored
    s._view_owner[vid] = user
    return copy.deepcopy(stored)


def _views_publish(s: SlackStandIn, args: dict) -> dict:
    uid = _require(args, "user_id")
    if uid not in s._users:
        raise _ApiError("invalid_arguments", messages=["invalid `user_id`"])
    view = _check_view(_json_arg(args, "view", "invalid_arguments"), kind="home")
    current_id = s._home.get(uid)
    given_hash = args.get("hash")
    if given_hash:
        current_hash = s._views[current_id]["hash"] if current_id else None
        if given_hash != current_hash:
            raise _ApiError("hash_conflict")
    stored = _store_view(s, view, user=uid, view_id=current_id, root_id=None, previous_id=None)
    s._home[uid] = stored["id"]
    return {"view": stored}


def _use_trigger(s: SlackStandIn, args: dict) -> dict:
    tid = args.get("trigger_id") or args.get("interactivity_pointer")
    if not tid or not _TRIGGER_RE.match(str(tid)):
        raise _ApiError("invalid_trigger_id")
    trig = s._triggers.get(str(tid))
    if trig is None:
        raise _ApiError("invalid_trigger_id")
    if trig["used"]:
        raise _ApiError("exchanged_trigger_id")
    if s.clock() >= trig["expires"]:
        raise _ApiError("expired_trigger_id")
    trig["used"] = True
    return trig


def _views_open(s: SlackStandIn, args: dict) -> dict:
    view = _check_view(_json_arg(args, "view", "invalid_arguments"), kind="modal")
    trig = _use_trigger(s, args)
    stored = _store_view(s, view, user=trig["user"], view_id=None, root_id=None, previous_id=None)
    s._stacks[stored["id"]] = [stored["id"]]
    s._user_stacks.setdefault(trig["user"], []).append(stored["id"])
    return {"view": stored}


def _views_push(s: SlackStandIn, args: dict) -> dict:
    view = _check_view(_json_arg(args, "view", "invalid_arguments"), kind="modal")
    trig = _use_trigger(s, args)
    if trig["view_id"]:
        root = s._views.get(trig["view_id"], {}).get("root_view_id")
    else:
        stack = s._user_stacks.get(trig["user"])
        root = stack[-1] if stack else None
    stack = s._stacks.get(root) if root else None
    if not stack:
        raise _ApiError("not_found")
    if len(stack) >= PUSH_LIMIT:
        raise _ApiError("push_limit_reached")
    stored = _store_view(s, view, user=trig["user"], view_id=None, root_id=root, previous_id=stack[-1])
    stack.append(stored["id"])
    return {"view": stored}


def _views_update(s: SlackStandIn, args: dict) -> dict:
    vid = args.get("view_id")
    if not vid and args.get("external_id"):
        vid = s._external_ids.get(args["external_id"])
    if not vid and not args.get("external_id"):
        raise _ApiError("invalid_arguments", messages=["[ERROR] either view_id or external_id is required"])
    current = s._views.get(vid) if vid else None
    if current is None or vid is None:
        raise _ApiError("not_found")
    raw = _json_arg(args, "view", "invalid_arguments")
    view = _check_view(raw, kind=current["type"]) if isinstance(raw, dict) else _check_view(raw, kind="modal")
    if args.get("hash") and args["hash"] != current["hash"]:
        raise _ApiError("hash_conflict")
    if "external_id" not in view and current.get("external_id"):
        view = dict(view, external_id=current["external_id"])
    stored = _store_view(s, view, user=s._view_owner[vid], view_id=vid, root_id=current["root_view_id"],
                         previous_id=current["previous_view_id"])
    return {"view": stored}
