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


def test_an_ask_in_doubt_for_a_settled_request_is_claimed_then_dropped_if_not_found(db):
    owe(db, 1, "approval_requested", 7, status="Approved")
    owe(db, 2, "approval_requested", 7)
    db.execute("UPDATE outbox SET uncertain_since = ?", [T0.isoformat()])     # both answers were lost
    ob = Outbox(db, owner="p1")
    settled, pending = ob.due(T0)
    with freeze_time(T0):
        assert ob.claim(settled) and ob.claim(pending)      # to be looked for in Slack first
        assert ob.drop_if_settled(settled) and not ob.drop_if_settled(pending)
        assert not ob.drop_if_settled(settled)              # only a claimed row
    assert [r[:5] + r[7:8] for r in rows(db)] == [
        (1, 1, "approval_requested", 7, "superseded", "request no longer pending; not found in Slack"),
        (2, 2, "approval_requested", 7, "sending", None)]
    assert db.execute("SELECT finished_at FROM outbox WHERE id = 1").fetchone()[0] == T0.isoformat()


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


def test_due_skips_people_being_looked_up_and_decodes_the_payload(db):
    owe(db, 1, "approved", 7)
    owe(db, 2, "approved", 8)
    owe(db, 3, "approved", 9)
    db.execute("UPDATE outbox SET payload = '{\"by\": \"poll\"}' WHERE id = 3")
    ob = Outbox(db)
    assert [n.id for n in ob.due(T0, exclude_recipients=[7, 8])] == [3]
    assert [n.id for n in ob.due(T0, exclude=[1], exclude_recipients=[9])] == [2]
    (n,) = ob.due(T0, exclude_recipients=[7, 8])
    assert (n.request_id, n.event, n.recipient, n.payload, n.attempts, n.created_at, n.uncertain_since) == \
        (3, "approved", 9, {"by": "poll"}, 0, T0, None)


def test_due_hands_out_at_most_a_hundred_rows_by_default(db):
    for rid in range(1, 102):
        owe(db, rid, "approved", 9)
    ob = Outbox(db)
    assert len(ob.due(T0)) == 100
    assert len(ob.due(T0, limit=101)) == 101


def test_sent_records_who_when_and_the_note(db):
    owe(db, 1, "approved", 9)
    owe(db, 2, "approved", 8)
    ob = Outbox(db)
    a, b = ob.due(T0)
    ob.sent(a, "U9", note="found in Slack", now=T0 + timedelta(seconds=5))
    with freeze_time(T0 + timedelta(seconds=7)):
        ob.sent(b, None)
    assert [tuple(r) for r in db.execute("SELECT id, state, slack_user, finished_at, last_error FROM outbox")] == \
        [(1, "sent", "U9", (T0 + timedelta(seconds=5)).isoformat(), "found in Slack"),
         (2, "sent", None, (T0 + timedelta(seconds=7)).isoformat(), None)]


def test_a_row_exactly_a_day_old_is_still_retried_and_a_give_up_is_stamped(db):
    owe(db, 1, "approved", 9)
    owe(db, 2, "approved", 8)
    ob = Outbox(db)
    a, b = ob.due(T0)
    assert ob.retry(a, "HTTP 503", delay=1.0, now=T0 + timedelta(hours=24)) == "retry"
    assert ob.unsure(b, "no answer", delay=1.0, now=T0 + timedelta(hours=24)) == "retry"
    a, b = ob.due(T0 + timedelta(hours=25))
    assert ob.retry(a, "HTTP 503", delay=1.0, now=T0 + timedelta(hours=25)) == "dead"
    assert ob.unsure(b, "no answer", delay=1.0, now=T0 + timedelta(hours=25)) == "dead"
    assert [tuple(r) for r in db.execute("SELECT id, state, last_error, finished_at FROM outbox")] == \
        [(1, "dead", "gave up after 1 attempts: HTTP 503", (T0 + timedelta(hours=25)).isoformat()),
         (2, "dead", "gave up after 1 attempts: no answer", (T0 + timedelta(hours=25)).isoformat())]


def test_an_unsure_row_gives_up_at_max_attempts_and_not_one_before(db):
    owe(db, 1, "approved", 9)
    owe(db, 2, "approved", 8)
    db.execute("UPDATE outbox SET attempts = ? WHERE id = 1", [MAX_ATTEMPTS - 2])
    db.execute("UPDATE outbox SET attempts = ? WHERE id = 2", [MAX_ATTEMPTS - 1])
    ob = Outbox(db)
    a, b = ob.due(T0)
    assert ob.unsure(a, "no answer", delay=3.0, now=T0) == "retry"        # attempt MAX_ATTEMPTS - 1
    assert ob.unsure(b, "no answer", delay=3.0, now=T0) == "dead"         # attempt MAX_ATTEMPTS
    assert rows(db) == [(1, 1, "approved", 9, "pending", MAX_ATTEMPTS - 2, (T0 + timedelta(seconds=3)).isoformat(),
                         "no answer", T0.isoformat()),
                        (2, 2, "approved", 8, "dead", MAX_ATTEMPTS - 1, T0.isoformat(),
                         f"gave up after {MAX_ATTEMPTS} attempts: no answer", None)]
    assert db.execute("SELECT finished_at FROM outbox WHERE id = 2").fetchone()[0] == T0.isoformat()


def test_dead_without_a_time_stamps_the_present(db):
    owe(db, 1, "approved", 9)
    ob = Outbox(db)
    (n,) = ob.due(T0)
    with freeze_time(T0 + timedelta(minutes=3)):
        ob.dead(n, "unmapped: no Slack account")
    assert db.execute("SELECT state, last_error, finished_at FROM outbox").fetchone() == \
        ("dead", "unmapped: no Slack account", (T0 + timedelta(minutes=3)).isoformat())


def test_backoff_without_a_given_draw_stays_between_half_and_the_whole_step():
    assert all(1.0 <= backoff(1) <= 2.0 for _ in range(20))
    assert all(150.0 <= backoff(40) <= 300.0 for _ in range(20))


def test_heartbeat_records_a_named_process_once_and_moves_its_time(db):
    Outbox(db).heartbeat(now=T0)                                  # anonymous: nothing to record
    ob = Outbox(db, owner="p1")
    ob.heartbeat(now=T0)
    ob.heartbeat(now=T0 + timedelta(seconds=30))
    with freeze_time(T0 + timedelta(seconds=60)):
        Outbox(db, owner="p2").heartbeat()
    assert [tuple(r) for r in db.execute("SELECT id, started_at, heartbeat_at FROM relay_processes ORDER BY id")] == \
        [("p1", T0.isoformat(), (T0 + timedelta(seconds=30)).isoformat()),
         ("p2", (T0 + timedelta(seconds=60)).isoformat(), (T0 + timedelta(seconds=60)).isoformat())]


def test_recovery_forgets_processes_silent_for_a_day_but_never_itself(db):
    for name, at in (("gone", T0 - timedelta(days=1, seconds=1)), ("edge", T0 - timedelta(days=1)),
                     ("me", T0 - timedelta(days=3))):
        Outbox(db, owner=name).heartbeat(now=at)
    assert Outbox(db, owner="me").recover(alive_since=T0) == 0
    assert [r[0] for r in db.execute("SELECT id FROM relay_processes ORDER BY id")] == ["edge", "me"]


def test_recovery_takes_back_an_anonymous_claim(db):
    owe(db, 1, "approved", 9)
    ob = Outbox(db)
    (n,) = ob.due(T0)
    with freeze_time(T0):
        ob.claim(n)
    assert Outbox(db, owner="me").recover(alive_since=T0) == 1
    assert [(r[4], r[8]) for r in rows(db)] == [("pending", T0.isoformat())]
    assert db.execute("SELECT maybe_delivered FROM outbox").fetchone()[0] == 1


def test_prune_deletes_at_most_five_hundred_rows_by_default(db):
    for rid in range(1, 502):
        owe(db, rid, "approved", 9, state="sent")
    db.execute("UPDATE outbox SET finished_at = ?", [T0.isoformat()])
    ob = Outbox(db)
    assert ob.prune(T0 + timedelta(seconds=1)) == 500
    assert ob.prune(T0) == 0                                       # finished at `before`: kept
    assert ob.prune(T0 + timedelta(seconds=1)) == 1


def test_cards_are_saved_replaced_listed_and_closed(db):
    ob = Outbox(db)
    assert ob.card(1, 7) is None
    ob.save_card(1, 7, "D7", "100.1")
    ob.save_card(1, 8, "D8", "100.2")
    ob.save_card(2, 7, "D7", "200.1")
    ob.save_card(1, 7, "D7b", "100.3")                             # a new message replaces the old one
    assert ob.card(1, 7) == ("D7b", "100.3") and ob.card(2, 8) is None
    assert sorted(ob.cards_of(1)) == [(7, "D7b", "100.3"), (8, "D8", "100.2")]
    assert ob.cards_of(3) == []
    ob.close_card(1, 8)
    assert [tuple(r) for r in db.execute("SELECT request_id, recipient, channel, ts, state FROM cards "
                                         "ORDER BY request_id, recipient")] == \
        [(1, 7, "D7b", "100.3", "open"), (1, 8, "D8", "100.2", "closed"), (2, 7, "D7", "200.1", "open")]


def test_backlog_dead_letters_and_due_times(db):
    ob = Outbox(db)
    assert ob.backlog() == {} and ob.dead_letters() == []
    assert ob.oldest_pending_at() is None and ob.next_due_at() is None
    owe(db, 1, "approved", 9, at=T0 + timedelta(seconds=10))
    owe(db, 2, "approved", 9, at=T0 + timedelta(seconds=20))
    owe(db, 3, "denied", 8, at=T0, state="sent")
    for rid in (4, 5, 6):
        owe(db, rid, "approval_requested", 7, at=T0 + timedelta(seconds=rid))
    db.execute("UPDATE outbox SET next_attempt_at = ? WHERE id = 1", [(T0 + timedelta(seconds=50)).isoformat()])
    db.execute("UPDATE outbox SET next_attempt_at = ? WHERE id = 2", [(T0 + timedelta(seconds=40)).isoformat()])
    for n in ob.due(T0 + timedelta(seconds=10)):
        if n.id >= 4:
            ob.dead(n, f"unmapped: ss user {n.id}", now=T0 + timedelta(minutes=n.id))
    assert ob.backlog() == {"pending": 2, "sent": 1, "dead": 3}
    assert ob.oldest_pending_at() == T0 + timedelta(seconds=10)
    assert ob.next_due_at() == T0 + timedelta(seconds=40)
    assert ob.dead_letters(limit=2) == [
        {"id": 6, "request_id": 6, "event": "approval_requested", "recipient": 7, "reason": "unmapped: ss user 6",
         "at": (T0 + timedelta(minutes=6)).isoformat()},
        {"id": 5, "request_id": 5, "event": "approval_requested", "recipient": 7, "reason": "unmapped: ss user 5",
         "at": (T0 + timedelta(minutes=5)).isoformat()}]
    assert [d["id"] for d in ob.dead_letters()] == [6, 5, 4]


def test_revive_unmapped_sends_a_linked_persons_open_asks_after_all(db):
    ob = Outbox(db)
    owe(db, 1, "approval_requested", 7)                            # revived
    owe(db, 2, "approval_requested", 7, status="Approved")         # request settled meanwhile
    owe(db, 3, "approval_requested", 8)                            # someone else
    owe(db, 4, "approved", 7)                                      # not an ask
    owe(db, 5, "approval_requested", 7)                            # dead for another reason
    owe(db, 6, "approval_requested", 7)                            # request gone from SS
    owe(db, 7, "approval_requested", 7)                            # still pending, not dead
    db.execute("UPDATE access_requests SET gone = 1 WHERE id = 6")
    for n in ob.due(T0):
        if n.id != 7:
            ob.dead(n, "gave up after 50 attempts: HTTP 503" if n.id == 5 else "unmapped: no Slack user",
                    now=T0)
    db.execute("UPDATE outbox SET attempts = 3")
    assert ob.revive_unmapped(7, now=T0 + timedelta(hours=1)) == 1
    assert rows(db)[0] == (1, 1, "approval_requested", 7, "pending", 0, (T0 + timedelta(hours=1)).isoformat(),
                           None, None)
    assert db.execute("SELECT finished_at FROM outbox WHERE id = 1").fetchone()[0] is None
    assert [r[4] for r in rows(db)] == ["pending", "dead", "dead", "dead", "dead", "dead", "pending"]
    with freeze_time(T0 + timedelta(hours=2)):
        db.execute("UPDATE outbox SET state = 'dead', last_error = 'unmapped: x' WHERE id = 1")
        assert ob.revive_unmapped(7) == 1
    assert rows(db)[0][6] == (T0 + timedelta(hours=2)).isoformat()


def test_dead_letters_lists_the_latest_twenty_by_default(db):
    ob = Outbox(db)
    for rid in range(1, 22):
        owe(db, rid, "approved", 9)
    for n in ob.due(T0):
        ob.dead(n, "unmapped: x", now=T0)
    assert [d["id"] for d in ob.dead_letters()] == list(range(21, 1, -1))


def test_release_hands_back_this_processs_claims_but_the_sent_ones(db):
    for rid in (1, 2, 3, 4):
        owe(db, rid, "approved", 9)
    mine, peer = Outbox(db, owner="me"), Outbox(db, owner="peer")
    a, b, c, d = mine.due(T0)
    with freeze_time(T0):
        mine.claim(a), mine.claim(b), mine.claim(c), peer.claim(d)
    db.execute("UPDATE outbox SET attempts = 0 WHERE id = 3")          # never below zero
    assert Outbox(db).release() == 0                                  # anonymous: nothing is its own
    assert mine.release(exclude=frozenset({2, 99})) == 2
    assert [(r[0], r[4], r[5]) for r in rows(db)] == [(1, "pending", 0), (2, "sending", 1), (3, "pending", 0),
                                                      (4, "sending", 1)]
    assert peer.release() == 1
    assert [(r[0], r[4], r[5]) for r in rows(db)][3] == (4, "pending", 0)


def test_an_ask_never_went_out_only_when_dropped_unsent_and_never_in_doubt(db):
    # One reviewer per state of their approval message about request 1; 17 has none at all.
    for recipient, state in ((10, "sent"), (11, "superseded"), (12, "dead"), (13, "pending"), (14, "sending"),
                             (15, "superseded"), (16, "dead")):
        owe(db, 1, "approval_requested", recipient, state=state)
    db.execute("UPDATE outbox SET maybe_delivered = 1 WHERE recipient IN (15, 16)")   # claimed before a crash
    owe(db, 2, "approval_requested", 17, state="superseded")                        # another request
    owe(db, 1, "canceled", 18, state="superseded")                                  # not an ask
    ob = Outbox(db)
    assert [r for r in range(10, 19) if ob.ask_never_went_out(1, r)] == [11, 12]
