"""Block Kit for what the relay adds beyond Secret Server's own bot: the facts an approver
wants at a glance (age, folder path, why they are asked, a sensitive-folder banner), the
requester's confirmation, and reminders. Pure functions of plain data, like blocks.py.

`reviewer_steps` in a payload describes the current workflow step as Secret Server lists it
(`currentStepReviewers`): one entry per named reviewer or group, each with its members as
[SS user id, name] pairs.
"""

from __future__ import annotations

from datetime import datetime

from .. import routes
from ..model import AccessRequest
from .blocks import (
    BUTTON_TEXT_LIMIT,
    CONTEXT_TEXT_LIMIT,
    FALLBACK_TEXT_LIMIT,
    SECTION_TEXT_LIMIT,
    escape,
    link,
    plain,
    truncate,
    when,
)
from .home import CANCEL_REQUEST

NAMES_SHOWN = 3     # people named in "went to ..." before "(and N more in <group>)"


def ago(start: datetime | None, now: datetime) -> str:
    """How long ago, in an approver's words: "just now", "3 min ago", "2 h ago", "3 days ago"."""
    if start is None:
        return ""
    minutes = int((now - start).total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h ago"
    return f"{minutes // (24 * 60)} days ago"


def waiting(start: datetime | None, now: datetime) -> str:
    """The request's age as "waiting 2 h" (for reminders)."""
    a = ago(start, now)
    return "waiting " + a.removesuffix(" ago") if a and a != "just now" else "waiting"


def asked_as(steps: list[dict], recipient: int) -> str:
    """Why this reviewer is asked: named on the step, or member of which group(s)."""
    named = any(s.get("is_user") and recipient in _ids(s) for s in steps)
    if named:
        return "You are a named reviewer of this request."
    groups = [s.get("name", "") for s in steps if not s.get("is_user") and recipient in _ids(s)]
    if groups:
        return "You are asked as a member of " + ", ".join(escape(g) for g in groups) + "."
    return ""


def asked_line(steps: list[dict], requester_id: int, *, joiner: str = "", limit: int = NAMES_SHOWN) -> str:
    """Who is asked, e.g. "Alice, Bob (and 3 more in DB Approvers)"; with joiner="or anyone in",
    "Alice, Bob or anyone in DB Approvers". The requester is never counted."""
    named: list[str] = []
    seen: set[int] = set()
    for s in steps:
        if s.get("is_user"):
            for uid, name in s.get("members") or []:
                if uid != requester_id and uid not in seen:
                    seen.add(uid)
                    named.append(escape(name))
    tails: list[str] = []
    for s in steps:
        if s.get("is_user"):
            continue
        members = [(u, n) for u, n in s.get("members") or [] if u != requester_id and u not in seen]
        shown = [escape(n) for _, n in members[:max(0, limit - len(named))]]
        seen.update(u for u, _ in members)
        named.extend(shown)
        group = escape(s.get("name", ""))
        rest = len(members) - len(shown)
        if joiner:
            tails.append(f"{joiner} {group}")
        elif rest > 0:
            tails.append(f"(and {rest} more in {group})")
        elif shown:
            tails.append(f"({group})")
    head = ", ".join(named) or "nobody the relay can see"
    return " ".join([head, *tails]) if tails else head


def _ids(step: dict) -> set[int]:
    return {m[0] for m in step.get("members") or []}


def sensitive_banner(folder_path: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(
        f":warning: *Sensitive folder:* {escape(folder_path)}", SECTION_TEXT_LIMIT)}}


def glance(req: AccessRequest, payload: dict, recipient: int, now: datetime) -> dict:
    """A context block: when asked (relative, and in the reader's time zone), the full folder
    path, and why this reviewer is asked."""
    parts = []
    if req.requested_at is not None:
        parts.append(f"Requested {ago(req.requested_at, now)} ({when(req.requested_at)})")
    if payload.get("folder_path"):
        parts.append(f"Folder {escape(payload['folder_path'])}")
    why = asked_as(payload.get("reviewer_steps") or [], recipient)
    if why:
        parts.append(why)
    return {"type": "context", "elements": [
        {"type": "mrkdwn", "text": truncate(" · ".join(parts) or " ", CONTEXT_TEXT_LIMIT)}]}


def decorate_approval(blks: list[dict], req: AccessRequest, payload: dict, recipient: int, now: datetime,
                      *, sensitive_prefixes: tuple[str, ...] = ()) -> list[dict]:
    """An approval card with the glance facts before its buttons, and the sensitive-folder
    banner right under its header when the secret's folder is one of `sensitive_prefixes`."""
    out = list(blks)
    actions = next((i for i, b in enumerate(out) if b.get("type") == "actions"), len(out))
    out.insert(actions, glance(req, payload, recipient, now))
    path = payload.get("folder_path") or ""
    if routes.sensitive_folder(path, sensitive_prefixes):
        header = next((i for i, b in enumerate(out) if b.get("type") == "header"), -1)
        out.insert(header + 1, sensitive_banner(path))
    return out


def require_reason(modal: dict, folder_path: str) -> dict:
    """The reason modal for Approve on a sensitive folder's request: the banner on top, and
    the reason is required (as it is for Deny)."""
    out = dict(modal)
    blocks = [dict(b) for b in modal.get("blocks") or []]
    for b in blocks:
        if b.get("type") == "input":
            b["optional"] = False
            b["label"] = plain("Reason (required for a sensitive folder)", 2000)
    out["blocks"] = [sensitive_banner(folder_path), *blocks]
    return out


def requester_confirmation(req: AccessRequest, payload: dict, *, secret_url: str) -> tuple[str, list]:
    """The requester's DM when their request is seen: who it went to, and "Cancel request"."""
    secret = link(secret_url, req.secret_name) if secret_url else escape(req.secret_name)
    who = asked_line(payload.get("reviewer_steps") or [], req.requester_id)
    line = f":outbox_tray: Your request for {secret} went to {who}"
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate(line, SECTION_TEXT_LIMIT)}},
        {"type": "actions", "block_id": f"confirm:{req.id}", "elements": [
            {"type": "button", "action_id": CANCEL_REQUEST, "value": str(int(req.id)),
             "text": plain("Cancel request", BUTTON_TEXT_LIMIT)}]},
    ]
    fallback = f"Your request for {escape(req.secret_name)} went to {who}"
    return truncate(fallback, FALLBACK_TEXT_LIMIT), blocks


def reminder_line(req: AccessRequest, payload: dict, now: datetime) -> str:
    requester = escape(payload.get("requester_name") or req.requester_username)
    return (f":alarm_clock: Reminder: {requester}'s request for {escape(req.secret_name)} is still "
            f"waiting for a review ({waiting(req.requested_at, now)})")


def reminder_card(approval: tuple[str, list], req: AccessRequest, payload: dict,
                  now: datetime) -> tuple[str, list]:
    """A reminder: one line, then the (decorated) approval card with its buttons."""
    line = reminder_line(req, payload, now)
    _, blks = approval
    return truncate(line, FALLBACK_TEXT_LIMIT), [
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate(line, SECTION_TEXT_LIMIT)}}, *blks]


def channel_card(approval: tuple[str, list], req: AccessRequest, payload: dict, now: datetime,
                 *, sensitive_prefixes: tuple[str, ...] = ()) -> tuple[str, list]:
    """The card in a team channel: the approval card, when and where, and who is asked
    ("Alice, Bob or anyone in DB Approvers"); Approve / Deny act as whoever clicks."""
    text, blks = approval
    who = asked_line(payload.get("reviewer_steps") or [], req.requester_id, joiner="or anyone in")
    out = decorate_approval(blks, req, {**payload, "reviewer_steps": []}, -1, now,
                            sensitive_prefixes=sensitive_prefixes)
    actions = next((i for i, b in enumerate(out) if b.get("type") == "actions"), len(out))
    step = int(payload.get("step") or 1)
    progress = f"Step {step - 1} approved, waiting for step {step} · " if step > 1 else ""
    out.insert(actions, {"type": "context", "elements": [
        {"type": "mrkdwn", "text": truncate(f"{progress}Asked: {who}", CONTEXT_TEXT_LIMIT)}]})
    return text, out


def thread_reply(req: AccessRequest, payload: dict) -> str:
    """What happened to a channel card's request, as a reply in its thread."""
    by = escape(req.decided_by) or "A reviewer"
    comment = f": {escape(req.response_comment)}" if req.response_comment else ""
    requester = escape(payload.get("requester_name") or req.requester_username)
    return truncate({
        "Approved": f":white_check_mark: {by} approved{comment}",
        "Denied": f":x: {by} denied{comment}",
        "Canceled": f":no_entry_sign: {requester} canceled",
        "Expired": ":hourglass: Approved; the access has since expired",
    }.get(req.status, f"Now {escape(req.status)}"), SECTION_TEXT_LIMIT)


def channel_reminder(req: AccessRequest, payload: dict, now: datetime) -> str:
    who = asked_line(payload.get("reviewer_steps") or [], req.requester_id, joiner="or anyone in")
    return truncate(f":alarm_clock: Reminder: still waiting for a review ({waiting(req.requested_at, now)}). "
                    f"Asked: {who}", SECTION_TEXT_LIMIT)
