"""What the running relay says about itself, from memory where it can: readiness (/readyz),
the Prometheus page (/metrics), and the ack latency of Slack's HTTP requests."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from .config import Config
from .metrics import Metrics
from .outbox import Outbox
from .poller import Poller
from .slack.api import SlackApi
from .slack.delivery import Delivery
from .store.health import StorageHealth
from .store.local import ThreadLocalDb
from .web.app import WebApp, json_response


class Observability:
    """Part of `Relay` (its constructor sets these; readiness is refreshed by the heartbeat and
    the poll, so /readyz answers at once even when the database is locked)."""

    cfg: Config
    db: ThreadLocalDb
    metrics: Metrics
    storage: StorageHealth
    slack: SlackApi
    delivery: Delivery
    poller: Poller
    web: WebApp
    _slack_ok: tuple[float, bool, str]
    _db_problem: str
    _last_poll_error: str

    def _measure_outbox(self) -> None:
        backlog = Outbox(self.db).backlog()
        for state in ("pending", "sending", "sent", "dead", "superseded"):
            self.metrics.outbox_depth.labels(state).set(backlog.get(state, 0))

    # --- HTTP handlers ---------------------------------------------------------------------
    def _time_slack_acks(self) -> None:
        """Observe the ack latency of every Slack HTTP request (the 3-second budget)."""
        for (method, path), handler in list(self.web.routes.items()):
            if method == "POST" and path.startswith(("/slack/", "/api/v1/slack/")):
                def timed(environ, handler=handler):
                    started = time.perf_counter()
                    try:
                        return handler(environ)
                    finally:
                        self.metrics.ack_latency.observe(time.perf_counter() - started)
                self.web.route(method, path, timed)

    def readiness(self) -> tuple[bool, list[str]]:
        problems = []
        last = self.poller.last_success      # this process's, not a previous run's (in the DB)
        limit = 3 * self.cfg.poll.interval_seconds
        if last is None:
            problems.append("no successful poll of Secret Server yet")
        else:
            age = (datetime.now(timezone.utc) - last).total_seconds()
            if age > limit:
                err = self._last_poll_error
                problems.append(f"last successful poll was {age:.0f}s ago (limit {limit:g}s); {err}".strip("; "))
        # A full or locked database, as the last writes found it (the heartbeat writes every 2 s).
        if storage := self.storage.reason() or self._db_problem:
            problems.append(storage)
        _, ok, why = self._slack_ok
        if not ok:
            problems.append(f"Slack not reachable: {why}")
        if problem := self.delivery.health_problem():
            problems.append(problem)
        return not problems, problems

    def slack_reachable(self, max_age: float = 30.0) -> tuple[bool, str]:
        at, ok, why = self._slack_ok
        if time.monotonic() - at > max_age:
            try:
                self.slack.call("auth.test")
                ok, why = True, ""
            except Exception as exc:
                ok, why = False, str(exc)
            self._slack_ok = (time.monotonic(), ok, why)
        return ok, why

    def readyz(self, environ: dict):
        ok, problems = self.readiness()
        return json_response(200 if ok else 503, {"ready": ok, "problems": problems})

    def readyz_public(self, environ: dict):
        """The public answer when an admin listener exists: ready or not, without the causes."""
        ok, _ = self.readiness()
        return json_response(200 if ok else 503, {"ready": ok})

    def metrics_page(self, environ: dict):
        self._measure_outbox()
        self.metrics.linked_users.set(self.db.execute("SELECT COUNT(*) FROM slack_links").fetchone()[0])
        self.metrics.unmapped_reviewers.set(self.db.execute("SELECT COUNT(*) FROM unmapped_people").fetchone()[0])
        return 200, [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], self.metrics.render()
