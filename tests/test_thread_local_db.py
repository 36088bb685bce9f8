"""One SQLite connection per thread: closing the handle (as a stopping relay does) neither waits
for nor pulls a connection out from under a thread that is still inside a statement on it, and
a thread inside a transaction finishes it on that connection."""

from __future__ import annotations

import threading
import time

from relay.store.local import ThreadLocalDb


def test_close_leaves_a_running_statement_of_another_thread_alone(tmp_path):
    db = ThreadLocalDb(tmp_path / "relay.db")
    db.execute("CREATE TABLE t (x INTEGER)")
    inside, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def hold() -> int:
        inside.set()
        release.wait(10)
        return 1

    def worker() -> None:
        conn = db.get().conn
        conn.create_function("hold", 0, hold)
        try:
            outcome["first"] = conn.execute("SELECT hold()").fetchone()[0]
            db.execute("INSERT INTO t VALUES (2)")          # a fresh connection after close()
            outcome["after"] = db.execute("SELECT count(*) FROM t").fetchone()[0]
        except Exception as e:   # what the test reports, not what it expects
            outcome["error"] = repr(e)

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(10)
    # The worker is inside SELECT hold() on its connection: close() must neither wait for it
    # (a stopping relay has a grace period) nor close that connection under it.
    closer = threading.Thread(target=db.close)
    closer.start()
    closer.join(5)
    closed_while_running = not closer.is_alive()
    release.set()
    closer.join(10)
    assert closed_while_running, "close() waited for another thread's statement"
    t.join(10)
    assert outcome == {"first": 1, "after": 1}


def test_close_closes_the_callers_and_finished_threads_connections(tmp_path):
    db = ThreadLocalDb(tmp_path / "relay.db")
    mine = db.get().conn
    theirs: list = []
    t = threading.Thread(target=lambda: theirs.append(db.get().conn))
    t.start()
    t.join(10)
    db.close()
    for conn in (mine, theirs[0]):
        try:
            conn.execute("SELECT 1")
        except Exception as e:
            assert "closed" in str(e)
        else:
            raise AssertionError("a connection was left open")
    assert db.execute("SELECT 1").fetchone()[0] == 1      # a later use opens a new one


def test_a_transaction_under_way_when_close_runs_ends_on_its_own_connection(tmp_path):
    db = ThreadLocalDb(tmp_path / "relay.db", busy_timeout=2.0)
    db.execute("CREATE TABLE t (x INTEGER)")
    inside, closed = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def worker() -> None:
        try:
            with db.atomic():
                db.execute("INSERT INTO t VALUES (1)")
                inside.set()
                closed.wait(10)
                started = time.monotonic()
                db.execute("INSERT INTO t VALUES (2)")     # the same transaction, after close()
                outcome["waited"] = time.monotonic() - started
            outcome["after"] = db.execute("SELECT count(*) FROM t").fetchone()[0]   # a fresh connection
        except Exception as e:   # what the test reports, not what it expects
            outcome["error"] = repr(e)

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(10)
    db.close()          # a stopping relay, while the worker holds the write lock
    closed.set()
    t.join(10)
    # Both rows were written in the one transaction, without waiting for a lock: a second
    # connection of the worker would have waited for the worker's own write lock.
    assert "error" not in outcome, outcome
    assert outcome["after"] == 2
    assert outcome["waited"] < 1.0, outcome
