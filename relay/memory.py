"""The process's C heap (glibc's malloc), kept from creeping up under a steady load.

The relay runs about twenty threads, each with its own SQLite connection whose page cache is
allocated and freed all the time (a connection drops its cached pages whenever another one has
written). glibc's malloc gives threads that contend their own arenas (up to 8 per core) and
keeps the free space inside an arena resident, so the resident size crept up while the bytes in
use stayed nearly flat (bench/bench_soak.py --probe: the arenas grew 0.66 MiB a minute, the bytes
in use 0.3). Two remedies, on glibc only (elsewhere both do nothing):

- `limit_arenas()`: at most MALLOC_ARENAS arenas, set before the relay starts its threads, so
  memory one thread frees is reused by the others (the GIL makes the contention this saves
  negligible). An operator's MALLOC_ARENA_MAX in the environment is left alone.
- `trim()`: give free memory inside every arena back to the system (`malloc_trim`), run with
  the WAL checkpoint every minute (a few milliseconds).
- `without_thread_caches()`: glibc also gives each thread a cache of freed chunks (tcache, up to
  7 per size class), which neither the arenas' free lists nor `malloc_trim` reach. With about
  thirty threads each filling its own over many minutes, the bytes in use crept up 0.15-0.25
  MiB a minute for the first ten (bench/bench_soak.py --probe; 0.007 with the caches off). They
  can only be turned off before the process starts (GLIBC_TUNABLES), so `ssrelay run`
  re-executes itself once with `glibc.malloc.tcache_count=0`. An operator's GLIBC_TUNABLES is
  left alone. The cost is a slower malloc fast path, which a relay that mostly waits on HTTP
  does not notice.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from functools import cache

MALLOC_ARENAS = 2
M_ARENA_MAX = -8          # glibc's mallopt parameter number (malloc.h)
TUNABLES = "glibc.malloc.tcache_count=0"
STARTED_AGAIN = "_SSRELAY_STARTED_AGAIN"     # not SSRELAY_*: that prefix is for settings


@cache
def _libc() -> ctypes.CDLL | None:
    """glibc, when this process runs on it (mallopt and malloc_trim are glibc's own)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):
        return None


def limit_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (before threads are started: arenas that exist stay). True when
    the cap was set here."""
    libc = _libc()
    if libc is None or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))


def trim() -> bool:
    """Return free heap memory to the system; True when some was."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def without_thread_caches() -> None:
    """Re-execute this process (same pid, same arguments) with glibc's per-thread caches off,
    when it runs on glibc and GLIBC_TUNABLES is not set. Returns when nothing was done, or
    when the exec failed (the relay then runs with the caches on): call it first thing, before
    any thread, socket or file is opened. At most once: the process started again carries
    STARTED_AGAIN, in case a loader drops GLIBC_TUNABLES (as it does for setuid programs)."""
    argv = list(getattr(sys, "orig_argv", None) or [])
    if (_libc() is None or "GLIBC_TUNABLES" in os.environ or os.environ.get(STARTED_AGAIN)
            or not argv or not sys.executable):
        return
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    try:
        os.execve(sys.executable, argv, {**os.environ, "GLIBC_TUNABLES": TUNABLES, STARTED_AGAIN: "1"})
    except OSError:
        return
