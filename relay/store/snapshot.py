"""The snapshot of access requests and the one transaction that records a poll.

A poll's snapshot changes and its outbox rows are written in one `db.atomic()`: either
both happen or neither does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..model import APPROVED, PENDING, AccessRequest, Person, RequestStatus
from ..sync import APPROVAL_REQUESTED, Diff, Known
from .handle import Store
from .lists import IN_IDS, ids

_COLUMNS = ("id, secret_id, secret_name, folder_id, requester_id, requester_username, status, "
            "comment, ticket, requested_at, start_at, expires_at, review_status, decided_by, "
            "response_comment, decided_at, has_workflow, reviewers")


# Stored status string -> RequestStatus member (a dict lookup: load_known reads every watched row).
_STATUS = {s.value: s for s in RequestStatus}


def _dt(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


def _iso(d: datetime | None) -> str | None:
    return d.isoformat() if d else None


def _request(row: Sequence[Any]) -> AccessRequest:
    return AccessRequest(
        id=row[0], secret_id=row[1], secret_name=row[2], folder_id=row[3], requester_id=row[4],
        requester_username=row[5], status=row[6], comment=row[7], ticket=row[8],
        requested_at=_dt(row[9]), start=_dt(row[10]), expiration=_dt(row[11]), review_status=row[12],
        decided_by=row[13], response_comment=row[14], decided_at=_dt(row[15]), has_workflow=bool(row[16]))


def load_known(db: Store) -> dict[int, Known]:
    """Requests the poll still watches: Pending ones and Approved ones (until they expire)."""
    rows = db.execute(
        "SELECT id, status, fingerprint, requester_id, expires_at, reviewers FROM access_requests "
        "WHERE gone = 0 AND status IN (?, ?)", [PENDING, APPROVED]).fetchall()
    loads = json.loads
    return {r[0]: Known(_STATUS[r[1]], r[2], r[3], _dt(r[4]) if r[1] == APPROVED else None,
                        frozenset(loads(r[5])) if r[5] != "[]" else frozenset())
            for r in rows}


def get_request(db: Store, request_id: int) -> tuple[AccessRequest, dict[str, Any]] | None:
    row = db.execute(f"SELECT {_COLUMNS}, folder_name FROM access_requests WHERE id = ?",
                     [request_id]).fetchone()
    if row is None:
        return None
    return _request(row), {"folder_name": row[18], "reviewers": json.loads(row[17])}


def told(db: Store, request_ids: Iterable[int]) -> dict[int, frozenset[int]]:
    """Reviewers who may have seen the approval message, per request: sent, in flight, or in
    doubt (`maybe_delivered`: its claim was taken back after a stop; `uncertain_since`: Slack's
    answer was lost), so the message may be out even if the row was later superseded."""
    out: dict[int, set[int]] = {}
    for rid, uid in db.execute(
            "SELECT request_id, recipient FROM outbox WHERE event = ? "
            "AND (state IN ('sending', 'sent') OR maybe_delivered = 1 OR uncertain_since IS NOT NULL) "
            f"AND request_id IN ({IN_IDS})", [APPROVAL_REQUESTED, ids(sorted(set(request_ids)))]):
        out.setdefault(rid, set()).add(uid)
    return {k: frozenset(v) for k, v in out.items()}


def seen(db: Store, request_ids: Iterable[int]) -> set[int]:
    """Which of `request_ids` the snapshot holds (in any state)."""
    return {r[0] for r in db.execute(f"SELECT id FROM access_requests WHERE id IN ({IN_IDS})",
                                     [ids(sorted(set(request_ids)))])}


def record_poll(db: Store, result: Diff, *, now: datetime,
                context: Mapping[int, Mapping[str, Any]] | None = None) -> int:
    """Write the snapshot changes and outbox rows of one poll. Call inside `db.atomic()`.
    Returns the number of outbox rows actually added (duplicates are ignored)."""
    context = context or {}
    stamp = now.astimezone(UTC).isoformat()
    for req, reviewers in result.upserts:
        ctx = context.get(req.id, {})
        db.execute(
            """INSERT INTO access_requests (id, secret_id, secret_name, folder_id, folder_name,
                   requester_id, requester_username, status, comment, ticket, requested_at, start_at,
                   expires_at, review_status, decided_by, response_comment, decided_at, has_workflow,
                   fingerprint, reviewers, gone, first_seen, updated_at)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,?,?)
               ON CONFLICT(id) DO UPDATE SET secret_name=excluded.secret_name,
                   folder_id=excluded.folder_id,
                   folder_name=CASE WHEN excluded.folder_name != '' THEN excluded.folder_name ELSE folder_name END,
                   status=excluded.status, comment=excluded.comment, ticket=excluded.ticket,
                   start_at=excluded.start_at, expires_at=excluded.expires_at,
                   review_status=excluded.review_status, decided_by=excluded.decided_by,
                   response_comment=excluded.response_comment, decided_at=excluded.decided_at,
                   fingerprint=excluded.fingerprint, reviewers=excluded.reviewers, gone=0,
                   updated_at=excluded.updated_at""",
            [req.id, req.secret_id, req.secret_name, req.folder_id, ctx.get("folder_name", ""),
             req.requester_id, req.requester_username, req.status, req.comment, req.ticket,
             _iso(req.requested_at), _iso(req.start), _iso(req.expiration), req.review_status,
             req.decided_by, req.response_comment, _iso(req.decided_at), int(req.has_workflow),
             req.fingerprint, json.dumps(list(reviewers)), stamp, stamp])
    for rid in result.gone:
        db.execute("UPDATE access_requests SET gone = 1, updated_at = ? WHERE id = ?", [stamp, rid])
    # An ask in doubt (it may be in Slack) stays: delivery looks for it first, to close the
    # card it finds, and drops it when it is not there (`Outbox.drop_if_settled`).
    for rid in result.settled:
        db.execute("UPDATE outbox SET state = 'superseded', finished_at = ?, last_error = ? "
                   "WHERE request_id = ? AND event = ? AND state = 'pending' AND uncertain_since IS NULL",
                   [stamp, "request no longer pending", rid, APPROVAL_REQUESTED])
    added = 0
    for ev in result.events:
        cur = db.execute(
            "INSERT OR IGNORE INTO outbox (request_id, event, recipient, payload, state, next_attempt_at, created_at) "
            "VALUES (?, ?, ?, ?, 'pending', ?, ?)",
            [ev.request_id, ev.kind, ev.recipient, json.dumps(ev.payload, sort_keys=True), stamp, stamp])
        added += cur.rowcount
    set_state(db, "last_successful_poll", stamp)
    return added


def remember_people(db: Store, people: Iterable[Person], now: datetime) -> None:
    stamp = now.astimezone(UTC).isoformat()
    for p in people:
        db.execute("INSERT INTO people (id, username, display_name, email, fetched_at) VALUES (?,?,?,?,?) "
                   "ON CONFLICT(id) DO UPDATE SET username=excluded.username, display_name=excluded.display_name, "
                   "email=excluded.email, fetched_at=excluded.fetched_at",
                   [p.id, p.username, p.display_name, p.email, stamp])


def known_people(db: Store, fresh_since: datetime) -> dict[int, Person]:
    rows = db.execute("SELECT id, username, display_name, email FROM people WHERE fetched_at >= ?",
                      [fresh_since.astimezone(UTC).isoformat()]).fetchall()
    return {r[0]: Person(r[0], r[1], r[2], r[3]) for r in rows}


def get_person(db: Store, ss_user_id: int) -> Person | None:
    r = db.execute("SELECT id, username, display_name, email FROM people WHERE id = ?", [ss_user_id]).fetchone()
    return Person(r[0], r[1], r[2], r[3]) if r else None


def set_state(db: Store, key: str, value: str) -> None:
    db.execute("INSERT INTO relay_state (key, value) VALUES (?, ?) "
               "ON CONFLICT(key) DO UPDATE SET value = excluded.value", [key, value])


def get_state(db: Store, key: str) -> str | None:
    row = db.execute("SELECT value FROM relay_state WHERE key = ?", [key]).fetchone()
    return row[0] if row else None
