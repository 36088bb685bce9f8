"""Delivers the follow-up events (relay.followups) and decorates approval cards.

Installed into `Delivery` as handlers per event kind; each returns (Slack method, note) like
Delivery's own sends, and raises SlackError for the outbox to retry or dead-letter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from ..errors import SlackError
from ..followups import (
    CHANNEL,
    CHANNEL_CARD,
    CHANNEL_CLOSED,
    CHANNEL_STEP_PREFIX,
    REQUESTER_CONFIRMATION,
    is_reminder,
)
from ..model import PENDING, request_from_dict
from ..outbox import Notification
from ..reminders import Deferred, quiet_wait
from ..store import snapshot
from ..sync import APPROVAL_REQUESTED
from . import blocks, cards
from .delivery import (
    metadata,  # the outbox key, so a post whose answer was lost is found
)

log = logging.getLogger(__name__)


class FollowupSender:
    def __init__(self, delivery, *, sensitive_folders: tuple[str, ...] = ()):
        self.delivery = delivery
        self.sensitive_folders = tuple(sensitive_folders)
        self._zones: dict[str, str | None] = {}

    @property
    def now(self) -> Callable[[], datetime]:
        return self.delivery.clock

    def install(self) -> None:
        """Register the follow-ups' senders with delivery (through its registration calls)."""
        d = self.delivery
        d.decorate_cards_with(self.decorate)
        d.register_sender(REQUESTER_CONFIRMATION, self.confirm)
        d.register_sender(CHANNEL_CARD, self.post_channel_card)
        d.register_sender(CHANNEL_CLOSED, self.close_channel_card)
        d.register_sender(CHANNEL_STEP_PREFIX + "*", self.update_channel_card)
        d.register_reminders(self.remind)
        d.hold_with_asks(is_ask)

    # -- approval cards ----------------------------------------------------------------------
    def decorate(self, n: Notification, blks: list) -> list:
        req = request_from_dict(n.payload["request"])
        return cards.decorate_approval(blks, req, n.payload, n.recipient, self.now(),
                                       sensitive_prefixes=self.sensitive_folders)

    def approval(self, n: Notification) -> tuple[str, list]:
        d = self.delivery
        req = request_from_dict(n.payload["request"])
        text, blks = blocks.approval_card(
            req, n.payload, secret_url=d.secret_url(req.secret_id), default_hours=d.default_hours,
            request_url=d.request_url(req.id, req.secret_id) if d.request_url else "")
        return text, self.decorate(n, blks)

    # -- the requester -----------------------------------------------------------------------
    def confirm(self, n: Notification, slack_user: str) -> tuple[str, str | None]:
        req = request_from_dict(n.payload["request"])
        text, blks = cards.requester_confirmation(req, n.payload, secret_url=self.delivery.secret_url(req.secret_id))
        self.delivery.api.call("chat.postMessage", channel=slack_user, text=text, blocks=blks, metadata=metadata(n))
        return "chat.postMessage", None

    def _still_pending(self, n: Notification) -> bool:
        """Whether the snapshot still holds `n`'s request as pending (else its card is moot)."""
        found = snapshot.get_request(self.delivery.db, n.request_id)
        return found is not None and found[0].status == PENDING

    # -- reviewers ---------------------------------------------------------------------------
    def remind(self, n: Notification, slack_user: str) -> tuple[str, str | None]:
        d = self.delivery
        if not self._still_pending(n):
            return "none", "request no longer pending"
        req = request_from_dict(n.payload["request"])
        if n.recipient == CHANNEL:
            return self._thread_reply(n, cards.channel_reminder(req, n.payload, self.now()))
        wait = quiet_wait(self.now(), self._tz(slack_user))
        if wait > 0:
            raise Deferred(wait, "quiet hours: sent at 08:00 the reviewer's time")
        text, blks = cards.reminder_card(self.approval(n), req, n.payload, self.now())
        if d.mode == "dm":
            # A fresh card at the bottom of the DM, which replaces the older one.
            old = d.outbox.card(req.id, n.recipient)
            data = d.api.call("chat.postMessage", channel=slack_user, text=text, blocks=blks, metadata=metadata(n))
            d.replace_card_of(n, str(data["channel"]), str(data["ts"]), old)
            return "chat.postMessage", None
        channel = d.directory.dm_channel(slack_user)
        d.api.call("chat.postEphemeral", channel=channel, user=slack_user, text=text, blocks=blks)
        return "chat.postEphemeral", None

    def _tz(self, slack_user: str) -> str | None:
        """The person's Slack time zone (users.info `tz`), remembered for the process."""
        if slack_user not in self._zones:
            try:
                user = self.delivery.api.call("users.info", user=slack_user).get("user") or {}
                self._zones[slack_user] = user.get("tz") if isinstance(user.get("tz"), str) else None
            except SlackError as exc:   # unknown: remind now rather than not at all
                log.warning("time zone unknown", extra={"error": str(exc)})
                return None
        return self._zones[slack_user]

    # -- team channels ---------------------------------------------------------------------
    def post_channel_card(self, n: Notification, slack_user: str) -> tuple[str, str | None]:
        d = self.delivery
        if not self._still_pending(n):
            return "none", "request no longer pending"
        req = request_from_dict(n.payload["request"])
        text, blks = cards.channel_card(self.approval(n), req, n.payload, self.now(),
                                        sensitive_prefixes=self.sensitive_folders)
        data = d.api.call("chat.postMessage", channel=n.payload["channel"], text=text, blocks=blks,
                          metadata=metadata(n))
        d.save_card_of(n, req.id, CHANNEL, str(data["channel"]), str(data["ts"]))
        return "chat.postMessage", None

    def update_channel_card(self, n: Notification, slack_user: str) -> tuple[str, str | None]:
        """The workflow moved to its next step: the card, rewritten in place, asks the new
        step's reviewers (still with Approve / Deny)."""
        d = self.delivery
        if not self._still_pending(n):
            return "none", "request no longer pending"
        card = d.outbox.card(n.request_id, CHANNEL)
        if card is None:
            return "none", "no channel card"
        req = request_from_dict(n.payload["request"])
        text, blks = cards.channel_card(self.approval(n), req, n.payload, self.now(),
                                        sensitive_prefixes=self.sensitive_folders)
        try:
            d.api.call("chat.update", channel=card[0], ts=card[1], text=text, blocks=blks)
        except SlackError as exc:
            if getattr(exc, "error", "") != "message_not_found":
                raise
            return "chat.update", "card no longer exists in Slack"
        return "chat.update", None

    def close_channel_card(self, n: Notification, slack_user: str) -> tuple[str, str | None]:
        req = request_from_dict(n.payload["request"])
        return close_channel_card(self.delivery, req, n.payload, meta=metadata(n))

    def _thread_reply(self, n: Notification, line: str) -> tuple[str, str | None]:
        d = self.delivery
        card = d.outbox.card(n.request_id, CHANNEL)
        if card is None:
            return "none", "no channel card"
        d.api.call("chat.postMessage", channel=card[0], thread_ts=card[1], text=line,
                   blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": line}}], metadata=metadata(n))
        return "chat.postMessage", None


def close_channel_card(delivery, req, payload: dict, *, meta: dict | None = None) -> tuple[str, str | None]:
    """The channel card rewritten to its final state (no buttons), and one thread reply
    saying what happened. Rewriting is idempotent, so a retry after a failed reply is safe."""
    d = delivery
    card = d.outbox.card(req.id, CHANNEL)
    if card is None:
        return "none", "no channel card"
    text, blks = blocks.closed_card(req, payload, secret_url=d.secret_url(req.secret_id),
                                    default_hours=d.default_hours)
    try:
        d.api.call("chat.update", channel=card[0], ts=card[1], text=text, blocks=blks)
    except SlackError as exc:
        if getattr(exc, "error", "") != "message_not_found":
            raise
    line = cards.thread_reply(req, payload)
    extra = {"metadata": meta} if meta else {}   # the outbox key: a reply whose answer was lost is found
    d.api.call("chat.postMessage", channel=card[0], thread_ts=card[1], text=line,
               blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": line}}], **extra)
    d.outbox.close_card(req.id, CHANNEL)
    return "chat.postMessage", None


def is_ask(event: str) -> bool:
    """Events that ask for, or announce, a review still to come: held after a start until a
    poll has re-read Secret Server, like the approval messages themselves."""
    return event in (APPROVAL_REQUESTED, REQUESTER_CONFIRMATION, CHANNEL_CARD) or is_reminder(event)


def handles(event: str) -> bool:
    return event == REQUESTER_CONFIRMATION or is_reminder(event)


def is_channel_card(db, request_id: int, source: dict) -> bool:
    """Whether a click came from the request's team-channel card (not a person's own card)."""
    row = db.execute("SELECT channel, ts FROM cards WHERE request_id = ? AND recipient = ?",
                     [int(request_id), CHANNEL]).fetchone()
    return bool(row) and (row[0], row[1]) == (source.get("channel"), source.get("ts"))


def queue_channel_close(db, req, context: dict, now) -> bool:
    """A decision made by a click on the channel card: its close goes through the outbox at
    once (the later poll's identical row is ignored by the outbox key). True when queued."""
    import json

    from ..model import request_to_dict
    stamp = now.isoformat()
    with db.atomic():
        return db.execute(
            "INSERT OR IGNORE INTO outbox (request_id, event, recipient, payload, state, next_attempt_at, "
            "created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
            [req.id, CHANNEL_CLOSED, CHANNEL, json.dumps({"request": request_to_dict(req), **context},
                                                         sort_keys=True), stamp, stamp]).rowcount == 1
