"""The Home tab: a pure builder from plain data to a `home` view.

Sections, top to bottom: an optional notice (the result of the last click made here),
My Pending Requests (Cancel request), Approval Requests (Approve / Deny), Recent Secrets (filled
by the search work through `recent_secrets_blocks`), and Sign in / Log off at the bottom.
Slack allows 100 blocks in a Home tab: long lists are cut and end with "and N more in Secret
Server".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable

from ..model import AccessRequest
from .search import recent_rows   # the Recent Secrets rows, shared with the search modal
from .blocks import (APPROVE, open_in_ss, BUTTON_TEXT_LIMIT, CONTEXT_TEXT_LIMIT, DENY, HEADER_LIMIT,
                     SECTION_TEXT_LIMIT, escape, link, plain, truncate, when, window)

VIEW_BLOCK_LIMIT = 100
CANCEL_REQUEST = "cancel_request"
SIGNIN = "signin"
LOGOFF = "logoff"
SIGNIN_PLACEHOLDER = "https://signin.invalid/"   # stands in for the one-time link when hashing


@dataclass(frozen=True)
class HomeItem:
    request: AccessRequest
    context: dict = field(default_factory=dict)   # folder_name, requester_name


@dataclass(frozen=True)
class HomeData:
    signed_in: bool
    ss_username: str = ""
    my_pending: tuple[HomeItem, ...] = ()
    to_review: tuple[HomeItem, ...] = ()
    recent: tuple | None = None          # for recent_secrets_blocks (the search work fills it)
    notice: str = ""                     # mrkdwn, already escaped
    recent_note: str = ""                # why the recent list is missing (plain text)


def recent_secrets_blocks(recent: tuple | None, signed_in: bool, *,
                          secret_url: Callable[[int], str] | None = None, note: str = "") -> list[dict]:
    """The blocks under the "Recent Secrets" header: each secret's name a link to its page,
    Launch where it has launchers. Deterministic (the view is hashed)."""
    if not signed_in:
        text = "Sign in to see your recent secrets."
    elif note:
        text = escape(note)
    elif not recent:
        text = "Your recently used secrets will appear here."
    else:
        return recent_rows(recent, secret_url)
    return [{"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, CONTEXT_TEXT_LIMIT)}]}]


def _header(text: str) -> dict:
    return {"type": "header", "text": plain(text, HEADER_LIMIT)}


def _empty(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _open_in_ss(item: HomeItem, request_url: Callable[[int, int], str] | None) -> str:
    r = item.request
    return f" · {link(request_url(r.id, r.secret_id), 'Open in Secret Server')}" if request_url else ""


def _secret(item: HomeItem, secret_url: Callable[[int], str] | None) -> str:
    r = item.request
    return link(secret_url(r.secret_id), r.secret_name) if secret_url else f"*{escape(r.secret_name)}*"


def _mine(item: HomeItem, secret_url, default_hours: float, request_url=None) -> list[dict]:
    r = item.request
    lines = [f"{_secret(item, secret_url)}  ·  {escape(item.context.get('folder_name') or '')}".rstrip(" ·"),
             (f"Requested {when(r.requested_at)} · window: {window(r, default_hours)}"
              f"{_open_in_ss(item, request_url)}"),
             f"_{escape(r.review_status or 'Waiting for review')}_"]
    if r.comment:
        lines.append(f"> {escape(r.comment)[:300]}")
    return [{"type": "section", "block_id": f"mine:{r.id}",
             "text": {"type": "mrkdwn", "text": truncate("\n".join(lines), SECTION_TEXT_LIMIT)},
             "accessory": {"type": "button", "action_id": CANCEL_REQUEST, "value": str(r.id),
                           "text": plain("Cancel request", BUTTON_TEXT_LIMIT),
                           "confirm": {"title": plain("Cancel this request?", 100),
                                       "text": plain(f"Cancel your request for {r.secret_name}?", 300),
                                       "confirm": plain("Cancel request", 30),
                                       "deny": plain("Keep it", 30)}}}]


def _review(item: HomeItem, secret_url, default_hours: float, request_url=None) -> list[dict]:
    r = item.request
    requester = escape(item.context.get("requester_name") or r.requester_username)
    lines = [f"{_secret(item, secret_url)} requested by {requester}",
             f"Folder: {escape(item.context.get('folder_name') or '—')} · window: {window(r, default_hours)}"]
    if r.ticket:
        lines.append(f"Ticket: {escape(r.ticket)}")
    if r.comment:
        lines.append(f"> {escape(r.comment)[:300]}")
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate("\n".join(lines), SECTION_TEXT_LIMIT)}},
        {"type": "actions", "block_id": f"home:{r.id}", "elements": [
            {"type": "button", "action_id": APPROVE, "value": str(r.id), "style": "primary",
             "text": plain("Approve", BUTTON_TEXT_LIMIT)},
            {"type": "button", "action_id": DENY, "value": str(r.id), "style": "danger",
             "text": plain("Deny", BUTTON_TEXT_LIMIT)},
            *([open_in_ss(request_url(r.id, r.secret_id))] if request_url else []),
        ]},
    ]


def _listing(title: str, items, render, budget: int, empty: str, more_url: str) -> list[dict]:
    """Header + as many items as fit in `budget` blocks (+1 line saying how many more)."""
    out = [_header(title)]
    if not items:
        return out + [_empty(empty)]
    shown = 0
    for i, item in enumerate(items):
        blocks = render(item)
        left = len(items) - i - 1
        reserve = 1 if left else 0
        if len(out) + len(blocks) + reserve > budget:
            break
        out += blocks
        shown += 1
    if shown < len(items):
        more = len(items) - shown
        text = f"…and {more} more in Secret Server"
        out.append(_empty(link(more_url, text) if more_url else escape(text)))
    return out


def home_view(data: HomeData, *, signin_url: str, secret_url: Callable[[int], str] | None = None,
              default_hours: float = 8, more_url: str = "",
              request_url: Callable[[int, int], str] | None = None) -> dict:
    """The Home tab view for one person."""
    top: list[dict] = []
    if data.notice:
        top = [{"type": "section", "text": {"type": "mrkdwn", "text": truncate(data.notice, SECTION_TEXT_LIMIT)}},
               {"type": "divider"}]
    recent = [{"type": "divider"}, _header("Recent Secrets"),
              *recent_secrets_blocks(data.recent, data.signed_in, secret_url=secret_url, note=data.recent_note)]
    if data.signed_in:
        who = escape(data.ss_username) or "Secret Server"
        bottom = [{"type": "divider"}, {
            "type": "section", "block_id": "session",
            "text": {"type": "mrkdwn", "text": f"Signed in to Secret Server as *{who}*."},
            "accessory": {"type": "button", "action_id": LOGOFF, "value": "logoff",
                          "text": plain("Log off", BUTTON_TEXT_LIMIT)}}]
    else:
        bottom = [{"type": "divider"}, {
            "type": "section", "block_id": "session",
            "text": {"type": "mrkdwn", "text": "Sign in to Secret Server to approve, deny and cancel "
                                               "requests from Slack. The link is valid for 10 minutes."},
            "accessory": {"type": "button", "action_id": SIGNIN, "url": signin_url, "style": "primary",
                          "text": plain("Sign in to Secret Server", BUTTON_TEXT_LIMIT)}}]
    fixed = len(top) + len(recent) + len(bottom) + 1   # +1: the divider between the two lists
    room = VIEW_BLOCK_LIMIT - fixed
    # My Pending Requests first, at most half the room when both lists are long.
    mine_min = 2 if not data.my_pending else min(room // 2, 1 + len(data.my_pending) + 1)
    review_need = 1 + 2 * len(data.to_review) + (1 if data.to_review else 1)
    mine_budget = max(mine_min, room - review_need)
    mine = _listing("My Pending Requests", data.my_pending, lambda i: _mine(i, secret_url, default_hours, request_url),
                    mine_budget, "You have no pending requests.", more_url)
    review = _listing("Approval Requests", data.to_review, lambda i: _review(i, secret_url, default_hours, request_url),
                      room - len(mine), "Nothing is waiting for your review.", more_url)
    blocks = top + mine + [{"type": "divider"}] + review + recent + bottom
    return {"type": "home", "callback_id": "ssrelay_home", "blocks": blocks}


def view_hash(view: dict) -> str:
    return hashlib.sha256(json.dumps(view, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
