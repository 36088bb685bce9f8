"""Stopping: `ssrelay run` as a real process gets SIGTERM while it is busy. It takes no new
work, sends nothing faster than its pacing, releases what is in flight (the next start sends
it) and exits within 5 s, even with Secret Server and Slack hanging (README "Faults and
stopping")."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from faults.process import RelayProcess
from waiting import wait_until

EPHEMERAL_PER_MINUTE = 120          # 2 a second: a batch takes seconds, so the stop lands inside it
PACED = f'{{"chat.postEphemeral": {EPHEMERAL_PER_MINUTE}, "users.lookupByEmail": 6000, "conversations.open": 6000}}'


def busiest_second(calls) -> int:
    """The most calls that arrived within any one second."""
    times = sorted(c.at for c in calls)
    return max((sum(1 for t in times[i:] if t - s < 1.0) for i, s in enumerate(times)), default=0)


def asks(sandbox) -> Counter:
    """(reviewer, request id) of every approval message Slack accepted."""
    out: Counter = Counter()
    for c in sandbox.slack.calls_to("chat.postEphemeral"):
        if c.ok:
            rid = next(e["value"] for b in c.args["blocks"] if b["type"] == "actions" for e in b["elements"])
            out[(c.args["user"], rid)] += 1
    return out


@pytest.fixture
def owed(sandbox):
    """Ten pending requests: twenty approval messages owed."""
    ids = [sandbox.ss.create_request(sandbox.secrets["prod-db"], sandbox["rita"].ss_id, comment=f"job {i}")
           for i in range(10)]
    return {(sandbox[w].slack_id, str(r)) for r in ids for w in ("alice", "bob")}


def test_sigterm_mid_batch_sends_nothing_unpaced_and_the_next_start_sends_the_rest(sandbox, owed, tmp_path):
    # Setup: a relay delivering twenty messages at two a second.
    relay = RelayProcess(sandbox, tmp_path / "stop.db", tmp_path / "relay.log", SLACK_RATE_LIMITS=PACED).start()
    try:
        sandbox.slack.wait_for("chat.postEphemeral", count=3, timeout=20)
        # Action: SIGTERM in the middle of the batch.
        took = relay.terminate(timeout=10)
    finally:
        relay.kill()
    # Validating: quick, paced, nothing left claimed.
    assert took <= 5.0
    assert relay.proc.returncode == 0
    sent_before = sum(asks(sandbox).values())
    assert 3 <= sent_before < 20
    budget = EPHEMERAL_PER_MINUTE / 60
    assert busiest_second(sandbox.slack.calls_to("chat.postEphemeral")) <= budget + 1
    assert relay.count("SELECT COUNT(*) FROM outbox WHERE state = 'sending'") == 0
    assert relay.count("SELECT COUNT(*) FROM relay_processes") == 0
    # The next start sends the rest, nothing twice.
    again = RelayProcess(sandbox, tmp_path / "stop.db", tmp_path / "relay.log").start()
    try:
        wait_until(lambda: set(asks(sandbox)) == owed, 20, "the rest of the batch")
    finally:
        again.terminate(timeout=10)
    assert asks(sandbox) == Counter({k: 1 for k in owed})


def test_sigterm_with_secret_server_and_slack_hanging_exits_within_5_seconds(sandbox, owed, tmp_path):
    relay = RelayProcess(sandbox, tmp_path / "hang.db", tmp_path / "relay.log", SLACK_RATE_LIMITS=PACED).start()
    slack_hang, ss_hang = threading.Event(), threading.Event()
    try:
        sandbox.slack.wait_for("chat.postEphemeral", count=2, timeout=20)
        # Slack stops answering the message calls; Secret Server stops answering the poll.
        sandbox.slack.fail("chat.postEphemeral", hang=slack_hang, times=None)
        sandbox.ss.fail(r"/api/v1/secret-access-requests$", hang=ss_hang, times=1000)
        sandbox.slack.wait_for("chat.postEphemeral", predicate=lambda c: not c.done, in_flight=True, timeout=10)
        wait_until(lambda: any(c.status == 0 for c in sandbox.ss.calls_to(r"/api/v1/secret-access-requests$")),
                   10, "a poll hanging on Secret Server")
        # Action: SIGTERM while both calls hang.
        took = relay.terminate(timeout=15)
    finally:
        relay.kill()
        slack_hang.set()
        ss_hang.set()
    # Validating: gone within the grace period, nothing sent faster than its pace.
    assert took <= 5.0, f"took {took:.1f}s"
    assert relay.proc.returncode == 0
    assert busiest_second(sandbox.slack.calls_to("chat.postEphemeral")) <= EPHEMERAL_PER_MINUTE / 60 + 1
    assert relay.count("SELECT COUNT(*) FROM outbox WHERE state = 'sending'") == 0
    # Slack finishes the call the relay gave up on: that one message may arrive twice, no other.
    sandbox.slack.clear_faults()
    sandbox.ss.clear_faults()
    sandbox.slack.wait_for("chat.postEphemeral", predicate=lambda c: c.done and c.ok, count=3, timeout=10)
    again = RelayProcess(sandbox, tmp_path / "hang.db", tmp_path / "relay.log").start()
    try:
        wait_until(lambda: set(asks(sandbox)) == owed, 20, "everything owed")
    finally:
        again.terminate(timeout=10)
    counts = asks(sandbox)
    assert set(counts) == owed
    assert sum(n - 1 for n in counts.values()) <= 1, counts
