"""The snapshot store on a fresh, migrated in-memory database per test, compared row by row
with literals (as sqlite-utils' own tests do)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from relay.model import AccessRequest, Person
from relay.store import snapshot
from relay.store.db import migrate, open_db
from relay.sync import Diff, Event, Known

CET = timezone(timedelta(hours=1))
NOW = datetime(2026, 11, 28, 11, 0, tzinfo=CET)          # 10:00 UTC: stamps are stored in UTC
STAMP = "2026-11-28T10:00:00+00:00"
LATER = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
LATER_STAMP = "2026-11-28T10:30:00+00:00"
T1 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
ALICE, BOB, RITA = 11, 12, 20

ROW = ("id, secret_id, secret_name, folder_id, folder_name, requester_id, requester_username, status, comment, "
       "ticket, requested_at, start_at, expires_at, review_status, decided_by, response_comment, decided_at, "
       "has_workflow, fingerprint, reviewers, gone, first_seen, updated_at")
OUTBOX = "request_id, event, recipient, payload, state, attempts, next_attempt_at, last_error, created_at, finished_at"


@pytest.fixture
def db():
    d = open_db(":memory:")
    migrate(d)
    return d


def rows(db, sql: str, params=()) -> list[tuple]:
    return [tuple(r) for r in db.execute(sql, list(params)).fetchall()]


def req(rid: int = 1, status: str = "Pending", **kw) -> AccessRequest:
    base: dict = {"id": rid, "secret_id": 1000 + rid, "secret_name": f"db-{rid}", "folder_id": 10, "requester_id": RITA,
                  "requester_username": "rita", "status": status, "comment": "deploy", "ticket": "INC-1",
                  "requested_at": T1}
    base.update(kw)
    return AccessRequest(**base)


def outbox_row(db, request_id: int, event: str, recipient: int, state: str, **extra) -> None:
    cols = {"request_id": request_id, "event": event, "recipient": recipient, "payload": "{}", "state": state,
            "next_attempt_at": STAMP, "created_at": STAMP, **extra}
    db.execute(f"INSERT INTO outbox ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", list(cols.values()))


# -- record_poll: the snapshot rows ------------------------------------------------------------

def test_first_sight_of_a_request_inserts_its_whole_row(db):
    r = req(review_status="Step 1 of 2", has_workflow=True)
    snapshot.record_poll(db, Diff(upserts=[(r, (ALICE, BOB))]), now=NOW, context={1: {"folder_name": "DBs"}})
    assert rows(db, f"SELECT {ROW} FROM access_requests") == [
        (1, 1001, "db-1", 10, "DBs", RITA, "rita", "Pending", "deploy", "INC-1", "2026-11-28T09:00:00+00:00",
         None, None, "Step 1 of 2", "", "", None, 1, "Pending|Step 1 of 2|||", "[11, 12]", 0, STAMP, STAMP)]
    assert rows(db, "SELECT key, value FROM relay_state") == [("last_successful_poll", STAMP)]


def test_a_decision_updates_the_row_and_keeps_first_seen_and_a_known_folder_name(db):
    snapshot.record_poll(db, Diff(upserts=[(req(), (ALICE,)), (req(2), (BOB,))]), now=NOW,
                         context={1: {"folder_name": "DBs"}, 2: {"folder_name": "Web"}})
    approved = req(status="Approved", secret_name="db-1 renamed", folder_id=11, comment="c2", ticket="INC-2",
                   start=T1, expiration=T2, review_status="Done", decided_by="Alice", response_comment="ok",
                   decided_at=LATER, requester_id=99, requester_username="x", requested_at=T2, has_workflow=True)
    denied = req(2, status="Denied")
    snapshot.record_poll(db, Diff(upserts=[(approved, (ALICE, BOB)), (denied, ())]), now=LATER,
                         context={2: {"folder_name": "Web apps"}})
    assert rows(db, f"SELECT {ROW} FROM access_requests ORDER BY id") == [
        (1, 1001, "db-1 renamed", 11, "DBs", RITA, "rita", "Approved", "c2", "INC-2", "2026-11-28T09:00:00+00:00",
         "2026-11-28T09:00:00+00:00", "2026-11-28T18:00:00+00:00", "Done", "Alice", "ok",
         "2026-11-28T10:30:00+00:00", 0, approved.fingerprint, "[11, 12]", 0, STAMP, LATER_STAMP),
        (2, 1002, "db-2", 10, "Web apps", RITA, "rita", "Denied", "deploy", "INC-1", "2026-11-28T09:00:00+00:00",
         None, None, "", "", "", None, 0, "Denied||||", "[]", 0, STAMP, LATER_STAMP)]
    assert rows(db, "SELECT value FROM relay_state WHERE key = 'last_successful_poll'") == [(LATER_STAMP,)]


def test_gone_marks_only_that_row_and_a_later_sight_revives_it(db):
    snapshot.record_poll(db, Diff(upserts=[(req(1), ()), (req(2), ())]), now=NOW)
    snapshot.record_poll(db, Diff(gone=[2]), now=LATER)
    assert rows(db, "SELECT id, gone, updated_at FROM access_requests ORDER BY id") == [
        (1, 0, STAMP), (2, 1, LATER_STAMP)]
    assert snapshot.load_known(db) == {1: Known.of(req(1))}
    snapshot.record_poll(db, Diff(upserts=[(req(2), ())]), now=LATER + timedelta(minutes=1))
    assert rows(db, "SELECT id, gone FROM access_requests ORDER BY id") == [(1, 0), (2, 0)]


# -- record_poll: the outbox rows --------------------------------------------------------------

def test_events_become_pending_outbox_rows_once(db):
    e1 = Event(1, "approval_requested", ALICE, {"request": {"id": 1}, "folder_name": "DBs"})
    e2 = Event(1, "approval_requested", BOB, {"request": {"id": 1}})
    assert snapshot.record_poll(db, Diff(events=[e1, e2]), now=NOW) == 2
    again = Event(1, "approval_requested", ALICE, {"request": {"id": 1}, "folder_name": "changed"})
    e3 = Event(1, "canceled", ALICE, {"b": 1, "a": 2})
    assert snapshot.record_poll(db, Diff(events=[again, e3]), now=LATER) == 1
    assert rows(db, f"SELECT {OUTBOX} FROM outbox ORDER BY id") == [
        (1, "approval_requested", ALICE, '{"folder_name": "DBs", "request": {"id": 1}}', "pending", 0, STAMP, None,
         STAMP, None),
        (1, "approval_requested", BOB, '{"request": {"id": 1}}', "pending", 0, STAMP, None, STAMP, None),
        (1, "canceled", ALICE, '{"a": 2, "b": 1}', "pending", 0, LATER_STAMP, None, LATER_STAMP, None)]


def test_settling_supersedes_only_unsent_approval_messages_of_that_request(db):
    outbox_row(db, 1, "approval_requested", ALICE, "pending")
    outbox_row(db, 1, "approval_requested", BOB, "sent")
    outbox_row(db, 1, "canceled", ALICE, "pending")
    outbox_row(db, 2, "approval_requested", ALICE, "pending")
    outbox_row(db, 3, "approval_requested", ALICE, "pending")
    outbox_row(db, 3, "approval_requested", BOB, "pending", uncertain_since=STAMP)   # in doubt: looked for first
    assert snapshot.record_poll(db, Diff(settled=[1, 3]), now=NOW) == 0
    assert rows(db, "SELECT request_id, event, recipient, state, finished_at, last_error FROM outbox ORDER BY id") == [
        (1, "approval_requested", ALICE, "superseded", STAMP, "request no longer pending"),
        (1, "approval_requested", BOB, "sent", None, None),
        (1, "canceled", ALICE, "pending", None, None),
        (2, "approval_requested", ALICE, "pending", None, None),
        (3, "approval_requested", ALICE, "superseded", STAMP, "request no longer pending"),
        (3, "approval_requested", BOB, "pending", None, None)]


# -- reading the snapshot back -----------------------------------------------------------------

def test_load_known_watches_pending_and_approved_requests_only(db):
    pending = req(1, review_status="Step 1")
    approved = req(2, "Approved", expiration=T2)
    open_ended = req(3, "Approved")
    pending_with_end = req(4, expiration=T2)
    snapshot.record_poll(db, Diff(upserts=[
        (pending, (BOB, ALICE)), (approved, (ALICE,)), (open_ended, ()), (pending_with_end, ()),
        (req(5, "Denied"), ()), (req(6, "Canceled"), ()), (req(7, "Expired", expiration=T1), ()), (req(8), ())],
        gone=[8]), now=NOW)
    assert snapshot.load_known(db) == {
        1: Known("Pending", "Pending|Step 1|||", RITA, None, frozenset({ALICE, BOB})),
        2: Known("Approved", "Approved||||2026-11-28T18:00:00+00:00", RITA, T2, frozenset({ALICE})),
        3: Known("Approved", "Approved||||", RITA, None, frozenset()),
        4: Known("Pending", "Pending||||2026-11-28T18:00:00+00:00", RITA, None, frozenset()),
    }


def test_get_request_reads_back_what_was_recorded(db):
    r = req(status="Approved", start=T1, expiration=T2, decided_at=LATER, decided_by="Alice",
            response_comment="ok", review_status="Done", has_workflow=True)
    snapshot.record_poll(db, Diff(upserts=[(r, (BOB, ALICE))]), now=NOW, context={1: {"folder_name": "DBs"}})
    got, ctx = snapshot.get_request(db, 1)
    assert (got, ctx) == (r, {"folder_name": "DBs", "reviewers": [BOB, ALICE]})
    assert got.fingerprint == r.fingerprint and got.has_workflow is True
    assert snapshot.get_request(db, 2) is None
    snapshot.record_poll(db, Diff(upserts=[(req(2, ticket="", comment=""), ())]), now=NOW)
    assert snapshot.get_request(db, 2) == (req(2, ticket="", comment=""), {"folder_name": "", "reviewers": []})


def test_told_counts_approval_messages_sent_or_in_flight(db):
    outbox_row(db, 1, "approval_requested", ALICE, "sent")
    outbox_row(db, 1, "approval_requested", BOB, "sending")
    outbox_row(db, 1, "approval_requested", RITA, "pending")
    outbox_row(db, 2, "approval_requested", ALICE, "dead")
    outbox_row(db, 2, "approval_requested", BOB, "superseded")
    outbox_row(db, 2, "canceled", ALICE, "sent")
    outbox_row(db, 3, "approval_requested", BOB, "sent")
    outbox_row(db, 4, "approval_requested", BOB, "sent")
    # interrupted in flight, then superseded: the message may be out
    outbox_row(db, 4, "approval_requested", ALICE, "superseded", maybe_delivered=1)
    outbox_row(db, 4, "canceled", RITA, "pending", maybe_delivered=1)
    # Slack's answer lost, to be retried: the message may be out
    outbox_row(db, 5, "approval_requested", RITA, "pending", uncertain_since=STAMP)
    assert snapshot.told(db, [4, 1, 2, 1, 5]) == {1: frozenset({ALICE, BOB}), 4: frozenset({ALICE, BOB}),
                                                  5: frozenset({RITA})}
    assert snapshot.told(db, []) == {}


def test_told_reads_every_id_of_a_long_list(db):
    ids = list(range(1, 1201))
    marked = [1, 499, 500, 501, 999, 1000, 1001, 1200]
    for rid in marked:
        outbox_row(db, rid, "approval_requested", ALICE, "sent")
    assert snapshot.told(db, reversed(ids)) == {rid: frozenset({ALICE}) for rid in marked}


def test_seen_says_which_requests_the_snapshot_holds_in_any_state(db):
    snapshot.record_poll(db, Diff(upserts=[(req(1), ()), (req(2, "Denied"), ()), (req(501), ()), (req(1200), ())], gone=[2]), now=NOW)
    assert snapshot.seen(db, [3, 2, 1, 1, 501, 502]) == {1, 2, 501}
    assert snapshot.seen(db, range(1, 1201)) == {1, 2, 501, 1200}
    assert snapshot.seen(db, []) == set()


# -- people and relay state --------------------------------------------------------------------

def test_people_are_remembered_updated_and_fresh_only_within_their_time(db):
    snapshot.remember_people(db, [Person(ALICE, "alice", "Alice", "alice@x"), Person(BOB, "bob")], NOW)
    snapshot.remember_people(db, [Person(ALICE, "alice2", "Alice A", "a@x")], LATER)
    assert rows(db, "SELECT id, username, display_name, email, fetched_at FROM people ORDER BY id") == [
        (ALICE, "alice2", "Alice A", "a@x", LATER_STAMP), (BOB, "bob", "", "", STAMP)]
    assert snapshot.known_people(db, NOW) == {ALICE: Person(ALICE, "alice2", "Alice A", "a@x"),
                                              BOB: Person(BOB, "bob", "", "")}
    assert snapshot.known_people(db, LATER.astimezone(CET)) == {ALICE: Person(ALICE, "alice2", "Alice A", "a@x")}
    assert snapshot.known_people(db, LATER + timedelta(seconds=1)) == {}
    assert snapshot.get_person(db, ALICE) == Person(ALICE, "alice2", "Alice A", "a@x")
    assert snapshot.get_person(db, BOB) == Person(BOB, "bob", "", "")
    assert snapshot.get_person(db, RITA) is None


def test_relay_state_is_set_replaced_and_read(db):
    assert snapshot.get_state(db, "k") is None
    snapshot.set_state(db, "k", "v1")
    snapshot.set_state(db, "other", "o")
    snapshot.set_state(db, "k", "v2")
    assert snapshot.get_state(db, "k") == "v2"
    assert rows(db, "SELECT key, value FROM relay_state ORDER BY key") == [("k", "v2"), ("other", "o")]


def test_payloads_are_json_with_sorted_keys(db):
    snapshot.record_poll(db, Diff(events=[Event(1, "denied", RITA, {"z": [1], "a": {"y": 1, "b": 2}})]), now=NOW)
    [(payload,)] = rows(db, "SELECT payload FROM outbox")
    assert payload == json.dumps({"a": {"b": 2, "y": 1}, "z": [1]})


@pytest.fixture
def machine_in_new_york(monkeypatch):
    """The host's local time zone is not UTC (containers often are; servers not always)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_stamps_are_utc_whatever_the_machine_s_time_zone(db, machine_in_new_york):
    snapshot.record_poll(db, Diff(upserts=[(req(), ())], gone=[1]), now=NOW)
    snapshot.remember_people(db, [Person(BOB, "bob")], NOW)
    assert rows(db, "SELECT first_seen, updated_at FROM access_requests") == [(STAMP, STAMP)]
    assert rows(db, "SELECT value FROM relay_state") == [(STAMP,)]
    assert rows(db, "SELECT fetched_at FROM people") == [(STAMP,)]
    # a freshness bound given in another zone is compared as the same instant
    assert snapshot.known_people(db, NOW + timedelta(minutes=1)) == {}
    assert snapshot.known_people(db, NOW.astimezone(timezone(timedelta(hours=-11)))) == {BOB: Person(BOB, "bob")}
