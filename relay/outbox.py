"""The transactional outbox: notifications owed, claimed, sent, retried or dead-lettered.

Rows are keyed by (request, event, recipient) and inserted with the poll's snapshot update
(see store.snapshot.record_poll). A row is claimed (state `sending`, committed, with the
claiming process's id) before its Slack call and marked `sent` after it. A crash inside that
call leaves the row `sending`; once that process's heartbeat is stale, `recover()` (run at
start-up and on every tick) sends it again: that single in-flight message is the one place a
notification can arrive twice (README "Delivery guarantees", tests/test_crash_safety.py). A
live peer's in-flight rows are never taken over.

A row whose last Slack call may have taken effect unseen (a lost answer, a timeout, a stop
inside the call) carries `uncertain_since`: the delivery looks for it in Slack before posting
it again (slack/delivery.py).

Every query here reads through an index and touches O(1) rows per message (claim, finish) or
O(batch) rows per batch (`due`), whatever the backlog (bench/bench_outbox_scale.py).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from .store.handle import Store
from .store.lists import IN_IDS, ids

# Give-up rules for a notification Slack keeps refusing for transient reasons.
MAX_AGE = timedelta(hours=24)
MAX_ATTEMPTS = 50
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 300.0


class OutboxState(StrEnum):
    """The `state` column of an outbox row (each member is its stored string). The SQL below
    spells them literally: the partial indexes (`WHERE state = 'pending'`) are only used by
    queries that name the state in their text."""

    PENDING = "pending"          # owed: due at next_attempt_at
    SENDING = "sending"          # claimed by a process, its Slack call under way
    SENT = "sent"
    DEAD = "dead"                # given up on (see dead_letters)
    SUPERSEDED = "superseded"    # moot: the request left Pending before the message went out


# What `retry` and `unsure` decided.
Verdict = Literal["dead", "retry"]


@dataclass(frozen=True)
class Notification:
    id: int
    request_id: int
    event: str              # a sync.EventKind value
    recipient: int
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    uncertain_since: datetime | None = None

    @property
    def key(self) -> str:
        """The idempotency key, as carried in Slack message metadata."""
        return f"{self.request_id}/{self.event}/{self.recipient}"


def _now() -> datetime:
    return datetime.now(UTC)


def backoff(attempts: int, rand: float | None = None) -> float:
    """Exponential backoff with full jitter between half and the whole step."""
    step = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * (2.0 ** max(0, attempts - 1)))
    r = random.random() if rand is None else rand
    return step * (0.5 + 0.5 * r)


class Outbox:
    def __init__(self, db: Store, owner: str | None = None):
        self.db = db
        self.owner = owner          # this process's id in relay_processes (None: anonymous)

    def heartbeat(self, now: datetime | None = None) -> None:
        """Say this process is alive (its claims are not to be taken over)."""
        if self.owner is None:
            return
        stamp = (now or _now()).isoformat()
        with self.db.atomic():
            self.db.execute("INSERT INTO relay_processes (id, started_at, heartbeat_at) VALUES (?, ?, ?) "
                            "ON CONFLICT(id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                            [self.owner, stamp, stamp])

    def recover(self, alive_since: datetime) -> int:
        """Rows left `sending` by a process whose last heartbeat is older than `alive_since`
        (it crashed or stopped) go back to `pending`, marked `maybe_delivered` (the message may
        be out: a later supersede still tells its reviewer); a live peer's in-flight rows stay."""
        with self.db.atomic():
            n = self.db.execute(
                "UPDATE outbox SET state = 'pending', maybe_delivered = 1, "
                "uncertain_since = COALESCE(uncertain_since, claimed_at) "
                "WHERE state = 'sending' AND (claimed_by IS NULL OR "
                "(claimed_by IS NOT ? AND claimed_by NOT IN "
                "(SELECT id FROM relay_processes WHERE heartbeat_at >= ?)))",
                [self.owner, alive_since.isoformat()]).rowcount
            self.db.execute("DELETE FROM relay_processes WHERE heartbeat_at < ? AND id IS NOT ?",
                            [(alive_since - timedelta(days=1)).isoformat(), self.owner])
            return n

    def due(self, now: datetime | None = None, limit: int = 100,
            exclude: Iterable[int] = (), exclude_recipients: Iterable[int] = ()) -> list[Notification]:
        """Pending rows whose time has come, earliest due first, at most one per (request,
        recipient) so that one person's messages about one request arrive in order. `exclude`:
        row ids already handed to a lane; `exclude_recipients`: people being looked up. Walks the (state, next_attempt_at) index in order and
        stops after `limit` rows: no sort of the whole backlog."""
        now = now or _now()
        # A statement text per kind of exclusion, never per list length (store.lists); a list
        # that is empty is left out (no subquery per row for it).
        skip, people = list(exclude), list(exclude_recipients)
        not_in, lists = "", []
        if skip:
            not_in, lists = f"AND o.id NOT IN ({IN_IDS})", [ids(skip)]
        if people:
            not_in, lists = f"{not_in} AND o.recipient NOT IN ({IN_IDS})", [*lists, ids(people)]
        rows = self.db.execute(
            f"""SELECT o.id, o.request_id, o.event, o.recipient, o.payload, o.attempts, o.created_at,
                      o.uncertain_since
               FROM outbox o INDEXED BY outbox_due
               WHERE o.state = 'pending' AND o.next_attempt_at <= ? {not_in}
                 AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.request_id = o.request_id
                                 AND p.recipient = o.recipient AND p.id < o.id
                                 AND p.state IN ('pending', 'sending'))
               ORDER BY o.next_attempt_at, o.id LIMIT ?""",
            [now.isoformat(), *lists, limit]).fetchall()
        return [Notification(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], datetime.fromisoformat(r[6]),
                             datetime.fromisoformat(r[7]) if r[7] else None)
                for r in rows]

    def oldest_pending_at(self) -> datetime | None:
        """When the oldest notification still owed was created (an index lookup)."""
        row = self.db.execute("SELECT MIN(created_at) FROM outbox WHERE state = 'pending'").fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def prune(self, before: datetime, batch: int = 500) -> int:
        """Delete up to `batch` sent or superseded rows finished before `before` (retention)."""
        with self.db.atomic():
            return self.db.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE state IN ('sent', 'superseded') "
                "AND finished_at < ? LIMIT ?)", [before.isoformat(), batch]).rowcount

    def next_due_at(self) -> datetime | None:
        row = self.db.execute("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'").fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def claim(self, n: Notification) -> bool:
        """Take the row for sending. False if someone else did, or it was superseded."""
        with self.db.atomic():
            # An approval message for a request that was settled meanwhile is moot (it may have
            # gone back to pending after a failed attempt, after the poll superseded the rest),
            # unless it is in doubt: then it may be in Slack, and is looked for first.
            self.db.execute(
                "UPDATE outbox SET state = 'superseded', finished_at = ?, last_error = 'request no longer pending' "
                "WHERE id = ? AND state = 'pending' AND event = 'approval_requested' AND uncertain_since IS NULL "
                "AND NOT EXISTS "
                "(SELECT 1 FROM access_requests a WHERE a.id = outbox.request_id AND a.status = 'Pending' "
                "AND a.gone = 0)", [_now().isoformat(), n.id])
            return self.db.execute(
                "UPDATE outbox SET state = 'sending', attempts = attempts + 1, claimed_by = ?, claimed_at = ? "
                "WHERE id = ? AND state = 'pending'", [self.owner, _now().isoformat(), n.id]).rowcount == 1

    def drop_if_settled(self, n: Notification) -> bool:
        """A claimed row in doubt that was not found in Slack, about a request no longer
        pending: superseded instead of sent (True), since it would ask about a settled request."""
        with self.db.atomic():
            return self.db.execute(
                "UPDATE outbox SET state = 'superseded', finished_at = ?, "
                "last_error = 'request no longer pending; not found in Slack' "
                "WHERE id = ? AND state = 'sending' AND NOT EXISTS (SELECT 1 FROM access_requests a "
                "WHERE a.id = outbox.request_id AND a.status = 'Pending' AND a.gone = 0)",
                [_now().isoformat(), n.id]).rowcount == 1

    def sent(self, n: Notification, slack_user: str | None, note: str | None = None,
             now: datetime | None = None) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE outbox SET state = 'sent', slack_user = ?, finished_at = ?, last_error = ? "
                            "WHERE id = ?", [slack_user, (now or _now()).isoformat(), note, n.id])

    def retry(self, n: Notification, error: str, *, delay: float, count_attempt: bool = True,
              now: datetime | None = None) -> Verdict:
        """Reschedule; dead-letter instead when the row is too old or tried too often."""
        now = now or _now()
        attempts = n.attempts + 1
        if now - n.created_at > MAX_AGE or (count_attempt and attempts >= MAX_ATTEMPTS):
            self.dead(n, f"gave up after {attempts} attempts: {error}", now=now)
            return "dead"
        with self.db.atomic():
            self.db.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?, last_error = ?, "
                "attempts = attempts - ? WHERE id = ?",
                [(now + timedelta(seconds=delay)).isoformat(), error, 0 if count_attempt else 1, n.id])
        return "retry"

    def dead(self, n: Notification, reason: str, now: datetime | None = None) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE outbox SET state = 'dead', last_error = ?, finished_at = ? WHERE id = ?",
                            [reason, (now or _now()).isoformat(), n.id])

    def unsure(self, n: Notification, error: str, *, delay: float, now: datetime | None = None) -> Verdict:
        """The last call may have taken effect unseen: reschedule, remembering since when the
        row is in doubt (its claim time), so the next attempt first looks for it in Slack."""
        now = now or _now()
        attempts = n.attempts + 1
        if now - n.created_at > MAX_AGE or attempts >= MAX_ATTEMPTS:
            self.dead(n, f"gave up after {attempts} attempts: {error}", now=now)
            return "dead"
        with self.db.atomic():
            self.db.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?, last_error = ?, "
                "uncertain_since = COALESCE(uncertain_since, claimed_at, ?) WHERE id = ?",
                [(now + timedelta(seconds=delay)).isoformat(), error, now.isoformat(), n.id])
        return "retry"

    def record_sent(self, request_id: int, event: str, recipient: int, slack_user: str,
                    payload: dict[str, Any] | None = None, now: datetime | None = None) -> bool:
        """An effect done outside the poll (a click): record it so the poll does not repeat it."""
        stamp = (now or _now()).isoformat()
        with self.db.atomic():
            return self.db.execute(
                "INSERT OR IGNORE INTO outbox (request_id, event, recipient, payload, state, next_attempt_at, "
                "created_at, finished_at, slack_user) VALUES (?, ?, ?, ?, 'sent', ?, ?, ?, ?)",
                [request_id, event, recipient, json.dumps(payload or {}), stamp, stamp, stamp, slack_user]
            ).rowcount == 1

    def revive_unmapped(self, ss_user_id: int, now: datetime | None = None) -> int:
        """Someone who could not be reached just linked their Slack account: their approval
        messages for requests that are still pending go out after all."""
        stamp = (now or _now()).isoformat()
        return self.db.execute(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, last_error = NULL, "
            "finished_at = NULL WHERE recipient = ? AND state = 'dead' AND event = 'approval_requested' "
            "AND last_error LIKE 'unmapped:%' AND request_id IN "
            "(SELECT id FROM access_requests WHERE status = 'Pending' AND gone = 0)",
            [stamp, ss_user_id]).rowcount

    # Cards: the reviewer's persistent DM message, kept for chat.update.
    def save_card(self, request_id: int, recipient: int, channel: str, ts: str) -> None:
        with self.db.atomic():
            self.db.execute("INSERT INTO cards (request_id, recipient, channel, ts) VALUES (?,?,?,?) "
                            "ON CONFLICT(request_id, recipient) DO UPDATE SET channel=excluded.channel, ts=excluded.ts",
                            [request_id, recipient, channel, ts])

    def card(self, request_id: int, recipient: int) -> tuple[str, str] | None:
        row = self.db.execute("SELECT channel, ts FROM cards WHERE request_id = ? AND recipient = ?",
                              [request_id, recipient]).fetchone()
        return (row[0], row[1]) if row else None

    def cards_of(self, request_id: int) -> list[tuple[int, str, str]]:
        return [tuple(r) for r in self.db.execute(
            "SELECT recipient, channel, ts FROM cards WHERE request_id = ?", [request_id]).fetchall()]

    def ask_never_went_out(self, request_id: int, recipient: int) -> bool:
        """True when this reviewer's approval message about the request was dropped unsent
        (superseded or dead, never possibly delivered): a closing notice would be news about
        a request they were never asked about. False when it went out, may have, or no row
        says (pruned by retention)."""
        row = self.db.execute("SELECT state, maybe_delivered FROM outbox WHERE request_id = ? AND recipient = ? "
                              "AND event = ?", [request_id, recipient, "approval_requested"]).fetchone()
        return row is not None and row[0] in ("superseded", "dead") and not row[1]

    def close_card(self, request_id: int, recipient: int) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE cards SET state = 'closed' WHERE request_id = ? AND recipient = ?",
                            [request_id, recipient])

    def release(self, exclude: frozenset[int] = frozenset()) -> int:
        """This process is stopping: its claimed rows (but `exclude`, known to be sent) go back
        to pending without counting the attempt, to be sent by the next start."""
        if self.owner is None:
            return 0
        return self.db.execute(
            "UPDATE outbox SET state = 'pending', attempts = MAX(0, attempts - 1) "
            f"WHERE state = 'sending' AND claimed_by = ? AND id NOT IN ({IN_IDS})",
            [self.owner, ids(sorted(exclude))]).rowcount

    # What `ssrelay status` and /metrics read.
    def backlog(self) -> dict[str, int]:
        """Rows per state (keyed by OutboxState members, which are their strings)."""
        return {OutboxState(r[0]): r[1] for r in self.db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state")}

    def dead_letters(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, request_id, event, recipient, last_error, finished_at FROM outbox WHERE state = 'dead' "
            "ORDER BY id DESC LIMIT ?", [limit]).fetchall()
        return [dict(zip(("id", "request_id", "event", "recipient", "reason", "at"), r, strict=True)) for r in rows]
