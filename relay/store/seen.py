"""Deliveries already handled, shared by every thread and relay on one database: Events API
retries by `event_id` (table `seen_events`) and replayed clicks by their key (`seen_clicks`).
Old rows are pruned now and then, on a fraction of the inserts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from .handle import Store

SEEN_EVENTS_KEEP = timedelta(days=2)
SEEN_CLICKS_KEEP = timedelta(hours=1)   # well past the 5-minute signature window


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SeenDeliveries:
    def __init__(self, db: Store, *, clock: Callable[[], datetime] = _now):
        self.db = db
        self.clock = clock

    def first_delivery(self, event_id: str) -> bool:
        """True the first time this Events API event is seen."""
        now = self.clock()
        with self.db.atomic():
            first = self.db.execute("INSERT OR IGNORE INTO seen_events (event_id, seen_at) VALUES (?, ?)",
                                    [event_id[:200], now.isoformat()]).rowcount == 1
            if first and hash(event_id) % 100 == 0:
                self.db.execute("DELETE FROM seen_events WHERE seen_at < ?",
                                [(now - SEEN_EVENTS_KEEP).isoformat()])
        return first

    def first_click(self, key: str) -> bool:
        """True the first time this click is seen (by any thread or relay on this database)."""
        now = self.clock()
        with self.db.atomic():
            first = self.db.execute("INSERT OR IGNORE INTO seen_clicks (click_key, seen_at) VALUES (?, ?)",
                                    [key, now.isoformat()]).rowcount == 1
            if first and int(key[:2], 16) < 3:   # about one insert in 85 prunes the old ones
                self.db.execute("DELETE FROM seen_clicks WHERE seen_at < ?",
                                [(now - SEEN_CLICKS_KEEP).isoformat()])
        return first
