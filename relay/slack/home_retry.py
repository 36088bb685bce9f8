"""Home tabs whose `views.publish` failed for a reason time fixes (429, 5xx, no answer) are
published again later, through the same per-method pacing as every other call. One entry per
person: the view is rendered when the retry runs, so the latest view wins and a person whose
tab changed twice meanwhile gets one publish, of the newest.

Waiting: Retry-After for a 429, else exponential backoff with jitter (2 s doubling to 5 min);
after MAX_ATTEMPTS failures in a row the person's tab is left until the next change or visit
(`app_home_opened` publishes it anyway).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..errors import SlackError, SlackRateLimited
from ..outbox import backoff

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10


class PublishRetries:
    def __init__(self, publish: Callable[[str], object], *, stop: threading.Event,
                 clock: Callable[[], float] = time.monotonic):
        self.publish = publish          # re-renders and publishes one person's Home tab
        self.stop = stop
        self.clock = clock
        self._due: dict[str, float] = {}          # slack user -> when to publish again
        self._failures: dict[str, int] = {}       # slack user -> failures in a row
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def failed(self, slack_user: str, exc: SlackError) -> None:
        """views.publish for this person failed for a reason worth waiting out."""
        with self._cond:
            failures = self._failures.get(slack_user, 0) + 1
            self._failures[slack_user] = failures
            if failures > MAX_ATTEMPTS:
                self._due.pop(slack_user, None)
                self._failures.pop(slack_user, None)
                log.warning("home tab not published; left until the next change",
                            extra={"slack_user": slack_user, "error": str(exc)})
                return
            wait = exc.retry_after if isinstance(exc, SlackRateLimited) else backoff(failures)
            self._due[slack_user] = self.clock() + wait
            self._cond.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self.run, name="ssrelay-home-retry", daemon=True)
                self._thread.start()

    def succeeded(self, slack_user: str) -> None:
        with self._cond:
            self._due.pop(slack_user, None)
            self._failures.pop(slack_user, None)

    def pending(self) -> dict[str, float]:
        with self._cond:
            return dict(self._due)

    def run_due(self) -> int:
        """Publish again every Home tab whose time has come; returns how many were tried."""
        now = self.clock()
        with self._cond:
            due = [u for u, when in self._due.items() if when <= now]
            for user in due:
                del self._due[user]
        for user in due:
            if self.stop.is_set():
                break
            try:
                self.publish(user)      # a new failure calls failed() again
            except Exception:
                log.exception("home tab retry failed", extra={"slack_user": user})
        return len(due)

    def run(self) -> None:
        while not self.stop.is_set():
            self.run_due()
            with self._cond:
                nxt = min(self._due.values(), default=None)
                wait = 1.0 if nxt is None else max(0.01, min(1.0, nxt - self.clock()))
                self._cond.wait(wait)
