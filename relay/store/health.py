"""How the database is doing, kept in memory.

A full disk or a lock held longer than the busy timeout makes every write fail the same way,
many times a second. Each part of the relay that writes reports such a failure here instead of
logging a traceback: the fault becomes one line naming it (at most once a minute per kind of
fault) and a reason `/readyz` can give without touching the database. The next successful
write clears it.
"""

from __future__ import annotations

import errno
import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 60.0


class StorageFault(StrEnum):
    FULL = "full"           # SQLITE_FULL or ENOSPC: no room for the database or its WAL
    LOCKED = "locked"       # SQLITE_BUSY after the busy timeout: another connection holds the lock
    IO = "io"               # SQLITE_IOERR and the like: the volume itself misbehaves


# Less room than this on the database's volume makes an I/O error a full disk: SQLite reports
# a failed shared-memory (-shm) allocation as "disk I/O error", not as SQLITE_FULL.
LOW_SPACE_BYTES = 256 * 1024


def classify(exc: BaseException, volume: str | None = None) -> StorageFault | None:
    """The storage fault `exc` stands for, or None when it is not one (a bug, say).
    `volume`: a directory on the database's volume, to tell a full disk behind an I/O error."""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        if "full" in text:
            return StorageFault.FULL
        if "locked" in text or "busy" in text:
            return StorageFault.LOCKED
        if "disk i/o" in text or "unable to open" in text or "readonly" in text:
            return StorageFault.FULL if volume and _low_space(volume) else StorageFault.IO
        return None
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return StorageFault.FULL
    return None


def _low_space(volume: str) -> bool:
    try:
        return shutil.disk_usage(volume).free < LOW_SPACE_BYTES
    except OSError:
        return False


_WHAT = {
    StorageFault.FULL: "database disk is full",
    StorageFault.LOCKED: "database is locked longer than the busy timeout",
    StorageFault.IO: "database volume fails",
}


@dataclass(frozen=True)
class Problem:
    fault: StorageFault
    where: str              # which part of the relay saw it last (heartbeat, delivery, poll...)
    error: str              # SQLite's own words
    since: float            # clock() of the first failure in this run of failures
    count: int              # failures since then


class StorageHealth:
    """Thread-safe record of the current storage fault, if any."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 log_every: float = LOG_EVERY_SECONDS, volume: str | None = None):
        self.volume = volume        # the database's directory (None: in memory, or not known)
        self._clock = clock
        self._log_every = log_every
        self._lock = threading.Lock()
        self._problem: Problem | None = None
        self._logged: dict[StorageFault, tuple[float, int]] = {}   # fault -> (when logged, count then)

    def failed(self, where: str, exc: BaseException) -> bool:
        """Record `exc` if it is a storage fault (True); False leaves it to the caller."""
        fault = classify(exc, self.volume)
        if fault is None:
            return False
        now = self._clock()
        with self._lock:
            p = self._problem
            if p is None or p.fault != fault:
                p = Problem(fault, where, str(exc), now, 1)
            else:
                p = Problem(fault, where, str(exc), p.since, p.count + 1)
            self._problem = p
            last = self._logged.get(fault)
            due = last is None or now - last[0] >= self._log_every
            if due:
                self._logged[fault] = (now, p.count)
        if due:
            log.error(f"storage: {_WHAT[fault]}; the relay keeps running and retries",
                      extra={"fault": str(fault), "where": where, "error": str(exc),
                             "failures": p.count, "for_seconds": round(now - p.since, 1)})
        return True

    def ok(self) -> None:
        """A write succeeded: the fault, if any, is over."""
        with self._lock:
            p, self._problem = self._problem, None
        if p is not None:
            log.warning("storage: database writable again",
                        extra={"fault": str(p.fault), "failures": p.count,
                               "for_seconds": round(self._clock() - p.since, 1)})

    @property
    def problem(self) -> Problem | None:
        return self._problem

    def reason(self) -> str | None:
        """One sentence for /readyz, or None when storage is fine."""
        p = self._problem
        if p is None:
            return None
        return (f"{_WHAT[p.fault]} ({p.error}; {p.count} failed writes over "
                f"{self._clock() - p.since:.0f}s, last in {p.where})")
