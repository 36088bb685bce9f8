"""Slack checks: the bot token (`auth.test`), the scopes it really has, the bot's membership
of each routed channel, and the Socket Mode connection (socket mode only)."""

from __future__ import annotations

import json
from functools import partial

from ..config import Config
from ..errors import SlackPermanentError, SlackUnavailable
from ..manifest import BOT_SCOPES, CHANNEL_SCOPES
from .report import (FIX_BOT_TOKEN, FIX_CHANNEL, FIX_SCOPES, FIX_SLACK_NETWORK, FIX_SOCKET, FIX_SOCKET_NETWORK,
                     Check, _guard, skipped)


def slack_checks(cfg: Config) -> list[Check]:
    from ..slack.api import make_client
    client = make_client(cfg.slack.api_url, cfg.slack.bot_token.value)
    granted: list[set[str]] = []

    def auth_test() -> str:
        data, scopes = _auth_test(client)
        granted.append(scopes)
        return f"bot {data.get('user', '?')} in workspace {data.get('team', '?')}"
    bot = _guard("slack bot token", auth_test, FIX_BOT_TOKEN, network_fix=FIX_SLACK_NETWORK)
    out = [bot]
    if bot.ok:
        out.append(scopes_check(granted[0], channels=bool(cfg.channels)))
        for route in cfg.channels:   # [[channels]]: the bot must be in each routed channel
            out.append(_guard(f"slack channel {route.channel}", partial(_channel_member, client, route),
                              FIX_CHANNEL, network_fix=FIX_SLACK_NETWORK))
    else:
        out.append(skipped("slack scopes", "Slack unreachable" if bot.fix == FIX_SLACK_NETWORK
                           else "the bot token was refused"))
    if cfg.slack.mode == "socket":
        out.append(_guard("slack socket mode", lambda: _socket_mode(cfg), FIX_SOCKET,
                          network_fix=FIX_SOCKET_NETWORK))
    return out


def _auth_test(client) -> tuple[dict, set[str]]:
    """auth.test with the bot token: (response data, scopes from the x-oauth-scopes header)."""
    from slack_sdk.errors import SlackApiError, SlackClientError
    try:
        resp = client.api_call("auth.test")
    except SlackApiError as exc:
        # Slack's own refusal (`invalid_auth`...) is about the token; an HTTP error without
        # Slack's JSON is the network's (a proxy, an outage)
        error = exc.response.get("error", "") if isinstance(exc.response.data, dict) else ""
        if error:
            raise SlackPermanentError("auth.test", error) from None
        raise SlackUnavailable("auth.test", f"answered HTTP {exc.response.status_code} without Slack's JSON") \
            from None
    except (SlackClientError, OSError) as exc:
        raise SlackUnavailable("auth.test", f"not reachable ({type(exc).__name__})") from None
    header = ""
    for k, v in (resp.headers or {}).items():
        if k.lower() == "x-oauth-scopes":
            header = v[0] if isinstance(v, list) else v
    scopes = {s.strip() for s in str(header).split(",") if s.strip()}
    return dict(resp.data) if isinstance(resp.data, dict) else {}, scopes


def _channel_member(client, route) -> str:
    """conversations.info: the channel exists and the bot is a member of it."""
    from slack_sdk.errors import SlackApiError, SlackClientError
    try:
        resp = client.api_call("conversations.info", params={"channel": route.channel})
    except SlackApiError as exc:
        error = exc.response.get("error", "") if isinstance(exc.response.data, dict) else ""
        if error == "missing_scope":
            raise SlackPermanentError("conversations.info", "the bot token lacks channels:read (groups:read for "
                                   "a private channel): add it to the app's bot scopes and reinstall") from None
        if error == "channel_not_found":
            raise SlackPermanentError("conversations.info", "no such channel, or a private channel the bot "
                                   "is not in") from None
        raise SlackPermanentError("conversations.info", error or f"HTTP {exc.response.status_code}") from None
    except (SlackClientError, OSError) as exc:
        raise SlackUnavailable("conversations.info", f"not reachable ({type(exc).__name__})") from None
    channel = (resp.data or {}).get("channel") if isinstance(resp.data, dict) else None
    if not isinstance(channel, dict):
        raise SlackPermanentError("conversations.info", "answered without a channel")
    name = f"#{channel.get('name')}" if channel.get("name") else route.channel
    if channel.get("is_archived"):
        raise SlackPermanentError("conversations.info", f"{name} is archived")
    if not channel.get("is_member"):
        raise SlackPermanentError("conversations.info", f"the bot is not a member of {name}")
    return f"the bot is in {name} (requests under {route.folder})"


def scopes_check(granted: set[str], *, channels: bool = False) -> Check:
    needed = set(BOT_SCOPES) | (set(CHANNEL_SCOPES) if channels else set())
    missing = sorted(needed - granted)
    extra = sorted(granted - needed)
    if missing:
        return Check("slack scopes", False, f"the bot token lacks {', '.join(missing)}", FIX_SCOPES)
    detail = f"has {', '.join(sorted(needed))}"
    if extra:
        detail += f" (and more than needed: {', '.join(extra)})"
    return Check("slack scopes", True, detail)


def _socket_mode(cfg: Config) -> str:
    """apps.connections.open with the app-level token, then open the WebSocket and wait for
    Slack's hello: exactly what `ssrelay run` does in socket mode."""
    import websocket
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError, SlackClientError
    try:
        url = WebClient(base_url=cfg.slack.api_url, timeout=10, retry_handlers=[]) \
            .apps_connections_open(app_token=cfg.slack.app_token.value)["url"]
    except SlackApiError as exc:
        error = exc.response.get("error", "") if isinstance(exc.response.data, dict) else ""
        raise SlackPermanentError("apps.connections.open", error or f"HTTP {exc.response.status_code}") from None
    except (SlackClientError, OSError) as exc:
        raise SlackUnavailable("apps.connections.open", f"not reachable ({type(exc).__name__})") from None
    try:
        ws = websocket.create_connection(url, timeout=10)
    except (OSError, websocket.WebSocketException) as exc:
        raise SlackUnavailable("apps.connections.open", "answered, but its WebSocket did not open "
                               f"({type(exc).__name__})") from None
    try:
        first = json.loads(ws.recv() or "{}")
    except (OSError, ValueError, websocket.WebSocketException) as exc:
        raise RuntimeError(f"the Socket Mode WebSocket opened but sent no hello ({type(exc).__name__})") from None
    finally:
        ws.close()
    if first.get("type") != "hello":
        raise RuntimeError(f"the Socket Mode WebSocket sent {first.get('type')!r} instead of hello")
    return "connected, Slack said hello"
