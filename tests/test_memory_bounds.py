"""What keeps the relay's memory flat under a steady load (bench/bench_soak.py measures it):

- a query over a list of ids is one statement text whatever the list's length, so each
  connection's cache of prepared statements holds one statement for it (store.lists), not one
  per length it has seen;
- the SQLite connection of a thread that has ended is closed, not kept (store.local), each
  connection's page cache is bounded (store.db.PAGE_CACHE_KIB), and SQLite's heap as a whole
  stays near store.db.SQLITE_HEAP_LIMIT_BYTES;
- glibc's malloc keeps few arenas, shared by every thread, gives free memory back, and keeps
  no per-thread caches (relay.memory)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from relay.memory import MALLOC_ARENAS, TUNABLES
from relay.outbox import Outbox
from relay.store import db as store
from relay.store import snapshot
from relay.store.local import ThreadLocalDb
from relay.sync import APPROVAL_REQUESTED

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LENGTHS = range(1, 41)     # forty list lengths: forty statement texts with a placeholder per id


class Recording:
    """A Store that remembers every statement text it was given, per caller."""

    def __init__(self, db: store.Database):
        self.db = db
        self.texts: set[str] = set()

    def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> sqlite3.Cursor:
        self.texts.add(sql)
        return self.db.execute(sql, parameters)

    def atomic(self):
        return self.db.atomic()


@pytest.fixture
def db():
    d = store.open_db(":memory:")
    store.migrate(d)
    # requests 1..20 known; each asked of reviewer 7 (sent) and 8 (pending)
    for rid in range(1, 21):
        d.execute("INSERT INTO access_requests (id, secret_id, requester_id, status, first_seen, updated_at) "
                  "VALUES (?, 1, 9, 'Pending', ?, ?)", [rid, T0.isoformat(), T0.isoformat()])
        for recipient, state in ((7, "sent"), (8, "pending")):
            d.execute("INSERT INTO outbox (request_id, event, recipient, payload, state, next_attempt_at, created_at) "
                      "VALUES (?, ?, ?, '{}', ?, ?, ?)",
                      [rid, APPROVAL_REQUESTED, recipient, state, T0.isoformat(), T0.isoformat()])
    return d


def test_snapshot_lookups_are_one_statement_whatever_the_number_of_ids(db):
    seen, told = Recording(db), Recording(db)
    for n in LENGTHS:
        wanted = range(1, n + 1)
        assert snapshot.seen(seen, wanted) == set(range(1, min(n, 20) + 1))
        assert snapshot.told(told, wanted) == {rid: frozenset({7}) for rid in range(1, min(n, 20) + 1)}
    assert len(seen.texts) == 1
    assert len(told.texts) == 1


def test_outbox_exclusions_are_one_statement_whatever_their_length(db):
    due, release = Recording(db), Recording(db)
    pending = [r[0] for r in db.execute("SELECT id FROM outbox WHERE state = 'pending' ORDER BY id")]
    for n in LENGTHS:
        skip = pending[:n % len(pending)]
        got = Outbox(due).due(T0 + timedelta(seconds=1), exclude=skip, exclude_recipients=range(100, 100 + n))
        assert [x.id for x in got] == [i for i in pending if i not in skip]
        assert Outbox(release, owner="p1").release(exclude=frozenset(range(n))) == 0
    # a person being looked up is left out too
    assert Outbox(due).due(T0 + timedelta(seconds=1), exclude_recipients=[8]) == []
    # one text with rows and people excluded, one with people only (an empty list is left out)
    assert len(due.texts) == 2
    assert len(release.texts) == 1


def test_connections_of_ended_threads_are_closed(tmp_path):
    db = ThreadLocalDb(tmp_path / "relay.db")
    db.execute("CREATE TABLE t (x INTEGER)")
    theirs: list[sqlite3.Connection] = []

    def use() -> None:
        db.execute("INSERT INTO t VALUES (1)")
        theirs.append(db.get().conn)

    for _ in range(30):          # threads that come and go, one after the other
        t = threading.Thread(target=use)
        t.start()
        t.join(10)
    # every ended thread's connection is closed but the last one's (closed when the next
    # thread opens one): the handle holds this thread's and that one
    for conn in theirs[:-1]:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")
    assert db.connections <= 2
    assert db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 30


def test_every_connection_has_a_bounded_page_cache(tmp_path):
    db = ThreadLocalDb(tmp_path / "relay.db")
    sizes: list[int] = []
    t = threading.Thread(target=lambda: sizes.append(db.execute("PRAGMA cache_size").fetchone()[0]))
    t.start()
    t.join(10)
    sizes.append(db.execute("PRAGMA cache_size").fetchone()[0])
    assert sizes == [-store.PAGE_CACHE_KIB] * 2        # negative: KiB, SQLite's own default is 2000
    assert 0 < store.PAGE_CACHE_KIB < 2000


def test_a_live_threads_connection_is_kept_when_others_end(tmp_path):
    db = ThreadLocalDb(tmp_path / "relay.db")
    inside, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def live() -> None:
        mine = db.get().conn
        inside.set()
        release.wait(10)
        outcome["same"] = db.get().conn is mine
        outcome["works"] = mine.execute("SELECT 1").fetchone()[0]

    keeper = threading.Thread(target=live)
    keeper.start()
    assert inside.wait(10)
    for _ in range(5):
        t = threading.Thread(target=lambda: db.execute("SELECT 1"))
        t.start()
        t.join(10)
    release.set()
    keeper.join(10)
    assert outcome == {"same": True, "works": 1}


# ---------------------------------------------------------------------- the C heap (relay.memory)
ARENAS = """
import ctypes, os, sys, tempfile, threading
from relay import memory
if sys.argv[1] == "limit":
    memory.limit_arenas()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.fopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
together = threading.Barrier(9)
def work():
    blocks = [libc.malloc(4096) for _ in range(100)]
    together.wait()      # every thread holds memory at once
    together.wait()      # until the arenas are counted
    for b in blocks:
        libc.free(b)
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
together.wait()
path = tempfile.mktemp()
fp = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, fp)
libc.fclose(fp)
together.wait()
for t in threads:
    t.join()
print(open(path).read().count("<heap nr="))
os.unlink(path)
"""

TRIM = """
import ctypes
from relay import memory
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def rss_anon_kib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
blocks = [libc.malloc(16384) for _ in range(4000)]        # 64 MiB from the heap, touched
for b in blocks:
    ctypes.memset(b, 1, 16384)
for i, b in enumerate(blocks):
    if i % 50:                                            # freed, but the heap's top stays in use
        libc.free(b)
before = rss_anon_kib()
trimmed = memory.trim()
print(trimmed, before - rss_anon_kib())
"""


def _python(code: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60,
                          env=env, cwd=str(Path(__file__).resolve().parents[1]))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_limited_arenas_are_shared_by_every_thread():
    # eight threads holding memory at once: glibc gives each its own arena unless limited
    assert int(_python(ARENAS, "free")) > MALLOC_ARENAS
    assert int(_python(ARENAS, "limit")) <= MALLOC_ARENAS


def test_trim_gives_free_heap_memory_back():
    trimmed, released_kib = _python(TRIM).split()
    assert trimmed == "True"
    assert int(released_kib) > 40 * 1024      # of the 63 MiB freed inside the heap


THREAD_CACHES = """
import os
from relay import memory
memory.without_thread_caches()
print(os.environ.get("GLIBC_TUNABLES"))
"""


def _python_env(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**clean, **env}, cwd=str(Path(__file__).resolve().parents[1]))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_process_starts_again_once_with_glibcs_thread_caches_off():
    # one line: the first process never printed, the one it became did, and did not go again
    assert _python_env(THREAD_CACHES).splitlines() == [TUNABLES]


def test_an_operators_glibc_tunables_are_left_alone():
    assert _python_env(THREAD_CACHES, GLIBC_TUNABLES="glibc.malloc.arena_max=4") == "glibc.malloc.arena_max=4"


SQLITE_HEAP = """
import ctypes, ctypes.util, sys
from relay.store import db as store
if sys.argv[1] == "unlimited":
    store.SQLITE_HEAP_LIMIT_BYTES = 0
path = sys.argv[2]
first = store.open_db(path)
first.execute("CREATE TABLE t (x TEXT)")
with first.atomic():
    for i in range(4000):
        first.execute("INSERT INTO t VALUES (?)", ("x" * 2000,))    # about 8 MiB
readers = [store.open_db(path) for _ in range(12)]
for r in readers:                                                   # each reads every page
    assert r.execute("SELECT SUM(LENGTH(x)) FROM t").fetchone()[0] == 8_000_000
lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
lib.sqlite3_memory_used.restype = ctypes.c_int64
print(lib.sqlite3_memory_used())
"""


def test_sqlites_heap_stays_near_its_limit_however_many_connections_read(tmp_path):
    # Thirteen connections read a database larger than all their page caches together.
    limited = int(_python(SQLITE_HEAP, "limited", str(tmp_path / "a.db")))
    unlimited = int(_python(SQLITE_HEAP, "unlimited", str(tmp_path / "b.db")))
    # With the limit, SQLite's heap ends near it; without, each cache fills to PAGE_CACHE_KIB.
    assert limited < store.SQLITE_HEAP_LIMIT_BYTES + 512 * 1024, limited
    assert unlimited > limited + 2 * 1024 * 1024, (limited, unlimited)
