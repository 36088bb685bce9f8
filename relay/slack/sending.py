"""What one outbox row becomes as Slack calls: the method that carries it, and the calls
themselves, one handler per kind of event.

- approval_requested: ephemeral -> chat.postEphemeral in the app DM; dm -> chat.postMessage (card kept)
- canceled: the reviewer's card is rewritten when there is one, else a notice is posted
- review_closed: the reviewer's card is rewritten (nothing when there is no card)
- approved / denied / expired: chat.postMessage to the requester (persistent: they are waiting)

Follow-ups beyond SS's own bot register their own senders per kind (`handlers`)."""

from __future__ import annotations

import logging
from typing import Any, Callable

from ..errors import SlackPermanentError
from ..model import AccessRequest as Request, request_from_dict
from ..outbox import Notification, Outbox
from .. import sync
from . import blocks
from .api import SlackApi
from .directory import Directory

log = logging.getLogger(__name__)

# Message metadata on every post: the outbox key, so a post whose answer was lost can be found.
METADATA_EVENT_TYPE = "ssrelay_notification"
NO_CALL = "none"              # rows that need no Slack call (no card to close)

Sent = tuple[str, str | None]          # the method used, and a note to record (or None)
Handler = Callable[[Notification, str], Sent]


def metadata(n: Notification) -> dict:
    return {"event_type": METADATA_EVENT_TYPE, "event_payload": {"key": n.key}}


class Sending:
    """Part of `Delivery`: turns a claimed row into Slack calls (set up by its constructor)."""

    api: SlackApi
    outbox: Outbox
    directory: Directory
    mode: str
    secret_url: Callable[[int], str]
    request_url: Callable[[int, int], str] | None
    default_hours: float
    launchable: Callable[[str, int], bool]
    handlers: dict[str, Handler]
    reminder_handler: Handler | None
    decorate_card: Callable[[Notification, list], list]
    save_card_of: Callable[[Notification, int, int, str, str], None]     # Delivery's

    def _method_for(self, n: Notification) -> str:
        if n.event == sync.APPROVAL_REQUESTED or n.event.startswith("reminder_"):
            return "chat.postMessage" if self.mode == "dm" else "chat.postEphemeral"
        if n.event in (sync.CANCELED_NOTICE, sync.REVIEW_CLOSED, sync.STEP_PASSED):
            if self.outbox.card(n.request_id, n.recipient):
                return "chat.update"
            if n.event in (sync.REVIEW_CLOSED, sync.STEP_PASSED):
                return NO_CALL
            return "chat.postMessage" if self.mode == "dm" else "chat.postEphemeral"
        return "chat.postMessage"

    def _handler_for(self, event: str) -> Handler | None:
        """A registered sender: by exact kind, the reminders' sender, or a name ending in "*"
        (every event starting with the rest)."""
        return self.handlers.get(event) or (
            self.reminder_handler if event.startswith("reminder_") else None) or next(
            (h for name, h in self.handlers.items() if name.endswith("*") and event.startswith(name[:-1])), None)

    def _send(self, n: Notification, slack_user: str) -> Sent:
        req = request_from_dict(n.payload["request"])
        handler = self._handler_for(n.event)
        if handler is not None:
            return handler(n, slack_user)
        if n.event == sync.APPROVAL_REQUESTED:
            return self._send_ask(n, req, slack_user)
        if n.event in (sync.CANCELED_NOTICE, sync.REVIEW_CLOSED, sync.STEP_PASSED):
            return self._send_closing(n, req, slack_user)
        return self._send_outcome(n, req, slack_user)

    def _post_to_reviewer(self, n: Notification, slack_user: str, text: str, blks: list) -> Sent:
        """A message to a reviewer, as the message mode says (dm: a post; else ephemeral)."""
        if self.mode == "dm":
            self.api.call("chat.postMessage", channel=slack_user, text=text, blocks=blks, metadata=metadata(n))
            return "chat.postMessage", None
        channel = self.directory.dm_channel(slack_user)
        self.api.call("chat.postEphemeral", channel=channel, user=slack_user, text=text, blocks=blks)
        return "chat.postEphemeral", None

    def _send_ask(self, n: Notification, req: Request, slack_user: str) -> Sent:
        text, blks = blocks.approval_card(
            req, n.payload, secret_url=self.secret_url(req.secret_id), default_hours=self.default_hours,
            request_url=self.request_url(req.id, req.secret_id) if self.request_url else "")
        blks = self.decorate_card(n, blks)
        if self.mode != "dm":
            return self._post_to_reviewer(n, slack_user, text, blks)
        data = self.api.call("chat.postMessage", channel=slack_user, text=text, blocks=blks, metadata=metadata(n))
        self.save_card_of(n, req.id, n.recipient, str(data["channel"]), str(data["ts"]))
        return "chat.postMessage", None

    def _send_closing(self, n: Notification, req: Request, slack_user: str) -> Sent:
        url = self.secret_url(req.secret_id)
        card = self.outbox.card(req.id, n.recipient)
        if card:
            line = blocks.STEP_PASSED_LINE if n.event == sync.STEP_PASSED else None
            text, blks = blocks.closed_card(req, n.payload, secret_url=url, default_hours=self.default_hours,
                                            line=line)
            try:
                self.api.call("chat.update", channel=card[0], ts=card[1], text=text, blocks=blks)
            except SlackPermanentError as exc:
                if exc.error != "message_not_found":
                    raise
                return "chat.update", "card no longer exists in Slack"
            self.outbox.close_card(req.id, n.recipient)
            return "chat.update", None
        if n.event in (sync.REVIEW_CLOSED, sync.STEP_PASSED):
            return NO_CALL, "no card to update"
        # Queued while the ask was in flight, which then failed and was dropped: not news to them.
        if self.outbox.ask_never_went_out(req.id, n.recipient):
            return NO_CALL, "the approval message never went out"
        text, blks = blocks.canceled_notice(req, n.payload, secret_url=url)
        return self._post_to_reviewer(n, slack_user, text, blks)

    def _send_outcome(self, n: Notification, req: Request, slack_user: str) -> Sent:
        url = self.secret_url(req.secret_id)
        ctx: dict[str, Any] = n.payload
        if n.event in (sync.APPROVED_NOTICE, sync.DENIED_NOTICE):
            launch = n.event == sync.APPROVED_NOTICE and req.status == "Approved" and \
                self.launchable(slack_user, req.secret_id)
            text, blks = blocks.outcome_message(req, ctx, secret_url=url, default_hours=self.default_hours,
                                                launch=launch)
        elif n.event == sync.EXPIRED_NOTICE:
            text, blks = blocks.expired_notice(req, ctx, secret_url=url)
        else:
            raise SlackPermanentError("none", f"unknown event {n.event!r}")
        self.api.call("chat.postMessage", channel=slack_user, text=text, blocks=blks, metadata=metadata(n))
        return "chat.postMessage", None
