"""The Web API methods the stand-in serves, by name, and the scope each call needs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..limits import METHOD_SCOPES
from .apps import _apps_connections_open, _auth_test
from .chat import _chat_delete, _chat_post_ephemeral, _chat_post_message, _chat_update
from .conversations import _conversations_history, _conversations_info, _conversations_open, _conversations_replies
from .users import _users_info, _users_lookup_by_email
from .views import _views_open, _views_publish, _views_push, _views_update

if TYPE_CHECKING:
    from ..standin import SlackStandIn


def _scope_needed(s: SlackStandIn, method: str, args: dict) -> str | None:
    if method in ("conversations.history", "conversations.replies"):
        ch = s._channels.get(str(args.get("channel") or ""))
        if ch is not None and not ch["im_user"]:
            return "groups:history" if ch.get("private") else "channels:history"
    return METHOD_SCOPES.get(method)


_METHODS: dict[str, Callable[[SlackStandIn, dict], dict]] = {
    "auth.test": _auth_test,
    "users.info": _users_info,
    "users.lookupByEmail": _users_lookup_by_email,
    "conversations.open": _conversations_open,
    "conversations.history": _conversations_history,
    "conversations.replies": _conversations_replies,
    "conversations.info": _conversations_info,
    "chat.postMessage": _chat_post_message,
    "chat.postEphemeral": _chat_post_ephemeral,
    "chat.update": _chat_update,
    "chat.delete": _chat_delete,
    "views.publish": _views_publish,
    "views.open": _views_open,
    "views.push": _views_push,
    "views.update": _views_update,
    "apps.connections.open": _apps_connections_open,
}
