"""One SQLite connection per thread, behind one object.

`store.db.open_db()` gives a single connection; `db.atomic()` on a connection shared by
several threads lets one thread's writes slip into another thread's transaction. The
interactions layer runs in web-server threads, a worker pool and the Socket Mode client, so it
reads and writes through `ThreadLocalDb`, which opens a connection per thread on first use
(WAL mode: readers see what other connections committed).
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import sqlite_utils

from . import db as store


class Sql(Protocol):
    """What the relay's parts use of a database: statements and transactions (a
    `store.db.Database` or a `ThreadLocalDb`)."""

    def execute(self, sql: str, parameters: Any = None) -> sqlite3.Cursor: ...

    def atomic(self) -> AbstractContextManager[Any]: ...


class ThreadLocalDb:
    """Looks like a `sqlite_utils.Database`; each thread gets its own connection."""

    def __init__(self, path: str | Path, *, busy_timeout: float = store.BUSY_TIMEOUT_SECONDS):
        if str(path) == ":memory:":
            raise ValueError("ThreadLocalDb needs a database file (a :memory: database is per connection)")
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._all: list[sqlite_utils.Database] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = store.open_db(self.path, busy_timeout=self.busy_timeout)
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    def execute(self, sql: str, parameters: Any = None) -> sqlite3.Cursor:
        return self.get().execute(sql, parameters)

    def atomic(self) -> AbstractContextManager[Any]:
        return self.get().atomic()

    def __getattr__(self, name: str):
        return getattr(self.get(), name)

    def close(self) -> None:
        """Close every thread's connection; a later use opens a new one."""
        with self._lock:
            dbs, self._all = self._all, []
            self._local = threading.local()
        for db in dbs:
            try:
                db.conn.close()
            except Exception:   # closing from another thread can fail; the process is stopping
                pass
