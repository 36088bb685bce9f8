"""What a person sees after a click: pure builders from an `Outcome` to Slack text and blocks."""

from __future__ import annotations

import json

from ..actions import APPROVE, CANCEL, DENY, DONE, FAILED, FORBIDDEN, STALE, Outcome
from ..model import AccessRequest
from .blocks import (BUTTON_TEXT_LIMIT, CONTEXT_TEXT_LIMIT, FALLBACK_TEXT_LIMIT, SECTION_TEXT_LIMIT,
                     closed_card, escape, plain, truncate, when)
from .home import SIGNIN

REASON_CALLBACK = "ssrelay_reason"
REASON_BLOCK = "reason"
REASON_INPUT = "reason"
REASON_LIMIT = 1000

_VERB: dict[str, str] = {APPROVE: "approve", DENY: "deny", CANCEL: "cancel"}


def explain(req: AccessRequest) -> str:
    """Where a request stands, for someone whose click came too late."""
    by = escape(req.decided_by) or "someone"
    at = f" at {when(req.decided_at)}" if req.decided_at else ""
    return {
        "Approved": f":white_check_mark: Already approved by {by}{at}.",
        "Denied": f":x: Already denied by {by}{at}.",
        "Canceled": f":no_entry_sign: Canceled by the requester ({escape(req.requester_username)}).",
        "Expired": ":hourglass: Already approved; that access has since expired.",
        "WaitingForRequest": ":hourglass: This request is not open for review.",
    }.get(req.status, f"This request is {escape(req.status)}.")


def outcome_line(o: Outcome) -> str:
    """One mrkdwn line saying what the click did."""
    req = o.request
    secret = escape(req.secret_name) if req else f"request #{o.request_id}"
    if o.kind == DONE:
        if o.action == APPROVE:
            return (f":white_check_mark: You approved access to {secret}." if req and req.status == "Approved"
                    else f":white_check_mark: You approved this step; the request for {secret} moves to its "
                         f"next reviewers.")
        if o.action == DENY:
            return f":x: You denied access to {secret}."
        return f":no_entry_sign: You canceled your request for {secret}."
    if o.kind == STALE and req is not None:
        return explain(req) + " Nothing was changed."
    if o.kind == FORBIDDEN:
        return f":lock: {escape(o.detail)} Nothing was changed."
    return f":warning: {escape(o.detail)}"


def updated_card(o: Outcome, *, secret_url: str, default_hours: float) -> tuple[str, list]:
    """The source card once the request is decided (DONE or STALE): its facts, no buttons, and
    a line saying what happened."""
    if o.request is None:
        raise ValueError(f"updated_card needs the request ({o.kind} outcome without one)")
    text, blocks = closed_card(o.request, o.context, secret_url=secret_url, default_hours=default_hours)
    blocks = blocks + [{"type": "context", "elements": [
        {"type": "mrkdwn", "text": truncate(outcome_line(o), CONTEXT_TEXT_LIMIT)}]}]
    return text, blocks


def notice(o: Outcome) -> tuple[str, list]:
    """A short message (ephemeral) about the click: refused, failed, or done elsewhere."""
    line = outcome_line(o)
    return truncate(line, FALLBACK_TEXT_LIMIT), [
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate(line, SECTION_TEXT_LIMIT)}}]


def signin_prompt(url: str, action: str | None) -> tuple[str, list]:
    """The "Sign in to Secret Server" link; the clicked action is completed after sign-in."""
    if action:
        text = (f"To {_VERB.get(action, action)} this request from Slack, sign in to Secret Server first. "
                "Your click is remembered and completed right after you sign in.")
    else:
        text = "Sign in to Secret Server to act on requests from Slack."
    text += " The link works once, for 10 minutes."
    return text, [
        {"type": "section", "text": {"type": "mrkdwn", "text": text},
         "accessory": {"type": "button", "action_id": SIGNIN, "url": url, "style": "primary",
                       "text": plain("Sign in to Secret Server", BUTTON_TEXT_LIMIT)}}]


def completed_after_signin(o: Outcome) -> tuple[str, list]:
    line = "You are signed in to Secret Server. " + outcome_line(o)
    return truncate(line, FALLBACK_TEXT_LIMIT), [
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate(line, SECTION_TEXT_LIMIT)}}]


def reason_modal(action: str, request_id: int, summary: str, metadata: dict) -> dict:
    """The modal asking for the comment before Approve / Deny (`approvals.ask_reason`)."""
    deny = action == DENY
    return {
        "type": "modal",
        "callback_id": REASON_CALLBACK,
        "private_metadata": json.dumps({**metadata, "action": action, "request_id": int(request_id)})[:3000],
        "title": plain("Deny request" if deny else "Approve request", 24),
        "submit": plain("Deny" if deny else "Approve", 24),
        "close": plain("Back", 24),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(summary or f"Request #{request_id}",
                                                                            SECTION_TEXT_LIMIT)}},
            {"type": "input", "block_id": REASON_BLOCK, "optional": not deny,
             "label": plain("Reason" if deny else "Comment (optional)", 2000),
             "element": {"type": "plain_text_input", "action_id": REASON_INPUT, "multiline": True,
                         "max_length": REASON_LIMIT}},
        ],
    }


__all__ = ["explain", "outcome_line", "updated_card", "notice", "signin_prompt", "completed_after_signin",
           "reason_modal", "REASON_CALLBACK", "REASON_BLOCK", "REASON_INPUT", "FAILED"]
