"""Reading Slack interaction payloads (already shape-checked by `guard`): the team, where a
click happened, and the reason typed into the reason modal. Pure functions."""

from __future__ import annotations

from . import guard, replies


def team_of(body: dict) -> str:
    """The team id in an interaction payload, or ''."""
    team = body.get("team")
    if isinstance(team, dict) and isinstance(team.get("id"), str):
        return team["id"][:64]
    user = body.get("user")
    if isinstance(user, dict) and isinstance(user.get("team_id"), str):
        return user["team_id"][:64]
    return guard.text(body.get("team_id"))[:64]


def _obj(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def click_source(body: dict, api_url: str) -> dict:
    """Where the click happened, to update it in place afterwards (only an allowed
    response_url is kept)."""
    container = _obj(body.get("container"))
    if container.get("type") == "view":
        return {"kind": "home"}
    return guard.clean_source({
        "kind": "ephemeral" if container.get("is_ephemeral") is True else "message",
        "response_url": body.get("response_url"),
        "channel": guard.text(container.get("channel_id")) or guard.text(_obj(body.get("channel")).get("id")),
        "ts": guard.text(container.get("message_ts")) or guard.text(_obj(body.get("message")).get("ts")),
    }, api_url)


def reason(view: dict) -> str:
    """The text typed into the reason modal, or ''."""
    try:
        value = view["state"]["values"][replies.REASON_BLOCK][replies.REASON_INPUT].get("value")
    except (KeyError, TypeError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""
