"""Delivery: drains the outbox into Slack, in order per (request, recipient), in one lane per
Slack method, paced per method, with Retry-After, backoff and dead letters.

Lanes: `run()` hands each due notification to the lane of the first Slack method it needs
(users.lookupByEmail for someone not looked up yet, conversations.open for a DM channel not
opened yet, conversations.history for a post in doubt, else the method that carries it), two
threads per lane, so a slow or rate-limited method never holds up the others. Order per (request, recipient) holds across lanes: the next
row of a pair is not due until the one before it is finished (`Outbox.due`).

What a row becomes as Slack calls: relay.slack.sending; finding a post whose answer was
lost: relay.slack.reconcile; health for /readyz: relay.slack.delivery_health.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable

from ..errors import SlackError, SlackOutcomeUnknown, SlackPermanentError, SlackRateLimited, SlackStopping
from ..metrics import Metrics
from ..outbox import Notification, Outbox, backoff
from ..reminders import Deferred
from ..store.health import StorageHealth
from ..store.handle import Store
from .. import sync
from .api import SlackApi
from .delivery_health import DeliveryHealth
from .directory import Directory, Unmapped
from .reconcile import Reconciling
from .sending import NO_CALL, Handler, Sending, metadata

__all__ = ["Delivery", "metadata", "NO_CALL"]

log = logging.getLogger(__name__)

# After a lost answer, wait this long before looking: a slow Slack has finished by then.
UNSURE_RETRY_SECONDS = 5.0
# Lanes: at most this many notifications queued per lane; the dispatcher reads this many due
# rows per batch.
LANE_DEPTH = 32
BATCH = 100
# Threads per lane: while one waits for Slack's answer, the next claims and renders its row,
# so the lane's own database work never stretches the spacing the pacer keeps. The pacer still
# lets one call per method be in flight at a time.
LANE_THREADS = 2
LOOKUP, OPEN = "users.lookupByEmail", "conversations.open"
# Rows in doubt are looked for in Slack (conversations.history, a slower tier) before anything
# is posted again: in a lane of their own, so a backlog of them after a crash never holds up
# new messages.
RECONCILE = "conversations.history"


class _Lane:
    def __init__(self, name: str):
        self.name = name
        self.queue: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self.threads: list[threading.Thread] = []


class Delivery(Sending, Reconciling, DeliveryHealth):
    def __init__(self, db: Store, api: SlackApi, directory: Directory, *,
                 mode: str, secret_url: Callable[[int], str], default_hours: float,
                 metrics: Metrics | None = None, owner: str | None = None,
                 request_url: Callable[[int, int], str] | None = None,
                 failing_limit: float = 300.0, pending_limit: float = 900.0,
                 launchable: Callable[[str, int], bool] | None = None,
                 hold_asks: Callable[[], bool] | None = None, storage: StorageHealth | None = None):
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
        # Does the requester's "approved" message get Launch? (`Secrets.launchable`: asks SS
        # as the requester, never as the relay account; without it, never)
        self.launchable: Callable[[str, int], bool] = launchable or (lambda slack_user, secret_id: False)
        # True while approval messages must wait: after a start, until a poll has re-read SS
        # (a request decided while the relay was stopped is then superseded, never asked).
        self.hold_asks: Callable[[], bool] = hold_asks or (lambda: False)
        self.unsure_retry_seconds = UNSURE_RETRY_SECONDS
        # Health, kept in memory so readiness never touches the database.
        self._init_health(failing_limit, pending_limit)
        # Lanes (run() only)
        self._lanes: dict[str, _Lane] = {}
        self._queued: set[int] = set()
        self._resolving: set[int] = set()
        self._looked_up: set[int] = set()   # people whose lookup was tried by this process
        self._known: dict[int, str] = {}    # SS user -> Slack user, as seen by lane_of
        self._open_dms: set[str] = set()    # Slack users whose app DM is known to be open
        self._queued_lock = threading.Lock()
        self._stop = threading.Event()
        # Which events are held with the approval messages (`hold_with_asks`: the follow-ups'
        # confirmations, channel cards and reminders are all moot once the request is decided).
        self.is_ask: Callable[[str], bool] = lambda event: event == sync.APPROVAL_REQUESTED
        # Follow-ups beyond SS's own bot, registered by the composition root (`register_sender`,
        # `register_reminders`, `decorate_cards_with`): senders per event kind (a name ending
        # in "*": every event starting with the rest), the reminders' sender, and extra facts
        # on approval cards.
        self.handlers: dict[str, Handler] = {}
        self.reminder_handler: Handler | None = None
        self.decorate_card: Callable[[Notification, list], list] = lambda n, blks: blks
        self.storage = storage or StorageHealth()
        # What happened to a claimed row whose write could not be made (disk full, lock): kept
        # here and written before anything new is claimed, so a message Slack took is marked
        # sent instead of being sent again.
        self._unrecorded: dict[int, Callable[[], object]] = {}
        # Cards posted for a row whose record could not be written: written with the row's own
        # record (`_record`), so later changes still find the card to rewrite.
        self._card_writes: dict[int, list[Callable[[], object]]] = {}

    # --- registration (by the composition root, before `run`) -------------------------------
    def register_sender(self, event: str, handler: Handler) -> None:
        """Send `event` rows with `handler` (a name ending in "*": every event starting with
        the rest)."""
        self.handlers[event] = handler

    def register_reminders(self, handler: Handler) -> None:
        self.reminder_handler = handler

    def decorate_cards_with(self, decorate: Callable[[Notification, list], list]) -> None:
        self.decorate_card = decorate

    def hold_with_asks(self, is_ask: Callable[[str], bool]) -> None:
        """Which events wait, like approval messages, until a poll has re-read SS."""
        self.is_ask = is_ask

    def _record(self, n: Notification, write: Callable[[], object]) -> object:
        cards = self._card_writes.pop(n.id, [])

        def record() -> object:
            for card in cards:      # an upsert: writing it again after a failure is harmless
                card()
            return write()
        try:
            return record()
        except Exception as exc:
            if not self.storage.failed("delivery", exc):
                raise
            self._unrecorded[n.id] = record
            return None

    def save_card_of(self, n: Notification, request_id: int, recipient: int, channel: str, ts: str) -> None:
        """Record the card `n` just posted, to rewrite it later. When storage fails, the write
        waits for the row's own record (before anything new is claimed) instead of failing
        the delivery of a message that is out."""
        def write() -> None:
            self.outbox.save_card(request_id, recipient, channel, ts)
        try:
            write()
        except Exception as exc:
            if not self.storage.failed("delivery", exc):
                raise
            self._card_writes.setdefault(n.id, []).append(write)

    def replace_card_of(self, n: Notification, channel: str, ts: str, old: tuple[str, str] | None) -> None:
        """A reminder card `n` posted at the bottom of the DM becomes the reviewer's card: it is
        recorded, and the older card `old` (read before the post, so that a storage error
        cannot fail a post that went out) is deleted, so exactly one card with buttons stays
        and it is the one later updates rewrite."""
        self.save_card_of(n, n.request_id, n.recipient, channel, ts)
        if old and old != (channel, ts):
            try:
                self.api.call("chat.delete", channel=old[0], ts=old[1])
            except SlackError as exc:
                log.warning("older card not removed", extra={"request_id": n.request_id, "error": str(exc)})

    def flush_unrecorded(self) -> bool:
        """Write what could not be written before; False while storage still fails."""
        for key, write in list(self._unrecorded.items()):
            try:
                write()
            except Exception as exc:
                if not self.storage.failed("delivery", exc):
                    raise
                return False
            self._unrecorded.pop(key, None)
        return True

    @property
    def unrecorded(self) -> frozenset[int]:
        return frozenset(self._unrecorded)

    # --- one pass, in the caller's thread (tests, `cycle`) ---------------------------------
    def deliver_due(self, limit: int = 100) -> int:
        """Deliver what is due now, one after the other; returns how many were handled."""
        handled = 0
        if not self.flush_unrecorded():
            return 0
        for n in self.outbox.due(self.clock(), limit=limit):
            if self._stop.is_set():
                break
            if self.is_ask(n.event) and self.hold_asks():
                continue
            if self.outbox.claim(n):
                self._deliver(n)
                handled += 1
        return handled

    # --- the running relay: a dispatcher and one lane per method ---------------------------
    def run(self, stop: threading.Event, idle_seconds: float = 1.0) -> None:
        """Deliver until `stop` is set; sleeps on `wake` (set by the poll and by lanes) when idle."""
        self._stop = stop
        try:
            while not stop.is_set():
                self.wake.clear()
                try:
                    self._refresh_health_if_due()
                    # what could not be recorded first: nothing new while the database fails
                    dispatched = self.dispatch() if self.flush_unrecorded() else 0
                    wait = self._idle_wait(idle_seconds) if not self._unrecorded else idle_seconds
                except Exception as exc:   # keep the loop alive; the rows stay in the outbox
                    if not self.storage.failed("delivery", exc):
                        log.exception("delivery loop error")
                    dispatched, wait = 0, idle_seconds     # a failing database: look again in a while
                if dispatched == 0:
                    self.wake.wait(wait)
        finally:
            self._stop_lanes()

    def dispatch(self) -> int:
        """Hand due rows to their lanes (those not queued already); returns how many. A row whose
        recipient must first be looked up in Slack stays where it is while a lookup lane finds
        them (once per person), so the rows of people already known keep flowing."""
        with self._queued_lock:
            queued, resolving = set(self._queued), set(self._resolving)
        dispatched = 0
        hold = self.hold_asks()
        for n in self.outbox.due(self.clock(), limit=BATCH, exclude=queued, exclude_recipients=resolving):
            if hold and self.is_ask(n.event):
                continue
            lane_name = self.lane_of(n)
            if lane_name in (LOOKUP, OPEN) and n.recipient not in self._looked_up:
                if n.recipient not in resolving:
                    resolving.add(n.recipient)
                    with self._queued_lock:
                        self._resolving.add(n.recipient)
                    self._lane(lane_name).queue.put(("person", n.recipient))
                    dispatched += 1
                continue
            lane = self._lane(lane_name)
            if lane.queue.qsize() >= LANE_DEPTH:
                continue
            with self._queued_lock:
                self._queued.add(n.id)
            lane.queue.put(("row", n))
            dispatched += 1
        return dispatched

    def lane_of(self, n: Notification) -> str:
        """The first Slack method this notification needs (no call is made to find out). Who
        is known, and whose DM is open, is remembered once seen: the dispatcher reads whole
        batches, most of them about people it has seen."""
        if n.recipient == 0:    # a team channel's card or thread (relay.followups.CHANNEL)
            return RECONCILE if n.uncertain_since is not None else "chat.postMessage"
        slack_user = self._known.get(n.recipient) or self.directory.known_slack_user(n.recipient)
        if slack_user is None:
            return LOOKUP
        self._known[n.recipient] = slack_user
        method = self._method_for(n)
        if n.uncertain_since is not None and method == "chat.postMessage":
            return RECONCILE
        if method == "chat.postEphemeral" and slack_user not in self._open_dms:
            if not self.directory.knows_dm_channel(slack_user):
                return OPEN
            self._open_dms.add(slack_user)
        return method

    def _lane(self, name: str) -> _Lane:
        lane = self._lanes.get(name)
        if lane is None:
            lane = _Lane(name)
            self._lanes[name] = lane
            for i in range(LANE_THREADS):
                thread = threading.Thread(target=self._work, args=(lane,), name=f"ssrelay-lane-{name}-{i}",
                                          daemon=True)
                lane.threads.append(thread)
                thread.start()
        return lane

    def _work(self, lane: _Lane) -> None:
        while True:
            item = lane.queue.get()
            if item is None:
                return
            kind, what = item
            try:
                if self._stop.is_set():
                    continue
                if kind == "person":
                    self._look_up(what)
                elif self.outbox.claim(what):
                    self._deliver(what)
            except Exception as exc:   # e.g. the database is busy: the row stays pending or is recovered
                if not self.storage.failed("delivery", exc):
                    log.exception("delivery lane error", extra={"lane": lane.name})
            finally:
                with self._queued_lock:
                    if kind == "person":
                        self._resolving.discard(what)
                    else:
                        self._queued.discard(what.id)
                if lane.queue.qsize() <= LANE_DEPTH // 4:
                    self.wake.set()

    def _look_up(self, ss_user_id: int) -> None:
        """Find a person in Slack (and open the app DM) ahead of their messages. Whatever the
        outcome, their rows go to their lanes next, where failures are handled per row."""
        try:
            slack_user = self.directory.slack_user_for(ss_user_id)
            if self.mode == "ephemeral":
                self.directory.dm_channel(slack_user)
        except (Unmapped, SlackError):
            pass
        finally:
            self._looked_up.add(ss_user_id)

    def _stop_lanes(self, timeout: float = 3.0) -> None:
        lanes, self._lanes = self._lanes, {}
        for lane in lanes.values():
            for _ in lane.threads:
                lane.queue.put(None)
        deadline = time.monotonic() + timeout     # one deadline for all: a stop stays bounded
        for lane in lanes.values():
            for thread in lane.threads:
                thread.join(max(0.0, deadline - time.monotonic()))

    def _idle_wait(self, idle: float) -> float:
        nxt = self.outbox.next_due_at()
        if nxt is None or self.hold_asks():     # held asks are due but must not spin the loop
            return idle
        return max(0.01, min(idle, (nxt - self.clock()).total_seconds()))

    # --- one notification ------------------------------------------------------------------
    def _deliver(self, n: Notification) -> None:
        try:
            # recipient 0: a team channel's card (relay.followups.CHANNEL), no person to map
            slack_user = self.directory.slack_user_for(n.recipient) if n.recipient != 0 else ""
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
            found = self._already_posted(n, slack_user)
            note: str | None
            if found is not None:
                method, note = "conversations.history", found   # or conversations.replies
            elif n.uncertain_since is not None and self.is_ask(n.event) and self.outbox.drop_if_settled(n):
                # in doubt, not in Slack, and the request was settled meanwhile: never ask now
                self.metrics.deliveries.labels("none", "superseded").inc()
                return
            else:
                method, note = self._send(n, slack_user)
        except SlackOutcomeUnknown as exc:
            self._unsure(n, exc, slack_user)
            return
        except Deferred as exc:   # e.g. a reminder during the reviewer's quiet hours
            self.outbox.retry(n, str(exc), delay=exc.seconds, count_attempt=False)
            return
        except SlackError as exc:
            self._failed(n, exc, exc.method)
            return
        except Exception as exc:   # a bug or a local failure: never leave the row `sending`
            log.exception("notification could not be built or sent", extra={"event": n.event,
                                                                             "request_id": n.request_id})
            self.outbox.dead(n, f"internal error: {type(exc).__name__}")
            self.metrics.deliveries.labels("none", "internal_error").inc()
            return
        self._record(n, lambda: self.outbox.sent(n, slack_user, note))
        self._note_success()
        self.metrics.deliveries.labels(method, "ok").inc()
        log.info("notification delivered", extra={"event": n.event, "request_id": n.request_id,
                                                   "slack_user": slack_user, "method": method})
        self.on_delivered(n, slack_user)

    def _failed(self, n: Notification, exc: SlackError, method: str) -> None:
        if isinstance(exc, SlackStopping):     # never sent: back to pending for the next start
            self._record(n, lambda: self.outbox.retry(n, str(exc), delay=0, count_attempt=False))
            return
        if isinstance(exc, SlackRateLimited):
            self.metrics.slack_rate_limited.labels(method).inc()
            self._record(n, lambda: self.outbox.retry(n, str(exc), delay=exc.retry_after, count_attempt=False))
            result = "rate_limited"
        elif isinstance(exc, SlackPermanentError):
            self._record(n, lambda: self.outbox.dead(n, exc.error))
            result = "dead"
        else:
            result = str(self._record(n, lambda: self.outbox.retry(n, str(exc), delay=backoff(n.attempts + 1))))
        if not isinstance(exc, SlackPermanentError):
            self._note_failure(str(exc))
        self.metrics.deliveries.labels(method, result).inc()
        log.warning("notification not delivered", extra={"event": n.event, "request_id": n.request_id,
                                                          "error": str(exc), "result": result})

    def _unsure(self, n: Notification, exc: SlackOutcomeUnknown, slack_user: str) -> None:
        """The post may exist. An ephemeral one cannot be looked up: it counts as sent (at most
        once). A message is rescheduled; its next attempt looks for it first."""
        self._note_failure(str(exc))
        if exc.method == "chat.postEphemeral":
            self.outbox.sent(n, slack_user, f"{exc.error}: an ephemeral message cannot be looked up; "
                                            "not repeated")
            result = "unknown_not_repeated"
        else:
            result = self.outbox.unsure(n, str(exc), delay=self.unsure_retry_seconds)
        self.metrics.deliveries.labels(exc.method, result).inc()
        log.warning("Slack's answer was lost", extra={"event": n.event, "request_id": n.request_id,
                                                       "error": str(exc), "result": result})
