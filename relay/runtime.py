"""The composition root and the running relay: builds the parts from a Config (never at
import time; the Slack side and the SS clients come from relay.parts) and runs them in one
process: the poll schedule, heartbeat, outbox delivery, the HTTP server, and the stop.
Readiness and /metrics: relay.observability."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from . import listen, memory, nudge, retention, sync
from .config import Config
from .followups import FollowupPolicy, Followups
from .identity import EmailBinding
from .logs import REDACTOR
from .metrics import Metrics
from .observability import Observability
from .parts import PEOPLE_RETRY_SECONDS, POLL_RETRY_SECONDS, build_interactions, build_ss_client
from .poller import Poller, PollResult
from .reminders import ReminderPolicy
from .secrets import Secrets
from .sessions import Sessions
from .slack.api import Pacer, SlackApi, make_client
from .slack.delivery import Delivery
from .slack.directory import Directory
from .slack.endpoint import SLACK_PATHS
from .slack.followup_sender import FollowupSender
from .store import db as store
from .store.health import StorageHealth
from .store.local import ThreadLocalDb
from .web.app import MAX_BODY_BYTES, WebApp, json_response

# Built in relay.parts, kept importable from here.
__all__ = ["Relay", "build_ss_client", "build_interactions", "POLL_RETRY_SECONDS", "PEOPLE_RETRY_SECONDS"]

log = logging.getLogger(__name__)

# A relay whose heartbeat is older than 3 poll intervals (and at least this) has stopped: its
# in-flight notifications are sent again by whoever runs next.
MIN_HEARTBEAT_GRACE_SECONDS = 5.0
HEARTBEAT_SECONDS = 2.0
RETENTION_SECONDS = 3600.0
CHECKPOINT_SECONDS = 60.0     # the WAL is truncated this often (and whenever SQLite auto-checkpoints)
# The HTTP loop waits this long for a socket to be ready, then looks at the stop flag. It is
# passed to select() here, not through waitress's `asyncore_loop_timeout`, which waitress
# casts to int: 0.2 would become 0, a select() that never waits, and a thread spinning a core.
HTTP_TICK_SECONDS = 0.2
ADMIN_KEYS = ("http.admin_host", "http.admin_port")
# SIGTERM to exit: what is in flight gets this long to finish, then it is released (back to
# pending) and the process exits; a container's stop timeout must be longer (README).
STOP_GRACE_SECONDS = 3.5


class Relay(Observability):
    def __init__(self, cfg: Config, *, metrics: Metrics | None = None):
        self.cfg = cfg
        REDACTOR.add(cfg.secret_server.password.value, cfg.slack.bot_token.value,
                     cfg.slack.signing_secret.value, cfg.slack.app_token.value, cfg.storage.encryption_key.value)
        self.metrics = metrics or Metrics()
        # One SQLite connection per thread (poll, delivery, web, workers): a transaction on a
        # shared connection would let one thread's writes slip into another's.
        self.db = ThreadLocalDb(cfg.storage.path, busy_timeout=float(cfg.storage.busy_timeout_seconds))
        # A full disk or a long lock degrades the relay (a /readyz reason, a line a minute), it
        # never stops it: writes that fail are retried by whoever made them.
        self.storage = StorageHealth(volume=os.path.dirname(os.path.abspath(cfg.storage.path)))
        self._migrated = False
        self.migrate()
        self.ss = build_ss_client(cfg)
        # People's own calls (clicks, search, sign-in): someone is waiting in Slack, so a
        # shorter retry budget than the poll's; an outage becomes a sentence within seconds.
        self.people_ss = build_ss_client(cfg, retry_seconds=PEOPLE_RETRY_SECONDS)
        self.stop_event = threading.Event()
        self.process_id = uuid.uuid4().hex     # owner of this process's outbox claims
        self.slack = SlackApi(make_client(cfg.slack.api_url, cfg.slack.bot_token.value),
                              Pacer(cfg.slack.rate_limits, stop=self.stop_event))
        self.slack.stopping = self.stop_event
        self.directory = Directory(self.db, self.slack, match_by_email=cfg.users.match_by_email,
                                   cache_ttl=timedelta(hours=cfg.users.email_cache_hours),
                                   links_need_proof=cfg.users.signin_requires_email_match)
        # People's SS sessions (needs storage.encryption_key: a clear start-up error names it
        # and `ssrelay keygen`), and what they can do with secrets through them.
        self.sessions = Sessions(self.db, self.people_ss, cfg.storage.encryption_key.value,
                                 identity=EmailBinding(self.slack, required=cfg.users.signin_requires_email_match))
        self.secrets = Secrets(self.sessions)
        self.delivery = Delivery(self.db, self.slack, self.directory, mode=cfg.slack.approver_messages,
                                 secret_url=cfg.secret_url, default_hours=cfg.approvals.default_duration_hours,
                                 metrics=self.metrics, owner=self.process_id, request_url=cfg.request_url,
                                 failing_limit=cfg.slack.unready_after_failing_seconds,
                                 pending_limit=cfg.slack.unready_after_pending_seconds,
                                 launchable=self.secrets.launchable,
                                 # approval messages owed from before this start wait for this
                                 # process's first good poll
                                 hold_asks=lambda: self.poller.last_success is None,
                                 storage=self.storage)
        policy = sync.Policy(reviewer_cards=cfg.slack.approver_messages == "dm",
                             notify_expiry=cfg.approvals.notify_expiry)
        self.poller = Poller(self.db, self.ss, policy=policy, catch_up_hours=cfg.poll.catch_up_hours,
                             metrics=self.metrics, storage=self.storage)
        self.poller.listeners.append(self._after_poll)
        # Follow-ups: confirmations, reminders, team-channel cards, richer approval cards
        a = cfg.approvals
        self.followups = Followups(FollowupPolicy(
            confirm_to_requester=a.confirm_to_requester,
            reminders=ReminderPolicy(after_minutes=float(a.remind_after_minutes)),
            routes=tuple(cfg.channels)))
        self.poller.on_diff.append(self.followups.on_poll)
        FollowupSender(self.delivery, sensitive_folders=a.sensitive_folders).install()
        self.web = WebApp()
        self.web.route("GET", "/healthz", lambda env: json_response(200, {"status": "ok"}))
        # With http.admin_port set, /metrics and the detailed /readyz move to a second listener
        # (keep it internal); the public /readyz then says only whether the relay is ready.
        self.admin_web: WebApp | None = None
        if cfg.http.admin_port is None:
            self.web.route("GET", "/readyz", self.readyz)
            self.web.route("GET", "/metrics", self.metrics_page)
        else:
            self.web.route("GET", "/readyz", self.readyz_public)
            self.admin_web = WebApp()
            self.admin_web.route("GET", "/healthz", lambda env: json_response(200, {"status": "ok"}))
            self.admin_web.route("GET", "/readyz", self.readyz)
            self.admin_web.route("GET", "/metrics", self.metrics_page)
        # Slack interactions: clicks, the Home tab, sign-in, Socket Mode
        self.interactions = build_interactions(cfg, self.db, self.slack, self.people_ss, self.sessions,
                                               self.secrets, stop=self.stop_event,
                                               wake_delivery=self.delivery.wake.set)
        for path in SLACK_PATHS:
            self.web.route("POST", path, self.interactions.endpoint.handle_http)
        self.web.route("GET", "/signin", self.interactions.signin.get)
        self.web.route("POST", "/signin", self.interactions.signin.post)
        self.poller.listeners.append(self.interactions.home.after_poll)
        self._time_slack_acks()
        REDACTOR.add(cfg.nudge.token.value)     # POST /ss/nudge: poll now (only with [nudge] token)
        self.nudger = nudge.mount(self.web, cfg.nudge.token.value, self.tick, self.stop_event)
        self._scheduler: BackgroundScheduler | None = None
        self._threads: list[threading.Thread] = []
        self._server = None
        self._admin_server = None
        # Readiness is kept in memory, refreshed by the heartbeat and the poll: /readyz reads
        # it without touching SQLite or Slack, so it answers at once even when the DB is locked.
        self._slack_ok: tuple[float, bool, str] = (0.0, False, "not checked yet")
        self._db_problem = ""
        self._last_poll_error = ""

    # --- lifecycle -------------------------------------------------------------------------
    def migrate(self) -> bool:
        """Apply pending migrations; on a full or locked database, say so and try again at the
        next tick (the HTTP endpoints and `ssrelay status` work meanwhile)."""
        if self._migrated:
            return True
        try:
            applied = store.migrate(self.db.get())
        except Exception as exc:
            if not self.storage.failed("migrate", exc):
                raise
            return False
        self._migrated = True
        if applied:
            log.info("database migrated", extra={"applied": ",".join(applied)})
        return True

    def tick(self) -> None:
        """One scheduled round: take back the in-flight notifications of relays that stopped,
        then poll."""
        if not self.migrate():
            return
        try:
            self.recover_stopped_peers()
        except Exception as exc:       # e.g. the database is busy: the poll still runs
            if not self.storage.failed("recovery", exc):
                log.exception("could not check for stopped relays")
        result = self.poller.poll_once()
        self._last_poll_error = "" if result.ok else f"{self.poller.clock().isoformat()} {result.error}"

    def heartbeat(self) -> None:
        """Runs on its own schedule, so a long poll never makes this relay look stopped. Its
        write is also the readiness probe of the database, and it re-checks Slack (at most
        every 30 s) for /readyz. A full or locked database is one line a minute, not a
        traceback every 2 s."""
        if self._migrated:
            try:
                self.delivery.outbox.heartbeat()
                self._db_problem = ""
                self.storage.ok()
            except Exception as exc:  # sqlite3.Error and OSError alike
                if not self.storage.failed("heartbeat", exc):
                    log.exception("heartbeat not recorded")
                self._db_problem = f"database not writable: {exc}"
        self.slack_reachable()

    def checkpoint(self) -> None:
        """Fold the WAL back into the database and truncate it, so it cannot fill the volume;
        and give the C heap's free memory back (relay.memory)."""
        try:
            store.checkpoint(self.db.get())
        except Exception as exc:
            if not self.storage.failed("checkpoint", exc):
                log.exception("WAL checkpoint failed")
        memory.trim()

    def prune(self) -> None:
        """Delete what retention no longer keeps (hourly)."""
        try:
            retention.prune(self.db, now=datetime.now(UTC), days=self.cfg.storage.retention_days)
        except Exception:
            log.exception("old records not pruned")

    def recover_stopped_peers(self) -> int:
        outbox = self.delivery.outbox
        outbox.heartbeat()
        stale = max(3 * self.cfg.poll.interval_seconds, MIN_HEARTBEAT_GRACE_SECONDS)
        recovered = outbox.recover(alive_since=datetime.now(timezone.utc) - timedelta(seconds=stale))
        if recovered:
            log.warning("re-sending notifications interrupted by a stop", extra={"count": recovered})
            self.delivery.wake.set()
        return recovered

    def start(self, *, http: bool = True, listening: socket.socket | None = None,
              admin_listening: socket.socket | None = None) -> "Relay":
        """Start every part. `listening` (and `admin_listening`): the HTTP sockets `ssrelay run`
        bound before anything else (see relay.listen); without them the server binds
        http.host:http.port (and http.admin_host:http.admin_port) itself."""
        try:
            if self._migrated:
                self.recover_stopped_peers()
        except Exception as exc:       # a full disk at start: serve /readyz, retry at each tick
            if not self.storage.failed("start", exc):
                raise
        self._scheduler = BackgroundScheduler(timezone=timezone.utc)
        self._scheduler.add_job(self.tick, "interval", seconds=self.cfg.poll.interval_seconds,
                                id="poll", max_instances=1, coalesce=True,
                                next_run_time=datetime.now(timezone.utc), misfire_grace_time=None)
        self._scheduler.add_job(self.heartbeat, "interval", seconds=HEARTBEAT_SECONDS, id="heartbeat",
                                max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
        self._scheduler.add_job(self.prune, "interval", seconds=RETENTION_SECONDS, id="retention",
                                max_instances=1, coalesce=True)
        self._scheduler.add_job(self.checkpoint, "interval", seconds=CHECKPOINT_SECONDS, id="checkpoint",
                                max_instances=1, coalesce=True)
        self._scheduler.start()
        self._spawn("delivery", self._deliver)
        if http:
            from waitress.server import create_server
            listening = listening or listen.bind(self.cfg.http.host, self.cfg.http.port)
            self._server = server = create_server(self.web, sockets=[listening], threads=8, ident="ssrelay",
                                                  max_request_body_size=MAX_BODY_BYTES)
            if self.admin_web is not None:   # same event loop (one map), its own small thread pool
                admin_listening = admin_listening or listen.bind(
                    self.cfg.http.admin_host, int(self.cfg.http.admin_port or 0), keys=ADMIN_KEYS)
                self._admin_server = create_server(self.admin_web, map=server._map, sockets=[admin_listening],
                                                   threads=2, ident="ssrelay",
                                                   max_request_body_size=MAX_BODY_BYTES)
                log.info("admin http server listening", extra={"port": self.admin_port})
            self._spawn("http", self._serve_http)
            log.info("http server listening", extra={"port": self.port})
        self.interactions.start()   # the Socket Mode client when slack.mode = "socket"
        return self

    def _deliver(self) -> None:
        """The delivery loop, once the database is migrated (a full disk can delay that)."""
        while not self._migrated:
            if self.stop_event.wait(1.0):
                return
        self.delivery.run(self.stop_event)

    def _serve_http(self) -> None:
        """waitress's own `run()`, one tick at a time, so `stop()` can end it before closing
        the sockets (closing them under a running select() raises EBADF in this thread)."""
        server = self._server
        while server is not None and not self.stop_event.is_set():
            server.asyncore.loop(timeout=HTTP_TICK_SECONDS, map=server._map,
                                 use_poll=server.adj.asyncore_use_poll, count=1)

    @property
    def port(self) -> int:
        return int(self._server.effective_port) if self._server else 0   # a str for a given socket

    @property
    def admin_port(self) -> int:
        return int(self._admin_server.effective_port) if self._admin_server else 0

    def _spawn(self, name: str, target) -> None:
        t = threading.Thread(target=target, name=f"ssrelay-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop every part within about `grace` seconds; safe to call more than once.

        No new work is taken (no claim, no paced call once the stop is set); a Slack call in
        flight gets until the grace ends, then its row is released (back to pending, sent by
        the next start). A poll stuck on Secret Server is not waited for: it has written
        nothing yet, and its transaction is all or nothing."""
        deadline = time.monotonic() + grace
        self.stop_event.set()
        self.delivery.wake.set()
        scheduler, self._scheduler = self._scheduler, None
        if scheduler:
            scheduler.shutdown(wait=False)
        threads, self._threads = self._threads, []
        for t in threads:       # the HTTP loop ends at its next tick (stop_event)
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        server, self._server = self._server, None
        admin, self._admin_server = self._admin_server, None
        for s in (admin, server):
            if s:
                s.close()      # after its loop stopped: no select() on a closed socket
        self._release_claims()
        # Socket Mode client and worker pools: a click stuck on Secret Server must not hold
        # the stop past its grace.
        closing = threading.Thread(target=self.interactions.stop, name="ssrelay-stop-interactions", daemon=True)
        closing.start()
        closing.join(timeout=max(0.5, deadline - time.monotonic()))
        self.ss.close()
        self.people_ss.close()
        self.db.close()             # every thread's SQLite connection (and its file descriptors)

    def _release_claims(self) -> None:
        """Rows this process claimed and did not finish go back to pending; a clean stop: the
        next relay need not wait for our heartbeat."""
        try:
            self.delivery.flush_unrecorded()
            with self.db.atomic():
                released = self.delivery.outbox.release(exclude=self.delivery.unrecorded)
                self.db.execute("DELETE FROM relay_processes WHERE id = ?", [self.process_id])
            if released:
                log.warning("in-flight notifications released for the next start", extra={"count": released})
        except Exception as exc:
            if not self.storage.failed("stop", exc):
                log.exception("could not release this process's notifications")

    def _after_poll(self, result: PollResult) -> None:
        if result.added:
            self.delivery.wake.set()
        self._measure_outbox()
