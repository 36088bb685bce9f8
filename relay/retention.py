"""Retention: what the relay keeps only for a while. Sent and superseded notifications,
settled requests and expired sign-in links older than `storage.retention_days` are deleted,
in small batches (one short write transaction each, so a poll or a click never waits long),
on an hourly schedule (runtime.Relay).

A settled request is kept while anything about it is still owed (an outbox row pending or
sending) and, when Approved, until its access window has ended: it may still turn Expired,
and that is told from the snapshot. Dead letters are kept: they are what `ssrelay status`
shows an operator.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from .outbox import Outbox
from .store.handle import Store

log = logging.getLogger(__name__)

BATCH = 500


def _batches(db: Store, sql: str, params: list, batch: int) -> int:
    total = 0
    while True:
        with db.atomic():
            n = db.execute(sql, [*params, batch]).rowcount
        total += n
        if n < batch:
            return total


def prune(db: Store, *, now: datetime, days: float, batch: int = BATCH) -> dict[str, int]:
    """Delete what is older than `days`; returns how many rows of each kind went."""
    cutoff = (now - timedelta(days=days)).isoformat()
    outbox = Outbox(db)
    sent = 0
    while True:
        n = outbox.prune(now - timedelta(days=days), batch)
        sent += n
        if n < batch:
            break
    requests = _batches(db, """
        DELETE FROM access_requests WHERE id IN (
            SELECT a.id FROM access_requests a
            WHERE a.status != 'Pending' AND a.updated_at < ?
              AND (a.status != 'Approved' OR a.expires_at IS NULL OR a.expires_at < ?)
              AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.request_id = a.id
                              AND o.state IN ('pending', 'sending'))
            LIMIT ?)""", [cutoff, cutoff], batch)
    # Cards of requests no longer in the snapshot cannot be edited by anything any more.
    cards = _batches(db, "DELETE FROM cards WHERE rowid IN (SELECT c.rowid FROM cards c WHERE NOT EXISTS "
                         "(SELECT 1 FROM access_requests a WHERE a.id = c.request_id) LIMIT ?)", [], batch)
    states = _batches(db, "DELETE FROM signin_states WHERE state_hash IN (SELECT state_hash FROM signin_states "
                          "WHERE expires_at < ? LIMIT ?)", [cutoff], batch)
    counts = {"outbox": sent, "requests": requests, "cards": cards, "signin_states": states}
    if any(counts.values()):
        log.info("old records pruned", extra=counts)
    return counts
