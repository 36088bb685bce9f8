"""The outbox on a fresh database, row by row: ordering per (request, recipient), claim, retry,
backoff, give-up, record_sent, the idempotency key, supersede, recovery, pruning, health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from relay import retention
from relay.outbox import MAX_ATTEMPTS, Outbox, backoff
from relay.store import db as store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
COLUMNS = "id, request_id, event, recipient, state, attempts, next_attempt_at, last_error, uncertain_since"


@pytest.fixture
def db():
    d = store.open_db(":memory:")
    store.migrate(d)
    return d


def owe(db, request_id, event, recipient, *, at=T0, state="pending", status="Pending"):
    db.execute("INSERT OR IGNORE INTO access_requests (id, secret_id, requester_id, status, first_seen, updated_at) "
               "VALUES (?, 1, 9, ?, ?, ?)", [request_id, status, at.isoformat(), at.isoformat()])
    return db.execute("INSERT OR IGNORE INTO outbox (request_id, event, recipient, payload, state, next_attempt_at, "
                      "created_at) VALUES (?, ?, ?, '{}', ?, ?, ?)",
                      [request_id, event, recipient, state, at.isoformat(), at.isoformat()]).lastrowid


def rows(db):
    return [tuple(r) for r in db.execute(f"SELECT {COLUMNS} FROM outbox ORDER BY id")]


def test_due_gives_one_row_per_request_and_recipient_oldest_first(db):
    owe(db, 1, "approval_requested", 7)
    owe(db, 1, "canceled", 7, at=T0 + timedelta(seconds=1))
    owe(db, 1, "approval_requested", 8)
    owe(db, 2, "approval_requested", 7)
    ob = Outbox(db)
    assert [n.id for n in ob.due(T0 + timedelta(seconds=5))] == [1, 3, 4]
    first = ob.due(T0 + timedelta(seconds=5))[0]
    assert ob.claim(first)
    assert [n.id for n in ob.due(T0 + timedelta(seconds=5))] == [3, 4]      # 2 waits behind 1 (sending)
    ob.sent(first, "U1", now=T0)
    assert [n.id for n in ob.due(T0 + timedelta(seconds=5))] == [3, 4, 2]      # earliest due first
    assert [n.id for n in ob.due(T0 + timedelta(seconds=5), exclude=[2, 3])] == [4]
    assert [n.id for n in ob.due(T0 - timedelta(seconds=1))] == []          # nothing is due before its time


def test_claim_takes_a_row_once_and_drops_an_ask_for_a_settled_request(db):
    owe(db, 1, "approval_requested", 7)
    owe(db, 2, "approval_requested", 7, status="Approved")
    ob = Outbox(db, owner="p1")
    a, b = ob.due(T0)
    with freeze_time(T0):
        assert ob.claim(a) and not ob.claim(a)
        assert not ob.claim(b)
    assert rows(db) == [(1, 1, "approval_requested", 7, "sending", 1, T0.isoformat(), None, None),
                        (2, 2, "approval_requested", 7, "superseded", 0, T0.isoformat(),
                         "request no longer pending", None)]


def test_retry_backs_off_and_a_rate_limit_is_not_an_attempt(db):
    owe(db, 1, "approved", 9)
    ob = Outbox(db)
    (n,) = ob.due(T0)
    ob.claim(n)
    assert ob.retry(n, "slack chat.postMessage: HTTP 503", delay=4.0, now=T0) == "retry"
    (n,) = ob.due(T0 + timedelta(seconds=4))
    ob.claim(n)
    assert ob.retry(n, "ratelimited", delay=30.0, count_attempt=False, now=T0) == "retry"
    assert rows(db) == [(1, 1, "approved", 9, "pending", 1, (T0 + timedelta(seconds=30)).isoformat(),
                         "ratelimited", None)]


def test_backoff_doubles_from_two_seconds_up_to_its_cap():
    assert [backoff(a, rand=1.0) for a in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff(3, rand=0.0) == 4.0                  # jitter: between half and the whole step
    assert backoff(40, rand=1.0) == 300.0 and backoff(40, rand=0.0) == 150.0


def test_a_row_gives_up_at_max_attempts_and_not_one_before(db):
    owe(db, 1, "approved", 9)
    db.execute("UPDATE outbox SET attempts = ?", [MAX_ATTEMPTS - 2])
    ob = Outbox(db)
    (n,) = ob.due(T0)
    ob.claim(n)
    assert ob.retry(n, "HTTP 503", delay=1.0, now=T0) == "retry"       # attempt MAX_ATTEMPTS - 1
    (n,) = ob.due(T0 + timedelta(seconds=1))
    ob.claim(n)
    assert ob.retry(n, "HTTP 503", delay=1.0, now=T0) == "dead"        # attempt MAX_ATTEMPTS
    assert db.execute("SELECT state, attempts, last_error FROM outbox").fetchone() == \
        ("dead", MAX_ATTEMPTS, f"gave up after {MAX_ATTEMPTS} attempts: HTTP 503")


def test_a_row_older_than_a_day_gives_up_at_its_next_failure(db):
    owe(db, 1, "approved", 9)
    ob = Outbox(db)
    (n,) = ob.due(T0)
    ob.claim(n)
    assert ob.retry(n, "HTTP 503", delay=1.0, now=T0 + timedelta(hours=23, minutes=59)) == "retry"
    (n,) = ob.due(T0 + timedelta(hours=24))
    ob.claim(n)
    assert ob.retry(n, "HTTP 503", delay=1.0, now=T0 + timedelta(hours=24, seconds=1)) == "dead"


def test_record_sent_is_idempotent_and_never_replaces_a_row(db):
    ob = Outbox(db)
    assert ob.record_sent(5, "approved", 9, "U9", payload={"by": "click"}, now=T0)
    assert not ob.record_sent(5, "approved", 9, "U8", payload={"by": "again"}, now=T0 + timedelta(1))
    owe(db, 5, "approved", 9, at=T0 + timedelta(seconds=3))     # the poll sees the same change later
    assert [tuple(r) for r in db.execute("SELECT id, state, slack_user, payload, created_at FROM outbox")] == \
        [(1, "sent", "U9", '{"by": "click"}', T0.isoformat())]


def test_a_lost_answer_keeps_the_claim_time_as_the_time_in_doubt(db):
    owe(db, 1, "approved", 9)
    ob = Outbox(db, owner="p1")
    (n,) = ob.due(T0)
    with freeze_time(T0 + timedelta(seconds=2)):
        ob.claim(n)
    assert ob.unsure(n, "no answer", delay=5.0, now=T0 + timedelta(seconds=32)) == "retry"
    (n,) = ob.due(T0 + timedelta(seconds=40))
    assert n.uncertain_since == T0 + timedelta(seconds=2) and n.key == "1/approved/9"
    with freeze_time(T0 + timedelta(seconds=40)):
        ob.claim(n)
    ob.unsure(n, "no answer", delay=5.0, now=T0 + timedelta(seconds=70))     # still the first doubt
    assert rows(db)[0][-1] == (T0 + timedelta(seconds=2)).isoformat()


def test_recovery_takes_back_a_stopped_relays_rows_only(db):
    owe(db, 1, "approved", 9)
    owe(db, 2, "approved", 9)
    dead, live = Outbox(db, owner="dead"), Outbox(db, owner="live")
    dead.heartbeat(now=T0)
    live.heartbeat(now=T0 + timedelta(minutes=5))
    a, b = dead.due(T0)
    with freeze_time(T0):
        dead.claim(a)
        live.claim(b)
    me = Outbox(db, owner="me")
    assert me.recover(alive_since=T0 + timedelta(minutes=1)) == 1
    assert [(r[0], r[4], r[8]) for r in rows(db)] == [(1, "pending", T0.isoformat()), (2, "sending", None)]


def test_prune_deletes_old_finished_rows_settled_requests_and_expired_signins(db):
    old, fresh = T0 - timedelta(days=31), T0 - timedelta(days=29)
    for rid, status, at in ((1, "Denied", old), (2, "Denied", fresh), (3, "Pending", old),
                            (4, "Approved", old), (5, "Canceled", old)):
        db.execute("INSERT INTO access_requests (id, secret_id, requester_id, status, expires_at, first_seen, "
                   "updated_at) VALUES (?, 1, 9, ?, ?, ?, ?)",
                   [rid, status, (T0 + timedelta(hours=1)).isoformat() if rid == 4 else None,
                    old.isoformat(), at.isoformat()])
    for rid, state, finished in ((1, "sent", old), (2, "sent", fresh), (3, "superseded", old), (4, "dead", old),
                                 (5, "pending", None)):
        db.execute("INSERT INTO outbox (request_id, event, recipient, payload, state, next_attempt_at, created_at, "
                   "finished_at) VALUES (?, 'denied', 9, '{}', ?, ?, ?, ?)",
                   [rid, state, old.isoformat(), old.isoformat(), finished and finished.isoformat()])
    db.execute("INSERT INTO cards (request_id, recipient, channel, ts) VALUES (1, 7, 'D1', '1.0'), (2, 7, 'D1', '2.0')")
    for h, exp in (("a", old), ("b", fresh)):
        db.execute("INSERT INTO signin_states (state_hash, slack_team, slack_user, created_at, expires_at) "
                   "VALUES (?, 'T', 'U', ?, ?)", [h, exp.isoformat(), exp.isoformat()])
    with freeze_time(T0):
        counts = retention.prune(db, now=datetime.now(UTC), days=30, batch=1)
    assert counts == {"outbox": 2, "requests": 1, "cards": 1, "signin_states": 1}
    assert [tuple(r) for r in db.execute("SELECT request_id, state FROM outbox ORDER BY id")] == \
        [(2, "sent"), (4, "dead"), (5, "pending")]
    # kept: recent (2), pending (3), approved with access still running (4), owed a message (5)
    assert [r[0] for r in db.execute("SELECT id FROM access_requests ORDER BY id")] == [2, 3, 4, 5]
    assert [tuple(r) for r in db.execute("SELECT request_id FROM cards")] == [(2,)]
    assert [r[0] for r in db.execute("SELECT state_hash FROM signin_states")] == ["b"]
