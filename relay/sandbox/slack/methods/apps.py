"""auth.test and apps.connections.open (called under the stand-in's lock)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..args import _ApiError
from ..limits import BOT_ID, BOT_USER_ID

if TYPE_CHECKING:
    from ..standin import SlackStandIn


def _auth_test(s: SlackStandIn, args: dict) -> dict:
    return {
        "url": "https://sandbox.slack.com/",
        "team": "Sandbox",
        "user": "ssrelay",
        "team_id": s.team_id,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


def _apps_connections_open(s: SlackStandIn, args: dict) -> dict:
    if s._socket_mode is None:
        # [U] real Slack has no "Socket Mode off" string for this method
        raise _ApiError("internal_error", messages=["sandbox: no Socket Mode stand-in attached"])
    return {"url": s._socket_mode.url}
