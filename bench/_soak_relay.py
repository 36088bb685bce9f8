"""For bench_soak only: `python bench/_soak_relay.py ARGS` runs the relay (`python -m relay ARGS`)
with what the bench asks for in its environment:

SOAK_PROBE_OUT: every SOAK_PROBE_SECONDS (5) a JSON line is appended with what tracemalloc cannot
see: SQLite's own heap (`sqlite3_memory_used`), glibc's heap (`mallinfo2`), the thread count,
and per open SQLite connection its page cache, prepared statements and schema bytes
(`sqlite3_db_status`), with the thread that owns it.

SOAK_LEGACY=1: the relay as it was before its memory was bounded, for the bench's baseline in the
same run: a list of ids in SQL is one placeholder per id again (a statement text per list length,
each kept prepared in its connection's cache), a thread's connection is kept after the thread
ends, SQLite's default page cache (2000 KiB a connection) and no limit on SQLite's heap, and
glibc's malloc as it comes (an arena per contending thread, per-thread caches, no trim).

SOAK_TRACEMALLOC_OUT: tracemalloc on. After SOAK_TRACEMALLOC_FIRST_SECONDS a first snapshot; every
SOAK_TRACEMALLOC_EVERY_SECONDS (30) after that, and at exit, SOAK_TRACEMALLOC_OUT is rewritten
with the top growth since that snapshot (by line, and by traceback for the first few) and the
growth in live objects by type (gc). The relay's own heaps grow under tracemalloc (its traces):
read its line figures, not the RSS."""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import gc
import json
import os
import runpy
import sqlite3
import sys
import threading
import time
import tracemalloc
from collections import Counter

FRAMES = 12
TOP = 40
TRACEBACKS = 8


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]


_SQLITE = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
_SQLITE.sqlite3_memory_used.restype = ctypes.c_int64
_SQLITE.sqlite3_db_status.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                      ctypes.POINTER(ctypes.c_int), ctypes.c_int]
CACHE_USED, SCHEMA_USED, STMT_USED = 1, 2, 3       # SQLITE_DBSTATUS_*


def _db_status(conn: sqlite3.Connection, op: int) -> int:
    """sqlite3_db_status of a Python connection: its `sqlite3 *` is the first field after the
    object header (CPython 3.11's pysqlite_Connection); 0 bytes once closed."""
    handle = ctypes.c_void_p.from_address(id(conn) + object.__basicsize__).value
    if not handle:
        return 0
    cur, hi = ctypes.c_int(), ctypes.c_int()
    _SQLITE.sqlite3_db_status(handle, op, ctypes.byref(cur), ctypes.byref(hi), 0)
    return cur.value


def _connections() -> list[tuple[str, bool, sqlite3.Connection]]:
    """(owning thread, is it alive, connection) of every connection a ThreadLocalDb holds, and
    ("other", True, conn) for the rest."""
    from relay.store.local import ThreadLocalDb
    out, held = [], set()
    for obj in gc.get_objects():
        if isinstance(obj, ThreadLocalDb):
            for owner, db in list(obj._all):
                out.append((owner.name, owner.is_alive(), db.conn))
                held.add(id(db.conn))
    for obj in gc.get_objects():
        if isinstance(obj, sqlite3.Connection) and id(obj) not in held:
            out.append(("other", True, obj))
    return out


def _pymalloc() -> dict[str, int]:
    """Python's own allocator (`sys._debugmallocstats`, which prints to the C stderr: caught in a
    file for the moment): its arenas now, and the bytes in blocks in use."""
    import tempfile
    with tempfile.TemporaryFile(mode="w+b") as f:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(f.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read().decode(errors="replace")
    out = {}
    for key, name in (("# arenas allocated current", "pymalloc_arenas"),
                      ("# bytes in allocated blocks", "pymalloc_in_use")):
        for line in text.splitlines():
            if line.startswith(key):
                out[name] = int(line.split("=")[1].strip().replace(",", ""))
    return out


def _probe(out: str, every: float) -> None:
    pause = threading.Event()       # never set: the probe's clock
    started = time.monotonic()
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    while True:
        mi = libc.mallinfo2()
        conns = [{"thread": name, "alive": alive, "cache": _db_status(c, CACHE_USED),
                  "stmt": _db_status(c, STMT_USED), "schema": _db_status(c, SCHEMA_USED)}
                 for name, alive, c in _connections()]
        rec = {"t": round(time.monotonic() - started, 1), "sqlite_used": _SQLITE.sqlite3_memory_used(),
               "malloc_in_use": mi.uordblks, "malloc_arena": mi.arena, "malloc_free": mi.fordblks,
               "mmapped": mi.hblkhd, "threads": threading.active_count(), **_pymalloc(),
               "connections": conns}
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        pause.wait(every)


def _c_heap() -> str:
    """What Python's tracemalloc cannot see: SQLite's own allocations and glibc's heap."""
    out = []
    out.append(f"sqlite3_memory_used {_SQLITE.sqlite3_memory_used() / 2**20:.2f} MiB")
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        mi = libc.mallinfo2()
        out.append(f"malloc arena {mi.arena / 2**20:.2f} MiB in use {mi.uordblks / 2**20:.2f} MiB "
                   f"free {mi.fordblks / 2**20:.2f} MiB mmapped {mi.hblkhd / 2**20:.2f} MiB")
    except (OSError, AttributeError):
        out.append("mallinfo2 unavailable")
    out.append(f"threads {threading.active_count()}")
    return "; ".join(out)


def _types() -> Counter:
    return Counter(type(o).__qualname__ for o in gc.get_objects())


_FILTERS = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
_lock = threading.Lock()


def _watch(out: str, first_after: float, every: float) -> None:
    pause = threading.Event()       # never set: the watcher's clock
    pause.wait(first_after)
    base = tracemalloc.take_snapshot().filter_traces(_FILTERS)
    base_types = _types()
    base_heap = _c_heap()
    started = time.monotonic()
    atexit.register(_dump, out, base, base_types, base_heap, started)
    while True:
        pause.wait(every)
        _dump(out, base, base_types, base_heap, started)


def _dump(out: str, base: tracemalloc.Snapshot, base_types: Counter, base_heap: str, started: float) -> None:
    with _lock:
        snap = tracemalloc.take_snapshot().filter_traces(_FILTERS)
        types = _types()
        minutes = (time.monotonic() - started) / 60
        lines = [f"# {minutes:.1f} minutes after the first snapshot; traced now "
                 f"{sum(s.size for s in snap.statistics('filename')) / 2**20:.2f} MiB, "
                 f"then {sum(s.size for s in base.statistics('filename')) / 2**20:.2f} MiB",
                 f"# first: {base_heap}", f"# now:   {_c_heap()}", "", "## growth by line"]
        lines += [str(s) for s in snap.compare_to(base, "lineno")[:TOP]]
        lines += ["", "## growth by traceback"]
        for s in snap.compare_to(base, "traceback")[:TRACEBACKS]:
            lines.append(f"{s.size_diff / 1024:+.1f} KiB, {s.count_diff:+d} blocks")
            lines += ["    " + ln for ln in s.traceback.format()]
        lines += ["", "## live objects by type, growth"]
        diff = types.copy()
        diff.subtract(base_types)
        lines += [f"{n:+8d}  {name}" for name, n in diff.most_common(30)]
        tmp = out + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, out)


def _legacy() -> None:
    from relay import memory
    from relay.store import db as store
    from relay.store import local
    from relay.store.lists import IN_IDS

    plain_execute = store.Database.execute

    def execute(self, sql, parameters=None):      # one `?` per id, as before store.lists
        if parameters is None or IN_IDS not in sql:
            return plain_execute(self, sql, parameters)
        params, pieces = list(parameters), sql.split(IN_IDS)
        text, values, i = "", [], 0
        for k, piece in enumerate(pieces):
            n = piece.count("?")
            text += piece
            values.extend(params[i:i + n])
            i += n
            if k < len(pieces) - 1:
                ids = json.loads(params[i])
                text += ",".join("?" * len(ids))
                values.extend(ids)
                i += 1
        return plain_execute(self, text, values + params[i:])

    store.Database.execute = execute      # type: ignore[method-assign]

    def get(self):                        # a connection per thread, kept after the thread ends
        db = getattr(self._in_transaction, "db", None)
        if db is not None:
            return db
        db = getattr(self._local, "db", None)
        if db is None:
            db = store.open_db(self.path, busy_timeout=self.busy_timeout)
            self._local.db = db
            with self._lock:
                self._all.append((threading.current_thread(), db))
        return db

    local.ThreadLocalDb.get = get         # type: ignore[method-assign]
    store.PAGE_CACHE_KIB = 2000           # SQLite's default
    store.SQLITE_HEAP_LIMIT_BYTES = 0     # no limit on SQLite's heap (SQLite's default)
    memory.limit_arenas = lambda arenas=0: False
    memory.trim = lambda: False
    memory.without_thread_caches = lambda: None     # glibc's per-thread caches stay on


if __name__ == "__main__":
    env = os.environ
    if env.get("SOAK_LEGACY") == "1":
        _legacy()
    if env.get("SOAK_TRACEMALLOC_OUT"):
        tracemalloc.start(FRAMES)
        threading.Thread(target=_watch, name="soak-tracemalloc", daemon=True,
                         args=(env["SOAK_TRACEMALLOC_OUT"], float(env.get("SOAK_TRACEMALLOC_FIRST_SECONDS", "60")),
                               float(env.get("SOAK_TRACEMALLOC_EVERY_SECONDS", "30")))).start()
    if env.get("SOAK_PROBE_OUT"):
        threading.Thread(target=_probe, name="soak-probe", daemon=True,
                         args=(env["SOAK_PROBE_OUT"], float(env.get("SOAK_PROBE_SECONDS", "5")))).start()
    sys.argv = ["relay", *sys.argv[1:]]
    runpy.run_module("relay", run_name="__main__", alter_sys=True)
