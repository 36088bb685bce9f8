"""Block Kit builders: pure functions from plain data to (fallback text, blocks).

User-controlled text (secret names, comments, people's names, tickets) is escaped for mrkdwn
and cut to Slack's limits here, so nothing a requester types can ping a channel, forge a link
or get a message rejected. Limits are Slack's (docs.slack.dev/reference/block-kit/blocks).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..model import AccessRequest

SECTION_TEXT_LIMIT = 3000      # section.text
FIELD_TEXT_LIMIT = 2000        # each of section.fields
HEADER_LIMIT = 150             # header plain_text
BUTTON_TEXT_LIMIT = 75
CONTEXT_TEXT_LIMIT = 2000
FALLBACK_TEXT_LIMIT = 4000     # recommended `text` size
COMMENT_LIMIT = 1500           # our own cap: a comment is context, not an essay
ELLIPSIS = "…"

APPROVE = "approve"
DENY = "deny"
OPEN_IN_SS = "open_in_ss"          # URL button: act on the request in Secret Server itself (ack only)


def escape(text: Any) -> str:
    """Escape the three characters Slack's mrkdwn treats as control: & < >."""
    return str(text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """Cut to `limit` characters, ending with an ellipsis when cut (never mid-escape)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:] and len(cut) - amp < 6:
        cut = cut[:amp]
    return cut + ELLIPSIS


def safe(text: Any, limit: int) -> str:
    return truncate(escape(text), limit)


def plain(text: Any, limit: int) -> dict:
    return {"type": "plain_text", "text": truncate(str(text or "") or " ", limit), "emoji": True}


def when(d: datetime | None) -> str:
    """A date Slack shows in each reader's own time zone, with a UTC fallback."""
    if d is None:
        return "not set"
    fallback = d.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(d.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def link(url: str, label: str) -> str:
    """A mrkdwn link; the label is escaped, the URL has its control characters removed. Only
    http(s) URLs become links (a `secret_url` template is free text): anything else, such as
    `javascript:` or `file:`, shows the label alone."""
    if not url.lower().startswith(("https://", "http://")):
        return escape(label)
    clean = url.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"<{clean}|{escape(label)}>"


def window(req: AccessRequest, default_hours: float) -> str:
    if req.start is None and req.expiration is None:
        return f"{default_hours:g} hours from approval (default)"
    start = when(req.start) if req.start else "on approval"
    return f"{start} → {when(req.expiration)}"


def _fields(req: AccessRequest, ctx: dict, secret_url: str, default_hours: float) -> list[dict]:
    fields = [
        ("Secret", link(secret_url, req.secret_name) if secret_url else escape(req.secret_name)),
        ("Folder", escape(ctx.get("folder_name") or (f"#{req.folder_id}" if req.folder_id else "—"))),
        ("Requester", escape(ctx.get("requester_name") or req.requester_username)),
        ("Requested window", window(req, default_hours)),
    ]
    if req.ticket:
        fields.append(("Ticket", escape(req.ticket)))
    return [{"type": "mrkdwn", "text": truncate(f"*{k}*\n{v}", FIELD_TEXT_LIMIT)} for k, v in fields]


def _comment(label: str, text: str) -> list[dict]:
    if not text:
        return []
    body = truncate(escape(text), COMMENT_LIMIT)
    return [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{label}*\n{body}"}}]


def open_in_ss(url: str) -> dict:
    """A URL button to act in Secret Server itself (for anyone who cannot sign in from Slack)."""
    return {"type": "button", "action_id": OPEN_IN_SS, "url": url,
            "text": plain("Open in Secret Server", BUTTON_TEXT_LIMIT)}


def approval_card(req: AccessRequest, ctx: dict, *, secret_url: str, default_hours: float,
                  request_url: str = "") -> tuple[str, list]:
    """What a reviewer sees: the request, and Approve / Deny (and Open in Secret Server)."""
    requester = ctx.get("requester_name") or req.requester_username
    text = truncate(f"{requester} requests access to {req.secret_name}", FALLBACK_TEXT_LIMIT)
    blocks = [
        {"type": "header", "text": plain(f"Access request: {req.secret_name}", HEADER_LIMIT)},
        {"type": "section", "fields": _fields(req, ctx, secret_url, default_hours)},
        *_comment("Comment", req.comment),
        {"type": "actions", "block_id": f"request:{req.id}", "elements": [
            {"type": "button", "action_id": APPROVE, "value": str(req.id), "style": "primary",
             "text": plain("Approve", BUTTON_TEXT_LIMIT)},
            {"type": "button", "action_id": DENY, "value": str(req.id), "style": "danger",
             "text": plain("Deny", BUTTON_TEXT_LIMIT)},
            *([open_in_ss(request_url)] if request_url else []),
        ]},
    ]
    return escape(text), blocks


def state_line(req: AccessRequest, requester_name: str = "") -> str:
    """One line saying where the request stands ("Approved by Alice at 10:42")."""
    by = escape(req.decided_by) or "someone"
    at = f" at {when(req.decided_at)}" if req.decided_at else ""
    return {
        "Approved": f":white_check_mark: Approved by {by}{at}",
        "Denied": f":x: Denied by {by}{at}",
        "Canceled": f":no_entry_sign: Canceled by {escape(requester_name or req.requester_username)}{at}",
        "Expired": ":hourglass: Approved access has expired",
        "Pending": ":hourglass_flowing_sand: Waiting for review",
    }.get(req.status, escape(req.status))


# A reviewer's card once the workflow has moved past their step (Secret Server's API names no
# step, nor who approved it).
STEP_PASSED_LINE = ":arrow_forward: No longer waiting for you: the request moved on to other reviewers"


def closed_card(req: AccessRequest, ctx: dict, *, secret_url: str, default_hours: float,
                line: str | None = None) -> tuple[str, list]:
    """A reviewer's card once the request is decided or canceled (or `line` says why it is
    closed): the facts, no buttons."""
    line = line or state_line(req, ctx.get("requester_name", ""))
    blocks = [
        {"type": "header", "text": plain(f"Access request: {req.secret_name}", HEADER_LIMIT)},
        {"type": "section", "fields": _fields(req, ctx, secret_url, default_hours)},
        *_comment("Comment", req.comment),
        *_comment("Reviewer's comment", req.response_comment),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(line, CONTEXT_TEXT_LIMIT)}]},
    ]
    return truncate(f"{escape(req.secret_name)}: {line}", FALLBACK_TEXT_LIMIT), blocks


def canceled_notice(req: AccessRequest, ctx: dict, *, secret_url: str) -> tuple[str, list]:
    requester = escape(ctx.get("requester_name") or req.requester_username)
    secret = link(secret_url, req.secret_name) if secret_url else escape(req.secret_name)
    text = f":no_entry_sign: {requester} canceled the request for {secret}"
    return truncate(text, FALLBACK_TEXT_LIMIT), [
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_TEXT_LIMIT)}}]


def outcome_message(req: AccessRequest, ctx: dict, *, secret_url: str, default_hours: float,
                    launch: bool = False) -> tuple[str, list]:
    """What the requester hears: approved or denied, by whom, why, and the window; with
    `launch`, an approval carries the Launch button (its value is the secret id only,
    the click runs as the requester and re-reads the launchers)."""
    approved = req.status in ("Approved", "Expired")     # an Expired request was approved first
    by = escape(req.decided_by) or "a reviewer"
    secret = link(secret_url, req.secret_name) if secret_url else escape(req.secret_name)
    head = (f":white_check_mark: Your request for {secret} was approved by {by}" if approved
            else f":x: Your request for {secret} was denied by {by}")
    blocks: list[dict] = [{"type": "section", "text": {"type": "mrkdwn", "text": truncate(head, SECTION_TEXT_LIMIT)}}]
    blocks += _comment("Comment", req.response_comment)
    if approved:
        details = [
            ("Secret", secret),
            ("Folder", escape(ctx.get("folder_name") or (f"#{req.folder_id}" if req.folder_id else "—"))),
            ("Access window", f"{when(req.start) if req.start else 'now'} → {when(req.expiration)}"),
        ]
        if ctx.get("template_name"):
            details.append(("Template", escape(ctx["template_name"])))
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": truncate(f"*{k}*\n{v}", FIELD_TEXT_LIMIT)} for k, v in details]})
        if launch:   # the requester may launch it now (checked as them when the message was sent)
            blocks.append({"type": "actions", "block_id": f"launch:{req.id}", "elements": [
                {"type": "button", "action_id": "launch_secret", "value": str(int(req.secret_id)),
                 "style": "primary", "text": plain("Launch", BUTTON_TEXT_LIMIT)}]})
    fallback = f"Your request for {req.secret_name} was {'approved' if approved else 'denied'} by {req.decided_by or 'a reviewer'}"
    if req.response_comment:
        fallback += f": {req.response_comment}"
    return truncate(escape(fallback), FALLBACK_TEXT_LIMIT), blocks


def expired_notice(req: AccessRequest, ctx: dict, *, secret_url: str) -> tuple[str, list]:
    secret = link(secret_url, req.secret_name) if secret_url else escape(req.secret_name)
    text = f":hourglass: Your access to {secret} has ended"
    return truncate(f"Your access to {escape(req.secret_name)} has ended", FALLBACK_TEXT_LIMIT), [
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_TEXT_LIMIT)}}]
