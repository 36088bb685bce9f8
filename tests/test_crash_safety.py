"""Crash safety: the relay is a real subprocess, killed with SIGKILL at points of a busy
cycle, then restarted on the same database. Every owed notification arrives, none twice,
except the one message that was inside the Slack call when the process died: that row was
claimed but not yet marked sent, so the restarted relay sends it again (README: "Delivery
guarantees")."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter

import pytest

from waiting import wait_until


def start_relay(sandbox, db_path, **overrides):
    env = {**os.environ, **sandbox.environ(db_path, **overrides)}
    env.pop("SSRELAY_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "relay", "--log-format", "text", "run"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=os.path.dirname(db_path))


def kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def db_count(db_path, sql) -> int:
    try:
        con = sqlite3.connect(db_path, timeout=5)
        try:
            return con.execute(sql).fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def polls_after(db_path, n=2, timeout=20.0):
    """Wait until the relay has finished `n` more successful polls."""
    def stamp():
        try:
            con = sqlite3.connect(db_path, timeout=5)
            try:
                row = con.execute("SELECT value FROM relay_state WHERE key='last_successful_poll'").fetchone()
                return row[0] if row else None
            finally:
                con.close()
        except sqlite3.OperationalError:
            return None
    seen = [stamp()]
    def advanced():
        s = stamp()
        if s != seen[-1]:
            seen.append(s)
        return len(seen) > n
    wait_until(advanced, timeout, f"{n} more polls")


def delivered(sandbox) -> Counter:
    """(reviewer, request id) of every approval message Slack accepted."""
    out = Counter()
    for c in sandbox.slack.calls_to("chat.postEphemeral"):
        if c.ok:
            rid = next(e["value"] for b in c.args["blocks"] if b["type"] == "actions" for e in b["elements"])
            out[(c.args["user"], rid)] += 1
    return out


@pytest.fixture
def busy(sandbox, tmp_path):
    """Five pending requests: ten approval messages owed."""
    ids = [sandbox.ss.create_request(sandbox.secrets["prod-db"], sandbox["rita"].ss_id, comment=f"job {i}")
           for i in range(5)]
    expected = {(sandbox[w].slack_id, str(r)) for r in ids for w in ("alice", "bob")}
    return str(tmp_path / "crash.db"), expected


def test_killed_after_the_snapshot_commit_delivers_everything_once_after_restart(sandbox, busy):
    db_path, expected = busy
    # Slack is down: the poll records the snapshot and the outbox, nothing can be delivered.
    sandbox.slack.fail("chat.postEphemeral", status=503, times=None)
    proc = start_relay(sandbox, db_path)
    try:
        wait_until(lambda: db_count(db_path, "SELECT COUNT(*) FROM outbox WHERE event = 'approval_requested'") == 10, 20, "outbox rows")
    finally:
        kill(proc)
    assert not [c for c in sandbox.slack.calls_to("chat.postEphemeral") if c.ok]
    # Slack is back; the relay restarts.
    sandbox.slack.clear_faults()
    proc = start_relay(sandbox, db_path)
    try:
        wait_until(lambda: set(delivered(sandbox)) == expected, 20, "all deliveries")
        polls_after(db_path, 2)
    finally:
        kill(proc)
    assert delivered(sandbox) == Counter({k: 1 for k in expected})


def test_killed_mid_delivery_resends_only_the_message_inside_the_slack_call(sandbox, busy):
    db_path, expected = busy
    # Slow delivery (2 per second) so the kill lands in the middle of the batch.
    proc = start_relay(sandbox, db_path, SLACK_RATE_LIMITS='{"chat.postEphemeral": 120}')
    released = threading.Event()
    try:
        sandbox.slack.wait_for("chat.postEphemeral", count=3, timeout=20)
        sandbox.slack.fail("chat.postEphemeral", hang=released, times=1)
        (inflight,) = sandbox.slack.wait_for("chat.postEphemeral", predicate=lambda c: not c.done,
                                             in_flight=True, timeout=20)
    finally:
        kill(proc)
    released.set()            # Slack finishes the call the relay died inside: that message exists.
    sandbox.slack.wait_for("chat.postEphemeral", predicate=lambda c: c is inflight or (
        c.args == inflight.args and c.done), timeout=10)
    before = delivered(sandbox)
    assert 3 <= sum(before.values()) < 10
    proc = start_relay(sandbox, db_path)
    try:
        # The claimed row is taken back once the killed relay's heartbeat is stale (3 intervals).
        wait_until(lambda: set(delivered(sandbox)) == expected and db_count(
            db_path, "SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')") == 0,
            30, "all deliveries, the interrupted one included")
        polls_after(db_path, 2)
    finally:
        kill(proc)
    counts = delivered(sandbox)
    rid = next(e["value"] for b in inflight.args["blocks"] if b["type"] == "actions" for e in b["elements"])
    twice = {k for k, n in counts.items() if n > 1}
    assert twice == {(inflight.args["user"], rid)}, "only the in-flight message may repeat"
    assert counts[(inflight.args["user"], rid)] == 2
    assert set(counts) == expected


def test_a_second_relay_never_takes_over_a_live_relays_message(sandbox, busy, tmp_path):
    """Two relays on one database: the second one starting must not re-send what the first
    one is sending right now."""
    from relay.outbox import Outbox
    from relay.runtime import Relay
    db_path, expected = busy
    first = Relay(sandbox.config(db_path))
    second = None
    released = threading.Event()
    try:
        first.poller.poll_once()
        sandbox.slack.fail("chat.postEphemeral", hang=released, times=1)
        worker = threading.Thread(target=first.delivery.deliver_due, kwargs={"limit": 1}, daemon=True)
        first.recover_stopped_peers()          # first says it is alive
        worker.start()
        (inflight,) = sandbox.slack.wait_for("chat.postEphemeral", predicate=lambda c: not c.done,
                                             in_flight=True, timeout=10)
        second = Relay(sandbox.config(db_path))
        assert second.recover_stopped_peers() == 0
        assert Outbox(second.db).backlog().get("sending") == 1
    finally:
        released.set()
        if second:
            second.stop()
        first.stop()
