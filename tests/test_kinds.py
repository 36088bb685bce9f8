"""Statuses, event kinds and outbox states are enums whose members are the strings the
database already holds: a fresh database, one poll recorded, the rows compared to literals."""

from __future__ import annotations

from datetime import UTC, datetime

from relay import sync
from relay.model import AccessRequest, RequestStatus
from relay.outbox import Outbox, OutboxState
from relay.store import db as store
from relay.store import snapshot

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
ALICE, BOB, RITA = 11, 12, 20


def test_every_member_is_the_string_already_stored():
    assert [str(s) for s in RequestStatus] == [
        "WaitingForRequest", "Pending", "Approved", "Denied", "Canceled", "Expired"]
    assert [str(k) for k in sync.EventKind] == [
        "approval_requested", "canceled", "approved", "denied", "review_closed", "expired", "step_passed"]
    assert [str(s) for s in OutboxState] == ["pending", "sending", "sent", "dead", "superseded"]


def test_a_recorded_poll_writes_plain_strings():
    # Setup: Rita's request is seen Pending with Alice and Bob as reviewers, Alice was asked.
    db = store.open_db(":memory:")
    store.migrate(db)
    pending = AccessRequest(1, 1001, "db-1", None, RITA, "rita", "Pending")
    asked = sync.diff({}, sync.Observation(now=NOW, pending={1: pending}, reviewers={1: (ALICE, BOB)}), told={})
    with db.atomic():
        snapshot.record_poll(db, asked, now=NOW)
    db.execute("UPDATE outbox SET state = 'sent' WHERE recipient = ?", [ALICE])

    # Action: the next poll reads it Canceled.
    known = snapshot.load_known(db)
    canceled = AccessRequest(1, 1001, "db-1", None, RITA, "rita", "Canceled")
    obs = sync.Observation(now=NOW, pending={}, resolved={1: canceled})
    with db.atomic():
        snapshot.record_poll(db, sync.diff(known, obs, snapshot.told(db, [1])), now=NOW)

    # Validating: the columns hold the same text as before the enums.
    assert known[1].status is RequestStatus.PENDING
    assert db.execute("SELECT status, typeof(status) FROM access_requests").fetchall() == [("Canceled", "text")]
    assert db.execute("SELECT event, recipient, state, typeof(event) FROM outbox ORDER BY id").fetchall() == [
        ("approval_requested", ALICE, "sent", "text"),
        ("approval_requested", BOB, "superseded", "text"),
        ("canceled", ALICE, "pending", "text"),
    ]
    assert Outbox(db).backlog() == {"sent": 1, "superseded": 1, "pending": 1}


def test_a_status_string_is_converted_to_its_member():
    r = AccessRequest(1, 1001, "db-1", None, RITA, "rita", "Approved")
    assert r.status is RequestStatus.APPROVED
    assert r.fingerprint == "Approved||||"
