"""Delivery: drains the outbox into Slack, one notification at a time, in order per
(request, recipient), paced per method, with Retry-After, backoff and dead letters.

Which Slack method carries an event depends on the message mode:
- approval_requested: ephemeral -> chat.postEphemeral in the app DM; dm -> chat.postMessage (card kept)
- canceled: the reviewer's card is rewritten when there is one, else a notice is posted
- review_closed: the reviewer's card is rewritten (nothing when there is no card)
- approved / denied / expired: chat.postMessage to the requester (persistent: they are waiting)
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Callable

import sqlite_utils

from ..errors import SlackError, SlackPermanentError, SlackRateLimited
from ..metrics import Metrics
from ..model import request_from_dict
from ..outbox import Notification, Outbox, backoff
from .. import sync
from . import blocks
from .api import SlackApi
from .directory import Directory, Unmapped

log = logging.getLogger(__name__)


class Delivery:
    def __init__(self, db: sqlite_utils.Database, api: SlackApi, directory: Directory, *,
                 mode: str, secret_url: Callable[[int], str], default_hours: float,
                 metrics: Metrics | None = None, owner: str | None = None,
                 request_url: Callable[[int, int], str] | None = None):
        self.db = db
        self.outbox = Outbox(db, owner)
        self.api = api
        self.directory = directory
        self.mode = mode
        self.secret_url = secret_url
        self.request_url = request_url
        self.default_hours = default_hours
        self.metrics = metrics or Metrics()
        self.wake = threading.Event()
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self.on_delivered: Callable[[Notification, str], None] = lambda n, slack_user: None
        # issue 4: does the requester's "approved" message get Launch? (set by the interactions
        # layer: asks SS as the requester; never the relay account)
        self.launchable: Callable[[str, int], bool] = lambda slack_user, secret_id: False
        # True while approval messages must wait: after a start, until a poll has re-read SS
        # (a request decided while the relay was stopped is then superseded, never asked).
        self.hold_asks: Callable[[], bool] = lambda: False

    def deliver_due(self, limit: int = 100) -> int:
        """Deliver what is due now; returns how many notifications were handled."""
        handled = 0
        for n in self.outbox.due(self.clock(), limit=limit):
            if n.event == sync.APPROVAL_REQUESTED and self.hold_asks():
                continue
            if self.outbox.claim(n):
                self._deliver(n)
                handled += 1
        return handled

    def run(self, stop: threading.Event, idle_seconds: float = 1.0) -> None:
        """Deliver until `stop` is set; sleeps on `wake` (set by the poll) when idle."""
        while not stop.is_set():
            try:
                handled = self.deliver_due()
            except Exception:   # keep the loop alive; the row stays in the outbox
                log.exception("delivery loop error")
                handled = 0
            if handled == 0:
                self.wake.wait(self._idle_wait(idle_seconds))
                self.wake.clear()

    def _idle_wait(self, idle: float) -> float:
        nxt = self.outbox.next_due_at()
        if nxt is None or self.hold_asks():     # held asks are due but must not spin the loop
            return idle
        return max(0.01, min(idle, (nxt - self.clock()).total_seconds()))

    def _deliver(self, n: Notification) -> None:
        try:
            slack_user = self.directory.slack_user_for(n.recipient)
        except Unmapped as exc:
            self.outbox.dead(n, f"unmapped: {exc}")
            log.warning("notification dead-lettered", extra={"event": n.event, "request_id": n.request_id,
                                                              "reason": "unmapped"})
            self.metrics.deliveries.labels("none", "unmapped").inc()
            return
        except SlackError as exc:
            self._failed(n, exc, "users.lookupByEmail")
            return
        try:
            method, note = self._send(n, slack_user)
        except SlackError as exc:
            self._failed(n, exc, exc.method)
            return
        except Exception as exc:   # a bug or a local failure: never leave the row `sending`
            log.exception("notification could not be built or sent", extra={"event": n.event,
                                                                             "request_id": n.request_id})
            self.outbox.dead(n, f"internal error: {type(exc).__name__}")
            self.metrics.deliveries.labels("none", "internal_error").inc()
            return
        self.outbox.sent(n, slack_user, note)
        self.metrics.deliveries.labels(method, "ok").inc()
        log.info("notification delivered", extra={"event": n.event, "request_id": n.request_id,
                                                   "slack_user": slack_user, "method": method})
        self.on_delivered(n, slack_user)

    def _failed(self, n: Notification, exc: SlackError, method: str) -> None:
        if isinstance(exc, SlackRateLimited):
            self.metrics.slack_rate_limited.labels(method).inc()
            self.outbox.retry(n, str(exc), delay=exc.retry_after, count_attempt=False)
            result = "rate_limited"
        elif isinstance(exc, SlackPermanentError):
            self.outbox.dead(n, exc.error)
            result = "dead"
        else:
            result = self.outbox.retry(n, str(exc), delay=backoff(n.attempts + 1))
        self.metrics.deliveries.labels(method, result).inc()
        log.warning("notification not delivered", extra={"event": n.event, "request_id": n.request_id,
                                                          "error": str(exc), "result": result})

    def _send(self, n: Notification, slack_user: str) -> tuple[str, str | None]:
        req = request_from_dict(n.payload["request"])
        ctx = n.payload
        url = self.secret_url(req.secret_id)
        if n.event == sync.APPROVAL_REQUESTED:
            text, blks = blocks.approval_card(
                req, ctx, secret_url=url, default_hours=self.default_hours,
                request_url=self.request_url(req.id, req.secret_id) if self.request_url else "")
            if self.mode == "dm":
                data = self.api.call("chat.postMessage", channel=slack_user, text=text, blocks=blks)
                try:
                    self.outbox.save_card(req.id, n.recipient, data["channel"], data["ts"])
                except Exception:   # the card is out: it is sent, though it cannot be edited later
                    log.exception("card posted but not recorded", extra={"request_id": req.id})
                    return "chat.postMessage", "card not recorded: later changes come as new messages"
                return "chat.postMessage", None
            channel = self.directory.dm_channel(slack_user)
            self.api.call("chat.postEphemeral", channel=channel, user=slack_user, text=text, blocks=blks)
            return "chat.postEphemeral", None
        if n.event in (sync.CANCELED_NOTICE, sync.REVIEW_CLOSED):
            card = self.outbox.card(req.id, n.recipient)
            if card:
                text, blks = blocks.closed_card(req, ctx, secret_url=url, default_hours=self.default_hours)
                try:
                    self.api.call("chat.update", channel=card[0], ts=card[1], text=text, blocks=blks)
                except SlackPermanentError as exc:
                    if exc.error != "message_not_found":
                        raise
                    return "chat.update", "card no longer exists in Slack"
                self.outbox.close_card(req.id, n.recipient)
                return "chat.update", None
            if n.event == sync.REVIEW_CLOSED:
                return "none", "no card to update"
            text, blks = blocks.canceled_notice(req, ctx, secret_url=url)
            if self.mode == "dm":
                self.api.call("chat.postMessage", channel=slack_user, text=text, blocks=blks)
                return "chat.postMessage", None
            channel = self.directory.dm_channel(slack_user)
            self.api.call("chat.postEphemeral", channel=channel, user=slack_user, text=text, blocks=blks)
            return "chat.postEphemeral", None
        if n.event in (sync.APPROVED_NOTICE, sync.DENIED_NOTICE):
            launch = n.event == sync.APPROVED_NOTICE and req.status == "Approved" and \
                self.launchable(slack_user, req.secret_id)   # issue 4
            text, blks = blocks.outcome_message(req, ctx, secret_url=url, default_hours=self.default_hours,
                                                launch=launch)
        elif n.event == sync.EXPIRED_NOTICE:
            text, blks = blocks.expired_notice(req, ctx, secret_url=url)
        else:
            raise SlackPermanentError("none", f"unknown event {n.event!r}")
        self.api.call("chat.postMessage", channel=slack_user, text=text, blocks=blks)
        return "chat.postMessage", None
