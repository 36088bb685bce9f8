"""One SQLite connection per thread, behind one object.

`store.db.open_db()` gives a single connection; `db.atomic()` on a connection shared by
several threads lets one thread's writes slip into another thread's transaction. The
interactions layer runs in web-server threads, a worker pool and the Socket Mode client, so it
reads and writes through `ThreadLocalDb`, which opens a connection per thread on first use
(WAL mode: readers see what other connections committed). The connection of a thread that has
ended is closed when the next thread opens one, so the handle holds at most one connection per
live thread (plus those ended since the last opening), however many threads come and go.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

from . import db as store


class ThreadLocalDb:
    """Looks like a `sqlite_utils.Database`; each thread gets its own connection."""

    def __init__(self, path: str | Path, *, busy_timeout: float = store.BUSY_TIMEOUT_SECONDS):
        if str(path) == ":memory:":
            raise ValueError("ThreadLocalDb needs a database file (a :memory: database is per connection)")
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        # Each thread's connection while it is inside `atomic()`. `close()` never takes it
        # away: the rest of that transaction must run on it (a second connection of the same
        # thread would wait for the first one's write lock for the whole busy timeout, then
        # fail with "database is locked").
        self._in_transaction = threading.local()
        self._all: list[tuple[threading.Thread, sqlite_utils.Database]] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite_utils.Database:
        db = getattr(self._in_transaction, "db", None)
        if db is not None:
            return db
        db = getattr(self._local, "db", None)
        if db is None:
            db = store.open_db(self.path, busy_timeout=self.busy_timeout)
            self._local.db = db
            with self._lock:
                ended = [(t, d) for t, d in self._all if not t.is_alive()]
                self._all = [(t, d) for t, d in self._all if t.is_alive()]
                self._all.append((threading.current_thread(), db))
            for _, old in ended:     # its thread is gone: nothing can be inside a statement on it
                try:
                    old.conn.close()
                except sqlite3.Error:
                    pass
        return db

    @property
    def connections(self) -> int:
        """Connections this handle holds open (for the memory tests and bench/bench_soak.py)."""
        with self._lock:
            return len(self._all)

    # The two calls of `store.handle.Store`, typed; anything else reaches this thread's
    # connection through __getattr__.
    def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> sqlite3.Cursor:
        return self.get().execute(sql, parameters)

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        """A transaction on this thread's connection, which every statement of this thread
        uses until it ends, even if `close()` runs meanwhile (a relay stopping while its
        scheduled poll or heartbeat is inside its transaction)."""
        db = self.get()
        outermost = getattr(self._in_transaction, "db", None) is None   # else a savepoint in it
        if outermost:
            self._in_transaction.db = db
        try:
            with db.atomic():
                yield db
        finally:
            if outermost:
                self._in_transaction.db = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)

    def close(self) -> None:
        """Close this thread's connection and those of threads that have ended; a later use
        opens a new one. A connection of a thread still running is only forgotten, never
        closed from here: that thread may be inside a statement on it (closing a connection
        under a running statement can crash the interpreter), and it is closed when its
        thread lets go of it. A thread inside `atomic()` finishes that transaction on its
        connection before it gets a new one."""
        me = threading.current_thread()
        with self._lock:
            dbs, self._all = self._all, []
            self._local = threading.local()
        for owner, db in dbs:
            if owner is me or not owner.is_alive():
                try:
                    db.conn.close()
                except sqlite3.Error:
                    pass
