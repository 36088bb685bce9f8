"""Delivery: drains the outbox into Slack, in order per (request, recipient), in one lane per
Slack method, paced per method, with Retry-After, backoff and dead letters.

Which Slack method carries an event depends on the message mode:
- approval_requested: ephemeral -> chat.postEphemeral in the app DM; dm -> chat.postMessage (card kept)
- canceled: the reviewer's card is rewritten when there is one, else a notice is posted
- review_closed: the reviewer's card is rewritten (nothing when there is no card)
- approved / denied / expired: chat.postMessage to the requester (persistent: they are waiting)

Lanes: `run()` hands each due notification to the lane of the first Slack method it needs
(users.lookupByEmail for someone not looked up yet, conversations.open for a DM channel not
opened yet, else the method that carries it), one thread per lane, so a slow or rate-limited
method never holds up the others. Order per (request, recipient) holds across lanes: the next
row of a pair is not due until the one before it is finished (`Outbox.due`).

Ambiguous answers: a post whose answer was lost (SlackOutcomeUnknown) may exist in Slack.
Every chat.postMessage carries message metadata with the outbox key, and before such a row is
posted again the conversation is searched for that key (conversations.history with
include_all_metadata, from the first uncertain claim on: the DM, or a team channel; a reply in
a channel card's thread with conversations.replies); when found, the row is recorded as
sent. Ephemeral messages cannot be looked up: they are sent at most once on an ambiguous answer
(README "Delivery guarantees").
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable


from ..errors import SlackError, SlackOutcomeUnknown, SlackPermanentError, SlackRateLimited, SlackStopping
from ..followups import CHANNEL, CHANNEL_CARD, CHANNEL_CLOSED, is_channel_step
from ..metrics import Metrics
from ..model import request_from_dict
from ..outbox import Notification, Outbox, backoff
from ..reminders import Deferred
from ..store.health import StorageHealth
from ..store.handle import Store
from .. import sync
from . import blocks
from .api import SlackApi
from .directory import Directory, Unmapped

log = logging.getLogger(__name__)

# Message metadata on every post: the outbox key, so a post whose answer was lost can be found.
METADATA_EVENT_TYPE = "ssrelay_notification"
# Look this much before the uncertain claim: the relay's and Slack's clocks may differ a little.
RECONCILE_MARGIN = timedelta(seconds=60)
RECONCILE_PAGE = 100          # messages per conversations.history page
RECONCILE_MAX_PAGES = 5       # a DM holds few messages since the claim; past this, post again
# After a lost answer, wait this long before looking: a slow Slack has finished by then.
UNSURE_RETRY_SECONDS = 5.0
# Lanes: at most this many notifications queued per lane; the dispatcher reads this many due
# rows per batch.
LANE_DEPTH = 32
BATCH = 100
NO_CALL = "none"              # rows that need no Slack call (no card to close)
LOOKUP, OPEN = "users.lookupByEmail", "conversations.open"
HEALTH_REFRESH_SECONDS = 2.0
FOUND = "found in Slack after an unanswered call"


def metadata(n: Notification) -> dict:
    return {"event_type": METADATA_EVENT_TYPE, "event_payload": {"key": n.key}}


class _Lane:
    def __init__(self, name: str, thread: threading.Thread):
        self.name = name
        self.queue: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self.thread = thread


class Delivery:
    def __init__(self, db: Store, api: SlackApi, directory: Directory, *,
                 mode: str, secret_url: Callable[[int], str], default_hours: float,
                 metrics: Metrics | None = None, owner: str | None = None,
                 request_url: Callable[[int, int], str] | None = None,
                 failing_limit: float = 300.0, pending_limit: float = 900.0,
                 launchable: Callable[[str, int], bool] | None = None,
                 hold_asks: Callable[[], bool] | None = None):
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
        self.failing_limit = failing_limit
        self.pending_limit = pending_limit
        self._health_lock = threading.Lock()
        self._failing_since: datetime | None = None
        self._last_error = ""
        self._oldest_pending: datetime | None = None
        self._health_at: datetime | None = None
        # Lanes (run() only)
        self._lanes: dict[str, _Lane] = {}
        self._queued: set[int] = set()
        self._resolving: set[int] = set()
        self._looked_up: set[int] = set()   # people whose lookup was tried by this process
        self._known: dict[int, str] = {}    # SS user -> Slack user, as seen by lane_of
        self._open_dms: set[str] = set()    # Slack users whose app DM is known to be open
        self._queued_lock = threading.Lock()
        self._stop = threading.Event()
        # Which events are held with the approval messages (relay.slack.followup_sender adds
        # its confirmations, channel cards and reminders: all moot once the request is decided).
        self.is_ask: Callable[[str], bool] = lambda event: event == sync.APPROVAL_REQUESTED
        # Follow-ups beyond SS's own bot (relay.slack.followup_sender): senders per event kind
        # (a name ending in "*": every event starting with the rest),
        # the reminders' sender, and extra facts on approval cards.
        self.handlers: dict[str, Callable[[Notification, str], tuple[str, str | None]]] = {}
        self.reminder_handler: Callable[[Notification, str], tuple[str, str | None]] | None = None
        self.decorate_card: Callable[[Notification, list], list] = lambda n, blks: blks
        self.storage = StorageHealth()
        # What happened to a claimed row whose write could not be made (disk full, lock): kept
        # here and written before anything new is claimed, so a message Slack took is marked
        # sent instead of being sent again.
        self._unrecorded: dict[int, Callable[[], object]] = {}

    def _record(self, n: Notification, write: Callable[[], object]) -> object:
        try:
            return write()
        except Exception as exc:
            if not self.storage.failed("delivery", exc):
                raise
            self._unrecorded[n.id] = write
            return None

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
            return "chat.postMessage"
        slack_user = self._known.get(n.recipient) or self.directory.known_slack_user(n.recipient)
        if slack_user is None:
            return LOOKUP
        self._known[n.recipient] = slack_user
        method = self._method_for(n)
        if method == "chat.postEphemeral" and slack_user not in self._open_dms:
            if not self.directory.knows_dm_channel(slack_user):
                return OPEN
            self._open_dms.add(slack_user)
        return method

    def _method_for(self, n: Notification) -> str:
        if n.event == sync.APPROVAL_REQUESTED or n.event.startswith("reminder_"):
            return "chat.postMessage" if self.mode == "dm" else "chat.postEphemeral"
        if n.event in (sync.CANCELED_NOTICE, sync.REVIEW_CLOSED):
            if self.outbox.card(n.request_id, n.recipient):
                return "chat.update"
            if n.event == sync.REVIEW_CLOSED:
                return NO_CALL
            return "chat.postMessage" if self.mode == "dm" else "chat.postEphemeral"
        return "chat.postMessage"

    def _lane(self, name: str) -> _Lane:
        lane = self._lanes.get(name)
        if lane is None:
            thread = threading.Thread(target=lambda: self._work(lane_ref[0]), name=f"ssrelay-lane-{name}",
                                      daemon=True)
            lane = _Lane(name, thread)
            lane_ref = [lane]
            self._lanes[name] = lane
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
            lane.queue.put(None)
        for lane in lanes.values():
            lane.thread.join(timeout)

    def _idle_wait(self, idle: float) -> float:
        nxt = self.outbox.next_due_at()
        if nxt is None or self.hold_asks():     # held asks are due but must not spin the loop
            return idle
        return max(0.01, min(idle, (nxt - self.clock()).total_seconds()))

    # --- health (read by /readyz from memory) ----------------------------------------------
    def health_problem(self, now: datetime | None = None) -> str | None:
        """Why delivery is unhealthy, or None: deliveries have failed (and none succeeded) for
        longer than `failing_limit` seconds, or the oldest notification still owed is older
        than `pending_limit` seconds. Reads only memory: never waits on the database."""
        now = now or self.clock()
        with self._health_lock:
            failing, error, oldest = self._failing_since, self._last_error, self._oldest_pending
        if failing is not None and (now - failing).total_seconds() > self.failing_limit:
            return (f"Slack deliveries failing for {(now - failing).total_seconds():.0f}s "
                    f"(limit {self.failing_limit:g}s): {error}")
        if oldest is not None and (now - oldest).total_seconds() > self.pending_limit:
            return (f"oldest pending notification is {(now - oldest).total_seconds():.0f}s old "
                    f"(limit {self.pending_limit:g}s)")
        return None

    def refresh_health(self) -> None:
        """Read the oldest pending notification's age (one index lookup) into memory."""
        oldest = self.outbox.oldest_pending_at()
        with self._health_lock:
            self._oldest_pending = oldest
            self._health_at = self.clock()

    def _refresh_health_if_due(self) -> None:
        at = self._health_at
        if at is None or (self.clock() - at).total_seconds() >= HEALTH_REFRESH_SECONDS:
            self.refresh_health()

    def _note_success(self) -> None:
        with self._health_lock:
            self._failing_since = None
            self._last_error = ""

    def _note_failure(self, error: str) -> None:
        with self._health_lock:
            if self._failing_since is None:
                self._failing_since = self.clock()
            self._last_error = error

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

    def _already_posted(self, n: Notification, slack_user: str) -> str | None:
        """For a row in doubt that would be posted with chat.postMessage: look for its key where
        it would have gone since the uncertain claim (the DM, the team channel, or the channel
        card's thread). Returns the note to record when it is there."""
        if n.uncertain_since is None:
            return None
        oldest = (n.uncertain_since - RECONCILE_MARGIN).timestamp()
        params: dict[str, Any] = {"oldest": f"{oldest:.6f}", "inclusive": True,
                                  "limit": RECONCILE_PAGE, "include_all_metadata": True}
        if n.recipient == CHANNEL:
            if is_channel_step(n.event):   # chat.update: rewriting again is harmless
                return None
            if n.event == CHANNEL_CARD:
                channel = str(n.payload.get("channel") or "")
                found = self._find(n, "conversations.history", {"channel": channel, **params})
                if found is None:
                    return None
                self.outbox.save_card(n.request_id, CHANNEL, channel, str(found["ts"]))
                return FOUND
            # A reply in the card's thread (a reminder, the closing reply): only replies are
            # listed there, conversations.history shows the parent alone.
            card = self.outbox.card(n.request_id, CHANNEL)
            if card is None:
                return None
            found = self._find(n, "conversations.replies", {"channel": card[0], "ts": card[1], **params})
            if found is None:
                return None
            if n.event == CHANNEL_CLOSED:   # the reply follows the card's rewrite: both are done
                self.outbox.close_card(n.request_id, CHANNEL)
            return FOUND
        if self._method_for(n) != "chat.postMessage":
            return None
        channel = self.directory.dm_channel(slack_user)
        found = self._find(n, "conversations.history", {"channel": channel, **params})
        if found is None:
            return None
        if n.event == sync.APPROVAL_REQUESTED and self.mode == "dm":
            self.outbox.save_card(n.request_id, n.recipient, channel, str(found["ts"]))
        return FOUND

    def _find(self, n: Notification, method: str, params: dict[str, Any]) -> dict | None:
        """The message carrying `n`'s key among the pages `method` lists, else None."""
        cursor: str | None = None
        for _ in range(RECONCILE_MAX_PAGES):
            try:
                data = self.api.call(method, **params, **({"cursor": cursor} if cursor else {}))
            except SlackPermanentError as exc:   # e.g. missing_scope: post again rather than drop it
                log.warning("cannot look for a message whose answer was lost; posting it again",
                            extra={"request_id": n.request_id, "error": exc.error})
                return None
            for m in data.get("messages") or []:
                meta = m.get("metadata") or {}
                if meta.get("event_type") == METADATA_EVENT_TYPE and \
                        (meta.get("event_payload") or {}).get("key") == n.key:
                    return dict(m)
            cursor = ((data.get("response_metadata") or {}).get("next_cursor")) or None
            if not data.get("has_more") or not cursor:
                break
        return None

    def _send(self, n: Notification, slack_user: str) -> tuple[str, str | None]:
        req = request_from_dict(n.payload["request"])
        ctx = n.payload
        url = self.secret_url(req.secret_id)
        handler = self.handlers.get(n.event) or (
            self.reminder_handler if n.event.startswith("reminder_") else None) or next(
            (h for name, h in self.handlers.items() if name.endswith("*") and n.event.startswith(name[:-1])), None)
        if handler is not None:
            return handler(n, slack_user)
        if n.event == sync.APPROVAL_REQUESTED:
            text, blks = blocks.approval_card(
                req, ctx, secret_url=url, default_hours=self.default_hours,
                request_url=self.request_url(req.id, req.secret_id) if self.request_url else "")
            blks = self.decorate_card(n, blks)
            if self.mode == "dm":
                data = self.api.call("chat.postMessage", channel=slack_user, text=text, blocks=blks, metadata=metadata(n))
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
                self.api.call("chat.postMessage", channel=slack_user, text=text, blocks=blks, metadata=metadata(n))
                return "chat.postMessage", None
            channel = self.directory.dm_channel(slack_user)
            self.api.call("chat.postEphemeral", channel=channel, user=slack_user, text=text, blocks=blks)
            return "chat.postEphemeral", None
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
