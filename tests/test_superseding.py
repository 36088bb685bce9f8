"""Superseding approval messages on a fresh database, row by row: a message whose sending was
interrupted by a stop may have reached its reviewer, so when its request is settled later that
reviewer still hears how it ended (and the message is looked for before it is dropped); a
message that never went out stays silent."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from relay import sync
from relay.model import AccessRequest
from relay.outbox import Outbox
from relay.store import db as store
from relay.store import snapshot

NOW = datetime.now(UTC)
ALICE, BOB, REQUESTER = 11, 12, 20


@pytest.fixture
def fresh_db():
    db = store.open_db(":memory:")
    store.migrate(db)
    return db


def rows(db) -> list[tuple]:
    return [tuple(r) for r in db.execute(
        "SELECT request_id, event, recipient, state, maybe_delivered FROM outbox ORDER BY id")]


def poll(db, known, obs) -> None:
    """What the poller does with one observation: told, diff, record, in one transaction."""
    with db.atomic():
        told = snapshot.told(db, set(obs.pending) | set(obs.resolved))
        snapshot.record_poll(db, sync.diff(known, obs, told), now=obs.now)


def asked(db) -> AccessRequest:
    """Rita's request 1 is seen Pending; Alice and Bob are owed an approval message."""
    r = AccessRequest(id=1, secret_id=1001, secret_name="prod-db", folder_id=10, requester_id=REQUESTER,
                      requester_username="rita", status="Pending")
    poll(db, {}, sync.Observation(now=NOW, pending={1: r}, reviewers={1: (ALICE, BOB)}))
    return r


def test_an_interrupted_approval_message_later_superseded_still_gets_the_cancellation(fresh_db):
    # Test setup: relay "dead" claims Alice's message and stops inside the Slack call.
    r = asked(fresh_db)
    dead = Outbox(fresh_db, owner="dead")
    (alice_ask,) = [n for n in dead.due(NOW + timedelta(seconds=1)) if n.recipient == ALICE]
    assert dead.claim(alice_ask)
    # Test execution: the next relay takes the claim back, then its poll sees Rita cancel.
    assert Outbox(fresh_db, owner="next").recover(alive_since=datetime.now(UTC)) == 1
    assert rows(fresh_db) == [(1, "approval_requested", ALICE, "pending", 1),
                              (1, "approval_requested", BOB, "pending", 0)]
    known = snapshot.load_known(fresh_db)
    poll(fresh_db, known, sync.Observation(now=NOW, pending={}, resolved={1: replace(r, status="Canceled")}))
    # Validating: Bob's unsent ask is superseded; Alice's, in doubt, stays for delivery to look
    # for first (and drop when it is not in Slack); Alice, who may have seen hers, hears of the
    # cancellation; Bob, who cannot have, does not.
    assert rows(fresh_db) == [(1, "approval_requested", ALICE, "pending", 1),
                              (1, "approval_requested", BOB, "superseded", 0),
                              (1, "canceled", ALICE, "pending", 0)]
    nxt = Outbox(fresh_db, owner="next")
    (again,) = [n for n in nxt.due(NOW + timedelta(seconds=1)) if n.event == "approval_requested"]
    assert nxt.claim(again) and nxt.drop_if_settled(again)      # not found in Slack: never sent now
    assert rows(fresh_db)[0] == (1, "approval_requested", ALICE, "superseded", 1)


def test_the_interrupted_mark_outlives_a_failed_retry(fresh_db):
    r = asked(fresh_db)
    dead = Outbox(fresh_db, owner="dead")
    (alice_ask,) = [n for n in dead.due(NOW + timedelta(seconds=1)) if n.recipient == ALICE]
    dead.claim(alice_ask)
    nxt = Outbox(fresh_db, owner="next")
    nxt.recover(alive_since=datetime.now(UTC))
    # The next relay sends it again and Slack refuses for a while: it waits for a retry.
    (again,) = [n for n in nxt.due(NOW + timedelta(seconds=1)) if n.recipient == ALICE]
    assert nxt.claim(again)
    nxt.retry(again, "service_unavailable", delay=60)
    known = snapshot.load_known(fresh_db)
    poll(fresh_db, known, sync.Observation(now=NOW, pending={}, resolved={
        1: replace(r, status="Approved", decided_by="Bob", decided_at=NOW, expiration=NOW + timedelta(hours=1))}))
    assert rows(fresh_db) == [(1, "approval_requested", ALICE, "pending", 1),
                              (1, "approval_requested", BOB, "superseded", 0),
                              (1, "approved", REQUESTER, "pending", 0)]
    assert snapshot.told(fresh_db, [1]) == {1: frozenset({ALICE})}


def test_a_live_relays_claim_is_not_marked(fresh_db):
    asked(fresh_db)
    live = Outbox(fresh_db, owner="live")
    live.heartbeat(datetime.now(UTC))
    (alice_ask,) = [n for n in live.due(NOW + timedelta(seconds=1)) if n.recipient == ALICE]
    live.claim(alice_ask)
    assert Outbox(fresh_db, owner="other").recover(alive_since=datetime.now(UTC) - timedelta(seconds=5)) == 0
    assert rows(fresh_db) == [(1, "approval_requested", ALICE, "sending", 0),
                              (1, "approval_requested", BOB, "pending", 0)]
