"""Delivery's health, kept in memory so readiness (/readyz) never touches the database:
how long deliveries have been failing, and how old the oldest notification still owed is."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Callable

from ..outbox import Outbox

HEALTH_REFRESH_SECONDS = 2.0


class DeliveryHealth:
    """Part of `Delivery`: call `_init_health` from its constructor."""

    outbox: Outbox
    clock: Callable[[], datetime]

    def _init_health(self, failing_limit: float, pending_limit: float) -> None:
        self.failing_limit = failing_limit
        self.pending_limit = pending_limit
        self._health_lock = threading.Lock()
        self._failing_since: datetime | None = None
        self._last_error = ""
        self._oldest_pending: datetime | None = None
        self._health_at: datetime | None = None

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
