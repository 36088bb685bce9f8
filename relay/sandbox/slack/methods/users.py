"""users.* methods (called under the stand-in's lock)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from ..args import _ApiError, _require

if TYPE_CHECKING:
    from ..standin import SlackStandIn


def _users_info(s: SlackStandIn, args: dict) -> dict:
    uid = _require(args, "user", "user_not_found")
    user = s._users.get(uid)
    if user is None:
        raise _ApiError("user_not_found")
    return {"user": copy.deepcopy(user)}


def _users_lookup_by_email(s: SlackStandIn, args: dict) -> dict:
    email = str(_require(args, "email", "invalid_email")).strip().lower()
    for user in s._users.values():
        if (user["profile"].get("email") or "").lower() == email:
            return {"user": copy.deepcopy(user)}
    raise _ApiError("users_not_found")
